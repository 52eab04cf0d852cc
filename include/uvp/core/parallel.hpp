// SPDX-License-Identifier: Apache-2.0
// Thread-count control that works with and without OpenMP.
#pragma once

#include <algorithm>

#if defined(_OPENMP)
#include <omp.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>
#endif

#include "uvp/core/check.hpp"
#include "uvp/core/config.hpp"

namespace uvp {

/// True when uvp was compiled with OpenMP (the UVP_WITH_OPENMP CMake option).
inline constexpr bool has_openmp =
#if defined(_OPENMP)
    true;
#else
    false;
#endif

/// Threads uvp's parallel loops use (1 without OpenMP).
inline int num_threads() noexcept {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Sets the threads uvp's parallel loops use; without OpenMP only 1 is accepted.
inline void set_num_threads(int n) {
  detail::check_positive("uvp::set_num_threads", "n", n);
#if defined(_OPENMP)
  omp_set_num_threads(n);
#else
  if (n != 1)
    detail::raise<invalid_argument>("uvp::set_num_threads: n = ", n,
                                    " but uvp was built without OpenMP (only 1 thread)");
#endif
}

/// Restores the previous thread count when it goes out of scope.
class ThreadCountGuard {
 public:
  explicit ThreadCountGuard(int n) : previous_(num_threads()) { set_num_threads(n); }
  ~ThreadCountGuard() {
#if defined(_OPENMP)
    omp_set_num_threads(previous_);
#endif
  }
  ThreadCountGuard(const ThreadCountGuard&) = delete;
  ThreadCountGuard& operator=(const ThreadCountGuard&) = delete;

 private:
  int previous_;
};

namespace detail {

/// The slot parallel_worker() reports for this thread: 0 but in the pool's threads.
inline int& parallel_worker_slot() noexcept {
  thread_local int slot = 0;
  return slot;
}

#if defined(_OPENMP)
/// The threads behind parallel_chunks: workers that sleep on a condition variable between
/// loops and take chunks from a shared counter. OpenMP's own team is not used for these loops
/// because its idle threads busy-wait (libgomp spins ~300,000 rounds at every barrier and
/// between regions unless the user sets OMP_WAIT_POLICY=passive): next to one other CPU-bound
/// process on two cores, uvp's 2-thread LSTM training step took 3x its 1-thread time, its
/// process CPU time 3x too (docs/performance.md, "Contention"). A waiting thread here yields
/// briefly, then blocks, so a competing program keeps its core; and a thread that was
/// descheduled holds up at most the one chunk it is running, since the others are taken by
/// whichever thread is free.
class ChunkPool {
 public:
  using Task = void (*)(void* state, index chunk);

  static ChunkPool& instance() {
    static ChunkPool pool;
    return pool;
  }

  ChunkPool(const ChunkPool&) = delete;
  ChunkPool& operator=(const ChunkPool&) = delete;
  ~ChunkPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  /// Runs task(state, k) for every k in [0, chunks) on the calling thread and up to helpers
  /// workers. False (nothing run) when another thread's loop holds the pool: the caller then
  /// runs the chunks itself. Rethrows the first exception a chunk threw (the remaining chunks
  /// are skipped).
  bool run(index chunks, int helpers, Task task, void* state) {
    bool idle = false;
    if (!busy_.compare_exchange_strong(idle, true, std::memory_order_acquire)) return false;
    struct Release {
      std::atomic<bool>& busy;
      ~Release() { busy.store(false, std::memory_order_release); }
    } release{busy_};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      while (static_cast<int>(workers_.size()) < helpers) {
        const int id = static_cast<int>(workers_.size());
        workers_.emplace_back([this, id] { work(id); });
      }
      task_ = task;
      state_ = state;
      chunks_ = chunks;
      helpers_ = helpers;
      next_.store(0, std::memory_order_relaxed);
      error_ = nullptr;
      open_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    take_chunks();
    std::unique_lock<std::mutex> lock(mutex_);
    open_ = false;  // a worker that wakes from now on does not join
    done_.wait(lock, [this] { return active_ == 0; });
    if (error_) std::rethrow_exception(error_);
    return true;
  }

 private:
  ChunkPool() = default;

  void take_chunks() noexcept {
    for (;;) {
      const index k = next_.fetch_add(1, std::memory_order_relaxed);
      if (k >= chunks_) return;
      try {
        task_(state_, k);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
        next_.store(chunks_, std::memory_order_relaxed);
      }
    }
  }

  void work(int id) {
    omp_set_num_threads(1);  // what a chunk calls runs on this thread (see parallel_chunks)
    parallel_worker_slot() = id + 1;
    std::uint64_t seen = 0;
    for (;;) {
      // A loop often follows the last within microseconds: look a few times before sleeping.
      for (int i = 0; i < 64 && generation_.load(std::memory_order_acquire) == seen; ++i) std::this_thread::yield();
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_relaxed) != seen; });
      if (stop_) return;
      seen = generation_.load(std::memory_order_relaxed);
      if (!open_ || id >= helpers_) continue;
      ++active_;
      lock.unlock();
      take_chunks();
      lock.lock();
      if (--active_ == 0) done_.notify_one();
    }
  }

  std::atomic<bool> busy_{false};  // one loop at a time (a flag, not a mutex: a chunk may call in)
  std::mutex mutex_;      // guards everything below but next_ and generation_'s reads
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<index> next_{0};
  Task task_ = nullptr;
  void* state_ = nullptr;
  index chunks_ = 0;
  int helpers_ = 0, active_ = 0;
  bool open_ = false, stop_ = false;
  std::exception_ptr error_;
};
#endif

}  // namespace detail

/// Runs f(k) for every k in [0, chunks), spread over up to num_threads() threads (the caller is
/// one of them): each thread takes the next chunk as it becomes free, so a thread that another
/// program delays does not hold up the rest. Which thread runs a chunk, and how many threads
/// there are, must not change the result: write each chunk's result to its own place and
/// combine them in chunk order afterwards. The chunks are the parallelism: while they run,
/// OpenMP's thread count is 1 on every thread that runs them, so Eigen's products and uvp's own
/// loops inside f do not fork (and give the same bits whatever num_threads() is). Runs on the
/// calling thread alone when chunks or num_threads() is 1, inside an OpenMP parallel region, and
/// while another thread's parallel_chunks is running. Allocates nothing once the pool's threads
/// exist. An exception from f propagates to the caller once the chunks in flight have finished.
template <class F>
void parallel_chunks(index chunks, F&& f);

/// Inside a chunk of parallel_chunks: the index, in [0, num_threads()), of the thread running it
/// (the caller is 0), for scratch kept per thread; 0 outside. Never use it to decide what a chunk
/// computes.
inline int parallel_worker() noexcept { return detail::parallel_worker_slot(); }

template <class F>
void parallel_chunks(index chunks, F&& f) {
#if defined(_OPENMP)
  if (chunks > 0 && !omp_in_parallel()) {
    const int threads = omp_get_max_threads();
    struct OneThread {  // restores the caller's thread count, also when f throws
      int previous;
      ~OneThread() {
        if (previous > 1) omp_set_num_threads(previous);
      }
    } scope{threads};
    if (threads > 1) omp_set_num_threads(1);
    const int helpers = static_cast<int>(std::min<index>(threads, chunks)) - 1;
    using Fn = std::remove_reference_t<F>;
    const auto task = [](void* state, index k) { (*static_cast<Fn*>(state))(k); };
    if (helpers > 0 &&
        detail::ChunkPool::instance().run(chunks, helpers, task, const_cast<void*>(static_cast<const void*>(&f))))
      return;
    for (index k = 0; k < chunks; ++k) f(k);
    return;
  }
#endif
  for (index k = 0; k < chunks; ++k) f(k);
}

}  // namespace uvp
