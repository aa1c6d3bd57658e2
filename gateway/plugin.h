// Loading libclawdbot_wecom.so through its public C ABI only (dlopen + the two exported symbols),
// with RAII wrappers that release every buffer the plugin returns.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "clawdbot_wecom/clawdbot_wecom.h"
#include "fetcher.h"

namespace cwc::gateway {

// Raised for anything that keeps the plugin from loading or an instance from starting; the
// message is meant for the user as is.
class PluginError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The candidates for the plugin path, given --plugin (may be empty) and the executable's path.
std::string find_plugin_path(const std::string& explicit_path, const std::string& executable_path);

class PluginLibrary {
 public:
  // dlopen(RTLD_NOW | RTLD_LOCAL) + ABI handshake. Throws PluginError with a precise reason.
  static std::shared_ptr<PluginLibrary> load(const std::string& path);
  ~PluginLibrary();
  PluginLibrary(const PluginLibrary&) = delete;
  PluginLibrary& operator=(const PluginLibrary&) = delete;

  const cwc_plugin_api& api() const { return api_; }
  const std::string& path() const { return path_; }
  std::string version() const { return std::string(api_.plugin_version.ptr, api_.plugin_version.len); }
  std::string abi_version() const;

 private:
  PluginLibrary(void* handle, std::string path, const cwc_plugin_api& api)
      : handle_(handle), path_(std::move(path)), api_(api) {}
  void* handle_;
  std::string path_;
  cwc_plugin_api api_;
};

inline cwc_str to_cwc(std::string_view s) { return cwc_str{s.data(), s.size()}; }
inline std::string from_cwc(cwc_str s) { return s.ptr ? std::string(s.ptr, s.len) : std::string(); }

// One plugin instance. `host` (and whatever its host_ctx points to) must outlive it.
class PluginInstance {
 public:
  PluginInstance(std::shared_ptr<PluginLibrary> library, const cwc_host_api& host, const std::string& config_json);
  ~PluginInstance();
  PluginInstance(const PluginInstance&) = delete;
  PluginInstance& operator=(const PluginInstance&) = delete;

  struct Response {
    int status = 500;
    std::string content_type;
    std::string body;
  };
  Response handle(std::string_view method, std::string_view path, std::string_view query,
                  std::string_view content_type, std::string_view body, std::string_view remote_addr);

  // false (and the plugin's message in *error) when the stream is unknown, closed or invalid.
  bool push(std::string_view stream_id, std::string_view text, std::string* error = nullptr);
  bool finish(std::string_view stream_id, bool failed, std::string_view text, std::string* error = nullptr);

  // An image for the stream's finishing reply; false with the plugin's reason (format, size,
  // count) when it cannot go out as an image.
  bool attach_image(std::string_view stream_id, std::string_view bytes, std::string* error = nullptr);
  // Hands the result of a callback_fetch request back to the plugin (no-op for a 1.0 plugin).
  void fetch_done(std::uint64_t id, const FetchResult& result);

  std::string routes_json();
  std::string status_json();
  // Throws PluginError (e.g. unknown account).
  std::string probe_json(std::string_view account_id);
  std::string pairing_list_json(std::string_view account_id);
  std::string pairing_approve(std::string_view account_id, std::string_view code);
  void tick();

 private:
  std::string take(cwc_buffer& buffer);
  bool has(std::size_t offset) const;  // the plugin's table reaches this (ABI 1.1+) entry
  std::shared_ptr<PluginLibrary> library_;
  const cwc_plugin_api& api_;
  cwc_instance* instance_ = nullptr;
};

}  // namespace cwc::gateway
