// Fuzzes the reply envelope parser (what WeCom, the simulator and the tests read back).
#include "envelope/envelope.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cwc;
  auto env = envelope::parse_reply_envelope(fuzz::as_view(data, size));
  if (env) {
    CWC_FUZZ_CHECK(!env->encrypt.empty() && !env->signature.empty(), "reply without encrypt/signature accepted");
  } else {
    CWC_FUZZ_CHECK(env.error().kind == ErrorKind::BadBody, "reply envelope error kind");
  }
  return 0;
}
