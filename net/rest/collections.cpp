// A database's collection names and a collection as a resource of its own: creating it
// with its metadata (PUT), changing the metadata (PATCH), dropping it (DELETE) and
// reading the metadata (GET /<coll>/_meta). The stream and aggregation definitions in the
// metadata are checked when written (400 naming the stream or aggregation at fault).
#include "net/metrics.hpp"
#include "net/rest/params.hpp"
#include "net/rest/routes.hpp"

#include "storage/document/aggregation.hpp"
#include "storage/document/json.hpp"
#include "storage/document/pipeline.hpp"
#include "storage/store.hpp"

namespace rheo::rest {

namespace {

/// The metadata document of a PUT or PATCH body: without _id and _etag, and no key may
/// start with '$'.
object metadata_of(object body) {
  erase_field(body, "_id");
  erase_field(body, "_etag");
  for (auto& field : body) {
    const std::string& k = field.first;
    if (!k.empty() && k[0] == '$') throw_bad_request("metadata keys cannot start with '$': " + k);
  }
  return body;
}

/// `res` with the collection's current ETag, when it exists.
http_response with_etag(http_response res, const request_context& c) {
  if (auto info = c.storage.collection(c.res.db, c.res.coll))
    res.headers.emplace_back("ETag", info->etag.hex());
  return res;
}

/// Checks the limits on `meta`'s streams (400 past max_streams_per_collection or
/// max_stages_per_stream); `meta` has passed validate_streams().
void check_stream_limits(const object& meta, const request_context& c) {
  auto* streams = find_field(meta, "streams");
  if (!streams || !streams->is_array()) return;
  const array& list = streams->as_array();
  if (list.size() > c.config.max_streams_per_collection) {
    c.stats.count_refusal(limit::streams_per_collection);
    throw_bad_request("a collection may have at most " +
                      std::to_string(c.config.max_streams_per_collection) + " streams, not " +
                      std::to_string(list.size()) + " (max_streams_per_collection)");
  }
  for (auto& s : list) {
    if (!s.is_object()) continue;
    auto* stages = find_field(s.as_object(), "stages");
    if (!stages || !stages->is_array()) continue;
    if (stages->as_array().size() > c.config.max_stages_per_stream) {
      c.stats.count_refusal(limit::stages_per_stream);
      auto* uri = find_field(s.as_object(), "uri");
      throw_bad_request(
          "stream '" + (uri && uri->is_string() ? uri->as_string() : "") + "' has " +
          std::to_string(stages->as_array().size()) + " stages, more than the limit of " +
          std::to_string(c.config.max_stages_per_stream) + " (max_stages_per_stream)");
    }
  }
}

} // namespace

http_response get_collection_names(const request_context& c) {
  std::string out = "[";
  bool first = true;
  for (auto& name : c.storage.collection_names(c.res.db)) {
    if (!first) out += ',';
    first = false;
    append_json(out, value(name));
  }
  out += ']';
  return json_response(200, std::move(out));
}

http_response put_collection(const request_context& c) {
  object meta = metadata_of(body_object(c.req, true));
  validate_streams(meta);
  check_stream_limits(meta, c);
  validate_aggrs(meta);
  bool created =
      c.storage.put_collection(c.res.db, c.res.coll, std::move(meta), if_match_of(c.req));
  http_response res = with_etag(empty_response(created ? 201 : 200), c);
  if (created) res.headers.emplace_back("Location", c.res.coll_url);
  return res;
}

http_response patch_collection(const request_context& c) {
  object meta = metadata_of(body_object(c.req, false));
  if (auto info = c.storage.collection(c.res.db, c.res.coll)) {
    object merged = info->metadata;
    for (auto& [k, v] : meta)
      set_field(merged, k, v);
    validate_streams(merged);
    check_stream_limits(merged, c);
    validate_aggrs(merged);
  }
  c.storage.patch_collection(c.res.db, c.res.coll, std::move(meta), if_match_of(c.req));
  return with_etag(empty_response(200), c);
}

http_response delete_collection(const request_context& c) {
  auto etag = if_match_of(c.req);
  if (!c.storage.collection(c.res.db, c.res.coll))
    return error_response(404, "collection '" + c.res.coll + "' does not exist");
  if (!etag)
    return error_response(409, "the collection's ETag must be provided using the "
                               "'If-Match' header");
  c.storage.drop_collection(c.res.db, c.res.coll, *etag);
  return empty_response(204);
}

http_response get_metadata(const request_context& c) {
  auto info = c.storage.collection(c.res.db, c.res.coll);
  if (!info) return error_response(404, "collection '" + c.res.coll + "' does not exist");
  object meta{{"_id", value(c.res.coll)}};
  for (auto& kv : info->metadata)
    meta.push_back(kv);
  meta.emplace_back("_etag", value(info->etag));
  http_response res = json_response(200, to_json(value(std::move(meta))));
  res.headers.emplace_back("ETag", info->etag.hex());
  return res;
}

} // namespace rheo::rest
