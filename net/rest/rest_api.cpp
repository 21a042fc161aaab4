// Locating a request: which resource it addresses (by path and mount), who is asking,
// and the handler the route table names for it.
#include "net/rest/rest_api.hpp"

#include "config/log.hpp"
#include "net/rest/access.hpp"
#include "net/rest/params.hpp"
#include "net/rest/routes.hpp"

#include "storage/store.hpp"

#include <cctype>

namespace rheo {

namespace rest {

namespace {

bool valid_db_name(std::string_view name) {
  if (name.empty() || name.size() > 63 || name[0] == '_') return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

/// A resource of the service itself, outside the mounts: just its kind.
resource service_resource(resource_kind kind) {
  resource r;
  r.kind = kind;
  return r;
}

/// The data resource `t` addresses under mount `m`, or the error response.
std::variant<resource, http_response> resolve_data(const parsed_target& t, const mount_match& m) {
  resource r;
  r.db = m.db;
  if (m.rest.empty()) {
    r.kind = resource_kind::database;
    return r;
  }
  r.coll = m.rest[0];
  if (!valid_collection_name(r.coll))
    return error_response(400, "invalid collection name '" + r.coll + "'");
  r.coll_url = m.prefix + percent_encode(r.coll);
  if (m.rest.size() == 1) {
    r.kind = resource_kind::collection;
    return r;
  }
  const std::string& second = m.rest[1];
  if (second == "_size" && m.rest.size() == 2) {
    r.kind = resource_kind::size;
  } else if (second == "_meta" && m.rest.size() == 2) {
    r.kind = resource_kind::meta;
  } else if (second == "_indexes") {
    if (m.rest.size() > 3) return error_response(404, "no resource at " + t.path);
    r.kind = m.rest.size() == 2 ? resource_kind::indexes : resource_kind::index;
    if (m.rest.size() == 3) r.name = m.rest[2];
  } else if (second == "_streams") {
    if (m.rest.size() == 4 && m.rest[3] == "_presence") {
      r.kind = resource_kind::presence;
      r.name = m.rest[2];
      return r;
    }
    if (m.rest.size() != 3) return error_response(404, "no such stream");
    r.kind = resource_kind::stream;
  } else if (second == "_live" && m.rest.size() == 2) {
    r.kind = resource_kind::live;
  } else if (second == "_aggrs") {
    if (m.rest.size() != 3) return error_response(404, "no such aggregation");
    r.kind = resource_kind::aggregation;
    r.name = m.rest[2];
  } else if (second == "*" && m.rest.size() == 2) {
    r.kind = resource_kind::bulk;
  } else if (!second.empty() && second[0] == '_') {
    return error_response(404, "unknown resource '" + second + "'");
  } else if (m.rest.size() != 2) {
    return error_response(404, "no resource at " + t.path);
  } else {
    r.kind = resource_kind::document;
    r.id = parse_id(second, t.last("id_type"));
    r.id_text = second;
  }
  return r;
}

/// The resource `req` addresses, or the error response. Data resources are authorized
/// (filling `who`) before they are located: the ACL answers before any name is checked.
std::variant<resource, http_response> locate(const server_config& config, security& sec,
                                             const http_request& req, const parsed_target& t,
                                             access& who, http_headers& extra_headers) {
  if (t.path == "/_ping") return service_resource(resource_kind::ping);
  if (t.path == "/_metrics") return service_resource(resource_kind::metrics);
  if (t.path == "/_cluster") return service_resource(resource_kind::cluster);
  if (t.path == "/_backup") return service_resource(resource_kind::backup);
  // The Auth-Token-Location of a login; its handler authenticates (no ACL rule applies).
  if (t.segments.size() == 2 && t.segments[0] == "tokens" && sec.issues_tokens()) {
    resource r = service_resource(resource_kind::token);
    r.name = t.segments[1];
    return r;
  }
  const std::string& sp = config.static_prefix;
  const bool page_load = (req.method == http_method::get || req.method == http_method::head) &&
                         req.accept.find("text/html") != std::string::npos;
  // "/chat" is a data URL (collection "chat") except for browsers, which go to the app.
  if (page_load && t.path + "/" == sp) return service_resource(resource_kind::app);
  if (t.path.compare(0, sp.size(), sp) == 0) return service_resource(resource_kind::static_files);
  if (page_load && t.path == "/") return service_resource(resource_kind::app);
  if (auto denied = check_access(sec, req, acl_method(req), t.path, who, extra_headers))
    return *denied;
  auto m = match_mount(config, t);
  if (!m) return error_response(404, "no mount serves " + t.path);
  return resolve_data(t, *m);
}

} // namespace

std::optional<mount_match> match_mount(const server_config& config, const parsed_target& t) {
  // Longest matching prefix wins.
  const mount* best = nullptr;
  for (auto& m : config.mounts) {
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
  mount_match r;
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
  r.rest = std::move(rest);
  return r;
}

} // namespace rest

rest_api::rest_api(const server_config& config, store& db, security& sec, metrics& stats)
    : config_(config), store_(db), security_(sec), metrics_(stats) {}

void rest_api::set_cluster(const cluster_view* cluster) {
  cluster_ = cluster;
}

void rest_api::set_presence(const presence_directory* presence) {
  presence_ = presence;
}

bool rest_api::is_blocking(const http_request& req) const {
  // On an edge whose store calls go to the core, any request may wait on the network.
  const cluster_view* cluster = cluster_.load();
  if (cluster && (cluster->forwards_store_calls() || req.target.compare(0, 9, "/_cluster") == 0 ||
                  req.target.find("/_presence") != std::string::npos))
    return req.method != http_method::options;
  // Writes wait for a commit; an aggregation may read a whole collection; an argon2id
  // password check takes tens of milliseconds (bounded by hash_slots, which may wait).
  if (req.method == http_method::get || req.method == http_method::head)
    return req.target.find("/_aggrs/") != std::string::npos ||
           security_.needs_password_check(req.authorization);
  return req.method != http_method::options;
}

http_response rest_api::handle(const http_request& req) const {
  http_response res;
  // Who the request is, and the headers its login issued (a token, its cookie): on the
  // answer whatever it is, errors included, so that a client keeps its login.
  rest::access who;
  http_headers extra;
  try {
    auto t = parse_target(req.target);
    if (!t) {
      res = error_response(400, "malformed request target");
    } else if (req.method == http_method::options) {
      res = preflight_response(req);
    } else {
      auto located = rest::locate(config_, security_, req, *t, who, extra);
      if (auto* error = std::get_if<http_response>(&located)) {
        res = std::move(*error);
      } else {
        const auto& where = std::get<rest::resource>(located);
        rest::request_context c{req,
                                *t,
                                where,
                                who,
                                config_,
                                store_,
                                security_,
                                metrics_,
                                cluster_.load(),
                                presence_.load(),
                                extra};
        res = rest::find_handler(where.kind, req.method)(c);
      }
    }
  } catch (const etag_mismatch& e) {
    // The current ETag, so that the client can retry with it (as RESTHeart answers).
    res = error_response(e.status(), e.what());
    if (e.current()) res.headers.emplace_back("ETag", e.current()->hex());
  } catch (const api_error& e) {
    res = error_response(e.status(), e.what());
  } catch (const std::exception& e) {
    res = error_response(500, std::string("internal error: ") + e.what());
  }
  for (auto& h : extra)
    res.headers.push_back(std::move(h));
  // A login cookie sent over HTTPS (directly, or as a trusted proxy says) is never sent back
  // over plain HTTP.
  if (req.scheme == "https")
    for (auto& [name, value] : res.headers)
      if (name == "Set-Cookie") value += "; Secure";
  if (who.user && res.user.empty() && log::access_log_enabled()) res.user = who.user->id;
  add_cors_headers(req, config_.cors_allowed_origins, res);
  return res;
}

} // namespace rheo
