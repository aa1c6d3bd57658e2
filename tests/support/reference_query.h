// parse_signed_query as it was first written: split the whole query into a list with
// parse_query, then pick the signed parameters out of it. The production version reads the
// parameters in one pass without copies; the tests and fuzz_query check that both give the
// same result (values, or error kind and detail) for every query.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "envelope/envelope.h"

namespace cwc::testing {

inline Result<envelope::SignedQuery> reference_signed_query(std::string_view query, bool want_echostr) {
  auto params = envelope::parse_query(query);
  if (!params) return params.error();
  envelope::SignedQuery out;
  struct Slot {
    std::string_view name;
    std::string* target;
    bool seen = false;
  };
  std::vector<Slot> slots = {{"msg_signature", &out.msg_signature}, {"timestamp", &out.timestamp}, {"nonce", &out.nonce}};
  if (want_echostr) slots.push_back({"echostr", &out.echostr});
  for (auto& param : *params) {
    for (auto& slot : slots) {
      if (param.name != slot.name) continue;
      if (slot.seen) return make_error(ErrorKind::BadQuery, std::string(slot.name) + " given twice");
      if (param.value.size() > 4096) {
        return make_error(ErrorKind::BadQuery, std::string(slot.name) + " longer than 4096 bytes");
      }
      slot.seen = true;
      *slot.target = param.value;
    }
  }
  std::string missing;
  for (const auto& slot : slots) {
    if (slot.seen && !slot.target->empty()) continue;
    if (!missing.empty()) missing += ", ";
    missing += slot.name;
  }
  if (!missing.empty()) return make_error(ErrorKind::MissingQueryParams, missing);
  if (out.timestamp.size() > 20 ||
      !std::all_of(out.timestamp.begin(), out.timestamp.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return make_error(ErrorKind::BadQuery, "timestamp is not a decimal number");
  }
  return out;
}

// Empty when both agree, else what differs.
inline std::string signed_query_difference(const Result<envelope::SignedQuery>& got,
                                           const Result<envelope::SignedQuery>& want) {
  if (got.ok() != want.ok()) {
    return got.ok() ? "accepted, reference says " + want.error().describe()
                    : "rejected (" + got.error().describe() + "), reference accepts";
  }
  if (!got.ok()) {
    if (got.error().kind != want.error().kind || got.error().describe() != want.error().describe()) {
      return "error \"" + got.error().describe() + "\" vs reference \"" + want.error().describe() + "\"";
    }
    return {};
  }
  if (got->msg_signature != want->msg_signature || got->timestamp != want->timestamp || got->nonce != want->nonce ||
      got->echostr != want->echostr) {
    return "different values";
  }
  return {};
}

}  // namespace cwc::testing
