// Fuzzes the whole request handler with arbitrary requests (no valid signature can be forged,
// so this covers routing, method checks, the size cap, the query and the envelope up to the
// signature check). Input layout: first byte picks the method (or, for 8, the method is the
// first line), then "path\nquery\nbody".
// Oracle: every rejection answers a documented status and phrase with exactly one log line,
// nothing is dispatched, no stream is opened, and nothing answers 5xx.
#include <memory>

#include "core/instance.h"
#include "fuzz_support.h"
#include "support/fake_host.h"

namespace {

constexpr std::string_view kMethods[] = {"POST", "GET", "PUT", "HEAD", "", "post", "DELETE", "OPTIONS"};

bool documented(int status, std::string_view body) {
  auto starts = [&](std::string_view phrase) { return body.substr(0, phrase.size()) == phrase; };
  switch (status) {
    case 400: return starts("missing query params") || starts("invalid body") || starts("decrypt failed") ||
                     starts("receiveId mismatch") || starts("invalid message");
    case 401: return starts("invalid signature");
    case 404: return starts("not found");
    case 405: return starts("method not allowed");
    case 413: return starts("body too large");
    default: return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cwc;
  if (size == 0) return 0;
  std::string_view rest = fuzz::as_view(data + 1, size - 1);
  auto next_line = [&rest]() {
    const std::size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    return line;
  };
  core::HttpRequest request;
  const std::size_t method_index = data[0] % (std::size(kMethods) + 1);
  request.method = method_index < std::size(kMethods) ? kMethods[method_index] : next_line();
  request.path = next_line();
  request.query = next_line();
  request.body = rest;
  request.content_type = "application/json";
  request.remote_addr = "203.0.113.9";

  cwc::testing::FakeHost host;
  // A small body cap so the fuzzer reaches the 413 path with small inputs.
  auto created = core::Instance::create(fuzz::account_config(R"(,"maxBodyBytes":4096)"), host);
  CWC_FUZZ_CHECK(created.ok(), "fixed config rejected");
  auto& instance = **created;
  const core::HttpResponse response = instance.handle(request);

  // Only a byte-exact test vector (the seeds hold one) can pass the signature check.
  if (response.status == 200) return 0;
  CWC_FUZZ_CHECK(documented(response.status, response.body), "undocumented status or phrase");
  CWC_FUZZ_CHECK(host.logs.size() == 1, "a rejection must log exactly one line");
  CWC_FUZZ_CHECK(host.logs[0].line.find('\n') == std::string::npos, "log line injection");
  CWC_FUZZ_CHECK(host.logs[0].line.size() <= 2048, "log line echoes unbounded input");
  CWC_FUZZ_CHECK(response.body.size() <= 1024, "error body echoes unbounded input");
  CWC_FUZZ_CHECK(host.dispatched.empty(), "dispatch without a valid signature");
  // status_json() dumps lastError: it must stay valid JSON whatever bytes the request carried.
  CWC_FUZZ_CHECK(instance.status_json().find("\"streams\":0,") != std::string::npos, "stream opened");
  return 0;
}
