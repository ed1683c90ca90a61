/// @file tests/golden/optim.cpp
/// @brief AdamW, clip_grad_norm and LR schedules against values computed by torch and transformers.
///
/// tests/golden/data/optim_golden.json is written by tools/make_optim_golden.py (torch 2.15.0, transformers 5.24.0);
/// it holds the inputs as well as the outputs.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/fixtures.hpp"

#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/optim/adamw.hpp"
#include "polyalpaca/optim/clip.hpp"
#include "polyalpaca/optim/schedule.hpp"

using namespace polyalpaca;
using nlohmann::json;

namespace {

/// The two members of the CpuEigen policy AdamW uses (cpu_eigen.hpp pulls in every CPU op header).
struct HostBackend {
    using Context = cpu::Context;
    template <class T>
    using Buffer = std::vector<T>;
};

json const& golden() {
    static json const data = [] {
        auto const path = polyalpaca::testing::golden_dir() / "optim_golden.json";
        std::ifstream in(path);
        if (!in) throw std::runtime_error("cannot open " + path.string());
        return json::parse(in);
    }();
    return data;
}

template <class T>
std::vector<T> as_vector(json const& values) {
    std::vector<T> out;
    for (auto const& v : values) out.push_back(T(v.get<double>()));
    return out;
}

/// Largest |a - b| / max(floor, |b|): floor 0 gives the relative error (|a - b| where b is 0), floor 1 the
/// error scaled as in tests/support/gradcheck.hpp (absolute for values below 1).
template <class T>
double max_error(std::vector<T> const& actual, json const& expected, double floor) {
    REQUIRE(actual.size() == expected.size());
    double worst = 0;
    for (std::size_t i = 0; i < actual.size(); ++i) {
        double const want = expected[i].get<double>();
        double const diff = std::abs(double(actual[i]) - want);
        double const scale = std::max(floor, std::abs(want));
        worst = std::max(worst, scale == 0 ? diff : diff / scale);
    }
    return worst;
}

/// Runs every golden AdamW case in T and returns the largest error (see max_error) of params and both moments.
template <class T>
double adamw_max_error(double floor) {
    cpu::Context ctx;
    double worst = 0;
    for (auto const& c : golden()["adamw"]) {
        AdamWConfig const config{c["lr"].get<double>(), c["beta1"].get<double>(), c["beta2"].get<double>(),
                                 c["eps"].get<double>(), c["weight_decay"].get<double>()};
        auto params = as_vector<T>(c["params"]);
        auto const n = Index(params.size());
        AdamW<HostBackend, T> opt(n, config);
        for (std::size_t s = 0; s < c["grads"].size(); ++s) {
            auto const grads = as_vector<T>(c["grads"][s]);
            opt.step(ctx, params.data(), grads.data(), config.lr);
            auto const& after = c["after"][s];
            CHECK(opt.step_count() == after["step"].get<long>());
            std::vector<T> const exp_avg(opt.exp_avg(), opt.exp_avg() + n);
            std::vector<T> const exp_avg_sq(opt.exp_avg_sq(), opt.exp_avg_sq() + n);
            worst = std::max({worst, max_error(params, after["params"], floor),
                              max_error(exp_avg, after["exp_avg"], floor),
                              max_error(exp_avg_sq, after["exp_avg_sq"], floor)});
        }
    }
    return worst;
}

ScheduleKind kind_from(std::string const& name) {
    if (name == "constant") return ScheduleKind::Constant;
    if (name == "linear") return ScheduleKind::Linear;
    if (name == "cosine") return ScheduleKind::Cosine;
    FAIL("unknown schedule kind " << name);
    return ScheduleKind::Constant;
}

}  // namespace

TEST_CASE("golden file was made by the pinned library versions", "[optim][golden]") {
    CHECK(golden()["versions"]["torch"].get<std::string>().rfind("2.15.0", 0) == 0);
    CHECK(golden()["versions"]["transformers"].get<std::string>() == "5.24.0");
}

TEST_CASE("AdamW in double matches torch.optim.AdamW", "[optim][golden]") {
    double const error = adamw_max_error<double>(0.0);
    INFO("max relative error (double) " << error);
    CHECK(error <= 1e-12);
}

// Values are below 1.5 in magnitude, so this is close to an absolute bound. A purely relative one would not hold:
// the first moment loses digits to cancellation (torch's own float32 AdamW is 1.5e-6 off in relative terms).
TEST_CASE("AdamW in float matches torch.optim.AdamW in double", "[optim][golden]") {
    double const error = adamw_max_error<float>(1.0);
    INFO("max scaled error (float) " << error);
    CHECK(error <= 1e-6);
}

TEST_CASE("clip_grad_norm matches torch.nn.utils.clip_grad_norm_", "[optim][golden]") {
    cpu::Context ctx;
    double worst = 0;
    for (auto const& c : golden()["clip"]) {
        auto grads = as_vector<double>(c["grads"]);
        double const total = clip_grad_norm(ctx, grads.data(), Index(grads.size()), c["max_norm"].get<double>());
        double const want = c["total_norm"].get<double>();
        worst = std::max({worst, std::abs(total - want) / want, max_error(grads, c["clipped"], 0.0)});
    }
    INFO("max relative error " << worst);
    CHECK(worst <= 1e-12);
}

TEST_CASE("schedules match transformers' get_*_schedule_with_warmup", "[optim][golden]") {
    for (auto const& c : golden()["schedules"]) {
        Schedule const schedule{kind_from(c["kind"].get<std::string>()), c["base_lr"].get<double>(),
                                c["warmup_steps"].get<long>(), c["total_steps"].get<long>()};
        auto const& lrs = c["lr"];
        REQUIRE(long(lrs.size()) == schedule.total_steps);
        double worst = 0;
        for (long step = 0; step < schedule.total_steps; ++step)
            worst = std::max(worst, std::abs(schedule.lr_at(step) - lrs[step].get<double>()));
        INFO(c["kind"].get<std::string>() << ": max absolute error " << worst);
        CHECK(worst <= 1e-12);
    }
}

TEST_CASE("warmup ratio gives TrainingArguments.get_warmup_steps", "[optim][golden]") {
    for (auto const& c : golden()["warmup_ratio"]) {
        INFO("ratio " << c["ratio"].get<double>() << " of " << c["total_steps"].get<long>() << " steps");
        CHECK(Schedule::warmup_from_ratio(c["ratio"].get<double>(), c["total_steps"].get<long>()) ==
              c["warmup_steps"].get<long>());
    }
}
