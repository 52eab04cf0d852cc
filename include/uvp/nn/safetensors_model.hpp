// SPDX-License-Identifier: Apache-2.0
// PyTorch state_dicts in and out of a uvp model, as .safetensors files (uvp/io/safetensors.hpp):
//
//   nn::load_safetensors("m.safetensors", model);        // torch: save_file(module.state_dict(), ...)
//   nn::save_safetensors("m.safetensors", model);        // torch: module.load_state_dict(load_file(...))
//
// Model is anything whose parameters() is a ModelParameters<T> (nn::Chain, nn::AnyModel). uvp
// already keeps every tensor under its state_dict name, in PyTorch's shape and row-major layout
// (LSTM gates i, f, g, o and GRU gates r, z, n in torch's row blocks; the fixture test checks
// them against torch), so loading is matching names and shapes and copying values: no tensor is
// transposed or reordered. docs/pytorch.md has the name map of every block.
//
// load_safetensors matches every tensor of the file (after rename_prefix) to the model's tensor of
// the same name and checks its shape and dtype (F16, BF16, F32, F64; converted to T). Every
// problem is collected and reported together in one uvp::format_error, each tensor by name:
//
//   uvp::nn::load_safetensors: 'm.safetensors' does not fit the model: missing: head.bias;
//   unexpected: head.weight_extra; shape: lstm.weight_ih_l0 is [256, 16] in the file, [256, 32]
//   in the model
//
// Mis-shaped tensors, unsupported dtypes, two file tensors renamed to one model name, and the
// "_reverse" tensors of a bidirectional torch LSTM / GRU whose forward direction the model has
// are always errors; missing and unexpected tensors are errors in strict mode (the default) and
// listed in the returned report otherwise. The values are then read, converted and checked (a
// non-finite value is an error naming the tensor) into a staging buffer, and copied into the
// model only when every tensor has been read: a load that fails leaves the model unchanged (the
// price: the staging buffer holds a copy of the loaded values while the load runs).
// Format problems (truncated data, offsets past the end, overlapping tensors, a hostile header)
// are uvp::io::SafetensorsFile's errors, raised before anything is matched.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/io/file.hpp"
#include "uvp/io/safetensors.hpp"
#include "uvp/nn/model_parameters.hpp"

namespace uvp::nn {

/// How load_safetensors matches the file's tensors to the model's.
struct SafetensorsLoadOptions {
  /// true: a model tensor the file lacks (missing) and a file tensor the model lacks (unexpected)
  /// are errors, as torch's load_state_dict(strict=True). false: both are listed in the report,
  /// missing tensors keep their values and unexpected ones are not read. Mis-shaped tensors are
  /// errors either way.
  bool strict = true;
  /// {"file prefix", "model prefix"} pairs, e.g. {"encoder.lstm.", "lstm."}: a file name that
  /// starts with a file prefix has it replaced by the model prefix (the first pair that matches
  /// wins; an empty file prefix matches every name). For modules renamed between the torch model
  /// and the uvp one.
  std::vector<std::pair<std::string, std::string>> rename_prefix;
};

/// What load_safetensors did, every name as the model calls it (file names after rename_prefix).
struct SafetensorsLoadReport {
  std::vector<std::string> loaded;      ///< model tensors given the file's values, in model order
  std::vector<std::string> missing;     ///< model tensors the file lacks (non-strict only), in model order
  std::vector<std::string> unexpected;  ///< file tensors the model lacks (non-strict only), in file order
};

}  // namespace uvp::nn

namespace uvp::detail {

// A list in an error message is cut after this many names: a hostile file with 10^5 tensors
// must not make a megabyte message.
inline constexpr std::size_t safetensors_model_max_listed = 16;

inline std::string safetensors_model_rename(const std::string& name,
                                            const std::vector<std::pair<std::string, std::string>>& rename) {
  for (const auto& r : rename)
    if (name.compare(0, r.first.size(), r.first) == 0) return r.second + name.substr(r.first.size());
  return name;
}

template <class I>
std::string safetensors_model_shape(const std::vector<I>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

inline bool safetensors_model_ends_with(std::string_view s, std::string_view suffix) noexcept {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Appends "<label>: a, b, c" (at most safetensors_model_max_listed items) to out, "; "-separated.
inline void safetensors_model_list(std::string& out, const char* label, const std::vector<std::string>& items,
                                   const char* separator = ", ") {
  if (items.empty()) return;
  if (!out.empty()) out += "; ";
  out += label;
  out += ": ";
  const std::size_t n = std::min(items.size(), safetensors_model_max_listed);
  for (std::size_t i = 0; i < n; ++i) out += (i ? separator : "") + items[i];
  if (items.size() > n) out += str(" ... and ", items.size() - n, " more");
}

// A model name in a message, with the file's own name when rename_prefix changed it.
inline std::string safetensors_model_label(const std::string& model_name, const std::string& file_name) {
  return model_name == file_name ? printable(model_name)
                                 : printable(model_name) + " (from " + printable(file_name) + ")";
}

}  // namespace uvp::detail

namespace uvp::nn {

/// Loads the tensors of the safetensors file at `path` (a PyTorch state_dict) into model's
/// parameters, matched by name (after options.rename_prefix) and checked as the top of this file
/// says; returns what was loaded, missing and unexpected. Raises uvp::format_error listing every
/// problem by name when the file does not fit the model, and the errors of
/// uvp::io::SafetensorsFile (uvp::io_error, uvp::format_error) for an unreadable or malformed
/// file or a non-finite value. On any error the model is unchanged.
template <class Model>
SafetensorsLoadReport load_safetensors(const std::string& path, Model& model,
                                       const SafetensorsLoadOptions& options = {}) {
  static_assert(uvp::detail::has_model_parameters<Model>::value,
                "uvp::nn::load_safetensors: Model must have parameters() returning a uvp::nn::ModelParameters "
                "(an nn::Chain or an nn::AnyModel)");
  using uvp::detail::printable;
  constexpr const char* where = "uvp::nn::load_safetensors";
  auto& params = model.parameters();
  using T = typename std::decay_t<decltype(params)>::value_type;

  const io::SafetensorsFile file(path);  // format errors first
  const auto& mt = params.tensors();
  std::unordered_map<std::string, std::size_t> by_name;
  for (std::size_t i = 0; i < mt.size(); ++i) by_name.emplace(mt[i].name, i);

  SafetensorsLoadReport report;
  std::vector<const io::SafetensorsEntry*> source(mt.size(), nullptr);
  std::vector<std::string> unexpected_msg, duplicate_msg, reverse_msg;
  std::vector<std::string> shape_of(mt.size()), dtype_of(mt.size());  // listed in model order
  bool integer_buffer = false, projection = false;
  for (const io::SafetensorsEntry& e : file.tensors()) {
    const std::string name = uvp::detail::safetensors_model_rename(e.name, options.rename_prefix);
    const auto it = by_name.find(name);
    if (it == by_name.end()) {
      // Half of a bidirectional layer is never a right model: an error even when not strict.
      constexpr std::string_view rev = "_reverse";
      if (uvp::detail::safetensors_model_ends_with(name, rev) && by_name.count(name.substr(0, name.size() - rev.size())))
        reverse_msg.push_back(uvp::detail::safetensors_model_label(name, e.name));
      report.unexpected.push_back(name);
      unexpected_msg.push_back(uvp::detail::safetensors_model_label(name, e.name));
      integer_buffer = integer_buffer || e.dtype == io::SafetensorsDtype::other ||
                       uvp::detail::safetensors_model_ends_with(name, "num_batches_tracked");
      projection = projection || name.find("weight_hr_l") != std::string::npos;
      continue;
    }
    const std::size_t i = it->second;
    const std::string label = uvp::detail::safetensors_model_label(name, e.name);
    if (source[i]) {
      duplicate_msg.push_back(printable(name) + " comes from both " + printable(source[i]->name) + " and " +
                              printable(e.name));
      continue;
    }
    source[i] = &e;
    const std::vector<index>& want = mt[i].shape;
    if (e.shape.size() != want.size() || !std::equal(want.begin(), want.end(), e.shape.begin()))
      shape_of[i] = label + " is " + uvp::detail::safetensors_model_shape(e.shape) + " in the file, " +
                    uvp::detail::safetensors_model_shape(want) + " in the model";
    if (e.dtype == io::SafetensorsDtype::other)
      dtype_of[i] = label + " is " + printable(e.dtype_name) + " in the file (uvp reads F16, BF16, F32 and F64)";
  }
  std::vector<std::string> shape_msg, dtype_msg;
  for (std::size_t i = 0; i < mt.size(); ++i) {
    if (!source[i]) report.missing.push_back(mt[i].name);
    if (!shape_of[i].empty()) shape_msg.push_back(std::move(shape_of[i]));
    if (!dtype_of[i].empty()) dtype_msg.push_back(std::move(dtype_of[i]));
  }

  std::string problems;
  if (options.strict) {
    uvp::detail::safetensors_model_list(problems, "missing", report.missing);
    uvp::detail::safetensors_model_list(problems, "unexpected", unexpected_msg);
  }
  uvp::detail::safetensors_model_list(problems, "shape", shape_msg, "; shape: ");
  uvp::detail::safetensors_model_list(problems, "dtype", dtype_msg, "; dtype: ");
  uvp::detail::safetensors_model_list(problems, "duplicate", duplicate_msg, "; duplicate: ");
  uvp::detail::safetensors_model_list(problems, "bidirectional", reverse_msg);
  if (!problems.empty()) {
    std::string notes;
    if (!reverse_msg.empty())
      notes += " (tensors ending in _reverse are the second direction of a bidirectional torch LSTM or GRU: "
               "uvp's Lstm and Gru are unidirectional)";
    if (options.strict && projection)
      notes += " (weight_hr_l* is the projection of torch's LSTM(proj_size > 0), which uvp's Lstm does not have)";
    if (options.strict && integer_buffer)
      notes += " (integer tensors such as BatchNorm's num_batches_tracked are buffers, not parameters: uvp has "
               "no block to load them into; strict = false skips unexpected tensors)";
    uvp::detail::raise<format_error>(where, ": ", uvp::detail::quoted_path(path), " does not fit the model: ",
                                     problems, notes);
  }

  // Read, convert and check every value before the model changes.
  std::vector<std::size_t> order;
  std::size_t total = 0;
  for (std::size_t i = 0; i < mt.size(); ++i)
    if (source[i]) order.push_back(i), total += static_cast<std::size_t>(mt[i].count);
  std::vector<T> staging(total);
  std::size_t at = 0;
  for (std::size_t i : order) {
    file.template read<T>(*source[i], Span<T>(staging.data() + at, mt[i].count));
    at += static_cast<std::size_t>(mt[i].count);
  }
  at = 0;
  for (std::size_t i : order) {
    Span<T> dst = params.values(mt[i]);
    std::copy(staging.begin() + static_cast<std::ptrdiff_t>(at),
              staging.begin() + static_cast<std::ptrdiff_t>(at + static_cast<std::size_t>(dst.size())), dst.data());
    at += static_cast<std::size_t>(dst.size());
    report.loaded.push_back(mt[i].name);
  }
  return report;
}

/// Writes every tensor of model's parameters() to `path` as a safetensors file torch's
/// load_state_dict (strict) accepts: state_dict names, PyTorch shapes, row-major, dtype F32 for a
/// float model and F64 for a double one (load_state_dict converts to the module's dtype), and
/// `metadata` in the header's "__metadata__". Atomic: the file is complete or absent.
template <class Model>
void save_safetensors(const std::string& path, const Model& model,
                      const std::map<std::string, std::string>& metadata = {}) {
  static_assert(uvp::detail::has_model_parameters<Model>::value,
                "uvp::nn::save_safetensors: Model must have parameters() returning a uvp::nn::ModelParameters "
                "(an nn::Chain or an nn::AnyModel)");
  const auto& params = model.parameters();
  using T = typename std::decay_t<decltype(params)>::value_type;
  std::vector<io::SafetensorsTensorRef<T>> refs;
  refs.reserve(params.tensors().size());
  for (const ModelTensor& t : params.tensors())
    refs.push_back({t.name, std::vector<std::int64_t>(t.shape.begin(), t.shape.end()), params.values(t)});
  io::write_safetensors(path, refs, metadata);
}

}  // namespace uvp::nn
