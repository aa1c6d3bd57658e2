// Fuzzes the decrypted message model (JSON intelligent-bot messages and XML classic callbacks).
// Oracle: the single-pass JSON reader agrees with the full parser wherever it answers; a parsed
// message honours the model's promises (ids present where required, bounded, valid UTF-8
// everywhere: the host is promised UTF-8 strings); a failure is BadMessage. The stream reply
// writer (which skips clean text 16 bytes at a time) writes any bytes exactly as nlohmann does.
#include <nlohmann/json.hpp>

#include "common/text_checks.h"
#include "fuzz_support.h"
#include "message/message.h"
#include "message/message_fast_path.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cwc;
  const std::string_view input = fuzz::as_view(data, size);
  // Differential: the core's validator agrees with the independent one in fuzz_support.h.
  CWC_FUZZ_CHECK(checks::is_valid_utf8(input) == fuzz::valid_utf8(input), "UTF-8 validators disagree");
  // Differential: the reply writer against nlohmann's serializer, for the input as the answer.
  const nlohmann::ordered_json reference = {{"msgtype", "stream"},
                                            {"stream", {{"id", "s1"}, {"finish", true}, {"content", input}}}};
  CWC_FUZZ_CHECK(message::build_stream_reply({"s1", true, std::string(input), {}}) ==
                     reference.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                 "stream reply writer and nlohmann disagree");
  // Differential: wherever the single-pass reader answers, the nlohmann parser gives the same
  // message for valid UTF-8 (what parse_message lets through; message_fast_path.h).
  const auto fast = checks::is_valid_utf8(input) ? message::detail::parse_common_json_message(input) : std::nullopt;
  if (fast) {
    auto full = message::detail::parse_json_message_full(input);
    CWC_FUZZ_CHECK(full.ok(), "fast path accepted a message the full parser rejects");
    CWC_FUZZ_CHECK(*fast == *full, "fast path and full parser disagree");
  }
  auto msg = message::parse_message(input);
  if (!msg) {
    CWC_FUZZ_CHECK(msg.error().kind == ErrorKind::BadMessage, "message error kind");
    CWC_FUZZ_CHECK(msg.error().describe().rfind("invalid message", 0) == 0, "undocumented phrase");
    return 0;
  }
  CWC_FUZZ_CHECK(!msg->msgtype.empty(), "message without msgtype");
  if (msg->type != message::MsgType::StreamRefresh) CWC_FUZZ_CHECK(!msg->from_userid.empty(), "no from.userid");
  if (msg->is_user_message()) CWC_FUZZ_CHECK(!msg->msgid.empty(), "user message without msgid");
  if (msg->type == message::MsgType::StreamRefresh) CWC_FUZZ_CHECK(!msg->stream_id.empty(), "refresh without id");
  if (msg->type == message::MsgType::Event) CWC_FUZZ_CHECK(!msg->event_type.empty(), "event without type");
  CWC_FUZZ_CHECK(msg->msgid.size() <= 512 && msg->stream_id.size() <= 512, "unbounded id");
  for (const std::string* s : {&msg->msgtype, &msg->msgid, &msg->aibotid, &msg->chatid, &msg->from_userid,
                               &msg->response_url, &msg->text, &msg->quote_text, &msg->stream_id, &msg->event_type}) {
    CWC_FUZZ_CHECK(fuzz::valid_utf8(*s), "invalid UTF-8 reaches the model");
  }
  for (const auto& item : msg->media) {
    CWC_FUZZ_CHECK(!item.url.empty() && fuzz::valid_utf8(item.url), "bad media url");
  }
  // The reply builders must cope with whatever the message carried.
  (void)message::build_stream_reply({msg->stream_id, false, msg->text, {}});
  (void)message::build_text_reply(msg->quote_text);
  return 0;
}
