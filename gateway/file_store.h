// The host store behind the plugin's pairing and allow-from lists: one JSON file
// ({ns: {key: value}}), re-read when another process (the pairing CLI) changed it, written
// atomically (temporary file + rename).
#pragma once

#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace cwc::gateway {

class FileStore {
 public:
  explicit FileStore(std::filesystem::path file) : file_(std::move(file)) {}

  std::optional<std::string> get(const std::string& ns, const std::string& key);
  bool put(const std::string& ns, const std::string& key, const std::string& value);
  const std::filesystem::path& file() const { return file_; }

 private:
  void reload_if_changed_locked();

  std::filesystem::path file_;
  std::mutex mutex_;
  std::map<std::string, std::map<std::string, std::string>> data_;
  std::filesystem::file_time_type loaded_mtime_{};
  bool loaded_ = false;
};

}  // namespace cwc::gateway
