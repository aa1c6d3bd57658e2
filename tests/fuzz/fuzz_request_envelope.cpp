// Fuzzes the request envelope parser (JSON {"encrypt"} and XML <Encrypt>). Oracle: a success
// yields a non-empty ciphertext and the format of the first non-blank byte; a failure is BadBody.
#include <nlohmann/json.hpp>

#include "envelope/envelope.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cwc;
  auto env = envelope::parse_request_envelope(fuzz::as_view(data, size));
  if (env) {
    CWC_FUZZ_CHECK(!env->encrypt().empty(), "empty encrypt accepted");
    // Round trip through the reply builder/parser keeps the ciphertext (it is what we sign).
    const std::string reply = envelope::build_reply_envelope(env->format, env->encrypt(), "sig", "1", "n");
    auto back = envelope::parse_reply_envelope(reply);
    if (env->format == envelope::Format::Json) {
      CWC_FUZZ_CHECK(back.ok() && back->encrypt == env->encrypt(), "JSON reply envelope round trip");
      // The plain-shape fast path must agree with a general JSON parse of the same body.
      std::string_view text = fuzz::as_view(data, size);
      if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
      auto doc = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
      if (!doc.is_discarded() && doc.is_object() && doc.contains("encrypt") && doc["encrypt"].is_string()) {
        CWC_FUZZ_CHECK(doc["encrypt"].get<std::string>() == env->encrypt(), "fast path disagrees with nlohmann");
      }
    }
  } else {
    CWC_FUZZ_CHECK(env.error().kind == ErrorKind::BadBody, "request envelope error kind");
    CWC_FUZZ_CHECK(env.error().describe().rfind("invalid body", 0) == 0, "undocumented phrase");
  }
  return 0;
}
