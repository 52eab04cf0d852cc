// SPDX-License-Identifier: Apache-2.0
// The one source of uvp's version; CMakeLists.txt parses these lines.
#pragma once

#define UVP_VERSION_MAJOR 0
#define UVP_VERSION_MINOR 1
#define UVP_VERSION_PATCH 0

namespace uvp {
inline constexpr int version_major = UVP_VERSION_MAJOR;
inline constexpr int version_minor = UVP_VERSION_MINOR;
inline constexpr int version_patch = UVP_VERSION_PATCH;
inline constexpr const char* version_string = "0.1.0";
}  // namespace uvp
