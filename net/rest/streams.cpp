// Change streams, /<coll>/_streams/<uri>: resolving a WebSocket handshake to the stream
// it subscribes to (the stream's definition compiled for this client), and the answer to
// plain HTTP requests at a stream URL.
#include "config/log.hpp"
#include "net/rest/params.hpp"
#include "net/rest/rest_api.hpp"
#include "net/rest/routes.hpp"

#include "storage/document/json.hpp"
#include "storage/document/pipeline.hpp"
#include "storage/store.hpp"

namespace rheo {

namespace {

http_response plain_request_error() {
  return error_response(400, "Change Stream requires WebSocket, no 'Upgrade' or "
                             "'Connection: Upgrade' header found");
}

} // namespace

http_response rest::plain_request_to_stream(const rest::request_context&) {
  return plain_request_error();
}

std::variant<stream_target, http_response, not_a_stream>
rest_api::resolve_stream(const http_request& req) const {
  try {
    auto t = parse_target(req.target);
    if (!t)
      return req.websocket_upgrade
                 ? error_response(400, "malformed request target")
                 : std::variant<stream_target, http_response, not_a_stream>(not_a_stream{});
    auto r = rest::match_mount(config_, *t);
    if (!r || r->rest.size() != 3 || r->rest[1] != "_streams") {
      if (!req.websocket_upgrade) return not_a_stream{};
      return error_response(404, "not a change stream: " + t->path);
    }
    if (!req.websocket_upgrade && !req.event_stream) return plain_request_error();
    // Subscribing is reading: the ACL sees a GET.
    rest::access who;
    http_headers ignored;
    if (auto denied =
            rest::check_access(security_, req, to_string(http_method::get), t->path, who, ignored))
      return *denied;
    // Browsers send the cookie with any page's WebSocket or EventSource: only the server's
    // own pages and the configured origins may use it (cross-site WebSocket hijacking).
    if (who.by_cookie && !req.origin.empty() && !same_origin(req) &&
        !origin_gets_credentials(req.origin, config_.cors_allowed_origins))
      return error_response(403, "origin '" + req.origin +
                                     "' may not open a stream with the session cookie (see "
                                     "cors_allowed_origins)");
    const std::string& coll = r->rest[0];
    if (!rest::valid_collection_name(coll))
      return error_response(400, "invalid collection name '" + coll + "'");
    stream_target target;
    if (who.user) {
      target.user = who.user->document;
      if (log::access_log_enabled()) target.user_id = who.user->id;
    }
    target.read_filter = who.read_filter();
    target.db = r->db;
    target.coll = coll;
    target.stream = r->rest[2];
    target.avars = rest::parse_avars(*t, config_.max_avars_bytes, metrics_);
    target.sse = !req.websocket_upgrade;
    // A reconnecting EventSource sends the last id it received: newer than the URL's.
    if (target.sse && !req.last_event_id.empty())
      target.resume_after = req.last_event_id;
    else if (auto token = t->last("resumeAfter"))
      target.resume_after = *token;
    if (target.resume_after) store_.check_resume_token(*target.resume_after);
    auto info = store_.collection(r->db, coll);
    if (!info) return error_response(404, "collection '" + coll + "' does not exist");
    if (const object* definition = find_stream(info->metadata, target.stream)) {
      target.definition = *definition;
      server_vars sv;
      sv.user = target.user;
      sv.read_filter = target.read_filter;
      target.stages = pipeline::compile(target.definition, target.avars, sv);
      target.key = r->db + '\0' + coll + '\0' + target.stream + '\0' + target.stages.key();
      if (target.sse) {
        http_response cors;
        add_cors_headers(req, config_.cors_allowed_origins, cors);
        target.response_headers = std::move(cors.headers);
      }
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
