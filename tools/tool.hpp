// What the commands of tools/ share, private to rheo_tools: their arguments (a command's
// own flags and positionals, the rest the server's configuration) and progress on stderr.
//
// Thread-safety: used by the command's one thread.
#pragma once

#include "config/config.hpp"

#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace rheo::tools {

/// Bad arguments: the command prints the message and its usage, and exits 2.
class usage_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A command's arguments.
struct arguments {
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags; // the command's own flags, by name ("--out")
  std::set<std::string> switches;           // its own flags without a value ("--force")
  server_config config;                     // --data-dir, --mongo-uri, --config, RHEO_*
  bool help = false;
};

/// Splits `args` (after the command's name): flags in `own` take a value (`--out F` or
/// `--out=F`), flags in `own_switches` none, other `--` flags are the server's (each with a
/// value) and go through parse_command_line() with the RHEO_* environment; the rest are
/// positional. Throws usage_error (a config_error becomes one).
arguments parse_arguments(const std::vector<std::string>& args, const std::set<std::string>& own,
                          const std::set<std::string>& own_switches = {});

/// Progress of one long step on stderr: on a terminal a line updated in place at most five
/// times a second (done, total, rate, time left); otherwise nothing (the command prints its
/// outcome). `unit` names what is counted: "bytes" (shown in MiB) or e.g. "documents".
class progress_meter {
public:
  progress_meter(std::string label, std::string unit);
  ~progress_meter();
  progress_meter(const progress_meter&) = delete;
  progress_meter& operator=(const progress_meter&) = delete;

  /// `total` 0: unknown (no percentage, no time left); `estimated`: a guess ("about").
  void update(std::uint64_t done, std::uint64_t total, bool estimated = false);
  /// Clears the line (called by the destructor too).
  void finish();
  bool on_terminal() const { return tty_; }

private:
  std::string amount(std::uint64_t n, bool unit) const;
  std::string label_, unit_;
  bool tty_ = false;
  bool shown_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

/// Bytes in MiB with one decimal ("12.3 MiB"), or in KiB below one MiB ("40 KiB").
std::string mebibytes(std::uint64_t bytes);
/// Milliseconds as seconds with one decimal ("1.5 s").
std::string seconds_text(std::chrono::milliseconds ms);

/// "1 document", "2 documents"; `many` when the plural is not `one` + "s".
std::string plural(std::uint64_t n, const std::string& one, const std::string& many = "");

/// Runs a command's `body`, mapping its errors to the exit status: usage_error is 2 (the
/// message and `usage` on stderr), any other exception 1 (its message on stderr).
template <class F> int guarded(const char* command, const char* usage, F&& body) {
  try {
    return body();
  } catch (const usage_error& e) {
    std::cerr << "rheo " << command << ": " << e.what() << "\n" << usage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "rheo " << command << ": " << e.what() << "\n";
    return 1;
  }
}

// The commands (the rest of `args` after the name); each returns the exit status.
int backup_command(const std::vector<std::string>& args);
int restore_command(const std::vector<std::string>& args);
int export_command(const std::vector<std::string>& args);
int import_command(const std::vector<std::string>& args);
int migrate_command(const std::vector<std::string>& args);

} // namespace rheo::tools
