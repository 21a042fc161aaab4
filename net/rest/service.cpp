// The service's own resources: /_ping, /_metrics, the web app's static files and the
// redirect that takes browsers to the app.
#include "net/rest/routes.hpp"

#include "net/cluster_view.hpp"
#include "net/metrics.hpp"
#include "net/static_files.hpp"

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
