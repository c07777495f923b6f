// The command-line tool's building blocks: a command's declared options, the
// parser that checks argv against them, and the generated --help text.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "numagrid/status.h"

namespace numagrid::cli {

struct OptionSpec {
  std::string_view name;   // without the leading "--"
  std::string_view value;  // placeholder such as "SIZE"; empty for a flag
  std::string_view help;
  bool hidden = false;  // accepted, but not listed by --help
};

class ParsedArgs;

struct CommandSpec {
  std::string_view name;
  std::string_view synopsis;     // e.g. "NAME [--partitions P]"
  std::string_view summary;      // one line for `numagrid --help`
  std::string_view description;  // paragraphs for `numagrid CMD --help`
  std::vector<OptionSpec> options;
  std::size_t min_positional = 0;
  std::size_t max_positional = 0;
  int (*run)(const ParsedArgs&) = nullptr;
};

class ParsedArgs {
 public:
  const std::vector<std::string>& positional() const { return positional_; }
  bool Has(std::string_view option) const;
  // The option's value, or `fallback` when it was not given.
  std::string Get(std::string_view option,
                  std::string_view fallback = "") const;

 private:
  friend Result<ParsedArgs> Parse(const CommandSpec&, int, char**);
  std::vector<std::string> positional_;
  std::map<std::string, std::string, std::less<>> options_;
};

// Parses argv[first..argc) against `spec`: "--opt VALUE", "--opt=VALUE",
// flags, positionals, and "--" ending the options. Unknown options, missing
// values and wrong positional counts are kInvalidArgument with a message
// that names them.
Result<ParsedArgs> Parse(const CommandSpec& spec, int argc, char** argv);

std::string HelpText(const CommandSpec& spec);

// Prints "numagrid CMD: <status message>" to stderr and returns the status's
// exit code (docs/cli.md).
int Fail(std::string_view command, const Status& status);

}  // namespace numagrid::cli
