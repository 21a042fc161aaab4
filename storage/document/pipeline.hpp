// Change-stream pipelines (section 4 of the API contract): the stream definitions stored
// in collection metadata, their variables ($var, $ifvar, @user, @now; see definitions.hpp)
// and the aggregation stages rheo runs per subscription on change events ($match $project
// $addFields $set $unset $replaceRoot $replaceWith, with a subset of expression operators).
//
// Thread-safety: a compiled pipeline is immutable and cheap to copy (it shares its
// compiled stages); run() may be called from several threads at once.
#pragma once

#include "storage/document/definitions.hpp"
#include "storage/document/expression.hpp"
#include "storage/document/value.hpp"

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace rheo {

/// Checks a collection metadata document's `streams` (absent is fine): an array of
/// {uri: non-empty string unique within the array, stages: array of stages}. Stage names
/// allowed: $match $project $addFields $set $unset $replaceRoot $replaceWith; operators must
/// be known (query operators in $match, expression operators elsewhere); $where, $function,
/// $accumulator and $expr are rejected. Keys may be escaped ("_$match") or literal.
/// Variables may stand for any stage or value: a stage free of $var/$ifvar is compiled
/// exactly as a subscription would; one with variables gets its names and operators checked.
/// Throws api_error(400) naming the stream and the stage or operator, e.g.
/// "stream 'all': stage $lookup is not allowed".
void validate_streams(const object& metadata);

/// The definition of stream `uri` in collection metadata (`streams`), or nullptr.
const object* find_stream(const object& metadata, std::string_view uri);
/// Whether stream `definition` sets `flag` ("presence", "broadcast") to true.
bool stream_flag(const object& definition, std::string_view flag);

/// A stream definition resolved against one client's variables: $var/$ifvar substituted,
/// @user and @now resolved, stages compiled once. "@now" is fixed when the subscription is
/// compiled (it is part of key(), so two sessions share a subscription only when their
/// pipelines were resolved to the same instant or do not use @now).
class pipeline {
public:
  /// The empty pipeline: passes every event unchanged.
  pipeline();

  /// `definition` is {"uri":..., "stages":[...]} as stored (escaped or literal keys).
  /// Throws api_error(400): "variable <n> not bound" for an unbound $var without default,
  /// or naming the stage or operator that does not compile.
  static pipeline compile(const object& definition, const object& avars, const server_vars& sv);

  /// Runs the stages on one change event (as change_event::to_object()). Returns nullopt
  /// when a stage filtered the event out. Throws pipeline_error when a stage fails.
  std::optional<object> run(const object& event) const;

  /// The same without copying: returns nullptr when filtered out, `event` itself when no
  /// stage reshaped it (e.g. $match only), otherwise `scratch`, which holds the output.
  const object* run(const object& event, object& scratch) const;

  /// A canonical text of the resolved stages: equal for equal resolved pipelines.
  const std::string& key() const;

  /// True when every event passes unchanged (no stages, or only empty $match stages).
  bool passes_everything() const;

private:
  struct state;
  explicit pipeline(std::shared_ptr<const state> s) : state_(std::move(s)) {}
  std::shared_ptr<const state> state_;
};

} // namespace rheo
