// Backup and restore of the embedded store (rheo backup, rheo restore, POST /_backup).
//
// A backup is one SQLite file (rollback journal, no -wal beside it): a page copy of
// rheo.db made inside one read transaction, so it is the store as of one commit. Under WAL
// that transaction never blocks the writer; it only keeps the WAL from being checkpointed
// past it until the copy ends (the WAL grows meanwhile, and the first checkpoint after
// pays for it). The copy then gets a table `backup_info` (key, value): the format, the
// change-log position the copy reflects (a resume token), when it was taken, the schema
// version and where from. It is written as `<out>.partial`, synced, and renamed to `<out>`:
// an interrupted backup leaves no `<out>`.
//
// A restore installs a backup as <data_dir>/rheo.db without a server on it: it takes the
// data dir's lock (refusing while a server holds it), copies the file beside rheo.db,
// checks the copy (PRAGMA integrity_check, the rheo tables, a schema version this build
// knows; an older one is migrated), and only then replaces rheo.db with one rename, after
// folding the old file's WAL into it (a stale WAL must never meet the new file). The old
// file stays as rheo.db.before-restore. An interrupted restore leaves the old store as it
// was (and a `.restoring` file the next restore replaces).
//
// A restored store is a new history: clients still hold resume tokens of the server that
// went on after the backup, and those seqs will be reused. So the restore renumbers the
// change log into a fresh range, past every seq the backup and the replaced store issued
// (by at least 2^40), and logs a marker entry there. Every token issued before the restore
// is then older than the log: resuming with it is history lost (4410, or SSE history-lost).
//
// Thread-safety: free functions; backup_into() uses `src` on the calling thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace rheo {

/// What a backup holds (its backup_info table).
struct backup_summary {
  std::string file;     // the backup file
  std::string position; // the change-log position the copy reflects, as a resume token
  std::string taken_at; // RFC 3339, UTC
  int schema_version = 0;
  std::uint64_t bytes = 0;
  std::chrono::milliseconds duration{0};
};

/// What a restore did.
struct restore_summary {
  std::string data_dir;
  backup_summary backup;      // what the file said about itself (position, taken_at)
  std::string first_position; // the restored history's position: the marker's token
  std::string previous;       // the replaced store, kept; empty when there was none
  std::chrono::milliseconds duration{0};
};

/// Progress of a long copy: `done` of `total` bytes.
using copy_progress = std::function<void(std::uint64_t done, std::uint64_t total)>;

/// Online backup of the store in `data_dir` into the file `out` (replaced if it exists), a
/// server running on it or not. Throws std::runtime_error with one line naming the file.
backup_summary backup_data_dir(const std::string& data_dir, const std::string& out,
                               const copy_progress& progress = {});

/// Reads and checks a backup file without installing it: integrity, the rheo tables, a
/// schema version this build knows. Throws std::runtime_error saying what is wrong.
backup_summary check_backup(const std::string& file);

/// Restores `file` into `data_dir` (created when missing). Throws std::runtime_error when
/// a server holds the directory, or the file does not check (data_dir then unchanged).
restore_summary restore_data_dir(const std::string& file, const std::string& data_dir,
                                 const copy_progress& progress = {});

namespace sqlite {
class connection;
/// backup_data_dir() over an open connection to a store (a reader of the running server).
/// `source` is recorded as where the backup came from.
backup_summary backup_into(connection& src, const std::string& out, const std::string& source,
                           const copy_progress& progress = {});
} // namespace sqlite

} // namespace rheo
