#include "storage/sqlite/schema.hpp"

#include "storage/document/bson_codec.hpp"
#include "storage/sqlite/connection.hpp"
#include "storage/sqlite/id_key.hpp"

#include <stdexcept>
#include <string>

namespace rheo::sqlite {

namespace {

int user_version(connection& c) {
  query q(c, "PRAGMA user_version");
  return q.step() ? static_cast<int>(q.column_int64(0)) : 0;
}

/// Version 2 changed the encoding of id_key: recompute every key from the stored _id.
void rekey_documents(connection& c) {
  c.exec("CREATE TEMP TABLE rekeyed(db TEXT NOT NULL, coll TEXT NOT NULL, id_key BLOB NOT NULL,"
         " body BLOB NOT NULL)");
  {
    static constexpr const char* sql_read = "SELECT db, coll, body FROM documents";
    static constexpr const char* sql_write =
        "INSERT INTO rekeyed(db, coll, id_key, body) VALUES(?1, ?2, ?3, ?4)";
    query read(c, sql_read);
    while (read.step()) {
      const object doc = decode_bson(read.column_blob(2));
      const value* id = find_field(doc, "_id");
      if (!id) throw std::runtime_error("schema migration: a document without _id");
      const std::string key = id_key(*id);
      query write(c, sql_write);
      write.text(1, read.column_text(0)).text(2, read.column_text(1)).blob(3, key);
      write.blob(4, read.column_blob(2));
      write.step();
    }
  }
  c.exec("DELETE FROM documents; INSERT INTO documents SELECT * FROM rekeyed; DROP TABLE rekeyed");
}

} // namespace

void create_or_migrate(connection& c) {
  const int version = user_version(c);
  if (version > schema_version)
    throw std::runtime_error("database written by a newer rheo (schema version " +
                             std::to_string(version) + ", this build knows " +
                             std::to_string(schema_version) + ")");
  if (version == schema_version) return;
  c.exec("BEGIN IMMEDIATE");
  try {
    c.exec(sql_schema); // creates what is missing, changes_by_coll (3) included
    if (version < 2) rekey_documents(c);
    c.exec(("PRAGMA user_version=" + std::to_string(schema_version)).c_str());
    c.exec("COMMIT");
  } catch (...) {
    sqlite3_exec(c.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

} // namespace rheo::sqlite
