// SPDX-License-Identifier: Apache-2.0
// Whole-file reads and atomic writes: every file uvp reads or writes goes through here, so the
// rules (regular files only, atomic replacement, safe messages) hold in one place.
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <new>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#if defined(_WIN32)
#include <filesystem>
#else
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "uvp/core/error.hpp"

namespace uvp {
namespace detail {

/// `text` made safe for an error message: printable ASCII and well-formed UTF-8 are kept, a
/// backslash becomes `\\`, any other byte (NUL, control characters, stray high bytes) `\xHH`, and
/// a text longer than `max_bytes` is cut there with "... (N bytes)" appended. Used for every
/// name or field that a loader copies from a file into a message.
inline std::string printable(std::string_view text, std::size_t max_bytes = 120) {
  static const char hex[] = "0123456789abcdef";
  std::string out;
  const std::size_t n = text.size() < max_bytes ? text.size() : max_bytes;
  out.reserve(n + 16);
  auto escape = [&](unsigned char b) {
    out += "\\x";
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 0xFu]);
  };
  for (std::size_t i = 0; i < n;) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b >= 0x20 && b < 0x7F) {
      if (b == '\\') out.push_back('\\');
      out.push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    // A UTF-8 sequence of 2 to 4 bytes (no overlong forms, no surrogates, <= U+10FFFF), whole
    // within the kept part.
    std::size_t len = b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
    if (len && i + len <= n) {
      const auto b1 = static_cast<unsigned char>(text[i + 1]);
      const unsigned char lo = b == 0xE0 ? 0xA0 : b == 0xF0 ? 0x90 : 0x80;
      const unsigned char hi = b == 0xED ? 0x9F : b == 0xF4 ? 0x8F : 0xBF;
      bool ok = b1 >= lo && b1 <= hi;
      for (std::size_t k = 2; ok && k < len; ++k) ok = (static_cast<unsigned char>(text[i + k]) & 0xC0u) == 0x80u;
      if (ok) {
        out.append(text.data() + i, len);
        i += len;
        continue;
      }
    }
    escape(b);
    ++i;
  }
  if (n < text.size()) out += str("... (", text.size(), " bytes)");
  return out;
}

/// A path as error messages show it: quoted, escaped, and long paths cut (see printable).
inline std::string quoted_path(std::string_view path) { return "'" + printable(path, 1024) + "'"; }

inline std::string errno_text(int e) { return std::generic_category().message(e); }

#if !defined(_WIN32)
/// Closes a POSIX file descriptor when it goes out of scope (error paths included).
struct FdCloser {
  int fd = -1;
  FdCloser() = default;
  explicit FdCloser(int f) noexcept : fd(f) {}
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
  int release() noexcept {
    const int f = fd;
    fd = -1;
    return f;
  }
};

inline const char* file_kind(mode_t mode) noexcept {
  return S_ISDIR(mode) ? "a directory" : S_ISFIFO(mode) ? "a FIFO" : S_ISCHR(mode) ? "a character device"
         : S_ISBLK(mode) ? "a block device" : S_ISSOCK(mode) ? "a socket" : "not a regular file";
}
#endif

/// Raises uvp::io_error "where: ..." naming the path unless `path` names an existing regular file
/// (a symbolic link to one is followed): a directory, FIFO, character or block device or socket is
/// refused without being opened, so a FIFO cannot block the caller.
inline void check_input_file(const char* where, const std::string& path) {
#if defined(_WIN32)
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st))
    raise<io_error>(where, ": cannot open ", quoted_path(path), ": No such file or directory");
  if (!std::filesystem::is_regular_file(st))
    raise<io_error>(where, ": ", quoted_path(path), " is ",
                    std::filesystem::is_directory(st) ? "a directory" : "not a regular file",
                    ", expected a regular file");
#else
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    raise<io_error>(where, ": cannot open ", quoted_path(path), ": ", errno_text(errno));
  if (!S_ISREG(st.st_mode))
    raise<io_error>(where, ": ", quoted_path(path), " is ", file_kind(st.st_mode), ", expected a regular file");
#endif
}

/// `path` opened as a stream, after check_input_file: for a reader that streams a file instead of
/// holding it whole (prefer read_whole_file otherwise; it also re-checks the opened file, so a path
/// swapped between the check and the open is caught there, not here).
inline std::ifstream open_input_stream(const char* where, const std::string& path,
                                       std::ios::openmode mode = std::ios::in) {
  check_input_file(where, path);
  std::ifstream in(path, mode | std::ios::in);
  if (!in) raise<io_error>(where, ": cannot open ", quoted_path(path), ": ", errno_text(errno));
  return in;
}

/// The whole content of the regular file `path`. Raises uvp::io_error "where: ..." naming the
/// path when it does not exist, is not a regular file (a directory, FIFO, device or socket: these
/// are refused before anything is read, so a FIFO cannot block the caller), cannot be read, is
/// larger than `max_bytes`, or does not fit in memory. A file that grows while it is read is read
/// to its end.
inline std::string read_whole_file(const char* where, const std::string& path,
                                   std::uint64_t max_bytes = std::numeric_limits<std::uint64_t>::max()) {
  std::string text;
  auto too_large = [&](std::uint64_t bytes) {
    raise<io_error>(where, ": ", quoted_path(path), " has ", bytes, " bytes, more than the limit of ", max_bytes,
                    " bytes for this reader");
  };
  auto grow = [&](std::uint64_t bytes) {  // capacity for `bytes`, or an io_error instead of bad_alloc
    try {
      if (bytes > text.max_size()) throw std::bad_alloc();
      text.reserve(static_cast<std::size_t>(bytes));
    } catch (const std::bad_alloc&) {
      raise<io_error>(where, ": ", quoted_path(path), " has ", bytes,
                      " bytes or more, more than this process can hold in memory");
    }
  };
#if defined(_WIN32)
  std::ifstream in = open_input_stream(where, path, std::ios::binary);
  std::error_code ec;
  const std::uint64_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > max_bytes) too_large(size);
  if (!ec) grow(size);
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    const std::uint64_t total = text.size() + std::size_t(in.gcount());
    if (total > max_bytes) too_large(total);
    text.append(buf, std::size_t(in.gcount()));
  }
  if (in.bad()) raise<io_error>(where, ": cannot read ", quoted_path(path));
#else
  // stat first, so a FIFO or a device is never even opened; then fstat the descriptor, so a path
  // swapped for something else in between is still caught.
  check_input_file(where, path);
  struct stat st {};
  int fd;
  do fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) raise<io_error>(where, ": cannot open ", quoted_path(path), ": ", errno_text(errno));
  const FdCloser closer(fd);
  if (::fstat(fd, &st) != 0) raise<io_error>(where, ": cannot read ", quoted_path(path), ": ", errno_text(errno));
  if (!S_ISREG(st.st_mode))
    raise<io_error>(where, ": ", quoted_path(path), " is ", file_kind(st.st_mode), ", expected a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) too_large(static_cast<std::uint64_t>(st.st_size));
  grow(static_cast<std::uint64_t>(st.st_size) + 1);  // + 1: the read that finds the end
  for (;;) {
    if (text.size() == text.capacity()) {  // the file grew (or reports no size, as /proc files)
      const std::uint64_t size = text.size();
      grow(size + (size > (1u << 16) ? size : (1u << 16)));
    }
    const std::size_t at = text.size();
    const std::size_t room = text.capacity() - at;
    text.resize(text.capacity());  // (a string cannot grow uninitialised; fine for a one-off read)
    const ssize_t got = ::read(fd, &text[at], room);
    if (got < 0) {
      text.resize(at);
      if (errno == EINTR) continue;
      raise<io_error>(where, ": cannot read ", quoted_path(path), ": ", errno_text(errno));
    }
    text.resize(at + static_cast<std::size_t>(got));
    if (got == 0) break;
    if (text.size() > max_bytes) too_large(text.size());
  }
#endif
  return text;
}

/// A name for a temporary file next to `path` that no other thread or process picks at the same
/// time: process id, thread, a per-process counter and random bits.
inline std::string unique_temp_path(const std::string& path) {
  static std::atomic<std::uint64_t> counter{0};
  thread_local std::uint64_t random_bits = [] {
    std::uint64_t r = 0;
    try {
      std::random_device rd;
      r = (std::uint64_t(rd()) << 32) ^ rd();
    } catch (...) {  // no entropy source: the clock and an address still differ between callers
    }
    int local = 0;
    return r ^ std::uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) ^
           (std::uint64_t(reinterpret_cast<std::uintptr_t>(&local)) << 16);
  }();
  random_bits = random_bits * 6364136223846793005ULL + 1442695040888963407ULL;  // one LCG step per name
  const std::size_t slash = path.find_last_of('/');
  const std::size_t base = slash == std::string::npos ? 0 : slash + 1;
  // Hidden, and the base name cut so that the suffix cannot push it past NAME_MAX.
  std::string tmp = path.substr(0, base) + "." + path.substr(base, 100);
#if defined(_WIN32)
  const unsigned long pid = 0;
#else
  const unsigned long pid = static_cast<unsigned long>(::getpid());
#endif
  tmp += str(".tmp-", pid, "-", std::hash<std::thread::id>()(std::this_thread::get_id()) % 1000000007u, "-",
             counter.fetch_add(1, std::memory_order_relaxed), "-", random_bits >> 16);
  return tmp;
}

}  // namespace detail

/// Writes `content` to `path` atomically and durably. The bytes go to a uniquely named temporary
/// file in the same directory (".<name>.tmp-<pid>-<thread>-<counter>-<random>"), which is flushed
/// to disk (fsync), closed, and renamed over `path`; then the directory is synced, so the rename
/// survives a crash. Readers of `path` therefore see the old file or the complete new one, never a
/// partial one, whatever number of threads and processes save to the same path at once (the last
/// rename wins). On any failure the temporary file is removed, `path` is left as it was, and
/// uvp::io_error is thrown naming `where`, the path and the system's reason. The directory must
/// exist.
inline void write_file_atomic(const std::string& path, const std::string& content,
                              const char* where = "uvp::write_file_atomic") {
#if defined(_WIN32)
  const std::string tmp = detail::unique_temp_path(path);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) detail::raise<io_error>(where, ": cannot create a temporary file ", detail::quoted_path(tmp));
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      detail::raise<io_error>(where, ": cannot write ", detail::quoted_path(tmp));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);  // replaces an existing file
  if (ec) {
    std::remove(tmp.c_str());
    detail::raise<io_error>(where, ": cannot rename ", detail::quoted_path(tmp), " to ", detail::quoted_path(path),
                            ": ", ec.message());
  }
#else
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    tmp = detail::unique_temp_path(path);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0666);
    if (fd < 0 && !((errno == EEXIST || errno == EINTR) && attempt < 100))
      detail::raise<io_error>(where, ": cannot create a temporary file next to ", detail::quoted_path(path), " (",
                              detail::quoted_path(tmp), "): ", detail::errno_text(errno));
  }
  auto fail = [&](int err, const auto&... what) {
    ::unlink(tmp.c_str());
    detail::raise<io_error>(where, ": ", what..., ": ", detail::errno_text(err));
  };
  {
    detail::FdCloser closer(fd);
    for (std::size_t done = 0; done < content.size();) {
      const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail(n < 0 ? errno : EIO, "cannot write ", content.size(), " bytes to ", detail::quoted_path(tmp));
      done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 && errno != EINVAL)  // EINVAL: a file system without fsync
      fail(errno, "cannot flush ", detail::quoted_path(tmp), " to disk");
    // close reports delayed write errors (NFS); EINTR still closed the descriptor on Linux.
    if (::close(closer.release()) != 0 && errno != EINTR) fail(errno, "cannot close ", detail::quoted_path(tmp));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    fail(errno, "cannot rename ", detail::quoted_path(tmp), " to ", detail::quoted_path(path));
  // Make the rename itself durable. The new file is in place already, so a directory that cannot
  // be opened (no read permission) only loses durability, not correctness, and is not an error.
  const std::size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    const detail::FdCloser dcloser(dfd);
    if (::fsync(dfd) != 0 && errno != EINVAL && errno != EBADF && errno != EROFS)
      detail::raise<io_error>(where, ": wrote ", detail::quoted_path(path), " but cannot sync its directory: ",
                              detail::errno_text(errno));
  }
#endif
}

}  // namespace uvp
