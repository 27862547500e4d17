// A small SVG chart writer for reports: line, grouped bar and scatter charts with axes, ticks,
// axis labels, a title and a legend. No dependencies; the output opens in any browser.
//
// Layout: the plot area sits left of a legend column. Numeric axes get "nice" ticks (1, 2, 5 x
// 10^k) or, on a log axis, one tick per decade. A chart with `categories` puts those names on
// the x axis (series.x is then ignored and point i sits over category i); names are turned 45
// degrees when there are many.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace qllm {

enum class ChartKind { Line, Bar, Scatter };

struct ChartSeries {
  std::string name;                  // legend entry
  std::vector<double> x, y;          // x unused with categories; NaN y leaves a gap
  std::vector<std::string> labels;   // optional per-point labels (scatter)
};

struct Chart {
  ChartKind kind = ChartKind::Line;
  std::string title, x_label, y_label;
  std::vector<std::string> categories;  // names along x (required for Bar)
  std::vector<ChartSeries> series;
  bool log_x = false, log_y = false;    // log axes need positive values; others are dropped
  bool y_from_zero = false;             // include 0 in the y range (bars always do)
  int width = 900, height = 520;
};

// The SVG document.
std::string render_svg(const Chart& chart);

// Writes the SVG to `path` through a temporary file and a rename.
void write_svg(const std::filesystem::path& path, const Chart& chart);

// Tick positions for [lo, hi]: about `target` nice values covering the range.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

}  // namespace qllm
