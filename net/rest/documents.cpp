// Single documents: POST /<coll> (insert, or replace/upsert with wm and an _id) and
// GET, PUT (replace), PATCH (update operators) and DELETE /<coll>/<id>; the ACL's
// readFilter, mergeRequest and projectResponse apply.
#include "net/rest/params.hpp"
#include "net/rest/routes.hpp"

#include "storage/document/json.hpp"
#include "storage/document/query.hpp"
#include "storage/document/update.hpp"
#include "storage/store.hpp"

namespace rheo::rest {

namespace {

write_mode parse_write_mode(const std::optional<std::string>& wm, write_mode dflt) {
  if (!wm) return dflt;
  if (*wm == "insert") return write_mode::insert;
  if (*wm == "update") return write_mode::update;
  if (*wm == "upsert") return write_mode::upsert;
  throw_bad_request("invalid wm '" + *wm + "': must be insert, update or upsert");
}

/// After a PUT or PATCH: 201 with its Location when the write created the document, else
/// 200; with the new ETag.
http_response written(const request_context& c, const write_result& w) {
  http_response res = empty_response(w.created ? 201 : 200);
  res.headers.emplace_back("ETag", w.etag.hex());
  if (w.created) res.headers.emplace_back("Location", document_url(c, w.id));
  return res;
}

} // namespace

std::string document_url(const request_context& c, const value& id) {
  return c.res.coll_url + "/" + id_url(id);
}

object update_body(const request_context& c) {
  object body = body_object(c.req, false);
  if (c.who.rule && c.who.rule->merge_request) {
    // Merged fields are set by the update, whatever the client sent for them.
    object set;
    if (const value* existing = find_field(body, "$set"); existing && existing->is_object())
      set = existing->as_object();
    c.who.merge_into(set);
    for (auto& [k, v] : *c.who.rule->merge_request)
      erase_field(body, k);
    set_field(body, "$set", value(std::move(set)));
  }
  return body;
}

http_response post_document(const request_context& c) {
  if (auto first = c.req.body.find_first_not_of(" \t\r\n");
      first != std::string::npos && c.req.body[first] == '[')
    return post_documents(c);
  object doc = normalize_document_body(body_object(c.req, false));
  c.who.merge_into(doc);
  write_mode mode = parse_write_mode(c.target.last("wm"), write_mode::insert);
  write_result w;
  const value* id = find_field(doc, "_id");
  if (mode == write_mode::insert || !id) {
    if (mode == write_mode::update) throw_bad_request("wm=update requires an _id in the body");
    w = c.storage.insert(c.res.db, c.res.coll, std::move(doc));
  } else {
    value idv = *id;
    w = c.storage.replace(c.res.db, c.res.coll, idv, std::move(doc), mode, if_match_of(c.req));
  }
  http_response res = empty_response(w.created ? 201 : 200);
  res.headers.emplace_back("Location", document_url(c, w.id));
  res.headers.emplace_back("ETag", w.etag.hex());
  return res;
}

http_response get_document(const request_context& c) {
  std::string position;
  auto doc = c.storage.find_by_id(c.res.db, c.res.coll, c.res.id, &position);
  if (auto rf = c.who.read_filter(); doc && rf && !matcher::compile(*rf).matches(*doc))
    doc.reset(); // not readable for this user: as if absent
  if (!doc) {
    if (!c.storage.collection(c.res.db, c.res.coll))
      return error_response(404, "collection '" + c.res.coll + "' does not exist");
    return error_response(404, "document '" + c.res.id_text + "' does not exist");
  }
  object keys = keys_param(c.target);
  const std::optional<object_id> etag = document_etag(*doc);
  object out = keys.empty() ? std::move(*doc) : projection::compile(keys).apply(*doc);
  if (auto shape = c.who.response_projection()) out = shape->apply(out);
  http_response res = json_response(200, to_json(value(std::move(out))));
  if (etag) res.headers.emplace_back("ETag", etag->hex());
  if (!position.empty()) res.headers.emplace_back("Resume-Token", std::move(position));
  return res;
}

http_response put_document(const request_context& c) {
  object doc = normalize_document_body(body_object(c.req, true));
  c.who.merge_into(doc);
  if (const value* body_id = find_field(doc, "_id"); body_id && !(*body_id == c.res.id))
    throw_bad_request("_id in the body does not match the URL");
  write_mode mode = parse_write_mode(c.target.last("wm"), write_mode::update);
  return written(c, c.storage.replace(c.res.db, c.res.coll, c.res.id, std::move(doc), mode,
                                      if_match_of(c.req)));
}

http_response patch_document(const request_context& c) {
  object body = update_body(c);
  auto spec = update_spec::parse(body);
  write_mode mode = parse_write_mode(c.target.last("wm"), write_mode::update);
  return written(c,
                 c.storage.update(c.res.db, c.res.coll, c.res.id, spec, mode, if_match_of(c.req)));
}

http_response delete_document(const request_context& c) {
  c.storage.remove(c.res.db, c.res.coll, c.res.id, if_match_of(c.req));
  return empty_response(204);
}

} // namespace rheo::rest
