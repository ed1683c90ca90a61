/// @file study/study_file.hpp
/// @brief The study file (JSON, docs/study.md): base model, methods, languages, data and test sets per language,
///        zero-shot languages, strategies, budgets, hyperparameters per method, decoding and judge settings, output
///        directory. Read with every key checked; a wrong key or value is an Error naming the file and the key.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/adapters/adapter.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/excerpt.hpp"
#include "polyalpaca/core/value_checks.hpp"
#include "polyalpaca/data/budget.hpp"
#include "polyalpaca/data/strategy.hpp"
#include "polyalpaca/generate/config.hpp"
#include "polyalpaca/io/input_file.hpp"

namespace polyalpaca::study {

/// One budget every run of the study is trained under: a number of epochs of the run's own data (the paper's
/// design: each strategy's cost follows from its data), or records, tokens or FLOPs (a matched budget).
struct BudgetSpec {
    std::string unit;  ///< "epochs", "records", "tokens" or "flops"
    double value = 0;

    std::optional<Budget> budget() const {
        if (unit == "records") return Budget::records(std::int64_t(value));
        if (unit == "tokens") return Budget::tokens(std::int64_t(value));
        if (unit == "flops") return Budget::flops(value);
        return std::nullopt;  // epochs: TrainerOptions::epochs
    }
    /// "records-2000", "epochs-3", "flops-1.5e+12": a directory-safe tag; "epochs-method": each method's epochs.
    std::string tag() const {
        if (unit == "epochs" && value == 0) return "epochs-method";
        char buf[48];
        if (unit == "flops")
            std::snprintf(buf, sizeof buf, "%.3g", value);
        else
            std::snprintf(buf, sizeof buf, "%g", value);
        return unit + "-" + buf;
    }
    std::string describe() const {
        return unit == "epochs" && value == 0 ? "the method's epochs" : tag().replace(unit.size(), 1, " ");
    }
};

/// Training settings of one method (the paper's defaults differ between LoRA and full-parameter tuning).
struct Hyperparameters {
    double epochs = 1;                ///< the run's epochs when the study gives no budgets (the paper: LoRA 5, full 3)
    double lr = 3e-4;
    std::string schedule = "linear";  ///< constant, linear or cosine
    long warmup_steps = 0;
    double warmup_ratio = 0;
    double weight_decay = 0;
    double max_grad_norm = 1.0;
    std::size_t micro_batch = 4, global_batch = 128, cutoff = 512, val_size = 1000;
    long eval_every = 200;
    bool group_by_length = false, train_on_inputs = false;
    double lora_dropout = 0.05;
    std::string prompt_template = "alpaca";  ///< alpaca, alpaca_legacy, or a template file
    std::string sample_ids = "disjoint";     ///< downsampled subsets: shared or disjoint record ids
};

struct DecodingSpec {
    std::string preset = "greedy";  ///< greedy, paper (paper-lora / paper-full by method), paper-lora, paper-full, sample
    int max_new_tokens = 0;         ///< 0: the preset's
    std::size_t batch = 8;          ///< prompts decoded together
    std::size_t max_prompts = 0;    ///< per test language (0: all)

    /// The preset a run of `method` decodes with: "paper" picks paper-full or paper-lora by method.
    std::string preset_for(std::string const& method) const {
        return preset == "paper" ? (method == "full" ? "paper-full" : "paper-lora") : preset;
    }
};

struct JudgeSpec {
    std::string scores;  ///< a judge scores JSONL (polyalpaca_judge) to fold into the report, "" when none
};

/// The embedded study's brief language-model pretraining (only with "suite"; real base models are pretrained).
struct PretrainSpec {
    std::size_t steps = 0;  ///< optimizer steps (0: none)
    std::size_t sequence = 128, micro_batch = 8, accumulation = 1;
    double lr = 3e-3;
};

/// The synthetic suite as a study's data and test sets (data/synthetic/).
struct SuiteSpec {
    std::size_t train_per_language = 1000, test_per_language = 200, pretrain_sentences_per_language = 2000;
    std::uint64_t seed = 0;
    /// The study's tokenizer when it names none: 0, bytes; else a byte-level BPE of at most this many tokens learned
    /// from the suite's tuning and pretraining text (study/suite_tokenizer.hpp).
    std::size_t bpe_vocab = 0;
};

/// A base model: the compiled preset it must match, its HF checkpoint directory and tokenizer.
struct BaseModel {
    std::string preset;                ///< e.g. "bloom-560m"
    std::filesystem::path checkpoint;  ///< "" : random weights, or pretrained by the study itself
    std::filesystem::path tokenizer;   ///< "" : the checkpoint's tokenizer.json / tokenizer.model, else bytes
};

struct StudyFile {
    std::filesystem::path source;  ///< the file it was read from ("" for the embedded default)
    std::string name = "study";
    std::vector<BaseModel> base_models;  ///< "base_model": one object, or a list run one after another
    std::string preset;                 ///< the base model this study runs (the first of base_models until split)
    std::filesystem::path checkpoint;
    std::filesystem::path tokenizer;
    std::vector<std::string> methods;   ///< "lora", "dora", "ia3", "full"
    std::vector<std::string> languages; ///< tuned languages, in order
    std::vector<std::string> zero_shot; ///< tested, never tuned
    std::map<std::string, std::filesystem::path> data, test_sets;
    std::optional<SuiteSpec> suite;     ///< data and test sets generated instead of read
    PretrainSpec pretrain;
    std::vector<Strategy> strategies;  ///< monolingual, multilingual, downsampled, temperature:T, weighted:l=w,...
    std::vector<BudgetSpec> budgets;
    std::map<std::string, Hyperparameters> hyperparameters;  ///< by method
    DecodingSpec decoding;
    JudgeSpec judge;
    std::filesystem::path output = "study";
    std::uint64_t seed = 42;
    std::string device = "auto";  ///< cpu, cuda, or auto (cuda when a GPU is visible); --device overrides it
    /// Runs trained at once, each in a process of its own (study/run_jobs.hpp); 0: as many as the device takes (CPU:
    /// the cores over threads_per_run, within memory; CUDA: one per visible GPU). --jobs overrides it.
    int jobs = 0;
    /// CPU threads each run trains on, each run then in a process of its own, and the pretraining here too; 0: the
    /// process's threads, in this one process when jobs is 1. A run's figures depend on its thread count
    /// (docs/study.md, "Reproducibility"), not on how many run at once. --threads-per-run overrides it.
    int threads_per_run = 0;

    /// Every test language: tuned then zero-shot.
    std::vector<std::string> test_languages() const {
        auto all = languages;
        all.insert(all.end(), zero_shot.begin(), zero_shot.end());
        return all;
    }
};

/// The paper's settings of a method (PAPER.md): LoRA lr 3e-4, 100 warmup steps, linear decay, group_by_length,
/// loss on prompt and response; full-parameter lr 2e-5, cosine, warmup ratio 0.03, loss on the response. DoRA and
/// IA3, beyond the paper, take LoRA's, IA3 at lr 3e-3 (its scales move little at 3e-4; T-Few trains them at 3e-3).
inline Hyperparameters paper_hyperparameters(std::string const& method) {
    Hyperparameters h;
    if (method == "full") {
        h.epochs = 3, h.lr = 2e-5, h.schedule = "cosine", h.warmup_ratio = 0.03, h.prompt_template = "alpaca_legacy";
    } else {
        h.epochs = 5, h.warmup_steps = 100, h.group_by_length = true, h.train_on_inputs = true;
        if (method == "ia3") h.lr = 3e-3;
    }
    return h;
}

namespace study_file_detail {

/// Reads one object's keys with their place in the file, rejecting keys it does not know.
class Reader {
public:
    Reader(nlohmann::json const& j, std::string where) : j_(j), where_(std::move(where)) {
        require(j_.is_object(), where_, ": expected a JSON object, found a JSON ", j_.type_name());
    }
    std::string at(std::string const& key) const { return where_ + "." + key; }
    bool has(std::string const& key) {
        seen_.insert(key);
        return j_.contains(key);
    }
    nlohmann::json const& raw(std::string const& key) {
        seen_.insert(key);
        return j_.at(key);
    }
    template <class V>
    void get(std::string const& key, V& out) {
        if (!has(key)) return;
        if constexpr (std::is_integral_v<V> && !std::is_same_v<V, bool>) {  // in range, or it would wrap
            out = whole_number<V>(key, std::numeric_limits<V>::min(), std::numeric_limits<V>::max());
            return;
        }
        try {
            out = j_.at(key).get<V>();
        } catch (nlohmann::json::exception const&) {
            fail(at(key), ": has the wrong type (a JSON ", j_.at(key).type_name(), ")");
        }
    }
    /// A whole number in [lo, hi] at key, when present; a fraction, a string or a number out of range is an error
    /// naming the key, the range and the value (core/value_checks.hpp's sentence).
    template <class V>
    void count(std::string const& key, V& out, std::type_identity_t<V> lo, std::type_identity_t<V> hi) {
        if (has(key)) out = whole_number<V>(key, lo, hi);
    }
    /// A finite number in [lo, hi] at key, when present.
    void number(std::string const& key, double& out, double lo, double hi) {
        if (!has(key)) return;
        get(key, out);
        require_number_in(at(key), out, lo, hi);
    }
    /// The JSON integer at key, if it is in [lo, hi]; anything else is an error naming key, range and value.
    template <class V>
    V whole_number(std::string const& key, V lo, V hi) const {
        auto const& v = j_.at(key);
        bool fits = false;
        if (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() < 0) {  // negative
            fits = lo < 0 && v.get<std::int64_t>() >= std::int64_t(lo);
        } else if (v.is_number_integer()) {  // 0 or more, read or built as signed or unsigned
            auto const u = v.get<std::uint64_t>();
            fits = u <= std::uint64_t(hi) && (lo <= 0 || u >= std::uint64_t(lo));
        }
        if (!fits)  // a container is named, not printed: printing recurses as deep as its nesting
            fail_count(at(key), lo, hi, v.is_structured() ? std::string("a JSON ") + v.type_name() : excerpt(v.dump()));
        return v.get<V>();
    }
    void path(std::string const& key, std::filesystem::path& out) {
        std::string s;
        get(key, s);
        if (!s.empty()) out = s;
    }
    void done() const {
        for (auto const& item : j_.items())
            require(seen_.count(item.key()) != 0, at(excerpt(item.key())), ": unknown key");
    }

private:
    nlohmann::json const& j_;
    std::string where_;
    std::set<std::string> seen_;
};

inline Hyperparameters read_hyperparameters(nlohmann::json const& j, std::string const& where, Hyperparameters h) {
    Reader r(j, where);
    constexpr std::size_t many = std::size_t(1) << 40;  // the trainers' ranges (train/program_options.hpp)
    r.number("epochs", h.epochs, 0, 1e6), r.number("lr", h.lr, 0, 10), r.get("schedule", h.schedule);
    r.count("warmup_steps", h.warmup_steps, 0, long(many));
    r.number("warmup_ratio", h.warmup_ratio, 0, 1), r.number("weight_decay", h.weight_decay, 0, 10);
    r.number("max_grad_norm", h.max_grad_norm, 0, 1e30), r.count("micro_batch", h.micro_batch, 1, 1 << 20);
    r.count("global_batch", h.global_batch, 1, 1 << 30), r.count("cutoff", h.cutoff, 2, 1 << 24);
    r.count("val_size", h.val_size, 0, many), r.count("eval_every", h.eval_every, 0, long(many));
    r.get("group_by_length", h.group_by_length), r.get("train_on_inputs", h.train_on_inputs);
    r.number("lora_dropout", h.lora_dropout, 0, 1);
    r.get("template", h.prompt_template), r.get("sample_ids", h.sample_ids);
    r.done();
    require(h.lr > 0, r.at("lr"), ": must be positive");
    require(h.epochs > 0, r.at("epochs"), ": must be positive");
    require(h.lora_dropout < 1, r.at("lora_dropout"), ": must be below 1 (1 drops every input of the adapter)");
    require(h.schedule == "constant" || h.schedule == "linear" || h.schedule == "cosine", r.at("schedule"),
            ": constant, linear or cosine, not \"", excerpt(h.schedule), "\"");
    require(h.micro_batch > 0 && h.global_batch % h.micro_batch == 0, r.at("global_batch"),
            ": must be a multiple of micro_batch (", h.micro_batch, ")");
    require(h.sample_ids == "shared" || h.sample_ids == "disjoint", r.at("sample_ids"), ": shared or disjoint");
    return h;
}

}  // namespace study_file_detail

/// Parses a study from JSON; `origin` names it in errors. Relative paths are taken from `base_dir`.
inline StudyFile parse_study(nlohmann::json const& j, std::string const& origin, std::filesystem::path const& base_dir) {
    using study_file_detail::Reader;
    StudyFile s;
    Reader r(j, origin);
    r.get("name", s.name), r.get("seed", s.seed);
    r.path("output", s.output);
    r.get("device", s.device);
    require(s.device == "cpu" || s.device == "cuda" || s.device == "auto", r.at("device"),
            ": cpu, cuda or auto, not \"", excerpt(s.device), "\"");
    r.count("jobs", s.jobs, 0, 1024), r.count("threads_per_run", s.threads_per_run, 0, 4096);
    require(r.has("base_model"), origin, ": no \"base_model\"");
    {
        auto const& models = r.raw("base_model");
        bool const list = models.is_array();
        require(!list || !models.empty(), r.at("base_model"), ": an empty list");
        for (std::size_t i = 0; i < (list ? models.size() : 1); ++i) {
            Reader b(list ? models[i] : models, r.at("base_model") + (list ? "[" + std::to_string(i) + "]" : ""));
            BaseModel m;
            b.get("preset", m.preset), b.path("checkpoint", m.checkpoint), b.path("tokenizer", m.tokenizer);
            b.done();
            require(!m.preset.empty(), b.at("preset"), ": missing (e.g. \"bloom-560m\")");
            s.base_models.push_back(m);
        }
        s.preset = s.base_models.front().preset;
        s.checkpoint = s.base_models.front().checkpoint;
        s.tokenizer = s.base_models.front().tokenizer;
    }
    r.get("methods", s.methods);
    require(!s.methods.empty(), r.at("methods"), ": give one or more of ", adapter_method_list(), ", full");
    for (auto const& m : s.methods)
        require(m == "full" || is_adapter_method(m), r.at("methods"), ": \"", excerpt(m), "\" is none of ",
                adapter_method_list(), ", full");
    r.get("languages", s.languages), r.get("zero_shot", s.zero_shot);
    require(!s.languages.empty(), r.at("languages"), ": no tuned languages");
    std::set<std::string> seen;
    for (auto const& l : s.test_languages())
        require(seen.insert(l).second, origin, ": language \"", excerpt(l), "\" is listed twice in languages/zero_shot");
    if (r.has("suite")) {
        SuiteSpec suite;
        Reader q(r.raw("suite"), r.at("suite"));
        q.count("train_per_language", suite.train_per_language, 1, 1 << 24);
        q.count("test_per_language", suite.test_per_language, 1, 1 << 24);
        q.count("pretrain_sentences_per_language", suite.pretrain_sentences_per_language, 0, 1 << 24);
        q.get("seed", suite.seed), q.count("bpe_vocab", suite.bpe_vocab, 0, 1 << 24);
        require(suite.bpe_vocab == 0 || suite.bpe_vocab >= 256 + 3, q.at("bpe_vocab"),
                ": a byte-level BPE holds at least the 256 bytes and <pad>, <s>, </s> (0: bytes alone)");
        q.done();
        s.suite = suite;
    }
    auto paths = [&](char const* key, std::map<std::string, std::filesystem::path>& out,
                     std::vector<std::string> const& needed) {
        if (r.has(key)) {
            auto const& m = r.raw(key);
            require(m.is_object(), r.at(key), ": expected an object LANG -> file");
            for (auto const& [lang, file] : m.items()) {
                require(file.is_string(), r.at(key), ".", excerpt(lang), ": expected a file name");
                std::filesystem::path p = file.get<std::string>();
                out[lang] = p.is_relative() ? base_dir / p : p;
            }
        }
        if (!s.suite)
            for (auto const& l : needed) require(out.count(l) != 0, r.at(key), ": no file for language \"", excerpt(l), "\"");
    };
    paths("data", s.data, s.languages);
    paths("test_sets", s.test_sets, s.test_languages());
    if (r.has("pretrain")) {
        Reader p(r.raw("pretrain"), r.at("pretrain"));
        p.count("steps", s.pretrain.steps, 0, std::size_t(1) << 40);
        p.count("sequence", s.pretrain.sequence, 2, 1 << 24);
        p.count("micro_batch", s.pretrain.micro_batch, 1, 1 << 20);
        p.count("accumulation", s.pretrain.accumulation, 1, 1 << 20), p.number("lr", s.pretrain.lr, 0, 10);
        p.done();
        require(s.pretrain.lr > 0, p.at("lr"), ": must be positive");
        require(s.suite || s.pretrain.steps == 0, p.at("steps"), ": pretraining here needs the synthetic \"suite\"");
    }
    std::vector<std::string> strategies;
    r.get("strategies", strategies);
    require(!strategies.empty(), r.at("strategies"), ": none given");
    for (auto const& st : strategies) {
        s.strategies.push_back(Strategy::parse(st, r.at("strategies")));
        for (auto const& lang : s.strategies.back().weighted_languages())
            require(std::find(s.languages.begin(), s.languages.end(), lang) != s.languages.end(), r.at("strategies"),
                    ": \"", excerpt(st), "\" weights \"", excerpt(lang), "\", which is not a tuned language");
    }
    if (r.has("budgets")) {
        auto const& list = r.raw("budgets");
        require(list.is_array() && !list.empty(), r.at("budgets"), ": expected a non-empty array of {UNIT: N}");
        for (std::size_t i = 0; i < list.size(); ++i) {
            auto const where = r.at("budgets") + "[" + std::to_string(i) + "]";
            require(list[i].is_object() && list[i].size() == 1, where,
                    ": one of {\"epochs\": E}, {\"records\": N}, {\"tokens\": N}, {\"flops\": X}");
            // A named iterator: *items().begin() is a reference into a temporary, gone by the next line.
            auto const entry = list[i].begin();
            std::string const& unit = entry.key();
            auto const& value = entry.value();
            require(unit == "epochs" || unit == "records" || unit == "tokens" || unit == "flops", where,
                    ": unknown budget unit \"", excerpt(unit), "\"");
            require(value.is_number() && value.get<double>() > 0, where, ".", excerpt(unit), ": must be a positive number");
            s.budgets.push_back({unit, value.get<double>()});
        }
    } else {
        s.budgets.push_back({"epochs", 0});  // each method's hyperparameters.epochs
    }
    for (auto const& m : s.methods) s.hyperparameters[m] = paper_hyperparameters(m);
    if (r.has("hyperparameters")) {
        Reader h(r.raw("hyperparameters"), r.at("hyperparameters"));
        std::vector<std::string> methods{"full"};
        for (auto const& a : adapter_methods) methods.emplace_back(a.method);
        for (auto const& m : methods)
            if (h.has(m)) s.hyperparameters[m] = study_file_detail::read_hyperparameters(h.raw(m), h.at(m), s.hyperparameters[m]);
        h.done();
    }
    if (r.has("decoding")) {
        Reader d(r.raw("decoding"), r.at("decoding"));
        d.get("preset", s.decoding.preset), d.count("max_new_tokens", s.decoding.max_new_tokens, 0, 1 << 20);
        d.count("batch", s.decoding.batch, 1, 1 << 16), d.count("max_prompts", s.decoding.max_prompts, 0, 1 << 30);
        d.done();
        auto const& p = s.decoding.preset;
        require(p == "greedy" || p == "paper" || p == "paper-lora" || p == "paper-full" || p == "sample", d.at("preset"),
                ": greedy, paper, paper-lora, paper-full or sample, not \"", excerpt(p), "\"");
    }
    if (r.has("judge")) {
        Reader d(r.raw("judge"), r.at("judge"));
        std::filesystem::path scores;
        d.path("scores", scores);
        if (!scores.empty()) s.judge.scores = (scores.is_relative() ? base_dir / scores : scores).string();
        d.done();
    }
    r.done();
    return s;
}

/// The new tokens a run of `method` decodes: decoding.max_new_tokens, or its preset's.
inline int decoding_new_tokens(StudyFile const& s, std::string const& method) {
    return s.decoding.max_new_tokens > 0 ? s.decoding.max_new_tokens
                                         : GenerationConfig::from_name(s.decoding.preset_for(method)).max_new_tokens;
}

/// Refuses new tokens that leave no room for a prompt in the model's positions: every test prompt would be skipped
/// as too long, after the training.
inline void require_room_for_prompts(StudyFile const& s, std::string const& method, int max_positions) {
    int const new_tokens = decoding_new_tokens(s, method);
    require(new_tokens < max_positions, s.source.empty() ? std::string("the study") : s.source.string(),
            ": decoding.max_new_tokens (", new_tokens, " for ", method, ") leaves no room for a prompt in ", s.preset,
            "'s ", max_positions, " positions");
}

/// One study per base model; with several, each writes under <output>/<preset>/.
inline std::vector<StudyFile> split_by_base_model(StudyFile const& s) {
    std::vector<StudyFile> out;
    for (auto const& m : s.base_models) {
        StudyFile one = s;
        one.base_models = {m};
        one.preset = m.preset, one.checkpoint = m.checkpoint, one.tokenizer = m.tokenizer;
        if (s.base_models.size() > 1) one.output = s.output / m.preset, one.name = s.name + " " + m.preset;
        out.push_back(std::move(one));
    }
    return out;
}

/// Every file or directory the study names that does not exist, each as "<study>: <key>: <path> does not exist"
/// (checkpoints, tokenizers, data, test sets, judge scores).
inline std::vector<std::string> missing_files(StudyFile const& s) {
    std::string const origin = s.source.empty() ? std::string("the study") : s.source.string();
    std::vector<std::string> out;
    auto check = [&](std::string const& key, std::filesystem::path const& path) {
        if (path.empty()) return;
        std::error_code error;  // a path the system cannot look at (too long, say) is named, not thrown
        bool const there = std::filesystem::exists(path, error);
        auto const shown = path.string().size() > 200 ? path.string().substr(0, 200) + "..." : path.string();
        if (error)
            out.push_back(origin + ": " + key + ": " + shown + " cannot be looked at: " + error.message());
        else if (!there)
            out.push_back(origin + ": " + key + ": " + shown + " does not exist");
    };
    bool const list = s.base_models.size() > 1;
    for (std::size_t i = 0; i < s.base_models.size(); ++i) {
        auto const key = "base_model" + (list ? "[" + std::to_string(i) + "]" : std::string());
        check(key + ".checkpoint", s.base_models[i].checkpoint);
        check(key + ".tokenizer", s.base_models[i].tokenizer);
    }
    if (!s.suite) {
        for (auto const& [lang, path] : s.data) check("data." + lang, path);
        for (auto const& [lang, path] : s.test_sets) check("test_sets." + lang, path);
    }
    check("judge.scores", s.judge.scores);
    return out;
}

/// Reads a study file. Relative paths in it (data, test sets, judge scores) are taken from its directory.
inline StudyFile read_study_file(std::filesystem::path const& path) {
    auto in = io::open_input_file(path, "the study file");
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(in);
    } catch (nlohmann::json::exception const& e) {
        fail(path.string(), ": not valid JSON: ", json_error_text(e.what()));
    }
    auto s = parse_study(j, path.string(), path.parent_path());
    s.source = path;
    return s;
}

}  // namespace polyalpaca::study
