// SPDX-License-Identifier: Apache-2.0
// nn::load against hostile files: non-finite weights (refused by default, naming tensor and
// element; LoadOptions::allow_non_finite), paths that are not regular files, and tensor names with
// control bytes or megabytes of text, which messages escape and cut. A failed load never changes
// the model.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include "support/test_support.hpp"
#include "uvp/nn/serialize.hpp"

namespace fs = std::filesystem;

namespace {

// One tensor "weight" of shape [2, 3], values 1..6.
template <class T>
struct One : uvp::nn::Block<T> {
  One() {
    this->add_tensor("weight", {2, 3});
    this->allocate_parameters();
    T x = 1;
    for (auto& v : this->values(this->tensor("weight"))) v = x++;
  }
};

template <class T>
std::vector<unsigned char> snapshot(One<T>& b) {
  const auto v = b.values(b.tensor("weight"));
  const auto* p = reinterpret_cast<const unsigned char*>(v.data());
  return std::vector<unsigned char>(p, p + v.size() * uvp::index(sizeof(T)));
}

void fix_crc(std::vector<std::uint8_t>& b) {
  const std::uint32_t crc = uvp::detail::crc32(b.data(), b.size() - 4);
  for (int i = 0; i < 4; ++i) b[b.size() - 4 + std::size_t(i)] = std::uint8_t(crc >> (8 * i));
}

// The file of a model "a" = One<T>: 24 header bytes, name length, "a.weight", rank, 2 dims, values.
constexpr std::size_t first_value = 24 + 4 + 8 + 4 + 16;

template <class T>
void put_value(std::vector<std::uint8_t>& b, std::size_t element, T v) {
  unsigned char raw[sizeof(T)];
  std::memcpy(raw, &v, sizeof(T));
  if (!uvp::detail::host_is_little_endian())
    for (std::size_t i = 0; i < sizeof(T) / 2; ++i) std::swap(raw[i], raw[sizeof(T) - 1 - i]);
  std::memcpy(&b[first_value + element * sizeof(T)], raw, sizeof(T));
  fix_crc(b);
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("uvp_test_serialize_hostile_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE_TEMPLATE("non-finite weights are refused by default, naming tensor and element", T, float, double) {
  One<T> src;
  std::vector<std::uint8_t> bytes;
  uvp::nn::save(bytes, uvp::nn::blocks<T>("a", src));

  One<T> dst;
  for (auto& v : dst.values(dst.tensor("weight"))) v = T(-7);
  const auto model = uvp::nn::blocks<T>("a", dst);
  const auto before = snapshot(dst);

  const T nan = std::numeric_limits<T>::quiet_NaN(), inf = std::numeric_limits<T>::infinity();
  struct Case {
    T value;
    const char* text;
  };
  for (const Case c : {Case{nan, "nan"}, Case{-nan, "nan"}, Case{inf, "inf"}, Case{-inf, "-inf"}}) {
    CAPTURE(c.text);
    std::vector<std::uint8_t> bad = bytes;
    put_value(bad, 4, c.value);
    const std::string expected =
        "uvp::nn::load: the byte buffer: tensor 'a.weight' element 4 (of 6) is " + std::string(c.text) +
        "; non-finite weights are refused (uvp::nn::LoadOptions::allow_non_finite loads them anyway)";
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(bad, model), uvp::format_error, expected);
    CHECK(snapshot(dst) == before);  // byte-identical

    std::istringstream stream(std::string(bad.begin(), bad.end()));
    UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(stream, model), uvp::format_error, "tensor 'a.weight' element 4");
    CHECK(snapshot(dst) == before);

    // The explicit option loads them as they are.
    uvp::nn::LoadOptions allow;
    allow.allow_non_finite = true;
    uvp::nn::load(bad, model, allow);
    const auto v = dst.values(dst.tensor("weight"));
    CHECK(v[0] == T(1));
    CHECK(v[5] == T(6));
    if (std::isnan(c.value))
      CHECK(std::isnan(v[4]));
    else
      CHECK(v[4] == c.value);
    for (auto& x : dst.values(dst.tensor("weight"))) x = T(-7);
  }

  // The first non-finite value is the one named; subnormals and the largest finite value are fine.
  std::vector<std::uint8_t> two = bytes;
  put_value(two, 5, nan);
  put_value(two, 1, -inf);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(two, model), uvp::format_error, "element 1 (of 6) is -inf");
  std::vector<std::uint8_t> edge = bytes;
  put_value(edge, 0, std::numeric_limits<T>::max());
  put_value(edge, 1, -std::numeric_limits<T>::denorm_min());
  uvp::nn::load(edge, model);
  CHECK(dst.values(dst.tensor("weight"))[0] == std::numeric_limits<T>::max());

  // From a path, too.
  TempDir dir;
  const std::string path = (dir.path / "nan.uvp").string();
  std::vector<std::uint8_t> bad = bytes;
  put_value(bad, 2, nan);
  uvp::write_file_atomic(path, std::string(bad.begin(), bad.end()));
  const auto kept = snapshot(dst);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(path, model), uvp::format_error,
                               "uvp::nn::load: '" + path + "': tensor 'a.weight' element 2 (of 6) is nan");
  CHECK(snapshot(dst) == kept);
}

TEST_CASE("nn::load of a directory, a FIFO or a device: io_error naming the path, model unchanged") {
  TempDir dir;
  One<float> dst;
  const auto model = uvp::nn::blocks<float>("a", dst);
  const auto before = snapshot(dst);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(dir.path.string(), model), uvp::io_error,
                               "uvp::nn::load: '" + dir.path.string() + "' is a directory, expected a regular file");
  const std::string fifo = (dir.path / "pipe.uvp").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(fifo, model), uvp::io_error, "' is a FIFO, expected a regular file");
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(std::string("/dev/null"), model), uvp::io_error,
                               "uvp::nn::load: '/dev/null' is a character device");
  CHECK(snapshot(dst) == before);
}

TEST_CASE("tensor names from the file are escaped and cut in messages") {
  One<float> src;
  std::vector<std::uint8_t> good;
  uvp::nn::save(good, uvp::nn::blocks<float>("a", src));
  One<float> dst;
  const auto model = uvp::nn::blocks<float>("a", dst);
  const auto before = snapshot(dst);

  // The good file plus a second tensor of rank 0 named `name` (which the model lacks).
  auto with_name = [&](const std::string& name) {
    std::vector<std::uint8_t> b(good.begin(), good.begin() + 16);
    for (int i = 0; i < 8; ++i) b.push_back(std::uint8_t(i == 0 ? 2 : 0));  // tensor count
    b.insert(b.end(), good.begin() + 24, good.end() - 4);
    for (int i = 0; i < 4; ++i) b.push_back(std::uint8_t(name.size() >> (8 * i)));
    b.insert(b.end(), name.begin(), name.end());
    b.insert(b.end(), 4 + 4 + 4, 0);  // rank 0, the value 0.0f, the CRC
    fix_crc(b);
    return b;
  };
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::nn::load(with_name(std::string("a.w\0\n\x1b[2J\xff", 10)), model),
                               uvp::format_error,
                               "the byte buffer has a tensor 'a.w\\x00\\x0a\\x1b[2J\\xff' that the model lacks");
  try {
    uvp::nn::load(with_name(std::string(3000000, 'n')), model);
    FAIL("no exception");
  } catch (const uvp::format_error& e) {
    const std::string msg = e.what();
    CHECK(msg.size() < 400);
    CHECK(msg.find("'nnnnnnnnnn") != std::string::npos);
    CHECK(msg.find("... (3000000 bytes)'") != std::string::npos);
  }
  // A huge name in a truncated file: the "needs N more" message stays short too.
  std::vector<std::uint8_t> cut = with_name(std::string(3000000, 'n'));
  cut.resize(cut.size() - 30);
  try {
    uvp::nn::load(cut, model);
    FAIL("no exception");
  } catch (const uvp::format_error& e) {
    CHECK(std::string(e.what()).size() < 400);
  }
  CHECK(snapshot(dst) == before);
}
