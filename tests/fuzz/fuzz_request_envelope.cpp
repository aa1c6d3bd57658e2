// Fuzzes the request envelope parser (JSON {"encrypt"} and XML <Encrypt>). Oracle: a success
// yields a non-empty ciphertext and the format of the first non-blank byte; a failure is BadBody.
#include "envelope/envelope.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cwc;
  auto env = envelope::parse_request_envelope(fuzz::as_view(data, size));
  if (env) {
    CWC_FUZZ_CHECK(!env->encrypt.empty(), "empty encrypt accepted");
    // Round trip through the reply builder/parser keeps the ciphertext (it is what we sign).
    const std::string reply = envelope::build_reply_envelope(env->format, env->encrypt, "sig", "1", "n");
    auto back = envelope::parse_reply_envelope(reply);
    if (env->format == envelope::Format::Json) {
      CWC_FUZZ_CHECK(back.ok() && back->encrypt == env->encrypt, "JSON reply envelope round trip");
    }
  } else {
    CWC_FUZZ_CHECK(env.error().kind == ErrorKind::BadBody, "request envelope error kind");
    CWC_FUZZ_CHECK(env.error().describe().rfind("invalid body", 0) == 0, "undocumented phrase");
  }
  return 0;
}
