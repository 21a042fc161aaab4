// The aggregation stages of change-stream pipelines: $match (a query over the event),
// $project, $addFields/$set, $unset and $replaceRoot/$replaceWith (reshaping it with
// expressions, see expression.hpp); aggregations run them too, as their per-document stages
// (aggregation.hpp). A stage is compiled once from its definition
// ({"$name": argument}, variables already resolved) and then applied to many documents.
//
// Thread-safety: a compiled stage is immutable and cheap to copy (copies share it);
// filter() and apply() may be called from several threads at once.
#pragma once

#include "storage/document/value.hpp"

#include <memory>
#include <string_view>

namespace rheo {

class matcher;

class stage {
public:
  /// Compiles `{"$name": argument}`; throws api_error(400) naming the stage or operator
  /// ("stage $lookup is not allowed", "$match: $expr is not supported", ...).
  static stage compile(const value& definition);
  /// True when rheo runs stages named `name`.
  static bool is_allowed(std::string_view name);

  /// A $match stage's filter; nullptr for a reshaping stage.
  const matcher* filter() const;
  /// The document a reshaping stage makes of `in` (not for $match). Throws pipeline_error
  /// (expression.hpp) when an expression fails on `in` or its output is nested deeper than
  /// max_bson_depth (value.hpp).
  object apply(const object& in) const;

  struct compiled; // stages.cpp

private:
  explicit stage(std::shared_ptr<const compiled> c) : compiled_(std::move(c)) {}
  std::shared_ptr<const compiled> compiled_;
};

} // namespace rheo
