#include "media/media.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <thread>

namespace cwc::media {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;

TEST(Sniff, RecognisesWecomImageFormatsByMagic) {
  EXPECT_EQ(sniff_image("\xFF\xD8\xFF\xE0rest"s)->mime, "image/jpeg");
  EXPECT_EQ(sniff_image("\x89PNG\r\n\x1A\nrest"s)->extension, "png");
  EXPECT_EQ(sniff_image("GIF89a..."s)->mime, "image/gif");
  EXPECT_EQ(sniff_image("RIFF\x10\0\0\0WEBPVP8 "s)->mime, "image/webp");
  EXPECT_EQ(sniff_image("BM" + std::string(30, '\0'))->mime, "image/bmp");
  EXPECT_FALSE(sniff_image(""));
  EXPECT_FALSE(sniff_image("\x89PNG"s)) << "truncated signature";
  EXPECT_FALSE(sniff_image("garbage that an AES key mix-up produces"));
}

TEST(Sniff, FilesGetABestEffortType) {
  EXPECT_EQ(sniff_file("%PDF-1.4").mime, "application/pdf");
  EXPECT_EQ(sniff_file("PK\x03\x04...."s).extension, "zip");
  EXPECT_EQ(sniff_file("plain 中文 text\n").mime, "text/plain");
  EXPECT_EQ(sniff_file("\x01\x02\0\xFF"s).mime, "application/octet-stream");
  EXPECT_EQ(sniff_file("\xFF\xD8\xFF\xDB"s).mime, "image/jpeg");
}

class StoreFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("cwc-media-test-" + std::to_string(::getpid())) / "nested";
    fs::remove_all(dir.parent_path());
  }
  void TearDown() override { fs::remove_all(dir.parent_path()); }
  fs::path dir;
};

TEST_F(StoreFileTest, WritesAtomicallyWithPrivatePermissions) {
  auto path = store_file(dir, "s1-1.png", "bytes\0with nul"s);
  ASSERT_TRUE(path.ok()) << path.error().detail;
  EXPECT_EQ(*path, dir / "s1-1.png");
  std::ifstream in(*path, std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), {}), "bytes\0with nul"s);
  struct stat st {};
  ASSERT_EQ(::stat(path->c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_FALSE(fs::exists(dir / ".s1-1.png.part"));
}

TEST_F(StoreFileTest, UnwritableDirectoryIsAnErrorNamingThePath) {
  auto path = store_file("/proc/cwc-cannot-exist", "x.bin", "x");
  ASSERT_FALSE(path.ok());
  EXPECT_NE(path.error().detail.find("/proc/cwc-cannot-exist"), std::string::npos);
}

TEST_F(StoreFileTest, RetentionRemovesOnlyOldFiles) {
  ASSERT_TRUE(store_file(dir, "old.bin", "o").ok());
  ASSERT_TRUE(store_file(dir, "new.bin", "n").ok());
  fs::last_write_time(dir / "old.bin", fs::file_time_type::clock::now() - std::chrono::hours(48));
  EXPECT_EQ(remove_older_than(dir, std::chrono::hours(24)), 1u);
  EXPECT_FALSE(fs::exists(dir / "old.bin"));
  EXPECT_TRUE(fs::exists(dir / "new.bin"));
  EXPECT_EQ(remove_older_than(dir / "missing", std::chrono::hours(1)), 0u);
}

}  // namespace
}  // namespace cwc::media
