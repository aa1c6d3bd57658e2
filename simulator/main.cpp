// wecom-sim: plays WeCom's side of an intelligent bot's webhook, for demos, tests and for
// debugging a deployment's public URL. Exit status: 0 ok, 1 protocol/network failure, 2 usage.
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "crypto/crypto.h"
#include "sim.h"

#ifndef CWC_VERSION
#define CWC_VERSION "0.0.0"
#endif

namespace {

using cwc::sim::Client;
using cwc::sim::Credentials;
using cwc::sim::Sender;
using cwc::sim::Wecom;

constexpr const char* kUsage = R"(wecom-sim — plays WeCom's side of an intelligent bot (API mode) webhook

usage:
  wecom-sim verify-url --url U --token T --aes-key K [--receive-id R]
  wecom-sim send --url U --token T --aes-key K [--receive-id R] --user ID [--group CHATID]
                 (--text S | --event enter_chat | --image FILE | --file FILE)
                 [--follow] [--msgid ID] [--repeat N] [--format json|xml]
                 [--timeout SECONDS] [--interval-ms MS] [--continued-text S]
  wecom-sim decrypt --token T --aes-key K [--receive-id R] --timestamp TS --nonce N
                    --signature S --encrypt B64
  wecom-sim encrypt --token T --aes-key K [--receive-id R] (--plaintext S | --plaintext-file F)
                    [--timestamp TS] [--nonce N] [--random-hex 32HEX]
  wecom-sim --help | --version

send prints the decrypted reply JSON; with --follow it refreshes the stream about once a second
(like WeCom) until finish and prints the final content (progress goes to stderr). With --event
enter_chat it prints the welcome text. --image/--file serve the AES-encrypted file from a local
server on 127.0.0.1 and put that URL in the message. --repeat N posts the same msgid N times (a
WeCom retry): every answer must name the same stream. With --follow the message's response_url
is a local server too: when the finished stream ends with the continuation note (--continued-text;
the default is: (continued below)), send waits for the rest of the answer there and prints it after a
line "--- response_url ---".
Exit status: 0 success, 1 protocol or network failure (the reason is on stderr), 2 usage error.
)";

struct Args {
  std::string command;
  std::map<std::string, std::string> values;
  std::set<std::string> flags;

  bool has(const std::string& key) const { return values.count(key) > 0; }
  std::string get(const std::string& key, const std::string& fallback = "") const {
    auto it = values.find(key);
    return it == values.end() ? fallback : it->second;
  }
};

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "wecom-sim: " << message << "\n(run wecom-sim --help for usage)\n";
  std::exit(2);
}

[[noreturn]] void fail(const std::string& message) {
  std::cerr << "wecom-sim: " << message << "\n";
  std::exit(1);
}

Args parse_args(int argc, char** argv) {
  static const std::set<std::string> kFlags = {"--follow", "--help", "--version"};
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h") arg = "--help";
    if (arg.rfind("--", 0) != 0) {
      if (!args.command.empty()) usage_error("unexpected argument \"" + arg + "\"");
      args.command = arg;
      continue;
    }
    if (kFlags.count(arg)) {
      args.flags.insert(arg);
      continue;
    }
    std::string value;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
    } else {
      if (i + 1 >= argc) usage_error(arg + " needs a value");
      value = argv[++i];
    }
    args.values[arg] = value;
  }
  return args;
}

void require(const Args& args, std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    if (!args.has(key)) usage_error(args.command + " needs " + key);
  }
}

void allow_only(const Args& args, std::set<std::string> allowed) {
  allowed.insert({"--token", "--aes-key", "--receive-id"});
  for (const auto& [key, value] : args.values) {
    if (!allowed.count(key)) usage_error("unknown option " + key + " for " + args.command);
  }
}

int int_option(const Args& args, const std::string& key, int fallback, int min, int max) {
  if (!args.has(key)) return fallback;
  try {
    std::size_t used = 0;
    int v = std::stoi(args.get(key), &used);
    if (used != args.get(key).size() || v < min || v > max) throw std::out_of_range(key);
    return v;
  } catch (const std::exception&) {
    usage_error(key + " must be a number between " + std::to_string(min) + " and " + std::to_string(max));
  }
}

Wecom make_wecom(const Args& args) {
  require(args, {"--token", "--aes-key"});
  auto wecom = Wecom::create(Credentials{args.get("--token"), args.get("--aes-key"), args.get("--receive-id")});
  if (!wecom) usage_error(wecom.error().detail);
  return std::move(*wecom);
}

Client make_client(const Args& args, int timeout_seconds = 10) {
  require(args, {"--url"});
  auto url = cwc::sim::parse_url(args.get("--url"));
  if (!url) usage_error(url.error().detail);
  return Client(make_wecom(args), *url, timeout_seconds);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) usage_error("cannot read " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

int cmd_verify_url(const Args& args) {
  allow_only(args, {"--url", "--timeout"});
  Client client = make_client(args, int_option(args, "--timeout", 10, 1, 600));
  auto echo = client.verify_url();
  if (!echo) fail(echo.error().detail);
  std::cout << "VerifyURL ok: " << args.get("--url") << " answered the bare plaintext " << *echo << "\n";
  return 0;
}

int cmd_send(const Args& args) {
  allow_only(args, {"--url", "--user", "--group", "--text", "--event", "--image", "--file", "--msgid", "--repeat",
                    "--format", "--timeout", "--interval-ms", "--continued-text"});
  require(args, {"--user"});
  const int kinds = args.has("--text") + args.has("--event") + args.has("--image") + args.has("--file");
  if (kinds != 1) usage_error("send needs exactly one of --text, --event, --image, --file");
  const std::string format_name = args.get("--format", "json");
  if (format_name != "json" && format_name != "xml") usage_error("--format must be json or xml");
  const auto format = format_name == "xml" ? cwc::envelope::Format::Xml : cwc::envelope::Format::Json;
  const int timeout_s = int_option(args, "--timeout", 60, 1, 3600);
  const int interval_ms = int_option(args, "--interval-ms", 1000, 10, 60000);
  const int repeat = int_option(args, "--repeat", 1, 1, 100);
  Client client = make_client(args);

  Sender sender;
  sender.user_id = args.get("--user");
  sender.chat_id = args.get("--group");
  // WeCom's one-shot fallback url, played locally when we follow the answer to its end.
  std::unique_ptr<cwc::sim::ResponseUrlServer> response_url;
  if (args.flags.count("--follow")) {
    response_url = std::make_unique<cwc::sim::ResponseUrlServer>();
    sender.response_url = response_url->url();
  }
  const std::string msgid = args.get("--msgid", cwc::sim::random_msgid());

  std::unique_ptr<cwc::sim::MediaServer> media;
  std::string plaintext;
  if (args.has("--text")) {
    plaintext = cwc::sim::build_text(sender, msgid, args.get("--text"));
  } else if (args.has("--event")) {
    plaintext = cwc::sim::build_event(sender, msgid, args.get("--event"));
  } else {
    const std::string kind = args.has("--image") ? "image" : "file";
    media = std::make_unique<cwc::sim::MediaServer>(client.wecom().encrypt_media(read_file(args.get("--" + kind))));
    std::cerr << "serving the encrypted " << kind << " at " << media->url() << "\n";
    plaintext = cwc::sim::build_media(sender, msgid, kind, media->url());
  }

  std::string first_stream_id;
  std::string reply;
  for (int i = 0; i < repeat; ++i) {
    auto exchange = client.post(plaintext, format);
    if (!exchange) fail(exchange.error().detail);
    reply = exchange->plaintext;
    if (reply.empty()) continue;
    auto doc = nlohmann::json::parse(reply, nullptr, false);
    if (doc.is_object() && doc.value("msgtype", "") == "stream") {
      const std::string id = doc["stream"].value("id", "");
      if (i == 0) first_stream_id = id;
      else if (id != first_stream_id) {
        std::cerr << "warning: retry " << i + 1 << " of msgid " << msgid << " got stream " << id << ", not "
                  << first_stream_id << " (duplicate msgid not deduplicated)\n";
      }
    }
  }
  if (reply.empty()) {
    std::cerr << "(no reply)\n";
    return 0;
  }
  auto doc = nlohmann::json::parse(reply, nullptr, false);
  if (!doc.is_object()) fail("reply plaintext is not JSON: " + reply.substr(0, 200));
  const std::string msgtype = doc.value("msgtype", "");
  if (msgtype == "text" && args.has("--event")) {
    std::cout << doc["text"].value("content", "") << "\n";
    return 0;
  }
  if (msgtype == "stream" && args.flags.count("--follow")) {
    const auto& stream = doc["stream"];
    std::cerr << "stream " << stream.value("id", "") << ": \"" << stream.value("content", "") << "\"\n";
    cwc::Result<std::string> final_content = stream.value("content", "");
    std::vector<std::string> images;
    if (!stream.value("finish", false)) {
      final_content = client.follow(sender, stream.value("id", ""), interval_ms, timeout_s * 1000, format,
                                    [](const std::string& content) { std::cerr << "refresh: \"" << content << "\"\n"; },
                                    &images);
    }
    if (!final_content) fail(final_content.error().detail);
    std::cout << *final_content << "\n";
    for (const auto& image : images) {
      std::cout << "[reply image: " << image.size() << " bytes, md5 verified]\n";
    }
    const std::string note = args.get("--continued-text", "(continued below)");
    if (final_content->size() >= note.size() && final_content->compare(final_content->size() - note.size(), note.size(), note) == 0) {
      std::cerr << "stream ended with \"" << note << "\": waiting for the rest at response_url\n";
      auto rest = response_url->wait_for_post(timeout_s * 1000);
      if (!rest) fail("the stream promised a continuation but nothing was POSTed to response_url within " + std::to_string(timeout_s) + " s");
      auto body = nlohmann::json::parse(*rest, nullptr, false);
      if (!body.is_object() || body.value("msgtype", "") != "markdown" || !body.contains("markdown")) {
        fail("response_url POST is not a markdown message: " + rest->substr(0, 200));
      }
      std::cout << "--- response_url ---\n" << body["markdown"].value("content", "") << "\n";
    }
    return 0;
  }
  std::cout << reply << "\n";
  return 0;
}

int cmd_decrypt(const Args& args) {
  allow_only(args, {"--timestamp", "--nonce", "--signature", "--encrypt"});
  require(args, {"--timestamp", "--nonce", "--signature", "--encrypt"});
  auto plain = make_wecom(args).open(args.get("--signature"), args.get("--timestamp"), args.get("--nonce"),
                                     args.get("--encrypt"));
  if (!plain) fail(plain.error().describe());
  std::cout << *plain << "\n";
  return 0;
}

int cmd_encrypt(const Args& args) {
  allow_only(args, {"--plaintext", "--plaintext-file", "--timestamp", "--nonce", "--random-hex"});
  if (args.has("--plaintext") == args.has("--plaintext-file")) usage_error("encrypt needs --plaintext or --plaintext-file");
  const std::string plaintext = args.has("--plaintext") ? args.get("--plaintext") : read_file(args.get("--plaintext-file"));
  std::optional<std::array<std::uint8_t, 16>> prefix;
  if (args.has("--random-hex")) {
    const std::string hex = args.get("--random-hex");
    if (hex.size() != 32 || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      usage_error("--random-hex must be 32 hex characters");
    }
    prefix.emplace();
    for (std::size_t i = 0; i < 16; ++i) (*prefix)[i] = static_cast<std::uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  }
  auto sealed = make_wecom(args).seal(plaintext, args.get("--timestamp", cwc::sim::now_timestamp()),
                                      args.get("--nonce", cwc::sim::random_nonce()), prefix);
  nlohmann::ordered_json out = {{"encrypt", sealed.encrypt},
                                {"msg_signature", sealed.signature},
                                {"timestamp", sealed.timestamp},
                                {"nonce", sealed.nonce}};
  std::cout << out.dump() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  if (args.flags.count("--version")) {
    std::cout << "wecom-sim " << CWC_VERSION << "\n";
    return 0;
  }
  if (args.flags.count("--help") || args.command.empty()) {
    std::cout << kUsage;
    return args.command.empty() && !args.flags.count("--help") ? 2 : 0;
  }
  if (args.flags.count("--follow") && args.command != "send") usage_error("--follow only goes with send");
  if (args.command == "verify-url") return cmd_verify_url(args);
  if (args.command == "send") return cmd_send(args);
  if (args.command == "decrypt") return cmd_decrypt(args);
  if (args.command == "encrypt") return cmd_encrypt(args);
  usage_error("unknown command \"" + args.command + "\"");
}
