#include "support/fake_openai_server.h"

#include <httplib.h>

#include <chrono>
#include <stdexcept>

namespace cwc::testing {
namespace {

using nlohmann::json;

std::string sse_event(const json& payload) { return "data: " + payload.dump() + "\n\n"; }

json chunk_event(const std::string& model, const json& delta, const json& finish_reason = nullptr) {
  return {{"id", "chatcmpl-fake"},
          {"object", "chat.completion.chunk"},
          {"created", 0},
          {"model", model},
          {"choices", json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", finish_reason}}})}};
}

json error_body(int status, const std::string& message) {
  return {{"error", {{"message", message}, {"type", "fake_error"}, {"code", status}}}};
}

}  // namespace

FakeOpenAiServer::FakeOpenAiServer(FakeOpenAiOptions options, int port)
    : options_(std::move(options)), server_(std::make_unique<httplib::Server>()) {
  auto& server = *server_;
  // Idle keep-alive connections hold a worker until this timeout even after stop(); keep it
  // short so tearing a test down stays fast.
  server.set_keep_alive_timeout(1);
  server.new_task_queue = [] { return new httplib::ThreadPool(8); };

  server.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    FakeOpenAiOptions current;  // a snapshot: set_options() must not change a running stream
    {
      std::lock_guard lock(mutex_);
      ++requests_;
      last_request_ = json::parse(req.body, nullptr, false);
      last_authorization_ = req.get_header_value("Authorization");
      current = options_;
    }
    const json request = json::parse(req.body, nullptr, false);
    if (!request.is_object()) {
      res.status = 400;
      res.set_content(error_body(400, "the body is not JSON").dump(), "application/json");
      return;
    }
    if (!current.api_key.empty() && req.get_header_value("Authorization") != "Bearer " + current.api_key) {
      res.status = 401;
      res.set_content(error_body(401, "Incorrect API key provided").dump(), "application/json");
      return;
    }
    if (current.status != 200) {
      res.status = current.status;
      res.set_content(error_body(current.status, "fake failure " + std::to_string(current.status)).dump(),
                      "application/json");
      return;
    }
    const std::string model = request.value("model", std::string("fake-model"));
    res.set_chunked_content_provider(
        "text/event-stream", [this, current, model](std::size_t, httplib::DataSink& sink) {
          auto send = [&sink](const std::string& text) { return sink.write(text.data(), text.size()); };
          if (current.hang) {
            while (pause(50)) {
            }
            return false;  // drop the connection: the server is stopping
          }
          if (!send(sse_event(chunk_event(model, {{"role", "assistant"}, {"content", ""}})))) return false;
          if (!current.reasoning.empty() &&
              !send(sse_event(chunk_event(model, {{"reasoning_content", current.reasoning}})))) {
            return false;
          }
          for (std::size_t i = 0; i < current.chunks.size(); ++i) {
            if (current.delay_ms > 0 && !pause(current.delay_ms)) return false;
            json event = chunk_event(model, {{"content", current.chunks[i]}});
            if (current.null_error_field) event["error"] = nullptr;
            if (!send(sse_event(event))) return false;
            if (!current.error_event.empty()) {
              json error = error_body(500, current.error_event);
              error["error"]["type"] = "server_error";
              send(sse_event(error));
              sink.done();  // a clean end of the body, but no [DONE]
              return true;
            }
            // Returning false aborts the chunked body without its terminating chunk: the client
            // sees the connection break off mid-stream.
            if (current.close_mid_stream) return false;
          }
          if (!send(sse_event(chunk_event(model, json::object(), "stop"))) || !send("data: [DONE]\n\n")) return false;
          sink.done();
          return true;
        });
  });

  server.Get("/stats", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mutex_);
    res.set_content(json({{"requests", requests_}}).dump(), "application/json");
  });

  if (port == 0) {
    port_ = server.bind_to_any_port("127.0.0.1");
  } else if (server.bind_to_port("127.0.0.1", port)) {
    port_ = port;
  } else {
    port_ = -1;
  }
  if (port_ <= 0) throw std::runtime_error("fake OpenAI server cannot bind 127.0.0.1:" + std::to_string(port));
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // Server::stop() only works once the accept loop runs; wait for it (bounded) so a test that
  // stops at once cannot leave the thread listening forever.
  for (int i = 0; i < 5000 && !server_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

FakeOpenAiServer::~FakeOpenAiServer() { stop(); }

std::string FakeOpenAiServer::base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

void FakeOpenAiServer::set_options(FakeOpenAiOptions options) {
  std::lock_guard lock(mutex_);
  options_ = std::move(options);
}

int FakeOpenAiServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

nlohmann::json FakeOpenAiServer::last_request() const {
  std::lock_guard lock(mutex_);
  return last_request_;
}

std::string FakeOpenAiServer::last_authorization() const {
  std::lock_guard lock(mutex_);
  return last_authorization_;
}

bool FakeOpenAiServer::pause(int ms) {
  std::unique_lock lock(mutex_);
  return !stop_cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
}

void FakeOpenAiServer::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  stop_cv_.notify_all();  // releases hung and delayed streams before the pool is joined
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace cwc::testing
