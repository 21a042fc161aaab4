// Reading what a REST request carries, for the handlers: collection names, document ids
// in URLs (and back), the If-Match ETag, JSON query parameters and JSON bodies. Private
// to rheo_rest. Malformed input throws api_error(400) unless said otherwise.
//
// Thread-safety: free functions without shared state; safe from any thread.
#pragma once

#include "net/http.hpp"
#include "storage/document/value.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace rheo {
struct metrics;
}

namespace rheo::rest {

/// A name a collection may have (not "_...", not "system.", letters, digits, "_.-").
bool valid_collection_name(std::string_view name);

/// The document id `text` from a URL, typed by the id_type parameter (STRING, OID or
/// NUMBER; without one, an ObjectId when it looks like one, else a string).
value parse_id(const std::string& text, const std::optional<std::string>& id_type);
/// The URL form of a document id, with the id_type parameter parse_id() needs to read it
/// back, for Location headers.
std::string id_url(const value& id);

/// The ETag of the If-Match header without quotes and W/, if any.
std::optional<std::string> if_match_of(const http_request& req);

/// Query parameter `name` (its `text`) as a JSON object.
object parse_object_param(const std::string& text, const char* name);
/// The integer `text` of parameter `name` within [min, max]; 400 otherwise.
std::int64_t parse_int_param(const std::string& text, const char* name, std::int64_t min,
                             std::int64_t max);
/// The `filter` parameters (repeatable, ANDed) and an ACL readFilter, as one filter.
object combined_filter(const parsed_target& t, std::optional<object> read_filter);
/// The client's variable bindings (`avars`, a JSON object whose keys do not start with
/// '$'); {} when absent. Throws api_error(400), also when longer than `max_bytes` (the
/// refusal counted on `stats`).
object parse_avars(const parsed_target& t, std::size_t max_bytes, metrics& stats);
/// The `sort` parameters (repeatable): "field", "-field", "+field" or a JSON object, as one
/// sort document; _id is appended to break ties (so pages neither overlap nor skip). {} when
/// absent.
object sort_param(const parsed_target& t);
/// The `keys` parameters (repeatable) as one projection document.
object keys_param(const parsed_target& t);

/// The body as a JSON object; `empty_ok` turns an empty body into {}.
object body_object(const http_request& req, bool empty_ok);

} // namespace rheo::rest
