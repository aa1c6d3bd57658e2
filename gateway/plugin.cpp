#include "plugin.h"

#include <spdlog/spdlog.h>

#include <cstddef>

#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

namespace cwc::gateway {
namespace {

namespace fs = std::filesystem;

constexpr const char* kLibraryName = "libclawdbot_wecom.so";

cwc_error new_error() {
  cwc_error err{};
  err.struct_size = sizeof(err);
  return err;
}

}  // namespace

std::string find_plugin_path(const std::string& explicit_path, const std::string& executable_path) {
  if (!explicit_path.empty()) return explicit_path;
  std::error_code ec;
  fs::path exe = fs::canonical(executable_path, ec);
  if (ec) exe = fs::path(executable_path);
  const fs::path dir = exe.parent_path();
  // Installed layout (bin/ + lib/), next to the binary, and the build tree (build/<x>/gateway
  // next to build/<x>/src).
  for (const fs::path& candidate : {dir / kLibraryName, dir / ".." / "lib" / kLibraryName, dir / ".." / "src" / kLibraryName}) {
    if (fs::exists(candidate, ec)) return fs::weakly_canonical(candidate, ec).string();
  }
  return (dir / kLibraryName).string();
}

std::shared_ptr<PluginLibrary> PluginLibrary::load(const std::string& path) {
  // The error_code overload: a path stat() cannot judge (a symlink loop, a name too long) must
  // not escape as std::filesystem::filesystem_error; dlopen reports it below.
  std::error_code exists_error;
  if (!std::filesystem::exists(path, exists_error) && !exists_error) {
    throw PluginError("WeCom plugin library not found at " + path + " (pass --plugin PATH)");
  }
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) throw PluginError(std::string("cannot load WeCom plugin: ") + dlerror());
  auto* version = reinterpret_cast<uint32_t (*)()>(dlsym(handle, "clawdbot_wecom_abi_version"));
  auto* init = reinterpret_cast<cwc_status (*)(uint32_t, cwc_plugin_api*, cwc_error*)>(
      dlsym(handle, "clawdbot_wecom_plugin_init"));
  if (!version || !init) {
    dlclose(handle);
    throw PluginError(path + " is not a clawdbot-wecom plugin (no clawdbot_wecom_plugin_init symbol)");
  }
  const uint32_t plugin_abi = version();
  if (CWC_ABI_MAJOR_OF(plugin_abi) != CWC_ABI_VERSION_MAJOR) {
    dlclose(handle);
    throw PluginError(path + " implements WeCom plugin ABI " + std::to_string(CWC_ABI_MAJOR_OF(plugin_abi)) + "." +
                      std::to_string(CWC_ABI_MINOR_OF(plugin_abi)) + " but this gateway needs ABI " +
                      std::to_string(CWC_ABI_VERSION_MAJOR) + ".x");
  }
  cwc_plugin_api api{};
  api.struct_size = sizeof(api);
  cwc_error err = new_error();
  if (init(CWC_ABI_VERSION, &api, &err) != CWC_OK) {
    dlclose(handle);
    throw PluginError(std::string("WeCom plugin refused to initialise: ") + err.message);
  }
  return std::shared_ptr<PluginLibrary>(new PluginLibrary(handle, path, api));
}

PluginLibrary::~PluginLibrary() {
  if (handle_) dlclose(handle_);
}

std::string PluginLibrary::abi_version() const {
  return std::to_string(CWC_ABI_MAJOR_OF(api_.abi_version)) + "." + std::to_string(CWC_ABI_MINOR_OF(api_.abi_version));
}

PluginInstance::PluginInstance(std::shared_ptr<PluginLibrary> library, const cwc_host_api& host,
                               const std::string& config_json)
    : library_(std::move(library)), api_(library_->api()) {
  cwc_error err = new_error();
  if (api_.on_instance_new(&host, to_cwc(config_json), &instance_, &err) != CWC_OK) {
    throw PluginError(err.message);
  }
}

PluginInstance::~PluginInstance() {
  if (instance_) api_.on_instance_destroy(instance_);
}

std::string PluginInstance::take(cwc_buffer& buffer) {
  std::string out(buffer.ptr ? buffer.ptr : "", buffer.len);
  api_.on_buffer_free(&buffer);
  return out;
}

PluginInstance::Response PluginInstance::handle(std::string_view method, std::string_view path, std::string_view query,
                                                std::string_view content_type, std::string_view body,
                                                std::string_view remote_addr) {
  cwc_http_request request{};
  request.struct_size = sizeof(request);
  request.method = to_cwc(method);
  request.path = to_cwc(path);
  request.query = to_cwc(query);
  request.content_type = to_cwc(content_type);
  request.body = to_cwc(body);
  request.remote_addr = to_cwc(remote_addr);
  cwc_http_response response{};
  response.struct_size = sizeof(response);
  cwc_error err = new_error();
  Response out;
  if (api_.on_http_request(instance_, &request, &response, &err) != CWC_OK) {
    api_.on_buffer_free(&response.body);
    out.status = 500;
    out.content_type = "text/plain; charset=utf-8";
    out.body = std::string("internal error: ") + err.message;
    return out;
  }
  out.status = response.status;
  out.content_type = from_cwc(response.content_type);
  out.body = take(response.body);
  return out;
}

bool PluginInstance::push(std::string_view stream_id, std::string_view text, std::string* error) {
  cwc_error err = new_error();
  if (api_.on_stream_push(instance_, to_cwc(stream_id), to_cwc(text), CWC_PUSH_APPEND, &err) == CWC_OK) return true;
  if (error) *error = err.message;
  return false;
}

bool PluginInstance::finish(std::string_view stream_id, bool failed, std::string_view text, std::string* error) {
  cwc_error err = new_error();
  if (api_.on_stream_finish(instance_, to_cwc(stream_id), failed ? CWC_FINISH_FAILED : CWC_FINISH_DONE, to_cwc(text),
                            &err) == CWC_OK) {
    return true;
  }
  if (error) *error = err.message;
  return false;
}

bool PluginInstance::has(std::size_t offset) const { return api_.struct_size >= offset + sizeof(void*); }

void PluginInstance::fetch_done(std::uint64_t id, const FetchResult& result) {
  if (!has(offsetof(cwc_plugin_api, on_fetch_done)) || !api_.on_fetch_done) return;
  cwc_fetch_outcome outcome = CWC_FETCH_FAILED;
  switch (result.outcome) {
    case FetchResult::Outcome::Ok: outcome = CWC_FETCH_OK; break;
    case FetchResult::Outcome::Failed: outcome = CWC_FETCH_FAILED; break;
    case FetchResult::Outcome::Timeout: outcome = CWC_FETCH_TIMEOUT; break;
    case FetchResult::Outcome::TooLarge: outcome = CWC_FETCH_TOO_LARGE; break;
  }
  cwc_error err = new_error();
  if (api_.on_fetch_done(instance_, id, outcome, result.http_status, to_cwc(result.body), to_cwc(result.error), &err) !=
      CWC_OK) {
    spdlog::warn("wecom: fetch result {} not taken: {}", id, err.message);
  }
}

bool PluginInstance::attach_image(std::string_view stream_id, std::string_view bytes, std::string* error) {
  if (!has(offsetof(cwc_plugin_api, on_stream_attach_image)) || !api_.on_stream_attach_image) {
    if (error) *error = "the loaded plugin predates reply images (ABI 1.1)";
    return false;
  }
  cwc_error err = new_error();
  if (api_.on_stream_attach_image(instance_, to_cwc(stream_id), to_cwc(bytes), &err) == CWC_OK) return true;
  if (error) *error = err.message;
  return false;
}

std::string PluginInstance::routes_json() {
  cwc_buffer out{};
  cwc_error err = new_error();
  if (api_.on_routes(instance_, &out, &err) != CWC_OK) throw PluginError(err.message);
  return take(out);
}

std::string PluginInstance::status_json() {
  cwc_buffer out{};
  cwc_error err = new_error();
  if (api_.on_status(instance_, &out, &err) != CWC_OK) throw PluginError(err.message);
  return take(out);
}

std::string PluginInstance::probe_json(std::string_view account_id) {
  cwc_buffer out{};
  cwc_error err = new_error();
  if (api_.on_probe(instance_, to_cwc(account_id), &out, &err) != CWC_OK) throw PluginError(err.message);
  return take(out);
}

std::string PluginInstance::pairing_list_json(std::string_view account_id) {
  cwc_buffer out{};
  cwc_error err = new_error();
  if (api_.on_pairing_list(instance_, to_cwc(account_id), &out, &err) != CWC_OK) throw PluginError(err.message);
  return take(out);
}

std::string PluginInstance::pairing_approve(std::string_view account_id, std::string_view code) {
  cwc_buffer out{};
  cwc_error err = new_error();
  if (api_.on_pairing_approve(instance_, to_cwc(account_id), to_cwc(code), &out, &err) != CWC_OK) {
    throw PluginError(err.message);
  }
  return take(out);
}

void PluginInstance::tick() { api_.on_tick(instance_); }

}  // namespace cwc::gateway
