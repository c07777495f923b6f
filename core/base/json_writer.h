// JsonWriter: a small streaming JSON emitter for the CLI's --json output.
// Thread-compatible. Output is compact unless `pretty` is set; strings are
// escaped per RFC 8259, so keys and values from users are safe to print.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace numagrid::base {

class JsonWriter {
 public:
  explicit JsonWriter(bool pretty = true) : pretty_(pretty) {}

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  // Inside an object: the next value's key.
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view value);
  JsonWriter& Uint(std::uint64_t value);
  JsonWriter& Int(std::int64_t value);
  JsonWriter& Double(double value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();

  // Shorthands for Key(k).X(v).
  JsonWriter& Field(std::string_view k, std::string_view v) {
    return Key(k).String(v);
  }
  JsonWriter& Field(std::string_view k, const char* v) {
    return Key(k).String(v);
  }
  JsonWriter& Field(std::string_view k, std::uint64_t v) {
    return Key(k).Uint(v);
  }
  JsonWriter& Field(std::string_view k, std::uint32_t v) {
    return Key(k).Uint(v);
  }
  JsonWriter& Field(std::string_view k, std::int64_t v) {
    return Key(k).Int(v);
  }
  JsonWriter& Field(std::string_view k, int v) { return Key(k).Int(v); }
  JsonWriter& Field(std::string_view k, double v) { return Key(k).Double(v); }
  JsonWriter& Field(std::string_view k, bool v) { return Key(k).Bool(v); }

  // The document so far, with a trailing newline once it is complete.
  std::string str() const;

 private:
  void BeforeValue();
  void Newline();

  bool pretty_;
  std::string out_;
  // One entry per open container: true once it has a member.
  std::vector<bool> has_member_;
  bool after_key_ = false;
};

// Appends `s` to `out` as a quoted, escaped JSON string.
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace numagrid::base
