// The embedded store's query planner: picks the index that answers a filter and a sort,
// and the key ranges to scan. Internal to storage/sqlite.
//
// What an index is used for (a plan is always a superset of the matches: every document
// it yields is checked against the whole filter again, so results never depend on it):
// - equality ({a: 5}, {a: {$eq: 5}}) on a prefix of its fields, then $in on the next one,
//   then a range ($gt $gte $lt $lte, bracketed to the bound's type as MongoDB compares) on
//   the next; conditions found at the top level of the filter or inside $and;
// - the sort, when the fields after the equality prefix are the sort's fields in order,
//   all in the index's directions (forward scan) or all reversed (backward scan), and the
//   sort's _id tie-breaker matches the order of equal keys (indexes.hpp). Then the scan
//   stops after skip + limit matches.
// Not used: a multikey index for a sort or for both ends of a range; a sparse index unless
// a condition excludes missing fields; a partial index unless the filter contains its
// partialFilterExpression's conditions literally; conditions on arrays or regular
// expressions. Without a fitting index, the documents are scanned in _id order.
//
// Thread-safety: pure functions.
#pragma once

#include "storage/sqlite/indexes.hpp"

#include <string>
#include <utility>
#include <vector>

namespace rheo::sqlite {

/// Entry keys in [lo, hi).
struct key_range {
  std::string lo;
  std::string hi;
};

struct plan {
  const index_def* index = nullptr; // id_index() or one of the candidates
  std::vector<key_range> ranges;    // ascending and disjoint
  bool backward = false;
  bool provides_sort = false; // documents come in the order of the sort asked for
  std::string bounds;         // for explain: "timestamp: [..], backward"
};

/// The plan for `filter` sorted by `sort` (the complete order: it ends with _id) over the
/// ready indexes `candidates`.
plan choose_plan(const object& filter, const std::vector<std::pair<std::string, int>>& sort,
                 const std::vector<index_def>& candidates);

} // namespace rheo::sqlite
