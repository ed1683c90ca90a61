/// @file data/synthetic/test_file.hpp
/// @brief The suite's held-out test files, test_<lang>.jsonl: one object per line with id, lang, task, instruction,
/// input, answer, fidelity (whether the answer is a sentence whose language can be identified), prompt (the
/// instruction, as the evaluation's test-set reader takes it) and alpaca_prompt (the full prompt text of a prompt
/// template); written atomically, read back, and scored against responses by id.
#pragma once

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/excerpt.hpp"
#include "polyalpaca/data/prompt_template.hpp"
#include "polyalpaca/data/synthetic/exact_match.hpp"
#include "polyalpaca/data/synthetic/tasks.hpp"
#include "polyalpaca/io/atomic_file.hpp"
#include "polyalpaca/io/input_file.hpp"
#include "polyalpaca/tokenizer/utf8.hpp"

namespace polyalpaca::synthetic {

/// One held-out test line as read back.
struct SuiteTestEntry {
    std::string id, lang, task, instruction, input, answer;
    std::string source;  ///< "file:line"
};

/// The text of a test file: one JSON object per line, keys in a fixed order, non-ASCII written as UTF-8.
inline std::string test_file_text(std::vector<SuiteItem> const& items, PromptTemplate const& prompt_template) {
    std::string text;
    for (auto const& item : items) {
        auto const& r = item.record;
        nlohmann::ordered_json line{{"id", r.id},
                                    {"lang", r.lang},
                                    {"task", std::string(task_name(item.task))},
                                    {"instruction", r.instruction},
                                    {"input", r.input},
                                    {"answer", r.output},
                                    {"fidelity", answer_is_sentence(item.task)},
                                    {"prompt", r.instruction},
                                    {"alpaca_prompt", prompt_template.generate_prompt(r)}};
        text += line.dump();
        text += '\n';
    }
    return text;
}

inline void write_test_file(std::filesystem::path const& path, std::vector<SuiteItem> const& items,
                            PromptTemplate const& prompt_template) {
    io::write_file_atomically(path, test_file_text(items, prompt_template));
}

/// Reads a test file. A line that is not UTF-8, not a JSON object, lacks one of id, lang, task, instruction, input
/// and answer as a string, or repeats an id is an Error naming file and line.
inline std::vector<SuiteTestEntry> read_test_file(std::filesystem::path const& path) {
    auto in = io::open_input_file(path, "the suite test file");
    std::vector<SuiteTestEntry> entries;
    std::set<std::string> ids;
    std::string line;
    for (std::size_t number = 1; std::getline(in, line); ++number) {
        auto const where = path.string() + ":" + std::to_string(number);
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        tokenizer::utf8::require_valid(line, where);
        nlohmann::json value;
        try {
            value = nlohmann::json::parse(line);
        } catch (nlohmann::json::exception const& e) {
            fail(where, ": not valid JSON: ", json_error_text(e.what()));
        }
        require(value.is_object(), where, ": a test line is a JSON object, found a JSON ", value.type_name());
        auto text = [&](char const* key) {
            auto const it = value.find(key);
            require(it != value.end(), where, ": no \"", key, "\"");
            require(it->is_string(), where, ": \"", key, "\" is a JSON ", it->type_name(), ", not a string");
            return it->get<std::string>();
        };
        SuiteTestEntry entry{text("id"),    text("lang"),   text("task"), text("instruction"),
                             text("input"), text("answer"), where};
        require(ids.insert(entry.id).second, where, ": id \"", entry.id, "\" is used by an earlier line");
        entries.push_back(std::move(entry));
    }
    return entries;
}

/// Exact-match scores of responses to a test file's entries, and how many entries had no response.
struct TestFileScore {
    ExactMatchTally tally;
    std::size_t missing = 0;  ///< entries without a response, counted as wrong
};

/// Scores `response_by_id` (entry id -> response text) against the entries' answers, per language and per task.
inline TestFileScore score_test_entries(std::vector<SuiteTestEntry> const& entries,
                                        std::map<std::string, std::string> const& response_by_id) {
    TestFileScore score;
    for (auto const& entry : entries) {
        auto const it = response_by_id.find(entry.id);
        if (it == response_by_id.end()) {
            score.tally.count(entry.lang, entry.task, false);
            ++score.missing;
            continue;
        }
        score.tally.add(entry.lang, entry.task, it->second, entry.answer);
    }
    return score;
}

}  // namespace polyalpaca::synthetic
