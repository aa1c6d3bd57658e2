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
  // What identifies the file version that was loaded. The mtime alone misses a write that
  // lands within the same (coarse, a few ms) timestamp tick; every put() renames a new file
  // into place, so the inode changes too.
  struct Version {
    long long mtime_ns = 0;
    long long size = -1;
    unsigned long long inode = 0;
    bool operator==(const Version&) const = default;
  };
  static std::optional<Version> version_of(const std::filesystem::path& file);
  Version loaded_version_{};
  bool loaded_ = false;
};

}  // namespace cwc::gateway
