#include "media/media.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/text_checks.h"

namespace cwc::media {
namespace {

namespace fs = std::filesystem;

bool starts_with(std::string_view bytes, std::string_view magic) {
  return bytes.size() >= magic.size() && bytes.substr(0, magic.size()) == magic;
}

}  // namespace

std::optional<FileType> sniff_image(std::string_view bytes) {
  using namespace std::string_view_literals;
  if (starts_with(bytes, "\xFF\xD8\xFF"sv)) return FileType{"image/jpeg", "jpg"};
  if (starts_with(bytes, "\x89PNG\r\n\x1A\n"sv)) return FileType{"image/png", "png"};
  if (starts_with(bytes, "GIF87a"sv) || starts_with(bytes, "GIF89a"sv)) return FileType{"image/gif", "gif"};
  if (starts_with(bytes, "BM"sv) && bytes.size() >= 26) return FileType{"image/bmp", "bmp"};
  if (bytes.size() >= 12 && starts_with(bytes, "RIFF"sv) && bytes.substr(8, 4) == "WEBP"sv) {
    return FileType{"image/webp", "webp"};
  }
  return std::nullopt;
}

FileType sniff_file(std::string_view bytes) {
  using namespace std::string_view_literals;
  if (auto image = sniff_image(bytes)) return *image;
  if (starts_with(bytes, "%PDF-"sv)) return {"application/pdf", "pdf"};
  if (starts_with(bytes, "PK\x03\x04"sv)) return {"application/zip", "zip"};  // also docx/xlsx/pptx
  if (starts_with(bytes, "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"sv)) return {"application/x-ole-storage", "doc"};
  if (starts_with(bytes, "ID3"sv) || starts_with(bytes, "\xFF\xFB"sv)) return {"audio/mpeg", "mp3"};
  if (bytes.size() >= 12 && bytes.substr(4, 4) == "ftyp"sv) return {"video/mp4", "mp4"};
  if (starts_with(bytes, "#!AMR"sv)) return {"audio/amr", "amr"};
  if (starts_with(bytes, "\x1F\x8B"sv)) return {"application/gzip", "gz"};
  if (starts_with(bytes, "7z\xBC\xAF\x27\x1C"sv)) return {"application/x-7z-compressed", "7z"};
  if (!bytes.empty() && checks::invalid_utf8_offset(bytes) == std::string_view::npos &&
      bytes.find('\0') == std::string_view::npos) {
    return {"text/plain", "txt"};
  }
  return {"application/octet-stream", "bin"};
}

fs::path default_media_dir() {
  const char* tmp = std::getenv("TMPDIR");
  return fs::path(tmp && *tmp ? tmp : "/tmp") / "clawdbot-wecom-media";
}

Result<fs::path> store_file(const fs::path& dir, std::string_view name, std::string_view bytes) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(ErrorKind::Internal, "cannot create media directory " + dir.string() + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);  // media is private to the gateway's user
  const fs::path final_path = dir / std::string(name);
  const fs::path tmp_path = dir / ("." + std::string(name) + ".part");
  const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(ErrorKind::Internal, "cannot create " + tmp_path.string() + ": " + std::strerror(errno));
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string reason = std::strerror(errno);
      ::close(fd);
      fs::remove(tmp_path, ec);
      return make_error(ErrorKind::Internal, "cannot write " + tmp_path.string() + ": " + reason);
    }
    written += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) {
    const std::string reason = std::strerror(errno);
    fs::remove(tmp_path, ec);
    return make_error(ErrorKind::Internal, "cannot write " + tmp_path.string() + ": " + reason);
  }
  fs::rename(tmp_path, final_path, ec);
  if (ec) {
    fs::remove(tmp_path, ec);
    return make_error(ErrorKind::Internal, "cannot move media into " + final_path.string() + ": " + ec.message());
  }
  return final_path;
}

std::size_t remove_older_than(const fs::path& dir, std::chrono::seconds max_age) {
  std::error_code ec;
  const auto cutoff = fs::file_time_type::clock::now() - max_age;
  std::size_t removed = 0;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code entry_ec;
    if (!it->is_regular_file(entry_ec)) continue;
    const auto written = it->last_write_time(entry_ec);
    if (entry_ec || written >= cutoff) continue;
    if (fs::remove(it->path(), entry_ec)) ++removed;
  }
  return removed;
}

}  // namespace cwc::media
