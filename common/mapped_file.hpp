#pragma once
/// \file
/// \brief A read-only memory-mapped file: the loaders read weights where the kernel put them.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace lab {

/// Maps a whole file read-only for as long as the object lives. Movable, not copyable.
/// An empty file maps to an empty span (mmap cannot map zero bytes).
class MappedFile {
 public:
  /// Maps `path`; throws lab::Error naming the path and the system's reason when it cannot.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  /// The file's bytes.
  std::span<const std::uint8_t> bytes() const { return {data_, size_}; }
  std::size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void release() noexcept;
  std::string path_;
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

/// Writes `bytes` to `path` (replacing it); throws lab::Error when it cannot.
void write_file(const std::string& path, std::span<const std::uint8_t> bytes);

}  // namespace lab
