// Fuzzes `channels.wecom` configuration parsing. Configuration is operator input, but it arrives
// as text through the ABI: it must never crash, and an accepted config keeps its invariants.
#include "config/config.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cwc;
  auto config = config::parse_channel_config(fuzz::as_view(data, size));
  if (!config) {
    CWC_FUZZ_CHECK(config.error().kind == ErrorKind::Config, "config error kind");
    CWC_FUZZ_CHECK(config.error().detail.rfind("channels.wecom", 0) == 0, "config error does not name the key");
    return 0;
  }
  CWC_FUZZ_CHECK(!config->accounts.empty(), "no accounts");
  CWC_FUZZ_CHECK(config->find_account(config->default_account) != nullptr, "default account missing");
  for (const auto& a : config->accounts) {
    CWC_FUZZ_CHECK(!a.token.empty() && !a.webhook_path.empty() && a.webhook_path.front() == '/', "account invariants");
    CWC_FUZZ_CHECK(a.max_body_bytes >= 1024 && a.stream_ttl_seconds >= 60, "bounds");
  }
  return 0;
}
