// SPDX-License-Identifier: Apache-2.0
// Conan test_package: the packaged headers compile, link and give the expected results.
#include <cstdio>
#include <uvp/uvp.hpp>
#if defined(UVP_TEST_MPI)  // built against uvp::mpi (the mpi option), run as a single rank
#include <uvp/mpi/communicator.hpp>
#if !defined(UVP_WITH_MPI)
#error "uvp::mpi did not define UVP_WITH_MPI"
#endif
#endif

int main(int argc, char** argv) {
#if defined(UVP_TEST_MPI)
  uvp::mpi::Environment env(argc, argv);
  const uvp::mpi::Communicator comm;
  if (comm.rank() != 0 || comm.size() != 1) {
    std::printf("uvp::mpi: rank %d of %d, expected 0 of 1: FAILED\n", comm.rank(), comm.size());
    return 1;
  }
#else
  (void)argc;
  (void)argv;
#endif
  uvp::Rng rng(42);
  uvp::Matrix<double> a(2, 2);
  a << 1, 2, 3, 4;
  const uvp::Matrix<double> b = a * a;  // [[7, 10], [15, 22]]
  bool ok = rng() == 0x15780b2e0c2ec716ULL && b(0, 0) == 7 && b(1, 1) == 22;
#if defined(_OPENMP)
  const bool openmp = true;
#else
  const bool openmp = false;
#endif
#if defined(UVP_TEST_EXPECT_OPENMP)  // uvp's openmp option, passed by test_package/conanfile.py
  ok = ok && openmp == bool(UVP_TEST_EXPECT_OPENMP);
#endif
  std::printf("uvp %s (OpenMP %s): %s\n", uvp::version_string, openmp ? "on" : "off", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
