// SPDX-License-Identifier: Apache-2.0
// Umbrella header: everything uvp offers on the CPU. Never pulls in a CUDA header.
#pragma once

#include "uvp/version.hpp"
#include "uvp/backend/tags.hpp"
#include "uvp/core/check.hpp"
#include "uvp/core/config.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/init.hpp"
#include "uvp/core/parallel.hpp"
#include "uvp/core/parameters.hpp"
#include "uvp/core/random.hpp"
#include "uvp/core/tensor.hpp"
