// The REST API's routes, private to rheo_rest. rest_api locates each request to a
// resource (its kind and, for data, the database, collection and document); the route
// table in routes.cpp names one handler per (resource kind, method). The handlers live
// one file per concern:
//   service.cpp      /_ping, /_metrics, /_cluster, POST /_backup, the web app's files and the
//                    browser redirect to it
//   tokens.cpp       /tokens/<user>, the Auth-Token-Location: GET tells, DELETE logs out
//   collections.cpp  a database's collection names; a collection's metadata:
//                    PUT, PATCH, DELETE /<coll> and GET /<coll>/_meta
//   queries.cpp      GET /<coll> (filter, sort, keys, pages, explain) and GET /<coll>/_size
//   documents.cpp    POST /<coll>; GET, PUT, PATCH, DELETE /<coll>/<id>
//   indexes.cpp      GET /<coll>/_indexes; PUT, DELETE /<coll>/_indexes/<name>
//   streams.cpp      /<coll>/_streams/<uri> and /<coll>/_live: WebSocket handshakes, SSE
//                    requests and plain requests
//   bulk.cpp         POST /<coll> with an array; PATCH and DELETE /<coll>/*?filter=
//   aggregations.cpp GET /<coll>/_aggrs/<uri>
// OPTIONS (CORS preflight) is answered before routing, for every path.
//
// Thread-safety: the table is constant and the handlers keep no state; any thread may
// run them concurrently.
#pragma once

#include "config/config.hpp"
#include "net/http.hpp"
#include "net/rest/access.hpp"
#include "storage/document/value.hpp"

#include <optional>
#include <string>
#include <vector>

namespace rheo {
class store;
class security;
class cluster_view;
class presence_directory;
struct metrics;
} // namespace rheo

namespace rheo::rest {

enum class resource_kind {
  ping,         // /_ping
  metrics,      // /_metrics
  cluster,      // /_cluster
  backup,       // /_backup
  token,        // /tokens/<user> when users are configured (name: the user)
  app,          // a browser loading / or the app's prefix without its '/': redirected
  static_files, // the web app's files, under the static prefix
  database,     // a mount's database: its collection names
  collection,   // /<coll>
  size,         // /<coll>/_size
  meta,         // /<coll>/_meta
  stream,       // /<coll>/_streams/<uri>
  live,         // /<coll>/_live
  presence,     // /<coll>/_streams/<uri>/_presence
  indexes,      // /<coll>/_indexes
  index,        // /<coll>/_indexes/<name>
  document,     // /<coll>/<id>
  bulk,         // /<coll>/* : PATCH and DELETE of every document matching ?filter=
  aggregation,  // /<coll>/_aggrs/<uri>
};

/// The resource a request addresses.
struct resource {
  resource_kind kind = resource_kind::ping;
  std::string db;       // data resources: the database
  std::string coll;     // collection and below
  std::string coll_url; // the collection's URL, for Location headers
  value id;             // document: the id, typed by id_type
  std::string id_text;  // document: the id as in the URL
  std::string name;     // index: its name; aggregation: its uri
};

/// The mount serving a request path (the longest prefix wins) and the segments after it.
struct mount_match {
  std::string db;
  std::string prefix;            // URL prefix up to the collection
  std::vector<std::string> rest; // segments after the database
};
/// nullopt when no mount serves `t`; throws api_error 400 for an invalid database name
/// under a "*" mount.
std::optional<mount_match> match_mount(const server_config& config, const parsed_target& t);

/// Everything a handler may look at.
struct request_context {
  const http_request& req;
  const parsed_target& target;
  const resource& res;
  const access& who; // data resources: authorized before they were located
  const server_config& config;
  store& storage;
  security& sec;
  metrics& stats;                     // what GET /_metrics renders; limit refusals count here
  const cluster_view* cluster;        // null: not in a cluster
  const presence_directory* presence; // null: no realtime layer
  http_headers& extra_headers;        // added to the response (tokens issued at login)
};

using handler = http_response (*)(const request_context&);

/// The handler of `method` on a `kind` resource (HEAD: the GET handler). A method without
/// a row gets the resource's catch-all row if it has one, else a 405.
handler find_handler(resource_kind kind, http_method method);

// ---- the handlers ----

// service.cpp
http_response get_ping(const request_context& c);
http_response get_metrics(const request_context& c);
http_response get_cluster(const request_context& c);
http_response post_backup(const request_context& c);
http_response redirect_to_app(const request_context& c);
http_response get_static_file(const request_context& c);

// tokens.cpp
http_response get_token(const request_context& c);
http_response delete_token(const request_context& c);

// collections.cpp
http_response get_collection_names(const request_context& c);
http_response put_collection(const request_context& c);
http_response patch_collection(const request_context& c);
http_response delete_collection(const request_context& c);
http_response get_metadata(const request_context& c);

// queries.cpp
http_response find_documents(const request_context& c);
http_response count_documents(const request_context& c);

// Shared by the document handlers (documents.cpp).
/// The URL of document `id` of the request's collection.
std::string document_url(const request_context& c, const value& id);
/// The request's update operators with the ACL rule's mergeRequest added to $set.
object update_body(const request_context& c);

// bulk.cpp
http_response post_documents(const request_context& c);
http_response patch_matching(const request_context& c);
http_response delete_matching(const request_context& c);
// aggregations.cpp
http_response run_aggregation(const request_context& c);
// documents.cpp
http_response post_document(const request_context& c);
http_response get_document(const request_context& c);
http_response put_document(const request_context& c);
http_response patch_document(const request_context& c);
http_response delete_document(const request_context& c);

// indexes.cpp
http_response list_indexes(const request_context& c);
http_response put_index(const request_context& c);
http_response delete_index(const request_context& c);

// streams.cpp
http_response plain_request_to_stream(const request_context& c);
http_response plain_request_to_live(const request_context& c);
http_response get_presence(const request_context& c);

} // namespace rheo::rest
