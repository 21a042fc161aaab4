// The query engine: MongoDB query semantics for filters, sort specifications and
// projections, shared by the REST API, both stores and the stream stages.
//
// Thread-safety: compiled objects are immutable after construction and may be used
// from several threads at once.
#pragma once

#include "storage/document/value.hpp"

#include <memory>
#include <string>
#include <vector>

namespace rheo {

/// A compiled MongoDB filter. Supported: implicit equality, $eq $ne $gt $gte $lt $lte $in
/// $nin $and $or $nor $not $exists $type $regex (+$options) $size $all $elemMatch, dotted
/// paths, arrays matched element-wise and by whole value, BSON type ordering (comparisons
/// only between values of the same canonical type, as MongoDB does).
/// $where, $function, $accumulator and any unknown $operator are rejected by compile()
/// with api_error(400) naming the operator, e.g. "unknown operator $foo" or
/// "operator $where is not allowed".
class matcher {
public:
  matcher(); // matches everything
  static matcher compile(const object& filter);
  bool matches(const object& doc) const;
  /// True when the filter is empty.
  bool matches_all() const;
  /// When the filter is exactly {_id: <literal>} (or {_id: {$eq: <literal>}}), that literal.
  const value* id_equality() const;

  struct node;

private:
  std::shared_ptr<const node> root_;
  std::shared_ptr<const value> id_eq_;
};

/// A sort specification: ordered (path, direction) pairs, direction 1 or -1.
/// Missing fields sort as null; arrays sort by their smallest (asc) / largest (desc)
/// element, as MongoDB does.
class sort_spec {
public:
  sort_spec() = default;
  /// From {field: 1|-1, ...}; anything else is api_error(400) naming the field.
  static sort_spec parse(const object& spec);
  bool empty() const { return keys_.empty(); }
  const std::vector<std::pair<std::string, int>>& keys() const { return keys_; }
  /// <0 when a sorts before b.
  int compare(const object& a, const object& b) const;

private:
  std::vector<std::pair<std::string, int>> keys_;
};

/// A projection: inclusion ({a:1, "b.c":1}) or exclusion ({a:0}); `_id` is included
/// unless excluded explicitly and may be excluded in an inclusion projection. Mixing
/// inclusion and exclusion (other than _id) is api_error(400).
class projection {
public:
  projection() = default; // identity
  static projection compile(const object& spec);
  bool empty() const { return fields_.empty() && !exclude_id_; }
  object apply(const object& doc) const;

private:
  std::vector<std::string> fields_;
  bool inclusion_ = true;
  bool exclude_id_ = false;
};

} // namespace rheo
