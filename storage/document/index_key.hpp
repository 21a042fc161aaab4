// Index keys, the first building block of the embedded store's secondary indexes: a
// byte-comparable encoding of values, and the keys MongoDB would build for one document
// under a key pattern (dotted paths, multikey arrays, sparse).
//
// The encoding: comparing two encodings as strings of unsigned bytes (memcmp, std::string
// comparison) gives exactly the order of compare_values, and two encodings are equal iff
// compare_values says the values are equal (1, 1L and 1.0 encode the same; so do 0.0 and
// -0.0). Every encoding is self-delimiting (no encoding is a proper prefix of another), so
// concatenating the encodings of a compound key's fields orders the keys field by field, a
// descending field is its ascending bytes inverted, and a suffix (such as a record id)
// appended to a key cannot change how two keys order.
//
// Layout: one tag byte per type, in canonical_type_rank order (numbers share one), then:
//   MinKey, null, MaxKey  nothing
//   number     a class byte (NaN < -inf < negative < zero < positive < +inf); a finite
//              non-zero number x = ±(1 + f / 2^64) * 2^e adds e + 2^15 as 2 big-endian bytes
//              and f as 8 (both inverted when negative). Every int64 and double has one
//              exact (e, f), so int32, int64 and double values order exactly and 2^53 + 1
//              as an int64 lies between the doubles 2^53 and 2^53 + 2.
//   string     the bytes with each 00 escaped as 00 FF, then the terminator 00 00
//   object     per field: the tag of its value, its name as a string, the value without its
//              tag (so type, then name, then value, as BSON compares objects); then 00
//   array      per element: its encoding; then 00
//   binData    the length (4 bytes big-endian), the subtype, the bytes
//   ObjectId   the 12 bytes
//   bool       00 or 01
//   date       the signed milliseconds, sign bit flipped, 8 bytes big-endian
//   timestamp  t, then i, 4 bytes big-endian each
//   regex      the pattern, then the options, as strings
// Keys are meant to be persisted: the tags and layout must not change without a migration.
//
// Thread-safety: pure functions over their arguments; safe from any thread.
#pragma once

#include "storage/document/value.hpp"

#include <string>
#include <vector>

namespace rheo {

/// One field of a key pattern: a dotted path ("a.b") and a direction, 1 (ascending) or -1
/// (descending).
struct index_field {
  std::string path;
  int direction = 1;
};

/// A key pattern ({a: 1, "b.c": -1} is {{"a", 1}, {"b.c", -1}}) and its options.
struct index_key_spec {
  std::vector<index_field> fields;
  /// A sparse index has no key for a document missing all its fields (a field set to null
  /// is present, and indexed). With arrays this holds per key: {a: [{b: 1}, {c: 2}]} has
  /// the key 1 (and no null key) in a sparse index on "a.b".
  bool sparse = false;
};

/// The ascending encoding of `v` (see the top of this file). Throws api_error(400) for
/// binary data of 4 GiB or more.
std::string encode_key(const value& v);

/// The key of a compound index: the encodings of `parts` concatenated, those whose
/// direction is -1 inverted byte by byte. Throws api_error(400) when a direction is neither
/// 1 nor -1, and std::invalid_argument when the two vectors differ in size.
std::string encode_compound_key(const std::vector<value>& parts,
                                const std::vector<int>& directions);

/// The keys of `doc` in an index `spec`, as MongoDB builds them, in ascending byte order
/// without duplicates (equal values from one document make one key):
/// - a path is resolved through objects and through arrays: when it meets an array, each
///   element continues the rest of the path (an element that is not an object has none of
///   the fields, so that key part is missing); when the path ends at an array, each element
///   is a key part (multikey) and the array itself is not, as in MongoDB (an inner array,
///   [[1, 2], 3], is a key part as a whole: [1, 2] and 3). Arrays directly inside arrays
///   are not traversed by a path: "a.b" in {a: [[{b: 1}]]} is missing;
/// - a numeric segment on an array selects the element at that position ("a.0.b", as
///   find_path), and does not make the field multikey; an element reached so that is itself
///   an array is a key part as a whole ("a.0" in {a: [[1, 2]]} is [1, 2]);
/// - fields whose paths pass through the same array take their parts from the same element
///   ({"a.b": 1, "a.c": 1} on {a: [{b: 1, c: 2}, {b: 3, c: 4}]} has the keys (1, 2) and
///   (3, 4)); two fields meeting different arrays throw api_error(400) "cannot index
///   parallel arrays [a] [b]" (the two index paths, in key-pattern order);
/// - a missing part is null, unless the index is sparse, where a key whose parts are all
///   missing is skipped;
/// - a path ending at an empty array has the part null, present even when sparse (MongoDB
///   uses undefined; this store has no undefined); a path going on into an empty array
///   ("a.b" in {a: []}) is missing.
/// Throws api_error(400) for an empty key pattern, a bad path (an empty segment or one
/// starting with '$'), or a direction other than 1 and -1.
std::vector<std::string> index_keys(const object& doc, const index_key_spec& spec);

} // namespace rheo
