/// @file data/synthetic/suite_files.hpp
/// @brief Writes a built suite to a directory: train/<lang>.json (Alpaca JSON arrays, tuned languages only),
/// test/test_<lang>.jsonl, pretrain/<lang>.txt (one statement a line) and suite.json describing it all.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/data/prompt_template.hpp"
#include "polyalpaca/data/synthetic/suite.hpp"
#include "polyalpaca/data/synthetic/test_file.hpp"
#include "polyalpaca/io/atomic_file.hpp"

namespace polyalpaca::synthetic {

/// An Alpaca JSON array of {"id", "instruction", "input", "output"}, two-space indented.
inline std::string alpaca_json_text(std::vector<SuiteItem> const& items) {
    auto array = nlohmann::ordered_json::array();
    for (auto const& item : items) {
        auto const& r = item.record;
        array.push_back({{"id", r.id}, {"instruction", r.instruction}, {"input", r.input}, {"output", r.output}});
    }
    return array.dump(2) + "\n";
}

/// One statement a line.
inline std::string pretrain_text(std::vector<std::string> const& sentences) {
    std::string text;
    for (auto const& s : sentences) text += s + "\n";
    return text;
}

/// suite.json: the config, the tasks, and per language its script, zero-shot flag, record counts and files.
inline std::string suite_description_text(SyntheticSuite const& suite, PromptTemplate const& prompt_template) {
    nlohmann::ordered_json tasks = nlohmann::ordered_json::array();
    for (auto task : all_tasks) tasks.push_back(std::string(task_name(task)));
    nlohmann::ordered_json langs = nlohmann::ordered_json::array();
    for (auto const& lang : suite.languages) {
        auto const code = std::string(lang.pack->code);
        nlohmann::ordered_json entry{{"code", code},
                                     {"name", std::string(lang.pack->name)},
                                     {"script", std::string(lang.pack->script)},
                                     {"zero_shot", lang.zero_shot},
                                     {"train", lang.train.size()},
                                     {"test", lang.test.size()},
                                     {"pretrain_sentences", lang.pretrain.size()},
                                     {"test_file", "test/test_" + code + ".jsonl"},
                                     {"pretrain_file", "pretrain/" + code + ".txt"}};
        entry["train_file"] = lang.zero_shot ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json("train/" + code + ".json");
        langs.push_back(std::move(entry));
    }
    nlohmann::ordered_json description{
        {"format", "polyalpaca synthetic suite 1"},
        {"seed", suite.config.seed},
        {"train_per_language", suite.config.train_per_language},
        {"test_per_language", suite.config.test_per_language},
        {"pretrain_sentences_per_language", suite.config.pretrain_sentences_per_language},
        {"zero_shot", suite.config.zero_shot},
        {"prompt_template", prompt_template.origin()},
        {"tasks", tasks},
        {"languages", langs}};
    return description.dump(2) + "\n";
}

/// Writes the suite under `dir` (created if needed); every file is written atomically.
inline void write_suite(std::filesystem::path const& dir, SyntheticSuite const& suite,
                        PromptTemplate const& prompt_template) {
    namespace fs = std::filesystem;
    for (char const* sub : {"train", "test", "pretrain"}) fs::create_directories(dir / sub);
    for (auto const& lang : suite.languages) {
        auto const code = std::string(lang.pack->code);
        if (!lang.zero_shot) io::write_file_atomically(dir / "train" / (code + ".json"), alpaca_json_text(lang.train));
        write_test_file(dir / "test" / ("test_" + code + ".jsonl"), lang.test, prompt_template);
        io::write_file_atomically(dir / "pretrain" / (code + ".txt"), pretrain_text(lang.pretrain));
    }
    io::write_file_atomically(dir / "suite.json", suite_description_text(suite, prompt_template));
}

}  // namespace polyalpaca::synthetic
