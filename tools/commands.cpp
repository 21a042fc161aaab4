#include "tools/commands.hpp"

#include "tools/tool.hpp"

#include <cstdio>
#include <iostream>
#include <unistd.h>

namespace rheo::tools {

std::optional<int> run_command(const std::vector<std::string>& args) {
  if (args.empty()) return std::nullopt;
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "backup") return backup_command(rest);
  if (args[0] == "restore") return restore_command(rest);
  if (args[0] == "export") return export_command(rest);
  if (args[0] == "import") return import_command(rest);
  if (args[0] == "migrate") return migrate_command(rest);
  return std::nullopt;
}

arguments parse_arguments(const std::vector<std::string>& args, const std::set<std::string>& own,
                          const std::set<std::string>& own_switches) {
  arguments out;
  std::vector<std::string> server_args;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      out.help = true;
      continue;
    }
    if (a.rfind("--", 0) != 0) {
      out.positional.push_back(a);
      continue;
    }
    const auto eq = a.find('=');
    const std::string name = a.substr(0, eq);
    if (own_switches.count(name)) {
      if (eq != std::string::npos) throw usage_error(name + " takes no value");
      out.switches.insert(name);
    } else if (own.count(name)) {
      if (eq != std::string::npos)
        out.flags[name] = a.substr(eq + 1);
      else if (i + 1 < args.size())
        out.flags[name] = args[++i];
      else
        throw usage_error(name + " needs a value");
    } else {
      server_args.push_back(a);
      if (eq == std::string::npos && i + 1 < args.size()) server_args.push_back(args[++i]);
    }
  }
  try {
    out.config = parse_command_line(server_args, rheo_environment()).config;
  } catch (const config_error& e) {
    throw usage_error(e.what());
  }
  return out;
}

std::string plural(std::uint64_t n, const std::string& one, const std::string& many) {
  return std::to_string(n) + " " + (n == 1 ? one : many.empty() ? one + "s" : many);
}

std::string mebibytes(std::uint64_t bytes) {
  char buf[32];
  if (bytes < 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.0f KiB", static_cast<double>(bytes) / 1024.0);
    return buf;
  }
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

std::string seconds_text(std::chrono::milliseconds ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms.count()) / 1000.0);
  return buf;
}

progress_meter::progress_meter(std::string label, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), tty_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

progress_meter::~progress_meter() {
  finish();
}

std::string progress_meter::amount(std::uint64_t n, bool unit) const {
  if (unit_ == "bytes") return mebibytes(n);
  return std::to_string(n) + (unit ? " " + unit_ : "");
}

void progress_meter::update(std::uint64_t done, std::uint64_t total, bool estimated) {
  if (!tty_) return;
  const auto now = std::chrono::steady_clock::now();
  if (shown_ && now - last_ < std::chrono::milliseconds(200) && done != total) return;
  last_ = now;
  shown_ = true;
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
  std::string line = label_ + ": " + amount(done, total == 0);
  if (total)
    line += " of " + std::string(estimated ? "about " : "") + amount(total, true) + " (" +
            std::to_string(done * 100 / total) + "%)";
  char buf[64];
  if (unit_ == "bytes")
    std::snprintf(buf, sizeof buf, ", %.1f MiB/s", rate / (1024.0 * 1024.0));
  else
    std::snprintf(buf, sizeof buf, ", %.0f %s/s", rate, unit_.c_str());
  line += buf;
  if (total && rate > 0 && done < total) {
    std::snprintf(buf, sizeof buf, ", %.0f s left", static_cast<double>(total - done) / rate);
    line += buf;
  }
  std::cerr << "\r\033[K" << line << std::flush;
}

void progress_meter::finish() {
  if (!shown_) return;
  shown_ = false;
  std::cerr << "\r\033[K" << std::flush;
}

} // namespace rheo::tools
