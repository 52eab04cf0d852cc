# SPDX-License-Identifier: Apache-2.0
# The one MPI test of a build without MPI: says why and exits with the skip code (1).
message(NOTICE "mpi_skipped: the MPI tests were not built: no MPI for C++ was found (UVP_WITH_MPI=AUTO) "
               "or UVP_WITH_MPI=OFF. Install Open MPI (Debian: libopenmpi-dev openmpi-bin) and "
               "configure with -DUVP_WITH_MPI=ON to build and run them.")
message(FATAL_ERROR "skipped")
