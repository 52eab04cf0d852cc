// SPDX-License-Identifier: Apache-2.0
// Model files that carry their architecture: nn::save of an nn::Chain writes format version 2
// (each block's name and BlockSpec, then the tensors; uvp/nn/serialize.hpp has the layout), and
// nn::load into an nn::Chain checks that the file's architecture is the model's before it loads a
// single value.
//
//   nn::Chain model(nn::Embedding<float>(85, 32, rng, 0), nn::Lstm<float>(32, 64, rng),
//                   nn::GlobalLastPool1d<float>(), nn::Dense<float>(64, 1, rng));
//   nn::save("model.uvp", model);              // version 2: architecture + weights, atomic
//   nn::load("model.uvp", other_chain);        // same architecture required, named difference if not
//   auto any = nn::load_model<float>("model.uvp");  // no C++ type needed (uvp/nn/any_model.hpp)
//
// A chain with a block that has no spec() (a user's block without it) is saved as version 1,
// weights only, as a BlockList is. A version 1 file loads into a chain without the architecture
// check (its tensors are still matched by name and shape).
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "uvp/core/error.hpp"
#include "uvp/io/file.hpp"
#include "uvp/nn/chain.hpp"
#include "uvp/nn/layer.hpp"
#include "uvp/nn/serialize.hpp"

namespace uvp::detail {

/// A spec argument as messages show it: whole numbers without a fraction, others in their
/// shortest round-trip form (detail::str's).
inline std::string spec_number(double v) { return str(v); }

inline const std::pair<std::string, double>* find_spec_arg(const nn::BlockSpec& s, const std::string& name) {
  for (const auto& a : s.args)
    if (a.first == name) return &a;
  return nullptr;
}

// The first difference between two specs ("" if none); `at` names the spec ("block 1 'lstm'").
// Arguments are compared by name (their order does not matter), values bit for bit.
inline std::string spec_difference(const nn::BlockSpec& file, const nn::BlockSpec& model, const std::string& at) {
  if (file.kind != model.kind)
    return str(at, ": file has ", printable(file.kind), ", model has ", printable(model.kind));
  const std::string kind = printable(model.kind);
  for (const auto& m : model.args) {
    const auto* f = find_spec_arg(file, m.first);
    if (!f) return str(at, ": file has ", kind, " without argument '", printable(m.first), "', model has ",
                       printable(m.first), " = ", spec_number(m.second));
    if (double_bits(f->second) != double_bits(m.second))
      return str(at, ": file has ", kind, " ", printable(m.first), " = ", spec_number(f->second), ", model has ",
                 spec_number(m.second));
  }
  for (const auto& f : file.args)
    if (!find_spec_arg(model, f.first))
      return str(at, ": file has ", kind, " ", printable(f.first), " = ", spec_number(f.second),
                 ", model has no argument '", printable(f.first), "'");
  if (file.children.size() != model.children.size())
    return str(at, ": file has ", kind, " with ", file.children.size(), " children, model has ",
               model.children.size());
  for (std::size_t c = 0; c < file.children.size(); ++c) {
    std::string d = spec_difference(file.children[c], model.children[c], str(at, " child ", c));
    if (!d.empty()) return d;
  }
  return {};
}

/// The first difference between a file's architecture and a model's, "" when they are the same:
/// `block 1 'lstm': file has Lstm hidden_size = 64, model has 32`.
inline std::string architecture_difference(const nn::ModelArchitecture& file, const nn::ModelArchitecture& model) {
  const std::size_t n = file.size() < model.size() ? file.size() : model.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (file[i].first != model[i].first)
      return str("block ", i, ": file names it '", printable(file[i].first), "' (", printable(file[i].second.kind),
                 "), model '", printable(model[i].first), "' (", printable(model[i].second.kind), ")");
    std::string d = spec_difference(file[i].second, model[i].second, str("block ", i, " '", printable(file[i].first), "'"));
    if (!d.empty()) return d;
  }
  if (file.size() != model.size())
    return str("file has ", file.size(), " blocks, model has ", model.size());
  return {};
}

template <class Chain>
struct chain_has_architecture;
template <class... B>
struct chain_has_architecture<nn::Chain<B...>> : std::bool_constant<(has_block_spec<B>::value && ...)> {};

template <class... B>
std::string encode_chain(const char* where, const nn::Chain<B...>& model) {
  if constexpr ((has_block_spec<B>::value && ...)) {
    const nn::ModelArchitecture arch = model.architecture();
    return encode_model(where, model.blocks(), &arch);
  } else {
    return encode_model(where, model.blocks());
  }
}

// Checks the file's architecture against the chain's (when both have one), then loads.
template <class... B>
void decode_chain(const char* where, const std::string& source, const unsigned char* p, std::size_t size,
                  const nn::Chain<B...>& model, bool allow_non_finite) {
  const ParsedModelFile parsed = parse_model_file(where, source, p, size);
  if constexpr ((has_block_spec<B>::value && ...)) {
    if (parsed.has_architecture) {
      const std::string d = architecture_difference(parsed.architecture, model.architecture());
      if (!d.empty())
        raise<format_error>(where, ": ", source, " holds a model of another architecture: ", d);
    }
  }
  apply_model_file(where, source, parsed, p, model.blocks(), allow_non_finite);
}

}  // namespace uvp::detail

namespace uvp::nn {

/// Writes `model` to `path` atomically (as save of a BlockList does): format version 2, with every
/// block's name and spec, when every block has spec(); version 1 (weights only) otherwise.
/// uvp::io_error when the file cannot be written; uvp::invalid_argument for an architecture a
/// reader would refuse (a spec nested deeper than 16 levels, names or kinds over 1024 bytes).
template <class... B>
void save(const std::string& path, const Chain<B...>& model) {
  write_file_atomic(path, uvp::detail::encode_chain("uvp::nn::save", model), "uvp::nn::save");
}

/// Replaces `bytes` with the file's bytes.
template <class... B>
void save(std::vector<std::uint8_t>& bytes, const Chain<B...>& model) {
  const std::string s = uvp::detail::encode_chain("uvp::nn::save", model);
  bytes.assign(s.begin(), s.end());
}

/// Loads a file written by save into `model`. For a version 2 file and a model whose blocks all
/// have spec(), the architectures must be the same (block names, kinds, every argument, children);
/// else a uvp::format_error names the first difference:
///   `uvp::nn::load: 'm.uvp' holds a model of another architecture: block 1 'lstm': file has Lstm
///    hidden_size = 64, model has 32`.
/// Then the tensors, as load of a BlockList (every error of it applies). On any error the model's
/// values are unchanged.
template <class... B>
void load(const std::string& path, Chain<B...>& model, const LoadOptions& options = LoadOptions{}) {
  constexpr const char* where = "uvp::nn::load";
  const std::string bytes = uvp::detail::read_whole_file(where, path);
  uvp::detail::decode_chain(where, uvp::detail::quoted_path(path), reinterpret_cast<const unsigned char*>(bytes.data()),
                            bytes.size(), model, options.allow_non_finite);
}

/// Loads from bytes made by save(std::vector<std::uint8_t>&, model).
template <class... B>
void load(const std::vector<std::uint8_t>& bytes, Chain<B...>& model, const LoadOptions& options = LoadOptions{}) {
  uvp::detail::decode_chain("uvp::nn::load", "the byte buffer", bytes.data(), bytes.size(), model,
                            options.allow_non_finite);
}

/// The architecture a model file stores (empty for a version 1 file), after checking the whole
/// file's structure and checksum; uvp::io_error / uvp::format_error as load.
inline ModelArchitecture read_architecture(const std::string& path) {
  constexpr const char* where = "uvp::nn::read_architecture";
  const std::string bytes = uvp::detail::read_whole_file(where, path);
  return uvp::detail::parse_model_file(where, uvp::detail::quoted_path(path),
                                       reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size())
      .architecture;
}

}  // namespace uvp::nn
