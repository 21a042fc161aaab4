#include "net/rest/routes.hpp"

namespace rheo::rest {

namespace {

/// A row of the route table; no method: any method the resource has no other row for.
struct route {
  resource_kind resource;
  std::optional<http_method> method;
  handler serve;
};

constexpr std::optional<http_method> any_method;

constexpr route routes[] = {
    {resource_kind::ping, http_method::get, get_ping},
    {resource_kind::metrics, http_method::get, get_metrics},
    {resource_kind::cluster, http_method::get, get_cluster},
    {resource_kind::backup, http_method::post, post_backup},
    {resource_kind::token, http_method::get, get_token},
    {resource_kind::token, http_method::delete_, delete_token},
    {resource_kind::app, http_method::get, redirect_to_app},
    {resource_kind::static_files, http_method::get, get_static_file},
    {resource_kind::database, http_method::get, get_collection_names},
    {resource_kind::collection, http_method::get, find_documents},
    {resource_kind::collection, http_method::post, post_document},
    {resource_kind::collection, http_method::put, put_collection},
    {resource_kind::collection, http_method::patch, patch_collection},
    {resource_kind::collection, http_method::delete_, delete_collection},
    {resource_kind::size, http_method::get, count_documents},
    {resource_kind::meta, http_method::get, get_metadata},
    {resource_kind::stream, any_method, plain_request_to_stream},
    {resource_kind::live, any_method, plain_request_to_live},
    {resource_kind::presence, http_method::get, get_presence},
    {resource_kind::indexes, http_method::get, list_indexes},
    {resource_kind::index, http_method::put, put_index},
    {resource_kind::index, http_method::delete_, delete_index},
    {resource_kind::document, http_method::get, get_document},
    {resource_kind::document, http_method::put, put_document},
    {resource_kind::document, http_method::patch, patch_document},
    {resource_kind::document, http_method::delete_, delete_document},
    {resource_kind::bulk, http_method::patch, patch_matching},
    {resource_kind::bulk, http_method::delete_, delete_matching},
    {resource_kind::aggregation, http_method::get, run_aggregation},
};

/// The answer to a method a resource has no row for.
http_response method_not_allowed(const request_context& c) {
  const std::string& m = c.req.method_text;
  switch (c.res.kind) {
  case resource_kind::database:
    return error_response(405, "method " + m + " not allowed on a database");
  case resource_kind::collection:
    return error_response(405, "method " + m + " not allowed on a collection");
  case resource_kind::size:
    return error_response(405, "method not allowed on _size");
  case resource_kind::meta:
    return error_response(405, "method not allowed on _meta");
  case resource_kind::bulk:
    return error_response(405, "method " + m + " not allowed on /*; use PATCH or DELETE");
  case resource_kind::aggregation:
    return error_response(405, "method " + m + " not allowed on an aggregation; use GET");
  case resource_kind::token:
    return error_response(405, "method " + m + " not allowed on a token; use GET or DELETE");
  case resource_kind::indexes:
    return error_response(405, "method " + m + " not allowed on _indexes; use GET");
  case resource_kind::index:
    return error_response(405, "method " + m + " not allowed on an index; use PUT or DELETE");
  case resource_kind::document:
    if (c.req.method == http_method::post)
      return error_response(405, "POST is not allowed on a document; use PUT or PATCH");
    return error_response(405, "method " + m + " not allowed");
  default:
    return error_response(405, "method not allowed");
  }
}

} // namespace

handler find_handler(resource_kind kind, http_method method) {
  if (method == http_method::head) method = http_method::get;
  handler found = method_not_allowed;
  for (auto& r : routes) {
    if (r.resource != kind) continue;
    if (r.method == method) return r.serve;
    if (!r.method) found = r.serve;
  }
  return found;
}

} // namespace rheo::rest
