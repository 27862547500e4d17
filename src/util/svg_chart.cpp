#include "util/svg_chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>

#include "util/error.h"

namespace qllm {
namespace {

// Tableau 10: distinct in colour and in lightness, so bars stay apart in grey print too.
constexpr const char* kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
constexpr int kFont = 13, kTickFont = 11;
constexpr double kCharWidth = 0.6;  // average glyph width of a sans-serif font, in em

const char* color(size_t i) { return kPalette[i % std::size(kPalette)]; }

std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

double text_width(std::string_view s, int font) { return double(s.size()) * font * kCharWidth; }

std::string format_tick(double v) {
  if (std::abs(v) < 1e-12) return "0";
  const double a = std::abs(v);
  if (a >= 1e6 || a < 1e-3) return fmt::format("{:.3g}", v);
  return fmt::format("{:.6g}", v);
}

// One axis: maps data values (after the log transform) to pixels.
struct Axis {
  bool log = false;
  double lo = 0, hi = 1;  // transformed units
  std::vector<double> ticks;  // data units
  double pix_lo = 0, pix_hi = 1;
  double t(double v) const { return log ? std::log10(v) : v; }
  double map(double v) const { return pix_lo + (t(v) - lo) / (hi - lo) * (pix_hi - pix_lo); }
  bool valid(double v) const { return std::isfinite(v) && (!log || v > 0); }
};

Axis make_axis(std::vector<double> values, bool log, bool from_zero) {
  Axis a;
  a.log = log;
  std::erase_if(values, [&](double v) { return !a.valid(v); });
  if (from_zero && !log) values.push_back(0.0);
  if (values.empty()) values = {log ? 1.0 : 0.0, log ? 10.0 : 1.0};
  double lo = *std::min_element(values.begin(), values.end());
  double hi = *std::max_element(values.begin(), values.end());
  if (log) {
    double dlo = std::floor(std::log10(lo)), dhi = std::ceil(std::log10(hi));
    if (dhi <= dlo) dhi = dlo + 1;
    a.lo = dlo;
    a.hi = dhi;
    for (double d = dlo; d <= dhi + 1e-9; ++d) {
      a.ticks.push_back(std::pow(10.0, d));
      // Few decades: add 2 and 5 so the axis still has several labels.
      if (dhi - dlo <= 2 && d < dhi) {
        a.ticks.push_back(2 * std::pow(10.0, d));
        a.ticks.push_back(5 * std::pow(10.0, d));
      }
    }
    std::sort(a.ticks.begin(), a.ticks.end());
    return a;
  }
  if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) {
    const double pad = std::abs(hi) > 0 ? std::abs(hi) * 0.1 : 1.0;
    lo -= pad;
    hi += pad;
    if (from_zero && lo < 0 && *std::min_element(values.begin(), values.end()) >= 0) lo = 0;
  }
  a.ticks = nice_ticks(lo, hi);
  a.lo = std::min(lo, a.ticks.front());
  a.hi = std::max(hi, a.ticks.back());
  return a;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, target - 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> ticks;
  const double first = std::floor(lo / step + 1e-9) * step;
  for (double v = first; v <= hi + step * (1 - 1e-9); v += step) {
    ticks.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
    if (ticks.size() > 50) break;
  }
  return ticks;
}

std::string render_svg(const Chart& c) {
  const bool categorical = !c.categories.empty() || c.kind == ChartKind::Bar;
  const size_t n_cat = c.categories.size();

  // ---- layout ----
  double legend_w = 0;
  for (const auto& s : c.series) legend_w = std::max(legend_w, text_width(s.name, kFont));
  legend_w = c.series.empty() ? 0 : legend_w + 50;
  double longest_cat = 0;
  for (const auto& s : c.categories) longest_cat = std::max(longest_cat, text_width(s, kTickFont));
  const double plot_w_guess = c.width - 90.0 - legend_w - 20;
  const bool rotate = categorical && n_cat > 0 && longest_cat + 6 > plot_w_guess / double(n_cat);
  const double bottom = 50 + (rotate ? std::min(longest_cat * 0.71 + 10, 180.0) : 14.0);
  const double left = 90, top = c.title.empty() ? 20 : 46, right = legend_w + 20;
  const double height = std::max<double>(c.height, top + bottom + 200);
  const double px0 = left, px1 = c.width - right, py0 = height - bottom, py1 = top;

  // ---- axes ----
  std::vector<double> xs, ys;
  for (const auto& s : c.series) {
    ys.insert(ys.end(), s.y.begin(), s.y.end());
    if (!categorical) xs.insert(xs.end(), s.x.begin(), s.x.end());
  }
  Axis ya = make_axis(ys, c.log_y, c.y_from_zero || c.kind == ChartKind::Bar);
  ya.pix_lo = py0;
  ya.pix_hi = py1;
  Axis xa;
  if (!categorical) {
    xa = make_axis(xs, c.log_x, false);
    xa.pix_lo = px0;
    xa.pix_hi = px1;
  }
  const double slot = categorical && n_cat ? (px1 - px0) / double(n_cat) : 0;
  auto cat_x = [&](size_t i) { return px0 + slot * (double(i) + 0.5); };

  std::string o;
  o += fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} "
      "{1}\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"{2}\">\n",
      c.width, height, kFont);
  o += fmt::format("<rect width=\"{}\" height=\"{}\" fill=\"white\"/>\n", c.width, height);
  if (!c.title.empty())
    o += fmt::format("<text x=\"{}\" y=\"28\" text-anchor=\"middle\" font-size=\"16\" "
                     "font-weight=\"bold\">{}</text>\n",
                     (px0 + px1) / 2, escape(c.title));

  // Grid and y ticks.
  for (double t : ya.ticks) {
    if (!ya.valid(t)) continue;
    const double y = ya.map(t);
    if (y < py1 - 0.5 || y > py0 + 0.5) continue;
    o += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" "
                     "stroke=\"#e0e0e0\"/>\n",
                     px0, y, px1, y);
    o += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" "
                     "stroke=\"black\"/>\n",
                     px0 - 5, y, px0, y);
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" font-size=\"{}\">{}</text>\n",
                     px0 - 8, y + 4, kTickFont, format_tick(t));
  }
  // X ticks.
  if (categorical) {
    for (size_t i = 0; i < n_cat; ++i) {
      const double x = cat_x(i);
      o += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" "
                       "stroke=\"black\"/>\n",
                       x, py0, x, py0 + 5);
      if (rotate)
        o += fmt::format("<text transform=\"translate({:.1f},{:.1f}) rotate(-45)\" "
                         "text-anchor=\"end\" font-size=\"{}\">{}</text>\n",
                         x + 3, py0 + 12, kTickFont, escape(c.categories[i]));
      else
        o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" "
                         "font-size=\"{}\">{}</text>\n",
                         x, py0 + 18, kTickFont, escape(c.categories[i]));
    }
  } else {
    for (double t : xa.ticks) {
      if (!xa.valid(t)) continue;
      const double x = xa.map(t);
      if (x < px0 - 0.5 || x > px1 + 0.5) continue;
      o += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" "
                       "stroke=\"#e0e0e0\"/>\n",
                       x, py1, x, py0);
      o += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" "
                       "stroke=\"black\"/>\n",
                       x, py0, x, py0 + 5);
      o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" "
                       "font-size=\"{}\">{}</text>\n",
                       x, py0 + 18, kTickFont, format_tick(t));
    }
  }
  // Axis lines and labels.
  o += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" "
                   "stroke=\"black\"/>\n",
                   px0, py0, px1);
  o += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" "
                   "stroke=\"black\"/>\n",
                   px0, py0, py1);
  if (!c.x_label.empty())
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
                     (px0 + px1) / 2, height - 12, escape(c.x_label));
  if (!c.y_label.empty())
    o += fmt::format("<text transform=\"translate(22,{:.1f}) rotate(-90)\" "
                     "text-anchor=\"middle\">{}</text>\n",
                     (py0 + py1) / 2, escape(c.y_label));

  // ---- data ----
  const size_t n_series = c.series.size();
  for (size_t si = 0; si < n_series; ++si) {
    const auto& s = c.series[si];
    const char* col = color(si);
    const size_t n = s.y.size();
    auto point_x = [&](size_t i) {
      return categorical ? cat_x(i) : (i < s.x.size() ? xa.map(s.x[i]) : px0);
    };
    auto point_ok = [&](size_t i) {
      if (!ya.valid(s.y[i])) return false;
      if (categorical) return i < n_cat;
      return i < s.x.size() && xa.valid(s.x[i]);
    };
    if (c.kind == ChartKind::Bar) {
      const double group = slot * 0.8, bar = group / double(std::max<size_t>(n_series, 1));
      for (size_t i = 0; i < n && i < n_cat; ++i) {
        if (!ya.valid(s.y[i])) continue;
        const double x = cat_x(i) - group / 2 + bar * double(si);
        const double y = ya.map(s.y[i]);
        const double y0 = ya.log ? py0 : ya.map(0.0);
        o += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
                         "fill=\"{}\"><title>{}: {}</title></rect>\n",
                         x, std::min(y, y0), std::max(bar - 1, 1.0), std::abs(y0 - y), col,
                         escape(s.name), format_tick(s.y[i]));
      }
      continue;
    }
    if (c.kind == ChartKind::Line) {
      std::string pts;
      auto flush = [&] {
        if (!pts.empty())
          o += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" "
                           "points=\"{}\"/>\n",
                           col, pts);
        pts.clear();
      };
      for (size_t i = 0; i < n; ++i) {
        if (!point_ok(i)) {
          flush();
          continue;
        }
        pts += fmt::format("{:.1f},{:.1f} ", point_x(i), ya.map(s.y[i]));
      }
      flush();
    }
    for (size_t i = 0; i < n; ++i) {
      if (!point_ok(i)) continue;
      const double x = point_x(i), y = ya.map(s.y[i]);
      o += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\" fill=\"{}\"/>\n", x, y,
                       c.kind == ChartKind::Scatter ? 5 : 3, col);
      if (i < s.labels.size() && !s.labels[i].empty())
        o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"{}\">{}</text>\n", x + 7,
                         y - 6, kTickFont, escape(s.labels[i]));
    }
  }

  // ---- legend ----
  if (!c.series.empty()) {
    const double lx = px1 + 16;
    for (size_t si = 0; si < n_series; ++si) {
      const double ly = py1 + 10 + 20 * double(si);
      if (c.kind == ChartKind::Bar)
        o += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"14\" height=\"12\" "
                         "fill=\"{}\"/>\n",
                         lx, ly - 6, color(si));
      else
        o += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" "
                         "stroke=\"{3}\" stroke-width=\"{4}\"/><circle cx=\"{5:.1f}\" "
                         "cy=\"{1:.1f}\" r=\"4\" fill=\"{3}\"/>\n",
                         lx, ly, lx + 22, color(si), c.kind == ChartKind::Line ? 2 : 0, lx + 11);
      o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", lx + 30, ly + 4,
                       escape(c.series[si].name));
    }
  }
  o += "</svg>\n";
  return o;
}

void write_svg(const std::filesystem::path& path, const Chart& chart) {
  const std::string svg = render_svg(chart);
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f) fail(path, "cannot create file");
    f << svg;
    if (!f.flush()) fail(path, "write failed");
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace qllm
