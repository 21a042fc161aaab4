// Change streams, /<coll>/_streams/<uri>, and live queries, /<coll>/_live: resolving a
// WebSocket handshake or SSE request to what it subscribes to (the stream's definition, or
// the query, compiled for this client), and the answer to plain HTTP requests there.
#include "config/log.hpp"
#include "net/metrics.hpp"
#include "net/presence_directory.hpp"
#include "net/rest/params.hpp"
#include "net/rest/rest_api.hpp"
#include "net/rest/routes.hpp"

#include "storage/document/definitions.hpp"
#include "storage/document/json.hpp"
#include "storage/document/live_window.hpp"
#include "storage/document/pipeline.hpp"
#include "storage/store.hpp"

namespace rheo {

namespace {

http_response plain_request_error() {
  return error_response(400, "Change Stream requires WebSocket, no 'Upgrade' or "
                             "'Connection: Upgrade' header found");
}

/// The live query the parameters of `t` ask for (section 10 of the contract): what they
/// mean for GET /<coll> page 1, with `avars` bound in the filter and the readFilter ANDed.
std::shared_ptr<const live_query_spec> live_spec_of(const parsed_target& t, const rest::access& who,
                                                    const stream_target& target,
                                                    const server_config& config, metrics& stats) {
  auto spec = std::make_shared<live_query_spec>();
  if (auto p = t.last("page"); p && *p != "1")
    throw_bad_request("a live query follows page 1: page must be 1 or absent");
  if (auto p = t.last("pagesize")) {
    const auto max = static_cast<std::int64_t>(config.live_query_max_window);
    const std::int64_t n = rest::parse_int_param(*p, "pagesize", 1, 1000000000);
    if (n > max) {
      stats.count_refusal(limit::live_window);
      throw_bad_request("pagesize " + *p + " is more than a live query's largest window, " +
                        std::to_string(max) + " (live_query_max_window)");
    }
    spec->size = static_cast<std::size_t>(n);
  } else {
    spec->size = std::min<std::size_t>(100, config.live_query_max_window);
  }
  server_vars sv;
  sv.user = target.user;
  const variable_resolver vars(target.avars, sv, date_time::now());
  array all;
  for (auto& f : t.all("filter")) {
    auto resolved = vars.resolve(value(rest::parse_object_param(f, "filter")));
    if (!resolved || !resolved->is_object()) throw_bad_request("invalid filter '" + f + "'");
    all.push_back(std::move(*resolved));
  }
  if (target.read_filter) all.emplace_back(*target.read_filter);
  if (all.size() == 1)
    spec->filter_doc = std::move(all[0].as_object());
  else if (!all.empty())
    spec->filter_doc = object{{"$and", value(std::move(all))}};
  spec->filter = matcher::compile(spec->filter_doc);
  spec->sort_doc = rest::sort_param(t);
  if (spec->sort_doc.empty()) spec->sort_doc = object{{"_id", value(-1)}}; // GET's order
  spec->order = sort_spec::parse(spec->sort_doc);
  spec->keys_doc = rest::keys_param(t);
  spec->keys = projection::compile(spec->keys_doc);
  if (who.rule && who.rule->project_response) {
    spec->shape_doc = *who.rule->project_response;
    spec->shape = projection::compile(*spec->shape_doc);
  }
  return spec;
}

} // namespace

http_response rest::plain_request_to_stream(const rest::request_context&) {
  return plain_request_error();
}

http_response rest::get_presence(const rest::request_context& c) {
  auto info = c.storage.collection(c.res.db, c.res.coll);
  if (!info) return error_response(404, "collection '" + c.res.coll + "' does not exist");
  const object* definition = find_stream(info->metadata, c.res.name);
  if (!definition)
    return error_response(404, "stream '" + c.res.name + "' does not exist on collection '" +
                                   c.res.coll + "'");
  if (!stream_flag(*definition, "presence"))
    return error_response(400, "stream '" + c.res.name + "' has no presence (\"presence\": true)");
  const std::string key = presence_directory::key(c.res.db, c.res.coll, c.res.name);
  std::shared_ptr<const std::string> list = c.cluster ? c.cluster->presence_list(key) : nullptr;
  if (!list && c.presence) list = c.presence->list(key);
  return json_response(200, list ? *list : "[]");
}

http_response rest::plain_request_to_live(const rest::request_context&) {
  return error_response(400, "a live query is a WebSocket (Upgrade: websocket) or Server-Sent "
                             "Events (GET with Accept: text/event-stream)");
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
    const bool live = r && r->rest.size() == 2 && r->rest[1] == "_live";
    if (!r || (!live && (r->rest.size() != 3 || r->rest[1] != "_streams"))) {
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
    target.avars = rest::parse_avars(*t, config_.max_avars_bytes, metrics_);
    target.sse = !req.websocket_upgrade;
    if (target.sse) {
      http_response cors;
      add_cors_headers(req, config_.cors_allowed_origins, cors);
      target.response_headers = std::move(cors.headers);
    }
    if (live) {
      // Parameters first: a bad one is 400 whether the collection exists or not, as for GET.
      target.live = live_spec_of(*t, who, target, config_, metrics_);
      if (!store_.collection(r->db, coll))
        return error_response(404, "collection '" + coll + "' does not exist");
      target.stream = "_live";
      target.key = r->db + '\0' + coll + "\0\0_live\0" + target.live->key();
      return target; // a resume token asks for a fresh init: not checked
    }
    target.stream = r->rest[2];
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
      // Presence (section 11): the client's object, at most 1 KiB, and its events.
      const bool presence = stream_flag(*definition, "presence");
      auto no_presence = [&] {
        return error_response(400, "stream '" + target.stream +
                                       "' has no presence (\"presence\": true in its definition)");
      };
      if (auto p = t->last("presence")) {
        if (!presence) return no_presence();
        if (p->size() > 1024)
          return error_response(400, "presence is " + std::to_string(p->size()) +
                                         " bytes, more than 1024");
        value v = parse_json(*p, "presence");
        if (!v.is_object()) return error_response(400, "presence must be a JSON object");
        target.presence_info = std::move(v.as_object());
        if (who.user) target.presence_user = who.user->id;
      }
      if (stream_flag(*definition, "broadcast")) {
        target.broadcast = true;
        // Broadcasting is writing to the collection: the ACL sees a POST of it.
        rest::access poster;
        http_headers unused;
        target.may_broadcast =
            !rest::check_access(security_, req, to_string(http_method::post),
                                r->prefix + percent_encode(coll), poster, unused);
      }
      if (auto e = t->last("presenceEvents")) {
        if (*e != "true" && *e != "false")
          return error_response(400, "presenceEvents must be true or false");
        if (*e == "true" && !presence) return no_presence();
        target.presence_events = *e == "true";
      }
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
