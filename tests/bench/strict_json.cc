// Strict JSON parser: recursive descent over the text.
#include "tests/bench/strict_json.h"

#include <cstdlib>

namespace numagrid::bench::testing {
namespace {

class Parser {
 public:
  explicit Parser(std::string_view t) : t_(t) {}

  std::optional<JsonValue> Document(std::string* error) {
    JsonValue v;
    SkipSpace();
    if (Value(v, 0)) {
      SkipSpace();
      if (pos_ == t_.size()) return v;
      Error("text after the value");
    }
    *error = error_ + " at offset " + std::to_string(pos_);
    return std::nullopt;
  }

 private:
  bool Error(const char* what) {
    if (error_.empty()) error_ = what;
    return false;
  }
  void SkipSpace() {
    while (pos_ < t_.size() && (t_[pos_] == ' ' || t_[pos_] == '\n' ||
                                t_[pos_] == '\r' || t_[pos_] == '\t')) {
      ++pos_;
    }
  }
  bool Eat(char c) {
    if (pos_ < t_.size() && t_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool Literal(std::string_view word) {
    if (t_.substr(pos_, word.size()) != word) return Error("bad literal");
    pos_ += word.size();
    return true;
  }

  bool Value(JsonValue& v, int depth) {
    if (depth > 64) return Error("nested too deep");
    if (pos_ >= t_.size()) return Error("unexpected end");
    switch (t_[pos_]) {
      case '{':
        return Object(v, depth);
      case '[':
        return Array(v, depth);
      case '"':
        v.kind = JsonValue::Kind::kString;
        return String(v.string);
      case 't':
        v.kind = JsonValue::Kind::kBool;
        v.boolean = true;
        return Literal("true");
      case 'f':
        v.kind = JsonValue::Kind::kBool;
        return Literal("false");
      case 'n':
        v.kind = JsonValue::Kind::kNull;
        return Literal("null");
      default:
        v.kind = JsonValue::Kind::kNumber;
        return Number(v.number);
    }
  }

  bool Object(JsonValue& v, int depth) {
    v.kind = JsonValue::Kind::kObject;
    ++pos_;  // {
    SkipSpace();
    if (Eat('}')) return true;
    for (;;) {
      SkipSpace();
      std::string key;
      if (pos_ >= t_.size() || t_[pos_] != '"') return Error("expected a key");
      if (!String(key)) return false;
      SkipSpace();
      if (!Eat(':')) return Error("expected ':'");
      SkipSpace();
      JsonValue member;
      if (!Value(member, depth + 1)) return false;
      if (!v.object.emplace(key, std::move(member)).second) {
        return Error("duplicate key");
      }
      SkipSpace();
      if (Eat('}')) return true;
      if (!Eat(',')) return Error("expected ',' or '}'");
    }
  }

  bool Array(JsonValue& v, int depth) {
    v.kind = JsonValue::Kind::kArray;
    ++pos_;  // [
    SkipSpace();
    if (Eat(']')) return true;
    for (;;) {
      SkipSpace();
      JsonValue element;
      if (!Value(element, depth + 1)) return false;
      v.array.push_back(std::move(element));
      SkipSpace();
      if (Eat(']')) return true;
      if (!Eat(',')) return Error("expected ',' or ']'");
    }
  }

  bool String(std::string& out) {
    ++pos_;  // "
    while (pos_ < t_.size()) {
      const char c = t_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) {
        return Error("control character in a string");
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= t_.size()) break;
      const char e = t_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          if (pos_ + 4 > t_.size()) return Error("short \\u escape");
          unsigned code = 0;
          for (int i = 0; i < 4; ++i) {
            const char h = t_[pos_++];
            code <<= 4;
            if (h >= '0' && h <= '9') {
              code |= static_cast<unsigned>(h - '0');
            } else if (h >= 'a' && h <= 'f') {
              code |= static_cast<unsigned>(h - 'a' + 10);
            } else if (h >= 'A' && h <= 'F') {
              code |= static_cast<unsigned>(h - 'A' + 10);
            } else {
              return Error("bad \\u escape");
            }
          }
          // The report escapes only control characters: ASCII is enough.
          out += code < 0x80 ? static_cast<char>(code) : '?';
          break;
        }
        default:
          return Error("bad escape");
      }
    }
    return Error("unterminated string");
  }

  bool Number(double& out) {
    const std::size_t start = pos_;
    Eat('-');
    if (Eat('0')) {
      // no leading zeros
    } else if (pos_ < t_.size() && t_[pos_] >= '1' && t_[pos_] <= '9') {
      while (pos_ < t_.size() && t_[pos_] >= '0' && t_[pos_] <= '9') ++pos_;
    } else {
      return Error("bad number");
    }
    if (Eat('.')) {
      if (pos_ >= t_.size() || t_[pos_] < '0' || t_[pos_] > '9') {
        return Error("bad fraction");
      }
      while (pos_ < t_.size() && t_[pos_] >= '0' && t_[pos_] <= '9') ++pos_;
    }
    if (Eat('e') || Eat('E')) {
      if (!Eat('+')) Eat('-');
      if (pos_ >= t_.size() || t_[pos_] < '0' || t_[pos_] > '9') {
        return Error("bad exponent");
      }
      while (pos_ < t_.size() && t_[pos_] >= '0' && t_[pos_] <= '9') ++pos_;
    }
    out = std::strtod(std::string(t_.substr(start, pos_ - start)).c_str(),
                      nullptr);
    return true;
  }

  std::string_view t_;
  std::size_t pos_ = 0;
  std::string error_;
};

}  // namespace

std::optional<JsonValue> ParseStrictJson(std::string_view text,
                                         std::string* error) {
  return Parser(text).Document(error);
}

}  // namespace numagrid::bench::testing
