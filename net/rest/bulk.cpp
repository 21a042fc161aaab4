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

std::string bulk_body(const bulk_result& r, const request_context* links_of) {
  std::string out = "{\"inserted\":" + std::to_string(r.inserted) + ",\"links\":[";
  if (links_of)
    for (std::size_t i = 0; i < r.ids.size(); ++i) {
      if (i) out += ',';
      append_json(out, value(document_url(*links_of, r.ids[i])));
    }
  out += "],\"deleted\":" + std::to_string(r.deleted) +
         ",\"modified\":" + std::to_string(r.modified) +
         ",\"matched\":" + std::to_string(r.matched) + "}";
  return out;
}

/// The documents of a bulk POST's body, parsed one at a time as the store takes them, each
/// checked, normalized and merged as a single POST's body is.
class body_documents final : public insert_source {
public:
  explicit body_documents(const request_context& c) : c_(c), reader_(c.req.body, "body") {}

  std::optional<object> next() override {
    std::optional<value> element = reader_.next();
    if (!element) return std::nullopt;
    const std::size_t i = index_++;
    if (!element->is_object())
      throw_bad_request("element " + std::to_string(i) + " of the array is not an object");
    object doc = normalize_document_body(std::move(element->as_object()));
    c_.who.merge_into(doc);
    return doc;
  }

private:
  const request_context& c_;
  json_array_reader reader_;
  std::size_t index_ = 0;
};

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

http_response post_documents(const request_context& c) {
  body_documents docs(c);
  return json_response(200, bulk_body(c.storage.insert_from(c.res.db, c.res.coll, docs), &c));
}

http_response patch_matching(const request_context& c) {
  auto q = matching(c);
  auto spec = update_spec::parse(update_body(c));
  return json_response(200,
                       bulk_body(c.storage.update_many(c.res.db, c.res.coll, q, spec), nullptr));
}

http_response delete_matching(const request_context& c) {
  auto q = matching(c);
  return json_response(200, bulk_body(c.storage.delete_many(c.res.db, c.res.coll, q), nullptr));
}

} // namespace rheo::rest
