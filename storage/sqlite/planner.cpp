#include "storage/sqlite/planner.hpp"

#include <algorithm>
#include <map>
#include <optional>

namespace rheo::sqlite {

namespace {

/// What the filter says about one field path.
struct conditions {
  std::optional<value> eq;
  std::optional<array> in;
  std::optional<value> lo; // $gt / $gte (inclusive here: the filter is checked again)
  std::optional<value> hi; // $lt / $lte
};

bool is_operator_object(const value& v) {
  auto* o = v.get_if<object>();
  return o && !o->empty() && starts_with_dollar(o->front().first);
}

/// Values an index can look up exactly: arrays match by element or as a whole, regular
/// expressions match strings, MinKey/MaxKey bound no type.
bool indexable(const value& v) {
  return !v.is_array() && !v.is<regex_value>() && !v.is<min_key>() && !v.is<max_key>();
}

void collect(const object& filter, std::map<std::string, conditions>& out) {
  for (auto& [k, v] : filter) {
    if (k == "$and" && v.is_array()) {
      for (auto& item : v.as_array())
        if (item.is_object()) collect(item.as_object(), out);
      continue;
    }
    if (starts_with_dollar(k)) continue; // $or, $nor, $expr, $comment: no index use
    auto& c = out[k];
    if (!is_operator_object(v)) {
      if (!c.eq && indexable(v)) c.eq = v;
      continue;
    }
    for (auto& [op, arg] : v.as_object()) {
      if (op == "$eq" && indexable(arg) && !c.eq) {
        c.eq = arg;
      } else if (op == "$in" && arg.is_array() && !c.in) {
        auto& items = arg.as_array();
        if (std::all_of(items.begin(), items.end(), indexable)) c.in = items;
      } else if ((op == "$gt" || op == "$gte") && indexable(arg) && !arg.is_object()) {
        c.lo = arg;
      } else if ((op == "$lt" || op == "$lte") && indexable(arg) && !arg.is_object()) {
        c.hi = arg;
      }
    }
    // A range across two types matches nothing of one of them; keep the lower bound.
    if (c.lo && c.hi && canonical_type_rank(c.lo->type()) != canonical_type_rank(c.hi->type()))
      c.hi.reset();
  }
}

/// Whether `filter` contains every condition of `partial` (field by field, literally).
bool implies(const object& filter, const object& partial) {
  std::vector<std::pair<std::string, const value*>> conjuncts;
  auto gather = [&](auto& self, const object& o) -> void {
    for (auto& [k, v] : o) {
      if (k == "$and" && v.is_array()) {
        for (auto& item : v.as_array())
          if (item.is_object()) self(self, item.as_object());
      } else {
        conjuncts.emplace_back(k, &v);
      }
    }
  };
  gather(gather, filter);
  return std::all_of(partial.begin(), partial.end(), [&](auto& cond) {
    return std::any_of(conjuncts.begin(), conjuncts.end(), [&](auto& c) {
      return c.first == cond.first && identical(*c.second, cond.second);
    });
  });
}

/// The encoding of a value in a field of direction `dir`.
std::string field_bytes(const value& v, int dir) {
  std::string e = encode_key(v);
  return dir < 0 ? invert_bytes(std::move(e)) : e;
}

/// The first byte of every encoding of a value of `v`'s type.
std::string type_start(const value& v) {
  return encode_key(v).substr(0, 1);
}

std::string type_end(const value& v) {
  return prefix_successor(type_start(v));
}

/// [lo, hi] on one field of direction `dir`, below `prefix`, as entry keys.
key_range field_range(const std::string& prefix, const std::optional<value>& lo,
                      const std::optional<value>& hi, int dir) {
  const value& any = lo ? *lo : *hi;
  // Ascending bytes: from enc(lo) (or the type's start) to past enc(hi) (or the type's end).
  std::string a_lo = lo ? encode_key(*lo) : type_start(any);
  std::string a_hi = hi ? prefix_successor(encode_key(*hi)) : type_end(any);
  if (dir > 0) return {prefix + a_lo, prefix + a_hi};
  // Inverted, the order flips: from inv(enc(hi)) (or the inverted type's first byte) to
  // past inv(enc(lo)) (or past the inverted type).
  const std::string inverted_type = invert_bytes(type_start(any));
  std::string d_lo = hi ? invert_bytes(encode_key(*hi)) : inverted_type;
  std::string d_hi = prefix_successor(lo ? invert_bytes(encode_key(*lo)) : inverted_type);
  return {prefix + d_lo, prefix + d_hi};
}

std::string describe(const value& v) {
  if (v.is_string()) return "\"" + v.as_string() + "\"";
  if (v.is_number()) {
    std::string s = std::to_string(v.as_double());
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }
  return bson_type_name(v.type());
}

struct candidate {
  plan p;
  int score = -1; // unusable until scored
};

candidate plan_for(const index_def& def, const std::map<std::string, conditions>& conds,
                   const object& filter, const std::vector<std::pair<std::string, int>>& sort) {
  candidate out;
  out.p.index = &def;
  if (def.partial && !implies(filter, *def.partial)) return out;
  auto& fields = def.spec.fields;
  std::vector<std::string> prefixes{""};
  std::size_t fixed = 0; // leading fields fixed to one value
  bool in_used = false, range_used = false, excludes_missing = false;
  std::string text;
  auto note = [&](const std::string& s) { text += (text.empty() ? "" : ", ") + s; };
  for (std::size_t i = 0; i < fields.size(); ++i) {
    auto it = conds.find(fields[i].path);
    if (it == conds.end()) break;
    auto& c = it->second;
    const int dir = fields[i].direction;
    if (c.eq && !in_used) {
      for (auto& p : prefixes)
        p += field_bytes(*c.eq, dir);
      excludes_missing = excludes_missing || !c.eq->is_null();
      ++fixed;
      note(fields[i].path + " = " + describe(*c.eq));
      continue;
    }
    if (c.in && !in_used && !c.in->empty() && c.in->size() * prefixes.size() <= 256) {
      std::vector<std::string> next;
      bool has_null = false;
      for (auto& p : prefixes)
        for (auto& v : *c.in) {
          next.push_back(p + field_bytes(v, dir));
          has_null = has_null || v.is_null();
        }
      prefixes = std::move(next);
      excludes_missing = excludes_missing || !has_null;
      in_used = true;
      note(fields[i].path + " in " + std::to_string(c.in->size()) + " values");
      continue;
    }
    if (c.lo || c.hi) {
      std::optional<value> lo = c.lo, hi = c.hi;
      if (def.multikey && lo && hi) hi.reset(); // elements may meet each bound separately
      const value& bound = lo ? *lo : *hi;
      excludes_missing = excludes_missing || !bound.is_null();
      range_used = true;
      for (auto& p : prefixes)
        out.p.ranges.push_back(field_range(p, lo, hi, dir));
      note(fields[i].path + " in [" + (lo ? describe(*lo) : "") + ", " + (hi ? describe(*hi) : "") +
           "]");
    }
    break;
  }
  if (!range_used)
    for (auto& p : prefixes)
      out.p.ranges.push_back({p, p.empty() ? std::string("\xff") : prefix_successor(p)});
  std::sort(out.p.ranges.begin(), out.p.ranges.end(), [](auto& a, auto& b) { return a.lo < b.lo; });
  out.p.ranges.erase(std::unique(out.p.ranges.begin(), out.p.ranges.end(),
                                 [](auto& a, auto& b) { return a.lo == b.lo; }),
                     out.p.ranges.end());
  const bool predicate = fixed > 0 || in_used || range_used;
  if (def.spec.sparse && !excludes_missing) return out; // documents without the fields absent

  // The sort: drop keys on fixed fields, match the rest against the fields after them.
  if (!def.multikey && !in_used) {
    std::vector<std::pair<std::string, int>> rest;
    for (auto& [path, dir] : sort) {
      bool is_fixed = false;
      for (std::size_t i = 0; i < fixed; ++i)
        is_fixed = is_fixed || fields[i].path == path;
      if (!is_fixed) rest.emplace_back(path, dir);
    }
    // `rest` ends with _id (the tie-breaker), unless _id itself was fixed.
    std::optional<bool> backward;
    bool ok = true;
    std::size_t j = 0;
    for (; j < rest.size() && ok; ++j) {
      auto& [path, dir] = rest[j];
      const std::size_t i = fixed + j;
      int index_dir;
      if (i < fields.size()) {
        if (fields[i].path != path) {
          ok = false;
          break;
        }
        index_dir = fields[i].direction;
      } else if (!def.is_id() && i == fields.size() && path == "_id") {
        index_dir = fields.back().direction; // equal keys are in this _id order
      } else {
        ok = def.unique && i >= fields.size(); // after a unique key nothing ties
        break;
      }
      const bool b = dir != index_dir;
      if (backward && *backward != b) ok = false;
      backward = b;
    }
    if (ok) {
      out.p.provides_sort = true;
      out.p.backward = backward.value_or(false);
    }
  }
  if (def.is_id() && fixed == 1)
    out.score = 100;
  else
    out.score = int(fixed) * 4 + (in_used ? 3 : 0) + (range_used ? 2 : 0);
  if (!predicate && !out.p.provides_sort)
    out.score = -1;
  else if (out.p.provides_sort)
    out.score += 3;
  out.p.bounds = def.name + ": " + (text.empty() ? "all" : text) +
                 (out.p.backward ? ", backward" : "") +
                 (out.p.provides_sort ? ", sorted" : ", sorted in memory");
  return out;
}

} // namespace

plan choose_plan(const object& filter, const std::vector<std::pair<std::string, int>>& sort,
                 const std::vector<index_def>& candidates) {
  std::map<std::string, conditions> conds;
  collect(filter, conds);
  candidate best = plan_for(id_index(), conds, filter, sort);
  if (best.score < 0) best.score = 0; // the collection scan
  for (auto& def : candidates) {
    if (!def.ready) continue;
    auto c = plan_for(def, conds, filter, sort);
    if (c.score > best.score) best = std::move(c);
  }
  return std::move(best.p);
}

} // namespace rheo::sqlite
