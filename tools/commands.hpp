// rheo's command-line tools, the subcommands that work on a store without serving it:
//   rheo backup --data-dir DIR --out FILE     online backup (a server may be running on DIR)
//   rheo restore FILE --data-dir DIR          restore, refused while a server holds DIR
//   rheo export --data-dir DIR --out PATH     collections as MongoDB Extended JSON files
//   rheo import PATH --data-dir DIR           such files (or one mongoexport file) back in
//   rheo migrate --data-dir DIR --to URI      the collections into MongoDB (RESTHeart's layout)
// Each also takes --config FILE and RHEO_* variables, as the server does, for its data dir.
// Progress goes to stderr (updated in place on a terminal); the outcome is one line on stdout.
// Exit status: 0 done, 1 failed (the reason on stderr), 2 bad arguments.
//
// Thread-safety: run from main() before anything else starts.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace rheo::tools {

/// Runs the command `args[0]` names with the rest of `args` (argv without the program
/// name); nullopt when `args[0]` names none (the server's flags, hash-password).
std::optional<int> run_command(const std::vector<std::string>& args);

} // namespace rheo::tools
