// The dlopen loader and the RAII instance over the public C ABI: the real plugin, the loader's
// errors (with fixture libraries), config errors, and a VerifyURL round trip.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "gateway_test_util.h"
#include "plugin.h"

namespace cwc::gateway {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using gwtest::TempDir;

// The message of the PluginError thrown by PluginLibrary::load(path), or "loaded".
std::string load_error(const std::string& path) {
  try {
    PluginLibrary::load(path);
  } catch (const PluginError& e) {
    return e.what();
  }
  return "loaded";
}

// A host table that records log lines and refuses every dispatch (no agent in these tests).
struct TestHost {
  static void log(void* ctx, cwc_log_level, cwc_str, cwc_str line) {
    auto* self = static_cast<TestHost*>(ctx);
    std::lock_guard lock(self->mutex);
    self->lines.push_back(from_cwc(line));
  }
  static cwc_status dispatch(void*, const cwc_inbound_message*) { return CWC_ERR_UNSUPPORTED; }

  cwc_host_api table() {
    cwc_host_api api{};
    api.struct_size = sizeof(api);
    api.abi_version = CWC_ABI_VERSION;
    api.host_ctx = this;
    api.callback_log = &TestHost::log;
    api.callback_dispatch = &TestHost::dispatch;
    return api;
  }
  std::mutex mutex;
  std::vector<std::string> lines;
};

// The official WeCom VerifyURL vector.
constexpr const char* kToken = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo";
constexpr const char* kAesKey = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";
constexpr const char* kReceiveId = "ww1436e0e65a779aee";
constexpr const char* kEchostr = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==";
constexpr const char* kEchoPlain = "1288432023552776189";

std::string percent_encode(const std::string& text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string verify_query(const std::string& signature) {
  return "msg_signature=" + signature + "&timestamp=1476416373&nonce=47744683&echostr=" + percent_encode(kEchostr);
}

std::string vector_config() {
  return json{{"token", kToken}, {"encodingAESKey", kAesKey}, {"receiveId", kReceiveId}}.dump();
}

// ---------------------------------------------------------------------------------------------

TEST(PluginLoader, LoadsTheRealPlugin) {
  auto library = PluginLibrary::load(CWC_PLUGIN_PATH);
  ASSERT_TRUE(library);
  EXPECT_EQ(library->path(), CWC_PLUGIN_PATH);
  EXPECT_EQ(library->version(), CWC_EXPECTED_VERSION);  // plugin.json's version
  EXPECT_EQ(library->abi_version(), "1.1");
  EXPECT_EQ(library->api().abi_version, CWC_ABI_VERSION);
  EXPECT_EQ(library->api().struct_size, sizeof(cwc_plugin_api));
  const auto& api = library->api();
  EXPECT_NE(api.on_instance_new, nullptr);
  EXPECT_NE(api.on_instance_destroy, nullptr);
  EXPECT_NE(api.on_http_request, nullptr);
  EXPECT_NE(api.on_buffer_free, nullptr);
  EXPECT_NE(api.on_pairing_approve, nullptr);
  // A second load of the same file is independent (dlopen reference counting).
  auto again = PluginLibrary::load(CWC_PLUGIN_PATH);
  library.reset();
  EXPECT_EQ(again->version(), CWC_EXPECTED_VERSION);
}

TEST(PluginLoader, MissingFileNamesThePath) {
  const std::string path = "/nonexistent/dir/libclawdbot_wecom.so";
  EXPECT_EQ(load_error(path), "WeCom plugin library not found at " + path + " (pass --plugin PATH)");
}

TEST(PluginLoader, NotASharedLibrary) {
  TempDir dir;
  const std::string text_file = (dir.path() / "libclawdbot_wecom.so").string();
  std::ofstream(text_file) << "this is not an ELF file, just some text that is long enough to have a header\n";
  std::string error = load_error(text_file);
  EXPECT_EQ(error.rfind("cannot load WeCom plugin: ", 0), 0u) << error;
  EXPECT_NE(error.find(text_file), std::string::npos) << error;  // dlerror names the file

  const std::string empty_file = (dir.path() / "empty.so").string();
  std::ofstream{empty_file};
  error = load_error(empty_file);
  EXPECT_EQ(error.rfind("cannot load WeCom plugin: ", 0), 0u) << error;

  error = load_error(dir.path().string());  // a directory
  EXPECT_EQ(error.rfind("cannot load WeCom plugin: ", 0), 0u) << error;
}

TEST(PluginLoader, PathsStatCannotJudgeAreAPluginErrorToo) {
  // A symlink loop and an over-long file name make stat() fail with ELOOP / ENAMETOOLONG; that
  // must surface as a PluginError (which every caller handles), not a filesystem_error.
  TempDir dir;
  const fs::path a = dir.path() / "a.so";
  const fs::path b = dir.path() / "b.so";
  fs::create_symlink(b, a);
  fs::create_symlink(a, b);
  std::string error;
  EXPECT_NO_THROW(error = load_error(a.string()));
  EXPECT_EQ(error.rfind("cannot load WeCom plugin: ", 0), 0u) << error;

  const std::string too_long = (dir.path() / (std::string(300, 'x') + ".so")).string();
  EXPECT_NO_THROW(error = load_error(too_long));
  EXPECT_EQ(error.rfind("cannot load WeCom plugin: ", 0), 0u) << error;
}

TEST(PluginLoader, LoadsThroughASymlink) {
  TempDir dir;
  const fs::path link = dir.path() / "libclawdbot_wecom.so";
  fs::create_symlink(CWC_PLUGIN_PATH, link);
  auto library = PluginLibrary::load(link.string());
  EXPECT_EQ(library->path(), link.string());
  EXPECT_EQ(library->abi_version(), "1.1");
}

TEST(PluginLoader, SharedLibraryWithoutTheEntrySymbol) {
  EXPECT_EQ(load_error(CWC_FIXTURE_NO_ENTRY),
            std::string(CWC_FIXTURE_NO_ENTRY) + " is not a clawdbot-wecom plugin (no clawdbot_wecom_plugin_init symbol)");
  EXPECT_EQ(load_error(CWC_FIXTURE_VERSION_ONLY), std::string(CWC_FIXTURE_VERSION_ONLY) +
                                                      " is not a clawdbot-wecom plugin (no clawdbot_wecom_plugin_init symbol)");
}

TEST(PluginLoader, AbiMajorTwoIsRefusedNamingBothVersions) {
  EXPECT_EQ(load_error(CWC_FIXTURE_ABI2),
            std::string(CWC_FIXTURE_ABI2) + " implements WeCom plugin ABI 2.0 but this gateway needs ABI 1.x");
}

TEST(PluginLoader, InitFailurePassesThePluginsMessageOn) {
  EXPECT_EQ(load_error(CWC_FIXTURE_INIT_FAILS), "WeCom plugin refused to initialise: fixture: OpenSSL 3 is not available");
}

TEST(PluginLoader, FindPluginPath) {
  EXPECT_EQ(find_plugin_path("/explicit/lib.so", "/usr/bin/clawdbot-wecom-gateway"), "/explicit/lib.so");

  TempDir dir;
  const fs::path root = fs::canonical(dir.path());
  fs::create_directories(root / "bin");
  fs::create_directories(root / "lib");
  std::ofstream(root / "bin" / "clawdbot-wecom-gateway") << "#!/bin/sh\n";
  const std::string exe = (root / "bin" / "clawdbot-wecom-gateway").string();
  // Nothing installed: the default beside the binary (which the loader then reports as missing).
  EXPECT_EQ(find_plugin_path("", exe), (root / "bin" / "libclawdbot_wecom.so").string());
  // Installed layout: bin/ + lib/.
  std::ofstream(root / "lib" / "libclawdbot_wecom.so") << "x";
  EXPECT_EQ(find_plugin_path("", exe), (root / "lib" / "libclawdbot_wecom.so").string());
  // Beside the binary wins.
  std::ofstream(root / "bin" / "libclawdbot_wecom.so") << "x";
  EXPECT_EQ(find_plugin_path("", exe), (root / "bin" / "libclawdbot_wecom.so").string());
}

TEST(PluginLoader, InstanceWithABadConfigReportsThePluginsMessage) {
  auto library = PluginLibrary::load(CWC_PLUGIN_PATH);
  TestHost host;
  const cwc_host_api table = host.table();
  try {
    PluginInstance bad(library, table, R"({"token":"T","encodingAESKey":"abc"})");
    FAIL() << "a 3-character encodingAESKey was accepted";
  } catch (const PluginError& e) {
    EXPECT_STREQ(e.what(), "channels.wecom.encodingAESKey must be 43 characters (got 3)");
  }
  try {
    PluginInstance bad(library, table, "{ not json");
    FAIL() << "invalid JSON was accepted";
  } catch (const PluginError& e) {
    EXPECT_NE(std::string(e.what()), "");
  }
}

TEST(PluginLoader, InstanceWithAnIncompleteHostTableIsRefused) {
  auto library = PluginLibrary::load(CWC_PLUGIN_PATH);
  TestHost host;
  cwc_host_api table = host.table();
  table.callback_dispatch = nullptr;
  try {
    PluginInstance bad(library, table, vector_config());
    FAIL() << "a host table without callback_dispatch was accepted";
  } catch (const PluginError& e) {
    EXPECT_STREQ(e.what(), "host table lacks callback_log or callback_dispatch");
  }
}

TEST(PluginLoader, VerifyUrlRoundTripThroughHandle) {
  auto library = PluginLibrary::load(CWC_PLUGIN_PATH);
  TestHost host;
  const cwc_host_api table = host.table();
  PluginInstance instance(library, table, vector_config());
  library.reset();  // the instance keeps the library loaded

  const auto routes = json::parse(instance.routes_json());
  ASSERT_TRUE(routes.is_array());
  ASSERT_EQ(routes.size(), 1u);
  const std::string path = routes[0]["path"];
  EXPECT_EQ(path, "/wecom");

  auto answer = instance.handle("GET", path, verify_query("012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb"), "", "", "127.0.0.1");
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body, kEchoPlain);  // the bare plaintext, nothing else
  EXPECT_NE(answer.content_type.find("text/plain"), std::string::npos) << answer.content_type;

  // A wrong signature is refused and reveals nothing.
  auto refused = instance.handle("GET", path, verify_query("012bc692d0a58dd4b10f8dfe5c4ac00ae211ebec"), "", "", "127.0.0.1");
  EXPECT_GE(refused.status, 400);
  EXPECT_LT(refused.status, 500);
  EXPECT_EQ(refused.body.find(kEchoPlain), std::string::npos);

  // Other paths are not the plugin's.
  EXPECT_EQ(instance.handle("GET", "/other", "", "", "", "").status, 404);

  // The status JSON carries the account; streams and accounts that do not exist are errors.
  const auto status = json::parse(instance.status_json());
  EXPECT_EQ(status["accounts"][0]["accountId"], "default");
  std::string error;
  EXPECT_FALSE(instance.push("no-such-stream", "x", &error));
  EXPECT_FALSE(error.empty());
  EXPECT_FALSE(instance.finish("no-such-stream", false, "", &error));
  EXPECT_THROW(instance.probe_json("no-such-account"), PluginError);
  const auto probe = json::parse(instance.probe_json("default"));
  EXPECT_EQ(probe["accounts"][0]["ok"], true) << probe.dump();
  instance.tick();
}

}  // namespace
}  // namespace cwc::gateway
