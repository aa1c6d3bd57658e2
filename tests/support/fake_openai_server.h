// A fake OpenAI-compatible model endpoint for tests: POST /v1/chat/completions answered as an
// SSE stream (`data: {chat.completion.chunk}` lines, then `data: [DONE]`), on 127.0.0.1 and a
// free port. Failure modes (HTTP status, a hang, a connection dropped mid-stream) are options,
// so agent error paths can be tested without any network. Shared by the gateway's unit and
// end-to-end tests and by the `fake-openai` executable (fake_openai_main.cpp).
#pragma once

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
}

namespace cwc::testing {

struct FakeOpenAiOptions {
  // Each chunk becomes one `choices[0].delta.content` event.
  std::vector<std::string> chunks = {"Hello", " from", " the fake model."};
  // Pause before each chunk (lets tests watch a stream grow, or outlast a timeout).
  int delay_ms = 0;
  // Anything but 200 answers with an OpenAI-style JSON error body instead of a stream.
  int status = 200;
  // Sends the headers, then nothing at all until the server stops (a hung model).
  bool hang = false;
  // Sends the first chunk, then drops the connection without `[DONE]`.
  bool close_mid_stream = false;
  // When not empty, a `delta.reasoning_content` event carrying this text precedes the chunks
  // (hosts must not forward it to users).
  std::string reasoning;
  // When not empty, requests without `Authorization: Bearer <api_key>` get a 401.
  std::string api_key;
  // When not empty, the first chunk is followed by an SSE error event
  // `data: {"error":{"message":<error_event>,...}}` and the stream ends without `[DONE]` (what
  // OpenAI sends when a request fails after streaming has begun).
  std::string error_event;
  // Every chunk also carries `"error": null` (some OpenAI-compatible servers do): not an error.
  bool null_error_field = false;
};

class FakeOpenAiServer {
 public:
  // Binds 127.0.0.1 (`port` 0: any free port) and serves on its own thread. Throws
  // std::runtime_error if the port cannot be bound.
  explicit FakeOpenAiServer(FakeOpenAiOptions options = {}, int port = 0);
  // Stops serving; hung and delayed streams are released first, so this never blocks long.
  ~FakeOpenAiServer();
  FakeOpenAiServer(const FakeOpenAiServer&) = delete;
  FakeOpenAiServer& operator=(const FakeOpenAiServer&) = delete;

  int port() const { return port_; }
  // "http://127.0.0.1:<port>/v1": what agent.openai.baseUrl expects.
  std::string base_url() const;

  // Applies to requests that arrive from now on.
  void set_options(FakeOpenAiOptions options);

  // How many chat-completions requests arrived, and the last one's JSON body (null if none).
  int requests() const;
  nlohmann::json last_request() const;
  // The Authorization header of the last request ("" if none).
  std::string last_authorization() const;

  // Idempotent; the destructor calls it.
  void stop();

 private:
  // Waits up to `ms` unless stop() comes first; false once stopping.
  bool pause(int ms);

  mutable std::mutex mutex_;
  std::condition_variable stop_cv_;
  FakeOpenAiOptions options_;
  int requests_ = 0;
  nlohmann::json last_request_;
  std::string last_authorization_;
  bool stopping_ = false;
  int port_ = 0;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace cwc::testing
