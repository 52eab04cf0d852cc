# SPDX-License-Identifier: Apache-2.0
# Conan 2 recipe for uvp, a header-only library, in the style of conan-center-index.
# Test it with `conan create . --build=missing` (test_package/ is run against the new package).
import os
import re
import textwrap

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.files import copy, load, save
from conan.tools.layout import basic_layout

required_conan_version = ">=2.1"


class UvpConan(ConanFile):
    name = "uvp"
    description = "Header-only C++ building blocks for predicting the value of e-commerce users"
    license = "Apache-2.0"
    url = "https://github.com/uvp-dev/uvp"
    homepage = "https://github.com/uvp-dev/uvp"
    topics = ("machine-learning", "customer-lifetime-value", "eigen", "simd", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {
        # OpenMP threads: a usage requirement of uvp::uvp (CMake option UVP_WITH_OPENMP).
        "openmp": [True, False],
        # CUDA backend: the .cuh headers ship always; this adds the target uvp::cuda
        # (uvp::uvp + CUDA::cublas from the system CUDA toolkit) for .cu consumers.
        "cuda": [True, False],
        # MPI (uvp/mpi/*.hpp): the headers ship always; this adds the target uvp::mpi
        # (uvp::uvp + MPI::MPI_CXX from the system's MPI + the definition UVP_WITH_MPI).
        "mpi": [True, False],
    }
    default_options = {
        "openmp": True,
        "cuda": False,
        "mpi": False,
    }
    exports_sources = "include/*", "LICENSE"
    no_copy_source = True

    @property
    def _min_cppstd(self):
        return 17

    def set_version(self):
        # The one source of the version, as for CMake's project(VERSION).
        if self.version:
            return
        text = load(self, os.path.join(self.recipe_folder, "include", "uvp", "version.hpp"))
        parts = [re.search(rf"#define UVP_VERSION_{p} (\d+)", text).group(1)
                 for p in ("MAJOR", "MINOR", "PATCH")]
        self.version = ".".join(parts)

    def layout(self):
        basic_layout(self)

    def requirements(self):
        # uvp's public headers include Eigen's and xsimd's, so both are transitive.
        # Eigen 3.4 to 5.x and xsimd 8.1 to 14 are what uvp's CMake config accepts too.
        self.requires("eigen/[>=3.4.0 <6]", transitive_headers=True)
        self.requires("xsimd/[>=8.1.0 <15]", transitive_headers=True)
        if self.options.openmp:
            # ConanCenter's OpenMP meta-package (there is no openmp/system): the compiler's runtime,
            # target OpenMP::OpenMP_CXX.
            self.requires("openmp/cci.latest", transitive_headers=True, transitive_libs=True)

    def package_id(self):
        # Header-only: one package for every configuration; the options act in package_info().
        self.info.clear()

    def validate(self):
        if self.settings.get_safe("compiler.cppstd"):
            check_min_cppstd(self, self._min_cppstd)

    def build(self):
        pass

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        include = os.path.join(self.source_folder, "include")
        for pattern in ("*.hpp", "*.cuh"):
            copy(self, pattern, include, os.path.join(self.package_folder, "include"))
        # Dependencies taken from the system ([platform_requires] or a [system] package, as a distro's
        # Eigen, xsimd and the compiler's OpenMP) come with no include paths or targets from Conan:
        # these modules find them the way uvp's own CMake config does. With ConanCenter's packages
        # the targets exist already and the modules only add a link that is already there.
        save(self, os.path.join(self.package_folder, self._deps_module), textwrap.dedent("""\
            # uvp's dependencies, found when Conan did not provide their targets (system packages).
            if(NOT TARGET Eigen3::Eigen)
              find_package(Eigen3 3.4 QUIET NO_MODULE)
            endif()
            # Debian's xsimd 8.1 config links a bare `xtl` that it never finds: an empty target.
            if(NOT TARGET xsimd AND NOT TARGET xtl)
              find_package(xtl QUIET NO_MODULE)
              if(NOT TARGET xtl)
                add_library(xtl INTERFACE IMPORTED)
              endif()
            endif()
            if(NOT TARGET xsimd)
              find_package(xsimd QUIET NO_MODULE)
            endif()
            foreach(_uvp_dep Eigen3::Eigen xsimd)
              if(NOT TARGET ${_uvp_dep})
                message(FATAL_ERROR "uvp needs ${_uvp_dep}: Conan did not provide it and find_package did not find "
                                    "it (install Eigen 3.4 and xsimd, e.g. Debian's libeigen3-dev libxsimd-dev)")
              endif()
              set_property(TARGET uvp::uvp APPEND PROPERTY INTERFACE_LINK_LIBRARIES ${_uvp_dep})
            endforeach()
        """))
        save(self, os.path.join(self.package_folder, self._openmp_module), textwrap.dedent("""\
            # uvp's openmp option: OpenMP::OpenMP_CXX in uvp::uvp's link interface.
            if(NOT TARGET OpenMP::OpenMP_CXX)
              find_package(OpenMP REQUIRED COMPONENTS CXX)
            endif()
            set_property(TARGET uvp::uvp APPEND PROPERTY INTERFACE_LINK_LIBRARIES OpenMP::OpenMP_CXX)
        """))
        # Always packaged (package_id is cleared); used only when the cuda option is on.
        save(self, os.path.join(self.package_folder, self._cuda_module), textwrap.dedent("""\
            # uvp's cuda option: uvp::cuda = uvp::uvp + CUDA::cublas, as the `cuda` component
            # of uvp's own CMake config. The CUDA runtime comes from the consumer's target.
            if(NOT TARGET uvp::cuda)
              find_package(CUDAToolkit REQUIRED)
              add_library(uvp::cuda INTERFACE IMPORTED)
              set_property(TARGET uvp::cuda PROPERTY INTERFACE_LINK_LIBRARIES uvp::uvp CUDA::cublas)
            endif()
        """))
        # Always packaged too; used only when the mpi option is on. MPI comes from the system
        # (Open MPI or MPICH; ConanCenter has no MPI the recipe could require), as CUDA does.
        save(self, os.path.join(self.package_folder, self._mpi_module), textwrap.dedent("""\
            # uvp's mpi option: uvp::mpi = uvp::uvp + MPI::MPI_CXX + the definition UVP_WITH_MPI,
            # as the `mpi` component of uvp's own CMake config.
            if(NOT TARGET uvp::mpi)
              if(NOT TARGET MPI::MPI_CXX)
                find_package(MPI REQUIRED COMPONENTS CXX)
              endif()
              add_library(uvp::mpi INTERFACE IMPORTED)
              set_target_properties(uvp::mpi PROPERTIES
                INTERFACE_LINK_LIBRARIES "uvp::uvp;MPI::MPI_CXX"
                INTERFACE_COMPILE_DEFINITIONS "UVP_WITH_MPI")
            endif()
        """))

    @property
    def _deps_module(self):
        return os.path.join("lib", "cmake", "uvp-dependencies.cmake")

    @property
    def _openmp_module(self):
        return os.path.join("lib", "cmake", "uvp-openmp.cmake")

    @property
    def _cuda_module(self):
        return os.path.join("lib", "cmake", "uvp-cuda-target.cmake")

    @property
    def _mpi_module(self):
        return os.path.join("lib", "cmake", "uvp-mpi-target.cmake")

    def package_info(self):
        # The same names as uvp's CMake install: find_package(uvp), uvp::uvp, pkg-config uvp.
        self.cpp_info.set_property("cmake_file_name", "uvp")
        self.cpp_info.set_property("cmake_target_name", "uvp::uvp")
        self.cpp_info.set_property("pkg_config_name", "uvp")
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        modules = [self._deps_module]
        if self.options.openmp:
            modules.append(self._openmp_module)
        if self.options.cuda:
            modules.append(self._cuda_module)
        if self.options.mpi:
            modules.append(self._mpi_module)
        self.cpp_info.set_property("cmake_build_modules", modules)
