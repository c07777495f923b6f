#include "core/cli/command.h"

#include <cstdio>

namespace numagrid::cli {

bool ParsedArgs::Has(std::string_view option) const {
  return options_.find(option) != options_.end();
}

std::string ParsedArgs::Get(std::string_view option,
                            std::string_view fallback) const {
  auto it = options_.find(option);
  return it == options_.end() ? std::string(fallback) : it->second;
}

Result<ParsedArgs> Parse(const CommandSpec& spec, int argc, char** argv) {
  ParsedArgs out;
  bool options_done = false;
  for (int i = 0; i < argc; ++i) {
    std::string_view a(argv[i]);
    if (options_done || a.size() < 3 || a.substr(0, 2) != "--") {
      if (a == "--") {
        options_done = true;
        continue;
      }
      if (!options_done && a.size() > 1 && a[0] == '-' && a != "-") {
        return InvalidArgument("unknown option '" + std::string(a) +
                               "' (options are spelled --name; see --help)");
      }
      out.positional_.emplace_back(a);
      continue;
    }
    std::string_view name = a.substr(2);
    std::string value;
    bool has_inline = false;
    if (auto eq = name.find('='); eq != std::string_view::npos) {
      value = std::string(name.substr(eq + 1));
      name = name.substr(0, eq);
      has_inline = true;
    }
    const OptionSpec* opt = nullptr;
    for (const auto& o : spec.options) {
      if (o.name == name) opt = &o;
    }
    if (opt == nullptr) {
      return InvalidArgument("unknown option '--" + std::string(name) +
                             "' for '" + std::string(spec.name) +
                             "' (see --help)");
    }
    if (opt->value.empty()) {
      if (has_inline) {
        return InvalidArgument("option '--" + std::string(name) +
                               "' takes no value");
      }
    } else if (!has_inline) {
      if (i + 1 >= argc) {
        return InvalidArgument("option '--" + std::string(name) + "' needs a " +
                               std::string(opt->value));
      }
      value = argv[++i];
    }
    out.options_[std::string(name)] = std::move(value);
  }
  if (out.positional_.size() < spec.min_positional ||
      out.positional_.size() > spec.max_positional) {
    return InvalidArgument("usage: numagrid " + std::string(spec.name) + " " +
                           std::string(spec.synopsis));
  }
  return out;
}

std::string HelpText(const CommandSpec& spec) {
  std::string h = "usage: numagrid " + std::string(spec.name) + " " +
                  std::string(spec.synopsis) + "\n\n" +
                  std::string(spec.summary) + "\n";
  if (!spec.description.empty()) {
    h += "\n" + std::string(spec.description) + "\n";
  }
  h += "\noptions:\n";
  for (const auto& o : spec.options) {
    if (o.hidden) continue;
    std::string left = "  --" + std::string(o.name);
    if (!o.value.empty()) left += " " + std::string(o.value);
    if (left.size() < 26)
      left.resize(26, ' ');
    else
      left += "\n" + std::string(26, ' ');
    h += left + std::string(o.help) + "\n";
  }
  h += "  --help                  show this help\n";
  return h;
}

int Fail(std::string_view command, const Status& status) {
  std::fprintf(stderr, "numagrid %.*s: %s\n", static_cast<int>(command.size()),
               command.data(), status.message().c_str());
  return static_cast<int>(status.code());
}

}  // namespace numagrid::cli
