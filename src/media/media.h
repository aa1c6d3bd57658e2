// Inbound media (images and files a WeCom user sends): what the decrypted bytes are, and where
// they are stored for the agent. The download itself is the host's (callback_fetch); the
// decryption is crypto::MessageCrypto::decrypt_media.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace cwc::media {

struct FileType {
  std::string mime;       // "image/png"
  std::string extension;  // "png" (no dot)
};

// Recognises the image formats WeCom delivers by their magic bytes (JPEG, PNG, GIF, BMP, WEBP).
std::optional<FileType> sniff_image(std::string_view bytes);

// Best-effort type of any file: images, PDF, ZIP-based office files, common audio/video, valid
// UTF-8 text; "application/octet-stream" otherwise.
FileType sniff_file(std::string_view bytes);

// Where media is stored when mediaDir is not set: $TMPDIR/clawdbot-wecom-media (or /tmp/...).
std::filesystem::path default_media_dir();

// Writes `bytes` to `dir`/`name` atomically (temporary file + rename), creating `dir` with mode
// 0700; the file gets mode 0600. Errors are Internal with the path and the OS reason.
Result<std::filesystem::path> store_file(const std::filesystem::path& dir, std::string_view name,
                                         std::string_view bytes);

// Removes regular files in `dir` whose last write is older than `max_age`. Returns how many.
std::size_t remove_older_than(const std::filesystem::path& dir, std::chrono::seconds max_age);

}  // namespace cwc::media
