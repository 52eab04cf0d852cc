// SPDX-License-Identifier: Apache-2.0
// write_file_atomic under concurrency and failure: readers only ever see a complete version,
// failed saves keep the old file and say why, no temporaries remain.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/temp_dir.hpp"
#include "support/test_support.hpp"
#include "uvp/io/file.hpp"

namespace fs = std::filesystem;

namespace {

using uvp_test::TempDir;

// Version v: sizes differ (so a torn or truncated read cannot pass for another version), every
// byte depends on v and its position, and the file ends with a marker.
std::string version_text(int v) {
  std::string s(std::size_t(2000 + 7919 * v), '\0');
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>('a' + (i * 31 + std::size_t(v) * 7) % 26);
  return s + "<end of version " + std::to_string(v) + ">";
}

constexpr int versions = 8;

// -1 when `text` is none of the versions.
int which_version(const std::string& text, const std::vector<std::string>& all) {
  for (int v = 0; v < versions; ++v)
    if (text == all[std::size_t(v)]) return v;
  return -1;
}

}  // namespace

TEST_CASE("write_file_atomic: concurrent writers (processes and threads), readers see whole versions only") {
  TempDir dir("atomic_concurrent");
  const std::string path = (dir.path / "model.bin").string();
  std::vector<std::string> all;
  for (int v = 0; v < versions; ++v) all.push_back(version_text(v));
  uvp::write_file_atomic(path, all[0]);

  constexpr int saves_per_thread = 15;
  // Writers in each process: 2 threads saving versions in a loop; a failure is the exit status.
  auto run_writers = [&](int who) -> int {
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < saves_per_thread; ++i) {
          try {
            uvp::write_file_atomic(path, all[std::size_t((who * 3 + t * 5 + i) % versions)]);
          } catch (const uvp::error&) {
            ++failures;
          }
        }
      });
    for (auto& th : threads) th.join();
    return failures.load();
  };

  // Fork the writer processes before this process starts any thread.
  std::vector<pid_t> children;
  for (int c = 0; c < 3; ++c) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) ::_exit(run_writers(c + 1) == 0 ? 0 : 1);
    children.push_back(pid);
  }

  std::atomic<bool> writers_done{false};
  std::atomic<int> reads{0}, torn{0}, read_errors{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r)
    readers.emplace_back([&] {
      const auto stop = std::chrono::steady_clock::now() + std::chrono::seconds(5);  // a hang guard only
      while (!writers_done.load() && std::chrono::steady_clock::now() < stop) {
        try {
          if (which_version(uvp::detail::read_whole_file("reader", path), all) < 0) ++torn;
        } catch (const uvp::error&) {
          ++read_errors;
        }
        ++reads;
      }
    });
  const int own_failures = run_writers(0);
  int child_failures = 0;
  for (pid_t pid : children) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    child_failures += (WIFEXITED(status) && WEXITSTATUS(status) == 0) ? 0 : 1;
  }
  writers_done = true;
  for (auto& th : readers) th.join();

  CHECK(own_failures == 0);
  CHECK(child_failures == 0);
  CHECK(reads.load() > 0);
  CHECK(torn.load() == 0);
  CHECK(read_errors.load() == 0);
  CHECK(which_version(uvp::detail::read_whole_file("final", path), all) >= 0);
  CHECK(dir.entries() == std::vector<std::string>{"model.bin"});  // no temporary left behind
}

TEST_CASE("write_file_atomic: a failed save keeps the old file and names the path") {
  TempDir dir("atomic_fail");
  const std::string path = (dir.path / "keep.txt").string();
  uvp::write_file_atomic(path, "old content\n");

  SUBCASE("the write fails (file size limit): old file intact, temporary removed") {
    // In a child, so the limit does not touch this process: writes past 4 KiB fail with EFBIG.
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      std::signal(SIGXFSZ, SIG_IGN);
      struct rlimit lim {};
      lim.rlim_cur = lim.rlim_max = 4096;
      if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(3);
      try {
        uvp::write_file_atomic(path, std::string(100000, 'x'), "my_saver");
      } catch (const uvp::io_error& e) {
        const std::string msg = e.what();
        ::_exit(msg.find("my_saver: cannot write 100000 bytes to '") == 0 ? 0 : 2);
      } catch (...) {
        ::_exit(4);
      }
      ::_exit(1);  // no exception
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(uvp::detail::read_whole_file("check", path) == "old content\n");
    CHECK(dir.entries() == std::vector<std::string>{"keep.txt"});
  }

  SUBCASE("the path is a directory: it survives, no temporary is left") {
    fs::create_directories(dir.path / "adir");
    const std::string adir = (dir.path / "adir").string();
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::write_file_atomic(adir, "x", "my_tool"), uvp::io_error,
                                 "' to '" + adir + "': Is a directory");
    CHECK(fs::is_directory(dir.path / "adir"));
    CHECK(dir.entries().size() == 2);  // keep.txt and adir
  }

  SUBCASE("the directory is not writable") {
    if (::geteuid() == 0) {
      MESSAGE("skipped: running as root, permissions do not stop writes");
      return;
    }
    fs::permissions(dir.path, fs::perms::owner_read | fs::perms::owner_exec);
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::write_file_atomic(path, "new"), uvp::io_error,
                                 "uvp::write_file_atomic: cannot create a temporary file next to '" + path + "'");
    fs::permissions(dir.path, fs::perms::owner_all);
    CHECK(uvp::detail::read_whole_file("check", path) == "old content\n");
    CHECK(dir.entries() == std::vector<std::string>{"keep.txt"});
  }

  SUBCASE("the directory does not exist") {
    const std::string bad = (dir.path / "missing" / "x.csv").string();
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::write_file_atomic(bad, "x"), uvp::io_error,
                                 "uvp::write_file_atomic: cannot create a temporary file next to '" + bad +
                                     "' (");
  }
}
