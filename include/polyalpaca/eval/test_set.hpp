/// @file eval/test_set.hpp
/// @brief Test sets: JSON Lines files test_<lang>.jsonl of {"id", "prompt"} (optionally "input"), one per language;
///        bad lines stop the run (BadRecordPolicy::Fail) or are skipped, listed and counted per language (Skip).
#pragma once

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/excerpt.hpp"
#include "polyalpaca/data/alpaca_record.hpp"
#include "polyalpaca/data/bad_records.hpp"
#include "polyalpaca/data/record.hpp"
#include "polyalpaca/io/input_file.hpp"
#include "polyalpaca/tokenizer/utf8.hpp"

namespace polyalpaca::eval {

/// One test prompt. `prompt` is the instruction the model answers; `input` its optional context ("" when none).
struct TestPrompt {
    std::string lang;
    std::string id;
    std::string prompt;
    std::string input;
    std::string source;  ///< "file:line"
};

/// The prompts of one language and how many lines of its file were lost (skipped as bad).
struct TestSet {
    std::string lang;
    std::filesystem::path file;
    std::vector<TestPrompt> prompts;
    std::size_t lost = 0;
};

/// True for a language code as the test sets and CLD2 write them: 2 or 3 lowercase letters (ISO 639), optionally
/// followed by "-" and a script or region of 2 to 4 letters or digits ("fr", "fil", "zh-Hant", "pt-BR").
inline bool is_language_code(std::string_view code) {
    auto const dash = code.find('-');
    auto const base = code.substr(0, dash);
    if (base.size() < 2 || base.size() > 3) return false;
    for (char const c : base)
        if (c < 'a' || c > 'z') return false;
    if (dash == std::string_view::npos) return true;
    auto const tail = code.substr(dash + 1);
    if (tail.size() < 2 || tail.size() > 4) return false;
    for (char const c : tail)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
    return true;
}

/// The language of a test set file: "test_fr.jsonl" -> "fr". Any other name, or a language that is not a code
/// (is_language_code: "test_klingon.jsonl"), is an Error.
inline std::string test_set_language(std::filesystem::path const& file) {
    auto const name = file.filename().string();
    require(name.starts_with("test_") && name.ends_with(".jsonl") && name.size() > 11, file.string(),
            ": a test set file is named test_<language>.jsonl (e.g. test_fr.jsonl)");
    auto lang = name.substr(5, name.size() - 11);
    require(is_language_code(lang), file.string(), ": '", lang.substr(0, 40), "' is not a language code (2 or 3 "
            "lowercase letters as ISO 639, optionally with a -Script or -REGION part, e.g. fr, zh-Hant, pt-BR)");
    return lang;
}

namespace eval_detail {

/// The prompt on one line, or the reason it is rejected (reason, detail).
inline bool parse_test_line(std::string_view text, std::string const& lang, TestPrompt& out, BadRecordReason& reason,
                            std::string& detail) {
    using json = nlohmann::ordered_json;
    auto reject = [&](BadRecordReason r, auto const&... parts) {
        reason = r;
        detail = polyalpaca::detail::concat(parts...);
        return false;
    };
    if (auto const bad = tokenizer::utf8::first_invalid(text); bad != std::string_view::npos)
        return reject(BadRecordReason::InvalidUtf8, "byte ", bad + 1, " of the line is not UTF-8");
    if (auto const depth = data_detail::json_nesting_depth(text); depth > data_detail::max_record_nesting)
        return reject(BadRecordReason::MalformedJson, "nested ", depth, " deep (a test prompt is a flat object)");
    json value;
    try {
        value = json::parse(text.begin(), text.end());
    } catch (json::exception const& e) {
        return reject(BadRecordReason::MalformedJson, json_error_text(e.what()));
    }
    if (!value.is_object()) return reject(BadRecordReason::NotAnObject, "it is a JSON ", value.type_name());
    auto const prompt = value.find("prompt");
    if (prompt == value.end()) {
        std::string keys;
        for (auto const& item : value.items()) keys += (keys.empty() ? "" : ", ") + data_detail::excerpt(item.key());
        return reject(BadRecordReason::MissingInstruction, "no \"prompt\" (",
                      keys.empty() ? std::string("an empty object") : "keys: " + keys, ")");
    }
    if (!prompt->is_string())
        return reject(BadRecordReason::InstructionNotString, "\"prompt\" is a JSON ", prompt->type_name());
    if (prompt->get_ref<std::string const&>().empty())
        return reject(BadRecordReason::MissingInstruction, "\"prompt\" is \"\"");
    auto const id = value.find("id");
    if (id == value.end()) return reject(BadRecordReason::BadId, "no \"id\"");
    if (id->is_string())
        out.id = id->get<std::string>();
    else if (id->is_number_integer())
        out.id = id->dump();
    else
        return reject(BadRecordReason::BadId, "\"id\" is a JSON ", id->type_name());
    if (auto const input = value.find("input"); input != value.end()) {
        if (!input->is_string())
            return reject(BadRecordReason::InputNotString, "\"input\" is a JSON ", input->type_name());
        out.input = input->get<std::string>();
    }
    out.prompt = prompt->get<std::string>();
    out.lang = lang;
    return true;
}

}  // namespace eval_detail

/// Reads one test_<lang>.jsonl. A bad line (malformed JSON, not an object, no or empty "prompt", no or bad "id", a
/// repeated id, invalid UTF-8) is an Error "file:line: reason: detail" under Fail; under Skip it is listed in `report`
/// and counted in the set's `lost`. Blank lines are not prompts and are counted as blank lines.
inline TestSet read_test_set(std::filesystem::path const& file, BadRecordPolicy policy, DataReport& report) {
    TestSet set{.lang = test_set_language(file), .file = file, .prompts = {}, .lost = 0};
    auto in = io::open_input_file(file, "the test set");
    report.begin_file(file.string());
    std::set<std::string> ids;
    std::string line;
    for (std::size_t number = 1; std::getline(in, line); ++number) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) {
            report.count_blank_line();
            continue;
        }
        auto const source = file.string() + ":" + std::to_string(number);
        TestPrompt p;
        BadRecordReason reason{};
        std::string detail;
        bool ok = eval_detail::parse_test_line(line, set.lang, p, reason, detail);
        if (ok && !ids.insert(p.id).second) {
            ok = false;
            reason = BadRecordReason::BadId;
            detail = "id \"" + data_detail::excerpt(p.id) + "\" is used by an earlier line";
        }
        if (!ok) {
            reject_record(policy, report, source, reason, detail);
            ++set.lost;
            continue;
        }
        p.source = source;
        set.prompts.push_back(std::move(p));
        report.count_kept();
    }
    return set;
}

/// Reads a test_<lang>.jsonl file, or every test_*.jsonl in a directory (sorted by language). A directory without
/// one, two files of one language, or a test_*.jsonl that is not a file (a directory) is an Error.
inline std::vector<TestSet> read_test_sets(std::filesystem::path const& path, BadRecordPolicy policy,
                                           DataReport& report) {
    namespace fs = std::filesystem;
    require(fs::exists(path), path.string(), ": no such test set file or directory");
    if (!fs::is_directory(path)) return {read_test_set(path, policy, report)};
    std::map<std::string, fs::path> files;
    for (auto const& entry : fs::directory_iterator(path)) {
        auto const name = entry.path().filename().string();
        if (!name.starts_with("test_") || !name.ends_with(".jsonl")) continue;
        require(entry.is_regular_file(), entry.path().string(), ": named as a test set but not a file");
        auto const lang = test_set_language(entry.path());
        require(files.emplace(lang, entry.path()).second, path.string(), ": two test sets of language '", lang, "'");
    }
    require(!files.empty(), path.string(), ": no test_<language>.jsonl files in the directory");
    std::vector<TestSet> sets;
    for (auto const& [lang, file] : files) sets.push_back(read_test_set(file, policy, report));
    return sets;
}

/// Prompts lost per language, for the report ("fr" -> 2).
inline std::map<std::string, std::size_t> lost_per_language(std::vector<TestSet> const& sets) {
    std::map<std::string, std::size_t> out;
    for (auto const& s : sets) out[s.lang] += s.lost;
    return out;
}

}  // namespace polyalpaca::eval
