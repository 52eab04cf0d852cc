// SPDX-License-Identifier: Apache-2.0
// Model files that carry their architecture (format version 2): nn::save of a Chain, nn::load into
// a Chain with the architecture check, nn::load_model rebuilding a type-erased AnyModel from the
// file alone (library blocks and a user's registered ones), and hostile version 2 files.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <unistd.h>

#include "support/test_support.hpp"
#include "uvp/core/random.hpp"
#include "uvp/nn/any_model.hpp"
#include "uvp/nn/chain.hpp"
#include "uvp/nn/model_file.hpp"
#include "uvp/nn/residual.hpp"
#include "uvp/nn/serialize.hpp"
#include "uvp/nn/sum.hpp"

namespace {

using uvp::ConstMatrixRef;
using uvp::ConstMatrixView;
using uvp::Matrix;
using uvp::index;

// A user's block: y = x * scale + shift, per feature (tensors "scale", "shift"), with spec /
// from_spec and the optional parameter count of a spec.
template <class T>
class FeatureAffine : public uvp::nn::Block<T> {
 public:
  using value_type = T;
  using input_type = ConstMatrixView<T>;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = "FeatureAffine";

  class Context : public uvp::nn::ContextBase {
   private:
    friend class FeatureAffine;
    Matrix<T> x_, y_, dx_;
  };

  FeatureAffine(index width, uvp::Rng& rng) : width_(width) {
    this->add_tensor("scale", {width});
    this->add_tensor("shift", {width});
    this->allocate_parameters();
    for (const auto& t : this->tensors())
      for (T& v : this->values(t)) v = T(rng.uniform(-1.0, 1.0));
  }

  index input_width() const { return width_; }
  index output_width(index in) const {
    if (in >= 0 && in != width_) uvp::detail::raise<uvp::shape_error>("FeatureAffine: ", in, " features, expected ", width_);
    return width_;
  }
  ConstMatrixView<T> forward(ConstMatrixRef<T> x, Context& ctx) const {
    uvp::detail::nn_begin_forward(ctx, {{"width", width_}});
    uvp::detail::check_cols("FeatureAffine::forward", "x", x.cols(), width_);
    ctx.x_ = x;
    ctx.y_.resize(x.rows(), width_);
    const auto s = this->values(this->tensors()[0]);
    const auto b = this->values(this->tensors()[1]);
    for (index r = 0; r < x.rows(); ++r)
      for (index j = 0; j < width_; ++j) ctx.y_(r, j) = x(r, j) * s[j] + b[j];
    uvp::detail::nn_end_forward(ctx);
    return {ctx.y_.data(), ctx.y_.rows(), ctx.y_.cols()};
  }
  ConstMatrixView<T> backward(Context& ctx, ConstMatrixRef<T> dy) {
    uvp::detail::nn_require_forward("FeatureAffine::backward", ctx, "FeatureAffine");
    auto gs = this->grads(this->tensors()[0]);
    auto gb = this->grads(this->tensors()[1]);
    const auto s = this->values(this->tensors()[0]);
    ctx.dx_.resize(dy.rows(), width_);
    for (index r = 0; r < dy.rows(); ++r)
      for (index j = 0; j < width_; ++j) {
        gs[j] += dy(r, j) * ctx.x_(r, j);
        gb[j] += dy(r, j);
        ctx.dx_(r, j) = dy(r, j) * s[j];
      }
    return {ctx.dx_.data(), ctx.dx_.rows(), ctx.dx_.cols()};
  }
  uvp::nn::BlockSpec spec() const { return uvp::nn::BlockSpec(kind).set("width", double(width_)); }
  static FeatureAffine from_spec(const uvp::nn::BlockSpec& s) {
    uvp::Rng rng(0);
    return FeatureAffine(s.get_index("width", 1, index(1) << 31), rng);
  }
  static index spec_parameter_count(const uvp::nn::BlockSpec& s) { return 2 * s.get_index("width", 0, index(1) << 40); }

 private:
  index width_;
};

// A user's parameterless block, softsign y = x / (1 + |x|); Tag 1 makes a kind never registered
// ("Mystery"), Tag 2 one that clashes with a library kind ("Dense").
template <class T, int Tag = 0>
class Softsign : public uvp::nn::Block<T> {
 public:
  using value_type = T;
  using input_type = ConstMatrixView<T>;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = Tag == 0 ? "Softsign" : Tag == 1 ? "Mystery" : "Dense";
  Softsign() {}  // (not an aggregate: Block's constructor is protected)
  class Context : public uvp::nn::ContextBase {
   private:
    friend class Softsign;
    Matrix<T> x_, y_, dx_;
  };
  index input_width() const { return -1; }
  index output_width(index in) const { return in; }
  ConstMatrixView<T> forward(ConstMatrixRef<T> x, Context& ctx) const {
    uvp::detail::nn_begin_forward(ctx, {});
    ctx.x_ = x;
    ctx.y_ = x.array() / (1 + x.array().abs());
    uvp::detail::nn_end_forward(ctx);
    return {ctx.y_.data(), ctx.y_.rows(), ctx.y_.cols()};
  }
  ConstMatrixView<T> backward(Context& ctx, ConstMatrixRef<T> dy) {
    uvp::detail::nn_require_forward("Softsign::backward", ctx, "Softsign");
    ctx.dx_ = dy.array() / (1 + ctx.x_.array().abs()).square();
    return {ctx.dx_.data(), ctx.dx_.rows(), ctx.dx_.cols()};
  }
  uvp::nn::BlockSpec spec() const { return uvp::nn::BlockSpec(kind); }
  static Softsign from_spec(const uvp::nn::BlockSpec&) { return Softsign(); }
};

// A block without spec() (the identity): a chain holding it is saved as version 1.
template <class T>
class NoSpec : public uvp::nn::Block<T> {
 public:
  using value_type = T;
  using input_type = ConstMatrixView<T>;
  using output_type = ConstMatrixView<T>;
  static constexpr const char* kind = "NoSpec";
  class Context : public uvp::nn::ContextBase {
   private:
    friend class NoSpec;
    Matrix<T> y_;
  };
  NoSpec() {}
  index input_width() const { return -1; }
  index output_width(index in) const { return in; }
  ConstMatrixView<T> forward(ConstMatrixRef<T> x, Context& ctx) const {
    uvp::detail::nn_begin_forward(ctx, {});
    ctx.y_ = x;
    uvp::detail::nn_end_forward(ctx);
    return {ctx.y_.data(), ctx.y_.rows(), ctx.y_.cols()};
  }
  ConstMatrixView<T> backward(Context& ctx, ConstMatrixRef<T> dy) {
    uvp::detail::nn_require_forward("NoSpec::backward", ctx, "NoSpec");
    ctx.y_ = dy;
    return {ctx.y_.data(), ctx.y_.rows(), ctx.y_.cols()};
  }
};
static_assert(!uvp::detail::has_block_spec<NoSpec<double>>::value);

Matrix<double> random_matrix(index r, index c, uvp::Rng& rng) {
  Matrix<double> m(r, c);
  for (index i = 0; i < m.size(); ++i) m.data()[i] = rng.uniform(-1.5, 1.5);
  return m;
}

template <class T>
std::vector<T> values_of(const uvp::nn::ModelParameters<T>& p) {
  return std::vector<T>(p.values().begin(), p.values().end());
}

void register_user_blocks() {
  uvp::nn::register_block<FeatureAffine<double>>();
  uvp::nn::register_block<Softsign<double>>();
  uvp::nn::register_block<FeatureAffine<float>>();
}

// The matrix model of the tests: library and user blocks, a Residual and a Sum.
auto make_matrix_chain(std::uint64_t seed) {
  uvp::Rng rng(seed);
  uvp::nn::Chain model(uvp::nn::Dense<double>(4, 3, rng), FeatureAffine<double>(3, rng), Softsign<double>(),
                       uvp::nn::Residual(FeatureAffine<double>(3, rng)),
                       uvp::nn::Sum(FeatureAffine<double>(3, rng), Softsign<double>()), uvp::nn::Dense<double>(3, 2, rng));
  model.set_names({"in", "affine", "act", "res", "sum", "head"});
  return model;
}

// A little-endian writer for hand-made (hostile) version 2 files.
struct Bytes {
  std::vector<std::uint8_t> b;
  Bytes& u32(std::uint64_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(std::uint8_t(v >> (8 * i)));
    return *this;
  }
  Bytes& u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) b.push_back(std::uint8_t(v >> (8 * i)));
    return *this;
  }
  Bytes& str(const std::string& s) {
    u32(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& f64(double v) {
    std::uint64_t bits;
    std::memcpy(&bits, &v, 8);
    return u64(bits);
  }
  Bytes& raw(const std::vector<std::uint8_t>& r) {
    b.insert(b.end(), r.begin(), r.end());
    return *this;
  }
};

// magic, version 2, float64, the architecture section, then `tail` (tensor count and tensors),
// then a correct CRC.
std::vector<std::uint8_t> v2_file(const std::vector<std::uint8_t>& arch, const std::vector<std::uint8_t>& tail,
                                  std::uint64_t arch_size = std::numeric_limits<std::uint64_t>::max()) {
  Bytes f;
  for (char c : std::string("UVPMODEL")) f.b.push_back(std::uint8_t(c));
  f.u32(2).u32(2).u64(arch_size == std::numeric_limits<std::uint64_t>::max() ? arch.size() : arch_size).raw(arch).raw(tail);
  const std::uint32_t crc = uvp::detail::crc32(f.b.data(), f.b.size());
  f.u32(crc);
  return f.b;
}

std::vector<std::uint8_t> no_tensors() { return Bytes().u64(0).b; }

}  // namespace

TEST_CASE("a Chain saved as version 2 is rebuilt by load_model: same outputs, gradients and names, bit for bit") {
  register_user_blocks();
  auto chain = make_matrix_chain(5);
  std::vector<std::uint8_t> bytes;
  uvp::nn::save(bytes, chain);
  REQUIRE(bytes.size() > 16);
  CHECK(bytes[8] == 2);  // format version 2
  CHECK(uvp::nn::model_file_version == 2);

  auto any = uvp::nn::load_model<double>(bytes);
  CHECK(any.architecture() == chain.architecture());
  CHECK(any.names() == chain.names());
  CHECK(any.input_kind() == uvp::nn::BatchKind::rows);
  CHECK(any.output_kind() == uvp::nn::BatchKind::rows);
  CHECK(any.input_width() == 4);
  CHECK(any.output_width() == 2);
  REQUIRE(any.parameters().tensors().size() == chain.parameters().tensors().size());
  for (std::size_t i = 0; i < any.parameters().tensors().size(); ++i) {
    CHECK(any.parameters().tensors()[i].name == chain.parameters().tensors()[i].name);
    CHECK(any.parameters().tensors()[i].offset == chain.parameters().tensors()[i].offset);
  }
  CHECK(values_of(any.parameters()) == values_of(chain.parameters()));  // one buffer, same layout

  uvp::Rng rng(9);
  const Matrix<double> x = random_matrix(7, 4, rng);
  decltype(chain)::Context cc;
  uvp::nn::AnyModel<double>::Context ac;
  const Matrix<double> yc = chain.forward(x, cc);
  const Matrix<double> ya = any.forward(x, ac);
  CHECK(ya == yc);
  // A strided input (a block of a wider matrix) gives the same.
  Matrix<double> wide = Matrix<double>::Zero(7, 9);
  wide.leftCols(4) = x;
  CHECK(Matrix<double>(any.forward(wide.leftCols(4), ac)) == yc);

  // Fine-tuning: the erased backward gives the chain's gradients and input gradient.
  const Matrix<double> w = random_matrix(7, 2, rng);
  chain.zero_grad();
  any.zero_grad();
  chain.forward(x, cc);
  any.forward(x, ac);
  const Matrix<double> dxc = chain.backward(cc, w);
  const Matrix<double> dxa = any.backward(ac, w);
  CHECK(dxa == dxc);
  CHECK(std::vector<double>(any.parameters().grads().begin(), any.parameters().grads().end()) ==
        std::vector<double>(chain.parameters().grads().begin(), chain.parameters().grads().end()));

  // Saved again, the AnyModel gives the same bytes.
  std::vector<std::uint8_t> again;
  uvp::nn::save(again, any);
  CHECK(again == bytes);

  // Misuse.
  uvp::nn::AnyModel<double>::Context fresh;
  CHECK_THROWS_AS(any.backward(fresh, w), uvp::invalid_argument);
  UVP_CHECK_THROWS_WITH_SUBSTR(any.forward(uvp::nn::TokenBatch(), fresh), uvp::invalid_argument,
                               "uvp::nn::AnyModel::forward: the model reads rows (a matrix), got a TokenBatch");
  const Matrix<double> bad = random_matrix(2, 5, rng);
  CHECK_THROWS_AS(any.forward(bad, fresh), uvp::shape_error);
  CHECK_THROWS_AS(any.backward(fresh, w), uvp::invalid_argument);  // the failed forward left none
}

TEST_CASE("nn::load into a Chain checks the architecture and names the first difference") {
  register_user_blocks();
  auto chain = make_matrix_chain(5);
  std::vector<std::uint8_t> bytes;
  uvp::nn::save(bytes, chain);

  SUBCASE("the same architecture loads") {
    auto other = make_matrix_chain(6);
    CHECK(values_of(other.parameters()) != values_of(chain.parameters()));
    uvp::nn::load(bytes, other);
    CHECK(values_of(other.parameters()) == values_of(chain.parameters()));
  }
  SUBCASE("another argument, kind, name or block count") {
    uvp::Rng rng(1);
    uvp::nn::Chain wider(uvp::nn::Dense<double>(4, 5, rng), FeatureAffine<double>(5, rng));
    const auto before = values_of(wider.parameters());
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(bytes, wider), uvp::format_error,
                                 "uvp::nn::load: the byte buffer holds a model of another architecture: block 0: file "
                                 "names it 'in' (Dense), model '0' (Dense)");
    wider.set_names({"in", "affine"});
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(bytes, wider), uvp::format_error,
                                 "block 0 'in': file has Dense out_features = 3, model has 5");
    CHECK(values_of(wider.parameters()) == before);

    uvp::nn::Chain kinds(uvp::nn::Dense<double>(4, 3, rng), Softsign<double>());
    kinds.set_names({"in", "affine"});
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(bytes, kinds), uvp::format_error,
                                 "block 1 'affine': file has FeatureAffine, model has Softsign");
    uvp::nn::Chain nobias(uvp::nn::Dense<double>(4, 3, rng, false));
    nobias.set_names({"in"});
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(bytes, nobias), uvp::format_error,
                                 "block 0 'in': file has Dense bias = 1, model has 0");
    uvp::nn::Chain shorter(uvp::nn::Dense<double>(4, 3, rng));
    shorter.set_names({"in"});
    std::vector<std::uint8_t> one;
    uvp::nn::save(one, shorter);
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(one, chain), uvp::format_error, "file has 1 blocks, model has 6");
  }
  SUBCASE("a child of a composite") {
    auto other = make_matrix_chain(6);
    uvp::Rng rng(2);
    uvp::nn::Chain sum_first(uvp::nn::Dense<double>(4, 3, rng), FeatureAffine<double>(3, rng), Softsign<double>(),
                             uvp::nn::Residual(FeatureAffine<double>(3, rng)),
                             uvp::nn::Sum(Softsign<double>(), FeatureAffine<double>(3, rng)),
                             uvp::nn::Dense<double>(3, 2, rng));
    sum_first.set_names({"in", "affine", "act", "res", "sum", "head"});
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(bytes, sum_first), uvp::format_error,
                                 "block 4 'sum' child 0: file has FeatureAffine, model has Softsign");
  }
}

TEST_CASE("version 1 files: a BlockList's and a Chain's without specs; load reads them, load_model refuses them") {
  register_user_blocks();
  auto chain = make_matrix_chain(5);
  std::vector<std::uint8_t> v1;
  uvp::nn::save(v1, chain.blocks());  // a BlockList has no architecture
  CHECK(v1[8] == 1);
  auto other = make_matrix_chain(6);
  uvp::nn::load(v1, other);  // no architecture to check: tensors by name
  CHECK(values_of(other.parameters()) == values_of(chain.parameters()));
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load_model<double>(v1), uvp::format_error,
                               "the byte buffer is a version 1 model file (weights only, no architecture)");
  // A v2 file's weights load into a BlockList too.
  std::vector<std::uint8_t> v2;
  uvp::nn::save(v2, chain);
  auto third = make_matrix_chain(7);
  uvp::nn::load(v2, third.blocks());
  CHECK(values_of(third.parameters()) == values_of(chain.parameters()));

  uvp::Rng rng(3);
  uvp::nn::Chain nospec(uvp::nn::Dense<double>(4, 3, rng), NoSpec<double>{});
  std::vector<std::uint8_t> bytes;
  uvp::nn::save(bytes, nospec);
  CHECK(bytes[8] == 1);
  uvp::nn::Chain nospec2(uvp::nn::Dense<double>(4, 3, rng), NoSpec<double>{});
  uvp::nn::load(bytes, nospec2);
  CHECK(values_of(nospec2.parameters()) == values_of(nospec.parameters()));

  // Through a file, with read_architecture.
  const std::string path = (std::filesystem::temp_directory_path() / ("uvp_test_model_file_" + std::to_string(::getpid()) + ".uvp")).string();
  uvp::nn::save(path, chain);
  CHECK(uvp::nn::read_architecture(path) == chain.architecture());
  auto from_file = uvp::nn::load_model<double>(path);
  CHECK(values_of(from_file.parameters()) == values_of(chain.parameters()));
  uvp::nn::save(path, chain.blocks());
  CHECK(uvp::nn::read_architecture(path).empty());
  std::filesystem::remove(path);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load_model<double>(path), uvp::io_error, "uvp::nn::load_model: cannot open");
}

TEST_CASE("load_model: unknown kinds, another scalar type, registration rules") {
  register_user_blocks();
  uvp::Rng rng(4);
  uvp::nn::Chain model(uvp::nn::Dense<double>(4, 3, rng), Softsign<double, 1>{});
  model.set_names({"in", "mystery"});
  std::vector<std::uint8_t> bytes;
  uvp::nn::save(bytes, model);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load_model<double>(bytes), uvp::format_error,
                               "uvp::nn::load_model: the byte buffer: block 1 'mystery' has the unknown block kind "
                               "'Mystery' (register it with uvp::nn::register_block<YourBlock>() before loading)");
  // In a composite's child, too.
  uvp::nn::Chain nested{uvp::nn::Residual(Softsign<double, 1>{})};
  uvp::nn::save(bytes, nested);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load_model<double>(bytes), uvp::format_error,
                               "block 0 '0' child 0 has the unknown block kind 'Mystery'");
  // Registered for double only: a float model with the kind is unknown to load_model<float>.
  uvp::nn::Chain floats{Softsign<float>{}};
  std::vector<std::uint8_t> fbytes;
  uvp::nn::save(fbytes, floats);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load_model<float>(fbytes), uvp::format_error, "unknown block kind 'Softsign'");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load_model<double>(fbytes), uvp::format_error,
                               "holds float32 values but load_model<float64> was called");

  // Registering again is a no-op; another type under a known kind is refused.
  uvp::nn::register_block<FeatureAffine<double>>();
  UVP_CHECK_THROWS_WITH_SUBSTR((uvp::nn::register_block<Softsign<double, 2>>()), uvp::invalid_argument,
                               "uvp::nn::register_block: kind 'Dense' is already registered for another block type");
  const auto kinds = uvp::nn::registered_block_kinds<double>();
  for (const char* k : {"Dense", "Relu", "Dropout", "LayerNorm", "Sequential", "Embedding", "Residual", "Sum",
                        "FeatureAffine", "GlobalLastPool1d", "MultiHeadSelfAttention"})
    CHECK_MESSAGE(std::find(kinds.begin(), kinds.end(), k) != kinds.end(), k);
}

TEST_CASE("hostile version 2 files: truncation, flipped bits, lying counts and sizes, deep nesting") {
  register_user_blocks();
  auto chain = make_matrix_chain(5);
  std::vector<std::uint8_t> good;
  uvp::nn::save(good, chain);
  auto target = make_matrix_chain(6);
  const auto before = values_of(target.parameters());

  SUBCASE("truncated anywhere, a flipped bit anywhere: format_error, the model unchanged") {
    for (std::size_t cut = 0; cut < good.size(); cut += 7) {
      CAPTURE(cut);
      const std::vector<std::uint8_t> c(good.begin(), good.begin() + std::ptrdiff_t(cut));
      CHECK_THROWS_AS(uvp::nn::load_model<double>(c), uvp::format_error);
      CHECK_THROWS_AS(uvp::nn::load(c, target), uvp::format_error);
    }
    for (std::size_t i = 0; i < good.size(); ++i) {
      CAPTURE(i);
      std::vector<std::uint8_t> bad = good;
      bad[i] ^= 0x08;
      CHECK_THROWS_AS(uvp::nn::load_model<double>(bad), uvp::format_error);
      CHECK_THROWS_AS(uvp::nn::load(bad, target), uvp::format_error);
    }
    CHECK(values_of(target.parameters()) == before);
    std::vector<std::uint8_t> bad = good;
    bad[66] ^= 0x01;  // in_features' value of block 0: the structure still parses, the checksum does not
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load_model<double>(bad), uvp::format_error, "CRC-32");
  }

  SUBCASE("counts and sizes that do not fit the file are refused before anything is allocated") {
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load_model<double>(v2_file(Bytes().u32(0xFFFFFFFFu).b, no_tensors())),
                                 uvp::format_error, "the block count 4294967295 does not fit in the 0 bytes left");
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load_model<double>(v2_file(Bytes().u32(0).b, no_tensors())),
                                 uvp::format_error, "the architecture lists no blocks");
    UVP_CHECK_THROWS_WITH_SUBSTR(
        uvp::nn::load_model<double>(v2_file(Bytes().u32(1).str("a").str("Dense").u32(0xFFFFFFFFu).u32(0).b, no_tensors())),
        uvp::format_error, "block 0 'a' (Dense) has 4294967295 arguments: more than 256");
    UVP_CHECK_THROWS_WITH_SUBSTR(
        uvp::nn::load_model<double>(v2_file(Bytes().u32(1).str("a").str("Sum").u32(0).u32(0x7FFFFFFFu).b, no_tensors())),
        uvp::format_error, "has 2147483647 children, which do not fit");
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load_model<double>(v2_file(Bytes().u32(1).u32(0xFFFFFFF0u).u64(0).u64(0).b, no_tensors())),
                                 uvp::format_error, "block 0's name is 4294967280 bytes long, at most 1024");
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load_model<double>(v2_file(Bytes().u32(1).b, no_tensors(), 1ull << 62)),
                                 uvp::format_error, "is truncated");
    // A size the file does not hold values for: refused before Dense allocates 2^30 x 2^30 weights.
    Bytes huge;
    huge.u32(1).str("fc").str("Dense").u32(3).str("in_features").f64(1 << 30).str("out_features").f64(1 << 30);
    huge.str("bias").f64(1).u32(0);
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load_model<double>(v2_file(huge.b, no_tensors())), uvp::format_error,
                                 "block 0 'fc' (Dense): the blocks up to this one hold at least 1152921505680588800 "
                                 "parameters, but the file holds 0 values");
    // A user's block bounded by its spec_parameter_count, one nested in library composites too.
    Bytes user;
    user.u32(1).str("r").str("Residual").u32(0).u32(1).str("FeatureAffine").u32(1).str("width").f64(1e12).u32(0);
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load_model<double>(v2_file(user.b, no_tensors())), uvp::format_error,
                                 "block 0 'r' (Residual): the blocks up to this one hold at least 2e+12 parameters");
    // A non-finite argument.
    Bytes nan;
    nan.u32(1).str("d").str("Dropout").u32(1).str("p").f64(std::numeric_limits<double>::quiet_NaN()).u32(0);
    CHECK_THROWS_AS(uvp::nn::load_model<double>(v2_file(nan.b, no_tensors())), uvp::format_error);
  }

  SUBCASE("nesting deeper than 16 levels is refused without recursing further") {
    Bytes deep;
    deep.u32(1).str("deep");
    for (int i = 0; i < 1000; ++i) deep.str("Residual").u32(0).u32(1);
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load_model<double>(v2_file(deep.b, no_tensors())), uvp::format_error,
                                 "nests specs deeper than 16 levels");
    // save refuses what load would.
    uvp::nn::BlockSpec s("Relu");
    for (int i = 0; i < 20; ++i) {
      uvp::nn::BlockSpec r("Residual");
      r.children.push_back(s);
      s = r;
    }
    CHECK_THROWS_AS(uvp::detail::encode_architecture("test", {{"x", s}}), uvp::invalid_argument);
  }

  SUBCASE("names and kinds from the file are escaped in messages") {
    Bytes ctl;
    ctl.u32(1).str("a\x01\xff").str(std::string(1000, 'K') + "\n").u32(0).u32(0);
    try {
      uvp::nn::load_model<double>(v2_file(ctl.b, no_tensors()));
      FAIL("no exception");
    } catch (const uvp::format_error& e) {
      const std::string m = e.what();
      CHECK(m.find("'a\\x01\\xff'") != std::string::npos);
      CHECK(m.find('\n') == std::string::npos);
      CHECK(m.size() < 600);
    }
  }
}

TEST_CASE("AnyModel forward from 4 threads, one context each, is bit-identical to serial") {
  register_user_blocks();
  auto chain = make_matrix_chain(8);
  std::vector<std::uint8_t> bytes;
  uvp::nn::save(bytes, chain);
  const auto any = uvp::nn::load_model<double>(bytes);
  uvp::Rng rng(10);
  std::vector<Matrix<double>> inputs, serial;
  for (int i = 0; i < 8; ++i) inputs.push_back(random_matrix(50 + i, 4, rng));
  {
    uvp::nn::AnyModel<double>::Context ctx;
    for (const auto& x : inputs) serial.push_back(any.forward(x, ctx));
  }
  std::vector<std::vector<Matrix<double>>> out(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      uvp::nn::AnyModel<double>::Context ctx;
      for (int rep = 0; rep < 3; ++rep)
        for (const auto& x : inputs) out[std::size_t(t)].push_back(any.forward(x, ctx));
    });
  for (auto& th : threads) th.join();
  for (const auto& o : out) {
    REQUIRE(o.size() == 3 * serial.size());
    for (std::size_t k = 0; k < o.size(); ++k) CHECK(o[k] == serial[k % serial.size()]);
  }
}

namespace {

std::vector<index> token_ids(index batch, index steps, index vocab, uvp::Rng& rng) {
  std::vector<index> ids(std::size_t(batch * steps));
  for (auto& id : ids) id = 1 + index(rng.uniform(0.0, double(vocab - 1) - 1e-9));
  return ids;
}

// A chain saved and rebuilt: eval-mode and training-mode outputs on tokens, bit for bit.
template <class Chain>
void check_token_model(Chain& chain, index vocab) {
  std::vector<std::uint8_t> bytes;
  uvp::nn::save(bytes, chain);
  auto any = uvp::nn::load_model<float>(bytes);
  CHECK(any.input_kind() == uvp::nn::BatchKind::tokens);
  CHECK(any.architecture() == chain.architecture());
  uvp::Rng rng(12);
  const index batch = 5, steps = 6;
  const auto ids = token_ids(batch, steps, vocab, rng);
  const std::vector<index> lengths = {6, 1, 3, 6, 2};
  const uvp::nn::TokenBatch x(uvp::Span<const index>(ids.data(), index(ids.size())), batch, steps,
                              uvp::Span<const index>(lengths.data(), index(lengths.size())));
  typename Chain::Context cc;
  uvp::nn::AnyModel<float>::Context ac;
  for (bool training : {true, false}) {
    CAPTURE(training);
    chain.train(training);
    any.train(training);
    const Matrix<float> yc = chain.forward(x, cc);
    const Matrix<float> ya = any.forward(x, ac);
    CHECK(ya.rows() == batch);
    CHECK(ya == yc);
  }
  // Fine-tuning a loaded model: the same gradients as the chain's.
  chain.train(true);
  any.train(true);
  chain.zero_grad();
  any.zero_grad();
  const Matrix<float> d = Matrix<float>::Ones(batch, any.output_width());
  chain.forward(x, cc);
  chain.backward(cc, d);
  any.forward(x, ac);
  const auto dx = any.backward(ac, d);
  CHECK(dx.size() == 0);  // token ids have no gradient
  CHECK(std::vector<float>(any.parameters().grads().begin(), any.parameters().grads().end()) ==
        std::vector<float>(chain.parameters().grads().begin(), chain.parameters().grads().end()));
}

template <class L>
void check_recurrent_model() {
  uvp::Rng rng(13);
  uvp::nn::Chain chain(uvp::nn::Embedding<float>(20, 8, rng, 0), L(8, 6, rng), uvp::nn::GlobalLastPool1d<float>(),
                       uvp::nn::Dense<float>(6, 1, rng));
  chain.set_names({"embedding", "lstm", "pool", "head"});
  check_token_model(chain, 20);
  // The eval-mode inference path refuses a backward, as the chain's.
  std::vector<std::uint8_t> bytes;
  uvp::nn::save(bytes, chain);
  auto any = uvp::nn::load_model<float>(bytes);
  any.eval();
  const std::vector<index> ids = {1, 2, 3, 4};
  uvp::nn::AnyModel<float>::Context ctx;
  any.forward(uvp::nn::TokenBatch(uvp::Span<const index>(ids.data(), 4), 2, 2), ctx);
  static_assert(uvp::detail::has_forward_last<L>::value &&
                uvp::detail::selects_last_step<uvp::nn::GlobalLastPool1d<float>>::value);
  UVP_CHECK_THROWS_WITH_SUBSTR(any.backward(ctx, Matrix<float>::Ones(2, 1)), uvp::invalid_argument,
                               "through the inference path");
}

}  // namespace

TEST_CASE("library models: Embedding -> Lstm -> GlobalLastPool1d -> Dense, and attention with Residual, Sum, LayerNorm") {
  check_recurrent_model<uvp::nn::Lstm<float>>();
  check_recurrent_model<uvp::nn::Gru<float>>();

  uvp::Rng rng(14);
  uvp::nn::Chain attention(
      uvp::nn::Sum(uvp::nn::Embedding<float>(30, 8, rng, 0), uvp::nn::PositionEmbedding<float>(6, 8, rng)),
      uvp::nn::Residual(uvp::nn::MultiHeadSelfAttention<float>(8, 2, rng)), uvp::nn::LayerNorm<float>(8),
      uvp::nn::Dropout<float>(0.25), uvp::nn::GlobalMeanPool1d<float>(), uvp::nn::Dense<float>(8, 3, rng),
      uvp::nn::Relu<float>(), uvp::nn::Dense<float>(3, 1, rng));
  check_token_model(attention, 30);

  // A Sequential inside a chain: its own children in the file.
  uvp::nn::Sequential<double> mlp;
  uvp::Rng r2(15);
  mlp.add(uvp::nn::Dense<double>(4, 5, r2));
  mlp.add(uvp::nn::Tanh<double>());
  mlp.add(uvp::nn::Dense<double>(5, 2, r2));
  uvp::nn::Chain seq(std::move(mlp), uvp::nn::Softmax<double>());
  std::vector<std::uint8_t> bytes;
  uvp::nn::save(bytes, seq);
  auto any = uvp::nn::load_model<double>(bytes);
  CHECK(any.architecture()[0].second.children.size() == 3);
  const Matrix<double> x = random_matrix(3, 4, r2);
  decltype(seq)::Context sc;
  uvp::nn::AnyModel<double>::Context ac;
  CHECK(Matrix<double>(any.forward(x, ac)) == Matrix<double>(seq.forward(x, sc)));
}

TEST_CASE("a version 2 file written by Python from the documented layout (PyTorch's weights) loads and predicts") {
  const std::string path = uvp_test::fixture_path("nn_model_file/torch_mlp.uvp");
  const std::vector<double> io = uvp_test::read_numbers(uvp_test::fixture_path("nn_model_file/torch_mlp_io.txt"));
  REQUIRE(io.size() == 5 * 4 + 5 * 2);
  Matrix<double> x(5, 4), expected(5, 2);
  std::copy(io.begin(), io.begin() + 20, x.data());
  std::copy(io.begin() + 20, io.end(), expected.data());

  auto any = uvp::nn::load_model<double>(path);
  CHECK(any.architecture()[1].second.kind == "Relu");
  uvp::nn::AnyModel<double>::Context ctx;
  const Matrix<double> y = any.forward(x, ctx);
  CHECK((y - expected).cwiseAbs().maxCoeff() < 1e-12);

  // The same file into a chain of that architecture (checked), and into one of another.
  uvp::Rng rng(1);
  uvp::nn::Chain chain(uvp::nn::Dense<double>(4, 3, rng), uvp::nn::Relu<double>(), uvp::nn::Dense<double>(3, 2, rng));
  uvp::nn::load(path, chain);
  decltype(chain)::Context cc;
  CHECK(Matrix<double>(chain.forward(x, cc)) == y);
  uvp::nn::Chain tanh(uvp::nn::Dense<double>(4, 3, rng), uvp::nn::Tanh<double>(), uvp::nn::Dense<double>(3, 2, rng));
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(path, tanh), uvp::format_error,
                               "holds a model of another architecture: block 1 '1': file has Relu, model has Tanh");
}
