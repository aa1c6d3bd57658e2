#include "file_store.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace cwc::gateway {

namespace fs = std::filesystem;

std::optional<FileStore::Version> FileStore::version_of(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return std::nullopt;
  return Version{static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec,
                 static_cast<long long>(st.st_size), static_cast<unsigned long long>(st.st_ino)};
}

void FileStore::reload_if_changed_locked() {
  const auto version = version_of(file_);
  if (!version) {  // no file yet: an empty store
    if (!loaded_) data_.clear();
    loaded_ = true;
    return;
  }
  if (loaded_ && *version == loaded_version_) return;
  std::ifstream in(file_);
  std::ostringstream text;
  text << in.rdbuf();
  auto doc = nlohmann::json::parse(text.str(), nullptr, false);
  if (!doc.is_object()) {
    spdlog::error("store {} is not a JSON object; keeping the previous contents", file_.string());
  } else {
    data_.clear();
    for (const auto& [ns, entries] : doc.items()) {
      if (!entries.is_object()) continue;
      for (const auto& [key, value] : entries.items()) {
        if (value.is_string()) data_[ns][key] = value.get<std::string>();
      }
    }
  }
  loaded_version_ = *version;
  loaded_ = true;
}

std::optional<std::string> FileStore::get(const std::string& ns, const std::string& key) {
  std::lock_guard lock(mutex_);
  reload_if_changed_locked();
  auto it = data_.find(ns);
  if (it == data_.end()) return std::nullopt;
  auto entry = it->second.find(key);
  if (entry == it->second.end()) return std::nullopt;
  return entry->second;
}

bool FileStore::put(const std::string& ns, const std::string& key, const std::string& value) {
  std::lock_guard lock(mutex_);
  reload_if_changed_locked();
  data_[ns][key] = value;
  nlohmann::json doc = nlohmann::json::object();
  for (const auto& [n, entries] : data_) {
    for (const auto& [k, v] : entries) doc[n][k] = v;
  }
  std::error_code ec;
  fs::create_directories(file_.parent_path(), ec);
  const fs::path tmp = file_.string() + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << doc.dump(2) << "\n";
    out.flush();
    if (!out) {
      spdlog::error("cannot write store {}", tmp.string());
      fs::remove(tmp, ec);
      return false;
    }
  }
  fs::rename(tmp, file_, ec);
  if (ec) {
    spdlog::error("cannot replace store {}: {}", file_.string(), ec.message());
    fs::remove(tmp, ec);  // do not leave the temporary file behind
    return false;
  }
  if (const auto version = version_of(file_)) loaded_version_ = *version;
  return true;
}

}  // namespace cwc::gateway
