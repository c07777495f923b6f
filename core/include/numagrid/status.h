// Status: the outcome of a fallible numagrid call, and Result<T>, a value or
// the Status that explains why there is none.
//
// Thread safety: immutable values; safe to copy between threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace numagrid {

// One closed set of codes, chosen by what the caller does next. The numeric
// values are also the exit codes of the `numagrid` command line tool, so they
// are fixed forever (docs/cli.md lists them).
enum class StatusCode : std::uint8_t {
  kOk = 0,
  kInvalidArgument = 2,    // fix the input (oversize key, bad option, ...)
  kNotFound = 3,           // no such grid, key or partition
  kAlreadyExists = 4,      // the grid or key is there already
  kConflict = 5,           // a compare-and-set saw another version
  kVersionMismatch = 6,    // a segment or file of another layout version
  kCorruption = 7,         // bad bytes in a segment or on disk
  kResourceExhausted = 8,  // full grid or change ring after the bounded wait
  kPermissionDenied = 9,   // the file mode does not let this process in
  kIoError = 10,           // a system call failed
  kPanic = 11,             // state this handle cannot repair; it gave up
  kUnavailable = 12,       // not now: the grid is being recovered, or a sync
                           // write's durability was not confirmed in time
};

// Returns the stable lower-case name of `code` ("not_found", ...), used in
// JSON output and error messages.
std::string_view StatusCodeName(StatusCode code) noexcept;

class [[nodiscard]] Status {
 public:
  // An OK status; allocates nothing.
  Status() noexcept = default;
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() noexcept { return Status(); }

  bool ok() const noexcept { return code_ == StatusCode::kOk; }
  StatusCode code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  // "not_found: grid 'orders' does not exist", or "ok".
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context` and ": ".
  Status WithContext(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status NotFound(std::string m) {
  return {StatusCode::kNotFound, std::move(m)};
}
inline Status AlreadyExists(std::string m) {
  return {StatusCode::kAlreadyExists, std::move(m)};
}
inline Status Conflict(std::string m) {
  return {StatusCode::kConflict, std::move(m)};
}
inline Status VersionMismatch(std::string m) {
  return {StatusCode::kVersionMismatch, std::move(m)};
}
inline Status Corruption(std::string m) {
  return {StatusCode::kCorruption, std::move(m)};
}
inline Status ResourceExhausted(std::string m) {
  return {StatusCode::kResourceExhausted, std::move(m)};
}
inline Status PermissionDenied(std::string m) {
  return {StatusCode::kPermissionDenied, std::move(m)};
}
inline Status IoError(std::string m) {
  return {StatusCode::kIoError, std::move(m)};
}
inline Status Panic(std::string m) {
  return {StatusCode::kPanic, std::move(m)};
}
inline Status Unavailable(std::string m) {
  return {StatusCode::kUnavailable, std::move(m)};
}

// A value of type T, or the non-OK Status that explains its absence.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status)
      : v_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const noexcept { return v_.index() == 0; }
  // REQUIRES: ok().
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // The error, or an OK Status when a value is held.
  Status status() const { return ok() ? Status() : std::get<1>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace numagrid
