/// @file eval/intervals.hpp
/// @brief How sure a figure over test prompts is: a seeded percentile bootstrap interval of a mean over prompts, and
///        for two runs scored on the same prompts, a paired bootstrap of the difference of their means and the exact
///        McNemar test of their 0/1 outcomes. Checked against numpy and scipy (tools/make_stats_golden.py).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/rng.hpp"

namespace polyalpaca::eval {

/// A figure and its confidence interval.
struct Interval {
    double estimate = 0;
    double low = 0;
    double high = 0;
};

/// The q-quantile (q in [0, 1]) of ascending `sorted`, interpolated linearly between order statistics at position
/// q (n - 1): numpy.percentile's default method.
inline double quantile_sorted(std::span<double const> sorted, double q) {
    require(!sorted.empty(), "quantile of no values");
    require(q >= 0 && q <= 1, "quantile ", q, " is outside [0, 1]");
    double const position = q * double(sorted.size() - 1);
    auto const below = std::size_t(std::floor(position));
    auto const above = std::min(below + 1, sorted.size() - 1);
    double const fraction = position - double(below);
    return sorted[below] + fraction * (sorted[above] - sorted[below]);
}

struct BootstrapOptions {
    int resamples = 10000;
    double level = 0.95;     ///< the interval's coverage
    std::uint64_t seed = 0;  ///< the resamples are drawn by Rng(seed): the same inputs give the same interval
};

namespace interval_detail {

inline void check(BootstrapOptions const& o) {
    require(o.resamples >= 100, "a bootstrap needs at least 100 resamples, got ", o.resamples);
    require(o.level > 0 && o.level < 1, "an interval's level must be in (0, 1), got ", o.level);
}

inline double mean(std::span<double const> values) {
    double sum = 0;
    for (double v : values) sum += v;
    return sum / double(values.size());
}

/// The level's interval of the bootstrap statistics `stats` (sorted here) around `estimate`.
inline Interval percentile_interval(std::vector<double>& stats, double estimate, double level) {
    std::sort(stats.begin(), stats.end());
    double const tail = (1 - level) / 2;
    return {estimate, quantile_sorted(stats, tail), quantile_sorted(stats, 1 - tail)};
}

}  // namespace interval_detail

/// Percentile bootstrap interval of the mean of `values` (one per prompt: 1/0 for exact match, a score, ...): the
/// means of `resamples` samples of n values drawn with replacement, and their (1 - level)/2 and (1 + level)/2
/// quantiles (scipy.stats.bootstrap's method "percentile").
inline Interval bootstrap_mean(std::span<double const> values, BootstrapOptions const& o = {}) {
    interval_detail::check(o);
    require(!values.empty(), "a bootstrap interval of no values");
    std::size_t const n = values.size();
    Rng rng(o.seed);
    std::vector<double> means(std::size_t(o.resamples));
    for (auto& m : means) {
        double sum = 0;
        for (std::size_t i = 0; i < n; ++i) sum += values[rng.below(n)];
        m = sum / double(n);
    }
    return interval_detail::percentile_interval(means, interval_detail::mean(values), o.level);
}

/// Exact McNemar test of two runs' 0/1 outcomes on the same prompts: of the prompts they disagree on, `only_a` run A
/// got right and `only_b` run B. The two-sided p-value of a binomial test of only_a out of only_a + only_b at 1/2
/// (scipy.stats.binomtest): 2 P(X <= min(only_a, only_b)), at most 1; 1 when they never disagree.
inline double mcnemar_exact_p(std::int64_t only_a, std::int64_t only_b) {
    require(only_a >= 0 && only_b >= 0, "McNemar: negative counts ", only_a, " and ", only_b);
    std::int64_t const n = only_a + only_b, k = std::min(only_a, only_b);
    if (n == 0 || only_a == only_b) return 1.0;
    // P(X <= k) for X ~ Binomial(n, 1/2), summed in log space: exp(lgamma terms - n log 2).
    double const log_half_n = -double(n) * std::log(2.0);
    double const lg_n = std::lgamma(double(n) + 1);
    double sum = 0;
    for (std::int64_t i = 0; i <= k; ++i)
        sum += std::exp(lg_n - std::lgamma(double(i) + 1) - std::lgamma(double(n - i) + 1) + log_half_n);
    return std::min(1.0, 2 * sum);
}

/// Two runs scored on the same prompts (a[i] and b[i] for prompt i).
struct PairedComparison {
    Interval difference;        ///< mean(a) - mean(b), with its paired bootstrap interval
    double bootstrap_p = 1;     ///< two-sided: 2 min(P*(diff <= 0), P*(diff >= 0)) over the resamples, at most 1
    bool binary = false;        ///< every value is 0 or 1 (then McNemar applies)
    std::int64_t only_a = 0;    ///< binary: prompts A got right and B wrong
    std::int64_t only_b = 0;    ///< binary: prompts B got right and A wrong
    double mcnemar_p = 1;       ///< binary: mcnemar_exact_p(only_a, only_b)

    /// The test a report states: McNemar's for 0/1 outcomes, else the paired bootstrap's.
    double p() const { return binary ? mcnemar_p : bootstrap_p; }
    bool significant(double alpha = 0.05) const { return p() < alpha; }
};

/// Compares two runs on the same prompts: the difference of their means with a paired bootstrap (the same prompts
/// drawn for both), and for 0/1 outcomes the exact McNemar test.
inline PairedComparison compare_paired(std::span<double const> a, std::span<double const> b,
                                       BootstrapOptions const& o = {}) {
    interval_detail::check(o);
    require(!a.empty() && a.size() == b.size(), "a paired comparison needs the same prompts on both sides: ", a.size(),
            " and ", b.size(), " values");
    std::size_t const n = a.size();
    PairedComparison c;
    c.binary = true;
    for (std::size_t i = 0; i < n; ++i) {
        bool const a01 = a[i] == 0 || a[i] == 1, b01 = b[i] == 0 || b[i] == 1;
        c.binary = c.binary && a01 && b01;
        c.only_a += a[i] == 1 && b[i] == 0;
        c.only_b += a[i] == 0 && b[i] == 1;
    }
    if (c.binary) c.mcnemar_p = mcnemar_exact_p(c.only_a, c.only_b);
    else c.only_a = c.only_b = 0;

    Rng rng(o.seed);
    std::vector<double> differences(std::size_t(o.resamples));
    std::int64_t at_most_zero = 0, at_least_zero = 0;
    for (auto& d : differences) {
        double sum = 0;
        for (std::size_t i = 0; i < n; ++i) {
            std::size_t const j = rng.below(n);
            sum += a[j] - b[j];
        }
        d = sum / double(n);
        at_most_zero += d <= 0;
        at_least_zero += d >= 0;
    }
    double const observed = interval_detail::mean(a) - interval_detail::mean(b);
    c.difference = interval_detail::percentile_interval(differences, observed, o.level);
    c.bootstrap_p = std::min(1.0, 2.0 * double(std::min(at_most_zero, at_least_zero)) / double(o.resamples));
    return c;
}

}  // namespace polyalpaca::eval
