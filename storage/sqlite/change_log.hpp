// The change log: how a change event is stored in the changes table, how the log is
// trimmed to its retention and how a resume position is read back. Internal to
// storage/sqlite.
//
// An entry holds the event without seq, db and coll (those are columns), as BSON. Entries
// with operation "meta" are rheo-internal: the full metadata of a collection after a
// create, PUT or PATCH of its metadata (see sqlite_store.hpp).
//
// Thread-safety: free functions over a connection, which the caller uses from one thread.
#pragma once

#include "storage/document/change_event.hpp"
#include "storage/store.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rheo::sqlite {

class connection;

/// An event of `op` on db.coll at the current time, without key or documents.
change_event make_event(const std::string& db, const std::string& coll, operation_type op);
/// The "meta" entry for a collection whose metadata is now `metadata`.
change_event meta_event(const std::string& db, const std::string& coll, object metadata);

/// Appends `ev` (its seq already assigned) to the log.
void append_change(connection& c, const change_event& ev);
/// append_change() of the insert into db.coll of `doc` (BSON) with `_id` `id`, as seq
/// `seq`: the entry is written around the BSON, which is not decoded.
void append_insert_change(connection& c, std::uint64_t seq, const std::string& db,
                          const std::string& coll, const value& id, std::string_view doc,
                          date_time wall);

/// The oldest and newest seq in the log; nullopt when it is empty.
std::optional<std::pair<std::uint64_t, std::uint64_t>> change_log_bounds(connection& c);

/// Retention: when the log holds more than `retention` entries by a slack of about 1/8 of
/// it, deletes the oldest so that `retention` remain, and returns the new oldest seq.
/// `oldest` and `next` bound the log (next is the seq the next entry gets).
std::optional<std::uint64_t> trim_change_log(connection& c, std::uint64_t retention,
                                             std::uint64_t oldest, std::uint64_t next);

/// The resume token of the newest entry of the log in `c`'s current read snapshot (of seq 0
/// when the log is empty): what a read in that snapshot reflects.
std::string log_position(connection& c);

/// A part of the log read by read_changes_after().
struct change_page {
  std::vector<change_event> events; // of db.coll, in seq order
  /// The newest seq of the whole log in the read's snapshot.
  std::uint64_t newest = 0;
  /// Every entry of db.coll in that snapshot is in `events` (the read was not cut short by
  /// its limits).
  bool complete = true;
};

/// How much one read_changes_after() may return: it stops after the entry that reaches
/// either bound (so it returns at least one entry when there is one).
struct page_limit {
  std::size_t events = SIZE_MAX;
  std::size_t bytes = SIZE_MAX; // of stored entries
};

/// The events of db.coll after seq `after`, up to `limit`, in one read transaction on `c`;
/// sets `lost` instead when `after` is in the future or older than the retained log.
change_page read_changes_after(connection& c, const std::string& db, const std::string& coll,
                               std::uint64_t after, std::optional<feed_end>& lost,
                               page_limit limit = {});

} // namespace rheo::sqlite
