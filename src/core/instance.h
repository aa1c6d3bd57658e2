// One configured WeCom channel: routes webhook requests to accounts, verifies and decrypts them,
// keeps the stream table, and hands new user messages to the host. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "config/config.h"
#include "core/host.h"
#include "crypto/crypto.h"
#include "envelope/envelope.h"
#include "message/message.h"
#include "policy/policy.h"
#include "stream/stream_table.h"

namespace cwc::core {

struct HttpRequest {
  std::string_view method;
  std::string_view path;
  std::string_view query;
  std::string_view content_type;
  std::string_view body;
  std::string_view remote_addr;
};

struct HttpResponse {
  int status = 200;
  std::string_view content_type = "text/plain; charset=utf-8";
  std::string body;
};

inline constexpr std::string_view kContentTypeText = "text/plain; charset=utf-8";
inline constexpr std::string_view kContentTypeJson = "application/json; charset=utf-8";
inline constexpr std::string_view kContentTypeXml = "application/xml; charset=utf-8";

class Instance {
 public:
  // Validates the config; errors are ErrorKind::Config with a message naming the key.
  static Result<std::unique_ptr<Instance>> create(std::string_view config_json, Host& host);

  HttpResponse handle(const HttpRequest& request);

  stream::UpdateResult push(std::string_view stream_id, std::string_view text, stream::PushMode mode);
  stream::UpdateResult finish(std::string_view stream_id, stream::FinishKind kind, std::string_view text);

  std::string routes_json() const;
  std::string status_json() const;
  Result<std::string> probe_json(std::string_view account_id);
  void tick();

  // Pending pairing requests as JSON ({"requests":[{accountId, code, userId, createdAt,
  // expiresAt}]}), for one account or all (empty id).
  Result<std::string> pairing_list_json(std::string_view account_id);
  // Approves a pairing code (searching every account when the id is empty):
  // {"accountId","userId"}; NotFound for an unknown or expired code.
  Result<std::string> pairing_approve(std::string_view account_id, std::string_view code);

  const config::ChannelConfig& config() const { return config_; }

 private:
  struct Account {
    const config::AccountConfig* config;
    crypto::MessageCrypto crypto;
    std::atomic<std::int64_t> last_inbound_ms{0};
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> messages{0};
    std::atomic<std::uint64_t> refreshes{0};
    std::atomic<std::uint64_t> rejected{0};
    mutable std::mutex last_error_mutex;
    std::string last_error;
    std::int64_t last_error_ms = 0;

    Account(const config::AccountConfig* cfg)
        : config(cfg), crypto(cfg->aes_key, cfg->receive_id) {}
  };

  Instance(config::ChannelConfig config, Host& host);

  Account* route(std::string_view path);
  HttpResponse fail(Account* account, const HttpRequest& request, const Error& error);
  HttpResponse handle_verify(Account& account, const HttpRequest& request);
  HttpResponse handle_callback(Account& account, const HttpRequest& request);
  Result<std::string> handle_message(Account& account, const message::Message& msg);
  std::string seal_reply(Account& account, envelope::Format format, std::string_view plaintext,
                         std::string_view nonce);
  std::string new_stream_id();
  std::int64_t now_ms() { return host_.now_ms(); }

  config::ChannelConfig config_;
  Host& host_;
  std::vector<std::unique_ptr<Account>> accounts_;  // same order as config_.accounts
  stream::StreamTable streams_;
  policy::AccessControl access_;
};

}  // namespace cwc::core
