// SPDX-License-Identifier: Apache-2.0
// Test helper: the published CDNOW calibration summary (x, t_x, T, zbar) as Eigen vectors.
#pragma once

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/core/tensor.hpp"

namespace clv_test {

struct Cdnow {
  std::vector<int> id;
  uvp::Vector<double> x, tx, T, zbar;
};

/// examples/data/cdnow/cdnow_customers_summary_with_transactions.csv (ID,x,t_x,T,zbar; 2,357 rows;
/// x, t_x, T identical to cdnow_customers_summary.csv).
inline Cdnow read_cdnow_summary() {
  std::ifstream in(uvp_test::data_path("cdnow/cdnow_customers_summary_with_transactions.csv"));
  REQUIRE_MESSAGE(in.good(), "cannot open the CDNOW summary");
  std::string line;
  std::getline(in, line);
  std::vector<double> x, tx, T, z;
  Cdnow c;
  while (std::getline(in, line)) {
    for (char& ch : line)
      if (ch == ',') ch = ' ';
    std::istringstream ls(line);
    int id;
    double a, b, d, e;
    ls >> id >> a >> b >> d >> e;
    c.id.push_back(id);
    x.push_back(a), tx.push_back(b), T.push_back(d), z.push_back(e);
  }
  auto vec = [](const std::vector<double>& v) {
    return uvp::Vector<double>(Eigen::Map<const uvp::Vector<double>>(v.data(), static_cast<Eigen::Index>(v.size())));
  };
  c.x = vec(x), c.tx = vec(tx), c.T = vec(T), c.zbar = vec(z);
  return c;
}

/// Rows of a fixture file with `cols` numbers each.
inline std::vector<std::vector<double>> fixture_rows(const std::string& name, std::size_t cols) {
  const auto v = uvp_test::read_numbers(uvp_test::fixture_path(name));
  REQUIRE(v.size() % cols == 0);
  std::vector<std::vector<double>> rows;
  for (std::size_t i = 0; i < v.size(); i += cols)
    rows.emplace_back(v.begin() + static_cast<long>(i), v.begin() + static_cast<long>(i + cols));
  return rows;
}

}  // namespace clv_test
