// SPDX-License-Identifier: Apache-2.0
// Fuzz target: read_csv_string on arbitrary text with options taken from the first byte, then every
// accessor over the table it returns (fields, missing flags, numeric columns with missing -> NaN).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "uvp/data/csv.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  uvp::CsvOptions options;
  options.delimiter = (mode & 1) ? ';' : ',';
  options.header = (mode & 2) == 0;
  if (mode & 4) options.quote = '\'';
  if (mode & 8) options.missing_values = {"NA", "?"};
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  uvp_fuzz::expect_uvp_errors_only([&] {
    const uvp::CsvTable table = uvp::read_csv_string(std::move(text), "fuzz.csv", options);
    if (table.cols() != static_cast<uvp::index>(table.column_names().size())) uvp_fuzz::finding("cols() != names");
    std::size_t bytes = 0;
    for (uvp::index r = 0; r < table.rows(); ++r)
      for (uvp::index c = 0; c < table.cols(); ++c) bytes += table.field(r, c).size() + table.is_missing(r, c);
    for (const std::string& name : table.column_names()) {
      uvp_fuzz::expect_uvp_errors_only([&] {
        const auto values = table.numeric_column<double>(name, uvp::Missing::nan);
        if (values.size() != table.rows()) uvp_fuzz::finding("numeric_column has the wrong length");
      });
      uvp_fuzz::expect_uvp_errors_only([&] { (void)table.numeric_column<float>(name); });
    }
    // Out-of-range accessors must raise, not read past the table.
    uvp_fuzz::expect_uvp_errors_only([&] { (void)table.field(table.rows(), 0); });
    uvp_fuzz::expect_uvp_errors_only([&] { (void)table.field(0, table.cols()); });
    (void)bytes;
  });
  return 0;
}
