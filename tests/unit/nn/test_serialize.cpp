// SPDX-License-Identifier: Apache-2.0
// Model files: round trips (float, double, path / stream / bytes, a Dense), the byte layout, and
// every way a file can be wrong, each leaving the model's values bit-identical; atomic writes.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "support/test_support.hpp"
#include "uvp/core/random.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/serialize.hpp"

namespace fs = std::filesystem;

namespace {

// A block with tensors of rank 0 to 3, one of them empty.
template <class T>
struct Tiny : uvp::nn::Block<T> {
  Tiny(uvp::index in, uvp::index out, std::uint64_t seed) {
    this->add_tensor("weight", {out, in});
    this->add_tensor("bias", {out});
    this->add_tensor("kernel", {2, 1, 3});
    this->add_tensor("scale", {});
    this->add_tensor("unused", {2, 0});
    this->allocate_parameters();
    uvp::Rng rng(seed);
    for (const auto& t : this->tensors())  // the slots' alignment padding stays 0
      for (auto& v : this->values(t)) v = T(rng.normal());
  }
};

template <class T>
std::vector<unsigned char> snapshot(const uvp::nn::BlockList<T>& model) {
  std::vector<unsigned char> out;
  for (const auto& e : model.entries()) {
    const auto v = e.block->parameters().values();
    const auto* p = reinterpret_cast<const unsigned char*>(v.data());
    out.insert(out.end(), p, p + v.size() * uvp::index(sizeof(T)));
  }
  return out;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const fs::path& p, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

void put_u32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + std::size_t(i)] = std::uint8_t(v >> (8 * i));
}

/// Rewrites the trailing CRC-32 after an edit, so a test reaches the check behind the checksum.
void fix_crc(std::vector<std::uint8_t>& b) {
  put_u32(b, b.size() - 4, uvp::detail::crc32(b.data(), b.size() - 4));
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("uvp_test_serialize_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE("crc32 is zlib's CRC-32") {
  const char* s = "123456789";
  CHECK(uvp::detail::crc32(reinterpret_cast<const unsigned char*>(s), 9) == 0xCBF43926u);
  CHECK(uvp::detail::crc32(nullptr, 0) == 0u);
  // Slicing-by-8 agrees with the byte-wise loop on every length and alignment.
  std::vector<unsigned char> data(100);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<unsigned char>(i * 37 + 11);
  for (std::size_t off = 0; off < 8; ++off)
    for (std::size_t n = 0; off + n <= data.size(); n += 7) {
      std::uint32_t c = 0xFFFFFFFFu;
      for (std::size_t i = 0; i < n; ++i) c = uvp::detail::crc32_tables.t[0][(c ^ data[off + i]) & 0xFFu] ^ (c >> 8);
      CHECK(uvp::detail::crc32(data.data() + off, n) == ~c);
    }
}

TEST_CASE_TEMPLATE("save / load round-trips bit for bit through a file, a stream and bytes", T, float, double) {
  TempDir dir;
  Tiny<T> a(4, 3, 1), b(2, 5, 2);
  const auto model = uvp::nn::blocks<T>("enc", a, "head", b);
  const auto saved = snapshot(model);
  const std::string path = (dir.path / "model.uvp").string();
  uvp::nn::save(path, model);
  CHECK_FALSE(fs::exists(path + ".tmp"));

  // The layout of docs/nn/model_files.md.
  const std::string file = slurp(path);
  std::size_t expected = 24 + 4;
  for (const auto& e : model.entries())
    for (const auto& t : e.block->tensors())
      expected += 4 + e.name.size() + 1 + t.name.size() + 4 + 8 * t.shape.size() + std::size_t(t.numel()) * sizeof(T);
  CHECK(file.size() == expected);
  CHECK(file.compare(0, 8, "UVPMODEL") == 0);
  CHECK(file[8] == 1);
  CHECK(file[12] == (sizeof(T) == 4 ? 1 : 2));
  CHECK(file[16] == 10);  // tensor count
  CHECK(file.compare(24, 4, std::string("\x0a\0\0\0", 4)) == 0);  // strlen("enc.weight")
  CHECK(file.compare(28, 10, "enc.weight") == 0);

  Tiny<T> a2(4, 3, 3), b2(2, 5, 4);
  const auto fresh = uvp::nn::blocks<T>("enc", a2, "head", b2);
  CHECK(snapshot(fresh) != saved);
  uvp::nn::load(path, fresh);
  CHECK(snapshot(fresh) == saved);

  // Tensors are matched by name: the entries may come in another order.
  Tiny<T> a3(4, 3, 5), b3(2, 5, 6);
  uvp::nn::load(path, uvp::nn::blocks<T>("head", b3, "enc", a3));
  CHECK(snapshot(uvp::nn::blocks<T>("enc", a3, "head", b3)) == saved);

  std::stringstream stream;
  uvp::nn::save(stream, model);
  CHECK(stream.str() == file);
  Tiny<T> a4(4, 3, 7), b4(2, 5, 8);
  uvp::nn::load(stream, uvp::nn::blocks<T>("enc", a4, "head", b4));
  CHECK(snapshot(uvp::nn::blocks<T>("enc", a4, "head", b4)) == saved);

  std::vector<std::uint8_t> bytes;
  uvp::nn::save(bytes, model);
  CHECK(std::string(bytes.begin(), bytes.end()) == file);
  Tiny<T> a5(4, 3, 9), b5(2, 5, 10);
  uvp::nn::load(bytes, uvp::nn::blocks<T>("enc", a5, "head", b5));
  CHECK(snapshot(uvp::nn::blocks<T>("enc", a5, "head", b5)) == saved);

  // Saving again replaces the file and leaves no temporary.
  for (auto& v : a.values(a.tensor("weight"))) v = T(0.5);
  uvp::nn::save(path, model);
  CHECK(slurp(path) != file);
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE_TEMPLATE("a Dense round-trips", T, float, double) {
  uvp::Rng rng(42);
  uvp::nn::Dense<T> d(5, 3, rng), d2(5, 3, rng);
  std::vector<std::uint8_t> bytes;
  uvp::nn::save(bytes, uvp::nn::blocks<T>("fc", d));
  uvp::nn::load(bytes, uvp::nn::blocks<T>("fc", d2));
  CHECK(snapshot(uvp::nn::blocks<T>("fc", d2)) == snapshot(uvp::nn::blocks<T>("fc", d)));
  uvp::nn::Dense<T> nobias(5, 3, rng, false);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(bytes, uvp::nn::blocks<T>("fc", nobias)), uvp::format_error,
                               "has a tensor 'fc.bias' that the model lacks");
}

TEST_CASE("load refuses bad files with a clear error and leaves the model bit-identical") {
  TempDir dir;
  Tiny<float> a(4, 3, 1), b(2, 5, 2);
  const auto model = uvp::nn::blocks<float>("enc", a, "head", b);
  std::vector<std::uint8_t> good;
  uvp::nn::save(good, model);

  Tiny<float> ta(4, 3, 11), tb(2, 5, 12);
  const auto target = uvp::nn::blocks<float>("enc", ta, "head", tb);
  const auto before = snapshot(target);
  auto unchanged = [&] { CHECK(snapshot(target) == before); };

  SUBCASE("truncated at every cut point") {
    for (std::size_t cut : {std::size_t(0), std::size_t(5), std::size_t(8), std::size_t(11), std::size_t(16),
                            std::size_t(24), std::size_t(30), std::size_t(40), good.size() / 2, good.size() - 5,
                            good.size() - 4, good.size() - 1}) {
      CAPTURE(cut);
      const std::vector<std::uint8_t> cutv(good.begin(), good.begin() + std::ptrdiff_t(cut));
      UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(cutv, target), uvp::format_error, "is truncated");
      unchanged();
    }
    // Through a file too.
    const fs::path p = dir.path / "cut.uvp";
    spit(p, std::vector<std::uint8_t>(good.begin(), good.end() - 9));
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(p.string(), target), uvp::format_error,
                                 "uvp::nn::load: '" + p.string() + "' is truncated");
    unchanged();
  }

  SUBCASE("a flipped bit anywhere is caught") {
    for (std::size_t i = 0; i < good.size(); ++i) {
      CAPTURE(i);
      std::vector<std::uint8_t> bad = good;
      bad[i] ^= 0x10;
      CHECK_THROWS_AS(uvp::nn::load(bad, target), uvp::format_error);
      unchanged();
    }
    std::vector<std::uint8_t> bad = good;
    bad[good.size() - 20] ^= 0x01;  // a value of the last tensor
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(bad, target), uvp::format_error,
                                 "the byte buffer is corrupted: its CRC-32 is 0x");
    unchanged();
  }

  SUBCASE("wrong magic, version, scalar type; trailing bytes") {
    std::vector<std::uint8_t> bad = good;
    bad[0] = 'X';
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(bad, target), uvp::format_error,
                                 "is not a uvp model file (it does not start with \"UVPMODEL\")");
    bad = good;
    put_u32(bad, 8, 3);
    fix_crc(bad);
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(bad, target), uvp::format_error,
                                 "has format version 3; this build of uvp reads versions 1 and 2");
    bad = good;
    put_u32(bad, 12, 7);
    fix_crc(bad);
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(bad, target), uvp::format_error,
                                 "unknown scalar type code 7 (1 = float32, 2 = float64)");
    bad = good;
    bad.insert(bad.end() - 4, {1, 2, 3});
    fix_crc(bad);
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(bad, target), uvp::format_error,
                                 "has 3 unexpected bytes after the last tensor");
    unchanged();

    // A float file is not loaded into a double model, nor the reverse.
    Tiny<double> da(4, 3, 1), db(2, 5, 2);
    const auto dmodel = uvp::nn::blocks<double>("enc", da, "head", db);
    const auto dbefore = snapshot(dmodel);
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(good, dmodel), uvp::format_error,
                                 "holds float32 values but the model is float64 (uvp does not convert");
    CHECK(snapshot(dmodel) == dbefore);
    std::vector<std::uint8_t> dbytes;
    uvp::nn::save(dbytes, dmodel);
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(dbytes, target), uvp::format_error,
                                 "holds float64 values but the model is float32");
    unchanged();
  }

  SUBCASE("a model of another architecture") {
    Tiny<float> wide(6, 3, 1);  // enc.weight {3, 6} instead of {3, 4}
    Tiny<float> tb2(2, 5, 12);
    const auto wide_before = snapshot(uvp::nn::blocks<float>("enc", wide, "head", tb2));
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(good, uvp::nn::blocks<float>("enc", wide, "head", tb2)),
                                 uvp::shape_error,
                                 "tensor 'enc.weight' has shape [3, 4] in the byte buffer but [3, 6] in the model");
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(good, uvp::nn::blocks<float>("encoder", ta, "head", tb)),
                                 uvp::format_error,
                                 "has no tensor 'encoder.weight' (the model has 10 tensors, the file 10; is it a "
                                 "model of another architecture?)");
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(good, uvp::nn::blocks<float>("enc", ta)), uvp::format_error,
                                 "has a tensor 'head.weight' that the model lacks (the file has 10 tensors, the "
                                 "model 5");
    Tiny<float> extra(2, 2, 3);
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(good, uvp::nn::blocks<float>("enc", ta, "head", tb, "x", extra)),
                                 uvp::format_error, "has no tensor 'x.weight'");
    unchanged();
    CHECK(snapshot(uvp::nn::blocks<float>("enc", wide, "head", tb2)) == wide_before);
  }

  SUBCASE("missing file, unreadable stream") {
    const std::string missing = (dir.path / "nope.uvp").string();
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(missing, target), uvp::io_error,
                                 "uvp::nn::load: cannot open '" + missing + "'");
    std::istringstream empty;
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(empty, target), uvp::format_error, "the stream is truncated");
    unchanged();
  }
}

TEST_CASE("save is atomic: a failed write leaves the old file intact and no temporary") {
  TempDir dir;
  Tiny<double> a(3, 2, 1);
  const auto model = uvp::nn::blocks<double>("a", a);
  const fs::path path = dir.path / "model.uvp";
  uvp::nn::save(path.string(), model);
  const std::string old = slurp(path);
  for (auto& v : a.values(a.tensor("weight"))) v += 1;

  // A stale "model.uvp.tmp" (older uvp versions used that one name) is not in the way: each save
  // writes to a temporary of its own.
  fs::create_directories(dir.path / "model.uvp.tmp");
  uvp::nn::save(path.string(), model);
  CHECK(slurp(path) != old);
  CHECK(fs::is_directory(dir.path / "model.uvp.tmp"));
  fs::remove(dir.path / "model.uvp.tmp");

  // A directory that does not exist.
  const std::string nowhere = (dir.path / "missing" / "m.uvp").string();
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::save(nowhere, model), uvp::io_error,
                               "uvp::nn::save: cannot create a temporary file next to '" + nowhere + "'");
  CHECK_FALSE(fs::exists(dir.path / "missing"));

  // The target is a directory: the rename fails, the temporary is removed.
  fs::create_directories(dir.path / "adir");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::save((dir.path / "adir").string(), model), uvp::io_error,
                               "uvp::nn::save: cannot rename");
  CHECK(fs::is_directory(dir.path / "adir"));
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 2);  // no temporary

  // A stream that fails.
  std::ofstream closed;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::save(closed, model), uvp::io_error, "cannot write");
}

TEST_CASE("two tensors with one full name are refused") {
  Tiny<float> a(2, 2, 1), b(2, 2, 2);
  std::vector<std::uint8_t> bytes;
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::save(bytes, uvp::nn::blocks<float>("x", a, "x", b)), uvp::invalid_argument,
                               "two tensors of the model are named 'x.weight'");
  uvp::nn::save(bytes, uvp::nn::blocks<float>("x", a));
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(bytes, uvp::nn::blocks<float>("x", a, "x", b)), uvp::invalid_argument,
                               "two tensors of the model are named 'x.weight'");
}
