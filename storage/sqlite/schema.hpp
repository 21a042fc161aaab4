// The embedded store's schema and every SQL statement it runs, in one place. Internal to
// storage/sqlite.
//
// Tables: collections (metadata and etag per db/coll), documents (keyed by the
// order-preserving id_key of _id, so "newest first" is an index scan), changes (the
// change log, keyed by seq), indexes (the secondary indexes' definitions) and
// index_entries (their entries, see indexes.hpp).
//
// Schema versions (PRAGMA user_version): 0 or 1, files written before versions were
// recorded; 2, id_key is the index-key encoding of _id (index_key.hpp); 3, the change log
// has an index by collection (changes_by_coll), so a resume reads its own collection's
// entries only. Opening an older file migrates it in one transaction; a newer one is
// refused.
//
// Thread-safety: constants, and create_or_migrate() on the writer connection before the
// writer thread starts. connection::prepare() caches statements by the address of
// these constants, so always pass them, never a copy of their text.
#pragma once

namespace rheo::sqlite {

class connection;

/// The schema version this build writes.
inline constexpr int schema_version = 3;

/// Creates the tables of a new file, or migrates an older file to schema_version; throws
/// std::runtime_error for a file of a newer version.
void create_or_migrate(connection& c);

inline constexpr const char* sql_schema = R"(
CREATE TABLE IF NOT EXISTS collections(db TEXT NOT NULL, coll TEXT NOT NULL,
  metadata BLOB NOT NULL, etag BLOB NOT NULL, PRIMARY KEY(db, coll)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS documents(db TEXT NOT NULL, coll TEXT NOT NULL,
  id_key BLOB NOT NULL, body BLOB NOT NULL, PRIMARY KEY(db, coll, id_key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes(seq INTEGER PRIMARY KEY, db TEXT NOT NULL,
  coll TEXT NOT NULL, event BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS changes_by_coll ON changes(db, coll, seq);
CREATE TABLE IF NOT EXISTS indexes(id INTEGER PRIMARY KEY, db TEXT NOT NULL, coll TEXT NOT NULL,
  name TEXT NOT NULL, spec BLOB NOT NULL, ready INTEGER NOT NULL, multikey INTEGER NOT NULL,
  UNIQUE(db, coll, name));
CREATE TABLE IF NOT EXISTS index_entries(ix INTEGER NOT NULL, key BLOB NOT NULL,
  id_key BLOB NOT NULL, PRIMARY KEY(ix, key)) WITHOUT ROWID;
)";
inline constexpr const char* sql_coll_get =
    "SELECT metadata, etag FROM collections WHERE db = ?1 AND coll = ?2";
inline constexpr const char* sql_coll_names =
    "SELECT coll FROM collections WHERE db = ?1 ORDER BY coll";
inline constexpr const char* sql_coll_insert =
    "INSERT INTO collections(db, coll, metadata, etag) VALUES(?1, ?2, ?3, ?4)";
inline constexpr const char* sql_coll_update =
    "UPDATE collections SET metadata = ?3, etag = ?4 WHERE db = ?1 AND coll = ?2";
inline constexpr const char* sql_coll_delete =
    "DELETE FROM collections WHERE db = ?1 AND coll = ?2";
inline constexpr const char* sql_docs_delete = "DELETE FROM documents WHERE db = ?1 AND coll = ?2";
inline constexpr const char* sql_doc_get =
    "SELECT body FROM documents WHERE db = ?1 AND coll = ?2 AND id_key = ?3";
inline constexpr const char* sql_doc_insert =
    "INSERT INTO documents(db, coll, id_key, body) VALUES(?1, ?2, ?3, ?4)";
inline constexpr const char* sql_doc_update =
    "UPDATE documents SET body = ?4 WHERE db = ?1 AND coll = ?2 AND id_key = ?3";
inline constexpr const char* sql_doc_delete =
    "DELETE FROM documents WHERE db = ?1 AND coll = ?2 AND id_key = ?3";
inline constexpr const char* sql_docs_count =
    "SELECT count(*) FROM documents WHERE db = ?1 AND coll = ?2";
inline constexpr const char* sql_change_insert =
    "INSERT INTO changes(seq, db, coll, event) VALUES(?1, ?2, ?3, ?4)";
inline constexpr const char* sql_changes_trim = "DELETE FROM changes WHERE seq < ?1";
// Each bound in its own subquery: SQLite answers a lone min() or max() of the rowid with one
// b-tree descent, but min() and max() in one SELECT with a SCAN of the whole log.
inline constexpr const char* sql_changes_bounds =
    "SELECT (SELECT min(seq) FROM changes), (SELECT max(seq) FROM changes)";
inline constexpr const char* sql_changes_newest = "SELECT max(seq) FROM changes";
inline constexpr const char* sql_changes_after =
    "SELECT seq, event FROM changes WHERE seq > ?1 AND db = ?2 AND coll = ?3 ORDER BY seq";
// Backup and restore (backup.hpp). A backup file's own table says what it holds; a restore
// moves the change log to a fresh range of seqs (one pass over the log, offline).
inline constexpr const char* sql_backup_info_create =
    "CREATE TABLE backup_info(key TEXT PRIMARY KEY, value TEXT NOT NULL)";
inline constexpr const char* sql_backup_info_put =
    "INSERT OR REPLACE INTO backup_info(key, value) VALUES(?1, ?2)";
inline constexpr const char* sql_backup_info_all = "SELECT key, value FROM backup_info";
inline constexpr const char* sql_backup_info_drop = "DROP TABLE IF EXISTS backup_info";
inline constexpr const char* sql_table_names =
    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name";
inline constexpr const char* sql_changes_shift = "UPDATE changes SET seq = seq + ?1";
// Export (transfer.hpp): every collection of the store.
inline constexpr const char* sql_colls_all = "SELECT db, coll FROM collections ORDER BY db, coll";

// Indexes.
inline constexpr const char* sql_indexes_of =
    "SELECT id, name, spec, ready, multikey FROM indexes WHERE db = ?1 AND coll = ?2 ORDER BY id";
inline constexpr const char* sql_indexes_all =
    "SELECT db, coll, id, name, spec, ready, multikey FROM indexes";
inline constexpr const char* sql_index_insert =
    "INSERT INTO indexes(db, coll, name, spec, ready, multikey) VALUES(?1, ?2, ?3, ?4, 0, 0)";
inline constexpr const char* sql_index_ready = "UPDATE indexes SET ready = 1 WHERE id = ?1";
inline constexpr const char* sql_index_multikey = "UPDATE indexes SET multikey = 1 WHERE id = ?1";
inline constexpr const char* sql_index_delete = "DELETE FROM indexes WHERE id = ?1";
inline constexpr const char* sql_index_entries_delete_all =
    "DELETE FROM index_entries WHERE ix = ?1";
inline constexpr const char* sql_entry_insert =
    "INSERT OR REPLACE INTO index_entries(ix, key, id_key) VALUES(?1, ?2, ?3)";
inline constexpr const char* sql_entry_delete =
    "DELETE FROM index_entries WHERE ix = ?1 AND key = ?2";
// Another document's entry in [?2, ?3): a unique index's key taken.
inline constexpr const char* sql_entry_conflict =
    "SELECT id_key FROM index_entries WHERE ix = ?1 AND key >= ?2 AND key < ?3 AND id_key <> ?4 "
    "LIMIT 1";
inline constexpr const char* sql_entries_asc =
    "SELECT id_key FROM index_entries WHERE ix = ?1 AND key >= ?2 AND key < ?3 ORDER BY key ASC";
inline constexpr const char* sql_entries_desc =
    "SELECT id_key FROM index_entries WHERE ix = ?1 AND key >= ?2 AND key < ?3 ORDER BY key DESC";
inline constexpr const char* sql_docs_range_asc =
    "SELECT id_key, body FROM documents WHERE db = ?1 AND coll = ?2 AND id_key >= ?3 AND id_key < "
    "?4 ORDER BY id_key ASC";
inline constexpr const char* sql_docs_range_desc =
    "SELECT id_key, body FROM documents WHERE db = ?1 AND coll = ?2 AND id_key >= ?3 AND id_key < "
    "?4 ORDER BY id_key DESC";
inline constexpr const char* sql_docs_chunk =
    "SELECT id_key, body FROM documents WHERE db = ?1 AND coll = ?2 AND id_key > ?3 ORDER BY "
    "id_key LIMIT ?4";

} // namespace rheo::sqlite
