// SPDX-License-Identifier: Apache-2.0
// nn::load_safetensors / nn::save_safetensors: five PyTorch models (tests/fixtures/pytorch_interop/
// make_fixtures.py: Embedding with padding_idx, 2-layer LSTM and GRU, Linear, LayerNorm, Conv1d,
// MultiheadAttention) loaded into their uvp twins give torch's outputs, which also checks the gate
// layouts; save -> load is exact; strict, non-strict and renamed loads; every bad file raises a
// uvp::error naming the tensor and leaves the model unchanged.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <unistd.h>

#include "support/test_support.hpp"
#include "uvp/core/random.hpp"
#include "uvp/nn/activations.hpp"
#include "uvp/nn/any_model.hpp"
#include "uvp/nn/attention.hpp"
#include "uvp/nn/chain.hpp"
#include "uvp/nn/conv1d.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/gru.hpp"
#include "uvp/nn/layer_norm.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/nn/model_file.hpp"
#include "uvp/nn/pooling.hpp"
#include "uvp/nn/safetensors_model.hpp"

namespace {

namespace nn = uvp::nn;
using uvp::index;
using Arrays = std::map<std::string, std::vector<double>>;

std::string fixture(const std::string& name) { return uvp_test::fixture_path("pytorch_interop/" + name); }

// A file of this test in the temporary directory, removed when it goes out of scope.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& tag)
      : path((std::filesystem::temp_directory_path() /
              ("uvp_test_safetensors_model_" + std::to_string(::getpid()) + "_" + tag + ".safetensors"))
                 .string()) {}
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
};

// The uvp twins of the fixture models (random weights until loaded; rng seeds differ from torch's).
template <class T>
auto model_a(std::uint64_t seed = 1) {
  uvp::Rng rng(seed);
  nn::Chain m(nn::Embedding<T>(12, 4, rng, 0), nn::Lstm<T>(4, 5, rng, 2), nn::GlobalLastPool1d<T>(),
              nn::Dense<T>(5, 1, rng), nn::Sigmoid<T>());
  m.set_names({"embedding", "lstm", "pool", "head", "sigmoid"});
  return m;
}
template <class T>
auto model_b(std::uint64_t seed = 1) {
  uvp::Rng rng(seed);
  nn::Chain m(nn::Embedding<T>(9, 3, rng), nn::Gru<T>(3, 4, rng, 2), nn::GlobalLastPool1d<T>(), nn::Dense<T>(4, 2, rng));
  m.set_names({"embedding", "gru", "pool", "head"});
  return m;
}
template <class T>
auto model_c(std::uint64_t seed = 1) {
  uvp::Rng rng(seed);
  return nn::Chain(nn::Dense<T>(4, 6, rng), nn::LayerNorm<T>(6), nn::Dense<T>(6, 3, rng));  // "0", "1", "2"
}
template <class T>
auto model_d(std::uint64_t seed = 1) {
  uvp::Rng rng(seed);
  nn::Conv1dOptions o;
  o.stride = 2;
  o.padding = 1;
  nn::Chain m(nn::Conv1d<T>(3, 4, 3, rng, o), nn::Relu<T>(), nn::GlobalMeanPool1d<T>(), nn::Dense<T>(4, 2, rng));
  m.set_names({"conv", "relu", "pool", "head"});
  return m;
}
template <class T>
auto model_e(std::uint64_t seed = 1) {
  uvp::Rng rng(seed);
  nn::Chain m(nn::MultiHeadSelfAttention<T>(8, 2, rng), nn::GlobalMeanPool1d<T>(), nn::Dense<T>(8, 1, rng));
  m.set_names({"attn", "pool", "head"});
  return m;
}

const std::vector<std::pair<std::string, std::string>> rename_b = {
    {"encoder.emb.", "embedding."}, {"encoder.rnn.", "gru."}, {"out.", "head."}};

std::vector<index> as_index(const std::vector<double>& v) { return {v.begin(), v.end()}; }
template <class T>
uvp::Matrix<T> as_matrix(const std::vector<double>& v, index rows, index cols) {
  uvp::Matrix<T> m(rows, cols);
  for (index i = 0; i < rows * cols; ++i) m.data()[i] = T(v[static_cast<std::size_t>(i)]);
  return m;
}

// The model's output (row-major) on the inputs of <name>_io.txt, in eval mode.
template <class Model>
std::vector<double> run(Model& model, const Arrays& io, char name) {
  using T = typename Model::value_type;
  model.eval();
  typename Model::Context ctx;
  std::vector<double> out;
  const auto keep = [&out](const auto& y) {
    for (index r = 0; r < y.rows(); ++r)
      for (index c = 0; c < y.cols(); ++c) out.push_back(double(y(r, c)));
  };
  const auto& dims = io.at("dims");
  if constexpr (std::is_same_v<typename Model::input_type, nn::TokenBatch>) {
    const auto ids = as_index(io.at("ids")), lengths = as_index(io.at("lengths"));
    keep(model.forward(nn::TokenBatch(ids, index(dims[0]), index(dims[1]), lengths), ctx));
  } else if constexpr (std::is_same_v<typename Model::input_type, uvp::ConstMatrixView<T>>) {
    keep(model.forward(as_matrix<T>(io.at("X"), index(dims[0]), index(dims[1])), ctx));
  } else {
    const index B = index(dims[0]), S = index(dims[1]), C = index(dims[2]);
    const uvp::Matrix<T> X = as_matrix<T>(io.at("X"), B * S, C);
    std::vector<index> lengths;
    if (io.count("lengths")) lengths = as_index(io.at("lengths"));
    keep(model.forward(nn::SequenceBatch<T>(uvp::ConstMatrixView<T>(X.data(), B * S, C), B, S, lengths), ctx));
  }
  (void)name;
  return out;
}

template <class T>
double tol() {
  return std::is_same_v<T, float> ? 1e-6 : 1e-12;
}

template <class Model>
void check_outputs(Model& model, char name) {
  using T = typename Model::value_type;
  const Arrays io = uvp_test::read_arrays(fixture(std::string(1, name) + "_io.txt"));
  const std::vector<double> got = run(model, io, name), want = io.at("output");
  REQUIRE(got.size() == want.size());
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::abs(got[i] - want[i]) / std::max(1.0, std::abs(want[i])));
  INFO("model ", name, ": max error ", worst);
  CHECK(worst <= tol<T>());
}

// Every value of the model, tensor by tensor (alignment padding left out).
template <class Model>
std::vector<typename Model::value_type> values_of(const Model& model) {
  std::vector<typename Model::value_type> v;
  for (const auto& t : model.parameters().tensors()) {
    const auto s = model.parameters().values(t);
    v.insert(v.end(), s.begin(), s.end());
  }
  return v;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A safetensors file built by hand: tensors with their dtype name, shape and bytes; offsets follow
// each other unless `offsets` gives them (for files that lie).
struct RawTensor {
  std::string name, dtype;
  std::vector<std::int64_t> shape;
  std::string bytes;
  std::vector<std::uint64_t> offsets;  // {begin, end} or empty
};

std::string safetensors_bytes(const std::vector<RawTensor>& tensors, std::size_t data_size = std::string::npos) {
  std::string header = "{", data;
  for (const RawTensor& t : tensors) {
    std::uint64_t begin = data.size(), end = data.size() + t.bytes.size();
    if (!t.offsets.empty()) begin = t.offsets[0], end = t.offsets[1];
    header += (header.size() > 1 ? "," : "") + std::string("\"") + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
    for (std::size_t i = 0; i < t.shape.size(); ++i) header += (i ? "," : "") + std::to_string(t.shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
    if (t.offsets.empty()) data += t.bytes;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int k = 0; k < 8; ++k) out[static_cast<std::size_t>(k)] = char((std::uint64_t(header.size()) >> (8 * k)) & 0xFF);
  if (data_size != std::string::npos) data.resize(data_size, '\0');
  return out + header + data;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

// The model's tensors as RawTensors (F32 or F64, little-endian: the hosts we test on).
template <class Model>
std::vector<RawTensor> raw_tensors(const Model& model) {
  using T = typename Model::value_type;
  std::vector<RawTensor> out;
  for (const auto& t : model.parameters().tensors()) {
    const auto v = model.parameters().values(t);
    out.push_back({t.name, sizeof(T) == 4 ? "F32" : "F64", {t.shape.begin(), t.shape.end()},
                   std::string(reinterpret_cast<const char*>(v.data()), static_cast<std::size_t>(v.size()) * sizeof(T)),
                   {}});
  }
  return out;
}

RawTensor& find_raw(std::vector<RawTensor>& ts, const std::string& name) {
  for (auto& t : ts)
    if (t.name == name) return t;
  FAIL("no tensor " << name);
  return ts.front();
}

// Loading `bytes` into model raises a uvp::error whose message holds every one of `parts`, and
// leaves the model's values as they were.
template <class Model>
void check_refused(Model& model, const std::string& bytes, const std::vector<std::string>& parts,
                   const nn::SafetensorsLoadOptions& options = {}) {
  TempFile f("bad");
  write_bytes(f.path, bytes);
  const auto before = values_of(model);
  std::string message;
  try {
    nn::load_safetensors(f.path, model, options);
  } catch (const uvp::error& e) {
    message = dynamic_cast<const std::exception&>(e).what();
  }
  INFO("message: ", message);
  CHECK(!message.empty());
  for (const auto& p : parts) CHECK_MESSAGE(message.find(p) != std::string::npos, "lacks '" << p << "'");
  CHECK(same_bits(values_of(model), before));
}

}  // namespace

TEST_CASE_TEMPLATE("nn::load_safetensors: torch models give torch's outputs in their uvp twins", T, float, double) {
  SUBCASE("a: Embedding(padding_idx) -> 2-layer LSTM -> last step -> Linear -> sigmoid") {
    auto m = model_a<T>();
    const auto r = nn::load_safetensors(fixture("a.safetensors"), m);
    CHECK(r.loaded.size() == 11);
    CHECK(r.missing.empty());
    CHECK(r.unexpected.empty());
    check_outputs(m, 'a');
  }
  SUBCASE("b: Embedding -> 2-layer GRU -> last step -> Linear, renamed modules") {
    auto m = model_b<T>();
    nn::SafetensorsLoadOptions o;
    o.rename_prefix = rename_b;
    const auto r = nn::load_safetensors(fixture("b.safetensors"), m, o);
    CHECK(r.loaded.size() == 11);
    CHECK(r.loaded.front() == "embedding.weight");
    check_outputs(m, 'b');
  }
  SUBCASE("c: Linear -> LayerNorm -> Linear from an F64 file") {
    auto m = model_c<T>();
    CHECK(nn::load_safetensors(fixture("c.safetensors"), m).loaded.size() == 6);
    check_outputs(m, 'c');
  }
  SUBCASE("d: Conv1d(stride 2, padding 1) -> relu -> mean -> Linear") {
    auto m = model_d<T>();
    CHECK(nn::load_safetensors(fixture("d.safetensors"), m).loaded.size() == 4);
    check_outputs(m, 'd');
  }
  SUBCASE("e: MultiheadAttention with a key-padding mask -> masked mean -> Linear") {
    auto m = model_e<T>();
    CHECK(nn::load_safetensors(fixture("e.safetensors"), m).loaded.size() == 6);
    check_outputs(m, 'e');
  }
}

TEST_CASE("nn::load_safetensors: padding_idx row is loaded as stored and gets no gradient, as in torch") {
  auto m = model_a<double>(7);
  nn::load_safetensors(fixture("a.safetensors"), m);
  const auto& emb = m.get<0>();
  REQUIRE(emb.padding_idx() == 0);
  for (uvp::index j = 0; j < 4; ++j) CHECK(emb.weight()(0, j) == 0.0);
  // d sum(output) / d table, through the training path, against torch's (whose row 0 is 0).
  const Arrays io = uvp_test::read_arrays(fixture("a_io.txt"));
  const auto ids = as_index(io.at("ids")), lengths = as_index(io.at("lengths"));
  m.train();
  decltype(m)::Context ctx;
  const auto y = m.forward(nn::TokenBatch(ids, 3, 5, lengths), ctx);
  const uvp::Matrix<double> ones = uvp::Matrix<double>::Ones(y.rows(), y.cols());
  m.zero_grad();
  m.backward(ctx, ones);
  const auto& sg = emb.sparse_grad();
  const auto& want = io.at("grad_embedding.weight");
  std::vector<double> got(want.size(), 0.0);
  for (uvp::index k = 0; k < sg.size(); ++k) {
    CHECK(sg.rows[static_cast<std::size_t>(k)] != 0);  // the padding row is never touched
    for (uvp::index j = 0; j < 4; ++j) got[static_cast<std::size_t>(sg.rows[static_cast<std::size_t>(k)] * 4 + j)] = sg.row(k)[j];
  }
  CHECK(sg.size() > 0);
  for (std::size_t i = 0; i < want.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-10));
}

namespace {
// Loads <name>.safetensors into a twin, saves it, loads that into a twin of other random weights:
// the values are the same bits and a second save is the same bytes.
template <class Make>
void check_round_trip(Make make, char name, const nn::SafetensorsLoadOptions& options = {}) {
  auto loaded = make(1);
  auto fresh = make(2);
  using T = typename decltype(loaded)::value_type;
  const std::string tag = std::string(1, name) + (std::is_same_v<T, float> ? "_uvp_float" : "_uvp_double");
  nn::load_safetensors(fixture(std::string(1, name) + ".safetensors"), loaded, options);
  TempFile f(tag), g(tag + "_again");
  nn::save_safetensors(f.path, loaded, {{"format", "pt"}});
  REQUIRE(!same_bits(values_of(fresh), values_of(loaded)));
  const auto r = nn::load_safetensors(f.path, fresh);  // uvp's names: no rename
  CHECK(r.loaded.size() == loaded.parameters().tensors().size());
  CHECK(same_bits(values_of(fresh), values_of(loaded)));
  check_outputs(fresh, name);
  nn::save_safetensors(g.path, fresh, {{"format", "pt"}});
  CHECK(read_bytes(g.path) == read_bytes(f.path));
  // The check by hand that torch's load_state_dict(strict=True) takes these files (see the
  // script's --check-uvp-export).
  if (const char* dir = std::getenv("UVP_PYTORCH_EXPORT_DIR"))
    nn::save_safetensors(std::string(dir) + "/" + tag + ".safetensors", loaded, {{"format", "pt"}});
}
}  // namespace

TEST_CASE_TEMPLATE("nn::save_safetensors -> load_safetensors is exact", T, float, double) {
  check_round_trip([](std::uint64_t s) { return model_a<T>(s); }, 'a');
  nn::SafetensorsLoadOptions o;
  o.rename_prefix = rename_b;
  check_round_trip([](std::uint64_t s) { return model_b<T>(s); }, 'b', o);
  check_round_trip([](std::uint64_t s) { return model_c<T>(s); }, 'c');
  check_round_trip([](std::uint64_t s) { return model_d<T>(s); }, 'd');
  check_round_trip([](std::uint64_t s) { return model_e<T>(s); }, 'e');
}

TEST_CASE("nn::load_safetensors / save_safetensors work on an nn::AnyModel") {
  auto chain = model_e<double>();
  std::vector<std::uint8_t> bytes;
  nn::save(bytes, chain);
  auto any = nn::load_model<double>(bytes);  // the architecture, chain's random weights
  CHECK(nn::load_safetensors(fixture("e.safetensors"), any).loaded.size() == 6);
  nn::load_safetensors(fixture("e.safetensors"), chain);
  CHECK(same_bits(values_of(any), values_of(chain)));
  TempFile f("any");
  nn::save_safetensors(f.path, any);
  auto back = model_e<double>(9);
  nn::load_safetensors(f.path, back);
  check_outputs(back, 'e');
}

TEST_CASE("nn::load_safetensors: strict, non-strict and renamed loads") {
  SUBCASE("torch's names without rename_prefix: every tensor missing and unexpected, listed by name") {
    auto m = model_b<float>();
    check_refused(m, read_bytes(fixture("b.safetensors")),
                  {"uvp::nn::load_safetensors: '", "' does not fit the model: missing: embedding.weight, "
                   "gru.weight_ih_l0, gru.weight_hh_l0",
                   "head.bias; unexpected: encoder.emb.weight, encoder.rnn.weight_ih_l0", "out.bias"});
    nn::SafetensorsLoadOptions o;
    o.strict = false;
    const auto before = values_of(m);
    const auto r = nn::load_safetensors(fixture("b.safetensors"), m, o);
    CHECK(r.loaded.empty());
    CHECK(r.missing.size() == 11);
    CHECK(r.unexpected.size() == 11);
    CHECK(r.unexpected.front() == "encoder.emb.weight");
    CHECK(same_bits(values_of(m), before));
  }
  SUBCASE("a partial rename: the first matching prefix wins; the rest is listed under the renamed name") {
    auto m = model_b<float>();
    nn::SafetensorsLoadOptions o;
    o.rename_prefix = {{"encoder.", "x."}, {"encoder.rnn.", "gru."}, {"out.", "head."}};
    check_refused(m, read_bytes(fixture("b.safetensors")),
                  {"missing: embedding.weight, gru.weight_ih_l0", "unexpected: x.emb.weight (from encoder.emb.weight)"},
                  o);
    o.strict = false;
    const auto r = nn::load_safetensors(fixture("b.safetensors"), m, o);
    CHECK(r.loaded == std::vector<std::string>{"head.weight", "head.bias"});
    CHECK(r.unexpected.front() == "x.emb.weight");
    CHECK(r.missing.size() == 9);
  }
  SUBCASE("missing and unexpected tensors: errors when strict, reported otherwise") {
    auto source = model_c<double>(3);
    auto raw = raw_tensors(source);
    raw.erase(raw.begin() + 5);  // 2.bias
    raw.push_back({"2.weight_extra", "F64", {2}, std::string(16, '\0'), {}});
    auto m = model_c<double>();
    check_refused(m, safetensors_bytes(raw), {"does not fit the model: missing: 2.bias; unexpected: 2.weight_extra"});
    TempFile f("partial");
    write_bytes(f.path, safetensors_bytes(raw));
    nn::SafetensorsLoadOptions o;
    o.strict = false;
    const auto bias = values_of(m);
    const auto r = nn::load_safetensors(f.path, m, o);
    CHECK(r.missing == std::vector<std::string>{"2.bias"});
    CHECK(r.unexpected == std::vector<std::string>{"2.weight_extra"});
    CHECK(r.loaded.size() == 5);
    const auto& p = m.parameters();
    const auto b = p.values(p.tensor("2.bias"));
    CHECK(std::vector<double>(b.begin(), b.end()) == std::vector<double>(bias.end() - 3, bias.end()));  // kept
    const auto w = p.values(p.tensor("0.weight"));
    const auto& sp = source.parameters();
    CHECK(std::equal(w.begin(), w.end(), sp.values(sp.tensor("0.weight")).begin()));
  }
  SUBCASE("a long list is cut") {
    auto m = model_c<double>();
    auto raw = raw_tensors(m);
    for (int k = 0; k < 40; ++k) raw.push_back({"extra" + std::to_string(100 + k), "F64", {1}, std::string(8, '\0'), {}});
    check_refused(m, safetensors_bytes(raw), {"unexpected: extra100, extra101,", "extra115 ... and 24 more"});
  }
  SUBCASE("two file tensors renamed to one model tensor") {
    auto m = model_c<double>();
    auto raw = raw_tensors(m);
    raw.push_back(raw[0]);
    raw.back().name = "old.0.weight";
    nn::SafetensorsLoadOptions o;
    o.rename_prefix = {{"old.", ""}};
    check_refused(m, safetensors_bytes(raw), {"duplicate: 0.weight comes from both 0.weight and old.0.weight"}, o);
  }
}

TEST_CASE("nn::load_safetensors: bad files raise a uvp::error naming the tensor; the model is unchanged") {
  auto m = model_c<double>();
  const auto good = raw_tensors(model_c<double>(5));
  SUBCASE("wrong dtype") {
    auto raw = good;
    RawTensor& t = find_raw(raw, "0.bias");
    t.dtype = "I64";  // 6 values of 8 bytes: a consistent file, but not floats
    check_refused(m, safetensors_bytes(raw), {"dtype: 0.bias is I64 in the file (uvp reads F16, BF16, F32 and F64)"});
    nn::SafetensorsLoadOptions o;
    o.strict = false;
    check_refused(m, safetensors_bytes(raw), {"dtype: 0.bias is I64"}, o);
  }
  SUBCASE("missing tensor") {
    auto raw = good;
    raw.erase(raw.begin() + 2);
    check_refused(m, safetensors_bytes(raw), {"does not fit the model: missing: 1.weight"});
  }
  SUBCASE("transposed shape, also when not strict") {
    auto raw = good;
    find_raw(raw, "0.weight").shape = {4, 6};
    check_refused(m, safetensors_bytes(raw), {"shape: 0.weight is [4, 6] in the file, [6, 4] in the model"});
    nn::SafetensorsLoadOptions o;
    o.strict = false;
    check_refused(m, safetensors_bytes(raw), {"shape: 0.weight is [4, 6] in the file, [6, 4] in the model"}, o);
  }
  SUBCASE("every problem in one message") {
    auto raw = good;
    find_raw(raw, "0.weight").shape = {4, 6};
    find_raw(raw, "2.weight").shape = {18};
    raw.erase(raw.begin() + 5);
    raw.push_back({"2.weight_extra", "F64", {1}, std::string(8, '\0'), {}});
    check_refused(m, safetensors_bytes(raw),
                  {"does not fit the model: missing: 2.bias; unexpected: 2.weight_extra; shape: 0.weight is [4, 6] in "
                   "the file, [6, 4] in the model; shape: 2.weight is [18] in the file, [3, 6] in the model"});
  }
  SUBCASE("truncated data section") {
    const std::string bytes = safetensors_bytes(good);
    check_refused(m, bytes.substr(0, bytes.size() - 5), {"2.bias"});
  }
  SUBCASE("a header that points past the end") {
    auto raw = good;
    RawTensor& t = find_raw(raw, "2.bias");
    std::uint64_t data = 0;
    for (const auto& r : good) data += r.bytes.size();
    t.offsets = {data - 24, data + 800};
    check_refused(m, safetensors_bytes(raw, data), {"2.bias"});
  }
  SUBCASE("two tensors overlapping") {
    auto raw = good;
    std::uint64_t data = 0;
    for (const auto& r : good) data += r.bytes.size();
    raw[5].offsets = {data - 24 - 16, data - 16};  // 2.bias over the end of 2.weight
    raw.push_back({"pad", "F64", {2}, std::string(16, '\0'), {data - 16, data}});
    check_refused(m, safetensors_bytes(raw, data), {"2.bias"});
  }
  SUBCASE("a non-finite value") {
    auto raw = good;
    RawTensor& t = find_raw(raw, "1.bias");
    const double nan = std::nan("");
    std::memcpy(&t.bytes[8], &nan, 8);
    check_refused(m, safetensors_bytes(raw), {"1.bias"});
  }
  SUBCASE("not a file") {
    UVP_CHECK_THROWS_WITH_SUBSTR(nn::load_safetensors(std::filesystem::temp_directory_path().string(), m), uvp::io_error,
                                 "is a directory");
    UVP_CHECK_THROWS_WITH_SUBSTR(nn::load_safetensors("/nonexistent/m.safetensors", m), uvp::io_error,
                                 "m.safetensors");
  }
}

TEST_CASE("nn::load_safetensors: bidirectional torch RNNs, projections and BatchNorm buffers are named") {
  auto m = model_b<float>();
  std::vector<RawTensor> raw = raw_tensors(m);
  SUBCASE("_reverse tensors: an error even when not strict") {
    for (const auto& t : raw_tensors(m))
      if (t.name.rfind("gru.", 0) == 0) {
        raw.push_back(t);
        raw.back().name += "_reverse";
      }
    const std::vector<std::string> parts = {
        "bidirectional: gru.weight_ih_l0_reverse, gru.weight_hh_l0_reverse",
        "uvp's Lstm and Gru are unidirectional"};
    check_refused(m, safetensors_bytes(raw), parts);
    nn::SafetensorsLoadOptions o;
    o.strict = false;
    check_refused(m, safetensors_bytes(raw),
                  {"does not fit the model: bidirectional: gru.weight_ih_l0_reverse, gru.weight_hh_l0_reverse, "
                   "gru.bias_ih_l0_reverse, gru.bias_hh_l0_reverse, gru.weight_ih_l1_reverse, gru.weight_hh_l1_reverse, "
                   "gru.bias_ih_l1_reverse, gru.bias_hh_l1_reverse (tensors ending in _reverse are the second direction "
                   "of a bidirectional torch LSTM or GRU: uvp's Lstm and Gru are unidirectional)"},
                  o);
  }
  SUBCASE("BatchNorm's integer buffers") {
    raw.push_back({"bn.running_mean", "F32", {4}, std::string(16, '\0'), {}});
    raw.push_back({"bn.num_batches_tracked", "I64", {}, std::string(8, '\0'), {}});
    check_refused(m, safetensors_bytes(raw),
                  {"unexpected: bn.running_mean, bn.num_batches_tracked", "BatchNorm's num_batches_tracked"});
    TempFile f("bn");
    write_bytes(f.path, safetensors_bytes(raw));
    nn::SafetensorsLoadOptions o;
    o.strict = false;
    const auto r = nn::load_safetensors(f.path, m, o);
    CHECK(r.unexpected == std::vector<std::string>{"bn.running_mean", "bn.num_batches_tracked"});
    CHECK(r.loaded.size() == 11);
  }
  SUBCASE("an LSTM projection (proj_size)") {
    raw.push_back({"gru.weight_hr_l0", "F32", {1}, std::string(4, '\0'), {}});
    check_refused(m, safetensors_bytes(raw), {"unexpected: gru.weight_hr_l0", "proj_size"});
  }
}
