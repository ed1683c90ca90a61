/// @file study/planner.hpp
/// @brief Expands a study into its runs: per method and budget, one monolingual run per tuned language and one run
///        per multilingual strategy (multilingual, downsampled, temperature, weighted), each with its own directory;
///        and the study's state file, rewritten atomically as runs finish.
#pragma once

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/io/atomic_file.hpp"
#include "polyalpaca/study/study_file.hpp"

namespace polyalpaca::study {

/// One training run of the study and where it lives.
struct PlannedRun {
    std::string name;       ///< also its directory's name under <output>/runs/
    std::string method;     ///< lora or full
    std::string strategy;   ///< its spelling: monolingual, multilingual, downsampled, temperature:T, weighted:...
    Strategy mixing;        ///< the same, as the value that builds its mixture
    std::string label;      ///< what the report calls it: "monolingual en", "multilingual", "temperature 2", ...
    std::vector<std::string> languages;  ///< the languages it tunes on
    BudgetSpec budget;
    std::filesystem::path dir;
};

/// Every run of the study, in the order the driver trains them: per budget, per method, monolingual runs first.
inline std::vector<PlannedRun> plan_runs(StudyFile const& s) {
    std::vector<PlannedRun> runs;
    auto const root = s.output / "runs";
    for (auto const& budget : s.budgets)
        for (auto const& method : s.methods)
            for (auto const& strategy : s.strategies) {
                auto add = [&](std::string name, std::string label, std::vector<std::string> langs) {
                    name = method + "-" + name + "-" + budget.tag();
                    runs.push_back({name, method, strategy.spelling(), strategy, std::move(label), std::move(langs),
                                    budget, root / name});
                };
                if (strategy.kind == Strategy::Kind::Monolingual)
                    for (auto const& l : s.languages) add("monolingual-" + l, "monolingual " + l, {l});
                else if (strategy.kind == Strategy::Kind::Weighted)
                    add(strategy.tag(), strategy.label(), strategy.weighted_languages());
                else
                    add(strategy.tag(), strategy.label(), s.languages);
            }
    return runs;
}

/// A run is finished when its evaluation is written (evaluation.json, the last file a run writes); trained when
/// run_summary.json and its weights are there.
inline bool run_evaluated(PlannedRun const& r) { return std::filesystem::exists(r.dir / "evaluation.json"); }
inline bool run_trained(PlannedRun const& r) {
    return std::filesystem::exists(r.dir / "run_summary.json") &&
           (std::filesystem::exists(r.dir / "model" / "config.json") ||
            std::filesystem::exists(r.dir / "adapter" / "adapter_config.json"));
}

/// "[3/10 full-monolingual-en-records-6000]": how progress lines name run i of `count`.
inline std::string run_label(std::size_t i, std::size_t count, std::string const& name) {
    return "[" + std::to_string(i + 1) + "/" + std::to_string(count) + " " + name + "]";
}

/// <output>/study_state.json: every run with its state (pending, training, trained, evaluated), rewritten atomically.
/// `training`: the runs in training now.
inline void write_study_state(StudyFile const& s, std::vector<PlannedRun> const& runs,
                              std::vector<std::string> const& training, double seconds) {
    nlohmann::ordered_json j{{"name", s.name}, {"study_file", s.source.string()}, {"seconds_this_invocation", seconds}};
    j["runs"] = nlohmann::ordered_json::array();
    for (auto const& r : runs) {
        bool const in_training = std::find(training.begin(), training.end(), r.name) != training.end();
        std::string const state = run_evaluated(r) ? "evaluated"
                                  : run_trained(r) ? "trained"
                                  : in_training    ? "training"
                                                   : "pending";
        j["runs"].push_back({{"name", r.name}, {"method", r.method}, {"strategy", r.strategy},
                             {"budget", r.budget.describe()}, {"languages", r.languages}, {"state", state}});
    }
    std::filesystem::create_directories(s.output);
    io::write_file_atomically(s.output / "study_state.json", j.dump(2) + "\n");
}

}  // namespace polyalpaca::study
