// One configured WeCom channel: routes webhook requests to accounts, verifies and decrypts them,
// keeps the stream table, and hands new user messages to the host. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "config/config.h"
#include "core/host.h"
#include "core/lanes.h"
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
  // An image for the finishing reply (msg_item). InvalidArgument-style errors (BadMessage kind)
  // name why it cannot go out as an image (format, size, count).
  Result<stream::UpdateResult> attach_image(std::string_view stream_id, std::string_view bytes);

  // The host's answer to a Host::fetch request (media download or response_url POST).
  // NotFound for an unknown id.
  Status fetch_done(std::uint64_t request_id, FetchOutcome outcome, int http_status, std::string_view body,
                    std::string_view error_text);

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

  // A user message that has a stream but has not reached the host yet (waiting for its turn
  // in the user's lane, or for its media).
  struct PendingMessage {
    std::string account_id, lane, target, sender_id, chat_id, msgid, msgtype, text, quote_text, stream_id,
        response_url, aibot_id;
    bool group = false;
    std::vector<message::MediaItem> media;
    std::vector<std::string> stored;  // per media item: {"kind","path","mime","bytes"} JSON, once in
    std::size_t downloads_pending = 0;
    std::string failure;              // for the user; set when any download failed
  };
  // What an outstanding Host::fetch request is for.
  struct FetchContext {
    enum class Kind { Media, ResponseUrl } kind;
    std::string account_id;
    std::string stream_id;
    std::size_t media_index = 0;
    std::size_t bytes = 0;  // ResponseUrl: answer bytes carried
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
  Account* find_account(std::string_view account_id);
  void accept_user_message(Account& account, const message::Message& msg, const std::string& stream_id);
  void start_downloads(Account& account, const std::shared_ptr<PendingMessage>& job);
  void media_done(const FetchContext& context, FetchOutcome outcome, int http_status, std::string_view body,
                  std::string_view error_text);
  void pump(const std::string& lane);
  void dispatch_now(PendingMessage& job);
  void stream_ended(std::string_view stream_id);
  void deliver_remainder(const stream::Remainder& remainder);
  void response_url_done(const FetchContext& context, FetchOutcome outcome, int http_status, std::string_view body,
                         std::string_view error_text);
  void surface_event(Account& account, const message::Message& msg);
  std::int64_t now_ms() { return host_.now_ms(); }

  config::ChannelConfig config_;
  Host& host_;
  std::vector<std::unique_ptr<Account>> accounts_;  // same order as config_.accounts
  stream::StreamTable streams_;
  policy::AccessControl access_;
  UserLanes lanes_;

  std::mutex jobs_mutex_;  // guards pending_, fetches_, seen_events_, next_fetch_id_
  std::unordered_map<std::string, std::shared_ptr<PendingMessage>> pending_;  // by stream id
  std::unordered_map<std::uint64_t, FetchContext> fetches_;
  std::map<std::string, std::int64_t> seen_events_;  // account\x1f msgid → expiry (dedupe)
  std::uint64_t next_fetch_id_ = 1;
  // Serialises "take the next messages of a lane + dispatch them", so two threads pumping the
  // same lane cannot hand its messages to the host out of order.
  // Recursive: a dispatch that fails finishes its stream, which frees the lane slot and pumps
  // the same lane again from inside the loop.
  std::recursive_mutex pump_mutex_;
  std::atomic<std::int64_t> next_media_sweep_ms_{0};
};

}  // namespace cwc::core
