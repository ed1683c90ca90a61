/// @file study/run_training.hpp
/// @brief Trains one planned run (its strategy's mixture of the tuning examples, under its budget, from the study's
///        base weights) and the embedded study's language-model pretraining on the study's engine; both resume
///        from their newest checkpoint, and leave weights (model/ or adapter/), run_config.json and
///        run_summary.json.
#pragma once

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/data/examples.hpp"
#include "polyalpaca/data/mixture.hpp"
#include "polyalpaca/data/mixture_split.hpp"
#include "polyalpaca/io/atomic_file.hpp"
#include "polyalpaca/study/engine.hpp"
#include "polyalpaca/study/planner.hpp"
#include "polyalpaca/study/study_data.hpp"
#include "polyalpaca/tokenizer/tokenizer.hpp"
#include "polyalpaca/train/trainer.hpp"

namespace polyalpaca::study {

/// The tuning examples of every tuned language, tokenised once, and the held-out validation split over them.
struct TuningExamples {
    std::map<std::string, std::vector<Example>> by_language;
    SplitPools split;
};

inline ExampleOptions example_options(Hyperparameters const& h) {
    return {.cutoff = h.cutoff, .train_on_inputs = h.train_on_inputs, .eos = EosPolicy::AlpacaLora};
}

inline TuningExamples tuning_examples(StudyFile const& s, StudyData& d, Tokenizer const& tokenizer,
                                      PromptTemplate const& prompt_template, Hyperparameters const& h) {
    TuningExamples t;
    std::vector<LanguagePool> pools;
    for (auto const& lang : s.languages) {
        auto const& records = d.train.at(lang);
        t.by_language[lang] = make_examples(std::span<Record const>(records), prompt_template, tokenizer,
                                            example_options(h), BadRecordPolicy::Skip, d.report);
        pools.push_back(make_pool(lang, t.by_language[lang]));
    }
    auto const [examples, scored] = count_scored(t.by_language);
    require(examples == 0 || scored > 0, "none of the ", examples, " tuning examples has a token the loss scores: ",
            "each prompt fills the cutoff (", h.cutoff, "); raise the hyperparameters' \"cutoff\"",
            h.train_on_inputs ? "" : " or set \"train_on_inputs\"");
    t.split = split_validation(pools, {.size = h.val_size, .seed = s.seed, .shared_ids = false});
    return t;
}

/// The mixture of a run's strategy over the training pools.
inline Mixture run_mixture(PlannedRun const& run, std::vector<LanguagePool> const& pools, Hyperparameters const& h,
                           std::uint64_t seed) {
    if (run.mixing.kind == Strategy::Kind::Monolingual)  // one run per tuned language, on that language's pool
        for (auto const& pool : pools)
            if (pool.lang == run.languages.front())
                return make_mixture(run.mixing, {pool}, SampleIds::Shared, seed);
    return make_mixture(run.mixing, pools, h.sample_ids == "shared" ? SampleIds::Shared : SampleIds::Disjoint, seed);
}

/// The trainer's options for a planned run under its method's hyperparameters (the engine adds the FLOP cost).
inline TrainerOptions trainer_options(PlannedRun const& run, Hyperparameters const& h, bool quiet) {
    TrainerOptions o;
    o.batching = batching_for_global(h.global_batch, h.micro_batch,
                                     h.group_by_length ? SampleOrder::GroupByLength : SampleOrder::Shuffle);
    o.batching.pad_id = 0;
    o.budget = run.budget.budget();
    o.epochs = run.budget.unit != "epochs" ? 1.0 : run.budget.value > 0 ? run.budget.value : h.epochs;
    o.schedule = schedule_kind_named(h.schedule, "the study file's \"schedule\"");
    o.lr = h.lr;
    o.warmup_steps = h.warmup_steps;
    o.warmup_ratio = h.warmup_ratio;
    o.adamw.weight_decay = h.weight_decay;
    o.max_grad_norm = h.max_grad_norm;
    o.eval_every = h.eval_every;
    o.output_dir = run.dir;
    o.show_progress = !quiet;
    return o;
}

/// Trains `run` into its directory on the engine; `base` names the starting weights in run_config.json ("" :
/// random).
inline TrainResult train_run(StudyEngine& engine, StudyFile const& s, PlannedRun const& run, TuningExamples const& t,
                             Hyperparameters const& h, std::filesystem::path const& base,
                             std::string const& template_name, bool quiet) {
    std::filesystem::create_directories(run.dir);
    auto const mixture = run_mixture(run, t.split.train, h, s.seed);
    nlohmann::json config{{"trainer", "polyalpaca_study"}, {"method", run.method},      {"strategy", run.label},
                          {"mixture", mixture.name()},     {"languages", run.languages}, {"template", template_name},
                          {"model_dir", base.string()},    {"seed", s.seed},             {"cutoff", h.cutoff},
                          {"train_on_inputs", h.train_on_inputs}, {"eos", "alpaca-lora"},  {"budget", run.budget.describe()}};
    config.update(engine.device().to_json());
    config["ranks"] = engine.ranks();
    if (engine.rank() == 0) io::write_file_atomically(run.dir / "run_config.json", config.dump(2) + "\n");
    std::vector<std::vector<Example>> examples;
    for (auto const& pool : mixture.pools()) examples.push_back(t.by_language.at(pool.lang));
    std::vector<std::pair<std::string, std::vector<Example>>> validation;
    for (auto const& pool : t.split.validation) {
        if (std::find(run.languages.begin(), run.languages.end(), pool.lang) == run.languages.end()) continue;
        std::vector<Example> held;
        for (auto const& ref : pool.examples) held.push_back(t.by_language.at(pool.lang)[ref.index]);
        if (!held.empty()) validation.emplace_back(pool.lang, std::move(held));
    }

    return engine.train({.method = run.method,
                         .mixture = mixture,
                         .examples = examples,
                         .validation = validation,
                         .options = trainer_options(run, h, quiet),
                         .weights_dir = run.dir / (run.method == "full" ? "model" : "adapter"),
                         .base_model_name = base.string()});
}

/// Pretraining examples: each language's sentences joined by newlines into one byte stream, cut into pieces of
/// `sequence` tokens that every token is a label of.
inline std::vector<std::pair<std::string, std::vector<Example>>> pretraining_examples(
    StudyData const& d, Tokenizer const& tokenizer, std::size_t sequence) {
    std::vector<std::pair<std::string, std::vector<Example>>> out;
    for (auto const& [lang, sentences] : d.pretrain) {
        std::string text;
        for (auto const& line : sentences) text += line + "\n";
        auto const ids = tokenizer.encode(text, false);
        std::vector<Example> pieces;
        for (std::size_t begin = 0; begin + sequence <= ids.size(); begin += sequence) {
            Example e;
            e.ids.assign(ids.begin() + std::ptrdiff_t(begin), ids.begin() + std::ptrdiff_t(begin + sequence));
            e.labels = e.ids;
            e.lang = lang;
            e.id = lang + "-pretrain-" + std::to_string(begin / sequence);
            e.full_length = sequence;
            pieces.push_back(std::move(e));
        }
        require(!pieces.empty(), "pretraining: the text of ", lang, " is shorter than one sequence of ", sequence,
                " tokens");
        out.emplace_back(lang, std::move(pieces));
    }
    return out;
}

/// Pretrains the engine's full-parameter model from random weights on every language's text into <dir>, saving
/// <dir>/model.
inline void pretrain(StudyEngine& engine, StudyFile const& s, StudyData const& d, Tokenizer const& tokenizer,
                     std::filesystem::path const& dir, bool quiet) {
    auto const& p = s.pretrain;
    auto all = pretraining_examples(d, tokenizer, p.sequence);
    std::vector<LanguagePool> pools;
    for (auto const& [lang, examples] : all) pools.push_back(make_pool(lang, examples));
    auto const split = split_validation(pools, {.size = 4, .seed = s.seed, .shared_ids = false});
    auto const mixture = Mixture::multilingual(split.train, s.seed);
    std::vector<std::vector<Example>> examples;
    std::vector<std::pair<std::string, std::vector<Example>>> validation;
    for (std::size_t i = 0; i < all.size(); ++i) {
        examples.push_back(all[i].second);
        std::vector<Example> held;
        for (auto const& ref : split.validation[i].examples) held.push_back(all[i].second[ref.index]);
        validation.emplace_back(all[i].first, std::move(held));
    }
    TrainerOptions o;
    o.batching = batching_for_global(p.micro_batch * p.accumulation, p.micro_batch);
    o.budget = Budget::records(std::int64_t(p.steps * p.micro_batch * p.accumulation));
    o.schedule = ScheduleKind::Cosine;
    o.lr = p.lr;
    o.warmup_steps = long(p.steps / 20);
    o.eval_every = long(std::max<std::size_t>(1, p.steps / 4));
    o.keep_last = 1;
    o.output_dir = dir;
    o.show_progress = !quiet;
    auto const result = engine.pretrain({.method = "full",
                                         .mixture = mixture,
                                         .examples = examples,
                                         .validation = validation,
                                         .options = o,
                                         .weights_dir = dir / "model",
                                         .base_model_name = ""});
    std::printf("pretraining: %ld steps, %lld tokens, %.0f tokens/s, validation loss %.3f\n", result.steps,
                (long long)result.spent.tokens, result.tokens_per_second, result.best_loss);
}

}  // namespace polyalpaca::study
