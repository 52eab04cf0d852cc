# SPDX-License-Identifier: Apache-2.0
# UVP_WITH_MPI (AUTO / ON / OFF) -> the INTERFACE target uvp_mpi (alias uvp::mpi) = uvp::uvp +
# MPI::MPI_CXX + the definition UVP_WITH_MPI, and UVP_HAVE_MPI (ON when the target exists).
# For the tests, examples and benchmarks that run under mpiexec:
#   ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} <n> ${UVP_MPIEXEC_FLAGS} <program> ${MPIEXEC_POSTFLAGS}
# with the ctest properties ENVIRONMENT ${UVP_MPI_TEST_ENVIRONMENT} and ENVIRONMENT_MODIFICATION
# ${UVP_MPI_TEST_ENVIRONMENT_MODIFICATION}.
# Installed consumers get uvp::mpi from the config package's `mpi` component instead
# (uvpConfig.cmake.in), so the exported uvp::uvp never depends on MPI.
string(TOUPPER "${UVP_WITH_MPI}" _uvp_mpi_mode)
if(_uvp_mpi_mode MATCHES "^(ON|YES|TRUE|Y|1)$")
  set(_uvp_mpi_mode ON)
elseif(_uvp_mpi_mode MATCHES "^(OFF|NO|FALSE|N|0|)$")
  set(_uvp_mpi_mode OFF)
elseif(NOT _uvp_mpi_mode STREQUAL "AUTO")
  message(FATAL_ERROR "UVP_WITH_MPI is '${UVP_WITH_MPI}', expected AUTO, ON or OFF")
endif()

set(UVP_HAVE_MPI OFF)
if(NOT _uvp_mpi_mode STREQUAL "OFF")
  if(NOT TARGET MPI::MPI_CXX)
    if(_uvp_mpi_mode STREQUAL "ON")
      find_package(MPI COMPONENTS CXX REQUIRED)
    else()
      find_package(MPI COMPONENTS CXX QUIET)
    endif()
  endif()
  if(TARGET MPI::MPI_CXX)
    set(UVP_HAVE_MPI ON)
    add_library(uvp_mpi INTERFACE)
    add_library(uvp::mpi ALIAS uvp_mpi)
    target_link_libraries(uvp_mpi INTERFACE uvp::uvp MPI::MPI_CXX)
    target_compile_definitions(uvp_mpi INTERFACE UVP_WITH_MPI)
    # --oversubscribe is Open MPI's (more ranks than cores on a CI box); MPICH's mpiexec allows it.
    set(UVP_MPIEXEC_FLAGS ${MPIEXEC_PREFLAGS})
    execute_process(COMMAND "${MPIEXEC_EXECUTABLE}" --version OUTPUT_VARIABLE _uvp_mpiexec_version
                    ERROR_QUIET TIMEOUT 20)
    if(_uvp_mpiexec_version MATCHES "OpenRTE|Open MPI|open-mpi")
      list(APPEND UVP_MPIEXEC_FLAGS --oversubscribe)
    endif()
    # Open MPI refuses root without both variables (CI containers run as root); a container's
    # ptrace rules break its single-copy shared memory (CMA), which the third turns off; one
    # OpenMP thread per rank, as ranks share the cores.
    set(UVP_MPI_TEST_ENVIRONMENT
      OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
      OMP_NUM_THREADS=1)
    # Open MPI's plug-ins keep allocations past MPI_Finalize and are unloaded before LeakSanitizer
    # reports, so they cannot be suppressed by name: an ASan build checks everything but leaks
    # under mpiexec (the ctest property ENVIRONMENT_MODIFICATION, CMake >= 3.22).
    set(UVP_MPI_TEST_ENVIRONMENT_MODIFICATION "ASAN_OPTIONS=string_append::detect_leaks=0")
    message(STATUS "uvp: MPI support on (uvp::mpi, MPI ${MPI_CXX_VERSION}, ${MPIEXEC_EXECUTABLE})")
  else()
    message(STATUS "uvp: MPI not found; uvp::mpi and the mpi tests are off (UVP_WITH_MPI=AUTO)")
  endif()
endif()
