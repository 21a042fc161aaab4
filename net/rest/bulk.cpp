// Bulk writes (section 9 of the API contract): POST /<coll> with an array of documents,
// PATCH and DELETE /<coll>/*?filter=<q>. The ACL applies as to single documents: the
// readFilter narrows what a bulk PATCH or DELETE touches, mergeRequest applies to each
// inserted document and to every update.
#include "net/rest/params.hpp"
#include "net/rest/routes.hpp"

#include "storage/document/json.hpp"
#include "storage/document/update.hpp"
#include "storage/store.hpp"

namespace rheo::rest {

namespace {

std::string bulk_body(const bulk_result& r, const std::vector<std::string>& links) {
  std::string out = "{\"inserted\":" + std::to_string(r.inserted) + ",\"links\":[";
  for (std::size_t i = 0; i < links.size(); ++i) {
    if (i) out += ',';
    append_json(out, value(links[i]));
  }
  out += "],\"deleted\":" + std::to_string(r.deleted) +
         ",\"modified\":" + std::to_string(r.modified) +
         ",\"matched\":" + std::to_string(r.matched) + "}";
  return out;
}

/// The documents a bulk PATCH or DELETE addresses: a filter is required and not empty.
find_query matching(const request_context& c) {
  auto filters = c.target.all("filter");
  if (filters.empty()) throw_bad_request("a bulk write on /* needs a filter");
  for (auto& f : filters)
    if (parse_object_param(f, "filter").empty())
      throw_bad_request("a bulk write on /* needs a filter that is not empty");
  find_query q;
  q.filter_doc = combined_filter(c.target, c.who.read_filter());
  q.filter = matcher::compile(q.filter_doc);
  return q;
}

} // namespace

http_response post_documents(const request_context& c, array docs) {
  // Each parsed document is moved on, never copied: a bulk body's documents exist once.
  std::vector<object> prepared;
  prepared.reserve(docs.size());
  for (std::size_t i = 0; i < docs.size(); ++i) {
    if (!docs[i].is_object())
      throw_bad_request("element " + std::to_string(i) + " of the array is not an object");
    object doc = normalize_document_body(std::move(docs[i].as_object()));
    c.who.merge_into(doc);
    prepared.push_back(std::move(doc));
  }
  array().swap(docs);
  auto r = c.storage.insert_many(c.res.db, c.res.coll, std::move(prepared));
  std::vector<std::string> links;
  links.reserve(r.ids.size());
  for (auto& id : r.ids)
    links.push_back(document_url(c, id));
  std::vector<value>().swap(r.ids); // the links say the same
  return json_response(200, bulk_body(r, links));
}

http_response patch_matching(const request_context& c) {
  auto q = matching(c);
  auto spec = update_spec::parse(update_body(c));
  return json_response(200, bulk_body(c.storage.update_many(c.res.db, c.res.coll, q, spec), {}));
}

http_response delete_matching(const request_context& c) {
  auto q = matching(c);
  return json_response(200, bulk_body(c.storage.delete_many(c.res.db, c.res.coll, q), {}));
}

} // namespace rheo::rest
