// A strict JSON parser for the report tests (RFC 8259: no trailing commas,
// no NaN or Infinity, no leading zeros, no control characters in strings,
// nothing after the value but whitespace), into a small value tree.
//
// Thread safety: a JsonValue is a plain value.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace numagrid::bench::testing {

struct JsonValue {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<JsonValue> array;
  std::map<std::string, JsonValue> object;

  bool is(Kind k) const { return kind == k; }
  bool Has(const std::string& key) const {
    return kind == Kind::kObject && object.count(key) != 0;
  }
  // REQUIRES: Has(key).
  const JsonValue& operator[](const std::string& key) const {
    return object.at(key);
  }
};

// The value of `text`, or nullopt with *error saying where parsing failed.
// A key given twice in one object is an error too.
std::optional<JsonValue> ParseStrictJson(std::string_view text,
                                         std::string* error);

}  // namespace numagrid::bench::testing
