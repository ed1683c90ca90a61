/// @file study/study_data.hpp
/// @brief What a study trains and tests on, per language: tuning records, test prompts with their answers when the
///        test files give them (exact match) and pretraining text, either generated (the synthetic suite, also
///        written under <output>/suite/) or read from the study file's data and test set files.
#pragma once

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/data/alpaca.hpp"
#include "polyalpaca/data/synthetic/suite_files.hpp"
#include "polyalpaca/eval/test_set.hpp"
#include "polyalpaca/io/input_file.hpp"
#include "polyalpaca/study/study_file.hpp"

namespace polyalpaca::study {

/// A test prompt's reference answer and task (from the suite, or from "answer"/"task" keys of a test file), and
/// whether its response counts in language fidelity: not when the answer is digits, a list or one word, whose
/// language cannot be identified (the suite's exact-answer tasks; a test line's `"fidelity": false`).
struct Answer {
    std::string answer, task;
    bool counts_for_fidelity = true;
};

struct StudyData {
    std::map<std::string, std::vector<Record>> train;         ///< tuned languages
    std::vector<eval::TestSet> test_sets;                      ///< every test language, tuned then zero-shot
    std::map<std::string, std::map<std::string, Answer>> answers;  ///< lang -> id -> answer
    std::map<std::string, std::vector<Record>> test_records;  ///< prompts with answers, for the test loss
    std::map<std::string, std::vector<std::string>> pretrain;  ///< suite only: plain sentences per language
    DataReport report;
};

namespace study_data_detail {

/// "answer" (and "task") of each line of a test file that has one, by id.
inline std::map<std::string, Answer> answers_in(std::filesystem::path const& file) {
    std::map<std::string, Answer> out;
    auto in = io::open_input_file(file, "the test set");
    std::string line;
    for (std::size_t number = 1; std::getline(in, line); ++number) {
        if (data_detail::json_nesting_depth(line) > data_detail::max_record_nesting) continue;  // the reader skipped it
        auto const j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_object()) continue;
        auto const id = j.find("id"), answer = j.find("answer");
        if (id == j.end() || answer == j.end() || !answer->is_string()) continue;
        auto const key = id->is_string() ? id->get<std::string>() : id->dump();
        auto const fidelity = j.find("fidelity");
        require(fidelity == j.end() || fidelity->is_boolean(), file.string(), ":", number, ": \"fidelity\" is a JSON ",
                fidelity == j.end() ? "" : fidelity->type_name(), ", not true or false");
        out[key] = {answer->get<std::string>(), j.value("task", std::string("all")),
                    fidelity == j.end() || fidelity->get<bool>()};
    }
    return out;
}

inline void cap(eval::TestSet& set, std::size_t max_prompts) {
    if (max_prompts > 0 && set.prompts.size() > max_prompts) set.prompts.resize(max_prompts);
}

}  // namespace study_data_detail

/// What load_study_data reads or writes besides the test sets.
struct StudyDataParts {
    bool training = true;     ///< the tuning data files (a suite is generated whole either way)
    bool write_suite = true;  ///< a suite's files under <output>/suite/ (a plan writes nothing)
};

/// Builds or reads the study's data. With a suite, its files are also written under <output>/suite/.
inline StudyData load_study_data(StudyFile const& s, PromptTemplate const& suite_template,
                                 StudyDataParts parts = {}) {
    StudyData d;
    if (s.suite) {
        synthetic::SyntheticSuiteConfig config;
        config.languages = s.test_languages();
        config.zero_shot = s.zero_shot;
        config.train_per_language = s.suite->train_per_language;
        config.test_per_language = s.suite->test_per_language;
        config.pretrain_sentences_per_language = s.suite->pretrain_sentences_per_language;
        config.seed = s.suite->seed;
        auto const suite = synthetic::build_synthetic_suite(config);
        if (parts.write_suite) synthetic::write_suite(s.output / "suite", suite, suite_template);
        for (auto const& lang : suite.languages) {
            std::string const code(lang.pack->code);
            for (auto const& item : lang.train) d.train[code].push_back(item.record);
            eval::TestSet set{code, s.output / "suite" / "test" / ("test_" + code + ".jsonl"), {}, 0};
            for (auto const& item : lang.test) {
                auto const& r = item.record;
                set.prompts.push_back({code, r.id, r.instruction, r.input, r.source});
                d.answers[code][r.id] = {r.output, std::string(synthetic::task_name(item.task)),
                                         synthetic::answer_is_sentence(item.task)};
                d.test_records[code].push_back(r);
            }
            study_data_detail::cap(set, s.decoding.max_prompts);
            if (s.decoding.max_prompts > 0 && d.test_records[code].size() > s.decoding.max_prompts)
                d.test_records[code].resize(s.decoding.max_prompts);
            d.test_sets.push_back(std::move(set));
            d.pretrain[code] = lang.pretrain;
        }
        return d;
    }
    for (auto const& lang : s.languages)
        if (parts.training) d.train[lang] = read_alpaca(s.data.at(lang), {.lang = lang, .policy = BadRecordPolicy::Skip}, d.report);
    for (auto const& lang : s.test_languages()) {
        auto const& file = s.test_sets.at(lang);
        auto set = eval::read_test_set(file, BadRecordPolicy::Skip, d.report);
        require(set.lang == lang, file.string(), ": the file's name says language \"", set.lang,
                "\" but the study file gives it for \"", lang, "\"");
        study_data_detail::cap(set, s.decoding.max_prompts);
        auto answers = study_data_detail::answers_in(file);
        for (auto const& p : set.prompts)
            if (auto const it = answers.find(p.id); it != answers.end()) {
                d.answers[lang][p.id] = it->second;
                Record r;
                r.lang = lang, r.id = p.id, r.instruction = p.prompt, r.input = p.input, r.output = it->second.answer;
                r.source = p.source;
                d.test_records[lang].push_back(std::move(r));
            }
        d.test_sets.push_back(std::move(set));
    }
    return d;
}

}  // namespace polyalpaca::study
