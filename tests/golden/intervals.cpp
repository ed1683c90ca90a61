/// @file tests/golden/intervals.cpp
/// @brief Bootstrap intervals, the paired bootstrap and the exact McNemar test (eval/intervals.hpp) against numpy and
///        scipy.
///
/// tests/golden/data/stats/intervals.json is written by tools/make_stats_golden.py (numpy 2.4.6, scipy 1.17.1); it holds
/// the inputs as well as the outputs. Quantiles and McNemar p-values are deterministic and must agree to rounding. The
/// bootstraps draw other resamples than scipy's, so they agree within the Monte Carlo spread: over 20000 resamples
/// the 2.5% and 97.5% quantiles of the resample means scatter by about 0.02 standard errors of the mean, and with 0/1
/// values the means lie on a grid of step 1/n that the percentile may land on either side of. Tolerance: 0.15 standard
/// errors (7x the scatter) plus one grid step; for the paired p-values 0.03 (0.005 of scatter at p near 0.9).

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/fixtures.hpp"

#include "polyalpaca/eval/intervals.hpp"

namespace pe = polyalpaca::eval;
using nlohmann::json;

namespace {

json const& golden() {
    static json const data = [] {
        auto const path = polyalpaca::testing::golden_dir() / "stats" / "intervals.json";
        std::ifstream in(path);
        if (!in) throw std::runtime_error("cannot open " + path.string());
        return json::parse(in);
    }();
    return data;
}

double standard_error(std::vector<double> const& v) {
    double mean = 0, sq = 0;
    for (double x : v) mean += x;
    mean /= double(v.size());
    for (double x : v) sq += (x - mean) * (x - mean);
    return std::sqrt(sq / double(v.size() - 1) / double(v.size()));
}

bool all_binary(std::vector<double> const& v) {
    for (double x : v)
        if (x != 0 && x != 1) return false;
    return true;
}

double tolerance(std::vector<double> const& v) {
    return 0.15 * standard_error(v) + (all_binary(v) ? 1.0 / double(v.size()) : 0.0);
}

}  // namespace

TEST_CASE("quantiles are numpy.percentile's", "[intervals]") {
    for (auto const& [name, a] : golden().at("arrays").items()) {
        auto values = a.at("values").get<std::vector<double>>();
        std::sort(values.begin(), values.end());
        for (auto const& [q, expected] : a.at("quantiles").items()) {
            INFO(name << " at " << q);
            CHECK(pe::quantile_sorted(values, std::stod(q)) == Approx(expected.get<double>()).margin(1e-12));
        }
    }
}

TEST_CASE("the bootstrap interval of a mean agrees with scipy.stats.bootstrap's", "[intervals]") {
    int const resamples = golden().at("resamples").get<int>();
    for (auto const& [name, a] : golden().at("arrays").items()) {
        auto const values = a.at("values").get<std::vector<double>>();
        auto const interval = pe::bootstrap_mean(values, {.resamples = resamples, .level = 0.95, .seed = 3});
        double const tol = tolerance(values);
        INFO(name << ": ours [" << interval.low << ", " << interval.high << "], scipy's ["
                  << a.at("bootstrap_low").get<double>() << ", " << a.at("bootstrap_high").get<double>()
                  << "], tolerance " << tol);
        CHECK(interval.estimate == Approx(a.at("mean").get<double>()).margin(1e-12));
        CHECK(std::abs(interval.low - a.at("bootstrap_low").get<double>()) <= tol);
        CHECK(std::abs(interval.high - a.at("bootstrap_high").get<double>()) <= tol);
        CHECK(interval.low < interval.estimate);
        CHECK(interval.estimate < interval.high);
    }
}

TEST_CASE("the exact McNemar test is scipy's two-sided binomial test", "[intervals]") {
    for (auto const& c : golden().at("mcnemar")) {
        auto const only_a = c.at("only_a").get<std::int64_t>(), only_b = c.at("only_b").get<std::int64_t>();
        INFO(only_a << " against " << only_b);
        CHECK(pe::mcnemar_exact_p(only_a, only_b) == Approx(c.at("p").get<double>()).epsilon(1e-9));
    }
}

TEST_CASE("paired comparisons: the bootstrap of the difference and McNemar", "[intervals]") {
    int const resamples = golden().at("resamples").get<int>();
    for (auto const& g : golden().at("paired")) {
        auto const a = g.at("a").get<std::vector<double>>(), b = g.at("b").get<std::vector<double>>();
        auto const name = g.at("name").get<std::string>();
        auto const c = pe::compare_paired(a, b, {.resamples = resamples, .level = 0.95, .seed = 5});
        std::vector<double> differences;
        for (std::size_t i = 0; i < a.size(); ++i) differences.push_back(a[i] - b[i]);
        double const tol = 0.15 * standard_error(differences) + 1.0 / double(a.size());
        INFO(name << ": difference [" << c.difference.low << ", " << c.difference.high << "], p " << c.bootstrap_p);
        CHECK(c.difference.estimate == Approx(g.at("difference").get<double>()).margin(1e-12));
        CHECK(std::abs(c.difference.low - g.at("low").get<double>()) <= tol);
        CHECK(std::abs(c.difference.high - g.at("high").get<double>()) <= tol);
        CHECK(std::abs(c.bootstrap_p - g.at("p").get<double>()) <= 0.03);
        CHECK(c.binary);
        CHECK(c.only_a == g.at("only_a").get<std::int64_t>());
        CHECK(c.only_b == g.at("only_b").get<std::int64_t>());
        CHECK(c.mcnemar_p == Approx(g.at("mcnemar_p").get<double>()).epsilon(1e-9));
        CHECK(c.significant() == (name == "lead"));
    }
}

TEST_CASE("intervals are seeded, and degenerate where the values are", "[intervals]") {
    std::vector<double> const values{1, 0, 1, 1, 0, 1, 0, 0, 1, 1};
    auto const a = pe::bootstrap_mean(values, {.seed = 9}), b = pe::bootstrap_mean(values, {.seed = 9});
    CHECK(a.low == b.low);
    CHECK(a.high == b.high);
    std::vector<double> const same(30, 1.0);
    auto const flat = pe::bootstrap_mean(same);
    CHECK(flat.low == 1.0);
    CHECK(flat.high == 1.0);
    auto const tie = pe::compare_paired(same, same);
    CHECK(tie.bootstrap_p == 1.0);
    CHECK(tie.mcnemar_p == 1.0);
    CHECK(!tie.significant());
    std::vector<double> const scores{0.5, 2.0, 1.5};
    CHECK(!pe::compare_paired(scores, scores).binary);
    CHECK_THROWS_WITH(pe::compare_paired(values, same), Catch::Contains("the same prompts on both sides"));
    CHECK_THROWS_WITH(pe::bootstrap_mean(std::vector<double>{}), Catch::Contains("no values"));
}
