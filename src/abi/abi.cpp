// The C ABI: adapts the host callback table to core::Host and core::Instance to the plugin
// operation table. Every extern "C" body catches everything; no exception crosses the boundary.
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <array>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>

#include "clawdbot_wecom/clawdbot_wecom.h"
#include "core/instance.h"
#include "crypto/crypto.h"

#include <openssl/crypto.h>

#ifndef CWC_PLUGIN_VERSION
#define CWC_PLUGIN_VERSION "0.0.0"
#endif

namespace {

using cwc::core::LogLevel;

constexpr char kPluginVersion[] = CWC_PLUGIN_VERSION;
constexpr char kContentTypeText[] = "text/plain; charset=utf-8";
constexpr char kContentTypeXml[] = "application/xml; charset=utf-8";
constexpr char kContentTypeJson[] = "application/json; charset=utf-8";

// The size of the version-1.0 tables: a host may pass larger ones (newer minor), never smaller.
constexpr size_t kMinHostApiSize = offsetof(cwc_host_api, callback_random) + sizeof(void*);
constexpr size_t kMinPluginApiSize = offsetof(cwc_plugin_api, on_pairing_approve) + sizeof(void*);

std::string_view view(cwc_str s) { return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view(); }
cwc_str str(std::string_view s) { return cwc_str{s.data(), s.size()}; }

cwc_status set_error(cwc_error* err, cwc_status status, int http_status, int wecom_code, std::string_view message) {
  if (err && err->struct_size >= sizeof(cwc_error)) {
    err->http_status = http_status;
    err->wecom_code = wecom_code;
    const size_t n = std::min(message.size(), sizeof(err->message) - 1);
    std::memcpy(err->message, message.data(), n);
    err->message[n] = '\0';
  }
  return status;
}

bool to_buffer(std::string_view text, cwc_buffer* out) {
  out->ptr = nullptr;
  out->len = 0;
  if (text.empty()) return true;
  auto* p = static_cast<char*>(std::malloc(text.size()));
  if (!p) return false;
  std::memcpy(p, text.data(), text.size());
  out->ptr = p;
  out->len = text.size();
  return true;
}

// The host's callbacks as a core::Host. Optional callbacks fall back to process defaults.
class HostAdapter final : public cwc::core::Host {
 public:
  // `host_size`: the struct_size the host declared; fields beyond it are zero in api_ and never used.
  HostAdapter(const cwc_host_api& api, size_t host_size) : api_(api), host_size_(host_size) {}

  void log(LogLevel level, std::string_view account_id, std::string_view line) override {
    api_.callback_log(api_.host_ctx, static_cast<cwc_log_level>(level), str(account_id), str(line));
  }

  bool dispatch(const cwc::core::InboundMessage& m) override {
    cwc_inbound_message msg{};
    msg.struct_size = sizeof(msg);
    msg.account_id = str(m.account_id);
    msg.peer_kind = m.peer_kind == cwc::core::PeerKind::Group ? CWC_PEER_GROUP : CWC_PEER_DIRECT;
    msg.target = str(m.target);
    msg.sender_id = str(m.sender_id);
    msg.chat_id = str(m.chat_id);
    msg.message_id = str(m.message_id);
    msg.msgtype = str(m.msgtype);
    msg.text = str(m.text);
    msg.quote_text = str(m.quote_text);
    msg.stream_id = str(m.stream_id);
    msg.response_url = str(m.response_url);
    msg.aibot_id = str(m.aibot_id);
    msg.media_json = str(m.media_json);
    return api_.callback_dispatch(api_.host_ctx, &msg) == CWC_OK;
  }

  std::int64_t now_ms() override {
    if (api_.callback_now_ms) return api_.callback_now_ms(api_.host_ctx);
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }

  bool random(std::uint8_t* out, std::size_t len) override {
    if (api_.callback_random) return api_.callback_random(api_.host_ctx, out, len) == 0;
    return random_.fill(out, len);
  }

  cwc::Result<std::optional<std::string>> store_get(std::string_view ns, std::string_view key) override {
    if (!api_.callback_store_get) {
      std::lock_guard lock(memory_store_mutex_);
      auto it = memory_store_.find(std::string(ns) + '\x1f' + std::string(key));
      if (it == memory_store_.end()) return std::optional<std::string>();
      return std::optional<std::string>(it->second);
    }
    cwc_buffer buffer{};
    const cwc_status status = api_.callback_store_get(api_.host_ctx, str(ns), str(key), &buffer);
    if (status == CWC_ERR_NOT_FOUND) return std::optional<std::string>();
    if (status != CWC_OK) {
      // Not "absent": a list read as empty and written back would erase the real one.
      return cwc::make_error(cwc::ErrorKind::Internal,
                             "the host store failed to read " + std::string(ns) + " (status " + std::to_string(status) + ")");
    }
    std::string value(buffer.ptr ? buffer.ptr : "", buffer.len);
    if (api_.callback_store_free) api_.callback_store_free(api_.host_ctx, &buffer);
    return std::optional<std::string>(std::move(value));
  }

  bool store_put(std::string_view ns, std::string_view key, std::string_view value) override {
    if (!api_.callback_store_put) {
      std::lock_guard lock(memory_store_mutex_);
      memory_store_[std::string(ns) + '\x1f' + std::string(key)] = std::string(value);
      return true;
    }
    return api_.callback_store_put(api_.host_ctx, str(ns), str(key), str(value)) == CWC_OK;
  }

  bool can_fetch() const override { return has(offsetof(cwc_host_api, callback_fetch)) && api_.callback_fetch; }

  bool fetch(const cwc::core::FetchRequest& r) override {
    if (!can_fetch()) return false;
    cwc_fetch_request request{};
    request.struct_size = sizeof(request);
    request.request_id = r.id;
    request.account_id = str(r.account_id);
    request.method = str(r.method);
    request.url = str(r.url);
    request.content_type = str(r.content_type);
    request.body = str(r.body);
    request.max_response_bytes = r.max_response_bytes;
    request.timeout_ms = r.timeout_ms;
    return api_.callback_fetch(api_.host_ctx, &request) == CWC_OK;
  }

  void event(const cwc::core::Event& e) override {
    if (!has(offsetof(cwc_host_api, callback_event)) || !api_.callback_event) return;
    cwc_event event{};
    event.struct_size = sizeof(event);
    event.account_id = str(e.account_id);
    event.event_type = str(e.event_type);
    event.sender_id = str(e.sender_id);
    event.chat_id = str(e.chat_id);
    event.message_id = str(e.message_id);
    event.event_json = str(e.event_json);
    api_.callback_event(api_.host_ctx, &event);
  }

 private:
  // Whether the host's table reaches the pointer at `offset` (an ABI 1.1+ field).
  bool has(size_t offset) const { return host_size_ >= offset + sizeof(void*); }

  // RAND_bytes, drawn in batches. Every request takes 16 random bytes (the reply's random prefix),
  // and each RAND_bytes call costs a DRBG lock plus a getpid() system call (OpenSSL's fork
  // check): a syscall per request, seen in the gateway's profile. One call per 4 KiB instead.
  // The batch lives in this instance only and is wiped with it; a process that forks without
  // exec while an instance is live would share the rest of a batch (no host of ours does).
  class BatchedRandom {
   public:
    BatchedRandom() = default;
    BatchedRandom(const BatchedRandom&) = delete;
    BatchedRandom& operator=(const BatchedRandom&) = delete;
    ~BatchedRandom() { OPENSSL_cleanse(batch_.data(), batch_.size()); }

    bool fill(std::uint8_t* out, std::size_t len) {
      if (len > batch_.size() / 4) return cwc::crypto::openssl_random(out, len);
      std::lock_guard lock(mutex_);
      if (batch_.size() - used_ < len) {
        if (!cwc::crypto::openssl_random(batch_.data(), batch_.size())) return false;
        used_ = 0;
      }
      std::memcpy(out, batch_.data() + used_, len);
      // Handed out once: wiped so the bytes leave no copy behind here.
      OPENSSL_cleanse(batch_.data() + used_, len);
      used_ += len;
      return true;
    }

   private:
    static constexpr std::size_t kBatchBytes = 4096;
    std::mutex mutex_;
    std::array<std::uint8_t, kBatchBytes> batch_{};
    std::size_t used_ = kBatchBytes;  // empty: the first call fills it
  };

  cwc_host_api api_;
  size_t host_size_;
  BatchedRandom random_;
  std::mutex memory_store_mutex_;
  std::map<std::string, std::string> memory_store_;
};

}  // namespace

struct cwc_instance {
  cwc_instance(const cwc_host_api& api, size_t host_size) : host(api, host_size) {}
  HostAdapter host;
  std::unique_ptr<cwc::core::Instance> core;
};

namespace {

cwc_status instance_new(const cwc_host_api* host, cwc_str config_json, cwc_instance** out, cwc_error* err) noexcept {
  try {
    if (!out) return set_error(err, CWC_ERR_INVALID_ARGUMENT, 500, 0, "out_instance is NULL");
    *out = nullptr;
    if (!host) return set_error(err, CWC_ERR_INVALID_ARGUMENT, 500, 0, "host table is NULL");
    if (CWC_ABI_MAJOR_OF(host->abi_version) != CWC_ABI_VERSION_MAJOR) {
      char message[160];
      std::snprintf(message, sizeof message,
                    "host callback table is ABI %u.%u but libclawdbot_wecom implements ABI %u.%u",
                    CWC_ABI_MAJOR_OF(host->abi_version), CWC_ABI_MINOR_OF(host->abi_version),
                    CWC_ABI_VERSION_MAJOR, CWC_ABI_VERSION_MINOR);
      return set_error(err, CWC_ERR_ABI_MISMATCH, 500, 0, message);
    }
    if (host->struct_size < kMinHostApiSize) {
      return set_error(err, CWC_ERR_INVALID_ARGUMENT, 500, 0, "host table struct_size is smaller than the ABI 1.0 table");
    }
    cwc_host_api api{};
    std::memcpy(&api, host, std::min(host->struct_size, sizeof(cwc_host_api)));
    if (!api.callback_log || !api.callback_dispatch) {
      return set_error(err, CWC_ERR_INVALID_ARGUMENT, 500, 0, "host table lacks callback_log or callback_dispatch");
    }
    auto instance = std::make_unique<cwc_instance>(api, host->struct_size);
    auto core = cwc::core::Instance::create(view(config_json), instance->host);
    if (!core) return set_error(err, CWC_ERR_CONFIG, 500, core.error().wecom_code(), core.error().detail);
    instance->core = std::move(*core);
    *out = instance.release();
    return CWC_OK;
  } catch (const std::bad_alloc&) {
    return set_error(err, CWC_ERR_INTERNAL, 500, 0, "out of memory");
  } catch (const std::exception& e) {
    return set_error(err, CWC_ERR_INTERNAL, 500, 0, e.what());
  } catch (...) {
    return set_error(err, CWC_ERR_INTERNAL, 500, 0, "unknown exception");
  }
}

void instance_destroy(cwc_instance* instance) noexcept { delete instance; }

// Runs `body` and turns any exception into CWC_ERR_INTERNAL.
template <class F>
cwc_status guarded(cwc_error* err, F&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return set_error(err, CWC_ERR_INTERNAL, 500, 0, "out of memory");
  } catch (const std::exception& e) {
    return set_error(err, CWC_ERR_INTERNAL, 500, 0, e.what());
  } catch (...) {
    return set_error(err, CWC_ERR_INTERNAL, 500, 0, "unknown exception");
  }
}

cwc_status json_out(std::string_view json, cwc_buffer* out, cwc_error* err) {
  if (!to_buffer(json, out)) return set_error(err, CWC_ERR_INTERNAL, 500, 0, "out of memory");
  return CWC_OK;
}

cwc_status routes(cwc_instance* instance, cwc_buffer* out, cwc_error* err) noexcept {
  return guarded(err, [&] {
    if (!instance || !out) return set_error(err, CWC_ERR_INVALID_ARGUMENT, 500, 0, "NULL argument");
    return json_out(instance->core->routes_json(), out, err);
  });
}

cwc_status http_request(cwc_instance* instance, const cwc_http_request* request, cwc_http_response* response,
                        cwc_error* err) noexcept {
  return guarded(err, [&] {
    if (!instance || !request || !response) return set_error(err, CWC_ERR_INVALID_ARGUMENT, 500, 0, "NULL argument");
    if (request->struct_size < sizeof(cwc_http_request) || response->struct_size < sizeof(cwc_http_response)) {
      return set_error(err, CWC_ERR_INVALID_ARGUMENT, 500, 0, "request/response struct_size too small");
    }
    cwc::core::HttpRequest req{view(request->method), view(request->path), view(request->query),
                               view(request->content_type), view(request->body), view(request->remote_addr)};
    cwc::core::HttpResponse res = instance->core->handle(req);
    response->status = res.status;
    // Point at static storage so the pointer outlives the call.
    const char* content_type = kContentTypeText;
    if (res.content_type == cwc::core::kContentTypeXml) content_type = kContentTypeXml;
    else if (res.content_type == cwc::core::kContentTypeJson) content_type = kContentTypeJson;
    response->content_type = cwc_str{content_type, std::strlen(content_type)};
    if (!to_buffer(res.body, &response->body)) return set_error(err, CWC_ERR_INTERNAL, 500, 0, "out of memory");
    return CWC_OK;
  });
}

// A C host may pass any integer where an enum is declared; reading such a value through the
// C++ enum type is undefined, so look at its bytes instead.
template <class Enum>
int raw_enum_value(const Enum& value) {
  static_assert(sizeof(Enum) == sizeof(int));
  int raw = 0;
  std::memcpy(&raw, &value, sizeof raw);
  return raw;
}

cwc_status update_status(cwc::stream::UpdateResult result, cwc_error* err) {
  switch (result) {
    case cwc::stream::UpdateResult::Ok: return CWC_OK;
    case cwc::stream::UpdateResult::NotFound:
      return set_error(err, CWC_ERR_NOT_FOUND, 404, 0, "unknown or expired stream id");
    case cwc::stream::UpdateResult::Closed:
      return set_error(err, CWC_ERR_STREAM_CLOSED, 409, 0, "stream already finished");
    case cwc::stream::UpdateResult::Full:
      return set_error(err, CWC_ERR_INVALID_ARGUMENT, 400, 0, "a WeCom reply carries at most 10 images");
  }
  return set_error(err, CWC_ERR_INTERNAL, 500, 0, "unexpected stream state");
}

cwc_status stream_push(cwc_instance* instance, cwc_str stream_id, cwc_str text, cwc_push_mode mode,
                       cwc_error* err) noexcept {
  return guarded(err, [&] {
    if (!instance) return set_error(err, CWC_ERR_INVALID_ARGUMENT, 500, 0, "NULL instance");
    const int raw_mode = raw_enum_value(mode);
    if (raw_mode != CWC_PUSH_APPEND && raw_mode != CWC_PUSH_REPLACE) {
      return set_error(err, CWC_ERR_INVALID_ARGUMENT, 500, 0, "unknown push mode");
    }
    return update_status(instance->core->push(view(stream_id), view(text),
                                              raw_mode == CWC_PUSH_REPLACE ? cwc::stream::PushMode::Replace
                                                                           : cwc::stream::PushMode::Append),
                         err);
  });
}

cwc_status stream_finish(cwc_instance* instance, cwc_str stream_id, cwc_finish_kind kind, cwc_str text,
                         cwc_error* err) noexcept {
  return guarded(err, [&] {
    if (!instance) return set_error(err, CWC_ERR_INVALID_ARGUMENT, 500, 0, "NULL instance");
    const int raw_kind = raw_enum_value(kind);
    if (raw_kind != CWC_FINISH_DONE && raw_kind != CWC_FINISH_FAILED) {
      return set_error(err, CWC_ERR_INVALID_ARGUMENT, 500, 0, "unknown finish kind");
    }
    return update_status(instance->core->finish(view(stream_id),
                                                raw_kind == CWC_FINISH_FAILED ? cwc::stream::FinishKind::Failed
                                                                          : cwc::stream::FinishKind::Done,
                                                view(text)),
                         err);
  });
}

cwc_status fetch_done(cwc_instance* instance, uint64_t request_id, cwc_fetch_outcome outcome, int http_status,
                      cwc_str body, cwc_str error_text, cwc_error* err) noexcept {
  return guarded(err, [&] {
    if (!instance) return set_error(err, CWC_ERR_INVALID_ARGUMENT, 500, 0, "NULL instance");
    using cwc::core::FetchOutcome;
    FetchOutcome core_outcome = FetchOutcome::Failed;
    switch (raw_enum_value(outcome)) {
      case CWC_FETCH_OK: core_outcome = FetchOutcome::Ok; break;
      case CWC_FETCH_FAILED: core_outcome = FetchOutcome::Failed; break;
      case CWC_FETCH_TIMEOUT: core_outcome = FetchOutcome::Timeout; break;
      case CWC_FETCH_TOO_LARGE: core_outcome = FetchOutcome::TooLarge; break;
      default: return set_error(err, CWC_ERR_INVALID_ARGUMENT, 500, 0, "unknown fetch outcome");
    }
    auto done = instance->core->fetch_done(request_id, core_outcome, http_status, view(body), view(error_text));
    if (!done) return set_error(err, CWC_ERR_NOT_FOUND, 404, 0, done.error().detail);
    return CWC_OK;
  });
}

cwc_status stream_attach_image(cwc_instance* instance, cwc_str stream_id, cwc_str bytes, cwc_error* err) noexcept {
  return guarded(err, [&] {
    if (!instance) return set_error(err, CWC_ERR_INVALID_ARGUMENT, 500, 0, "NULL instance");
    auto result = instance->core->attach_image(view(stream_id), view(bytes));
    if (!result) return set_error(err, CWC_ERR_INVALID_ARGUMENT, 400, 0, result.error().detail);
    return update_status(*result, err);
  });
}

cwc_status status(cwc_instance* instance, cwc_buffer* out, cwc_error* err) noexcept {
  return guarded(err, [&] {
    if (!instance || !out) return set_error(err, CWC_ERR_INVALID_ARGUMENT, 500, 0, "NULL argument");
    return json_out(instance->core->status_json(), out, err);
  });
}

cwc_status probe(cwc_instance* instance, cwc_str account_id, cwc_buffer* out, cwc_error* err) noexcept {
  return guarded(err, [&] {
    if (!instance || !out) return set_error(err, CWC_ERR_INVALID_ARGUMENT, 500, 0, "NULL argument");
    auto result = instance->core->probe_json(view(account_id));
    if (!result) return set_error(err, CWC_ERR_NOT_FOUND, 404, 0, result.error().detail);
    return json_out(*result, out, err);
  });
}

cwc_status pairing_list(cwc_instance* instance, cwc_str account_id, cwc_buffer* out, cwc_error* err) noexcept {
  return guarded(err, [&] {
    if (!instance || !out) return set_error(err, CWC_ERR_INVALID_ARGUMENT, 500, 0, "NULL argument");
    auto result = instance->core->pairing_list_json(view(account_id));
    if (!result) return set_error(err, CWC_ERR_NOT_FOUND, 404, 0, result.error().detail);
    return json_out(*result, out, err);
  });
}

cwc_status pairing_approve(cwc_instance* instance, cwc_str account_id, cwc_str code, cwc_buffer* out,
                           cwc_error* err) noexcept {
  return guarded(err, [&] {
    if (!instance || !out) return set_error(err, CWC_ERR_INVALID_ARGUMENT, 500, 0, "NULL argument");
    auto result = instance->core->pairing_approve(view(account_id), view(code));
    if (!result) return set_error(err, CWC_ERR_NOT_FOUND, 404, 0, result.error().detail);
    return json_out(*result, out, err);
  });
}

cwc_status send_text(cwc_instance*, cwc_str, cwc_str, cwc_str, cwc_error* err) noexcept {
  return set_error(err, CWC_ERR_UNSUPPORTED, 501, 0,
                   "WeCom intelligent bots are passive-reply only: sendText is not supported; "
                   "answers go out as stream replies to the user's message");
}

void tick(cwc_instance* instance) noexcept {
  try {
    if (instance) instance->core->tick();
  } catch (...) {
    // Housekeeping must never take the host down; the next tick retries.
  }
}

void buffer_free(cwc_buffer* buffer) noexcept {
  if (!buffer) return;
  std::free(buffer->ptr);
  buffer->ptr = nullptr;
  buffer->len = 0;
}

}  // namespace

extern "C" {

CWC_EXPORT uint32_t clawdbot_wecom_abi_version(void) { return CWC_ABI_VERSION; }

CWC_EXPORT cwc_status clawdbot_wecom_plugin_init(uint32_t host_abi_version, cwc_plugin_api* out_api,
                                                 cwc_error* err) {
  if (CWC_ABI_MAJOR_OF(host_abi_version) != CWC_ABI_VERSION_MAJOR) {
    char message[160];
    std::snprintf(message, sizeof message,
                  "host was built for WeCom plugin ABI %u.%u but libclawdbot_wecom %s implements ABI %u.%u; "
                  "install a matching version",
                  CWC_ABI_MAJOR_OF(host_abi_version), CWC_ABI_MINOR_OF(host_abi_version), kPluginVersion,
                  CWC_ABI_VERSION_MAJOR, CWC_ABI_VERSION_MINOR);
    return set_error(err, CWC_ERR_ABI_MISMATCH, 500, 0, message);
  }
  if (!out_api || out_api->struct_size < kMinPluginApiSize) {
    return set_error(err, CWC_ERR_INVALID_ARGUMENT, 500, 0,
                     "out_api is NULL or its struct_size is smaller than the ABI 1.0 table");
  }
  cwc_plugin_api api{};
  api.struct_size = sizeof(cwc_plugin_api);
  api.abi_version = CWC_ABI_VERSION;
  api.plugin_version = cwc_str{kPluginVersion, sizeof(kPluginVersion) - 1};
  api.on_instance_new = instance_new;
  api.on_instance_destroy = instance_destroy;
  api.on_routes = routes;
  api.on_http_request = http_request;
  api.on_stream_push = stream_push;
  api.on_stream_finish = stream_finish;
  api.on_status = status;
  api.on_probe = probe;
  api.on_send_text = send_text;
  api.on_tick = tick;
  api.on_buffer_free = buffer_free;
  api.on_pairing_list = pairing_list;
  api.on_pairing_approve = pairing_approve;
  api.on_fetch_done = fetch_done;
  api.on_stream_attach_image = stream_attach_image;
  // Never write past what the host said it has room for.
  const size_t host_size = out_api->struct_size;
  std::memcpy(out_api, &api, std::min(host_size, sizeof(api)));
  out_api->struct_size = std::min(host_size, sizeof(api));
  return CWC_OK;
}

}  // extern "C"
