// The host key/value store: a JSON file written atomically and re-read when another process
// (here: a second FileStore object on the same file) changed it.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "file_store.h"
#include "gateway_test_util.h"

namespace cwc::gateway {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using gwtest::TempDir;

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

json read_json(const fs::path& file) { return json::parse(read_text(file), nullptr, /*allow_exceptions=*/false); }

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  return names;
}

class FileStoreTest : public ::testing::Test {
 protected:
  TempDir dir_;
  fs::path file_ = dir_.path() / "wecom-store.json";
};

TEST_F(FileStoreTest, PutGetRoundTrip) {
  FileStore store(file_);
  EXPECT_EQ(store.file(), file_);
  EXPECT_FALSE(store.get("ns", "k"));  // no file yet: an empty store
  EXPECT_FALSE(fs::exists(file_));     // and reading does not create one

  EXPECT_TRUE(store.put("ns", "k", "v1"));
  EXPECT_EQ(store.get("ns", "k"), "v1");
  EXPECT_TRUE(store.put("ns", "k", "v2"));  // overwrite
  EXPECT_EQ(store.get("ns", "k"), "v2");

  EXPECT_TRUE(store.put("ns", "other", "o"));
  EXPECT_TRUE(store.put("allowFrom:default", "list", R"(["alice","bob"])"));
  const std::string awkward = "quote \" backslash \\ newline \n tab \t \xe4\xbd\xa0\xe5\xa5\xbd";
  EXPECT_TRUE(store.put("weird ns/\xe2\x9c\x93", "", awkward));
  EXPECT_TRUE(store.put("ns", "empty", ""));

  EXPECT_EQ(store.get("ns", "k"), "v2");
  EXPECT_EQ(store.get("ns", "other"), "o");
  EXPECT_EQ(store.get("allowFrom:default", "list"), R"(["alice","bob"])");
  EXPECT_EQ(store.get("weird ns/\xe2\x9c\x93", ""), awkward);
  EXPECT_EQ(store.get("ns", "empty"), "");
  EXPECT_FALSE(store.get("ns", "missing"));
  EXPECT_FALSE(store.get("missing", "k"));
}

TEST_F(FileStoreTest, PersistsAcrossInstances) {
  {
    FileStore store(file_);
    ASSERT_TRUE(store.put("pairing:default", "requests", R"([{"code":"ABCD"}])"));
    ASSERT_TRUE(store.put("allowFrom:default", "list", R"(["alice"])"));
  }
  const json on_disk = read_json(file_);
  EXPECT_EQ(on_disk, json::parse(R"({"pairing:default":{"requests":"[{\"code\":\"ABCD\"}]"},
                                     "allowFrom:default":{"list":"[\"alice\"]"}})"));
  FileStore reopened(file_);
  EXPECT_EQ(reopened.get("pairing:default", "requests"), R"([{"code":"ABCD"}])");
  EXPECT_EQ(reopened.get("allowFrom:default", "list"), R"(["alice"])");
}

TEST_F(FileStoreTest, CreatesMissingParentDirectories) {
  const fs::path nested = dir_.path() / "a" / "b" / "store.json";
  FileStore store(nested);
  ASSERT_TRUE(store.put("ns", "k", "v"));
  EXPECT_TRUE(fs::is_regular_file(nested));
  EXPECT_EQ(FileStore(nested).get("ns", "k"), "v");
}

TEST_F(FileStoreTest, EveryPutLeavesACompleteDocumentAndNoTemporaryFile) {
  FileStore store(file_);
  json expected = json::object();
  for (int i = 0; i < 30; ++i) {
    const std::string ns = "ns" + std::to_string(i % 3);
    const std::string key = "k" + std::to_string(i);
    const std::string value(static_cast<std::size_t>(i * 37), 'x');
    ASSERT_TRUE(store.put(ns, key, value));
    expected[ns][key] = value;
    const json doc = read_json(file_);
    ASSERT_FALSE(doc.is_discarded()) << "invalid JSON after put " << i;
    ASSERT_EQ(doc, expected) << "after put " << i;
    ASSERT_EQ(names_in(dir_.path()), std::vector<std::string>{"wecom-store.json"}) << "after put " << i;
  }
}

TEST_F(FileStoreTest, AConcurrentReaderNeverSeesAPartialFile) {
  // Writes go to a temporary file that is renamed over the store, so a reader (the pairing CLI)
  // only ever sees a complete old or a complete new document.
  FileStore store(file_);
  ASSERT_TRUE(store.put("ns", "seed", "0"));
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::atomic<int> bad_reads{0};
  std::thread reader([&] {
    while (!stop) {
      const json doc = read_json(file_);
      if (!doc.is_object() || !doc.contains("ns")) ++bad_reads;
      ++reads;
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + 1s;
  for (int i = 0; i < 200 && std::chrono::steady_clock::now() < deadline; ++i) {
    ASSERT_TRUE(store.put("ns", "k" + std::to_string(i % 20), std::string(static_cast<std::size_t>(100 + i * 50), 'v')));
  }
  stop = true;
  reader.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(bad_reads.load(), 0);
}

TEST_F(FileStoreTest, PutsFromManyThreadsAllLand) {
  FileStore store(file_);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        EXPECT_TRUE(store.put("t" + std::to_string(t), std::to_string(i), std::to_string(t * 100 + i)));
        EXPECT_EQ(store.get("t" + std::to_string(t), std::to_string(i)), std::to_string(t * 100 + i));
      }
    });
  }
  for (auto& t : threads) t.join();
  FileStore reopened(file_);
  for (int t = 0; t < 4; ++t) {
    for (int i = 0; i < 25; ++i) {
      EXPECT_EQ(reopened.get("t" + std::to_string(t), std::to_string(i)), std::to_string(t * 100 + i));
    }
  }
}

TEST_F(FileStoreTest, AnotherInstanceSeesChanges) {
  FileStore gateway(file_);
  FileStore cli(file_);  // e.g. `pairing approve` in another process
  ASSERT_TRUE(gateway.put("pairing:default", "requests", R"([{"code":"ABCD"}])"));
  EXPECT_EQ(gateway.get("allowFrom:default", "list"), std::nullopt);  // loaded and cached

  // The CLI reads what the gateway wrote and adds to it.
  EXPECT_EQ(cli.get("pairing:default", "requests"), R"([{"code":"ABCD"}])");
  ASSERT_TRUE(cli.put("allowFrom:default", "list", R"(["alice"])"));
  ASSERT_TRUE(cli.put("pairing:default", "requests", "[]"));

  // The gateway notices without a restart, and its next write keeps the CLI's entries.
  EXPECT_EQ(gateway.get("allowFrom:default", "list"), R"(["alice"])");
  EXPECT_EQ(gateway.get("pairing:default", "requests"), "[]");
  ASSERT_TRUE(gateway.put("pairing:default", "requests", R"([{"code":"EFGH"}])"));
  EXPECT_EQ(cli.get("allowFrom:default", "list"), R"(["alice"])");
  EXPECT_EQ(cli.get("pairing:default", "requests"), R"([{"code":"EFGH"}])");
}

TEST_F(FileStoreTest, AChangeWithinOneTimestampTickIsStillSeen) {
  // File timestamps come from a coarse kernel clock (a few ms), so two writes in quick
  // succession can carry the same mtime. Force that case: the CLI's write gets exactly the
  // mtime the gateway loaded, with a value of the same length (same file size).
  FileStore gateway(file_);
  FileStore cli(file_);
  ASSERT_TRUE(gateway.put("allowFrom:default", "list", R"(["aaaaa"])"));
  ASSERT_EQ(gateway.get("allowFrom:default", "list"), R"(["aaaaa"])");
  const auto loaded_mtime = fs::last_write_time(file_);
  const auto loaded_size = fs::file_size(file_);

  ASSERT_TRUE(cli.put("allowFrom:default", "list", R"(["bbbbb"])"));
  fs::last_write_time(file_, loaded_mtime);
  ASSERT_EQ(fs::file_size(file_), loaded_size);

  EXPECT_EQ(gateway.get("allowFrom:default", "list"), R"(["bbbbb"])");
}

TEST_F(FileStoreTest, CorruptFileReadsAsEmptyWithoutCrashing) {
  const std::vector<std::string> corrupt = {
      "{ not json", "", "[]", "42", "null", std::string("\x00\xff\xfe{", 4), R"({"ns": {"k": "v")",
  };
  for (const auto& text : corrupt) {
    std::ofstream(file_, std::ios::binary | std::ios::trunc) << text;
    FileStore store(file_);
    EXPECT_EQ(store.get("ns", "k"), std::nullopt) << ::testing::PrintToString(text);
    // The next write replaces the broken file with a valid document.
    EXPECT_TRUE(store.put("ns", "k", "v"));
    EXPECT_EQ(store.get("ns", "k"), "v");
    EXPECT_EQ(read_json(file_), json::parse(R"({"ns":{"k":"v"}})"));
  }
}

TEST_F(FileStoreTest, EntriesOfTheWrongShapeAreSkipped) {
  std::ofstream(file_) << R"({"ns": {"good": "v", "number": 1, "object": {"a": "b"}, "null": null},
                             "flat": "not an object", "list": ["a"]})";
  FileStore store(file_);
  EXPECT_EQ(store.get("ns", "good"), "v");
  EXPECT_EQ(store.get("ns", "number"), std::nullopt);
  EXPECT_EQ(store.get("ns", "object"), std::nullopt);
  EXPECT_EQ(store.get("ns", "null"), std::nullopt);
  EXPECT_EQ(store.get("flat", ""), std::nullopt);
  EXPECT_EQ(store.get("list", "0"), std::nullopt);
}

TEST_F(FileStoreTest, ALaterCorruptionKeepsThePreviousContents) {
  FileStore store(file_);
  ASSERT_TRUE(store.put("ns", "k", "v"));
  // Another process leaves a broken file behind (with a different mtime and size).
  std::ofstream(file_, std::ios::trunc) << "{ truncated";
  fs::last_write_time(file_, fs::last_write_time(file_) + 1s);
  EXPECT_EQ(store.get("ns", "k"), "v");
}

TEST_F(FileStoreTest, UnwritableLocationFailsCleanly) {
  // The parent "directory" is a regular file: nothing can be created below it.
  const fs::path blocker = dir_.path() / "blocker";
  std::ofstream(blocker) << "x";
  FileStore store(blocker / "store.json");
  EXPECT_EQ(store.get("ns", "k"), std::nullopt);
  EXPECT_FALSE(store.put("ns", "k", "v"));

  // The store path is a directory: the final rename fails, and no temporary file is left.
  const fs::path as_dir = dir_.path() / "dir-store";
  fs::create_directories(as_dir / "child");
  FileStore dir_store(as_dir);
  EXPECT_EQ(dir_store.get("ns", "k"), std::nullopt);
  EXPECT_FALSE(dir_store.put("ns", "k", "v"));
  for (const auto& name : names_in(dir_.path())) EXPECT_EQ(name.find(".tmp."), std::string::npos) << name;
}

}  // namespace
}  // namespace cwc::gateway
