// numagrid: the operator's command-line tool. One subcommand per operation;
// every one has --help, exits with a documented code (docs/cli.md) and, where
// it prints data, offers --json for scripts.
#include <cstdio>
#include <cstring>
#include <string_view>

#include "core/cli/command.h"
#include "core/cli/commands.h"

namespace {

using numagrid::cli::CommandSpec;

std::vector<CommandSpec> AllCommands() {
  std::vector<CommandSpec> all;
  for (auto& c : numagrid::cli::GridCommands()) all.push_back(std::move(c));
  for (auto& c : numagrid::cli::DataCommands()) all.push_back(std::move(c));
  for (auto& c : numagrid::cli::CopyCommands()) all.push_back(std::move(c));
  for (auto& c : numagrid::cli::WatchdogCommands()) all.push_back(std::move(c));
  for (auto& c : numagrid::cli::JournalCommands()) all.push_back(std::move(c));
  for (auto& c : numagrid::cli::StatsCommands()) all.push_back(std::move(c));
  for (auto& c : numagrid::cli::ConfigCommands()) all.push_back(std::move(c));
  for (auto& c : numagrid::cli::TopCommands()) all.push_back(std::move(c));
  for (auto& c : numagrid::cli::TopologyCommands()) all.push_back(std::move(c));
  return all;
}

void PrintUsage(const std::vector<CommandSpec>& all, FILE* out) {
  std::fprintf(out,
               "usage: numagrid COMMAND [ARGS] [--help]\n\n"
               "numagrid: an in-memory data grid in per-NUMA-node shared "
               "memory.\n\ncommands:\n");
  for (const auto& c : all) {
    std::fprintf(out, "  %-10.*s %.*s\n", static_cast<int>(c.name.size()),
                 c.name.data(), static_cast<int>(c.summary.size()),
                 c.summary.data());
  }
  std::fprintf(out,
               "\nExit codes: 0 ok, 2 invalid argument, 3 not found, 4 already "
               "exists, 5 conflict,\n6 version mismatch, 7 corruption, 8 "
               "resource exhausted, 9 permission denied,\n10 I/O error, 11 "
               "panic, 12 unavailable (docs/cli.md).\n");
}

}  // namespace

int main(int argc, char** argv) {
  const auto all = AllCommands();
  if (argc < 2) {
    PrintUsage(all, stderr);
    return 2;
  }
  const std::string_view cmd(argv[1]);
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    PrintUsage(all, stdout);
    return 0;
  }
  if (cmd == "--version") {
    std::printf("numagrid %s\n", NUMAGRID_VERSION);
    return 0;
  }
  for (const auto& spec : all) {
    if (spec.name != cmd) continue;
    for (int i = 2; i < argc; ++i) {
      if (std::strcmp(argv[i], "--") == 0) break;
      if (std::strcmp(argv[i], "--help") == 0 ||
          std::strcmp(argv[i], "-h") == 0) {
        std::fputs(numagrid::cli::HelpText(spec).c_str(), stdout);
        return 0;
      }
    }
    auto args = numagrid::cli::Parse(spec, argc - 2, argv + 2);
    if (!args.ok()) return numagrid::cli::Fail(spec.name, args.status());
    return spec.run(*args);
  }
  std::fprintf(stderr, "numagrid: unknown command '%s' (see numagrid --help)\n",
               argv[1]);
  return 2;
}
