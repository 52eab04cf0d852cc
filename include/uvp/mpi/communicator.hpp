// SPDX-License-Identifier: Apache-2.0
// uvp::mpi::Environment (MPI_Init_thread / MPI_Finalize) and uvp::mpi::Communicator, the typed
// collectives the distributed trainers use. Needs MPI: link uvp::mpi (UVP_WITH_MPI); no other uvp
// header includes this one.
//
//   int main(int argc, char** argv) {
//     uvp::mpi::Environment env(argc, argv);   // MPI_THREAD_FUNNELED
//     uvp::mpi::Communicator comm;             // MPI_COMM_WORLD
//     std::vector<double> x{double(comm.rank())};
//     comm.allreduce_sum(uvp::Span<double>(x));  // x[0] = 0 + 1 + ... + size-1 on every rank
//   }
//
// Every collective must be called by every rank of the communicator, in the same order, from the
// thread that initialised MPI (FUNNELED: OpenMP threads compute, the main thread communicates).
// A failing MPI call raises uvp::backend_error naming the function, the MPI call and its error
// string; MPI reports failures instead of aborting only on communicators whose error handler is
// MPI_ERRORS_RETURN (Environment sets it on MPI_COMM_WORLD). Element types: float, double, the
// fixed-width integers (int, std::int64_t, ...) and char (summed as an 8-bit integer).
#pragma once

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"

namespace uvp::mpi {

namespace detail {

template <class>
inline constexpr bool unsupported_type = false;

/// The MPI datatype of T; integers by width and signedness (MPI defines no reduction on MPI_CHAR).
template <class T>
MPI_Datatype datatype() {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, float>) {
    return MPI_FLOAT;
  } else if constexpr (std::is_same_v<U, double>) {
    return MPI_DOUBLE;
  } else if constexpr (std::is_same_v<U, long double>) {
    return MPI_LONG_DOUBLE;
  } else if constexpr (std::is_integral_v<U> && !std::is_same_v<U, bool>) {
    constexpr bool s = std::is_signed_v<U>;
    if constexpr (sizeof(U) == 1) return s ? MPI_INT8_T : MPI_UINT8_T;
    else if constexpr (sizeof(U) == 2) return s ? MPI_INT16_T : MPI_UINT16_T;
    else if constexpr (sizeof(U) == 4) return s ? MPI_INT32_T : MPI_UINT32_T;
    else if constexpr (sizeof(U) == 8) return s ? MPI_INT64_T : MPI_UINT64_T;
    else static_assert(unsupported_type<U>, "uvp::mpi: integers wider than 64 bits have no MPI datatype");
  } else {
    static_assert(unsupported_type<U>,
                  "uvp::mpi: the element type must be float, double, long double, char or a fixed-width integer");
  }
}

/// Throws uvp::backend_error for a failed MPI call: "<where>: MPI_Allreduce failed (code 5: ...)".
inline void check_mpi(int code, const char* where, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING + 1] = {};
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) len = 0;
  text[len] = '\0';
  ::uvp::detail::raise<backend_error>(where, ": ", call, " failed (code ", code, len > 0 ? ": " : "", text, ")");
}

/// MPI counts are int: a longer buffer is an error where it cannot be split into pieces.
inline int to_count(const char* where, const char* what, index n) {
  if (n < 0 || n > index(INT_MAX))
    ::uvp::detail::raise<invalid_argument>(where, ": ", what, " has ", n, " elements, more than MPI's int count (",
                                           INT_MAX, ") allows");
  return int(n);
}

/// Pieces of at most INT_MAX elements, for the collectives that can work piecewise.
inline constexpr index max_piece = index(INT_MAX);

}  // namespace detail

/// RAII MPI initialisation: MPI_Init_thread(MPI_THREAD_FUNNELED) in the constructor and
/// MPI_Finalize in the destructor, both only if MPI was not already initialised (by the
/// application or another library); then this object does nothing. When it initialises MPI it
/// sets MPI_ERRORS_RETURN on MPI_COMM_WORLD, so failures become uvp::backend_error.
class Environment {
 public:
  Environment() : Environment(nullptr, nullptr) {}
  Environment(int& argc, char**& argv) : Environment(&argc, &argv) {}
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;
  ~Environment() {
    if (!owner_) return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }

  /// True when this object called MPI_Init_thread (and will call MPI_Finalize).
  bool initialized_here() const noexcept { return owner_; }
  /// The thread level MPI provides (MPI_THREAD_SINGLE ... MPI_THREAD_MULTIPLE).
  int thread_level() const noexcept { return provided_; }
  /// True between MPI_Init and MPI_Finalize, whoever called them.
  static bool initialized() noexcept {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    return init && !fin;
  }

 private:
  Environment(int* argc, char*** argv) {
    constexpr const char* where = "uvp::mpi::Environment";
    int init = 0, fin = 0;
    detail::check_mpi(MPI_Initialized(&init), where, "MPI_Initialized");
    detail::check_mpi(MPI_Finalized(&fin), where, "MPI_Finalized");
    if (fin) ::uvp::detail::raise<backend_error>(where, ": MPI was already finalized; it cannot be initialised again");
    if (init) {
      detail::check_mpi(MPI_Query_thread(&provided_), where, "MPI_Query_thread");
      return;
    }
    detail::check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided_), where, "MPI_Init_thread");
    owner_ = true;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  }

  bool owner_ = false;
  int provided_ = MPI_THREAD_SINGLE;
};

/// A non-owning view of an MPI communicator (default MPI_COMM_WORLD) with typed collectives over
/// uvp::Span. Cheap to copy; it keeps a small scratch buffer, so one Communicator object must not
/// be used by two threads at once (MPI_THREAD_FUNNELED allows one thread anyway).
class Communicator {
 public:
  explicit Communicator(MPI_Comm comm = MPI_COMM_WORLD) : comm_(comm) {
    constexpr const char* where = "uvp::mpi::Communicator";
    if (!Environment::initialized())
      ::uvp::detail::raise<backend_error>(where, ": MPI is not initialised (create a uvp::mpi::Environment first)");
    if (comm == MPI_COMM_NULL) ::uvp::detail::raise<invalid_argument>(where, ": comm is MPI_COMM_NULL");
    detail::check_mpi(MPI_Comm_rank(comm_, &rank_), where, "MPI_Comm_rank");
    detail::check_mpi(MPI_Comm_size(comm_, &size_), where, "MPI_Comm_size");
  }

  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  MPI_Comm get() const noexcept { return comm_; }

  /// inout = the element-wise sum of every rank's inout (MPI_SUM; the order of the additions is
  /// MPI's, so the last bits of a floating-point sum may depend on the number of ranks).
  template <class T>
  void allreduce_sum(Span<T> inout) const {
    allreduce(inout, MPI_SUM, "uvp::mpi::Communicator::allreduce_sum");
  }

  /// inout = ((x_0 + x_1) + x_2) + ... + x_{size-1} element-wise, added in rank order, so every
  /// rank gets the same bits and the result for given x_r never depends on MPI's algorithm. A
  /// chain (rank r adds its part and passes on) then a broadcast: size-1 sequential hops, for
  /// reproducibility, not speed.
  template <class T>
  void allreduce_sum_ordered(Span<T> inout) const {
    constexpr const char* where = "uvp::mpi::Communicator::allreduce_sum_ordered";
    static_assert(!std::is_const_v<T>, "uvp::mpi::Communicator::allreduce_sum_ordered: inout must be writable");
    const MPI_Datatype type = detail::datatype<T>();
    for (index off = 0; off < inout.size(); off += detail::max_piece) {
      const index len = std::min(detail::max_piece, inout.size() - off);
      T* x = inout.data() + off;
      const int count = int(len);
      if (rank_ > 0) {
        T* prefix = scratch<T>(len);
        detail::check_mpi(MPI_Recv(prefix, count, type, rank_ - 1, tag_ordered, comm_, MPI_STATUS_IGNORE), where, "MPI_Recv");
        for (index i = 0; i < len; ++i) x[i] = T(prefix[i] + x[i]);
      }
      if (rank_ + 1 < size_)
        detail::check_mpi(MPI_Send(x, count, type, rank_ + 1, tag_ordered, comm_), where, "MPI_Send");
      detail::check_mpi(MPI_Bcast(x, count, type, size_ - 1, comm_), where, "MPI_Bcast");
    }
  }

  /// inout = the element-wise maximum over the ranks.
  template <class T>
  void allreduce_max(Span<T> inout) const {
    allreduce(inout, MPI_MAX, "uvp::mpi::Communicator::allreduce_max");
  }

  /// data = root's data on every rank (every rank passes a span of the same size).
  template <class T>
  void broadcast(Span<T> data, int root = 0) const {
    constexpr const char* where = "uvp::mpi::Communicator::broadcast";
    check_root(where, root);
    for (index off = 0; off < data.size(); off += detail::max_piece) {
      const index len = std::min(detail::max_piece, data.size() - off);
      detail::check_mpi(MPI_Bcast(data.data() + off, int(len), detail::datatype<T>(), root, comm_), where, "MPI_Bcast");
    }
  }

  /// out = every rank's span (all of mine.size() elements) concatenated in rank order; out has
  /// size() * mine.size() elements.
  template <class T>
  void allgather(Span<const T> mine, Span<T> out) const {
    constexpr const char* where = "uvp::mpi::Communicator::allgather";
    if (out.size() != mine.size() * size_)
      ::uvp::detail::raise<shape_error>(where, ": out has ", out.size(), " elements, expected ", mine.size() * size_,
                                        " (size() * mine.size())");
    const int n = detail::to_count(where, "mine", mine.size());
    detail::to_count(where, "out", out.size());
    const MPI_Datatype type = detail::datatype<T>();
    detail::check_mpi(MPI_Allgather(mine.data(), n, type, out.data(), n, type, comm_), where, "MPI_Allgather");
  }

  /// A fold along the ranks, in rank order: rank 0 starts from acc as it passes it, rank r > 0
  /// receives rank r-1's acc (its own acc's contents are overwritten); each rank then calls
  /// add(acc) and hands acc to rank r+1; finally every rank gets the last rank's acc. The
  /// additions thus happen in one fixed order whatever the number of ranks (the reproducible
  /// mode's reduction), at the price of size()-1 sequential hops.
  template <class T, class F>
  void fold_in_rank_order(Span<T> acc, F&& add) const {
    constexpr const char* where = "uvp::mpi::Communicator::fold_in_rank_order";
    const int count = detail::to_count(where, "acc", acc.size());
    const MPI_Datatype type = detail::datatype<T>();
    if (rank_ > 0)
      detail::check_mpi(MPI_Recv(acc.data(), count, type, rank_ - 1, tag_fold, comm_, MPI_STATUS_IGNORE), where,
                        "MPI_Recv");
    add(acc);
    if (rank_ + 1 < size_)
      detail::check_mpi(MPI_Send(acc.data(), count, type, rank_ + 1, tag_fold, comm_), where, "MPI_Send");
    detail::check_mpi(MPI_Bcast(acc.data(), count, type, size_ - 1, comm_), where, "MPI_Bcast");
  }

  /// Every rank's span concatenated in rank order (the spans may differ in length).
  template <class T>
  std::vector<std::remove_const_t<T>> allgatherv(Span<T> mine) const {
    std::vector<std::remove_const_t<T>> out;
    std::vector<int> counts;
    allgatherv(mine, out, counts);
    return out;
  }

  /// allgatherv into out (resized; its capacity is reused, so a loop allocates only when a
  /// result outgrows every earlier one) and counts[r] = rank r's length.
  template <class T>
  void allgatherv(Span<T> mine, std::vector<std::remove_const_t<T>>& out, std::vector<int>& counts) const {
    constexpr const char* where = "uvp::mpi::Communicator::allgatherv";
    using U = std::remove_const_t<T>;
    int n = detail::to_count(where, "mine", mine.size());
    counts.resize(std::size_t(size_));
    detail::check_mpi(MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, comm_), where, "MPI_Allgather");
    int* displs = scratch<int>(size_);
    index total = 0;
    for (int r = 0; r < size_; ++r) {
      displs[r] = detail::to_count(where, "the gathered result", total);
      total += counts[std::size_t(r)];
    }
    detail::to_count(where, "the gathered result", total);
    out.resize(std::size_t(total));
    const MPI_Datatype type = detail::datatype<U>();
    detail::check_mpi(MPI_Allgatherv(mine.data(), n, type, out.data(), counts.data(), displs, type, comm_), where,
                      "MPI_Allgatherv");
  }

  /// Personalised exchange: send_counts[r] elements of send (consecutive, in rank order) go to
  /// rank r; returns what every rank sent to this one, in rank order, and (if recv_counts is not
  /// null) how many came from each rank.
  template <class T>
  std::vector<std::remove_const_t<T>> alltoallv(Span<T> send, const std::vector<int>& send_counts,
                                                std::vector<int>* recv_counts = nullptr) const {
    constexpr const char* where = "uvp::mpi::Communicator::alltoallv";
    using U = std::remove_const_t<T>;
    if (index(send_counts.size()) != index(size_))
      ::uvp::detail::raise<shape_error>(where, ": send_counts has ", send_counts.size(), " entries, expected ", size_,
                                        " (one per rank)");
    index sent = 0;
    for (int r = 0; r < size_; ++r) {
      if (send_counts[std::size_t(r)] < 0)
        ::uvp::detail::raise<invalid_argument>(where, ": send_counts[", r, "] is ", send_counts[std::size_t(r)],
                                               ", expected >= 0");
      sent += send_counts[std::size_t(r)];
    }
    if (sent != send.size())
      ::uvp::detail::raise<shape_error>(where, ": send has ", send.size(), " elements but send_counts add up to ", sent);
    detail::to_count(where, "send", sent);
    std::vector<int> rc(static_cast<std::size_t>(size_));
    detail::check_mpi(MPI_Alltoall(send_counts.data(), 1, MPI_INT, rc.data(), 1, MPI_INT, comm_), where, "MPI_Alltoall");
    std::vector<int> sd(static_cast<std::size_t>(size_)), rd(static_cast<std::size_t>(size_));
    index s = 0, total = 0;
    for (std::size_t r = 0; r < std::size_t(size_); ++r) {
      sd[r] = int(s), s += send_counts[r];
      rd[r] = detail::to_count(where, "the received result", total), total += rc[r];
    }
    detail::to_count(where, "the received result", total);
    std::vector<U> out(static_cast<std::size_t>(total));
    const MPI_Datatype type = detail::datatype<U>();
    detail::check_mpi(MPI_Alltoallv(send.data(), send_counts.data(), sd.data(), type, out.data(), rc.data(), rd.data(),
                                    type, comm_),
                      where, "MPI_Alltoallv");
    if (recv_counts) *recv_counts = std::move(rc);
    return out;
  }

  void barrier() const { detail::check_mpi(MPI_Barrier(comm_), "uvp::mpi::Communicator::barrier", "MPI_Barrier"); }

 private:
  static constexpr int tag_ordered = 7101;
  static constexpr int tag_fold = 7102;

  template <class T>
  void allreduce(Span<T> inout, MPI_Op op, const char* where) const {
    static_assert(!std::is_const_v<T>, "uvp::mpi::Communicator: the reduced span must be writable");
    for (index off = 0; off < inout.size(); off += detail::max_piece) {
      const index len = std::min(detail::max_piece, inout.size() - off);
      detail::check_mpi(MPI_Allreduce(MPI_IN_PLACE, inout.data() + off, int(len), detail::datatype<T>(), op, comm_),
                        where, "MPI_Allreduce");
    }
  }

  void check_root(const char* where, int root) const {
    if (root < 0 || root >= size_)
      ::uvp::detail::raise<out_of_range_error>(where, ": root ", root, " out of range [0, ", size_, ")");
  }

  /// n elements of scratch memory, reused between calls (grows, never shrinks).
  template <class T>
  T* scratch(index n) const {
    const std::size_t bytes = std::size_t(n) * sizeof(T);
    const std::size_t words = (bytes + sizeof(std::max_align_t) - 1) / sizeof(std::max_align_t);
    if (scratch_.size() < words) scratch_.resize(words);
    return reinterpret_cast<T*>(scratch_.data());
  }

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  mutable std::vector<std::max_align_t> scratch_;
};

/// What the ranks that did not fail raise when another rank's part of a collective step threw:
/// "<function>: rank 1 failed: <its message>". rank() is the (lowest) rank that failed.
class remote_error : public runtime_error {
 public:
  remote_error(const std::string& msg, int failed_rank) : runtime_error(msg, errc::backend_error), rank_(failed_rank) {}
  int rank() const noexcept { return rank_; }

 private:
  int rank_;
};

/// Collective: every rank passes the exception it caught in its part of a step (or null). When
/// none failed it returns (one allreduce of one int). Otherwise every rank throws, so none is
/// left waiting in the next collective: a rank that failed rethrows its own exception, the
/// others raise remote_error naming the lowest failed rank and its message.
inline void throw_if_any_failed(const Communicator& comm, const char* where, const std::exception_ptr& mine) {
  int failed = mine ? 1 : 0;
  comm.allreduce_max(Span<int>(&failed, 1));
  if (!failed) return;
  std::string text;
  if (mine) {
    try {
      std::rethrow_exception(mine);
    } catch (const std::exception& e) {
      text = std::string("!") + e.what();
    } catch (...) {
      text = "!an exception that is not a std::exception";
    }
  }
  std::vector<char> all;
  std::vector<int> counts;
  comm.allgatherv(Span<const char>(text.data(), index(text.size())), all, counts);
  if (mine) std::rethrow_exception(mine);
  index at = 0;
  for (int r = 0; r < comm.size(); ++r) {
    const int n = counts[std::size_t(r)];
    if (n > 0)
      throw remote_error(::uvp::detail::str(where, ": rank ", r, " failed: ", std::string(all.data() + at + 1, std::size_t(n - 1))), r);
    at += n;
  }
  throw remote_error(::uvp::detail::str(where, ": another rank failed"), -1);
}

}  // namespace uvp::mpi
