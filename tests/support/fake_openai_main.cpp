// fake-openai: the FakeOpenAiServer as a process, for demos and tests that drive the gateway
// binary. Prints `listening <port>` on stdout once it accepts connections; SIGINT/SIGTERM stop it.
//
//   fake-openai [--port N] [--chunks "a|b|c"] [--delay-ms N] [--status N] [--hang]
//               [--close-mid-stream] [--reasoning TEXT] [--api-key KEY]
//
// GET /stats answers {"requests": N}.
#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "support/fake_openai_server.h"

namespace {

std::vector<std::string> split_chunks(const std::string& text) {
  std::vector<std::string> chunks;
  std::size_t start = 0;
  while (true) {
    const std::size_t bar = text.find('|', start);
    chunks.push_back(text.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
    if (bar == std::string::npos) return chunks;
    start = bar + 1;
  }
}

[[noreturn]] void usage(const std::string& problem) {
  std::cerr << "fake-openai: " << problem
            << "\nusage: fake-openai [--port N] [--chunks \"a|b|c\"] [--delay-ms N] [--status N] [--hang]"
               " [--close-mid-stream] [--reasoning TEXT] [--api-key KEY]\n";
  std::exit(2);
}

int to_int(const std::string& option, const std::string& value) {
  try {
    std::size_t used = 0;
    const int n = std::stoi(value, &used);
    if (used == value.size() && n >= 0) return n;
  } catch (const std::exception&) {
  }
  usage(option + " needs a non-negative number");
}

}  // namespace

int main(int argc, char** argv) {
  cwc::testing::FakeOpenAiOptions options;
  int port = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--port") port = to_int(arg, value());
    else if (arg == "--chunks") options.chunks = split_chunks(value());
    else if (arg == "--delay-ms") options.delay_ms = to_int(arg, value());
    else if (arg == "--status") options.status = to_int(arg, value());
    else if (arg == "--hang") options.hang = true;
    else if (arg == "--close-mid-stream") options.close_mid_stream = true;
    else if (arg == "--reasoning") options.reasoning = value();
    else if (arg == "--api-key") options.api_key = value();
    else if (arg == "--help" || arg == "-h") usage("a fake OpenAI-compatible streaming endpoint");
    else usage("unknown option " + arg);
  }

  // Block the stop signals before the server starts its threads (they inherit the mask), then
  // take them synchronously here: no work in a signal handler.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  try {
    cwc::testing::FakeOpenAiServer server(options, port);
    std::cout << "listening " << server.port() << std::endl;
    int signal_number = 0;
    sigwait(&signals, &signal_number);
    server.stop();
  } catch (const std::exception& e) {
    std::cerr << "fake-openai: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
