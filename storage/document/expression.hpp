// Aggregation expressions (the subset rheo evaluates): literals, field paths ("$a.b",
// through arrays), $$ROOT, object and array literals, and the operators $eq $ne $gt $gte
// $lt $lte $cmp $and $or $not $cond $ifNull $concat $toString $add $subtract $multiply
// $divide $in $size ($literal quotes a value). Used by the stages of change-stream
// pipelines (pipeline.hpp) and aggregations (aggregation.hpp).
//
// Thread-safety: a compiled expression is immutable and cheap to copy (copies share the
// compiled tree); evaluate() may be called from several threads at once.
#pragma once

#include "storage/document/value.hpp"

#include <memory>
#include <optional>
#include <stdexcept>
#include <string_view>

namespace rheo {

/// An expression failed to evaluate on one document (e.g. $divide by a string): the caller
/// skips that document (a change-stream subscription skips the event and counts it).
class pipeline_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

class expression {
public:
  /// Compiles `v`; throws api_error(400) naming an unknown operator, a wrong argument count
  /// or an invalid field path.
  static expression compile(const value& v);
  /// The value of the expression over `root` ($$ROOT); nullopt when it is missing (a field
  /// path to an absent field). Throws pipeline_error when an operator gets the wrong type.
  std::optional<value> evaluate(const object& root) const;

  struct node; // the compiled tree (expression.cpp)

private:
  explicit expression(std::shared_ptr<const node> n) : node_(std::move(n)) {}
  std::shared_ptr<const node> node_;
};

/// a + b with $add's number types: int32 + int32 stays int32 when it fits, integers that
/// overflow widen (to int64, then double), a double operand makes a double. Precondition:
/// both are numbers. ($group's $sum and $avg add this way.)
value add_numbers(const value& a, const value& b);

/// True for the operators that run code ($where $function $accumulator): never allowed.
bool is_code_operator(std::string_view op);
/// True when `name` is an expression operator rheo evaluates (not counting $literal).
bool is_expression_operator(std::string_view name);
/// Throws api_error(400): "operator <name> is not allowed" for code operators, otherwise
/// "unknown expression operator <name>".
[[noreturn]] void reject_expression_operator(std::string_view name);

} // namespace rheo
