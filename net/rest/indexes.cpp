// A collection's secondary indexes (section 9 of the API contract): listing them
// (GET /<coll>/_indexes), creating one (PUT /<coll>/_indexes/<name> with
// {"keys":{...},"ops":{...}}) and dropping one (DELETE /<coll>/_indexes/<name>). The store
// checks names, keys and options and answers 400, 404 and 409 itself.
#include "net/rest/params.hpp"
#include "net/rest/routes.hpp"

#include "storage/document/json.hpp"
#include "storage/store.hpp"

namespace rheo::rest {

http_response list_indexes(const request_context& c) {
  array shown;
  for (auto& index : c.storage.list_indexes(c.res.db, c.res.coll)) {
    object one{{"_id", value(std::move(index.name))}, {"key", value(std::move(index.key))}};
    for (auto& option : index.options)
      one.push_back(std::move(option));
    shown.emplace_back(std::move(one));
  }
  return json_response(200, to_json(value(std::move(shown))));
}

http_response put_index(const request_context& c) {
  object body = body_object(c.req, false);
  const value* keys = find_field(body, "keys");
  if (!keys || !keys->is_object())
    throw_bad_request("an index needs a 'keys' object: {\"keys\":{\"field\":1},\"ops\":{...}}");
  object ops;
  if (const value* given = find_field(body, "ops")) {
    if (!given->is_object()) throw_bad_request("index 'ops' must be a JSON object");
    ops = given->as_object();
    erase_field(ops, "name"); // the URL names the index
  }
  c.storage.create_index(c.res.db, c.res.coll, c.res.name, keys->as_object(), ops);
  return empty_response(201);
}

http_response delete_index(const request_context& c) {
  c.storage.drop_index(c.res.db, c.res.coll, c.res.name);
  return empty_response(204);
}

} // namespace rheo::rest
