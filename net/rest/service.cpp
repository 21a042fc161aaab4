// The service's own resources: /_ping, /_metrics, /_cluster, /_backup, the web app's
// static files and the redirect that takes browsers to the app.
#include "net/rest/routes.hpp"

#include "net/cluster_view.hpp"
#include "net/metrics.hpp"
#include "net/static_files.hpp"
#include "storage/document/json.hpp"
#include "storage/store.hpp"

#include <chrono>
#include <ctime>
#include <filesystem>

namespace rheo::rest {

http_response get_ping(const request_context&) {
  return json_response(200, "{\"status\":\"ok\"}");
}

http_response get_metrics(const request_context& c) {
  access who;
  if (auto denied =
          check_access(c.sec, c.req, acl_method(c.req), c.target.path, who, c.extra_headers))
    return *denied;
  http_response r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = c.stats.render();
  if (c.cluster)
    r.body = with_label(r.body + c.cluster->metrics_text(), "node", c.cluster->node_name());
  return r;
}

http_response get_cluster(const request_context& c) {
  access who;
  if (auto denied =
          check_access(c.sec, c.req, acl_method(c.req), c.target.path, who, c.extra_headers))
    return *denied;
  if (!c.cluster)
    return error_response(404, "this node is not in a cluster (see --cluster-listen and "
                               "--cluster-join)");
  return json_response(
      200, c.cluster->status_json(c.stats.sessions_open.load(std::memory_order_relaxed),
                                  c.stats.subscriptions.load(std::memory_order_relaxed)));
}

namespace {

/// A backup file name a client may give: letters, digits, '.', '_', '-', not starting with
/// '.' (so no path and no hidden file).
bool valid_backup_name(const std::string& name) {
  if (name.empty() || name.size() > 200 || name[0] == '.') return false;
  for (char ch : name)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-'))
      return false;
  return true;
}

/// rheo-<UTC time to the millisecond>.backup
std::string default_backup_name() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  const std::size_t n = std::strftime(buf, sizeof buf, "rheo-%Y%m%dT%H%M%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, "%03dZ.backup", static_cast<int>(ms.count()));
  return buf;
}

} // namespace

http_response post_backup(const request_context& c) {
  access who;
  if (auto denied =
          check_access(c.sec, c.req, acl_method(c.req), c.target.path, who, c.extra_headers))
    return *denied;
  if (c.config.backup_dir.empty())
    return error_response(404,
                          "backups over HTTP are off: set backup_dir to the folder they go to");
  const std::string name = c.target.last("name").value_or(default_backup_name());
  if (!valid_backup_name(name))
    return error_response(400, "invalid backup name '" + name +
                                   "': letters, digits, '.', '_' and '-', not starting with '.'");
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(c.config.backup_dir, ec);
  if (ec) return error_response(500, "backup_dir " + c.config.backup_dir + ": " + ec.message());
  const std::string path = (fs::path(c.config.backup_dir) / name).string();
  if (fs::exists(path, ec)) return error_response(409, "backup " + name + " exists");
  const backup_result b = c.storage.backup(path);
  const object answer{{"file", value(b.file)},
                      {"name", value(name)},
                      {"position", value(b.position)},
                      {"bytes", value(static_cast<std::int64_t>(b.bytes))},
                      {"millis", value(b.millis)}};
  return json_response(201, to_json(value(answer)));
}

http_response redirect_to_app(const request_context& c) {
  http_response r = empty_response(302);
  r.headers.emplace_back("Location", c.config.static_prefix);
  return r;
}

http_response get_static_file(const request_context& c) {
  return serve_static(c.config.static_dir, c.config.static_prefix,
                      c.req.target.substr(0, c.req.target.find('?')));
}

} // namespace rheo::rest
