// Update operators for PATCH (and upserts), and the normalisation of document bodies
// for POST and PUT (section 3 of the API contract).
//
// Thread-safety: compiled objects are immutable after construction and may be used
// from several threads at once.
#pragma once

#include "storage/document/value.hpp"

#include <string>
#include <vector>

namespace rheo {

/// What an update changed, as MongoDB's change event `updateDescription` reports it:
/// top-level or dotted paths set, and paths removed. Paths whose value did not change are
/// left out; elements appended to an existing array are reported as "path.index", any other
/// array change as the whole array at its path.
struct update_description {
  object updated_fields;
  std::vector<std::string> removed_fields;
};

/// A compiled update: $set $unset $inc $mul $min $max $rename $push (with $each,
/// $position, $slice, $sort) $addToSet (with $each) $pull $pop $currentDate, dotted
/// paths (creating intermediate objects). Plain fields in the body are treated as $set.
/// Unknown operators, conflicting paths, or updating `_id` are api_error(400) naming them.
class update_spec {
public:
  static update_spec parse(const object& body);
  /// Applies to `doc` in place. Type errors ($inc on a string, $push on a non-array)
  /// are api_error(400) naming the field, and so is a result nested deeper than
  /// max_nesting_depth (value.hpp); `doc` is then unchanged. Fills `desc` when given (paths as
  /// dotted strings, values as they are after the update).
  void apply(object& doc, update_description* desc = nullptr) const;

  struct op {
    std::string name; // "$set", ...
    std::string path;
    value arg;
  };
  /// The validated operations in body order (plain fields as $set), e.g. to send the
  /// update to MongoDB as {name: {path: arg}}.
  const std::vector<op>& ops() const { return ops_; }
  /// The update whose ops() are `ops` (e.g. as another node sent them), validated as
  /// parse() validates a body: the same api_error(400) for a bad operation or conflict.
  static update_spec from_ops(std::vector<op> ops);

private:
  std::vector<op> ops_;
};

/// Normalises a POST/PUT body: keys with dots create nested fields ({"a.b":1} ->
/// {"a":{"b":1}}); `$currentDate` is applied (and removed); any other top-level
/// `$`-operator is api_error(400), and so is a result nested deeper than max_nesting_depth.
/// The body's values are moved into the result (a plain body is returned as it is).
object normalize_document_body(object body);

/// Removes a replacement body's `_id`, which must equal `id` (api_error 400 otherwise):
/// a document's `_id` cannot change.
void strip_matching_id(object& doc, const value& id);

} // namespace rheo
