/// @file eval/svg_plot.hpp
/// @brief Two plain SVG charts written by hand (no dependencies): grouped bars (one group per category, one bar per
///        series) and lines through points (one line per series), with axes, ticks, labels and a legend.
///
/// A value that is not finite (infinity, NaN) is not drawn, as a missing value is not, and the axes are computed
/// from the finite values only; any finite values, up to +-1.8e308, give finite coordinates.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace polyalpaca::eval {

struct BarSeries {
    std::string name;
    std::vector<std::optional<double>> values;  ///< one per group; nullopt draws no bar
    /// Optional, one per group: an interval (low, high) drawn as an error bar on the bar.
    std::vector<std::optional<std::pair<double, double>>> intervals = {};
};

struct BarChart {
    std::string title, y_label;
    std::vector<std::string> groups;
    std::vector<BarSeries> series;
};

struct LineSeries {
    std::string name;
    std::vector<std::pair<double, double>> points;  ///< (x, y), drawn in x order
};

struct LineChart {
    std::string title, x_label, y_label;
    std::vector<LineSeries> series;
    bool log_x = false;  ///< a log10 x axis (budgets spanning decades); x must be > 0
};

namespace svg_detail {

inline constexpr std::string_view palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                               "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
inline constexpr double width = 880, height = 420, left = 70, right = 280, top = 40, bottom = 60;

inline std::string escape(std::string_view s) {
    std::string out;
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

inline std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
}

/// About five round tick values covering [lo, hi]; never empty. Any finite ends work (1e308 and -1e308: ticks
/// -1e308, -5e307, 0, 5e307, 1e308); an end that is not finite gives the single tick 0.
inline std::vector<double> ticks(double lo, double hi) {
    if (!std::isfinite(lo) || !std::isfinite(hi)) return {0.0};
    if (!(hi > lo)) hi = lo + 1;
    double const raw = std::isfinite(hi - lo) ? (hi - lo) / 5 : hi / 5 - lo / 5;
    if (!(raw > 0)) return {lo};  // lo + 1 rounded back to lo
    double const mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = mag;
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (raw <= m * mag) {
            step = m * mag;
            break;
        }
    double const first = std::ceil(lo / step - 1e-9), last = std::floor(hi / step + 1e-9);
    if (!(last - first <= 100)) return {lo, hi};  // steps lost in rounding: ends far from 0 and close together
    std::vector<double> out;
    for (int k = 0; k <= int(last - first); ++k) {
        double const t = (first + k) * step;
        if (std::isfinite(t)) out.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
    }
    if (out.empty()) out.push_back(lo);
    return out;
}

/// A value that a chart draws: present and finite.
inline bool drawn(std::optional<double> v) { return v && std::isfinite(*v); }

/// Whether [lo, hi] is wide enough to divide by (hi / 2 - lo / 2: the span halved, which cannot overflow).
inline bool spans(double lo, double hi) { return hi / 4 - lo / 4 > 0; }

/// The frame: header, title, axis labels, y grid with ticks; `y` maps a value to a pixel row.
template <class Y>
void frame(std::ostringstream& out, std::string const& title, std::string const& x_label, std::string const& y_label,
           std::vector<double> const& y_ticks, Y const& y) {
    out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
        << "\" viewBox=\"0 0 " << width << ' ' << height << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
        << "<rect width=\"" << width << "\" height=\"" << height << "\" fill=\"white\"/>\n"
        << "<text x=\"" << width / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << escape(title)
        << "</text>\n";
    for (double t : y_ticks) {
        out << "<line x1=\"" << left << "\" x2=\"" << width - right << "\" y1=\"" << y(t) << "\" y2=\"" << y(t)
            << "\" stroke=\"#dddddd\"/>\n<text x=\"" << left - 6 << "\" y=\"" << y(t) + 4 << "\" text-anchor=\"end\">"
            << number(t) << "</text>\n";
    }
    out << "<line x1=\"" << left << "\" x2=\"" << left << "\" y1=\"" << top << "\" y2=\"" << height - bottom
        << "\" stroke=\"black\"/>\n<line x1=\"" << left << "\" x2=\"" << width - right << "\" y1=\"" << height - bottom
        << "\" y2=\"" << height - bottom << "\" stroke=\"black\"/>\n"
        << "<text x=\"" << (left + width - right) / 2 << "\" y=\"" << height - 12 << "\" text-anchor=\"middle\">"
        << escape(x_label) << "</text>\n<text transform=\"translate(16," << (top + height - bottom) / 2
        << ") rotate(-90)\" text-anchor=\"middle\">" << escape(y_label) << "</text>\n";
}

inline void legend(std::ostringstream& out, std::vector<std::string> const& names) {
    for (std::size_t i = 0; i < names.size(); ++i) {
        double const y = top + 16.0 * double(i);
        out << "<rect x=\"" << width - right + 14 << "\" y=\"" << y << "\" width=\"10\" height=\"10\" fill=\""
            << palette[i % std::size(palette)] << "\"/>\n<text x=\"" << width - right + 30 << "\" y=\"" << y + 9
            << "\">" << escape(names[i]) << "</text>\n";
    }
}

/// The y axis: from the lower of 0 and the smallest finite value to the tick at or above the largest finite value
/// (the largest value itself where that tick would overflow).
inline std::pair<double, double> y_range(std::vector<double> const& values) {
    double lo = 0, hi = 0;
    for (double v : values)
        if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    if (!spans(lo, hi)) hi = lo + 1;
    auto const t = ticks(lo, hi);
    double const step = t.size() > 1 ? t[1] - t[0] : hi - lo;
    if (t.back() < hi - 1e-12 * step && std::isfinite(t.back() + step)) hi = t.back() + step;
    return {std::min(lo, t.front()), hi};
}

/// The pixel row of `v` on a y axis from `lo` (bottom) to `hi` (top).
inline double y_pixel(double v, double lo, double hi) {
    return top + (height - top - bottom) * ((hi / 2 - v / 2) / (hi / 2 - lo / 2));
}

}  // namespace svg_detail

/// Grouped bars: one group per `groups` entry, one bar per series inside it, the value printed above the bar (and
/// above its error bar, when the series gives an interval).
inline std::string bar_chart_svg(BarChart const& c) {
    using namespace svg_detail;
    auto const interval_drawn = [](std::optional<std::pair<double, double>> const& i) {
        return i && std::isfinite(i->first) && std::isfinite(i->second);
    };
    std::vector<double> all;
    for (auto const& s : c.series) {
        for (auto const& v : s.values)
            if (drawn(v)) all.push_back(*v);
        for (auto const& i : s.intervals)
            if (interval_drawn(i)) all.push_back(i->first), all.push_back(i->second);
    }
    auto const [lo, hi] = y_range(all);
    auto y = [lo = lo, hi = hi](double v) { return y_pixel(v, lo, hi); };
    std::ostringstream out;
    frame(out, c.title, "", c.y_label, ticks(lo, hi), y);
    double const plot_w = width - left - right;
    double const group_w = plot_w / double(std::max<std::size_t>(1, c.groups.size()));
    double const bar_w = group_w * 0.8 / double(std::max<std::size_t>(1, c.series.size()));
    for (std::size_t g = 0; g < c.groups.size(); ++g) {
        double const x0 = left + group_w * double(g) + group_w * 0.1;
        out << "<text x=\"" << left + group_w * (double(g) + 0.5) << "\" y=\"" << height - bottom + 16
            << "\" text-anchor=\"middle\">" << escape(c.groups[g]) << "</text>\n";
        for (std::size_t s = 0; s < c.series.size(); ++s) {
            if (g >= c.series[s].values.size() || !drawn(c.series[s].values[g])) continue;
            double const v = *c.series[s].values[g];
            double const x = x0 + bar_w * double(s), y_top = std::min(y(v), y(0)), h = std::abs(y(v) - y(0));
            out << "<rect x=\"" << x << "\" y=\"" << y_top << "\" width=\"" << bar_w * 0.95 << "\" height=\"" << h
                << "\" fill=\"" << palette[s % std::size(palette)] << "\"><title>" << escape(c.series[s].name) << ", "
                << escape(c.groups[g]) << ": " << number(v) << "</title></rect>\n";
            double label_y = y_top - 3;
            if (g < c.series[s].intervals.size() && interval_drawn(c.series[s].intervals[g])) {  // error bar, caps
                auto const [low, high] = *c.series[s].intervals[g];
                double const mid = x + bar_w * 0.475, cap = bar_w * 0.2;
                out << "<path d=\"M" << mid << ' ' << y(low) << "V" << y(high) << "M" << mid - cap << ' ' << y(low)
                    << "h" << 2 * cap << "M" << mid - cap << ' ' << y(high) << "h" << 2 * cap
                    << "\" stroke=\"black\" fill=\"none\"/>\n";
                label_y = std::min(label_y, y(high) - 3);
            }
            out << "<text x=\"" << x + bar_w * 0.475 << "\" y=\"" << label_y
                << "\" text-anchor=\"middle\" font-size=\"9\">" << number(v) << "</text>\n";
        }
    }
    std::vector<std::string> names;
    for (auto const& s : c.series) names.push_back(s.name);
    legend(out, names);
    out << "</svg>\n";
    return out.str();
}

/// Lines through points: one polyline and its markers per series, x ticks on a linear or log10 axis.
inline std::string line_chart_svg(LineChart const& c) {
    using namespace svg_detail;
    auto const axis_x = [&](double x) { return c.log_x ? std::log10(std::max(x, 1e-300)) : x; };
    auto const point_drawn = [&](std::pair<double, double> const& p) {
        return std::isfinite(axis_x(p.first)) && std::isfinite(p.second);
    };
    std::vector<double> ys, xs;
    for (auto const& s : c.series)
        for (auto const& p : s.points)
            if (point_drawn(p)) xs.push_back(axis_x(p.first)), ys.push_back(p.second);
    auto const [lo, hi] = y_range(ys);
    double constexpr most = std::numeric_limits<double>::max();
    double x_lo = xs.empty() ? 0 : *std::min_element(xs.begin(), xs.end());
    double x_hi = xs.empty() ? 1 : *std::max_element(xs.begin(), xs.end());
    if (!spans(x_lo, x_hi)) {  // one x: half a unit either side, or 5% of it where half a unit is lost in rounding
        double const half = x_lo - 0.5 < x_lo ? 0.5 : std::abs(x_lo) * 0.05;
        x_lo = std::max(x_lo - half, -most), x_hi = std::min(x_hi + half, most);
    }
    double const pad = (x_hi / 2 - x_lo / 2) * 0.1;
    x_lo = std::max(x_lo - pad, -most), x_hi = std::min(x_hi + pad, most);
    auto y = [lo = lo, hi = hi](double v) { return y_pixel(v, lo, hi); };
    auto x = [&](double v) {
        return left + (width - left - right) * ((axis_x(v) / 2 - x_lo / 2) / (x_hi / 2 - x_lo / 2));
    };
    std::ostringstream out;
    frame(out, c.title, c.x_label, c.y_label, ticks(lo, hi), y);
    for (double t : ticks(x_lo, x_hi)) {
        double const value = c.log_x ? std::pow(10.0, t) : t;
        if ((c.log_x && t != std::floor(t)) || !std::isfinite(value)) continue;
        out << "<line x1=\"" << x(value) << "\" x2=\"" << x(value) << "\" y1=\"" << height - bottom << "\" y2=\""
            << height - bottom + 4 << "\" stroke=\"black\"/>\n<text x=\"" << x(value) << "\" y=\""
            << height - bottom + 16 << "\" text-anchor=\"middle\">" << number(value) << "</text>\n";
    }
    for (std::size_t s = 0; s < c.series.size(); ++s) {
        std::vector<std::pair<double, double>> points;
        std::copy_if(c.series[s].points.begin(), c.series[s].points.end(), std::back_inserter(points), point_drawn);
        std::sort(points.begin(), points.end());
        auto const colour = palette[s % std::size(palette)];
        out << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\" points=\"";
        for (auto const& [px, py] : points) out << x(px) << ',' << y(py) << ' ';
        out << "\"/>\n";
        for (auto const& [px, py] : points)
            out << "<circle cx=\"" << x(px) << "\" cy=\"" << y(py) << "\" r=\"4\" fill=\"" << colour << "\"><title>"
                << escape(c.series[s].name) << ": " << number(px) << ", " << number(py) << "</title></circle>\n";
    }
    std::vector<std::string> names;
    for (auto const& s : c.series) names.push_back(s.name);
    legend(out, names);
    out << "</svg>\n";
    return out.str();
}

}  // namespace polyalpaca::eval
