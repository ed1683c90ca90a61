/// @file study/study_plan.hpp
/// @brief polyalpaca_study --plan: every run of a study with its budget in records, tokens and FLOPs, its optimizer
///        steps, its predicted peak memory on the chosen device and, where earlier runs measured a rate, its
///        predicted time; and require_fit, which stops a study before its first run when a run would not fit.
///        Budgets come from the trainer's own plan (plan_training) over the real data when the files are there;
///        memory from the layers' own accounting run on the sizing backend (study/memory_table.hpp).
#pragma once

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "polyalpaca/study/gpus.hpp"
#include "polyalpaca/study/memory_table.hpp"
#include "polyalpaca/study/planner.hpp"
#include "polyalpaca/study/run_training.hpp"
#include "polyalpaca/study/study_data.hpp"
#include "polyalpaca/study/study_tokenizer.hpp"
#include "polyalpaca/train/progress.hpp"
#include "polyalpaca/train/trainer.hpp"

namespace polyalpaca::study {

namespace plan_detail {

inline std::string gib(double bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", bytes / double(std::size_t(1) << 30));
    return buf;
}
/// 1234567 -> "1,234,567"
inline std::string grouped(double v) {
    auto digits = std::to_string(std::llround(std::abs(v)));
    for (int at = int(digits.size()) - 3; at > 0; at -= 3) digits.insert(std::size_t(at), ",");
    return (v < 0 ? "-" : "") + digits;
}
inline std::string sci(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", v);
    return buf;
}

/// One planned run's numbers (empty where the data needed to count them is missing).
struct RunFigures {
    std::optional<std::int64_t> records, tokens, steps;
    std::optional<double> flops, seconds;
};

/// The memory the device offers a study now: a visible GPU's free memory, or the host's available memory.
inline std::optional<std::size_t> available_memory(std::string const& backend) {
    if (backend == "cuda") {
        auto const gpus = visible_gpus();
        if (gpus.empty()) return std::nullopt;
        return gpus.front().free_bytes;
    }
    auto const host = cpu::host_device_info();
    return host.free_bytes > 0 ? std::optional<std::size_t>(host.free_bytes) : std::nullopt;
}

inline std::string device_line(std::string const& backend) {
    if (backend == "cuda") {
        auto const gpus = visible_gpus();
        if (gpus.empty()) return "cuda (no GPU visible here: memory is predicted, not compared)";
        return gpus.front().device + " (" + gpus.front().name + ", " + gib(double(gpus.front().free_bytes)) +
               " GiB free of " + gib(double(gpus.front().memory_bytes)) + ")";
    }
    auto const host = cpu::host_device_info();
    return "cpu (" + host.name + ", " + gib(double(host.free_bytes)) + " GiB available of " +
           gib(double(host.memory_bytes)) + ")";
}

/// Tokens per second that finished runs of this study measured, by (method, device), from their run_config.json
/// and run_summary.json.
inline std::map<std::pair<std::string, std::string>, double> measured_rates(std::vector<PlannedRun> const& runs) {
    std::map<std::pair<std::string, std::string>, std::pair<double, int>> sums;
    for (auto const& run : runs) {
        auto const summary = run.dir / "run_summary.json", config = run.dir / "run_config.json";
        if (!std::filesystem::exists(summary) || !std::filesystem::exists(config)) continue;
        auto const s = nlohmann::json::parse(std::ifstream(summary), nullptr, false);
        auto const c = nlohmann::json::parse(std::ifstream(config), nullptr, false);
        if (!s.is_object() || !c.is_object() || !s.contains("tokens_per_second")) continue;
        double const rate = s.value("tokens_per_second", 0.0);
        if (rate <= 0) continue;
        auto& [sum, n] = sums[{run.method, c.value("device", std::string("cpu"))}];
        sum += rate, ++n;
    }
    std::map<std::pair<std::string, std::string>, double> out;
    for (auto const& [key, v] : sums) out[key] = v.first / v.second;
    return out;
}

/// What a plan reads of a study's files, when they are all there: its tokenizer and its data, or only the test
/// sets (nothing is written; a suite is generated in memory).
struct PlanInputs {
    Tokenizer tokenizer;
    StudyData data;
};

inline PromptTemplate method_template(Hyperparameters const& h) {
    return h.prompt_template == "compact" ? PromptTemplate::from_json_text(compact_template_json(), "compact")
                                          : PromptTemplate::from_name_or_file(h.prompt_template);
}

inline PlanInputs read_plan_inputs(StudyFile const& s, bool training = true) {
    auto const first_template = method_template(s.hyperparameters.begin()->second);
    auto data = load_study_data(s, first_template, {.training = training, .write_suite = false});
    auto tokenizer = study_tokenizer(s, data, first_template).tokenizer;
    return {std::move(tokenizer), std::move(data)};
}

/// Tokens of the longest test prompt under any method's template: what decoding's caches and prefill must hold.
inline int longest_test_prompt(StudyFile const& s, PlanInputs const& in) {
    std::size_t longest = 1;
    for (auto const& method : s.methods) {
        auto const prompt_template = method_template(s.hyperparameters.at(method));
        for (auto const& set : in.data.test_sets)
            for (auto const& p : set.prompts)
                longest = std::max(longest,
                                   in.tokenizer.encode(prompt_template.generate_prompt(p.prompt, p.input), true).size());
    }
    return int(longest);
}

/// Records, tokens, FLOPs and steps of each run, counted by the trainer's own plan over the study's real data
/// (tokenised as the runs tokenise it); nothing without the data.
inline std::vector<RunFigures> count_runs(StudyFile const& s, std::vector<PlannedRun> const& runs,
                                          FlopCostOf const& cost_of, PlanInputs* in) {
    std::vector<RunFigures> out(runs.size());
    if (!in) return out;
    std::map<std::string, TuningExamples> examples;
    for (std::size_t i = 0; i < runs.size(); ++i) {
        auto const& run = runs[i];
        auto const& h = s.hyperparameters.at(run.method);
        if (!examples.count(run.method))
            examples[run.method] = tuning_examples(s, in->data, in->tokenizer, method_template(h), h);
        auto const mixture = run_mixture(run, examples.at(run.method).split.train, h, s.seed);
        auto options = trainer_options(run, h, /*quiet*/ true);
        options.cost = cost_of(run.method);
        auto const plan = plan_training(mixture, options);
        out[i] = {plan.target.records, plan.target.tokens, plan.steps, plan.target.flops, std::nullopt};
    }
    return out;
}

}  // namespace plan_detail

/// Prints the plan of `s` on `backend` ("cpu" or "cuda"); returns the exit status: 0, or 2 after naming every
/// file the study lacks (the plan is printed first, with what can be counted without them).
inline int print_plan(StudyFile const& s, PlanDevice const& device) {
    using namespace plan_detail;
    auto const& backend = device.backend;
    auto const missing = missing_files(s);
    auto const available = available_memory(backend);
    std::printf("Plan of study \"%s\" (%s) on %s\n", s.name.c_str(),
                s.source.empty() ? "embedded default" : s.source.string().c_str(), device_line(backend).c_str());

    struct Row {
        std::string model;
        PlannedRun run;
        RunFigures figures;
        std::size_t peak = 0;
    };
    std::vector<Row> rows;
    std::printf("\nMemory in GiB: a training step at the micro-batch and cutoff, then decoding with the training "
                "buffers still held (%s); the peak is the most held at once.\n",
                missing.empty() ? "prompts as long as the longest test prompt"
                                : "prompts as long as the cutoff, until the test sets are there");
    bool const ranks = device.ranks > 1;  // then a rank's peak under ZeRO-1 as well
    if (ranks)
        std::printf("\nPer rank of %d data-parallel ranks: every rank holds the weights, gradients and activations; "
                    "AdamW's moments are whole on every rank, or with ZeRO-1 a 1/%d shard on each.\n",
                    device.ranks, device.ranks);
    std::printf("\n| model | method | micro-batch x cutoff | attention | fp32 weights | bf16 weights | gradients + AdamW | "
                "activations | temporaries + scratch | decoding | peak GiB | fits |%s\n"
                "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|%s\n",
                ranks ? " ZeRO-1: gradients + AdamW | ZeRO-1: peak GiB | fits |" : "", ranks ? "---:|---:|---|" : "");
    for (auto const& one : split_by_base_model(s)) {
        auto const runs = plan_runs(one);
        std::optional<PlanInputs> inputs;
        if (missing.empty()) {
            std::fprintf(stderr, "plan: reading the data of %zu languages\n", one.languages.size());
            inputs = read_plan_inputs(one);
        }
        std::optional<int> const prompt = inputs ? std::optional<int>(longest_test_prompt(one, *inputs)) : std::nullopt;
        std::map<std::string, std::size_t> peaks;
        for (auto const& method : one.methods) {
            auto const m = plan_memory(one, method, device, prompt);
            peaks[method] = m.peak;
            auto const& h = one.hyperparameters.at(method);
            auto const fits = [&](std::size_t peak) {
                return !available ? "?" : peak <= *available ? "yes" : "**no**";
            };
            std::string zero1;
            if (ranks) {
                auto const z = plan_memory(one, method, device, prompt, distributed::OptimizerSharding::Zero1);
                zero1 = " " + gib(double(z.gradients + z.optimizer)) + " | " + gib(double(z.peak)) + " | " +
                        fits(z.peak) + " |";
            }
            std::printf("| %s | %s | %zu x %zu | %s | %s | %s | %s | %s | %s | %s | %s | %s |%s\n", one.preset.c_str(),
                        method.c_str(), h.micro_batch, h.cutoff, m.attention.c_str(), gib(double(m.weights)).c_str(),
                        gib(double(m.bf16_copies + m.frozen_bf16)).c_str(), gib(double(m.gradients + m.optimizer)).c_str(),
                        gib(double(m.activations)).c_str(), gib(double(m.temporaries + m.op_scratch)).c_str(),
                        gib(double(m.kv_cache + m.decode_logits)).c_str(), gib(double(m.peak)).c_str(), fits(m.peak),
                        zero1.c_str());
        }
        auto const figures = count_runs(one, runs, [&](std::string const& method) { return flop_cost_of(one, method); },
                                        inputs ? &*inputs : nullptr);
        for (std::size_t i = 0; i < runs.size(); ++i) rows.push_back({one.preset, runs[i], figures[i], peaks[runs[i].method]});
    }

    auto const rates = [&] {
        std::vector<PlannedRun> all;
        for (auto const& r : rows) all.push_back(r.run);
        return measured_rates(all);
    }();
    std::string const rate_device = backend == "cuda" ? "cuda:0" : "cpu";
    std::printf("\n| # | model | run | budget | records | tokens | FLOPs | steps | peak GiB | time |\n"
                "|---:|---|---|---|---:|---:|---:|---:|---:|---:|\n");
    double records = 0, tokens = 0, flops = 0, steps = 0, seconds = 0;
    bool all_counted = true, all_timed = true;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        auto& r = rows[i];
        auto const rate = rates.find({r.run.method, rate_device});
        if (r.figures.tokens && rate != rates.end()) r.figures.seconds = double(*r.figures.tokens) / rate->second;
        auto const& f = r.figures;
        std::printf("| %zu | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", i + 1, r.model.c_str(), r.run.name.c_str(),
                    r.run.budget.describe().c_str(), f.records ? grouped(double(*f.records)).c_str() : "–",
                    f.tokens ? grouped(double(*f.tokens)).c_str() : "–", f.flops ? sci(*f.flops).c_str() : "–",
                    f.steps ? grouped(double(*f.steps)).c_str() : "–", gib(double(r.peak)).c_str(),
                    f.seconds ? ProgressLine::format_duration(*f.seconds).c_str() : "–");
        records += f.records.value_or(0), tokens += f.tokens.value_or(0), flops += f.flops.value_or(0);
        steps += double(f.steps.value_or(0)), seconds += f.seconds.value_or(0);
        all_counted = all_counted && f.tokens.has_value();
        all_timed = all_timed && f.seconds.has_value();
    }
    std::printf("\ntotal: %zu runs; %s records, %s tokens, %s FLOPs, %s optimizer steps%s; predicted time %s\n",
                rows.size(), all_counted ? grouped(records).c_str() : "–", all_counted ? grouped(tokens).c_str() : "–",
                all_counted ? sci(flops).c_str() : "–", all_counted ? grouped(steps).c_str() : "–",
                all_counted ? "" : " (– : counted once the data files are there)",
                all_timed ? ProgressLine::format_duration(seconds).c_str()
                          : "– (known once a run of each method has measured its rate on this device)");
    if (missing.empty()) return 0;
    std::fprintf(stderr, "\n");
    for (auto const& m : missing) std::fprintf(stderr, "polyalpaca_study: %s\n", m.c_str());
    return 2;
}

/// Stops the study before its first run when a run's predicted peak exceeds the device's available memory, in one
/// sentence naming the run, both figures and what would make it fit. Decoding is planned for the study's longest
/// test prompt (its files must exist). Returns the predicted peaks by base model (preset) and method.
inline std::map<std::string, std::map<std::string, std::size_t>> require_fit(StudyFile const& s,
                                                                            PlanDevice const& device) {
    auto const& backend = device.backend;
    auto const available = plan_detail::available_memory(backend);
    std::map<std::string, std::map<std::string, std::size_t>> peaks;
    for (auto const& one : split_by_base_model(s)) {
        auto const inputs = plan_detail::read_plan_inputs(one, /*training*/ false);  // the run reads it once
        int const prompt = plan_detail::longest_test_prompt(one, inputs);
        for (auto const& method : one.methods) {
            auto const m = plan_memory(one, method, device, prompt,
                                       device.zero1 ? distributed::OptimizerSharding::Zero1
                                                    : distributed::OptimizerSharding::Replicated);
            peaks[one.preset][method] = m.peak;
            if (!available || m.peak <= *available) continue;
            std::string first;
            for (auto const& r : plan_runs(one))
                if (r.method == method && first.empty()) first = r.name;
            auto const& h = one.hyperparameters.at(method);
            std::size_t const state =
                m.weights + m.frozen_bf16 + m.bf16_copies + m.gradients + m.optimizer + m.workspace;
            using plan_detail::gib;
            std::string const remedy =
                state >= *available
                    ? "its weights" + std::string(method == "full" ? ", gradients and AdamW state" : "") +
                          " alone take " + gib(double(state)) + " GiB: " +
                          (method == "full" ? "tune with \"lora\" instead, or run the study under mpirun with --zero1, "
                                              "which shards AdamW's state over the ranks (--plan --ranks N shows the "
                                              "memory per rank)"
                                            : "it needs a device with more memory")
                    : "lower hyperparameters." + method + ".micro_batch (now " + std::to_string(h.micro_batch) +
                          ") or cutoff (now " + std::to_string(h.cutoff) + "), or decoding.batch (now " +
                          std::to_string(one.decoding.batch) + ")";
            fail("run ", first, " (", one.preset, ", ", method, ") is predicted to need ", gib(double(m.peak)),
                 " GiB on ", backend, " but ", gib(double(*available)), " GiB are available; ", remedy,
                 " (polyalpaca_study --plan shows every run's memory)");
        }
    }
    return peaks;
}

}  // namespace polyalpaca::study
