// The agents behind the reference gateway: a deterministic echo agent and an OpenAI-compatible
// streaming client; and the incremental SSE parser the latter uses.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <set>
#include <mutex>
#include <string>
#include <vector>

#include "gateway_config.h"

namespace httplib {
class Client;
}

namespace cwc::gateway {

// One inbound message, copied out of the plugin's callback (which only lends its strings).
struct Job {
  std::string account_id;
  std::string target;     // session peer: wecom:<userid> | wecom:group:<chatid>
  std::string sender_id;
  std::string chat_id;
  std::string message_id;
  std::string msgtype;
  std::string text;
  std::string quote_text;
  std::string stream_id;
  std::string media_json;
  bool group = false;

  std::string session_key() const { return account_id + "|" + target; }
};

// Where an agent writes its answer.
class ReplySink {
 public:
  virtual ~ReplySink() = default;
  virtual void push(const std::string& block) = 0;
  virtual void done() = 0;
  virtual void fail(const std::string& text) = 0;
  // true once the gateway is shutting down and the agent should stop early.
  virtual bool cancelled() const = 0;
  // Sleeps up to `ms`; returns false when woken by cancellation.
  virtual bool wait_ms(int ms) = 0;
  // An image (JPEG/PNG bytes) for the finishing reply; false with the reason when it cannot go
  // out as one (the agent should then send a link or a description).
  virtual bool attach_image(const std::string& /*bytes*/, std::string* error) {
    if (error) *error = "reply images are not supported here";
    return false;
  }
};

class Agent {
 public:
  virtual ~Agent() = default;
  virtual void run(const Job& job, ReplySink& sink) = 0;
  // Called once at shutdown after the grace period: abort blocking work (network reads) so
  // every running job returns promptly. Safe to call concurrently with run().
  virtual void cancel() {}
};

// `echo: <text>` in two blocks `delay_ms` apart. A text starting with "/fail" fails on purpose
// (a test hook for "agent failure is visible to the user"). Every run logs one debug line
// `echo agent: run msgid=<msgid> stream=<stream id>` (bench/soak.sh counts them to prove each
// message reached the agent exactly once).
class EchoAgent : public Agent {
 public:
  explicit EchoAgent(EchoSettings settings) : settings_(settings) {}
  void run(const Job& job, ReplySink& sink) override;

 private:
  EchoSettings settings_;
};

// Incremental parser for `text/event-stream` bodies: feed arbitrary chunks, get complete
// `data:` payloads (multi-line data joined with '\n'), in order.
class SseParser {
 public:
  std::vector<std::string> feed(std::string_view chunk);

 private:
  std::string buffer_;
  std::string data_;
  bool has_data_ = false;
};

// Extracts choices[0].delta.content from one chat-completions chunk; "" for anything else
// (role deltas, reasoning_content, usage). Sets *error for a payload that is not JSON and for an
// error event (`{"error": {...}}`); `"error": null`, which some compatible servers put in every
// chunk, is not an error.
std::string extract_delta_content(const std::string& payload, std::string* error);

class RequestWatchdog;

// Streams chat completions from an OpenAI-compatible endpoint. `timeout_seconds` is the total
// deadline for one answer (connect + every read, however the model dribbles its tokens); when it
// passes, the request is aborted and the user sees what arrived so far plus timeout_text().
class OpenAiAgent : public Agent {
 public:
  explicit OpenAiAgent(OpenAiSettings settings);
  void run(const Job& job, ReplySink& sink) override;
  void cancel() override;

  // What the user sees when the deadline passes ("⚠️ The model did not answer in 60 s; please
  // try again."); `partial`: some of the answer was already streamed.
  static std::string timeout_text(int seconds, bool partial);

 private:
  struct Turn {
    std::string role;
    std::string content;
  };
  OpenAiSettings settings_;
  std::string api_key_;
  std::mutex history_mutex_;
  std::map<std::string, std::vector<Turn>> history_;  // session key → turns
  // Requests in flight, so cancel() can abort them (a hung endpoint would otherwise hold
  // shutdown for the whole timeout).
  std::mutex active_mutex_;
  std::set<RequestWatchdog*> active_;
  bool cancelled_ = false;
};

}  // namespace cwc::gateway
