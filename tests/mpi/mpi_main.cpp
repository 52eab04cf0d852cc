// SPDX-License-Identifier: Apache-2.0
// doctest's main for the MPI tests: initialises MPI, runs the test cases on every rank, and makes
// every rank exit with the same code (the worst), so mpiexec reports a failure on any rank.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <exception>
#include <cstdio>

#include "uvp/mpi/communicator.hpp"

int main(int argc, char** argv) {
  uvp::mpi::Environment env(argc, argv);
  int code = 1;
  try {
    uvp::mpi::Communicator world;
    doctest::Context context(argc, argv);
    // Rank 0 prints the summary; every rank prints its failures.
    if (world.rank() != 0) context.setOption("no-intro", true), context.setOption("no-version", true);
    code = context.run();
    if (context.shouldExit()) return code;
    int worst = code;
    world.allreduce_max(uvp::Span<int>(&worst, 1));
    if (worst != code) std::fprintf(stderr, "rank %d: another rank failed (exit code %d)\n", world.rank(), worst);
    code = worst;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi test main: %s\n", e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  return code;
}
