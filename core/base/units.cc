#include "core/base/units.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace numagrid::base {

Result<std::uint64_t> ParseUint(std::string_view text, std::string_view what,
                                std::uint64_t max) {
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() ||
      v > max) {
    return InvalidArgument(std::string(what) + " must be an integer in [0, " +
                           std::to_string(max) + "], got '" +
                           std::string(text) + "'");
  }
  return v;
}

Result<std::uint64_t> ParseSize(std::string_view text) {
  std::size_t i = 0;
  while (
      i < text.size() &&
      (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    ++i;
  }
  const std::string number(text.substr(0, i));
  std::string unit(text.substr(i));
  for (char& c : unit) c = static_cast<char>(std::tolower(c));
  auto bad = [&] {
    return InvalidArgument("bad size '" + std::string(text) +
                           "': use bytes or a unit such as 64MiB or 2GiB");
  };
  if (number.empty() || number.front() == '.') return bad();
  double mult = 1;
  if (unit.empty() || unit == "b") {
    mult = 1;
  } else if (unit == "k" || unit == "kb" || unit == "kib") {
    mult = 1024.0;
  } else if (unit == "m" || unit == "mb" || unit == "mib") {
    mult = 1024.0 * 1024;
  } else if (unit == "g" || unit == "gb" || unit == "gib") {
    mult = 1024.0 * 1024 * 1024;
  } else if (unit == "t" || unit == "tb" || unit == "tib") {
    mult = 1024.0 * 1024 * 1024 * 1024;
  } else {
    return bad();
  }
  char* end = nullptr;
  const double v = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size() || !std::isfinite(v)) return bad();
  const double bytes = v * mult;
  if (bytes >= 1.8e19) return bad();
  return static_cast<std::uint64_t>(std::llround(bytes));
}

std::string FormatSize(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0 || v == std::floor(v)) {
    std::snprintf(buf, sizeof buf, "%.0f %s", v, kUnits[u]);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  }
  return buf;
}

Result<std::uint64_t> ParseDurationUs(std::string_view text,
                                      std::string_view what) {
  std::size_t i = 0;
  while (
      i < text.size() &&
      (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    ++i;
  }
  const std::string number(text.substr(0, i));
  const std::string_view unit = text.substr(i);
  auto bad = [&] {
    return InvalidArgument(
        std::string(what) + ": bad duration '" + std::string(text) +
        "': use a number and us, ms, s, m, h or d (e.g. 10ms)");
  };
  if (number.empty() || number.front() == '.') return bad();
  double mult = 0;
  if (unit == "us") {
    mult = 1;
  } else if (unit.empty() || unit == "ms") {
    mult = 1e3;
  } else if (unit == "s") {
    mult = 1e6;
  } else if (unit == "m") {
    mult = 60e6;
  } else if (unit == "h") {
    mult = 3600e6;
  } else if (unit == "d") {
    mult = 86400e6;
  } else {
    return bad();
  }
  char* end = nullptr;
  const double v = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size() || !(v >= 0)) return bad();
  const double us = v * mult;
  if (us > 1e18) return bad();
  return static_cast<std::uint64_t>(us + 0.5);
}

}  // namespace numagrid::base
