// The $group stage of aggregations (aggregation.hpp): {_id: <expression>, <field>:
// {<accumulator>: <expression>}, ...} with the accumulators $sum $avg $min $max $first $last
// $push $addToSet and $count ({"$count": {}}), computed as MongoDB does:
// - documents group by the value of _id under compare_values equality (1, 1L and 1.0 are one
//   group; the first value seen is the output _id); a missing _id groups as null;
// - $sum adds the numbers and ignores everything else (arrays included), 0 when there are
//   none; types widen as with $add (int32, then int64, then double); $count is {$sum: 1};
// - $avg is the mean of the numbers as a double, null when there are none;
// - $min/$max compare in BSON order and ignore missing and null values, null when all are;
// - $first/$last take the value of the first/last document of the group (null if missing);
// - $push collects the values, $addToSet the distinct ones (compare_values equality), both in
//   the order first seen and skipping missing values (null is a value).
// Output: one document per group, {_id, <fields in the order declared>}, groups in the order
// their first document arrived (MongoDB leaves the order unspecified; this one is
// deterministic).
//
// Thread-safety: a compiled group_stage is immutable and cheap to copy; concurrent runs may
// share it. A group_table is the state of one run, used by one thread at a time.
#pragma once

#include "storage/document/value.hpp"

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

namespace rheo {

/// True when `name` is a $group accumulator rheo computes ($sum ... $count).
bool is_accumulator(std::string_view name);

class group_stage {
public:
  /// Compiles the argument of $group; throws api_error(400) naming the problem, e.g.
  /// "$group needs an _id", "$group: unknown accumulator $median", "operator $accumulator is
  /// not allowed", "$group: field 'a.b' must not contain '.'".
  static group_stage compile(const value& argument);

  struct compiled; // group.cpp

private:
  explicit group_stage(std::shared_ptr<const compiled> c) : compiled_(std::move(c)) {}
  std::shared_ptr<const compiled> compiled_;
  friend class group_table;
};

/// The groups of one run of a $group stage.
class group_table {
public:
  explicit group_table(const group_stage& stage);
  ~group_table();
  group_table(group_table&&) noexcept;
  group_table& operator=(group_table&&) noexcept;

  /// Adds `doc` to its group. Throws pipeline_error (expression.hpp) when an expression
  /// fails on it.
  void add(const object& doc);
  /// What the table holds: its groups plus the values collected by $push and $addToSet
  /// (the measure the memory bound of an aggregation applies to).
  std::size_t held() const;
  /// The output documents, groups in first-seen order; leaves the table empty.
  std::vector<object> take();

private:
  struct state; // group.cpp
  std::unique_ptr<state> state_;
};

} // namespace rheo
