// clawdbot-wecom-gateway: the reference host. Loads libclawdbot_wecom.so through the C ABI,
// serves its webhook routes with cpp-httplib, and answers with the echo agent or an
// OpenAI-compatible streaming endpoint. No Node needed.
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <semaphore>
#include <set>
#include <thread>

#include "agents.h"
#include "fetcher.h"
#include "file_store.h"
#include "gateway_config.h"
#include "http_server.h"
#include "plugin.h"
#include "router.h"

#ifndef CWC_VERSION
#define CWC_VERSION "0.0.0"
#endif

namespace cwc::gateway {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

constexpr const char* kShutdownText = "The gateway is shutting down; please send your message again.";

constexpr const char* kUsage = R"(clawdbot-wecom-gateway — the WeCom channel for Clawdbot, as a standalone gateway

usage:
  clawdbot-wecom-gateway [run] [options]              serve the webhook (default command)
  clawdbot-wecom-gateway plugins list [--json]
  clawdbot-wecom-gateway channels status [--probe] [--json] [--url BASE]
  clawdbot-wecom-gateway pairing list wecom [--account ID] [--json]
  clawdbot-wecom-gateway pairing approve wecom CODE [--account ID]
  clawdbot-wecom-gateway --help | --version

options:
  --config PATH      config file (JSON, comments allowed); default $CLAWDBOT_WECOM_CONFIG
  --plugin PATH      libclawdbot_wecom.so to load (default: beside the binary, ../lib, ../src)
  --port N           overrides gateway.port (0: any free port, printed at start)
  --bind ADDR        overrides gateway.bind
  --state-dir DIR    overrides gateway.stateDir (pairing store)
  --log-level L      trace|debug|info|warn|error (default: logging.level or info)
  --log-file PATH    also log to this file
  --url BASE         channels status --probe: probe this public base URL (e.g. https://host)
)";

struct Cli {
  std::vector<std::string> words;
  std::map<std::string, std::string> options;
  std::set<std::string> flags;
  bool has(const std::string& k) const { return options.count(k) > 0; }
  std::string get(const std::string& k, const std::string& d = "") const {
    auto it = options.find(k);
    return it == options.end() ? d : it->second;
  }
};

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "clawdbot-wecom-gateway: " << message << "\n(run clawdbot-wecom-gateway --help)\n";
  std::exit(2);
}

Cli parse_cli(int argc, char** argv) {
  static const std::set<std::string> kFlags = {"--json", "--probe", "--help", "--version"};
  static const std::set<std::string> kOptions = {"--config", "--plugin", "--port", "--bind", "--state-dir",
                                                 "--log-level", "--log-file", "--url", "--account"};
  Cli cli;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h") arg = "--help";
    if (arg.rfind("--", 0) != 0) {
      cli.words.push_back(arg);
      continue;
    }
    if (kFlags.count(arg)) {
      cli.flags.insert(arg);
      continue;
    }
    std::string value;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      usage_error(arg + " needs a value");
    }
    if (!kOptions.count(arg)) usage_error("unknown option " + arg);
    cli.options[arg] = value;
  }
  return cli;
}

void setup_logging(const std::string& level, const std::string& file) {
  std::vector<spdlog::sink_ptr> sinks{std::make_shared<spdlog::sinks::stderr_color_sink_mt>()};
  if (!file.empty()) sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(file));
  auto logger = std::make_shared<spdlog::logger>("gateway", sinks.begin(), sinks.end());
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") usage_error("unknown log level \"" + level + "\"");
  logger->set_level(parsed);
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

// The host side of the ABI: the state every callback reaches through host_ctx.
struct GatewayHost {
  explicit GatewayHost(const std::string& state_dir) : store(std::filesystem::path(state_dir) / "wecom-store.json") {}

  FileStore store;
  std::atomic<SessionRouter*> router{nullptr};
  // Outbound HTTP for the plugin (media downloads, response_url); only the serving gateway has one.
  std::unique_ptr<Fetcher> fetcher;

  cwc_host_api table() {
    cwc_host_api api{};
    api.struct_size = sizeof(api);
    api.abi_version = CWC_ABI_VERSION;
    api.host_ctx = this;
    api.callback_log = &GatewayHost::log;
    api.callback_dispatch = &GatewayHost::dispatch;
    api.callback_store_get = &GatewayHost::store_get;
    api.callback_store_put = &GatewayHost::store_put;
    api.callback_store_free = &GatewayHost::store_free;
    api.callback_fetch = &GatewayHost::fetch;
    api.callback_event = &GatewayHost::event;
    return api;
  }

  // Every callback below is entered from inside a plugin call: an exception escaping one would
  // cross the C boundary (std::terminate in the plugin's noexcept frames), so each catches all.
  static void log(void*, cwc_log_level level, cwc_str account, cwc_str line) noexcept try {
    static constexpr spdlog::level::level_enum kLevels[] = {spdlog::level::trace, spdlog::level::debug,
                                                            spdlog::level::info, spdlog::level::warn,
                                                            spdlog::level::err};
    const int index = static_cast<int>(level);
    const auto spd_level = index >= 0 && index <= 4 ? kLevels[index] : spdlog::level::info;
    if (account.len) spdlog::log(spd_level, "wecom[{}]: {}", from_cwc(account), from_cwc(line));
    else spdlog::log(spd_level, "wecom: {}", from_cwc(line));
  } catch (...) {
    // A lost log line is better than a dead gateway.
  }

  static cwc_status dispatch(void* ctx, const cwc_inbound_message* m) noexcept try {
    auto* self = static_cast<GatewayHost*>(ctx);
    SessionRouter* router = self->router.load();
    if (!router) return CWC_ERR_UNSUPPORTED;  // offline CLI instance, or shutting down
    Job job;
    job.account_id = from_cwc(m->account_id);
    job.target = from_cwc(m->target);
    job.sender_id = from_cwc(m->sender_id);
    job.chat_id = from_cwc(m->chat_id);
    job.message_id = from_cwc(m->message_id);
    job.msgtype = from_cwc(m->msgtype);
    job.text = from_cwc(m->text);
    job.quote_text = from_cwc(m->quote_text);
    job.stream_id = from_cwc(m->stream_id);
    job.media_json = from_cwc(m->media_json);
    job.group = m->peer_kind == CWC_PEER_GROUP;
    return router->enqueue(std::move(job)) ? CWC_OK : CWC_ERR_UNSUPPORTED;
  } catch (...) {
    return CWC_ERR_INTERNAL;  // the plugin finishes the stream with its "try again" text
  }

  static cwc_status store_get(void* ctx, cwc_str ns, cwc_str key, cwc_buffer* out) noexcept try {
    auto value = static_cast<GatewayHost*>(ctx)->store.get(from_cwc(ns), from_cwc(key));
    if (!value) return CWC_ERR_NOT_FOUND;
    out->len = value->size();
    out->ptr = new char[value->size() + 1];
    std::copy(value->begin(), value->end(), out->ptr);
    return CWC_OK;
  } catch (...) {
    return CWC_ERR_INTERNAL;
  }

  static cwc_status store_put(void* ctx, cwc_str ns, cwc_str key, cwc_str value) noexcept try {
    return static_cast<GatewayHost*>(ctx)->store.put(from_cwc(ns), from_cwc(key), from_cwc(value)) ? CWC_OK
                                                                                                     : CWC_ERR_INTERNAL;
  } catch (...) {
    return CWC_ERR_INTERNAL;  // e.g. a value nlohmann cannot serialise; the store stays as it was
  }

  static void store_free(void*, cwc_buffer* buffer) noexcept {
    delete[] buffer->ptr;
    buffer->ptr = nullptr;
    buffer->len = 0;
  }

  static cwc_status fetch(void* ctx, const cwc_fetch_request* r) noexcept try {
    auto* self = static_cast<GatewayHost*>(ctx);
    if (!self->fetcher) return CWC_ERR_UNSUPPORTED;  // CLI commands never download
    FetchJob job;
    job.id = r->request_id;
    job.method = from_cwc(r->method);
    job.url = from_cwc(r->url);
    job.content_type = from_cwc(r->content_type);
    job.body = from_cwc(r->body);
    job.max_response_bytes = r->max_response_bytes;
    job.timeout_ms = r->timeout_ms;
    return self->fetcher->submit(std::move(job)) ? CWC_OK : CWC_ERR_INTERNAL;
  } catch (...) {
    return CWC_ERR_INTERNAL;
  }

  // The plugin logs every event at info; the payload (user feedback text, card choices) only at
  // debug, since it is user content.
  static void event(void*, const cwc_event* e) noexcept try {
    spdlog::debug("wecom[{}]: event {} from {}: {}", from_cwc(e->account_id), from_cwc(e->event_type),
                  from_cwc(e->sender_id), from_cwc(e->event_json));
  } catch (...) {
  }
};

// An agent's answer goes into the plugin's stream; the sink guarantees the stream is finished
// exactly once, even if an agent returns without saying so.
class StreamSink : public ReplySink {
 public:
  StreamSink(PluginInstance& plugin, SessionRouter& router, const Job& job)
      : plugin_(plugin), router_(router), job_(job) {}
  ~StreamSink() override {
    if (!finished_) fail("The agent stopped without an answer.");
  }
  void push(const std::string& block) override {
    std::string error;
    if (!finished_ && !plugin_.push(job_.stream_id, block, &error)) {
      spdlog::warn("wecom[{}]: answer block for stream {} not delivered: {}", job_.account_id, job_.stream_id, error);
    }
  }
  void done() override { end(false, ""); }
  void fail(const std::string& text) override { end(true, text); }
  bool cancelled() const override { return router_.cancelled(); }
  bool wait_ms(int ms) override { return router_.wait_ms(ms); }
  bool attach_image(const std::string& bytes, std::string* error) override {
    return !finished_ && plugin_.attach_image(job_.stream_id, bytes, error);
  }

 private:
  void end(bool failed, const std::string& text) {
    if (finished_) return;
    finished_ = true;
    std::string error;
    if (!plugin_.finish(job_.stream_id, failed, text, &error)) {
      spdlog::warn("wecom[{}]: could not finish stream {}: {}", job_.account_id, job_.stream_id, error);
    }
  }
  PluginInstance& plugin_;
  SessionRouter& router_;
  const Job& job_;
  bool finished_ = false;
};

struct Loaded {
  GatewayConfig config;
  std::shared_ptr<PluginLibrary> library;
};

Loaded load_everything(const Cli& cli, const std::string& argv0) {
  std::string config_path = cli.get("--config");
  if (config_path.empty()) {
    if (const char* env = std::getenv("CLAWDBOT_WECOM_CONFIG")) config_path = env;
  }
  if (config_path.empty()) usage_error("no config: pass --config PATH or set CLAWDBOT_WECOM_CONFIG");
  if (std::error_code ec; !std::filesystem::is_regular_file(config_path, ec)) {
    std::cerr << "clawdbot-wecom-gateway: config file " << config_path << " does not exist or is not a file"
              << (cli.has("--config") ? "" : " (from $CLAWDBOT_WECOM_CONFIG)") << "\n";
    std::exit(2);
  }
  Loaded loaded;
  try {
    loaded.config = load_gateway_config(config_path);
  } catch (const ConfigError& e) {
    std::cerr << "clawdbot-wecom-gateway: " << config_path << ": " << e.what() << "\n";
    std::exit(2);
  }
  auto& config = loaded.config;
  if (cli.has("--port")) {
    try {
      config.port = std::stoi(cli.get("--port"));
    } catch (const std::exception&) {
      usage_error("--port must be a number");
    }
  }
  if (cli.has("--bind")) config.bind = cli.get("--bind");
  if (cli.has("--state-dir")) config.state_dir = cli.get("--state-dir");
  if (cli.has("--log-level")) config.log_level = cli.get("--log-level");
  if (cli.has("--log-file")) config.log_file = cli.get("--log-file");
  setup_logging(config.log_level, config.log_file);
  try {
    loaded.library = PluginLibrary::load(find_plugin_path(cli.get("--plugin"), argv0));
  } catch (const PluginError& e) {
    spdlog::error("{}", e.what());
    std::exit(2);
  }
  return loaded;
}

std::unique_ptr<PluginInstance> make_instance(const Loaded& loaded, GatewayHost& host, cwc_host_api& table) {
  table = host.table();
  try {
    return std::make_unique<PluginInstance>(loaded.library, table, loaded.config.wecom.dump());
  } catch (const PluginError& e) {
    spdlog::error("invalid configuration: {}", e.what());
    std::exit(2);
  }
}

std::string regex_escape(const std::string& text) {
  static const std::regex special(R"([.^$|()\[\]{}*+?\\])");
  return std::regex_replace(text, special, R"(\$&)");
}

bool is_loopback(const std::string& addr) {
  return addr.rfind("127.", 0) == 0 || addr == "::1" || addr.rfind("::ffff:127.", 0) == 0;
}

// A reverse proxy or tunnel on this machine connects from 127.0.0.1, so the peer address alone
// would let it forward /status from the internet. The headers such proxies add (Caddy, Traefik
// and the usual nginx setups: X-Forwarded-*; RFC 7239 Forwarded; Cloudflare Tunnel; Tailscale
// Funnel) mark a request that came from elsewhere; a local client (`channels status`, curl)
// sends none of them.
bool forwarded_by_a_proxy(const httplib::Request& req) {
  for (const char* header : {"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-IP", "CF-Connecting-IP",
                             "True-Client-IP", "Tailscale-Funnel-Request"}) {
    if (req.has_header(header)) return true;
  }
  return false;
}

int run_gateway(const Cli& cli, const std::string& argv0) {
  // Signals are taken by sigwait on this thread; every thread started below inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Loaded loaded = load_everything(cli, argv0);
  const GatewayConfig& config = loaded.config;
  GatewayHost host(config.state_dir);
  cwc_host_api table{};
  auto plugin = make_instance(loaded, host, table);

  std::unique_ptr<Agent> agent;
  if (config.agent_kind == "openai") agent = std::make_unique<OpenAiAgent>(config.openai);
  else agent = std::make_unique<EchoAgent>(config.echo);

  std::unique_ptr<SessionRouter> router;
  router = std::make_unique<SessionRouter>(static_cast<std::size_t>(config.agent_concurrency), [&](const Job& job) {
    StreamSink sink(*plugin, *router, job);
    try {
      agent->run(job, sink);
    } catch (const std::exception& e) {
      spdlog::error("agent failed on {} (msgid {}): {}", job.target, job.message_id, e.what());
      sink.fail("The agent failed: internal error.");
    }
  });
  host.router.store(router.get());
  host.fetcher = std::make_unique<Fetcher>(4, 256, [&plugin](std::uint64_t id, const FetchResult& result) {
    plugin->fetch_done(id, result);
  });

  // httplib parses, routes and answers; KeepAliveServer (http_server.h) owns the connections:
  // one recv and one send per request instead of httplib 0.11's ~12 syscalls; connections wait
  // for their next request in one epoll set, and the event loops (gateway.eventLoops, three
  // per core by default) answer every request that has fully arrived without handing it to
  // another thread. What could block (a request still
  // arriving, 100-continue, chunked, a slow reader) goes to the `threads` workers, so they
  // bound such requests in progress, not open connections. Idle keep-alive connections are
  // closed after 5 s.
  const auto threads = static_cast<std::size_t>(config.threads);
  KeepAliveServer server(threads, std::chrono::milliseconds(50), static_cast<std::size_t>(config.event_loops));
  // Headers and body leave in separate writes; without TCP_NODELAY, Nagle's algorithm and the
  // peer's delayed ACK add ~40 ms to every answer (measured: 352 req/s at 44 ms p50 with wrk).
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(1000);
  server.set_keep_alive_timeout(5);
  server.set_read_timeout(10, 0);
  server.set_write_timeout(10, 0);
  // The plugin answers 413 itself, with its own cap; httplib must not cut the body off first.
  server.set_payload_max_length(16u * 1024u * 1024u + 1u);

  // The plugin's work is pure CPU (a few µs). Letting every worker thread run it at once only
  // makes the scheduler preempt handlers mid-request, which is what shows in the latency tail;
  // admitting a bounded number keeps the others parked (not runnable) instead. The slots are
  // one per event loop (the loops answer nearly every request) plus one per core for the
  // workers: the loops alone never take the last slot, which matters because libstdc++'s
  // semaphore makes a futex system call on every release from zero, waiter or not (measured:
  // 0.2 per request with one slot per core, a fifth of the gateway's system calls).
  const auto cores = static_cast<std::ptrdiff_t>(std::max(1u, std::thread::hardware_concurrency()));
  const auto loops = static_cast<std::ptrdiff_t>(server.loop_count());
  std::counting_semaphore<1024> cpu_slots(std::min<std::ptrdiff_t>(loops + cores, 1024));
  auto webhook = [&](const httplib::Request& req, httplib::Response& res) {
    const std::string_view target(req.target);
    const std::size_t q = target.find('?');
    const std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
    auto answer = [&] {
      cpu_slots.acquire();
      // Released on every path: a throwing call must not leak a slot (each leak costs a core).
      struct Release {
        std::counting_semaphore<1024>& slots;
        ~Release() { slots.release(); }
      } release{cpu_slots};
      return plugin->handle(req.method, req.path, query, req.get_header_value("Content-Type"), req.body,
                            req.remote_addr);
    }();
    res.status = answer.status;
    // What set_content does, without copying the body once more.
    res.body = std::move(answer.body);
    res.set_header("Content-Type", answer.content_type.empty() ? "text/plain; charset=utf-8" : answer.content_type);
  };
  auto routes = json::parse(plugin->routes_json());
  for (const auto& route : routes) {
    const std::string path = route.value("path", "");
    const std::string pattern = regex_escape(path) + "/?";
    server.Get(pattern, webhook);
    server.Post(pattern, webhook);
    server.Put(pattern, webhook);
    server.Delete(pattern, webhook);
    server.Patch(pattern, webhook);
    server.Options(pattern, webhook);
  }
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
  server.Get("/status", [&](const httplib::Request& req, httplib::Response& res) {
    // Never public: counters and last errors stay local.
    if (!is_loopback(req.remote_addr) || forwarded_by_a_proxy(req)) {
      res.status = 404;
      res.set_content("not found", "text/plain");
      return;
    }
    res.set_content(plugin->status_json(), "application/json");
  });
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) res.set_content(res.status == 404 ? "not found" : "error", "text/plain");
  });

  int port = config.port;
  if (port == 0) {
    port = server.bind_to_any_port(config.bind);
  } else if (!server.bind_to_port(config.bind, port)) {
    port = -1;
  }
  if (port < 0) {
    spdlog::error("cannot listen on {}:{} (in use, or not an address of this machine)", config.bind, config.port);
    return 1;
  }
  spdlog::info(
      "clawdbot-wecom-gateway {} listening on http://{}:{} (plugin {} ABI {}, agent {}, {} HTTP event loops + {} workers)",
      CWC_VERSION, config.bind, port, loaded.library->version(), loaded.library->abi_version(), config.agent_kind,
      server.loop_count(), threads);
  for (const auto& route : routes) {
    spdlog::info("route {} → account {}", route.value("path", ""), route.value("accountId", ""));
  }
  if (routes.empty()) spdlog::warn("no enabled WeCom account: nothing will answer webhooks");

  std::thread http_thread([&] { server.listen_after_bind(); });
  if (!server.wait_until_serving(std::chrono::seconds(10))) spdlog::warn("HTTP workers slow to start");
  std::mutex tick_mutex;
  std::condition_variable tick_cv;
  bool stop_ticking = false;
  std::thread tick_thread([&] {
    std::unique_lock lock(tick_mutex);
    while (!tick_cv.wait_for(lock, std::chrono::seconds(1), [&] { return stop_ticking; })) plugin->tick();
  });

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  spdlog::info("received {}: finishing open answers (grace {} ms)", signal_number == SIGINT ? "SIGINT" : "SIGTERM",
               config.shutdown_grace_ms);
  // New messages are refused from here on (the plugin tells those users to retry); refreshes are
  // still answered while running agents get the grace period.
  auto never_started = router->shutdown(config.shutdown_grace_ms, [&] { agent->cancel(); });
  for (const auto& job : never_started) plugin->finish(job.stream_id, true, kShutdownText);
  host.router.store(nullptr);
  // One more tick-length pause lets WeCom fetch the final state of just-finished streams.
  std::this_thread::sleep_for(std::chrono::milliseconds(std::min(config.shutdown_grace_ms, 500)));
  server.stop();
  http_thread.join();
  {
    std::lock_guard lock(tick_mutex);
    stop_ticking = true;
  }
  tick_cv.notify_all();
  tick_thread.join();
  router.reset();
  // No fetch completion may reach the plugin after it is destroyed: stop (and join) first.
  host.fetcher->stop();
  plugin.reset();
  spdlog::info("stopped");
  return 0;
}

std::string base_url(const GatewayConfig& config) {
  const std::string host = config.bind == "0.0.0.0" || config.bind == "::" ? "127.0.0.1" : config.bind;
  return "http://" + host + ":" + std::to_string(config.port);
}

int plugins_list(const Cli& cli, const std::string& argv0) {
  const std::string path = find_plugin_path(cli.get("--plugin"), argv0);
  ordered_json entry = {{"id", "wecom"}, {"name", "WeCom"}, {"path", path}};
  try {
    auto library = PluginLibrary::load(path);
    entry["version"] = library->version();
    entry["abi"] = library->abi_version();
    entry["status"] = "loaded";
  } catch (const PluginError& e) {
    entry["status"] = "error";
    entry["error"] = e.what();
  }
  if (cli.flags.count("--json")) {
    std::cout << ordered_json({{"plugins", {entry}}}).dump(2) << "\n";
  } else {
    std::cout << "Plugins\n  wecom  WeCom  " << entry.value("version", "-") << "  ABI " << entry.value("abi", "-")
              << "  " << entry["status"].get<std::string>() << "  " << path << "\n";
    if (entry.contains("error")) std::cout << "  error: " << entry["error"].get<std::string>() << "\n";
  }
  return entry["status"] == "loaded" ? 0 : 1;
}

// "never" or "42s ago" for an epoch-milliseconds value from the plugin's status JSON.
std::string describe_age(const ordered_json& epoch_ms) {
  if (!epoch_ms.is_number_integer()) return "never";
  using namespace std::chrono;
  const auto now = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  return std::to_string(std::max<long long>(0, (now - epoch_ms.get<long long>()) / 1000)) + "s ago";
}

int channels_status(const Cli& cli, const std::string& argv0) {
  Loaded loaded = load_everything(cli, argv0);
  GatewayHost host(loaded.config.state_dir);
  cwc_host_api table{};
  auto plugin = make_instance(loaded, host, table);
  auto status = json::parse(plugin->status_json());

  // A running gateway knows the live part (last inbound, last error, counters).
  const std::string local = base_url(loaded.config);
  httplib::Client client(local);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(5, 0);
  std::optional<json> live;
  if (auto res = client.Get("/status"); res && res->status == 200) {
    auto parsed = json::parse(res->body, nullptr, false);
    if (parsed.is_object()) live = parsed;
  }

  ordered_json out = {{"channel", "wecom"}, {"gatewayRunning", live.has_value()}, {"gateway", local}};
  ordered_json accounts = ordered_json::array();
  bool all_ok = true;
  for (const auto& account : status["accounts"]) {
    ordered_json a = account;
    if (live) {
      for (const auto& l : (*live)["accounts"]) {
        if (l["accountId"] == account["accountId"]) {
          a["lastInboundAt"] = l["lastInboundAt"];
          a["lastError"] = l["lastError"];
          a["lastErrorAt"] = l["lastErrorAt"];
          a["counters"] = l["counters"];
          a["openStreams"] = l["openStreams"];
        }
      }
    }
    if (cli.flags.count("--probe")) {
      auto probe = json::parse(plugin->probe_json(account["accountId"].get<std::string>()));
      ordered_json p = probe["accounts"][0];
      const std::string target_base = cli.has("--url") ? cli.get("--url") : local;
      ordered_json network = {{"url", target_base + p["request"]["path"].get<std::string>()}};
      if (!live && !cli.has("--url")) {
        network["ok"] = false;
        network["detail"] = "no gateway is running at " + local + " (start it with `clawdbot-wecom-gateway run`)";
      } else if (p["route"]["ok"] == true) {
        httplib::Client probe_client(target_base);
        probe_client.set_connection_timeout(5, 0);
        probe_client.set_read_timeout(5, 0);
        auto res = probe_client.Get(p["request"]["path"].get<std::string>() + "?" + p["request"]["query"].get<std::string>());
        if (!res) {
          network["ok"] = false;
          network["detail"] = "no answer: " + httplib::to_string(res.error());
        } else {
          network["ok"] = res->status == 200 && res->body == p["expectBody"].get<std::string>();
          network["detail"] = network["ok"] == true ? "VerifyURL answered with the bare plaintext"
                                                    : "HTTP " + std::to_string(res->status) + ": " + res->body.substr(0, 120);
        }
      }
      p.erase("request");
      p.erase("expectBody");
      p["network"] = network;
      const bool ok = p["ok"] == true && (network.value("ok", false) || (!live && !cli.has("--url")));
      p["ok"] = ok;
      all_ok = all_ok && ok;
      a["probe"] = p;
    }
    accounts.push_back(a);
  }
  out["accounts"] = accounts;
  if (cli.flags.count("--json")) {
    std::cout << out.dump(2) << "\n";
    return all_ok ? 0 : 1;
  }
  std::cout << "WeCom (wecom) — gateway " << (live ? "running at " + local : "not running at " + local) << "\n";
  for (const auto& a : accounts) {
    std::cout << "- " << a["accountId"].get<std::string>() << ": " << (a["enabled"] == true ? "enabled" : "disabled")
              << ", configured, path " << a["webhookPath"].get<std::string>() << ", key valid, dm "
              << a["dmPolicy"].get<std::string>();
    if (live) {
      std::cout << ", last inbound " << describe_age(a["lastInboundAt"])
                << ", last error " << (a["lastError"].is_null() ? std::string("none") : a["lastError"].get<std::string>());
    }
    std::cout << "\n";
    if (a.contains("probe")) {
      const auto& p = a["probe"];
      const bool reachable = p["network"].value("ok", false);
      std::cout << "  gateway reachable: "
                << (reachable ? "yes" : (!live && !cli.has("--url")) ? "no (no gateway running; probed in process only)"
                                                                      : "no")
                << "\n";
      std::cout << "  probe: " << (p["ok"] == true ? "ok" : "FAILED") << " (crypto round trip "
                << (p["cryptoRoundTrip"] == true ? "ok" : "failed") << "; in-process VerifyURL "
                << p["route"]["detail"].get<std::string>() << "; network " << p["network"]["url"].get<std::string>()
                << ": " << p["network"].value("detail", std::string("-")) << ")\n";
    }
  }
  return all_ok ? 0 : 1;
}

int pairing(const Cli& cli, const std::string& argv0) {
  if (cli.words.size() < 3 || cli.words[2] != "wecom") usage_error("usage: pairing list wecom | pairing approve wecom CODE");
  const std::string& action = cli.words[1];
  Loaded loaded = load_everything(cli, argv0);
  GatewayHost host(loaded.config.state_dir);
  cwc_host_api table{};
  auto plugin = make_instance(loaded, host, table);
  try {
    if (action == "list") {
      auto list = json::parse(plugin->pairing_list_json(cli.get("--account")));
      if (cli.flags.count("--json")) {
        std::cout << list.dump(2) << "\n";
        return 0;
      }
      if (list["requests"].empty()) std::cout << "No pending WeCom pairing requests.\n";
      for (const auto& r : list["requests"]) {
        std::cout << r["code"].get<std::string>() << "  user " << r["userId"].get<std::string>() << "  account "
                  << r["accountId"].get<std::string>() << "\n";
      }
      return 0;
    }
    if (action == "approve") {
      if (cli.words.size() < 4) usage_error("pairing approve wecom needs a CODE");
      auto approved = json::parse(plugin->pairing_approve(cli.get("--account"), cli.words[3]));
      std::cout << "Approved WeCom user " << approved["userId"].get<std::string>() << " on account "
                << approved["accountId"].get<std::string>() << ".\n";
      return 0;
    }
  } catch (const PluginError& e) {
    std::cerr << "clawdbot-wecom-gateway: " << e.what() << "\n";
    return 1;
  }
  usage_error("unknown pairing action \"" + action + "\"");
}

}  // namespace
}  // namespace cwc::gateway

int main(int argc, char** argv) {
  using namespace cwc::gateway;
  const Cli cli = parse_cli(argc, argv);
  const std::string argv0 = argc > 0 ? argv[0] : "clawdbot-wecom-gateway";
  if (cli.flags.count("--help")) {
    std::cout << kUsage;
    return 0;
  }
  if (cli.flags.count("--version")) {
    std::cout << "clawdbot-wecom-gateway " << CWC_VERSION << " (host ABI " << CWC_ABI_VERSION_MAJOR << "."
              << CWC_ABI_VERSION_MINOR << ")\n";
    try {
      auto library = PluginLibrary::load(find_plugin_path(cli.get("--plugin"), argv0));
      std::cout << "plugin " << library->path() << " " << library->version() << " (ABI " << library->abi_version()
                << ")\n";
    } catch (const PluginError& e) {
      std::cout << "plugin: " << e.what() << "\n";
    }
    return 0;
  }
  const std::string command = cli.words.empty() ? "run" : cli.words[0];
  if (command == "run") return run_gateway(cli, argv0);
  if (command == "plugins" && cli.words.size() >= 2 && cli.words[1] == "list") return plugins_list(cli, argv0);
  if (command == "channels" && cli.words.size() >= 2 && cli.words[1] == "status") return channels_status(cli, argv0);
  if (command == "pairing") return pairing(cli, argv0);
  usage_error("unknown command \"" + command + "\"");
}
