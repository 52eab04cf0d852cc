# SPDX-License-Identifier: Apache-2.0
# conan create's test of the uvp package: find_package(uvp) + uvp::uvp in a tiny program.
import os

from conan import ConanFile
from conan.tools.build import can_run
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout


class TestPackageConan(ConanFile):
    settings = "os", "arch", "compiler", "build_type"
    generators = "CMakeDeps", "VirtualRunEnv"
    test_type = "explicit"

    def requirements(self):
        self.requires(self.tested_reference_str)

    def layout(self):
        cmake_layout(self)

    def generate(self):
        # The program checks that uvp's openmp option reached the compiler (_OPENMP) or did not.
        tc = CMakeToolchain(self)
        tc.variables["UVP_TEST_EXPECT_OPENMP"] = bool(self.dependencies["uvp"].options.openmp)
        # With the mpi option, the same program is also built against uvp::mpi (one MPI rank).
        tc.variables["UVP_TEST_MPI"] = bool(self.dependencies["uvp"].options.mpi)
        tc.generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def test(self):
        if can_run(self):
            bin_path = os.path.join(self.cpp.build.bindir, "test_package")
            self.run(bin_path, env="conanrun")
            if self.dependencies["uvp"].options.mpi:
                self.run(bin_path + "_mpi", env="conanrun")
