// SPDX-License-Identifier: Apache-2.0
// A consumer of uvp's `mpi` component (find_package(uvp CONFIG REQUIRED COMPONENTS mpi), target
// uvp::mpi), run under mpiexec: `mpi_main <expected ranks>`. Every rank checks its rank, the
// number of ranks and a sum over the ranks; any failure gives a non-zero exit on every rank.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <vector>
#include <uvp/mpi/communicator.hpp>
#include <uvp/version.hpp>  // not uvp/uvp.hpp: main.cpp covers that, and this stays quick to compile

// uvp::mpi's usage requirement, as in uvp's own build.
#if !defined(UVP_WITH_MPI)
#error "uvp::mpi did not define UVP_WITH_MPI"
#endif

int main(int argc, char** argv) {
  try {
    uvp::mpi::Environment env(argc, argv);
    const uvp::mpi::Communicator comm;
    const int expected = argc > 1 ? std::atoi(argv[1]) : 0;
    int failures = 0;
    if (expected > 0 && comm.size() != expected) {
      std::fprintf(stderr, "uvp_consumer_mpi: FAILED: %d ranks, expected %d\n", comm.size(), expected);
      ++failures;
    }
    if (comm.rank() < 0 || comm.rank() >= comm.size()) {
      std::fprintf(stderr, "uvp_consumer_mpi: FAILED: rank %d of %d\n", comm.rank(), comm.size());
      ++failures;
    }
    // 1 + 2 + ... + size on every rank: the ranks really talk to each other.
    std::vector<double> x{double(comm.rank() + 1)};
    comm.allreduce_sum(uvp::Span<double>(x));
    const double want = 0.5 * comm.size() * (comm.size() + 1);
    if (x[0] != want) {
      std::fprintf(stderr, "uvp_consumer_mpi: FAILED: rank %d: allreduce_sum gave %g, expected %g\n", comm.rank(),
                   x[0], want);
      ++failures;
    }
    // A rank that failed makes every rank fail.
    std::vector<int> any{failures};
    comm.allreduce_max(uvp::Span<int>(any));
    if (comm.rank() == 0)
      std::printf("uvp_consumer_mpi: uvp %s, %d ranks: %s\n", uvp::version_string, comm.size(),
                  any[0] == 0 ? "ok" : "FAILED");
    return any[0] == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "uvp_consumer_mpi: FAILED: %s\n", e.what());
    return 1;
  }
}
