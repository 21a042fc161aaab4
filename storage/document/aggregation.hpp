// Aggregations (section 9 of the API contract, GET /<coll>/_aggrs/<uri>, served by
// net/rest/aggregations.cpp; metadata writes check them with validate_aggrs): the definitions
// stored in collection metadata (`aggrs`), their variables (those of streams, see
// definitions.hpp, plus the paging variables @page @pagesize @skip @limit) and the stages
// rheo runs over a collection's documents. Stages:
// - the per-document stages of streams (stages.hpp): $match $project $addFields $set $unset
//   $replaceRoot $replaceWith;
// - $sort {field: 1|-1, ...}: the order of sort_spec (query.hpp: missing sorts as null, an
//   array by its smallest element ascending, largest descending), stable (documents with
//   equal keys keep their input order). A $sort followed by a $limit (with $skip stages
//   between them or not) keeps only the documents that can reach the limit, as MongoDB
//   coalesces the two, so it holds no more than that many;
// - $limit n (a positive integer) and $skip n (a non-negative one); integral doubles count
//   as integers;
// - $count "<name>" (not empty, not starting with '$', without '.'): one document
//   {name: <count>}, none when no document reaches it (as MongoDB);
// - $unwind "$a.b" or {path: "$a.b", includeArrayIndex: "<name>",
//   preserveNullAndEmptyArrays: <bool>}: one document per element of the array at the path
//   (through objects only, as MongoDB), the element in its place; a value that is not an
//   array counts as a one-element array; null, missing and [] give no document, unless
//   preserved: then the document passes (an empty array's field removed). The index field
//   holds the element's position as int64, null for a preserved document or a non-array;
// - $group: see group.hpp.
// Not supported (400 at declaration): $lookup $out $merge $where $function $accumulator and
// every other stage, and $sort by {$meta: ...}.
//
// Memory: a $sort buffering, or a $group holding (groups plus the values $push/$addToSet
// collect), more than aggregation_limits::max_documents documents fails the run with
// api_error(400). The result itself is not bounded here.
//
// Thread-safety: a compiled aggregation is immutable and cheap to copy (copies share it);
// run() and run_after_pushdown() may be called from several threads at once, each run keeps
// its own state.
#pragma once

#include "storage/document/definitions.hpp"
#include "storage/document/value.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace rheo {

/// Checks a collection metadata document's `aggrs` (absent is fine) as validate_streams
/// checks `streams`: an array of {uri, stages, optional "type": "pipeline"}, uris unique,
/// keys escaped or literal, $var/$ifvar anywhere. Throws api_error(400) naming the
/// aggregation and the stage or operator, e.g. "aggregation 'by_user': stage $lookup is not
/// allowed", "aggregation 'top': $limit needs a positive integer, got 0".
void validate_aggrs(const object& metadata);

/// The definition of aggregation `uri` in collection metadata (`aggrs`), or nullptr.
const object* find_aggr(const object& metadata, std::string_view uri);

/// The request's paging, bound to "@page" (page), "@pagesize" (pagesize), "@skip"
/// ((page - 1) * pagesize) and "@limit" (pagesize): string values in stages equal to one of
/// these names are replaced by the number (RESTHeart's paging of aggregations).
struct aggregation_paging {
  std::int64_t page = 1;
  std::int64_t pagesize = 100;
};

/// Bounds of one run.
struct aggregation_limits {
  /// The most documents a $sort may buffer or a $group may hold.
  std::size_t max_documents = 100000;
};

/// The input of a run: each call returns the next document, or nullptr at the end. The
/// document need only stay valid until the next call; the run copies what it keeps. A run
/// stops calling once no further document can change its result (a $limit is reached).
using document_source = std::function<const object*()>;

/// The leading stages a store may apply itself (e.g. with an index), in this order: filter,
/// then sort, then skip, then limit.
struct aggregation_pushdown {
  /// The readFilter and the leading $match stages as one filter ({"$and": [...]} when
  /// several), variables resolved; {} when there are none.
  object filter;
  /// The $sort right after them (or first), as written; {} when there is none. When a store
  /// sorts, documents with equal keys must come in their natural order (as a stable sort
  /// of the natural order would leave them), for the results to be the same.
  object sort;
  /// The $skip and $limit stages right after those, folded into one skip, then one limit.
  std::int64_t skip = 0;
  std::optional<std::int64_t> limit;
};

/// An aggregation definition resolved against one request's variables: $var/$ifvar
/// substituted, @user, @now and the paging variables resolved, the readFilter prepended as
/// a $match, stages compiled once.
class aggregation {
public:
  /// `definition` is {"uri":..., "stages":[...]} as stored (escaped or literal keys).
  /// Throws api_error(400): "variable <n> not bound" for an unbound $var without default,
  /// or naming the stage or operator that does not compile.
  static aggregation compile(const object& definition, const object& avars, const server_vars& sv,
                             const aggregation_paging& paging = {});

  /// The aggregation of stages() `resolved` as another node compiled them: the stages are
  /// compiled as they are (no variables substituted, no keys unescaped, no readFilter
  /// added, since compile() did all of that), so it runs exactly as the original.
  static aggregation from_resolved(array resolved);

  /// Runs every stage over `input` (the collection's documents in natural order) and
  /// returns the output documents. Throws api_error(400) when an expression fails on a
  /// document (the message names the operator, e.g. "$divide needs numbers, got string") or
  /// when a $sort or $group exceeds `limits` ("$sort exceeded the limit of 100000 documents
  /// (aggregation_max_documents)").
  std::vector<object> run(const document_source& input,
                          const aggregation_limits& limits = {}) const;
  std::vector<object> run(const std::vector<object>& input,
                          const aggregation_limits& limits = {}) const;

  /// Every stage resolved (variables bound, readFilter first), for a backend that runs the
  /// pipeline itself (MongoDB's aggregate).
  const array& stages() const;
  /// The leading stages a store may apply itself.
  const aggregation_pushdown& pushdown() const;
  /// Runs the stages after those pushdown() describes, over `input` that the store has
  /// already filtered, sorted, skipped and limited so: the output is what run() gives over
  /// the whole input in natural order. Throws as run() does.
  std::vector<object> run_after_pushdown(const document_source& input,
                                         const aggregation_limits& limits = {}) const;

  struct state; // aggregation.cpp

private:
  explicit aggregation(std::shared_ptr<const state> s) : state_(std::move(s)) {}
  std::shared_ptr<const state> state_;
};

} // namespace rheo
