/// @file eval/evaluate_program.hpp
/// @brief The whole evaluator behind the example evaluators: for each trained run, responses to every test set
///        (generate/), language fidelity (CLD2), validation loss per language, judge scores when given, and the
///        report (report.md, results.csv, plots/). The model types are fixed at compile time, as in the trainers.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "polyalpaca/backend/cpu_eigen.hpp"
#include "polyalpaca/data/alpaca.hpp"
#include "polyalpaca/data/batching.hpp"
#include "polyalpaca/data/examples.hpp"
#include "polyalpaca/data/prompt_template.hpp"
#include "polyalpaca/eval/evaluate_options.hpp"
#include "polyalpaca/eval/fidelity.hpp"
#include "polyalpaca/eval/report.hpp"
#include "polyalpaca/eval/responses.hpp"
#include "polyalpaca/eval/run_info.hpp"
#include "polyalpaca/eval/score_table.hpp"
#include "polyalpaca/eval/test_set.hpp"
#include "polyalpaca/generate/generate.hpp"
#include "polyalpaca/io/atomic_file.hpp"
#include "polyalpaca/io/hf_weights.hpp"
#include "polyalpaca/io/peft.hpp"
#include "polyalpaca/models/causal_lm.hpp"
#include "polyalpaca/tokenizer/tokenizer.hpp"
#include "polyalpaca/train/progress.hpp"

namespace polyalpaca::eval {

namespace evaluate_detail {

/// "prompts done / total | prompts/s | new tokens/s | ETA" over every run; redrawn in place on a terminal, one line
/// per batch otherwise.
class PromptProgress {
public:
    PromptProgress(std::size_t total, bool quiet)
        : total_(total), quiet_(quiet), tty_(isatty(fileno(stderr)) != 0), start_(std::chrono::steady_clock::now()) {}

    void update(std::string const& label, std::size_t done_now, std::int64_t tokens_now) {
        done_ += done_now;
        tokens_ += tokens_now;
        if (quiet_) return;
        double const elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        double const rate = elapsed > 0 ? double(done_) / elapsed : 0.0;
        double const eta = rate > 0 ? double(total_ - done_) / rate : 0.0;
        std::fprintf(stderr, "%s%s | prompts %zu/%zu | %.2f prompts/s | %.0f new tok/s | ETA %s%s",
                     tty_ ? "\r\033[K" : "", label.c_str(), done_, total_, rate,
                     elapsed > 0 ? double(tokens_) / elapsed : 0.0, ProgressLine::format_duration(eta).c_str(),
                     tty_ ? "" : "\n");
        std::fflush(stderr);
    }
    void finish() const {
        if (!quiet_ && tty_) std::fputc('\n', stderr);
    }

private:
    std::size_t total_, done_ = 0;
    std::int64_t tokens_ = 0;
    bool quiet_, tty_;
    std::chrono::steady_clock::time_point start_;
};

inline nlohmann::json decoding_json(std::string const& preset, GenerationConfig const& g) {
    nlohmann::json j{{"preset", preset},
                     {"max_new_tokens", g.max_new_tokens},
                     {"num_beams", g.num_beams},
                     {"do_sample", g.do_sample},
                     {"no_repeat_ngram_size", g.no_repeat_ngram_size},
                     {"repetition_penalty", g.repetition_penalty}};
    if (g.num_beams > 1) j["length_penalty"] = g.length_penalty;
    if (g.do_sample)
        j.update({{"temperature", g.temperature}, {"top_k", g.top_k}, {"top_p", g.top_p}, {"seed", g.seed}});
    return j;
}

/// The Alpaca file of `lang` in a --val directory, or "" when it has none.
inline std::filesystem::path val_file(std::filesystem::path const& dir, std::string const& lang) {
    for (auto const& name : {"val_" + lang + ".jsonl", lang + ".jsonl", lang + ".json"})
        if (std::filesystem::exists(dir / name)) return dir / name;
    return {};
}

/// The token ids the model reads for prompt `p`: the template's prompt, without a trailing EOS.
inline std::vector<std::int32_t> prompt_ids(Tokenizer const& tokenizer, PromptTemplate const& prompt_template,
                                            TestPrompt const& p) {
    auto ids = tokenizer.encode(prompt_template.generate_prompt(p.prompt, p.input), true);
    if (auto const eos = tokenizer.eos_id(); eos && ids.size() > 1 && ids.back() == *eos) ids.pop_back();
    return ids;
}

/// Whether `ids` and `max_new_tokens` fit the model's positions; when not, under Fail an Error naming the prompt.
inline bool prompt_fits(std::vector<std::int32_t> const& ids, TestPrompt const& p, int max_new_tokens,
                        int max_positions, BadRecordPolicy policy) {
    bool const fits = std::int64_t(ids.size()) + max_new_tokens <= max_positions;
    require(fits || policy == BadRecordPolicy::Skip, p.source, ": the prompt has ", ids.size(), " tokens; with ",
            max_new_tokens, " new tokens that exceeds the model's ", max_positions,
            " positions (--bad-records skip leaves such prompts out)");
    return fits;
}

/// Responses to every prompt of every set, decoded in batches of `batch` by `decode(prompts, config)` (token ids
/// in, one Generated per prompt out: generate() on a network, or a study engine), for a model of
/// `max_positions` positions. A prompt too long for the model is an Error under Fail; under Skip it gets no
/// response and is counted in `too_long` by language.
template <class Decode>
std::vector<Response> generate_responses(Decode&& decode, int max_positions, Tokenizer const& tokenizer,
                                         PromptTemplate const& prompt_template, std::vector<TestSet> const& sets,
                                         GenerationConfig const& config, nlohmann::json const& decoding,
                                         RunInfo const& run, std::size_t batch, std::string const& label,
                                         PromptProgress& progress, BadRecordPolicy policy,
                                         std::map<std::string, std::size_t>& too_long) {
    std::vector<Response> out;
    for (auto const& set : sets) {
        for (std::size_t begin = 0; begin < set.prompts.size(); begin += batch) {
            std::size_t const end = std::min(set.prompts.size(), begin + batch);
            std::vector<std::vector<std::int32_t>> ids;
            std::vector<TestPrompt const*> asked;
            for (std::size_t i = begin; i < end; ++i) {
                auto const& p = set.prompts[i];
                auto one = prompt_ids(tokenizer, prompt_template, p);
                if (!prompt_fits(one, p, config.max_new_tokens, max_positions, policy)) {
                    ++too_long[set.lang];
                    continue;
                }
                ids.push_back(std::move(one));
                asked.push_back(&p);
            }
            if (ids.empty()) {
                progress.update(label + " " + set.lang, end - begin, 0);
                continue;
            }
            std::vector<Generated> const generated = decode(std::span<std::vector<std::int32_t> const>(ids), config);
            std::int64_t tokens = 0;
            for (std::size_t i = 0; i < asked.size(); ++i) {
                auto const& p = *asked[i];
                auto const& g = generated[i];
                tokens += std::int64_t(g.tokens.size());
                // Ids of the model's padded vocabulary rows that the tokenizer lacks decode to nothing, as in HF.
                std::vector<std::int32_t> known;
                for (auto id : g.tokens)
                    if (id < tokenizer.vocab_size()) known.push_back(id);
                out.push_back({.run = run.name,
                               .model = run.model,
                               .method = run.method,
                               .strategy = run.strategy,
                               .language = set.lang,
                               .id = p.id,
                               .instruction = p.prompt,
                               .input = p.input,
                               .response = extract_response(prompt_template, tokenizer.decode(known, true)),
                               .decoding = decoding});
            }
            progress.update(label + " " + set.lang, end - begin, tokens);
        }
    }
    return out;
}

/// Mean token loss over the examples of `records` (the run's template and example options), each micro-batch of
/// 4 scored by `score(batch)` (a BatchLoss: net.evaluate, or a study engine's loss).
template <class Score>
std::optional<double> validation_loss(Score&& score, Tokenizer const& tokenizer, PromptTemplate const& prompt_template,
                                      RunInfo const& run, std::vector<Record> const& records, BadRecordPolicy policy,
                                      DataReport& report) {
    ExampleOptions const options{.cutoff = run.cutoff,
                                 .train_on_inputs = run.train_on_inputs,
                                 .eos = run.eos == "stanford" ? EosPolicy::StanfordAlpaca : EosPolicy::AlpacaLora};
    auto const examples =
        make_examples(std::span<Record const>(records), prompt_template, tokenizer, options, policy, report);
    std::int32_t const pad = tokenizer.pad_id().value_or(tokenizer.eos_id().value_or(0));
    double sum = 0;
    std::int64_t count = 0;
    for (std::size_t begin = 0; begin < examples.size(); begin += 4) {
        std::vector<Example const*> chunk;
        for (std::size_t i = begin; i < std::min(examples.size(), begin + 4); ++i) chunk.push_back(&examples[i]);
        auto const loss = score(collate(std::span<Example const* const>(chunk), pad));
        sum += loss.sum;
        count += loss.count;
    }
    if (count == 0) return std::nullopt;
    return sum / double(count);
}

/// What one run gives per test language: responses, then fidelity, loss and scores filled in by the caller.
struct RunOutcome {
    std::vector<Response> responses;
    std::map<std::string, double> val_loss;
    std::map<std::string, std::size_t> too_long;  ///< prompts left out under --bad-records skip, by language
};

/// The decoding preset a run is evaluated with ("paper" picks by method) and its configuration.
inline std::pair<std::string, GenerationConfig> run_decoding(EvaluateCommandLine const& c, RunInfo const& run,
                                                            Tokenizer const& tokenizer) {
    std::string const preset =
        c.decoding == "paper" ? (run.method == "full" ? "paper-full" : "paper-lora") : c.decoding;
    auto config = GenerationConfig::from_name(preset);
    if (c.max_new_tokens > 0) config.max_new_tokens = c.max_new_tokens;
    if (auto const eos = tokenizer.eos_id()) config.eos_token_ids = {*eos};
    return {preset, config};
}

/// Under --bad-records fail, an Error before any work when a prompt with a run's template and new tokens would
/// not fit the model's positions (each distinct template and length is checked once).
inline void check_prompt_lengths(EvaluateCommandLine const& c, std::vector<RunInfo> const& runs,
                                 std::vector<TestSet> const& sets, Tokenizer const& tokenizer, int max_positions) {
    std::set<std::pair<std::string, int>> checked;
    for (auto const& run : runs) {
        int const new_tokens = run_decoding(c, run, tokenizer).second.max_new_tokens;
        if (!checked.insert({run.prompt_template, new_tokens}).second) continue;
        auto const prompt_template = PromptTemplate::from_name_or_file(run.prompt_template);
        for (auto const& set : sets)
            for (auto const& p : set.prompts)
                prompt_fits(prompt_ids(tokenizer, prompt_template, p), p, new_tokens, max_positions,
                            BadRecordPolicy::Fail);
    }
}

/// Loads the run's weights into a fresh network of type Model on Backend and evaluates it.
template <class Model, class Backend>
RunOutcome evaluate_run(RunInfo const& run, EvaluateCommandLine const& c, Tokenizer const& tokenizer,
                        std::vector<TestSet> const& sets, std::map<std::string, std::vector<Record>> const& val,
                        std::filesystem::path const& responses_path, std::string const& label, PromptProgress& progress,
                        std::vector<std::string>& notes, DataReport& report) {
    typename Backend::Context ctx;
    auto net = std::make_unique<CausalLm<Model, Backend, float>>(
        ctx, NetworkOptions{.seed = run.seed, .adapter_dropout = 0.0});
    if constexpr (has_adapter_weights<typename Model::adapter>) {
        auto const base = !c.base_model.empty() ? c.base_model : run.base_model_dir;
        if (base.empty()) {
            notes.push_back("run " + run.name + ": the " + std::string(Model::adapter::name) +
                            " adapter sits on random base weights (seed " +
                            std::to_string(run.seed) + "), as the run was trained");
        } else {
            auto const warning = io::load_hf_checkpoint(ctx, *net, base);
            if (!warning.empty()) std::fprintf(stderr, "%s\n", warning.c_str());
        }
        io::load_peft_adapter(ctx, *net, run.weights);
    } else {
        auto const warning = io::load_hf_checkpoint(ctx, *net, run.weights);
        if (!warning.empty()) std::fprintf(stderr, "%s\n", warning.c_str());
    }
    net->set_training(false);
    auto const prompt_template = PromptTemplate::from_name_or_file(run.prompt_template);
    auto const policy = c.bad_records == "fail" ? BadRecordPolicy::Fail : BadRecordPolicy::Skip;

    RunOutcome out;
    if (c.reuse_responses && std::filesystem::exists(responses_path)) {
        out.responses = read_responses(responses_path);
    } else {
        auto const [preset, config] = run_decoding(c, run, tokenizer);
        auto decode = [&](std::span<std::vector<std::int32_t> const> prompts, GenerationConfig const& g) {
            return generate(ctx, *net, prompts, g, nullptr);
        };
        out.responses = generate_responses(decode, Model::config::max_positions, tokenizer, prompt_template, sets,
                                           config, decoding_json(preset, config), run, c.batch, label, progress,
                                           policy, out.too_long);
        write_responses(responses_path, out.responses);
    }
    for (auto const& [lang, records] : val)
        if (auto const loss = validation_loss([&](TokenBatch const& b) { return net->evaluate(ctx, b); }, tokenizer,
                                              prompt_template, run, records, policy, report))
            out.val_loss[lang] = *loss;
    return out;
}

}  // namespace evaluate_detail

/// Runs the evaluator. Full is the model type of full-parameter runs, Lora the same model with the LoRA adapter
/// the LoRA runs trained; Backend runs them (CpuEigen, or Cuda on GPU 0). Returns the process exit status.
template <class Full, class Lora, class Backend = CpuEigen>
int run_evaluate_program(int argc, char** argv, EvaluateDefaults const& defaults) try {
    using namespace evaluate_detail;
    auto const parsed = parse_evaluate_command_line(argc, argv, defaults);
    if (!parsed) return 0;
    auto const& c = *parsed;
    auto const policy = c.bad_records == "fail" ? BadRecordPolicy::Fail : BadRecordPolicy::Skip;

    auto const tokenizer = c.tokenizer.extension() == ".json" ? Tokenizer::from_hf_json(c.tokenizer)
                                                              : Tokenizer::from_sentencepiece(c.tokenizer);
    require(tokenizer.vocab_size() <= Full::config::vocab, "the tokenizer has ", tokenizer.vocab_size(),
            " tokens but the model's vocabulary holds ", Full::config::vocab);
    DataReport report;
    auto const sets = read_test_sets(c.tests, policy, report);
    std::vector<RunInfo> runs;
    std::vector<std::filesystem::path> unfinished;
    for (auto const& dir : find_run_dirs(c.runs, &unfinished)) runs.push_back(read_run_info(dir, defaults.model));
    for (auto const& run : runs)  // the evaluator is compiled for one adapter type beside full-parameter
        require(run.method == "full" || run.method == Lora::adapter::method, run.dir.string(), ": the run trained a ",
                run.method, " adapter, but ", defaults.name, " is compiled for ", Lora::adapter::method,
                " adapters (and full-parameter models)");

    std::vector<std::string> langs;
    std::size_t total_prompts = 0;
    for (auto const& s : sets) langs.push_back(s.lang), total_prompts += s.prompts.size();
    std::map<std::string, std::vector<Record>> val;
    if (!c.val.empty()) {
        require(std::filesystem::is_directory(c.val), c.val.string(), ": --val is not a directory");
        for (auto const& lang : langs)
            if (auto const file = val_file(c.val, lang); !file.empty())
                val[lang] = read_alpaca(file, {.lang = lang, .policy = policy}, report);
    }
    std::optional<ScoreTable> scores;
    if (!c.judge_scores.empty()) scores = ScoreTable::read(c.judge_scores);

    Study study;
    study.runs = runs;
    study.notes.push_back("test sets: " + c.tests.string() + " (" + std::to_string(total_prompts) + " prompts)");
    study.notes.push_back(
        "decoding: " + (c.decoding == "paper" ? std::string("paper-lora / paper-full by method") : c.decoding) +
        (c.max_new_tokens > 0 ? ", max_new_tokens " + std::to_string(c.max_new_tokens) : ""));
    study.notes.push_back(c.val.empty() ? "validation loss: the trainer's held-out split, languages each run trained on"
                                        : "validation loss: " + c.val.string() + " (languages with a file)");
    study.notes.push_back("language id: CLD2, responses with fewer than 12 letter bytes count as unknown (un)");
    study.notes.push_back(scores ? "judge scores: " + c.judge_scores.string() + " (" + std::to_string(scores->size()) +
                                       " lines)"
                                 : "judge scores: none given");
    for (auto const& dir : unfinished) {
        std::fprintf(stderr, "%s: left out %s: no run_summary.json (not a finished run)\n", defaults.name.c_str(),
                     dir.string().c_str());
        study.notes.push_back("left out " + dir.filename().string() + ": no run_summary.json (not a finished run)");
    }
    if (policy == BadRecordPolicy::Fail) check_prompt_lengths(c, runs, sets, tokenizer, Full::config::max_positions);
    std::filesystem::create_directories(c.output / "responses");  // inputs read and checked: the first write
    io::remove_stale_temp_files(c.output, true);                     // left by a killed evaluation
    PromptProgress progress(total_prompts * runs.size(), c.quiet);
    auto const lost = lost_per_language(sets);
    for (std::size_t i = 0; i < runs.size(); ++i) {
        auto const& run = runs[i];
        auto const label = "[" + std::to_string(i + 1) + "/" + std::to_string(runs.size()) + " " + run.name + "]";
        auto const responses_path = c.output / "responses" / (run.name + ".jsonl");
        auto const outcome = run.method != "full"
                                 ? evaluate_run<Lora, Backend>(run, c, tokenizer, sets, val, responses_path, label,
                                                               progress, study.notes, report)
                                 : evaluate_run<Full, Backend>(run, c, tokenizer, sets, val, responses_path, label,
                                                               progress, study.notes, report);
        for (auto const& [lang, count] : outcome.too_long)
            study.notes.push_back("run " + run.name + ": " + std::to_string(count) + " " + lang +
                                  " prompts left out, too long for the model's positions with the new tokens");
        Fidelity fidelity;
        fidelity.add_all(outcome.responses);
        study.confusion[run.name] = fidelity.confusion_markdown();
        for (auto const& lang : langs) {
            LanguageResult r{.run = run.name, .language = lang};
            r.responses = fidelity.total(lang);
            if (r.responses > 0) r.fidelity = fidelity.share(lang);
            if (scores) {
                auto const m = scores->mean(run.name, lang, outcome.responses);
                r.scored = m.scored;
                if (m.scored > 0) r.score = m.mean;
            }
            if (auto const it = outcome.val_loss.find(lang); it != outcome.val_loss.end())
                r.loss = it->second;
            else if (auto const held = run.validation_loss.find(lang);
                     c.val.empty() && held != run.validation_loss.end())
                r.loss = held->second;
            auto const too_long = outcome.too_long.find(lang);
            r.lost = lost.at(lang) + (too_long == outcome.too_long.end() ? 0 : too_long->second);
            r.zero_shot = !run.trained_on(lang);
            study.results.push_back(r);
        }
    }
    progress.finish();
    {
        std::ostringstream text;
        report.write(text);
        io::write_file_atomically(c.output / "data_report.txt", text.str());
    }
    write_report(c.output, study);
    std::printf("%s", answer_paragraph(study).c_str());
    std::printf("\nreport %s; results %s; responses %s; data report %s\n", (c.output / "report.md").string().c_str(),
                (c.output / "results.csv").string().c_str(), (c.output / "responses").string().c_str(),
                (c.output / "data_report.txt").string().c_str());
    return 0;
} catch (std::exception const& e) {
    std::fprintf(stderr, "%s: %s\n", defaults.name.c_str(), e.what());
    return 2;
}

}  // namespace polyalpaca::eval
