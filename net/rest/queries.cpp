// Queries over a collection's documents: GET /<coll> with filter, sort, keys, page and
// pagesize, and GET /<coll>/_size; the ACL's readFilter narrows both. GET /<coll> with
// explain=true answers how the query ran (the store's query_plan) instead of the documents;
// with debug logging on, every query's plan is logged.
#include "net/rest/params.hpp"
#include "net/rest/routes.hpp"

#include "config/log.hpp"
#include "storage/document/json.hpp"
#include "storage/document/query.hpp"
#include "storage/store.hpp"

#include <charconv>
#include <cstdint>

namespace rheo::rest {

namespace {

/// The query's filter: the `filter` parameters and the caller's readFilter.
void set_filter(find_query& q, const request_context& c) {
  q.filter_doc = combined_filter(c.target, c.who.read_filter());
  q.filter = matcher::compile(q.filter_doc);
}

/// The `explain` parameter: true or false (the default).
bool explain_param(const parsed_target& t) {
  auto e = t.last("explain");
  if (!e || *e == "false") return false;
  if (*e == "true") return true;
  throw_bad_request("invalid explain '" + *e + "': must be true or false");
}

/// The answer to explain=true: how the store ran the query and how many documents it gave.
std::string plan_json(const query_plan& plan, std::size_t returned) {
  object shown{{"index", value(plan.index)},
               {"examined", value(static_cast<std::int64_t>(plan.examined))},
               {"bounds", value(plan.bounds)},
               {"inMemorySort", value(plan.in_memory_sort)},
               {"returned", value(static_cast<std::int64_t>(returned))}};
  return to_json(value(std::move(shown)));
}

} // namespace

http_response find_documents(const request_context& c) {
  const parsed_target& t = c.target;
  find_query q;
  set_filter(q, c);
  object sort = sort_param(t);
  q.sort = sort_spec::parse(sort);
  q.sort_doc = std::move(sort);
  object keys = keys_param(t);
  q.keys = projection::compile(keys);
  q.keys_doc = std::move(keys);
  std::int64_t page = 1, pagesize = 100;
  if (auto p = t.last("page")) page = parse_int_param(*p, "page", 1, 1000000000);
  if (auto p = t.last("pagesize")) pagesize = parse_int_param(*p, "pagesize", 0, 1000);
  q.skip = (page - 1) * pagesize;
  q.limit = pagesize;
  const bool explain = explain_param(t);
  query_plan plan;
  if (explain || log::enabled(log::level::debug)) {
    q.explain = &plan;
    q.explain_if_free = !explain; // only logged
  }
  std::string position;
  q.position = &position;
  auto shape = c.who.response_projection();
  // Without a projection of the caller's the store may write the page's JSON itself.
  json_page page_json;
  page_json.json = "[";
  if (!shape) q.page_json = &page_json;
  auto docs = pagesize == 0 && !explain && c.storage.collection(c.res.db, c.res.coll)
                  ? std::vector<object>{}
                  : c.storage.find(c.res.db, c.res.coll, q);
  const std::size_t returned = page_json.written ? page_json.count : docs.size();
  // A store that does not explain its queries (MongoDB's) leaves the plan empty.
  const bool explained = !plan.index.empty();
  if (explained) log::debug("query " + t.path + ": " + plan_json(plan, returned));
  if (explain) {
    if (!explained) return error_response(501, "this store does not explain its queries");
    return json_response(200, plan_json(plan, returned));
  }
  std::string out = std::move(page_json.json);
  for (std::size_t i = 0; i < docs.size(); ++i) {
    if (i) out += ',';
    append_json(out, shape ? shape->apply(docs[i]) : docs[i]);
  }
  out += ']';
  http_response res = json_response(200, std::move(out));
  if (!position.empty()) res.headers.emplace_back("Resume-Token", std::move(position));
  return res;
}

http_response count_documents(const request_context& c) {
  find_query q;
  set_filter(q, c);
  if (!c.storage.collection(c.res.db, c.res.coll))
    return error_response(404, "collection '" + c.res.coll + "' does not exist");
  return json_response(
      200, "{\"_size\":" + std::to_string(c.storage.count_query(c.res.db, c.res.coll, q)) + "}");
}

} // namespace rheo::rest
