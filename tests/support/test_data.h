// Access to tests/data (path injected by CMake as CWC_TEST_DATA_DIR).
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>

namespace cwc::testing {

inline std::string read_data_file(const std::string& name) {
  std::ifstream in(std::string(CWC_TEST_DATA_DIR) + "/" + name, std::ios::binary);
  if (!in) throw std::runtime_error("missing test data file " + name);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The vector called `name` from tests/data/test-vectors.json.
inline nlohmann::json vector_named(const std::string& name) {
  auto doc = nlohmann::json::parse(read_data_file("test-vectors.json"));
  for (const auto& v : doc.at("vectors")) {
    if (v.at("name") == name) return v;
  }
  throw std::runtime_error("no test vector " + name);
}

inline std::string hex_to_bytes(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

}  // namespace cwc::testing
