// The registry of `numagrid` subcommands. Each *_commands.cc file defines the
// specs of one family of commands.
#pragma once

#include <vector>

#include "core/cli/command.h"

namespace numagrid::cli {

std::vector<CommandSpec> GridCommands();      // create, destroy, info, list
std::vector<CommandSpec> TopologyCommands();  // topology
std::vector<CommandSpec> DataCommands();      // put, get, del, scan, check
std::vector<CommandSpec> CopyCommands();      // copy
std::vector<CommandSpec> WatchdogCommands();  // start, stop, events
std::vector<CommandSpec>
JournalCommands();                          // worker, recover, snapshot, status
std::vector<CommandSpec> StatsCommands();   // stats
std::vector<CommandSpec> ConfigCommands();  // config
std::vector<CommandSpec> TopCommands();     // top

}  // namespace numagrid::cli
