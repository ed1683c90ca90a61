/// @file study/run_evaluation.hpp
/// @brief Evaluates the study engine's current network on every test language of the study: decodes the test
///        prompts, scores exact match (where answers are known), language fidelity (CLD2) and test loss, and writes
///        responses.jsonl and evaluation.json (the run's finished marker) into the run's directory.
#pragma once

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/excerpt.hpp"
#include "polyalpaca/data/synthetic/exact_match.hpp"
#include "polyalpaca/eval/evaluate_program.hpp"
#include "polyalpaca/eval/intervals.hpp"
#include "polyalpaca/study/engine.hpp"
#include "polyalpaca/study/planner.hpp"
#include "polyalpaca/study/study_data.hpp"

namespace polyalpaca::study {

/// What one run measured in one test language.
struct LanguageOutcome {
    std::size_t responses = 0, correct = 0, answered = 0;  ///< answered: responses with a known answer
    std::optional<double> exact_match, fidelity, loss;
    std::map<std::string, double> tasks;  ///< exact match per task
    /// 95% bootstrap intervals over the prompts (eval/intervals.hpp), seeded by the study's seed.
    std::optional<eval::Interval> exact_match_interval, fidelity_interval;
    /// Per prompt id, 1 or 0: answered exactly, and answered in the prompt's language (for paired comparisons).
    std::map<std::string, double> exact_by_prompt, fidelity_by_prompt;
};

namespace evaluation_detail {

inline nlohmann::json interval_json(std::optional<eval::Interval> const& i) {
    return i ? nlohmann::json::array({i->low, i->high}) : nlohmann::json();
}

inline std::optional<eval::Interval> interval_from(nlohmann::json const& l, char const* key, std::optional<double> v) {
    auto const it = l.find(key);
    if (it == l.end() || !it->is_array() || it->size() != 2 || !v) return std::nullopt;
    return eval::Interval{*v, (*it)[0].get<double>(), (*it)[1].get<double>()};
}

/// The seeded 95% interval of the mean of a prompt -> 0/1 map (none when it is empty).
inline std::optional<eval::Interval> interval_of(std::map<std::string, double> const& by_prompt, std::uint64_t seed) {
    if (by_prompt.empty()) return std::nullopt;
    std::vector<double> values;
    for (auto const& [id, v] : by_prompt) values.push_back(v);
    return eval::bootstrap_mean(values, {.resamples = 10000, .level = 0.95, .seed = seed});
}

}  // namespace evaluation_detail

/// Whether a response counts in language fidelity: unless its prompt's known answer has no language to identify
/// (Answer::counts_for_fidelity).
inline bool counts_for_fidelity(StudyData const& d, eval::Response const& r) {
    auto const lang = d.answers.find(r.language);
    if (lang == d.answers.end()) return true;
    auto const it = lang->second.find(r.id);
    return it == lang->second.end() || it->second.counts_for_fidelity;
}

/// One run's evaluation as evaluation.json holds it.
struct RunEvaluation {
    std::string name, label, method, budget;
    std::vector<std::string> languages;  ///< tuned on
    std::map<std::string, LanguageOutcome> by_language;
    double seconds = 0;

    bool zero_shot(std::string const& lang) const {
        return std::find(languages.begin(), languages.end(), lang) == languages.end();
    }
};

inline nlohmann::json to_json(RunEvaluation const& e) {
    nlohmann::json j{{"name", e.name},       {"label", e.label},         {"method", e.method},
                     {"budget", e.budget},   {"languages", e.languages}, {"seconds", e.seconds}};
    for (auto const& [lang, o] : e.by_language) {
        auto& l = j["results"][lang];
        l = {{"responses", o.responses}, {"correct", o.correct}, {"answered", o.answered}, {"tasks", o.tasks},
             {"zero_shot", e.zero_shot(lang)}};
        l["exact_match"] = o.exact_match ? nlohmann::json(*o.exact_match) : nlohmann::json();
        l["fidelity"] = o.fidelity ? nlohmann::json(*o.fidelity) : nlohmann::json();
        l["loss"] = o.loss ? nlohmann::json(*o.loss) : nlohmann::json();
        l["exact_match_interval"] = evaluation_detail::interval_json(o.exact_match_interval);
        l["fidelity_interval"] = evaluation_detail::interval_json(o.fidelity_interval);
        l["per_prompt"] = {{"exact_match", o.exact_by_prompt}, {"fidelity", o.fidelity_by_prompt}};
    }
    return j;
}

inline RunEvaluation read_evaluation(std::filesystem::path const& path) {
    auto const j = eval::eval_detail::read_json_file(path);
    RunEvaluation e;
    try {
        e.name = j.at("name"), e.label = j.at("label"), e.method = j.at("method"), e.budget = j.at("budget");
        e.languages = j.at("languages").get<std::vector<std::string>>();
        e.seconds = j.value("seconds", 0.0);
        auto opt = [](nlohmann::json const& v) { return v.is_number() ? std::optional<double>(v.get<double>()) : std::nullopt; };
        for (auto const& [lang, l] : j.at("results").items()) {
            LanguageOutcome o;
            o.responses = l.at("responses"), o.correct = l.at("correct"), o.answered = l.at("answered");
            o.tasks = l.at("tasks").get<std::map<std::string, double>>();
            o.exact_match = opt(l.at("exact_match")), o.fidelity = opt(l.at("fidelity")), o.loss = opt(l.at("loss"));
            // Written before intervals were: none.
            o.exact_match_interval = evaluation_detail::interval_from(l, "exact_match_interval", o.exact_match);
            o.fidelity_interval = evaluation_detail::interval_from(l, "fidelity_interval", o.fidelity);
            if (auto const p = l.find("per_prompt"); p != l.end()) {
                o.exact_by_prompt = p->value("exact_match", std::map<std::string, double>{});
                o.fidelity_by_prompt = p->value("fidelity", std::map<std::string, double>{});
            }
            e.by_language[lang] = o;
        }
    } catch (nlohmann::json::exception const& err) {
        fail(path.string(), ": unexpected layout: ", json_error_text(err.what()));
    }
    return e;
}

/// Decodes, scores and writes the evaluation of the engine's current network (already holding the run's weights)
/// into `dir`. Fidelity counts the responses whose answers can carry a language (Answer::counts_for_fidelity) and
/// those with no known answer.
inline RunEvaluation evaluate_network(StudyEngine& engine, StudyFile const& s, StudyData& d, Tokenizer const& tokenizer,
                                      eval::RunInfo const& info, RunEvaluation e, std::filesystem::path const& dir,
                                      std::string const& progress_label, bool quiet) {
    auto const start = std::chrono::steady_clock::now();
    auto const prompt_template = PromptTemplate::from_name_or_file(info.prompt_template);
    auto const preset = s.decoding.preset_for(info.method);
    auto config = GenerationConfig::from_name(preset);
    if (s.decoding.max_new_tokens > 0) config.max_new_tokens = s.decoding.max_new_tokens;
    if (auto const eos = tokenizer.eos_id()) config.eos_token_ids = {*eos};
    std::size_t total = 0;
    for (auto const& set : d.test_sets) total += set.prompts.size();
    eval::evaluate_detail::PromptProgress progress(total, quiet);
    auto decode = [&](std::span<std::vector<std::int32_t> const> prompts, GenerationConfig const& g) {
        return engine.generate(prompts, g);
    };
    std::map<std::string, std::size_t> too_long;  // the study's test sets skip bad lines, and so too long prompts
    auto const responses = eval::evaluate_detail::generate_responses(
        decode, engine.max_positions(), tokenizer, prompt_template, d.test_sets, config,
        eval::evaluate_detail::decoding_json(preset, config), info, s.decoding.batch, progress_label, progress,
        BadRecordPolicy::Skip, too_long);
    progress.finish();
    for (auto const& [lang, count] : too_long)
        std::fprintf(stderr, "%s: %zu %s prompts left out, too long for the model's %d positions with %d new tokens\n",
                     progress_label.c_str(), count, lang.c_str(), engine.max_positions(), config.max_new_tokens);
    std::filesystem::create_directories(dir);
    eval::write_responses(dir / "responses.jsonl", responses);

    eval::Fidelity fidelity;
    synthetic::ExactMatchTally tally;
    std::map<std::string, std::map<std::string, double>> exact_by_prompt, fidelity_by_prompt;  // by language
    std::map<std::string, std::size_t> responses_by_language;
    for (auto const& r : responses) {
        ++responses_by_language[r.language];
        auto const& answers = d.answers[r.language];
        if (auto const it = answers.find(r.id); it != answers.end())
            exact_by_prompt[r.language][r.id] = tally.add(r.language, it->second.task, r.response, it->second.answer);
        if (!counts_for_fidelity(d, r)) continue;
        auto const detected = eval::identify_language(r.response).code;  // as Fidelity::add_all identifies it
        fidelity.add(r.language, detected);
        fidelity_by_prompt[r.language][r.id] = eval::same_language(r.language, detected) ? 1.0 : 0.0;
    }
    for (auto const& set : d.test_sets) {
        auto& o = e.by_language[set.lang];
        o.responses = responses_by_language[set.lang];
        if (fidelity.total(set.lang) > 0) o.fidelity = fidelity.share(set.lang);
        auto const count = tally.of_language(set.lang);
        o.correct = count.correct, o.answered = count.total;
        if (count.total > 0) o.exact_match = count.accuracy();
        o.exact_by_prompt = exact_by_prompt[set.lang];
        o.fidelity_by_prompt = fidelity_by_prompt[set.lang];
        o.exact_match_interval = evaluation_detail::interval_of(o.exact_by_prompt, s.seed);
        o.fidelity_interval = evaluation_detail::interval_of(o.fidelity_by_prompt, s.seed);
        for (auto const& t : tally.per_task())
            if (t.group.starts_with(set.lang + "/")) o.tasks[t.group.substr(set.lang.size() + 1)] = t.accuracy();
        if (auto const it = d.test_records.find(set.lang); it != d.test_records.end() && !it->second.empty())
            o.loss = eval::evaluate_detail::validation_loss([&](TokenBatch const& b) { return engine.loss(b); },
                                                            tokenizer, prompt_template, info, it->second,
                                                            BadRecordPolicy::Skip, d.report);
        else if (auto const held = info.validation_loss.find(set.lang); held != info.validation_loss.end())
            o.loss = held->second;
    }
    e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    io::write_file_atomically(dir / "evaluation.json", to_json(e).dump(2) + "\n");
    return e;
}

/// Evaluates a run whose weights the engine's current network holds (right after its training).
inline RunEvaluation evaluate_trained(StudyEngine& engine, StudyFile const& s, StudyData& d, Tokenizer const& tokenizer,
                                      PlannedRun const& run, std::string const& progress_label, bool quiet) {
    auto const info = eval::read_run_info(run.dir, s.preset);
    RunEvaluation e{run.name, run.label, run.method, run.budget.describe(), run.languages, {}, 0};
    return evaluate_network(engine, s, d, tokenizer, info, e, run.dir, progress_label, quiet);
}

/// Loads a trained run's weights into the engine's network of the run's method and evaluates it.
inline RunEvaluation evaluate_run(StudyEngine& engine, StudyFile const& s, StudyData& d, Tokenizer const& tokenizer,
                                  PlannedRun const& run, std::string const& progress_label, bool quiet) {
    engine.load(run.method, eval::read_run_info(run.dir, s.preset).weights);
    return evaluate_trained(engine, s, d, tokenizer, run, progress_label, quiet);
}

}  // namespace polyalpaca::study
