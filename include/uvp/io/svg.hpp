// SPDX-License-Identifier: Apache-2.0
// A tiny dependency-free SVG plot writer: lines, scatter and bars (ROC curves, training curves,
// predicted vs actual, histograms), and heatmaps of a matrix.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "uvp/core/check.hpp"
#include "uvp/core/error.hpp"
#include "uvp/core/tensor.hpp"
#include "uvp/io/file.hpp"

namespace uvp {

namespace detail {

inline std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

inline std::string fmt_num(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

/// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `target` intervals over `span`.
inline double nice_step(double span, int target) {
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

}  // namespace detail

/// A 2-D plot of line, scatter and bar series written as a standalone SVG file.
///
///     uvp::SvgPlot plot("ROC", "false positive rate", "true positive rate");
///     plot.add_line(fpr, tpr, "model").add_diagonal("chance").save("roc.svg");
///
/// Axes span the data (or the ranges set with x_range / y_range) rounded out to "nice" ticks.
/// Series take x and y of equal length with finite values. Colours follow a fixed palette in the
/// order the series are added. save() writes atomically (temporary file + rename).
class SvgPlot {
 public:
  explicit SvgPlot(std::string title = {}, std::string x_label = {}, std::string y_label = {})
      : title_(std::move(title)), x_label_(std::move(x_label)), y_label_(std::move(y_label)) {}

  /// Image size in pixels (default 640 x 480), each at least 120.
  SvgPlot& size(int width, int height) {
    if (width < 120 || height < 120)
      detail::raise<invalid_argument>("uvp::SvgPlot::size: width and height must be >= 120, got ", width, " x ",
                                      height);
    width_ = width;
    height_ = height;
    return *this;
  }
  /// Fixes an axis range instead of taking it from the data; lo < hi, both finite.
  SvgPlot& x_range(double lo, double hi) {
    check_range("uvp::SvgPlot::x_range", lo, hi);
    x_fixed_ = {lo, hi};
    has_x_fixed_ = true;
    return *this;
  }
  SvgPlot& y_range(double lo, double hi) {
    check_range("uvp::SvgPlot::y_range", lo, hi);
    y_fixed_ = {lo, hi};
    has_y_fixed_ = true;
    return *this;
  }

  /// A polyline through (xs[i], ys[i]) in the given order.
  SvgPlot& add_line(Span<const double> xs, Span<const double> ys, std::string label = {}) {
    add("uvp::SvgPlot::add_line", xs, ys, std::move(label), Kind::line, 0);
    return *this;
  }
  /// One dot per point; radius in pixels (> 0).
  SvgPlot& add_scatter(Span<const double> xs, Span<const double> ys, std::string label = {}, double radius = 2.5) {
    if (!(radius > 0) || !std::isfinite(radius))
      detail::raise<invalid_argument>("uvp::SvgPlot::add_scatter: radius must be finite and > 0, got ", radius);
    add("uvp::SvgPlot::add_scatter", xs, ys, std::move(label), Kind::scatter, radius);
    return *this;
  }
  /// Vertical bars from 0 to ys[i] centred on xs[i] (a histogram). Bar series added to one plot
  /// share each x side by side, together `width` x-units wide (0 < width <= the smallest gap
  /// between the xs; default 0.8, for integer xs). The y axis then includes 0.
  SvgPlot& add_bars(Span<const double> xs, Span<const double> ys, std::string label = {}, double width = 0.8) {
    if (!(width > 0) || !std::isfinite(width))
      detail::raise<invalid_argument>("uvp::SvgPlot::add_bars: width must be finite and > 0, got ", width);
    add("uvp::SvgPlot::add_bars", xs, ys, std::move(label), Kind::bars, 0);
    series_.back().radius = width;  // a bar series keeps its width where a scatter keeps its radius
    return *this;
  }
  /// The line y = x over the common range of both axes (dashed grey); it also makes both axes
  /// cover the union of the x and y data, as a predicted-vs-actual plot wants.
  SvgPlot& add_diagonal(std::string label = {}) {
    diagonal_ = true;
    diagonal_label_ = std::move(label);
    return *this;
  }

  index series_count() const noexcept { return static_cast<index>(series_.size()); }

  /// The SVG document.
  std::string to_svg() const {
    using detail::fmt_num;
    // Data extents.
    double xlo = HUGE_VAL, xhi = -HUGE_VAL, ylo = HUGE_VAL, yhi = -HUGE_VAL;
    for (const Series& s : series_)
      for (std::size_t i = 0; i < s.x.size(); ++i) {
        xlo = std::min(xlo, s.x[i]), xhi = std::max(xhi, s.x[i]);
        ylo = std::min(ylo, s.y[i]), yhi = std::max(yhi, s.y[i]);
      }
    std::size_t bar_series = 0;
    double bar_width = HUGE_VAL;
    for (const Series& s : series_)
      if (s.kind == Kind::bars) ++bar_series, bar_width = std::min(bar_width, s.radius);
    if (bar_series > 0) {
      xlo -= bar_width / 2, xhi += bar_width / 2;
      ylo = std::min(ylo, 0.0), yhi = std::max(yhi, 0.0);
    }
    if (series_.empty()) xlo = ylo = 0, xhi = yhi = 1;
    if (diagonal_) {
      const double lo = std::min(xlo, ylo), hi = std::max(xhi, yhi);
      xlo = ylo = lo;
      xhi = yhi = hi;
    }
    auto axis = [](double lo, double hi, bool fixed, std::pair<double, double> fr, double& step) {
      if (fixed) {
        step = detail::nice_step(fr.second - fr.first, 5);
        return fr;
      }
      if (!(hi > lo)) {
        const double pad = lo == 0 ? 1 : 0.5 * std::abs(lo);
        lo -= pad, hi += pad;
      }
      step = detail::nice_step(hi - lo, 5);
      return std::make_pair(std::floor(lo / step + 1e-9) * step, std::ceil(hi / step - 1e-9) * step);
    };
    double xstep = 1, ystep = 1;
    const auto xr = axis(xlo, xhi, has_x_fixed_, x_fixed_, xstep);
    const auto yr = axis(ylo, yhi, has_y_fixed_, y_fixed_, ystep);

    const double left = 72, right = 24, top = title_.empty() ? 24 : 44, bottom = 56;
    const double pw = width_ - left - right, ph = height_ - top - bottom;
    auto px = [&](double x) { return left + (x - xr.first) / (xr.second - xr.first) * pw; };
    auto py = [&](double y) { return top + ph - (y - yr.first) / (yr.second - yr.first) * ph; };
    const char* coord = "%.2f";

    std::string o;
    o += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width_) + "\" height=\"" +
         std::to_string(height_) + "\" viewBox=\"0 0 " + std::to_string(width_) + " " + std::to_string(height_) +
         "\" font-family=\"sans-serif\" font-size=\"12\">\n";
    o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    if (!title_.empty())
      o += "<text x=\"" + fmt_num(coord, width_ / 2.0) + "\" y=\"26\" text-anchor=\"middle\" font-size=\"16\">" +
           detail::xml_escape(title_) + "</text>\n";
    // Grid and ticks.
    o += "<g stroke=\"#e0e0e0\" stroke-width=\"1\">\n";
    std::string labels;
    const double x0 = std::ceil(xr.first / xstep - 1e-9) * xstep, y0 = std::ceil(yr.first / ystep - 1e-9) * ystep;
    for (int i = 0; x0 + i * xstep <= xr.second + 1e-9 * xstep; ++i) {
      const double v = x0 + i * xstep, tv = std::abs(v) < 1e-9 * xstep ? 0 : v;
      o += "<line x1=\"" + fmt_num(coord, px(tv)) + "\" y1=\"" + fmt_num(coord, top) + "\" x2=\"" +
           fmt_num(coord, px(tv)) + "\" y2=\"" + fmt_num(coord, top + ph) + "\"/>\n";
      labels += "<text x=\"" + fmt_num(coord, px(tv)) + "\" y=\"" + fmt_num(coord, top + ph + 16) +
                "\" text-anchor=\"middle\">" + fmt_num("%.6g", tv) + "</text>\n";
    }
    for (int i = 0; y0 + i * ystep <= yr.second + 1e-9 * ystep; ++i) {
      const double v = y0 + i * ystep, tv = std::abs(v) < 1e-9 * ystep ? 0 : v;
      o += "<line x1=\"" + fmt_num(coord, left) + "\" y1=\"" + fmt_num(coord, py(tv)) + "\" x2=\"" +
           fmt_num(coord, left + pw) + "\" y2=\"" + fmt_num(coord, py(tv)) + "\"/>\n";
      labels += "<text x=\"" + fmt_num(coord, left - 6) + "\" y=\"" + fmt_num(coord, py(tv) + 4) +
                "\" text-anchor=\"end\">" + fmt_num("%.6g", tv) + "</text>\n";
    }
    o += "</g>\n" + labels;
    o += "<rect x=\"" + fmt_num(coord, left) + "\" y=\"" + fmt_num(coord, top) + "\" width=\"" + fmt_num(coord, pw) +
         "\" height=\"" + fmt_num(coord, ph) + "\" fill=\"none\" stroke=\"black\"/>\n";
    if (!x_label_.empty())
      o += "<text x=\"" + fmt_num(coord, left + pw / 2) + "\" y=\"" + fmt_num(coord, height_ - 14.0) +
           "\" text-anchor=\"middle\">" + detail::xml_escape(x_label_) + "</text>\n";
    if (!y_label_.empty())
      o += "<text transform=\"translate(18," + fmt_num(coord, top + ph / 2) +
           ") rotate(-90)\" text-anchor=\"middle\">" + detail::xml_escape(y_label_) + "</text>\n";
    // Data, clipped to the plot area.
    o += "<defs><clipPath id=\"plot\"><rect x=\"" + fmt_num(coord, left) + "\" y=\"" + fmt_num(coord, top) +
         "\" width=\"" + fmt_num(coord, pw) + "\" height=\"" + fmt_num(coord, ph) + "\"/></clipPath></defs>\n";
    o += "<g clip-path=\"url(#plot)\">\n";
    if (diagonal_) {
      const double lo = std::max(xr.first, yr.first), hi = std::min(xr.second, yr.second);
      if (hi > lo)
        o += "<line x1=\"" + fmt_num(coord, px(lo)) + "\" y1=\"" + fmt_num(coord, py(lo)) + "\" x2=\"" +
             fmt_num(coord, px(hi)) + "\" y2=\"" + fmt_num(coord, py(hi)) +
             "\" stroke=\"#888888\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\"/>\n";
    }
    std::size_t bar_slot = 0;
    for (std::size_t k = 0; k < series_.size(); ++k) {
      const Series& s = series_[k];
      const char* color = palette(k);
      if (s.kind == Kind::bars) {
        const double slot = bar_width / static_cast<double>(bar_series);
        const double offset = -bar_width / 2 + slot * static_cast<double>(bar_slot++);
        o += "<g fill=\"" + std::string(color) + "\" fill-opacity=\"0.8\">\n";
        for (std::size_t i = 0; i < s.x.size(); ++i) {
          const double x1 = px(s.x[i] + offset), x2 = px(s.x[i] + offset + slot);
          const double y1 = py(std::max(s.y[i], 0.0)), y2 = py(std::min(s.y[i], 0.0));
          o += "<rect x=\"" + fmt_num(coord, x1) + "\" y=\"" + fmt_num(coord, y1) + "\" width=\"" +
               fmt_num(coord, x2 - x1) + "\" height=\"" + fmt_num(coord, y2 - y1) + "\"/>\n";
        }
        o += "</g>\n";
      } else if (s.kind == Kind::line) {
        o += "<polyline fill=\"none\" stroke=\"" + std::string(color) + "\" stroke-width=\"2\" points=\"";
        for (std::size_t i = 0; i < s.x.size(); ++i) {
          if (i) o += ' ';
          o += fmt_num(coord, px(s.x[i])) + "," + fmt_num(coord, py(s.y[i]));
        }
        o += "\"/>\n";
      } else {
        o += "<g fill=\"" + std::string(color) + "\" fill-opacity=\"0.6\">\n";
        for (std::size_t i = 0; i < s.x.size(); ++i)
          o += "<circle cx=\"" + fmt_num(coord, px(s.x[i])) + "\" cy=\"" + fmt_num(coord, py(s.y[i])) + "\" r=\"" +
               fmt_num(coord, s.radius) + "\"/>\n";
        o += "</g>\n";
      }
    }
    o += "</g>\n";
    // Legend (top left inside the plot).
    double ly = top + 16;
    auto legend_entry = [&](const std::string& label, const std::string& mark) {
      o += mark + "<text x=\"" + fmt_num(coord, left + 36) + "\" y=\"" + fmt_num(coord, ly + 4) + "\">" +
           detail::xml_escape(label) + "</text>\n";
      ly += 18;
    };
    for (std::size_t k = 0; k < series_.size(); ++k) {
      const Series& s = series_[k];
      if (s.label.empty()) continue;
      const std::string color = palette(k);
      if (s.kind == Kind::line)
        legend_entry(s.label, "<line x1=\"" + fmt_num(coord, left + 10) + "\" y1=\"" + fmt_num(coord, ly) + "\" x2=\"" +
                                  fmt_num(coord, left + 30) + "\" y2=\"" + fmt_num(coord, ly) + "\" stroke=\"" + color +
                                  "\" stroke-width=\"2\"/>");
      else if (s.kind == Kind::bars)
        legend_entry(s.label, "<rect x=\"" + fmt_num(coord, left + 14) + "\" y=\"" + fmt_num(coord, ly - 5) +
                                  "\" width=\"12\" height=\"10\" fill=\"" + color + "\"/>");
      else
        legend_entry(s.label, "<circle cx=\"" + fmt_num(coord, left + 20) + "\" cy=\"" + fmt_num(coord, ly) +
                                  "\" r=\"4\" fill=\"" + color + "\"/>");
    }
    if (diagonal_ && !diagonal_label_.empty())
      legend_entry(diagonal_label_, "<line x1=\"" + fmt_num(coord, left + 10) + "\" y1=\"" + fmt_num(coord, ly) +
                                        "\" x2=\"" + fmt_num(coord, left + 30) + "\" y2=\"" + fmt_num(coord, ly) +
                                        "\" stroke=\"#888888\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\"/>");
    o += "</svg>\n";
    return o;
  }

  /// Writes to_svg() to `path` atomically; uvp::io_error when it cannot.
  void save(const std::string& path) const { write_file_atomic(path, to_svg(), "uvp::SvgPlot::save"); }

 private:
  enum class Kind { line, scatter, bars };
  struct Series {
    std::vector<double> x, y;
    std::string label;
    Kind kind;
    double radius;
  };

  static const char* palette(std::size_t k) noexcept {
    static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                   "#9467bd", "#8c564b", "#e377c2", "#17becf"};
    return colors[k % 8];
  }
  static void check_range(const char* where, double lo, double hi) {
    if (!std::isfinite(lo) || !std::isfinite(hi) || !(lo < hi))
      detail::raise<invalid_argument>(where, ": need finite lo < hi, got [", lo, ", ", hi, "]");
  }
  void add(const char* where, Span<const double> xs, Span<const double> ys, std::string label, Kind kind,
           double radius) {
    detail::check_not_empty(where, "xs", xs.size());
    detail::check_size(where, "ys", ys.size(), xs.size());
    detail::check_finite(where, "xs", xs.data(), xs.size());
    detail::check_finite(where, "ys", ys.data(), ys.size());
    series_.push_back({std::vector<double>(xs.begin(), xs.end()), std::vector<double>(ys.begin(), ys.end()),
                       std::move(label), kind, radius});
  }

  std::string title_, x_label_, y_label_;
  int width_ = 640, height_ = 480;
  std::pair<double, double> x_fixed_{0, 1}, y_fixed_{0, 1};
  bool has_x_fixed_ = false, has_y_fixed_ = false;
  bool diagonal_ = false;
  std::string diagonal_label_;
  std::vector<Series> series_;
};

/// A matrix drawn as a grid of coloured cells (row 0 at the bottom), with a colour bar: e.g. a
/// model output over frequency x recency.
///
///     uvp::SvgHeatmap("P(alive)", "recency", "frequency").values(rows, cols, M).save("p_alive.svg");
///
/// Cells are coloured on a linear light-yellow -> dark-blue scale from the smallest to the largest
/// finite value; NaN cells (impossible combinations) are left blank. save() writes atomically.
class SvgHeatmap {
 public:
  explicit SvgHeatmap(std::string title = {}, std::string x_label = {}, std::string y_label = {})
      : title_(std::move(title)), x_label_(std::move(x_label)), y_label_(std::move(y_label)) {}

  /// Image size in pixels (default 640 x 520), each at least 160.
  SvgHeatmap& size(int width, int height) {
    if (width < 160 || height < 160)
      detail::raise<invalid_argument>("uvp::SvgHeatmap::size: width and height must be >= 160, got ", width, " x ",
                                      height);
    width_ = width;
    height_ = height;
    return *this;
  }
  /// The matrix: z(i, j) is drawn at column value xs[j] and row value ys[i]. xs and ys non-empty,
  /// finite, with z of size ys.size() x xs.size(); z finite or NaN (blank), at least one finite.
  SvgHeatmap& values(Span<const double> xs, Span<const double> ys, const Matrix<double>& z) {
    constexpr const char* where = "uvp::SvgHeatmap::values";
    detail::check_not_empty(where, "xs", xs.size());
    detail::check_not_empty(where, "ys", ys.size());
    detail::check_finite(where, "xs", xs.data(), xs.size());
    detail::check_finite(where, "ys", ys.data(), ys.size());
    detail::check_shape(where, "z", z.rows(), z.cols(), ys.size(), xs.size());
    bool any = false;
    for (index i = 0; i < z.size(); ++i) {
      const double v = z.data()[i];
      if (std::isinf(v)) detail::raise<invalid_argument>(where, ": z holds an infinite value");
      any = any || std::isfinite(v);
    }
    if (!any) detail::raise<invalid_argument>(where, ": z has no finite value");
    xs_.assign(xs.begin(), xs.end());
    ys_.assign(ys.begin(), ys.end());
    z_ = z;
    return *this;
  }

  /// The SVG document (an empty frame before values()).
  std::string to_svg() const {
    using detail::fmt_num;
    const char* coord = "%.2f";
    const double left = 64, right = 96, top = title_.empty() ? 24 : 44, bottom = 56;
    const double pw = width_ - left - right, ph = height_ - top - bottom;
    std::string o;
    o += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width_) + "\" height=\"" +
         std::to_string(height_) + "\" viewBox=\"0 0 " + std::to_string(width_) + " " + std::to_string(height_) +
         "\" font-family=\"sans-serif\" font-size=\"12\">\n";
    o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    if (!title_.empty())
      o += "<text x=\"" + fmt_num(coord, width_ / 2.0) + "\" y=\"26\" text-anchor=\"middle\" font-size=\"16\">" +
           detail::xml_escape(title_) + "</text>\n";
    if (!x_label_.empty())
      o += "<text x=\"" + fmt_num(coord, left + pw / 2) + "\" y=\"" + fmt_num(coord, height_ - 14.0) +
           "\" text-anchor=\"middle\">" + detail::xml_escape(x_label_) + "</text>\n";
    if (!y_label_.empty())
      o += "<text transform=\"translate(18," + fmt_num(coord, top + ph / 2) +
           ") rotate(-90)\" text-anchor=\"middle\">" + detail::xml_escape(y_label_) + "</text>\n";
    const index rows = z_.rows(), cols = z_.cols();
    double lo = HUGE_VAL, hi = -HUGE_VAL;
    for (index i = 0; i < z_.size(); ++i)
      if (std::isfinite(z_.data()[i])) lo = std::min(lo, z_.data()[i]), hi = std::max(hi, z_.data()[i]);
    if (rows > 0) {
      const double cw = pw / static_cast<double>(cols), ch = ph / static_cast<double>(rows);
      o += "<g stroke=\"none\">\n";
      for (index i = 0; i < rows; ++i)
        for (index j = 0; j < cols; ++j) {
          const double v = z_(i, j);
          if (!std::isfinite(v)) continue;
          const double y = top + ph - static_cast<double>(i + 1) * ch;
          o += "<rect x=\"" + fmt_num(coord, left + static_cast<double>(j) * cw) + "\" y=\"" + fmt_num(coord, y) +
               "\" width=\"" + fmt_num(coord, cw + 0.3) + "\" height=\"" + fmt_num(coord, ch + 0.3) + "\" fill=\"" +
               color(hi > lo ? (v - lo) / (hi - lo) : 0.5) + "\"><title>" + fmt_num("%.6g", v) + "</title></rect>\n";
        }
      o += "</g>\n";
      // About six labelled ticks per axis, at cell centres.
      auto ticks = [&](index n, bool x_axis) {
        const index every = std::max<index>(1, (n + 5) / 6);
        for (index k = 0; k < n; k += every) {
          const double v = x_axis ? xs_[static_cast<std::size_t>(k)] : ys_[static_cast<std::size_t>(k)];
          if (x_axis)
            o += "<text x=\"" + fmt_num(coord, left + (static_cast<double>(k) + 0.5) * cw) + "\" y=\"" +
                 fmt_num(coord, top + ph + 16) + "\" text-anchor=\"middle\">" + fmt_num("%.4g", v) + "</text>\n";
          else
            o += "<text x=\"" + fmt_num(coord, left - 6) + "\" y=\"" +
                 fmt_num(coord, top + ph - (static_cast<double>(k) + 0.5) * ch + 4) + "\" text-anchor=\"end\">" +
                 fmt_num("%.4g", v) + "</text>\n";
        }
      };
      ticks(cols, true);
      ticks(rows, false);
      // Colour bar: 20 steps from lo (bottom) to hi (top).
      const double bx = left + pw + 16, bw = 16;
      for (int k = 0; k < 20; ++k)
        o += "<rect x=\"" + fmt_num(coord, bx) + "\" y=\"" + fmt_num(coord, top + ph - (k + 1) * ph / 20) +
             "\" width=\"" + fmt_num(coord, bw) + "\" height=\"" + fmt_num(coord, ph / 20 + 0.3) + "\" fill=\"" +
             color((k + 0.5) / 20) + "\"/>\n";
      o += "<text x=\"" + fmt_num(coord, bx + bw + 4) + "\" y=\"" + fmt_num(coord, top + ph) + "\">" +
           fmt_num("%.4g", lo) + "</text>\n";
      o += "<text x=\"" + fmt_num(coord, bx + bw + 4) + "\" y=\"" + fmt_num(coord, top + 10) + "\">" +
           fmt_num("%.4g", hi) + "</text>\n";
    }
    o += "<rect x=\"" + fmt_num(coord, left) + "\" y=\"" + fmt_num(coord, top) + "\" width=\"" + fmt_num(coord, pw) +
         "\" height=\"" + fmt_num(coord, ph) + "\" fill=\"none\" stroke=\"black\"/>\n";
    o += "</svg>\n";
    return o;
  }

  /// Writes to_svg() to `path` atomically; uvp::io_error when it cannot.
  void save(const std::string& path) const { write_file_atomic(path, to_svg(), "uvp::SvgHeatmap::save"); }

 private:
  // u in [0, 1] -> a colour between light yellow (#ffffd9) and dark blue (#081d58) through green-blue.
  static std::string color(double u) {
    static const double stops[5][3] = {{255, 255, 217}, {199, 233, 180}, {65, 182, 196}, {34, 94, 168}, {8, 29, 88}};
    u = std::min(1.0, std::max(0.0, u)) * 4;
    const int k = std::min(3, static_cast<int>(u));
    const double f = u - k;
    char buf[16];
    int c[3];
    for (int i = 0; i < 3; ++i) c[i] = static_cast<int>(std::lround(stops[k][i] + f * (stops[k + 1][i] - stops[k][i])));
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c[0], c[1], c[2]);
    return buf;
  }

  std::string title_, x_label_, y_label_;
  int width_ = 640, height_ = 520;
  std::vector<double> xs_, ys_;
  Matrix<double> z_;
};

}  // namespace uvp
