/// @file eval/run_info.hpp
/// @brief What a trained run directory says about itself: method, strategy, training languages and prompt template
///        (run_config.json), budget spent and per-language validation loss (run_summary.json), and its weights
///        (adapter/ for LoRA, model/ for full-parameter).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/adapters/adapter.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/excerpt.hpp"
#include "polyalpaca/io/input_file.hpp"

namespace polyalpaca::eval {

/// One trained run as the report sees it.
struct RunInfo {
    std::string name;  ///< the run directory's name
    std::filesystem::path dir;
    std::string model;     ///< e.g. "bloom-560m" (given by the evaluator)
    std::string method;    ///< "lora", "dora", "ia3" (an adapter's method) or "full"
    std::string strategy;  ///< "monolingual", "multilingual", "downsampled", ...
    std::vector<std::string> training_languages;
    std::string prompt_template = "alpaca";  ///< a built-in name or a template file
    std::int64_t budget_records = 0;         ///< records, tokens and FLOPs the run trained on
    std::int64_t budget_tokens = 0;
    double budget_flops = 0;
    std::map<std::string, double> validation_loss;  ///< the trainer's held-out loss per language (best checkpoint)
    std::filesystem::path weights;                  ///< adapter/ or model/
    std::filesystem::path base_model_dir;           ///< the HF directory the run started from ("" : random weights)
    std::uint64_t seed = 42;                        ///< the trainer's seed (random base weights are made from it)
    std::size_t cutoff = 512;                       ///< the trainer's example options, for validation examples
    bool train_on_inputs = true;
    std::string eos = "alpaca-lora";

    bool trained_on(std::string const& lang) const {
        for (auto const& l : training_languages)
            if (l == lang) return true;
        return false;
    }
};

namespace eval_detail {

inline nlohmann::json read_json_file(std::filesystem::path const& path) {
    auto in = io::open_input_file(path, "the file");
    try {
        return nlohmann::json::parse(in);
    } catch (nlohmann::json::exception const& e) {
        fail(path.string(), ": not valid JSON: ", json_error_text(e.what()));
    }
}

}  // namespace eval_detail

/// Reads a run directory. run_summary.json is required (a run without one did not finish). Without run_config.json
/// (runs of older trainers) the method comes from the weights directory, the training languages from the summary's
/// spent languages, and the strategy is "monolingual" for one language, else "unknown".
inline RunInfo read_run_info(std::filesystem::path const& dir, std::string model) {
    namespace fs = std::filesystem;
    RunInfo r;
    r.dir = dir;
    r.name = fs::path(dir).filename().string();
    if (r.name.empty()) r.name = fs::path(dir).parent_path().filename().string();
    r.model = std::move(model);
    auto const summary_path = dir / "run_summary.json";
    require(fs::exists(summary_path), dir.string(), ": no run_summary.json (not a finished training run)");
    auto const summary = eval_detail::read_json_file(summary_path);
    try {
        auto const& spent = summary.at("spent");
        r.budget_records = spent.at("records").get<std::int64_t>();
        r.budget_tokens = spent.at("tokens").get<std::int64_t>();
        r.budget_flops = spent.at("flops").get<double>();
        if (auto const it = summary.find("best_validation_loss_per_language"); it != summary.end())
            r.validation_loss = it->get<std::map<std::string, double>>();
        if (auto const it = spent.find("languages"); it != spent.end())
            for (auto const& [lang, counts] : it->items())
                if (counts.value("records", std::int64_t(0)) > 0) r.training_languages.push_back(lang);
    } catch (nlohmann::json::exception const& e) {
        fail(summary_path.string(), ": unexpected layout: ", json_error_text(e.what()));
    }
    bool const has_adapter = fs::exists(dir / "adapter" / "adapter_config.json");
    bool const has_model = fs::exists(dir / "model" / "config.json");
    require(has_adapter || has_model, dir.string(),
            ": neither adapter/adapter_config.json (LoRA) nor model/config.json", " (full-parameter) is there");
    r.method = has_adapter ? "lora" : "full";
    r.weights = dir / (has_adapter ? "adapter" : "model");
    r.strategy = r.training_languages.size() == 1 ? "monolingual" : "unknown";
    r.train_on_inputs = r.method != "full";
    if (auto const config_path = dir / "run_config.json"; fs::exists(config_path)) {
        auto const config = eval_detail::read_json_file(config_path);
        try {
            r.method = config.at("method").get<std::string>();
            r.strategy = config.at("strategy").get<std::string>();
            r.training_languages = config.at("languages").get<std::vector<std::string>>();
            r.prompt_template = config.value("template", r.prompt_template);
            r.base_model_dir = config.value("model_dir", std::string());
            r.seed = config.value("seed", r.seed);
            r.cutoff = config.value("cutoff", r.cutoff);
            r.train_on_inputs = config.value("train_on_inputs", r.method != "full");
            r.eos = config.value("eos", r.eos);
        } catch (nlohmann::json::exception const& e) {
            fail(config_path.string(), ": unexpected layout: ", json_error_text(e.what()));
        }
        require(r.method == "full" || is_adapter_method(r.method), config_path.string(), ": \"method\" is \"",
                r.method.substr(0, 40), "\"; polyalpaca's trainers write one of ", adapter_method_list(), ", full");
    }
    return r;
}

/// Every run directory under `dir` (subdirectories holding run_summary.json), sorted by name; `dir` itself when it
/// is one. Subdirectories without run_summary.json (unfinished runs) go to `unfinished` when given. None is an Error.
inline std::vector<std::filesystem::path> find_run_dirs(std::filesystem::path const& dir,
                                                        std::vector<std::filesystem::path>* unfinished = nullptr) {
    namespace fs = std::filesystem;
    require(fs::is_directory(dir), dir.string(), ": not a directory of runs");
    if (fs::exists(dir / "run_summary.json")) return {dir};
    std::vector<fs::path> out;
    for (auto const& entry : fs::directory_iterator(dir)) {
        if (!entry.is_directory()) continue;
        if (fs::exists(entry.path() / "run_summary.json"))
            out.push_back(entry.path());
        else if (unfinished)
            unfinished->push_back(entry.path());
    }
    std::sort(out.begin(), out.end());
    if (unfinished) std::sort(unfinished->begin(), unfinished->end());
    require(!out.empty(), dir.string(), ": no run directories (subdirectories with run_summary.json)");
    return out;
}

}  // namespace polyalpaca::eval
