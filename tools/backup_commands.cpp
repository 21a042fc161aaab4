// rheo backup and rheo restore (storage/sqlite/backup.hpp does the work).
#include "storage/sqlite/backup.hpp"
#include "tools/tool.hpp"

#include <iostream>

namespace rheo::tools {

namespace {

constexpr const char* backup_usage =
    "usage: rheo backup --data-dir DIR --out FILE\n"
    "  Writes a consistent copy of the embedded store in DIR to FILE while a server may be\n"
    "  running on it (writers are not blocked). The data dir may also come from --config\n"
    "  FILE or RHEO_DATA_DIR. Prints the file, its size and the change-log position it\n"
    "  holds. Exit status: 0 done, 1 failed, 2 bad arguments.\n";

constexpr const char* restore_usage =
    "usage: rheo restore FILE --data-dir DIR\n"
    "  Replaces the store in DIR (created when missing) with the backup FILE, after checking\n"
    "  the file (integrity, schema version). Refused while a server runs on DIR. The store\n"
    "  it replaces is kept as DIR/rheo.db.before-restore. Clients' resume tokens from before\n"
    "  the restore get \"history lost\" (4410). Exit status: 0 done, 1 failed, 2 bad\n"
    "  arguments.\n";

} // namespace

int backup_command(const std::vector<std::string>& args) {
  return guarded("backup", backup_usage, [&] {
    const arguments a = parse_arguments(args, {"--out"});
    if (a.help) {
      std::cout << backup_usage;
      return 0;
    }
    if (!a.positional.empty()) throw usage_error("unexpected argument '" + a.positional[0] + "'");
    if (!a.flags.count("--out")) throw usage_error("--out FILE is required");
    if (!a.config.mongo_uri.empty())
      throw usage_error("a MongoDB store is backed up with mongodump, not rheo backup");
    const std::string& out = a.flags.at("--out");
    progress_meter meter("backup of " + a.config.data_dir, "bytes");
    const backup_summary s = backup_data_dir(
        a.config.data_dir, out, [&](auto done, auto total) { meter.update(done, total); });
    meter.finish();
    std::cout << "backup " << s.file << ": " << mebibytes(s.bytes) << ", change-log position "
              << s.position << ", taken " << s.taken_at << " in " << seconds_text(s.duration)
              << "\n";
    return 0;
  });
}

int restore_command(const std::vector<std::string>& args) {
  return guarded("restore", restore_usage, [&] {
    const arguments a = parse_arguments(args, {});
    if (a.help) {
      std::cout << restore_usage;
      return 0;
    }
    if (a.positional.size() != 1) throw usage_error("give one backup FILE");
    if (!a.config.mongo_uri.empty())
      throw usage_error("rheo restore restores the embedded store (--data-dir)");
    progress_meter meter("restore of " + a.positional[0], "bytes");
    const restore_summary r =
        restore_data_dir(a.positional[0], a.config.data_dir,
                         [&](auto done, auto total) { meter.update(done, total); });
    meter.finish();
    std::cout << "restored " << a.positional[0] << " (taken "
              << (r.backup.taken_at.empty() ? std::string("at an unknown time") : r.backup.taken_at)
              << ", change-log position " << r.backup.position << ") into " << r.data_dir << " in "
              << seconds_text(r.duration) << "; resume tokens from before it get "
              << "history lost; the new history starts at " << r.first_position;
    if (!r.previous.empty()) std::cout << "; the replaced store is kept as " << r.previous;
    std::cout << "\n";
    return 0;
  });
}

} // namespace rheo::tools
