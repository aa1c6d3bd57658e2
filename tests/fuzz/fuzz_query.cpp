// Fuzzes query-string decoding: percent_decode, parse_query and parse_signed_query (GET and
// POST flavours). Oracle: a success carries every signed param, non-empty and within bounds,
// and a numeric timestamp; a failure is one of the documented query errors; and
// parse_signed_query gives exactly what the split-then-pick reference gives.
#include <algorithm>

#include "common/text_checks.h"
#include "envelope/envelope.h"
#include "fuzz_support.h"
#include "support/reference_query.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cwc;
  const std::string_view query = fuzz::as_view(data, size);

  for (const bool keep_utf8 : {false, true}) {
    const std::string shown = checks::printable(query, 64, keep_utf8);
    CWC_FUZZ_CHECK(shown.size() <= 64 + 3 && fuzz::valid_utf8(shown), "printable() output unbounded or not UTF-8");
    for (const char c : shown) CWC_FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7F, "control byte in printable()");
  }

  if (auto decoded = envelope::percent_decode(query)) {
    CWC_FUZZ_CHECK(decoded->size() <= query.size(), "percent_decode grew its input");
  }
  if (auto params = envelope::parse_query(query)) {
    for (const auto& p : *params) CWC_FUZZ_CHECK(p.name.size() + p.value.size() < query.size() + 1, "param outgrew query");
  } else {
    CWC_FUZZ_CHECK(params.error().kind == ErrorKind::BadQuery, "parse_query error kind");
  }

  for (const bool want_echostr : {false, true}) {
    auto q = envelope::parse_signed_query(query, want_echostr);
    // Differential: the one-pass reader against the split-then-pick reference.
    CWC_FUZZ_CHECK(testing::signed_query_difference(q, testing::reference_signed_query(query, want_echostr)).empty(),
                   "parse_signed_query and the reference disagree");
    if (q) {
      CWC_FUZZ_CHECK(!q->msg_signature.empty() && !q->timestamp.empty() && !q->nonce.empty(), "empty signed param");
      CWC_FUZZ_CHECK(want_echostr == !q->echostr.empty(), "echostr presence");
      CWC_FUZZ_CHECK(std::all_of(q->timestamp.begin(), q->timestamp.end(), [](char c) { return c >= '0' && c <= '9'; }),
                     "non-numeric timestamp accepted");
      for (const auto* v : {&q->msg_signature, &q->timestamp, &q->nonce, &q->echostr}) {
        CWC_FUZZ_CHECK(v->size() <= 4096, "oversized param accepted");
      }
    } else {
      const auto kind = q.error().kind;
      CWC_FUZZ_CHECK(kind == ErrorKind::MissingQueryParams || kind == ErrorKind::BadQuery, "signed query error kind");
      CWC_FUZZ_CHECK(q.error().describe().rfind("missing query params", 0) == 0, "undocumented phrase");
      CWC_FUZZ_CHECK(q.error().describe().size() < 512, "error detail echoes unbounded input");
    }
  }
  return 0;
}
