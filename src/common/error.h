// Typed errors for everything that can go wrong with a webhook request or a configuration.
// Each error kind knows its HTTP status, the official WeCom SDK code (for logs) and the short
// phrase the channel docs promise ("missing query params", "invalid signature", ...).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace cwc {

enum class ErrorKind {
  MissingQueryParams,   // 400 — the docs' "missing query params"
  BadQuery,             // 400 — duplicate, oversized or undecodable params (same documented phrase)
  InvalidSignature,     // 401 — the docs' "invalid signature" (-40001)
  StaleTimestamp,       // 401 — signed, but outside maxTimestampSkewSeconds (a replay, or a wrong clock)
  BadBody,              // 400 — body is not a JSON/XML envelope (-40002)
  BodyTooLarge,         // 413
  DecryptFailed,        // 400 — the docs' "decrypt failed" (-40007 / -40010 / -40008)
  ReceiveIdMismatch,    // 400 — the docs' "receiveId mismatch" (-40005)
  BadMessage,           // 400 — decrypted plaintext is not a valid bot message (-40002)
  MethodNotAllowed,     // 405
  NotFound,             // 404
  Overloaded,           // 503 — too many open streams
  Config,               // configuration rejected at instance creation (-40004 for keys)
  Internal,             // 500
};

struct ErrorInfo {
  int http_status;
  int wecom_code;
  std::string_view phrase;  // the documented short text that starts the response body
};

ErrorInfo error_info(ErrorKind kind);

// An error value: what went wrong (kind) and a precise, secret-free detail for logs.
struct Error {
  ErrorKind kind;
  std::string detail;
  int wecom_code_override = 0;  // a more specific SDK code than the kind's default, or 0

  int http_status() const { return error_info(kind).http_status; }
  int wecom_code() const { return wecom_code_override ? wecom_code_override : error_info(kind).wecom_code; }
  std::string_view phrase() const { return error_info(kind).phrase; }
  // "decrypt failed: pad value 0 outside 1..32" — what the log line and the HTTP body say.
  std::string describe() const;
};

inline Error make_error(ErrorKind kind, std::string detail, int wecom_code = 0) {
  return Error{kind, std::move(detail), wecom_code};
}

// A minimal expected<T, Error> (C++20 has no std::expected).
template <class T>
class Result {
 public:
  Result(T&& value) : state_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(const T& value) : state_(value) {}              // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}      // NOLINT(google-explicit-constructor)

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, Error> state_;
};

// Result<void> equivalent.
struct Ok {};
using Status = Result<Ok>;

}  // namespace cwc
