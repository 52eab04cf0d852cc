// SPDX-License-Identifier: Apache-2.0
// uvp::io::SafetensorsFile and write_safetensors: F16/BF16/F32/F64 values against files written by
// tests/fixtures/safetensors/make_fixtures.py (PyTorch's bit patterns, the format's byte layout),
// the writer's bytes against the script's, round trips, and every kind of hostile file, each
// raising the right uvp::error with a message that names the tensor and the problem.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "support/temp_dir.hpp"
#include "support/test_support.hpp"
#include "uvp/io/safetensors.hpp"

namespace fs = std::filesystem;
using uvp::io::SafetensorsFile;
using uvp::io::write_safetensors;

namespace {

using uvp_test::TempDir;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void put_raw(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(std::uint64_t n) {
  std::string s;
  for (int b = 0; b < 8; ++b) s.push_back(static_cast<char>((n >> (8 * b)) & 0xFFu));
  return s;
}

/// A file: the length of `header`, `header`, `data`.
std::string file_bytes(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

std::string f32_bytes(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  if (!v.empty()) std::memcpy(&s[0], v.data(), s.size());  // the test machine is little-endian, as the format
  return s;
}

/// "name numel" / values lines (make_fixtures.py), parsed with strtod: subnormals included.
std::map<std::string, std::vector<double>> read_expected(const std::string& path) {
  std::istringstream in(slurp(path));
  std::map<std::string, std::vector<double>> out;
  std::string name;
  std::size_t n = 0;
  while (in >> name >> n) {
    std::vector<double> v(n);
    for (auto& x : v) {
      std::string tok;
      in >> tok;
      x = std::strtod(tok.c_str(), nullptr);
    }
    out[name] = v;
  }
  return out;
}

template <class T>
std::vector<T> read_all(const SafetensorsFile& f, const std::string& name) {
  const auto* e = f.find(name);
  REQUIRE_MESSAGE(e != nullptr, "no tensor " << name);
  std::vector<T> v(static_cast<std::size_t>(e->numel()));
  f.read<T>(*e, v);
  return v;
}

template <class T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

}  // namespace

TEST_CASE("SafetensorsFile reads F16, BF16, F32 and F64 exactly as PyTorch wrote them") {
  const SafetensorsFile f(uvp_test::fixture_path("safetensors/dtypes.safetensors"));
  const auto expected = read_expected(uvp_test::fixture_path("safetensors/dtypes_expected.txt"));
  REQUIRE(expected.size() == 7);
  for (const auto& kv : expected) {  // (no structured bindings: clang 14 cannot capture them in CHECKs)
    const std::string& name = kv.first;
    const std::vector<double>& values = kv.second;
    CAPTURE(name);
    const auto d = read_all<double>(f, name);
    REQUIRE(d.size() == values.size());
    for (std::size_t i = 0; i < d.size(); ++i)
      CHECK_MESSAGE(same_bits(d[i], values[i]), name << "[" << i << "] = " << d[i] << ", expected " << values[i]);
    if (name == "double_big") continue;
    const auto fl = read_all<float>(f, name);
    for (std::size_t i = 0; i < fl.size(); ++i)
      CHECK_MESSAGE(same_bits(fl[i], static_cast<float>(values[i])), name << "[" << i << "] = " << fl[i]);
  }
  // The bit patterns that matter, spelled out: f16 subnormal and maximum, negative zero.
  const auto half = read_all<float>(f, "half");
  CHECK(half[2] == std::ldexp(1.0f, -24));
  CHECK(half[5] == 65504.0f);
  CHECK((half[1] == 0.0f && std::signbit(half[1])));
  CHECK(read_all<double>(f, "double")[4] == std::numeric_limits<double>::denorm_min());

  // Header facts: shapes, dtypes, order by offset, metadata with \u escapes decoded to UTF-8.
  std::vector<std::string> order;
  for (const auto& e : f.tensors()) order.push_back(e.name);
  CHECK(order == std::vector<std::string>{"double", "double_big", "ints", "empty", "scalar", "single", "brain", "half", "flags"});
  CHECK(f.find("half")->shape == std::vector<std::int64_t>{3, 4});
  CHECK(f.find("half")->dtype == uvp::io::SafetensorsDtype::f16);
  CHECK(f.find("brain")->dtype == uvp::io::SafetensorsDtype::bf16);
  CHECK(f.find("ints")->dtype == uvp::io::SafetensorsDtype::other);
  CHECK(f.find("ints")->dtype_name == "I64");
  CHECK(f.find("scalar")->shape.empty());
  CHECK(f.find("scalar")->numel() == 1);
  CHECK(f.find("empty")->numel() == 0);
  CHECK(f.find("empty")->begin == f.find("empty")->end);
  CHECK(f.find("nope") == nullptr);
  CHECK(f.find("") == nullptr);
  CHECK(f.metadata().at("format") == "pt");
  CHECK(f.metadata().at("note") == "caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80");

  // What cannot be converted is refused naming the tensor.
  std::vector<float> out3(3), out2(2);
  UVP_CHECK_THROWS_WITH_SUBSTR(f.read<float>(*f.find("ints"), out3), uvp::format_error,
                               "tensor 'ints' has dtype I64, which cannot be read as float");
  UVP_CHECK_THROWS_WITH_SUBSTR(f.read<float>(*f.find("flags"), out2), uvp::format_error,
                               "tensor 'flags' has dtype BOOL, which cannot be read as float");
  UVP_CHECK_THROWS_WITH_SUBSTR(f.read<float>(*f.find("double_big"), out2), uvp::format_error,
                               "tensor 'double_big' element 0 (of 2) = 1e+300 is outside float's range");
  UVP_CHECK_THROWS_WITH_SUBSTR(f.read<float>(*f.find("single"), out3), uvp::shape_error,
                               "tensor 'single': out has size 3, expected 6");
  uvp::io::SafetensorsEntry forged = *f.find("single");
  forged.end += 4;
  std::vector<float> out7(7);
  UVP_CHECK_THROWS_WITH_SUBSTR(f.read<float>(forged, out7), uvp::invalid_argument, "is not an entry of this file");
}

TEST_CASE("SafetensorsFile reads any valid header layout: blanks, key order, escapes, unknown fields") {
  const SafetensorsFile f(uvp_test::fixture_path("safetensors/pretty.safetensors"));
  CHECK(f.metadata().empty());
  REQUIRE(f.tensors().size() == 2);
  CHECK(f.tensors()[0].name == "b");
  const std::string odd = "emb\xc3\xa9" "d.\xf0\x9f\x98\x80 \"q\"/\\";
  CHECK(read_all<float>(f, odd) == std::vector<float>{1.25f, -0.5f});
  CHECK(read_all<double>(f, "b") == std::vector<double>{2, 3, 4});
  CHECK(f.find("b")->shape == std::vector<std::int64_t>{1, 3});
}

TEST_CASE("write_safetensors writes the reference layout byte for byte") {
  TempDir dir("st_writer");
  // Given in another order than the file's (sorted by name).
  const std::vector<float> w = {0.5f, -1.25f, 3.0f, 1e-3f, std::ldexp(1.0f, -20), -7.0f}, b = {0.25f, -0.125f, 9.5f};
  const std::vector<float> s = {1.5f}, x = {1.0f};
  write_safetensors<float>(dir.file("a.safetensors"),
                           {{"scale", {}, s}, {"fc.weight", {2, 3}, w}, {"\xc3\xa9\t\"x\"", {1}, x}, {"fc.bias", {3}, b}},
                           {{"format", "pt"}});
  CHECK(slurp(dir.file("a.safetensors")) == slurp(uvp_test::fixture_path("safetensors/writer_f32.safetensors")));

  const std::vector<double> wd = {0.5, -1.25, 3.0, 1e-3, std::ldexp(1.0, -20), -7.0}, bd = {0.25, -0.125, 9.5};
  const std::vector<double> sd = {1.5}, xd = {1.0};
  write_safetensors<double>(dir.file("b.safetensors"),
                            {{"fc.bias", {3}, bd}, {"\xc3\xa9\t\"x\"", {1}, xd}, {"fc.weight", {2, 3}, wd}, {"scale", {}, sd}},
                            {{"format", "pt"}});
  CHECK(slurp(dir.file("b.safetensors")) == slurp(uvp_test::fixture_path("safetensors/writer_f64.safetensors")));
  // The header is padded to a multiple of 8, so the data section starts 8-aligned.
  const std::string bytes = slurp(dir.file("b.safetensors"));
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
}

TEST_CASE("write_safetensors and SafetensorsFile round-trip float and double bit for bit") {
  TempDir dir("st_round");
  auto check = [&](auto zero) {
    using T = decltype(zero);
    const T lim = std::numeric_limits<T>::max(), tiny = std::numeric_limits<T>::denorm_min();
    const std::vector<T> a = {T(0.1), -T(0), lim, -lim, tiny, T(-3.25), T(1) / T(3), T(12345.678)};
    const std::vector<T> empty;
    const std::string path = dir.file("r.safetensors");
    const std::map<std::string, std::string> meta = {{"k\n\x01\"\\", "v\xe2\x98\x83"}, {"format", "pt"}};
    write_safetensors<T>(path, {{"z.a", {2, 2, 2}, a}, {"y.empty", {0, 4}, empty}}, meta);
    const SafetensorsFile f(path);
    CHECK(f.metadata() == meta);
    CHECK(f.find("z.a")->dtype == (sizeof(T) == 4 ? uvp::io::SafetensorsDtype::f32 : uvp::io::SafetensorsDtype::f64));
    CHECK(f.find("z.a")->shape == std::vector<std::int64_t>{2, 2, 2});
    CHECK(f.find("y.empty")->shape == std::vector<std::int64_t>{0, 4});
    const auto back = read_all<T>(f, "z.a");
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(same_bits(back[i], a[i]));
    CHECK(read_all<T>(f, "y.empty").empty());
    CHECK(f.path() == path);
  };
  check(0.0f);
  check(0.0);
  // No tensors at all: "{}" padded, an empty data section.
  write_safetensors<float>(dir.file("none.safetensors"), {});
  const SafetensorsFile none(dir.file("none.safetensors"));
  CHECK(none.tensors().empty());
  CHECK(slurp(dir.file("none.safetensors")) == le64(8) + "{}      ");
}

TEST_CASE("write_safetensors refuses bad tensors before writing anything") {
  TempDir dir("st_write_bad");
  const std::string path = dir.file("w.safetensors");
  put_raw(path, "old");
  const std::vector<float> v = {1, 2, 3}, nan = {1, std::nanf(""), 3}, inf = {1, 2, -INFINITY};
  using Refs = std::vector<uvp::io::SafetensorsTensorRef<float>>;
  UVP_CHECK_THROWS_WITH_SUBSTR(write_safetensors<float>(path, Refs{{"", {3}, v}}), uvp::invalid_argument,
                               "uvp::io::write_safetensors: tensor 0 has an empty name");
  UVP_CHECK_THROWS_WITH_SUBSTR(write_safetensors<float>(path, Refs{{"a", {3}, v}, {"b", {3}, v}, {"a", {3}, v}}),
                               uvp::invalid_argument, "tensor name 'a' appears twice (tensors 0 and 2)");
  UVP_CHECK_THROWS_WITH_SUBSTR(write_safetensors<float>(path, Refs{{"__metadata__", {3}, v}}), uvp::invalid_argument,
                               "the name __metadata__ is reserved");
  UVP_CHECK_THROWS_WITH_SUBSTR(write_safetensors<float>(path, Refs{{"w", {-1, -3}, v}}), uvp::invalid_argument,
                               "tensor 0 'w': shape has a negative dimension (-1)");
  UVP_CHECK_THROWS_WITH_SUBSTR(write_safetensors<float>(path, Refs{{"w", {2, 2}, v}}), uvp::shape_error,
                               "tensor 0 'w': data has size 3, expected 4 (the product of shape [2, 2])");
  UVP_CHECK_THROWS_WITH_SUBSTR(write_safetensors<float>(path, Refs{{"ok", {3}, v}, {"w", {3}, nan}}),
                               uvp::invalid_argument, "tensor 1 'w': element 1 (of 3) is nan");
  UVP_CHECK_THROWS_WITH_SUBSTR(write_safetensors<float>(path, Refs{{"w", {3}, inf}}), uvp::invalid_argument,
                               "element 2 (of 3) is -inf; non-finite values cannot be written");
  UVP_CHECK_THROWS_WITH_SUBSTR(write_safetensors<float>(path, Refs{{"w\xff", {3}, v}}), uvp::invalid_argument,
                               "tensor 0 'w\\xff': the name is not valid UTF-8");
  UVP_CHECK_THROWS_WITH_SUBSTR(write_safetensors<float>(path, Refs{{"w", {3}, v}}, {{"k", "\xc0\x80"}}),
                               uvp::invalid_argument, "metadata 'k' is not valid UTF-8");
  CHECK(slurp(path) == "old");
  // A directory that does not exist: write_file_atomic's io_error, naming the function.
  UVP_CHECK_THROWS_WITH_SUBSTR(write_safetensors<float>(dir.file("no/such/x.safetensors"), Refs{{"w", {3}, v}}),
                               uvp::io_error, "uvp::io::write_safetensors: cannot create a temporary file");
}

TEST_CASE("SafetensorsFile refuses what is not a safetensors file") {
  TempDir dir("st_files");
  const std::string p = dir.file("m.safetensors");
  const std::string where = "uvp::io::SafetensorsFile: '" + p + "': ";
  UVP_CHECK_THROWS_WITH_SUBSTR(SafetensorsFile(dir.path.string()), uvp::io_error, "' is a directory, expected a regular file");
  UVP_CHECK_THROWS_WITH_SUBSTR(SafetensorsFile(p + ".missing"), uvp::io_error, "cannot open '" + p + ".missing'");
  UVP_CHECK_THROWS_WITH_SUBSTR(SafetensorsFile("/dev/null"), uvp::io_error, "is a character device");
  put_raw(p, "");
  UVP_CHECK_THROWS_WITH_SUBSTR(SafetensorsFile(p), uvp::format_error, where + "the file is empty");
  put_raw(p, "{}\n");
  UVP_CHECK_THROWS_WITH_SUBSTR(SafetensorsFile(p), uvp::format_error, "the file has 3 bytes, fewer than the 8");
  put_raw(p, le64(~std::uint64_t(0)) + "{}");
  UVP_CHECK_THROWS_WITH_SUBSTR(SafetensorsFile(p), uvp::format_error,
                               "header length 18446744073709551615 is larger than the limit of 100000000 bytes");
  put_raw(p, le64(100000001) + "{}");
  UVP_CHECK_THROWS_WITH_SUBSTR(SafetensorsFile(p), uvp::format_error, "header length 100000001 is larger than the limit");
  put_raw(p, le64(200) + "{}      ");
  UVP_CHECK_THROWS_WITH_SUBSTR(SafetensorsFile(p), uvp::format_error,
                               "header length 200 runs past the end of the file (16 bytes)");
  put_raw(p, le64(0));
  UVP_CHECK_THROWS_WITH_SUBSTR(SafetensorsFile(p), uvp::format_error, "the header does not start with '{' (it is empty)");
  put_raw(p, file_bytes("PK\x03\x04", ""));
  UVP_CHECK_THROWS_WITH_SUBSTR(SafetensorsFile(p), uvp::format_error, "the header does not start with '{' (it starts with 'PK\\x03\\x04')");
  // Valid: blanks after the object, an empty header object.
  put_raw(p, file_bytes("{} \n\t\r", ""));
  CHECK(SafetensorsFile(p).tensors().empty());
}

TEST_CASE("SafetensorsFile refuses hostile headers, naming the tensor and the problem") {
  TempDir dir("st_hostile");
  const std::string p = dir.file("m.safetensors");
  const std::string where = "uvp::io::SafetensorsFile: '" + p + "': ";
  auto refuses = [&](const std::string& header, const std::string& data, const std::string& message) {
    CAPTURE(header);
    put_raw(p, file_bytes(header, data));
    UVP_CHECK_THROWS_WITH_SUBSTR(SafetensorsFile(p), uvp::format_error, message);
  };
  const std::string d12(12, '\0');
  // Offsets and sizes.
  refuses(R"({"lstm.weight_ih_l0":{"dtype":"F32","shape":[1024],"data_offsets":[0,4096]}})", std::string(2048, '\0'),
          where + "tensor 'lstm.weight_ih_l0': data_offsets [0, 4096] point past the end of the data section (2048 bytes)");
  refuses(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", d12, "tensor 'w': data_offsets [8, 4] end before they begin");
  refuses(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0'),
          "tensor 'w': data_offsets [0, 8] span 8 bytes, but shape and dtype need 12 (3 x F32)");
  refuses(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", d12,
          "tensor 'w': shape has more than 2^63 - 1 elements");
  refuses(R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,4]}})", d12,
          "tensor 'w': 4611686018427387904 elements of F32 overflow a 64-bit byte count");
  refuses(R"({"w":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,4]}})", d12,
          "tensor 'w': shape dimension 9223372036854775808 is larger than 2^63 - 1");
  refuses(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551616]}})", d12,
          "tensor 'w': data_offsets[1] does not fit in 64 bits");
  refuses(R"({"w":{"dtype":"F4","shape":[3],"data_offsets":[0,1]}})", d12, "3 elements of F4 do not fill whole bytes");
  refuses(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", d12,
          where + "tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]");
  refuses(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", d12,
          "tensor 'b': data_offsets [8, 12] leave a gap of 4 bytes after tensor 'a' of the data section");
  refuses(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", d12, "leave a gap of 8 bytes at the start of the data section");
  refuses(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", d12,
          "the tensors cover 4 bytes of the data section, but it has 12 (8 bytes after the last tensor belong to none)");
  refuses(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", d12,
          where + "tensor 'a' appears twice");
  // Entries.
  refuses(R"({"w":{"dtype":"F32","dtype":"F32","shape":[3],"data_offsets":[0,12]}})", d12, "tensor 'w': \"dtype\" appears twice");
  refuses(R"({"w":{"dtype":"F32","shape":[3]}})", d12, "tensor 'w': the entry has no \"data_offsets\"");
  refuses(R"({"w":{"dtype":"F128","shape":[3],"data_offsets":[0,12]}})", d12, "tensor 'w': unknown dtype 'F128'");
  refuses(R"({"w":{"dtype":32,"shape":[3],"data_offsets":[0,12]}})", d12, "tensor 'w': dtype is not a string");
  refuses(R"({"w":{"dtype":"F32","shape":[-3],"data_offsets":[0,12]}})", d12, "tensor 'w': a shape dimension is negative");
  refuses(R"({"w":{"dtype":"F32","shape":[3.0],"data_offsets":[0,12]}})", d12, "tensor 'w': a shape dimension is not an integer");
  refuses(R"({"w":{"dtype":"F32","shape":[03],"data_offsets":[0,12]}})", d12, "a shape dimension has a leading zero");
  refuses(R"({"w":{"dtype":"F32","shape":3,"data_offsets":[0,12]}})", d12, "tensor 'w': shape is not an array");
  refuses(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12,16]}})", d12, "expected ']' (data_offsets has two elements), found ','");
  refuses(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0]}})", d12, "expected ',' (data_offsets has two elements)");
  refuses(R"({"w":[1,2]})", d12, "tensor 'w': the entry is not an object");
  refuses(R"({"":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})", d12, "a tensor has an empty name");
  std::string rank65 = "[";
  for (int i = 0; i < 65; ++i) rank65 += i ? ",1" : "1";
  refuses(R"({"w":{"dtype":"F32","shape":)" + rank65 + R"(],"data_offsets":[0,4]}})", d12, "shape has more than 64 dimensions");
  refuses(R"({"w":{"x":)" + std::string(70, '[') + std::string(70, ']') + "}}", d12, "values nested more than 64 deep");
  // Metadata.
  refuses(R"({"__metadata__":{"n":1}})", "", "__metadata__: the value of 'n' is not a string");
  refuses(R"({"__metadata__":{"a":"1","a":"2"}})", "", "__metadata__: key 'a' appears twice");
  refuses(R"({"__metadata__":{},"__metadata__":{}})", "", "__metadata__ appears twice");
  refuses(R"({"__metadata__":[]})", "", "__metadata__ is not an object");
  put_raw(p, file_bytes(R"({"__metadata__":null})", ""));
  CHECK(SafetensorsFile(p).metadata().empty());
  // JSON itself.
  refuses(R"({"w":{"dtype":"F32",}})", d12, "tensor 'w': expected a string, found '}' at byte 20 of the JSON text");
  refuses(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]})", d12, "header: expected ',' or '}', found the end of the text");
  refuses(R"({"w" {}})", d12, "header: expected ':', found '{'");
  refuses(R"({} x)", "", "header: unexpected text after the header object at byte 3");
  refuses(R"({"w":{"x":tru}})", d12, "tensor 'w': expected a value, found 't'");
  refuses(R"({"w":{"x":-}})", d12, "tensor 'w': malformed number");
  refuses(R"({"w":{"x":1.}})", d12, "tensor 'w': malformed number");
  refuses(R"({"w\q":{}})", d12, "header: invalid escape '\\q'");
  refuses(R"({"w\u12":{}})", d12, "invalid \\u escape (expected 4 hex digits)");
  refuses(R"({"w\ud800x":{}})", d12, "unpaired high surrogate in a \\u escape");
  refuses(R"({"w\udc00":{}})", d12, "unpaired low surrogate in a \\u escape");
  refuses("{\"w\xff\":{}}", d12, "invalid UTF-8 byte 0xff in a string");
  refuses("{\"w\xed\xa0\x80\":{}}", d12, "invalid UTF-8 byte 0xed in a string");  // an encoded surrogate
  refuses("{\"w\n\":{}}", d12, "control character 0x0a in a string (it must be escaped)");
  refuses(R"({"w)", d12, "unterminated string");
  // Names from the file are escaped in messages.
  refuses(R"({"a\u001b[2J":{"dtype":"F32","shape":[9],"data_offsets":[0,36]}})", d12, "tensor 'a\\x1b[2J': data_offsets [0, 36] point past");
}

TEST_CASE("SafetensorsFile::read refuses non-finite values and a file cut short since it was opened") {
  TempDir dir("st_nonfinite");
  const std::string p = dir.file("m.safetensors");
  auto one = [&](const char* dtype, const std::string& data, std::size_t n) {
    put_raw(p, file_bytes(std::string(R"({"w":{"dtype":")") + dtype + R"(","shape":[)" + std::to_string(n) +
                              R"(],"data_offsets":[0,)" + std::to_string(data.size()) + "]}}",
                          data));
    return SafetensorsFile(p);
  };
  std::vector<float> out(3);
  std::vector<double> outd(3);
  const auto f32 = one("F32", f32_bytes({1.0f, 2.0f, std::nanf("")}), 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(f32.read<float>(f32.tensors()[0], out), uvp::format_error,
                               "tensor 'w' element 2 (of 3) is nan; non-finite values are refused");
  const auto f16 = one("F16", std::string("\x00\x3c\x00\x7c\x00\x00", 6), 3);  // 1, +inf, 0
  UVP_CHECK_THROWS_WITH_SUBSTR(f16.read<float>(f16.tensors()[0], out), uvp::format_error, "tensor 'w' element 1 (of 3) is inf");
  const auto bf16 = one("BF16", std::string("\x80\xff\x80\x3f\xc1\xff", 6), 3);  // -inf, 1, nan
  UVP_CHECK_THROWS_WITH_SUBSTR(bf16.read<double>(bf16.tensors()[0], outd), uvp::format_error, "element 0 (of 3) is -inf");
  std::string f64(24, '\0');
  const double v[3] = {1.0, 2.0, std::numeric_limits<double>::quiet_NaN()};
  std::memcpy(&f64[0], v, 24);
  const auto d = one("F64", f64, 3);
  UVP_CHECK_THROWS_WITH_SUBSTR(d.read<double>(d.tensors()[0], outd), uvp::format_error, "element 2 (of 3) is nan");

  // Large enough to take several chunks; the file is then cut short under the open object.
  std::vector<float> big(10000);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i) * 0.5f;
  write_safetensors<float>(p, {{"big", {100, 100}, big}});
  const SafetensorsFile f(p);
  std::vector<float> back(big.size());
  f.read<float>(f.tensors()[0], back);
  CHECK(back == big);
  fs::resize_file(p, fs::file_size(p) - 100);
  UVP_CHECK_THROWS_WITH_SUBSTR(f.read<float>(f.tensors()[0], back), uvp::format_error,
                               "tensor 'big': the file ends before the tensor's data");
}

TEST_CASE("parse_safetensors_header works on bytes in memory (the fuzz target's entry)") {
  const auto h = uvp::detail::parse_safetensors_header(
      R"({"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 12);
  REQUIRE(h.tensors.size() == 2);
  CHECK(h.tensors[0].name == "a");
  CHECK(h.tensors[1].dtype == uvp::io::SafetensorsDtype::bf16);
  UVP_CHECK_THROWS_WITH_SUBSTR(uvp::detail::parse_safetensors_header(R"({"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 4),
                               uvp::format_error,
                               "uvp::detail::parse_safetensors_header: tensor 'a': data_offsets [0, 8] point past the end of the data section (4 bytes)");
}
