#include "common/error.h"

namespace cwc {

ErrorInfo error_info(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::MissingQueryParams: return {400, 0, "missing query params"};
    // The docs promise one 400 phrase for unusable query strings ("missing query params"); a
    // duplicate, undecodable or malformed param is just as unusable, and the detail names it.
    case ErrorKind::BadQuery: return {400, 0, "missing query params"};
    case ErrorKind::InvalidSignature: return {401, -40001, "invalid signature"};
    case ErrorKind::StaleTimestamp: return {401, 0, "stale timestamp"};
    case ErrorKind::BadBody: return {400, -40002, "invalid body"};
    case ErrorKind::BodyTooLarge: return {413, 0, "body too large"};
    case ErrorKind::DecryptFailed: return {400, -40007, "decrypt failed"};
    case ErrorKind::ReceiveIdMismatch: return {400, -40005, "receiveId mismatch"};
    case ErrorKind::BadMessage: return {400, -40002, "invalid message"};
    case ErrorKind::MethodNotAllowed: return {405, 0, "method not allowed"};
    case ErrorKind::NotFound: return {404, 0, "not found"};
    case ErrorKind::Overloaded: return {503, 0, "too many open streams"};
    case ErrorKind::Config: return {500, 0, "invalid configuration"};
    case ErrorKind::Internal: return {500, 0, "internal error"};
  }
  return {500, 0, "internal error"};
}

std::string Error::describe() const {
  std::string text(phrase());
  if (!detail.empty()) {
    text += ": ";
    text += detail;
  }
  return text;
}

}  // namespace cwc
