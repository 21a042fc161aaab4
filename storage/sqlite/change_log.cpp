#include "storage/sqlite/change_log.hpp"

#include "storage/document/bson_codec.hpp"
#include "storage/sqlite/connection.hpp"
#include "storage/sqlite/schema.hpp"

#include <algorithm>
#include <stdexcept>

namespace rheo::sqlite {

namespace {

std::string encode_event(const change_event& ev) {
  object o;
  o.emplace_back("op", value(to_string(ev.operation)));
  if (ev.document_key) o.emplace_back("key", *ev.document_key);
  if (ev.full_document) o.emplace_back("doc", value(*ev.full_document));
  if (ev.update) {
    array removed(ev.update->removed_fields.begin(), ev.update->removed_fields.end());
    o.emplace_back("updated", value(ev.update->updated_fields));
    o.emplace_back("removed", value(std::move(removed)));
  }
  o.emplace_back("wall", value(ev.wall_time));
  return encode_bson(o);
}

change_event decode_event(std::uint64_t seq, std::string db, std::string coll,
                          std::string_view blob) {
  change_event ev;
  ev.seq = seq;
  ev.token = token_from_seq(seq);
  ev.db = std::move(db);
  ev.coll = std::move(coll);
  object o = decode_bson(blob);
  for (auto& [k, v] : o) {
    if (k == "op" && v.is_string()) {
      auto op = operation_from_string(v.as_string());
      if (!op)
        throw std::runtime_error("change log entry " + ev.token + ": unknown operation '" +
                                 v.as_string() + "'");
      ev.operation = *op;
    } else if (k == "key")
      ev.document_key = std::move(v);
    else if (k == "doc" && v.is_object())
      ev.full_document = std::move(v.as_object());
    else if (k == "updated" && v.is_object()) {
      if (!ev.update) ev.update.emplace();
      ev.update->updated_fields = std::move(v.as_object());
    } else if (k == "removed" && v.is_array()) {
      if (!ev.update) ev.update.emplace();
      for (auto& path : v.as_array())
        if (path.is_string()) ev.update->removed_fields.push_back(path.as_string());
    } else if (k == "wall" && v.is<date_time>())
      ev.wall_time = v.get<date_time>();
  }
  return ev;
}

} // namespace

change_event make_event(const std::string& db, const std::string& coll, operation_type op) {
  change_event ev;
  ev.db = db;
  ev.coll = coll;
  ev.operation = op;
  ev.wall_time = date_time::now();
  return ev;
}

change_event meta_event(const std::string& db, const std::string& coll, object metadata) {
  change_event ev = make_event(db, coll, operation_type::meta);
  ev.full_document = std::move(metadata);
  return ev;
}

void append_change(connection& c, const change_event& ev) {
  const std::string blob = encode_event(ev);
  query q(c, sql_change_insert);
  q.int64(1, static_cast<std::int64_t>(ev.seq)).text(2, ev.db).text(3, ev.coll).blob(4, blob);
  q.step();
}

void append_insert_change(connection& c, std::uint64_t seq, const std::string& db,
                          const std::string& coll, const value& id, std::string_view doc,
                          date_time wall) {
  // encode_event()'s fields in its order (op, key, doc, wall), with the document's BSON
  // copied in as an embedded document.
  const std::string head =
      encode_bson(object{{"op", value(to_string(operation_type::insert))}, {"key", id}});
  std::string blob;
  blob.reserve(head.size() + doc.size() + 16);
  blob.append(head, 0, head.size() - 1); // without its terminating 0
  blob += '\x03';
  blob.append("doc", 4); // with the name's NUL
  blob.append(doc);
  blob += '\x09';
  blob.append("wall", 5);
  auto millis = static_cast<std::uint64_t>(wall.millis);
  for (int i = 0; i < 8; ++i)
    blob += static_cast<char>((millis >> (8 * i)) & 0xFF);
  blob += '\0';
  const auto size = static_cast<std::uint32_t>(blob.size());
  for (int i = 0; i < 4; ++i)
    blob[static_cast<std::size_t>(i)] = static_cast<char>((size >> (8 * i)) & 0xFF);
  query q(c, sql_change_insert);
  q.int64(1, static_cast<std::int64_t>(seq)).text(2, db).text(3, coll).blob(4, blob);
  q.step();
}

std::optional<std::pair<std::uint64_t, std::uint64_t>> change_log_bounds(connection& c) {
  query q(c, sql_changes_bounds);
  if (!q.step() || q.column_null(1)) return std::nullopt;
  return std::pair{static_cast<std::uint64_t>(q.column_int64(0)),
                   static_cast<std::uint64_t>(q.column_int64(1))};
}

std::optional<std::uint64_t> trim_change_log(connection& c, std::uint64_t retention,
                                             std::uint64_t oldest, std::uint64_t next) {
  const std::uint64_t slack = std::min<std::uint64_t>(retention / 8, 4096);
  if (next - oldest <= retention + slack) return std::nullopt;
  const std::uint64_t keep_from = next - retention;
  query q(c, sql_changes_trim);
  q.int64(1, static_cast<std::int64_t>(keep_from));
  q.step();
  return keep_from;
}

std::string log_position(connection& c) {
  query q(c, sql_changes_newest);
  const bool any = q.step() && !q.column_null(0);
  return token_from_seq(any ? static_cast<std::uint64_t>(q.column_int64(0)) : 0);
}

change_page read_changes_after(connection& c, const std::string& db, const std::string& coll,
                               std::uint64_t after, std::optional<feed_end>& lost,
                               page_limit limit) {
  change_page page;
  // One read transaction: the bounds and the rows come from the same snapshot.
  c.exec("BEGIN");
  try {
    auto [oldest, newest] =
        change_log_bounds(c).value_or(std::pair<std::uint64_t, std::uint64_t>{1, 0});
    page.newest = newest;
    if (after > newest)
      lost = feed_end{feed_end_cause::history_lost,
                      "history lost: resume token " + token_from_seq(after) + " is in the future"};
    else if (after + 1 < oldest)
      lost = feed_end{feed_end_cause::history_lost, "history lost: resume token " +
                                                        token_from_seq(after) +
                                                        " is older than the retained change log"};
    else {
      query q(c, sql_changes_after);
      q.int64(1, static_cast<std::int64_t>(after)).text(2, db).text(3, coll);
      std::size_t bytes = 0;
      while (q.step()) {
        if (page.events.size() >= limit.events || bytes >= limit.bytes) {
          page.complete = false;
          break;
        }
        const std::string_view blob = q.column_blob(1);
        bytes += blob.size();
        page.events.push_back(
            decode_event(static_cast<std::uint64_t>(q.column_int64(0)), db, coll, blob));
      }
    }
    c.run("COMMIT");
  } catch (...) {
    sqlite3_exec(c.handle(), "ROLLBACK", 0, 0, 0);
    throw;
  }
  return page;
}

} // namespace rheo::sqlite
