// GET /<coll>/_aggrs/<uri>: runs an aggregation declared in the collection's metadata
// (section 9 of the API contract) with the client's avars and the paging variables, the
// ACL's readFilter before its first stage, and answers the documents it outputs.
#include "net/rest/params.hpp"
#include "net/rest/routes.hpp"

#include "storage/document/aggregation.hpp"
#include "storage/document/json.hpp"
#include "storage/store.hpp"

namespace rheo::rest {

http_response run_aggregation(const request_context& c) {
  auto info = c.storage.collection(c.res.db, c.res.coll);
  if (!info) return error_response(404, "collection '" + c.res.coll + "' does not exist");
  const object* definition = find_aggr(info->metadata, c.res.name);
  if (!definition)
    return error_response(404, "aggregation '" + c.res.name + "' does not exist on collection '" +
                                   c.res.coll + "'");
  server_vars sv;
  if (c.who.user) sv.user = c.who.user->document;
  sv.read_filter = c.who.read_filter();
  aggregation_paging paging;
  if (auto p = c.target.last("page")) paging.page = parse_int_param(*p, "page", 1, 1000000000);
  if (auto p = c.target.last("pagesize"))
    paging.pagesize = parse_int_param(*p, "pagesize", 0, 1000);
  auto a = aggregation::compile(
      *definition, parse_avars(c.target, c.config.max_avars_bytes, c.stats), sv, paging);
  auto docs = c.storage.aggregate(c.res.db, c.res.coll, a,
                                  aggregation_limits{c.config.aggregation_max_documents});
  std::string out = "[";
  for (std::size_t i = 0; i < docs.size(); ++i) {
    if (i) out += ',';
    append_json(out, value(std::move(docs[i])));
  }
  out += ']';
  return json_response(200, std::move(out));
}

} // namespace rheo::rest
