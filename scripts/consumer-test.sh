#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs uvp (CPU only) into a temporary prefix and builds + runs tests/consumer against it with
# find_package(uvp CONFIG REQUIRED), then with pkg-config -- all with no nvcc reachable: every PATH
# entry holding an nvcc is dropped and the CUDA environment variables are unset. Proves that a
# CPU-only consumer never needs the CUDA toolkit, and that it never looks for MPI either. When
# mpicxx and mpiexec are on PATH, also builds tests/consumer/mpi_main.cpp against the `mpi`
# component (find_package(uvp CONFIG REQUIRED COMPONENTS mpi), uvp::mpi) and with mpicxx +
# `pkg-config uvp`, and runs both on 2 ranks (mpiexec -n 2; Open MPI: --oversubscribe, root allowed).
#
# usage: scripts/consumer-test.sh [--keep] [-- <extra cmake configure options for uvp>]
#   --keep   keep the temporary directory (printed) instead of deleting it
# Honours CMAKE_GENERATOR, CMAKE_CXX_COMPILER_LAUNCHER, CXX, CMAKE_BUILD_PARALLEL_LEVEL, TMPDIR.
set -euo pipefail

keep=0
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --keep) keep=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '3,13p' "$0"; exit 0 ;;
    *) echo "consumer-test.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/uvp-consumer.XXXXXX")"
if [[ $keep -eq 0 ]]; then
  trap 'rm -rf "$work"' EXIT
else
  echo "consumer-test.sh: keeping $work"
fi
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"

# No nvcc anywhere on PATH, no CUDA hints in the environment.
clean_path=""
IFS=':' read -r -a path_entries <<< "$PATH"
for dir in "${path_entries[@]}"; do
  [[ -z "$dir" || -x "$dir/nvcc" ]] && continue
  clean_path="${clean_path:+$clean_path:}$dir"
done
export PATH="$clean_path"
unset CUDACXX CUDA_PATH CUDA_HOME CUDAToolkit_ROOT CUDA_ROOT CUDAARCHS
if command -v nvcc > /dev/null 2>&1; then
  echo "consumer-test.sh: nvcc is still on PATH ($(command -v nvcc))" >&2
  exit 1
fi
echo "consumer-test.sh: PATH has no nvcc"

step() { echo; echo "== $*"; }

step "configure + install uvp (CPU only, no tests) into $work/prefix"
cmake -S "$src" -B "$work/uvp-build" -DCMAKE_BUILD_TYPE=Release \
  -DUVP_BUILD_TESTS=OFF -DUVP_BUILD_EXAMPLES=OFF -DUVP_BUILD_BENCHMARKS=OFF \
  -DUVP_HEADER_CHECK=OFF -DUVP_WITH_CUDA=OFF "${extra[@]}"
cmake --install "$work/uvp-build" --prefix "$work/prefix"
if grep -rqi "cuda" "$work/prefix/share/cmake/uvp/uvpTargets.cmake"; then
  echo "consumer-test.sh: the exported targets mention CUDA" >&2
  exit 1
fi
if grep -q "MPI::" "$work/prefix/share/cmake/uvp/uvpTargets.cmake"; then
  echo "consumer-test.sh: the exported targets mention MPI" >&2
  exit 1
fi

step "find_package(uvp CONFIG REQUIRED): configure, build, run tests/consumer"
version="$(sed -n 's/^Version: //p' "$work/prefix/share/pkgconfig/uvp.pc")"
cmake -S "$src/tests/consumer" -B "$work/consumer-build" -DCMAKE_BUILD_TYPE=Release \
  -DUVP_CONSUMER_MODE=find_package -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  -DUVP_CONSUMER_EXPECTED_PREFIX="$work/prefix" -DUVP_CONSUMER_EXPECTED_VERSION="$version"
cmake --build "$work/consumer-build"
if grep -q "^CMAKE_CUDA_COMPILER" "$work/consumer-build/CMakeCache.txt"; then
  echo "consumer-test.sh: the CPU-only consumer's cache names a CUDA compiler" >&2
  exit 1
fi
(cd "$work/consumer-build" && ctest --output-on-failure)

if command -v pkg-config > /dev/null 2>&1; then
  step "pkg-config: build the same main.cpp with \`pkg-config --cflags --libs uvp\` only"
  cmake -DPKG_CONFIG="$(command -v pkg-config)" -DPREFIX="$work/prefix" \
    -DCXX="${CXX:-c++}" -DSOURCE="$src/tests/consumer/main.cpp" \
    -DOUTPUT="$work/pkg-config-consumer" -DEXPECTED_VERSION="$version" \
    -P "$src/tests/consumer/pkg_config_consumer.cmake"
else
  step "pkg-config not found: pkg-config consumer skipped"
fi

mpi_note="no MPI"
if command -v mpicxx > /dev/null 2>&1 && command -v mpiexec > /dev/null 2>&1; then
  # Open MPI: more ranks than cores, and root (CI containers) only with both variables; CMA off
  # for containers' ptrace rules. MPICH ignores all of these.
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
  export OMP_NUM_THREADS=1
  mpiexec_flags=()
  if mpiexec --version 2>/dev/null | grep -Eq "OpenRTE|Open MPI|open-mpi"; then
    mpiexec_flags=(--oversubscribe)
  fi

  step "find_package(uvp CONFIG REQUIRED COMPONENTS mpi): build tests/consumer/mpi_main.cpp, run on 2 ranks"
  cmake -S "$src/tests/consumer" -B "$work/consumer-mpi-build" -DCMAKE_BUILD_TYPE=Release \
    -DUVP_CONSUMER_MODE=find_package -DUVP_CONSUMER_MPI=ON -DCMAKE_PREFIX_PATH="$work/prefix" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
    -DUVP_CONSUMER_EXPECTED_PREFIX="$work/prefix" -DUVP_CONSUMER_EXPECTED_VERSION="$version"
  cmake --build "$work/consumer-mpi-build" --target uvp_consumer_mpi
  (cd "$work/consumer-mpi-build" && ctest --output-on-failure -R '^uvp_consumer_mpi$' --no-tests=error)

  if command -v pkg-config > /dev/null 2>&1; then
    step "mpicxx + \`pkg-config --cflags --libs uvp\` -DUVP_WITH_MPI: build mpi_main.cpp, run on 2 ranks"
    # shellcheck disable=SC2046 # word splitting of pkg-config's flags is wanted
    mpicxx -std=c++17 -DUVP_WITH_MPI $(PKG_CONFIG_PATH="$work/prefix/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" \
      pkg-config --cflags --libs uvp) "$src/tests/consumer/mpi_main.cpp" -o "$work/pkg-config-mpi-consumer"
    mpiexec -n 2 ${mpiexec_flags[@]+"${mpiexec_flags[@]}"} "$work/pkg-config-mpi-consumer" 2
  fi
  mpi_note="MPI consumer on 2 ranks"
else
  step "mpicxx or mpiexec not found: MPI consumer skipped"
fi

step "consumer-test.sh: OK (uvp $version, no nvcc on PATH, $mpi_note)"
