// SPDX-License-Identifier: Apache-2.0
// Tests of the SVG plot writer (include/uvp/io/svg.hpp).
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_support.hpp"
#include "uvp/io/svg.hpp"

namespace {
std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}
std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}
}  // namespace

TEST_CASE("an SVG plot holds its series, labels, legend and diagonal") {
  const std::vector<double> x = {0, 0.25, 0.5, 1}, y = {0, 0.6, 0.8, 1};
  const std::vector<double> sx = {1, 2, 3}, sy = {1.5, 2.5, 2.9};
  uvp::SvgPlot plot("ROC <test> & more", "false positive rate", "true positive rate");
  plot.add_line(x, y, "model").add_scatter(sx, sy, "points", 3).add_diagonal("chance");
  CHECK(plot.series_count() == 2);
  const std::string svg = plot.to_svg();
  CHECK(svg.rfind("<?xml", 0) == 0);
  CHECK(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"480\"") != std::string::npos);
  CHECK(svg.find(">ROC &lt;test&gt; &amp; more</text>") != std::string::npos);
  CHECK(svg.find(">false positive rate</text>") != std::string::npos);
  CHECK(svg.find("rotate(-90)\" text-anchor=\"middle\">true positive rate</text>") != std::string::npos);
  CHECK(count(svg, "<polyline") == 1);
  // 4 points in the polyline: 3 separating spaces inside points="...".
  const auto p0 = svg.find("points=\"") + 8;
  const std::string pts = svg.substr(p0, svg.find('"', p0) - p0);
  CHECK(count(pts, ",") == 4);
  CHECK(count(svg, "<circle") == 3 + 1);               // three points + the legend mark
  CHECK(count(svg, "stroke-dasharray=\"6,4\"") == 2);  // diagonal + its legend mark
  CHECK(svg.find(">model</text>") != std::string::npos);
  CHECK(svg.find(">points</text>") != std::string::npos);
  CHECK(svg.find(">chance</text>") != std::string::npos);
  CHECK(svg.rfind("</svg>\n") == svg.size() - 7);
  // The diagonal makes both axes cover [0, 3]: the tick labels 0 .. 3 exist on both.
  CHECK(count(svg, "\">3</text>") == 2);
  CHECK(count(svg, "\">0</text>") == 2);
}

TEST_CASE("the first point maps to the lower-left corner of the plot area for a fixed range") {
  const std::vector<double> x = {0, 10}, y = {0, 100};
  uvp::SvgPlot plot;
  plot.size(400, 300).x_range(0, 10).y_range(0, 100).add_line(x, y);
  const std::string svg = plot.to_svg();
  // left margin 72, top 24 (no title), bottom 56: plot area [72, 376] x [24, 244].
  CHECK(svg.find("points=\"72.00,244.00 376.00,24.00\"") != std::string::npos);
}

TEST_CASE("save writes the document atomically") {
  const std::string path = "uvp_test_svg_plot.svg";
  std::remove(path.c_str());
  uvp::SvgPlot plot("t");
  plot.add_line(std::vector<double>{1, 2}, std::vector<double>{3, 4});
  plot.save(path);
  CHECK(slurp(path) == plot.to_svg());
  std::remove(path.c_str());
  UVP_CHECK_THROWS_WITH_SUBSTR(plot.save("/nonexistent-dir/x.svg"), uvp::io_error,
                               "uvp::SvgPlot::save: cannot create a temporary file next to '/nonexistent-dir/x.svg'");
}

TEST_CASE("bad series and settings throw uvp errors") {
  uvp::SvgPlot plot;
  const std::vector<double> a = {1, 2, 3}, b = {1, 2};
  UVP_CHECK_THROWS_WITH_SUBSTR(plot.add_line(a, b), uvp::shape_error,
                               "uvp::SvgPlot::add_line: ys has size 2, expected 3");
  const std::vector<double> bad = {1, std::nan(""), 3};
  UVP_CHECK_THROWS_WITH_SUBSTR(plot.add_scatter(a, bad), uvp::invalid_argument,
                               "uvp::SvgPlot::add_scatter: ys has a non-finite value (nan) at flat index 1");
  UVP_CHECK_THROWS_WITH_SUBSTR(plot.add_line(std::vector<double>{}, std::vector<double>{}), uvp::invalid_argument,
                               "uvp::SvgPlot::add_line: xs is empty");
  UVP_CHECK_THROWS_WITH_SUBSTR(plot.add_scatter(a, a, "", 0), uvp::invalid_argument,
                               "radius must be finite and > 0, got 0");
  UVP_CHECK_THROWS_WITH_SUBSTR(plot.size(100, 300), uvp::invalid_argument,
                               "width and height must be >= 120, got 100 x 300");
  UVP_CHECK_THROWS_WITH_SUBSTR(plot.x_range(1, 1), uvp::invalid_argument,
                               "uvp::SvgPlot::x_range: need finite lo < hi, got [1, 1]");
  CHECK(plot.series_count() == 0);
  CHECK(plot.to_svg().find("</svg>") != std::string::npos);  // an empty plot still renders
}
