#include "net/rest_api.hpp"

#include "net/metrics.hpp"
#include "net/security/security.hpp"
#include "net/static_files.hpp"
#include "storage/document/json.hpp"
#include "storage/document/pipeline.hpp"
#include "storage/document/query.hpp"
#include "storage/document/update.hpp"
#include "storage/store.hpp"

#include <cctype>
#include <charconv>
#include <cstring>

namespace rheo {

namespace {

constexpr const char* json_type = "application/json";

bool valid_collection_name(std::string_view name) {
  if (name.empty() || name.size() > 120 || name[0] == '_' || name.rfind("system.", 0) == 0)
    return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'))
      return false;
  return true;
}

bool valid_db_name(std::string_view name) {
  if (name.empty() || name.size() > 63 || name[0] == '_') return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

std::string strip_etag_quotes(std::string s) {
  if (s.rfind("W/", 0) == 0) s = s.substr(2);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

std::optional<std::string> if_match_of(const http_request& req) {
  if (req.if_match.empty()) return std::nullopt;
  return strip_etag_quotes(req.if_match);
}

object parse_object_param(const std::string& text, const char* name) {
  value v = parse_json(text, name);
  if (!v.is_object()) throw_bad_request(std::string(name) + " must be a JSON object");
  return std::move(v.as_object());
}

std::int64_t parse_int_param(const std::string& text, const char* name, std::int64_t min,
                             std::int64_t max) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || v < min || v > max)
    throw_bad_request("invalid " + std::string(name) + " '" + text + "': must be an integer from " +
                      std::to_string(min) + " to " + std::to_string(max));
  return v;
}

/// The body as a JSON object; `empty_ok` turns an empty body into {}.
object body_object(const http_request& req, bool empty_ok) {
  auto first = req.body.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) {
    if (empty_ok) return {};
    throw_bad_request("data must be a json object");
  }
  value v = parse_json(req.body, "body");
  if (!v.is_object()) throw_bad_request("data must be a json object");
  return std::move(v.as_object());
}

value parse_id(const std::string& text, const std::optional<std::string>& id_type) {
  std::string type = id_type.value_or("");
  for (auto& c : type)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (type.empty()) {
    if (auto oid = object_id::from_hex(text)) return *oid;
    return text;
  }
  if (type == "STRING") return text;
  if (type == "OID" || type == "OBJECTID") {
    if (auto oid = object_id::from_hex(text)) return *oid;
    throw_bad_request("invalid id '" + text + "': not an ObjectId (24 hex digits)");
  }
  if (type == "NUMBER") {
    std::int64_t i = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), i);
    if (!text.empty() && ec == std::errc() && p == text.data() + text.size()) {
      if (i >= INT32_MIN && i <= INT32_MAX) return static_cast<std::int32_t>(i);
      return i;
    }
    double d = 0;
    auto [p2, ec2] = std::from_chars(text.data(), text.data() + text.size(), d);
    if (!text.empty() && ec2 == std::errc() && p2 == text.data() + text.size()) return d;
    throw_bad_request("invalid id '" + text + "': not a number");
  }
  throw_bad_request("invalid id_type '" + *id_type + "': must be STRING, OID or NUMBER");
}

/// The URL form of a document id, for Location headers.
std::string id_url(const value& id) {
  if (auto* oid = id.get_if<object_id>()) return oid->hex();
  if (auto* s = id.get_if<std::string>()) {
    std::string enc = percent_encode(*s);
    if (object_id::from_hex(*s)) enc += "?id_type=STRING";
    return enc;
  }
  if (id.is_number()) {
    std::string j = to_json(id);
    return j + "?id_type=NUMBER";
  }
  return percent_encode(to_json(id));
}

write_mode parse_write_mode(const std::optional<std::string>& wm, write_mode dflt) {
  if (!wm) return dflt;
  if (*wm == "insert") return write_mode::insert;
  if (*wm == "update") return write_mode::update;
  if (*wm == "upsert") return write_mode::upsert;
  throw_bad_request("invalid wm '" + *wm + "': must be insert, update or upsert");
}

/// The `filter` parameters (repeatable, ANDed) and an ACL readFilter, as one filter.
object combined_filter(const parsed_target& t, std::optional<object> read_filter) {
  array all;
  for (auto& f : t.all("filter"))
    all.emplace_back(parse_object_param(f, "filter"));
  if (read_filter) all.emplace_back(std::move(*read_filter));
  if (all.empty()) return {};
  if (all.size() == 1) return std::move(all[0].as_object());
  return object{{"$and", value(std::move(all))}};
}

/// Checks the metadata document written with PUT/PATCH /<coll>.
void check_metadata_keys(const object& meta) {
  for (auto& [k, v] : meta) {
    if (!k.empty() && k[0] == '$') throw_bad_request("metadata keys cannot start with '$': " + k);
    (void)v;
  }
}

object strip_reserved_metadata(object meta) {
  erase_field(meta, "_id");
  erase_field(meta, "_etag");
  return meta;
}

} // namespace

// ---- rest_api ----

struct rest_api::route {
  std::string db;
  std::string prefix;            // URL prefix up to the collection
  std::vector<std::string> rest; // segments after the database
  bool db_root = false;          // the request addresses the database itself
};

struct rest_api::access {
  std::optional<principal> user;
  const acl_rule* rule = nullptr;

  /// The rule's readFilter with @user/@now resolved, if any.
  std::optional<object> read_filter() const {
    if (!rule || !rule->read_filter) return std::nullopt;
    return security::resolve_variables(value(*rule->read_filter), user).as_object();
  }
  /// Applies the rule's mergeRequest to a document body.
  void merge_into(object& body) const {
    if (!rule || !rule->merge_request) return;
    for (auto& [k, v] : *rule->merge_request)
      set_field(body, k, security::resolve_variables(v, user));
  }
  /// The rule's projectResponse, if any.
  std::optional<projection> response_projection() const {
    if (!rule || !rule->project_response) return std::nullopt;
    return projection::compile(*rule->project_response);
  }
};

rest_api::rest_api(const server_config& config, store& db, security& sec)
    : config_(config), store_(db), security_(sec) {}

std::optional<http_response>
rest_api::check_access(const http_request& req, std::string_view method, std::string_view path,
                       access& who,
                       std::vector<std::pair<std::string, std::string>>& extra_headers) const {
  auto auth = security_.authenticate(req.authorization, req.cookie, req.remote_address);
  if (auth.status) {
    http_response r = error_response(auth.status, auth.message);
    if (auth.status == 401) r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"rheo\"");
    return r;
  }
  extra_headers = std::move(auth.headers);
  who.user = std::move(auth.user);
  who.rule = security_.authorize(method, path, who.user);
  if (!who.rule) {
    if (!who.user) {
      http_response r = error_response(401, "authentication required");
      r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"rheo\"");
      return r;
    }
    return error_response(403, "user '" + who.user->id + "' may not " + std::string(method) + " " +
                                   std::string(path));
  }
  return std::nullopt;
}

bool rest_api::is_blocking(const http_request& req) const {
  return req.method != http_method::get && req.method != http_method::head &&
         req.method != http_method::options;
}

std::optional<rest_api::route> rest_api::match_mount(const parsed_target& t) const {
  // Longest matching prefix wins.
  const mount* best = nullptr;
  for (auto& m : config_.mounts) {
    std::string_view p = m.prefix;
    bool ok =
        t.path.size() + 1 >= p.size() && (t.path.compare(0, p.size(), p) == 0 || t.path + "/" == p);
    if (ok && (!best || m.prefix.size() > best->prefix.size())) best = &m;
  }
  if (!best) return std::nullopt;
  // Count the prefix's segments to skip them.
  std::size_t skip = 0;
  for (std::size_t i = 1; i < best->prefix.size(); ++i)
    if (best->prefix[i] == '/') ++skip;
  if (t.segments.size() < skip) return std::nullopt;
  route r;
  r.prefix = best->prefix;
  std::vector<std::string> rest(t.segments.begin() + static_cast<std::ptrdiff_t>(skip),
                                t.segments.end());
  if (best->db == "*") {
    if (rest.empty()) return std::nullopt;
    r.db = rest.front();
    r.prefix += percent_encode(rest.front()) + "/";
    rest.erase(rest.begin());
    if (!valid_db_name(r.db)) throw_bad_request("invalid database name '" + r.db + "'");
  } else {
    r.db = best->db;
  }
  r.db_root = rest.empty();
  r.rest = std::move(rest);
  return r;
}

http_response rest_api::handle(const http_request& req) const {
  http_response res;
  try {
    auto t = parse_target(req.target);
    if (!t) {
      res = error_response(400, "malformed request target");
    } else if (req.method == http_method::options) {
      res = preflight_response(req);
    } else {
      std::vector<std::pair<std::string, std::string>> extra;
      res = dispatch(req, *t, extra);
      for (auto& h : extra)
        res.headers.push_back(std::move(h));
    }
  } catch (const api_error& e) {
    res = error_response(e.status(), e.what());
  } catch (const std::exception& e) {
    res = error_response(500, std::string("internal error: ") + e.what());
  }
  add_cors_headers(req, res);
  return res;
}

http_response
rest_api::dispatch(const http_request& req, const parsed_target& t,
                   std::vector<std::pair<std::string, std::string>>& extra_headers) const {
  const bool get = req.method == http_method::get || req.method == http_method::head;
  if (t.path == "/_ping") {
    if (!get) return error_response(405, "method not allowed");
    return json_response(200, "{\"status\":\"ok\"}");
  }
  access who;
  if (t.path == "/_metrics") {
    if (!get) return error_response(405, "method not allowed");
    if (auto denied = check_access(req, "GET", t.path, who, extra_headers)) return *denied;
    http_response r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = global_metrics().render();
    return r;
  }
  const std::string& sp = config_.static_prefix;
  const bool browser = get && req.accept.find("text/html") != std::string::npos;
  // "/chat" is a data URL (collection "chat") except for browsers, which go to the app.
  if (t.path + "/" == sp && browser) {
    http_response r = empty_response(302);
    r.headers.emplace_back("Location", sp);
    return r;
  }
  if (t.path.compare(0, sp.size(), sp) == 0) {
    if (!get) return error_response(405, "method not allowed");
    return serve_static(config_.static_dir, sp, req.target.substr(0, req.target.find('?')));
  }
  if (t.path == "/" && browser) {
    http_response r = empty_response(302);
    r.headers.emplace_back("Location", sp);
    return r;
  }
  if (auto denied = check_access(
          req, req.method == http_method::head ? to_string(http_method::get) : req.method_text,
          t.path, who, extra_headers))
    return *denied;
  auto r = match_mount(t);
  if (!r) return error_response(404, "no mount serves " + t.path);
  return handle_data(req, t, *r, who);
}

http_response rest_api::handle_data(const http_request& req, const parsed_target& t, const route& r,
                                    const access& who) const {
  const std::string& m = req.method_text;
  const bool get = req.method == http_method::get || req.method == http_method::head;
  if (r.db_root) {
    if (!get) return error_response(405, "method " + m + " not allowed on a database");
    std::string out = "[";
    bool first = true;
    for (auto& name : store_.collection_names(r.db)) {
      if (!first) out += ',';
      first = false;
      append_json(out, value(name));
    }
    out += ']';
    return json_response(200, std::move(out));
  }
  const std::string& coll = r.rest[0];
  if (!valid_collection_name(coll))
    return error_response(400, "invalid collection name '" + coll + "'");
  const std::string coll_url = r.prefix + percent_encode(coll);

  if (r.rest.size() == 1) {
    if (get) {
      find_query q;
      q.filter_doc = combined_filter(t, who.read_filter());
      q.filter = matcher::compile(q.filter_doc);
      object sort;
      for (auto& s : t.all("sort")) {
        auto first = s.find_first_not_of(" \t");
        if (first != std::string::npos && s[first] == '{') {
          for (auto& [k, v] : parse_object_param(s, "sort"))
            set_field(sort, k, v);
        } else if (!s.empty()) {
          bool desc = s[0] == '-';
          std::string field = (s[0] == '-' || s[0] == '+') ? s.substr(1) : s;
          if (field.empty()) throw_bad_request("invalid sort '" + s + "'");
          set_field(sort, field, value(desc ? -1 : 1));
        } else {
          throw_bad_request("invalid sort: empty");
        }
      }
      // _id breaks ties, so that pages of an equal-valued sort neither overlap nor skip.
      if (!sort.empty() && !find_field(sort, "_id")) {
        const value& last = sort.back().second;
        set_field(sort, "_id", value(last.is_number() && last.as_double() < 0 ? -1 : 1));
      }
      q.sort = sort_spec::parse(sort);
      q.sort_doc = std::move(sort);
      object keys;
      for (auto& k : t.all("keys"))
        for (auto& [name, v] : parse_object_param(k, "keys"))
          set_field(keys, name, v);
      q.keys = projection::compile(keys);
      q.keys_doc = std::move(keys);
      std::int64_t page = 1, pagesize = 100;
      if (auto p = t.last("page")) page = parse_int_param(*p, "page", 1, 1000000000);
      if (auto p = t.last("pagesize")) pagesize = parse_int_param(*p, "pagesize", 0, 1000);
      q.skip = (page - 1) * pagesize;
      q.limit = pagesize;
      auto docs = pagesize == 0 && store_.collection(r.db, coll) ? std::vector<object>{}
                                                                 : store_.find(r.db, coll, q);
      auto shape = who.response_projection();
      std::string out = "[";
      for (std::size_t i = 0; i < docs.size(); ++i) {
        if (i) out += ',';
        append_json(out, shape ? shape->apply(docs[i]) : docs[i]);
      }
      out += ']';
      return json_response(200, std::move(out));
    }
    if (m == "PUT") {
      object meta = strip_reserved_metadata(body_object(req, true));
      check_metadata_keys(meta);
      validate_streams(meta);
      bool created = store_.put_collection(r.db, coll, std::move(meta), if_match_of(req));
      http_response res = empty_response(created ? 201 : 200);
      if (auto info = store_.collection(r.db, coll))
        res.headers.emplace_back("ETag", info->etag.hex());
      if (created) res.headers.emplace_back("Location", coll_url);
      return res;
    }
    if (m == "PATCH") {
      object meta = strip_reserved_metadata(body_object(req, false));
      check_metadata_keys(meta);
      if (auto info = store_.collection(r.db, coll)) {
        object merged = info->metadata;
        for (auto& [k, v] : meta)
          set_field(merged, k, v);
        validate_streams(merged);
      }
      store_.patch_collection(r.db, coll, std::move(meta), if_match_of(req));
      http_response res = empty_response(200);
      if (auto info = store_.collection(r.db, coll))
        res.headers.emplace_back("ETag", info->etag.hex());
      return res;
    }
    if (m == "DELETE") {
      auto etag = if_match_of(req);
      if (!store_.collection(r.db, coll))
        return error_response(404, "collection '" + coll + "' does not exist");
      if (!etag)
        return error_response(409, "the collection's ETag must be provided using the "
                                   "'If-Match' header");
      store_.drop_collection(r.db, coll, *etag);
      return empty_response(204);
    }
    if (m == "POST") {
      object doc = normalize_document_body(body_object(req, false));
      who.merge_into(doc);
      write_mode mode = parse_write_mode(t.last("wm"), write_mode::insert);
      write_result w;
      const value* id = find_field(doc, "_id");
      if (mode == write_mode::insert || !id) {
        if (mode == write_mode::update) throw_bad_request("wm=update requires an _id in the body");
        w = store_.insert(r.db, coll, std::move(doc));
      } else {
        value idv = *id;
        w = store_.replace(r.db, coll, idv, std::move(doc), mode, if_match_of(req));
      }
      http_response res = empty_response(w.created ? 201 : 200);
      res.headers.emplace_back("Location", coll_url + "/" + id_url(w.id));
      res.headers.emplace_back("ETag", w.etag.hex());
      return res;
    }
    return error_response(405, "method " + m + " not allowed on a collection");
  }

  const std::string& second = r.rest[1];
  if (second == "_size" && r.rest.size() == 2) {
    if (!get) return error_response(405, "method not allowed on _size");
    find_query q;
    q.filter_doc = combined_filter(t, who.read_filter());
    q.filter = matcher::compile(q.filter_doc);
    if (!store_.collection(r.db, coll))
      return error_response(404, "collection '" + coll + "' does not exist");
    return json_response(200,
                         "{\"_size\":" + std::to_string(store_.count_query(r.db, coll, q)) + "}");
  }
  if (second == "_meta" && r.rest.size() == 2) {
    if (!get) return error_response(405, "method not allowed on _meta");
    auto info = store_.collection(r.db, coll);
    if (!info) return error_response(404, "collection '" + coll + "' does not exist");
    object meta{{"_id", value(coll)}};
    for (auto& kv : info->metadata)
      meta.push_back(kv);
    meta.emplace_back("_etag", value(info->etag));
    http_response res = json_response(200, to_json(value(std::move(meta))));
    res.headers.emplace_back("ETag", info->etag.hex());
    return res;
  }
  if (second == "_streams") {
    if (r.rest.size() != 3) return error_response(404, "no such stream");
    return error_response(400, "Change Stream requires WebSocket, no 'Upgrade' or "
                               "'Connection: Upgrade' header found");
  }
  if (!second.empty() && second[0] == '_')
    return error_response(404, "unknown resource '" + second + "'");
  if (r.rest.size() != 2) return error_response(404, "no resource at " + t.path);

  value id = parse_id(second, t.last("id_type"));
  if (get) {
    auto doc = store_.find_by_id(r.db, coll, id);
    if (auto rf = who.read_filter(); doc && rf && !matcher::compile(*rf).matches(*doc))
      doc.reset(); // not readable for this user: as if absent
    if (!doc) {
      if (!store_.collection(r.db, coll))
        return error_response(404, "collection '" + coll + "' does not exist");
      return error_response(404, "document '" + second + "' does not exist");
    }
    object keys;
    for (auto& k : t.all("keys"))
      for (auto& [name, v] : parse_object_param(k, "keys"))
        set_field(keys, name, v);
    http_response res;
    if (const value* etag = find_field(*doc, "_etag"); etag && etag->is<object_id>())
      res.headers.emplace_back("ETag", etag->get<object_id>().hex());
    object out = keys.empty() ? std::move(*doc) : projection::compile(keys).apply(*doc);
    if (auto shape = who.response_projection()) out = shape->apply(out);
    res.status = 200;
    res.content_type = json_type;
    res.body = to_json(value(std::move(out)));
    return res;
  }
  if (m == "PUT") {
    object doc = normalize_document_body(body_object(req, true));
    who.merge_into(doc);
    if (const value* body_id = find_field(doc, "_id"); body_id && !(*body_id == id))
      throw_bad_request("_id in the body does not match the URL");
    write_mode mode = parse_write_mode(t.last("wm"), write_mode::update);
    auto w = store_.replace(r.db, coll, id, std::move(doc), mode, if_match_of(req));
    http_response res = empty_response(w.created ? 201 : 200);
    res.headers.emplace_back("ETag", w.etag.hex());
    if (w.created) res.headers.emplace_back("Location", coll_url + "/" + id_url(w.id));
    return res;
  }
  if (m == "PATCH") {
    object body = body_object(req, false);
    if (who.rule && who.rule->merge_request) {
      // Merged fields are set by the update, whatever the client sent for them.
      object set;
      if (const value* existing = find_field(body, "$set"); existing && existing->is_object())
        set = existing->as_object();
      who.merge_into(set);
      for (auto& [k, v] : *who.rule->merge_request)
        erase_field(body, k);
      set_field(body, "$set", value(std::move(set)));
    }
    auto spec = update_spec::parse(body);
    write_mode mode = parse_write_mode(t.last("wm"), write_mode::update);
    auto w = store_.update(r.db, coll, id, spec, mode, if_match_of(req));
    http_response res = empty_response(w.created ? 201 : 200);
    res.headers.emplace_back("ETag", w.etag.hex());
    if (w.created) res.headers.emplace_back("Location", coll_url + "/" + id_url(w.id));
    return res;
  }
  if (m == "DELETE") {
    store_.remove(r.db, coll, id, if_match_of(req));
    return empty_response(204);
  }
  if (m == "POST")
    return error_response(405, "POST is not allowed on a document; use PUT or PATCH");
  return error_response(405, "method " + m + " not allowed");
}

std::variant<stream_target, http_response> rest_api::resolve_stream(const http_request& req) const {
  try {
    auto t = parse_target(req.target);
    if (!t) return error_response(400, "malformed request target");
    auto r = match_mount(*t);
    if (!r || r->rest.size() != 3 || r->rest[1] != "_streams")
      return error_response(404, "not a change stream: " + t->path);
    if (!req.websocket_upgrade)
      return error_response(400, "Change Stream requires WebSocket, no 'Upgrade' or "
                                 "'Connection: Upgrade' header found");
    access who;
    std::vector<std::pair<std::string, std::string>> ignored;
    if (auto denied = check_access(req, "GET", t->path, who, ignored)) return *denied;
    const std::string& coll = r->rest[0];
    if (!valid_collection_name(coll))
      return error_response(400, "invalid collection name '" + coll + "'");
    stream_target target;
    if (who.user) target.user = who.user->document;
    target.read_filter = who.read_filter();
    target.db = r->db;
    target.coll = coll;
    target.stream = r->rest[2];
    if (auto avars = t->last("avars")) {
      value v = parse_json(*avars, "avars");
      if (!v.is_object()) return error_response(400, "avars must be a JSON object");
      for (auto& [k, val] : v.as_object())
        if (!k.empty() && k[0] == '$')
          return error_response(400, "avars keys cannot start with '$': " + k);
      target.avars = std::move(v.as_object());
    }
    auto info = store_.collection(r->db, coll);
    if (!info) return error_response(404, "collection '" + coll + "' does not exist");
    if (const object* definition = find_stream(info->metadata, target.stream)) {
      target.definition = *definition;
      server_vars sv;
      sv.user = target.user;
      sv.read_filter = target.read_filter;
      target.stages = pipeline::compile(target.definition, target.avars, sv);
      target.key = r->db + '\0' + coll + '\0' + target.stream + '\0' + target.stages.key();
      return target;
    }
    return error_response(404, "stream '" + target.stream + "' does not exist on collection '" +
                                   coll + "'");
  } catch (const api_error& e) {
    return error_response(e.status(), e.what());
  } catch (const std::exception& e) {
    return error_response(500, std::string("internal error: ") + e.what());
  }
}

} // namespace rheo
