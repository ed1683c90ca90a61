/// @file study/driver.hpp
/// @brief run_study: the whole study of one base model on one engine (study/engine.hpp), resumable. Data and
///        tokenizer; the embedded study's pretraining; every planned run trained (resuming from its newest
///        checkpoint) and evaluated unless its directory says it is done, here or in child processes several at a
///        time (study/run_jobs.hpp); then the report and the summary table. study_state.json is rewritten after
///        every step.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "polyalpaca/io/atomic_file.hpp"
#include "polyalpaca/study/byte_tokenizer.hpp"
#include "polyalpaca/study/engine.hpp"
#include "polyalpaca/study/planner.hpp"
#include "polyalpaca/study/run_evaluation.hpp"
#include "polyalpaca/study/run_jobs.hpp"
#include "polyalpaca/study/run_training.hpp"
#include "polyalpaca/study/study_data.hpp"
#include "polyalpaca/study/study_report.hpp"
#include "polyalpaca/study/study_tokenizer.hpp"
#include "polyalpaca/study/summary.hpp"
#include "polyalpaca/train/progress.hpp"

namespace polyalpaca::study {

/// How run_study runs: what it prints, and where the runs train.
struct StudyRunOptions {
    bool quiet = false;
    std::map<std::string, std::size_t> predicted_peaks;  ///< by method (from the plan), printed beside the measured
    /// How a child process starts to train one run; when set, every run trains in one, `jobs` at a time. Empty:
    /// every run trains here, one after another.
    JobLauncher launch;
    int jobs = 1;
    /// Set in such a child: train and evaluate this run alone (pretraining done before) and write nothing else.
    std::string only_run;
};

struct StudyOutcome {
    std::filesystem::path report;
    std::string summary;        ///< the summary table and best-strategy lines (markdown)
    std::size_t runs_trained = 0, runs_skipped = 0;
    double seconds = 0;
};

namespace driver_detail {

using Clock = std::chrono::steady_clock;

inline double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

/// A method's template as a name or file: "compact" is written to <output>/compact_template.json (when `write`).
inline std::string template_name(StudyFile const& s, std::string const& name, bool write = true) {
    if (name != "compact") return name;
    auto const path = s.output / "compact_template.json";
    if (write) io::write_file_atomically(path, compact_template_json());
    return path.string();
}

/// What rank 0 of a data-parallel study tells the other ranks next (StudyEngine::from_rank0): the study is done,
/// pretraining starts, or run i's training starts (run_first + i).
enum StudyStep : long long { study_done = 0, study_pretrain = 1, study_run_first = 2 };

}  // namespace driver_detail

/// Runs (or resumes) the study on `engine`, whose model is the study's base model.
inline StudyOutcome run_study(StudyFile s, StudyEngine& engine, StudyRunOptions const& o = {}) {
    using namespace driver_detail;
    auto const start = Clock::now();
    bool const quiet = o.quiet, child = !o.only_run.empty();
    bool const in_children = o.launch && !child;  // the runs train in child processes
    require(!s.suite || s.suite->bpe_vocab <= std::size_t(engine.vocab()),
            s.source.empty() ? std::string("the study") : s.source.string(), ": suite.bpe_vocab is ",
            s.suite ? s.suite->bpe_vocab : 0, " tokens but ", s.preset, "'s vocabulary holds ", engine.vocab());
    for (auto const& method : s.methods) require_room_for_prompts(s, method, engine.max_positions());
    auto const runs = plan_runs(s);
    if (child) {  // a job's run, checked before any work: it must be planned, and its base model made
        require(std::any_of(runs.begin(), runs.end(), [&](auto const& r) { return r.name == o.only_run; }),
                "the study plans no run named \"", o.only_run, "\"");
        auto const pretrained = s.output / "pretrain" / "model";
        require(s.pretrain.steps == 0 || std::filesystem::exists(pretrained / "config.json"), "run ", o.only_run,
                ": the study's pretrained model ", pretrained.string(),
                " is missing (its parent runner makes it before starting runs)");
    }
    std::filesystem::create_directories(s.output);
    if (!child) io::remove_stale_temp_files(s.output, true);  // left by a killed study; its runs are not started yet
    for (auto& [method, h] : s.hyperparameters) h.prompt_template = template_name(s, h.prompt_template, !child);
    engine.from_rank0(0);  // data parallel: the other ranks read the templates next (follow_study)
    auto const first_template = PromptTemplate::from_name_or_file(s.hyperparameters.begin()->second.prompt_template);
    StudyData data = load_study_data(s, first_template, {.write_suite = !child});
    // A job's child reads the tokenizer its parent made and wrote rather than learning it again.
    auto const [tokenizer, made_here] =
        child && study_tokenizer_file(s).empty()
            ? StudyTokenizer{Tokenizer::from_hf_json(s.output / "tokenizer.json"), ""}
            : study_tokenizer(s, data, first_template);
    if (!made_here.empty() && !child) io::write_file_atomically(s.output / "tokenizer.json", made_here);
    require(tokenizer.vocab_size() <= engine.vocab(), "the tokenizer has ", tokenizer.vocab_size(),
            " tokens but the model's vocabulary holds ", engine.vocab());
    require(tokenizer.eos_id().has_value(), "the tokenizer '", tokenizer.origin(), "' defines no EOS token");
    std::printf("study %s: %zu runs (%zu methods x %zu budgets), %zu test languages, output %s\non %s\n",
                s.name.c_str(), runs.size(), s.methods.size(), s.budgets.size(), data.test_sets.size(),
                s.output.string().c_str(), engine.device().describe().c_str());
    auto const state = [&](std::vector<std::string> const& training) {  // the parent alone writes study_state.json
        if (!child) write_study_state(s, runs, training, since(start));
    };
    state({});

    // The embedded study's base model: pretrained here on every language's text.
    std::filesystem::path base = s.checkpoint;
    engine.set_base(base);
    std::optional<RunEvaluation> baseline;
    if (s.pretrain.steps > 0) {
        auto const dir = s.output / "pretrain";
        if (std::filesystem::exists(dir / "model" / "config.json")) {
            std::printf("pretraining: done before, %s\n", (dir / "model").string().c_str());
        } else {
            auto const t = Clock::now();
            std::printf("pretraining %s on %zu languages, %zu steps\n", s.preset.c_str(), data.pretrain.size(),
                        s.pretrain.steps);
            engine.from_rank0(study_pretrain);
            pretrain(engine, s, data, tokenizer, dir, quiet);
            std::printf("pretraining took %s\n", ProgressLine::format_duration(since(t)).c_str());
        }
        base = dir / "model";
        engine.set_base(base);
        // The trivial baseline: the pretrained model answering without tuning.
        if (child) {  // the baseline is the parent's, for the report
        } else if (std::filesystem::exists(dir / "evaluation.json")) {
            baseline = read_evaluation(dir / "evaluation.json");
        } else {
            eval::RunInfo info;
            info.name = "base", info.model = s.preset, info.method = "full", info.strategy = "no tuning";
            info.prompt_template = s.hyperparameters.begin()->second.prompt_template;
            info.cutoff = s.hyperparameters.begin()->second.cutoff;
            engine.load("full", "");
            baseline = evaluate_network(engine, s, data, tokenizer, info,
                                        {"base", "no tuning", "full", "none", {}, {}, 0}, dir, "[base]", quiet);
        }
    }

    StudyOutcome outcome;
    if (in_children) {  // o.jobs at a time
        std::vector<std::size_t> pending;
        for (std::size_t i = 0; i < runs.size(); ++i)
            if (run_evaluated(runs[i])) ++outcome.runs_skipped;
            else pending.push_back(i);
        if (outcome.runs_skipped > 0) std::printf("%zu runs finished before: skipped\n", outcome.runs_skipped);
        if (!pending.empty())
            outcome.runs_trained = run_jobs(runs, pending, std::min(o.jobs, int(pending.size())), o.launch,
                                            s.output / "logs", quiet, state);
        state({});
    }
    std::map<std::string, TuningExamples> examples;  // by method (templates and options differ)
    double trained_seconds = 0;
    std::size_t trained_here = 0;
    for (std::size_t i = 0; i < runs.size() && !in_children; ++i) {
        auto const& run = runs[i];
        if (child && run.name != o.only_run) continue;
        auto const label = run_label(i, runs.size(), run.name);
        if (run_evaluated(run)) {
            std::printf("%s finished before: skipped\n", label.c_str());
            ++outcome.runs_skipped;
            continue;
        }
        auto const t = Clock::now();
        auto const& h = s.hyperparameters.at(run.method);
        bool const trained_now = !run_trained(run);
        if (trained_now) {
            if (!examples.count(run.method)) {
                auto const prompt_template = PromptTemplate::from_name_or_file(h.prompt_template);
                examples[run.method] = tuning_examples(s, data, tokenizer, prompt_template, h);
            }
            state({run.name});
            std::printf("%s training: %s, %s\n", label.c_str(), run.label.c_str(), run.budget.describe().c_str());
            std::fflush(stdout);
            engine.from_rank0(study_run_first + (long long)i);
            auto const r = train_run(engine, s, run, examples.at(run.method), h, base, h.prompt_template, quiet);
            std::printf("%s trained: %ld steps, %lld records, %lld tokens, %.0f tokens/s, best validation loss %.4f%s\n",
                        label.c_str(), r.steps, (long long)r.spent.records, (long long)r.spent.tokens,
                        r.tokens_per_second, r.best_loss, r.resumed ? " (resumed)" : "");
            ++outcome.runs_trained;
        }
        auto const e = trained_now ? evaluate_trained(engine, s, data, tokenizer, run, label, quiet)
                                   : evaluate_run(engine, s, data, tokenizer, run, label, quiet);
        double mean = 0;
        int n = 0;
        for (auto const& [l, o] : e.by_language)
            if (o.exact_match) mean += *o.exact_match, ++n;
        trained_seconds += since(t), ++trained_here;
        std::size_t left = 0;
        for (std::size_t j = i + 1; j < runs.size(); ++j) left += run_evaluated(runs[j]) ? 0 : 1;
        double const rate = trained_seconds / double(trained_here);
        std::string const progress = child ? "" : " | study " + ProgressLine::format_duration(since(start)) +
                                                      " elapsed | " + eval::report_detail::fixed(rate / 60, 1) +
                                                      " min/run | ETA " + ProgressLine::format_duration(rate * double(left));
        std::printf("%s evaluated in %s%s%s\n", label.c_str(), ProgressLine::format_duration(e.seconds).c_str(),
                    n > 0 ? (", mean exact match " + eval::report_detail::fixed(100 * mean / n, 1) + "%").c_str() : "",
                    progress.c_str());
        auto const predicted = o.predicted_peaks.find(run.method);
        std::printf("%s memory: peak so far %s GiB measured (%s)%s\n", label.c_str(),
                    eval::report_detail::fixed(double(engine.measured_peak_bytes()) / double(1 << 30), 2).c_str(),
                    engine.device().peak_measure.c_str(),
                    predicted == o.predicted_peaks.end()
                        ? ""
                        : (", " + eval::report_detail::fixed(double(predicted->second) / double(1 << 30), 2) +
                           " GiB predicted for " + run.method + " (--plan)").c_str());
        std::fflush(stdout);
        state({});
    }

    engine.from_rank0(study_done);
    if (child) {
        outcome.seconds = since(start);
        return outcome;
    }

    // The report over every run's evaluation.json.
    eval::Study study;
    std::vector<RunEvaluation> evaluations;
    std::optional<eval::ScoreTable> scores;
    if (!s.judge.scores.empty()) scores = eval::ScoreTable::read(s.judge.scores);
    for (auto const& run : runs) {
        auto const e = read_evaluation(run.dir / "evaluation.json");
        auto info = eval::read_run_info(run.dir, s.preset);
        auto const responses = eval::read_responses(run.dir / "responses.jsonl");
        for (auto const& set : data.test_sets) {
            auto const it = e.by_language.find(set.lang);
            if (it == e.by_language.end()) continue;
            eval::LanguageResult r{.run = run.name, .language = set.lang};
            r.responses = it->second.responses, r.fidelity = it->second.fidelity, r.loss = it->second.loss;
            r.lost = set.lost, r.zero_shot = !info.trained_on(set.lang);
            if (scores) {
                auto const m = scores->mean(run.name, set.lang, responses);
                r.scored = m.scored;
                if (m.scored > 0) r.score = m.mean;
            }
            study.results.push_back(r);
        }
        eval::Fidelity fidelity;  // over the responses fidelity counts, as the run's figures are
        for (auto const& r : responses)
            if (counts_for_fidelity(data, r)) fidelity.add(r.language, eval::identify_language(r.response).code);
        study.confusion[run.name] = fidelity.confusion_markdown();
        study.runs.push_back(std::move(info));
        evaluations.push_back(e);
    }
    std::size_t prompts = 0;
    for (auto const& set : data.test_sets) prompts += set.prompts.size();
    study.notes.push_back("test sets: " + std::to_string(data.test_sets.size()) + " languages, " +
                          std::to_string(prompts) + " prompts" + (s.suite ? " (synthetic suite, " + (s.output / "suite").string() + ")" : ""));
    study.notes.push_back("decoding: " + s.decoding.preset +
                          (s.decoding.max_new_tokens > 0 ? ", max_new_tokens " + std::to_string(s.decoding.max_new_tokens) : ""));
    study.notes.push_back("loss: mean token cross-entropy on the test prompts with their answers where known, else "
                          "the run's held-out validation split");
    study.notes.push_back("language id: CLD2, on the responses whose answers carry a language (on the synthetic "
                          "suite its sentence tasks; digits and single words have none); short ones count as "
                          "unknown (un)");
    study.notes.push_back(scores ? "judge scores: " + s.judge.scores + " (" + std::to_string(scores->size()) + " lines)"
                                 : "judge scores: none given");
    if (baseline) study.notes.push_back("base model: pretrained here (" + (s.output / "pretrain" / "model").string() + ")");
    study.notes.push_back("device: " + engine.device().describe() + "; the base checkpoint was read from disk " +
                          std::to_string(engine.base_reads()) + " time(s) in this invocation");
    std::vector<std::string> langs;
    for (auto const& set : data.test_sets) langs.push_back(set.lang);
    std::string header = "Study **" + s.name + "**: base model " + s.preset +
                         (s.checkpoint.empty() ? "" : " (" + s.checkpoint.string() + ")") + "; study file " +
                         (s.source.empty() ? std::string("embedded default") : s.source.string()) + ".\n";
    outcome.summary = summary_markdown(evaluations, langs, baseline);
    write_study_report(s.output, study, evaluations, langs, outcome.summary, header);
    outcome.report = s.output / "report.md";
    outcome.seconds = since(start);
    write_study_state(s, runs, {}, outcome.seconds);
    return outcome;
}

/// A rank other than 0 of a data-parallel study (engine.ranks() > 1): it trains each run with rank 0 and does
/// nothing else. Rank 0 runs run_study: it decides what runs, evaluates and writes; before each training it tells
/// the others which (StudyStep), and they build the same job from the same study file and data, so every rank's
/// Trainer takes its share of the same global steps. Nothing here writes a file.
inline void follow_study(StudyFile s, StudyEngine& engine) {
    using namespace driver_detail;
    require(engine.rank() != 0, "follow_study: rank 0 runs the study (run_study)");
    for (auto& [method, h] : s.hyperparameters) h.prompt_template = template_name(s, h.prompt_template, false);
    engine.from_rank0(0);  // rank 0 has written the templates
    auto const first_template = PromptTemplate::from_name_or_file(s.hyperparameters.begin()->second.prompt_template);
    StudyData data = load_study_data(s, first_template, {.write_suite = false});
    auto const tokenizer = study_tokenizer(s, data, first_template).tokenizer;
    auto const runs = plan_runs(s);
    std::filesystem::path base = s.checkpoint;
    engine.set_base(base);
    std::map<std::string, TuningExamples> examples;
    for (;;) {
        long long const step = engine.from_rank0(0);
        if (step == study_done) return;
        if (step == study_pretrain) {
            pretrain(engine, s, data, tokenizer, s.output / "pretrain", /*quiet*/ true);
            continue;
        }
        auto const i = std::size_t(step - study_run_first);
        require(step >= study_run_first && i < runs.size(), "rank ", engine.rank(), ": rank 0 announced step ", step,
                " of a study of ", runs.size(), " runs");
        if (s.pretrain.steps > 0 && base != s.output / "pretrain" / "model") {  // rank 0 tunes the pretrained model
            base = s.output / "pretrain" / "model";
            engine.set_base(base);
        }
        auto const& run = runs[i];
        auto const& h = s.hyperparameters.at(run.method);
        if (!examples.count(run.method)) {
            auto const prompt_template = PromptTemplate::from_name_or_file(h.prompt_template);
            examples[run.method] = tuning_examples(s, data, tokenizer, prompt_template, h);
        }
        train_run(engine, s, run, examples.at(run.method), h, base, h.prompt_template, /*quiet*/ true);
    }
}

}  // namespace polyalpaca::study
