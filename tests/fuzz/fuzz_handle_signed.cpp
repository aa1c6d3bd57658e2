// Fuzzes the request handler through the real, correctly signed and encrypted path: the fuzzer's
// bytes become the decrypted message(s), so it reaches the message parser, the policy, the
// stream table and the reply sealing exactly as WeCom's requests would.
// Input: flags byte, then up to 4 plaintexts separated by NUL bytes, posted in order to one
// fresh instance (FakeHost randomness is deterministic: the first stream id is
// s0102030405060708090a0b0c0d0e0f10, so seeds can refresh it).
//   bit 0: XML envelope instead of JSON     bit 1: GET VerifyURL (echostr) instead of POST
//   bit 2: the host refuses dispatch        bits 3-4: config variant (open/pairing/allowlist/welcome)
//   bit 5: the agent pushes text            bit 6: the agent finishes its streams
// Oracle: VerifyURL echoes the plaintext (or refuses an echostr over the 4096-byte parameter
// bound with the documented 400); 200 answers open with the peer's key into JSON (or are
// empty); rejections are "400 invalid message" with exactly one log line; and the host only
// ever sees valid UTF-8.
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/instance.h"
#include "envelope/envelope.h"
#include "fuzz_support.h"
#include "support/fake_host.h"

namespace {

constexpr std::string_view kConfigs[] = {
    R"(,"dm":{"policy":"open","allowFrom":["*"]})",
    R"(,"dm":{"policy":"pairing"})",
    R"(,"dm":{"policy":"allowlist","allowFrom":["zhangsan"]},"groupPolicy":"allowlist","groupAllowFrom":["g1"])",
    R"(,"welcomeText":"hi","dm":{"policy":"open","allowFrom":["*"]},"groups":{"*":{"requireMention":true}})",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cwc;
  if (size == 0) return 0;
  const std::uint8_t flags = data[0];
  std::vector<std::string_view> messages;
  std::string_view rest = fuzz::as_view(data + 1, size - 1);
  while (messages.size() < 4) {
    const std::size_t nul = rest.find('\0');
    messages.push_back(rest.substr(0, nul));
    if (nul == std::string_view::npos) break;
    rest = rest.substr(nul + 1);
  }

  cwc::testing::FakeHost host;
  host.accept_dispatch = (flags & 4) == 0;
  auto created = core::Instance::create(fuzz::account_config(kConfigs[(flags >> 3) & 3]), host);
  CWC_FUZZ_CHECK(created.ok(), "fixed config rejected");
  auto& instance = **created;
  const cwc::testing::WecomPeer peer;
  const auto format = (flags & 1) ? envelope::Format::Xml : envelope::Format::Json;

  for (const std::string_view plaintext : messages) {
    const std::size_t logs_before = host.logs.size();
    const std::size_t dispatched_before = host.dispatched.size();
    if (flags & 2) {
      const std::string query = peer.verify_query(plaintext);
      const core::HttpResponse res = instance.handle({"GET", "/wecom", query, "", "", ""});
      if (res.status == 400) {
        // A query parameter is bounded (4096 bytes, docs/security.md), and a long plaintext makes
        // an echostr longer than that: the documented refusal, never for a short one.
        const auto echostr = envelope::percent_decode(std::string_view(query).substr(query.find("&echostr=") + 9));
        CWC_FUZZ_CHECK(res.body.rfind("missing query params", 0) == 0 && echostr && echostr->size() > 4096,
                       "VerifyURL refused an echostr within the bound");
        continue;
      }
      CWC_FUZZ_CHECK(res.status == 200 && res.body == plaintext, "VerifyURL must echo the bare plaintext");
      continue;
    }
    const auto signed_request = peer.callback(plaintext, format);
    const core::HttpResponse res =
        instance.handle({"POST", "/wecom", signed_request.query, "application/json", signed_request.body, ""});
    if (res.status == 200) {
      if (!res.body.empty()) {
        std::string error;
        const std::string reply = peer.open_reply(res.body, "8427661", &error);
        CWC_FUZZ_CHECK(error.empty(), "reply does not open with the peer's key");
        CWC_FUZZ_CHECK(nlohmann::json::accept(reply), "reply plaintext is not JSON");
      }
    } else {
      CWC_FUZZ_CHECK(res.status == 400 && res.body.rfind("invalid message", 0) == 0, "unexpected rejection");
      CWC_FUZZ_CHECK(host.logs.size() == logs_before + 1, "a rejection must log exactly one line");
      CWC_FUZZ_CHECK(host.dispatched.size() == dispatched_before, "a rejected message was dispatched");
    }
    for (std::size_t i = dispatched_before; i < host.dispatched.size(); ++i) {
      const auto& d = host.dispatched[i];
      for (const std::string* s : {&d.text, &d.quote_text, &d.sender_id, &d.message_id, &d.chat_id, &d.target,
                                   &d.response_url, &d.media_json}) {
        CWC_FUZZ_CHECK(fuzz::valid_utf8(*s), "the host received invalid UTF-8");
      }
      if (flags & 32) instance.push(d.stream_id, d.text, stream::PushMode::Append);
      if (flags & 64) instance.finish(d.stream_id, stream::FinishKind::Done, "");
    }
    for (std::size_t i = logs_before; i < host.logs.size(); ++i) {
      CWC_FUZZ_CHECK(host.logs[i].line.find('\n') == std::string::npos, "log line injection");
    }
  }
  instance.tick();
  return 0;
}
