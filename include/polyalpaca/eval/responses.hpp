/// @file eval/responses.hpp
/// @brief Generated responses: the record, the response text cut out of a generation, and responses JSONL in the
///        authors' layout (instruction, input, response) plus run, model, method, strategy, id, language, decoding.
#pragma once

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/data/jsonl.hpp"
#include "polyalpaca/data/prompt_template.hpp"
#include "polyalpaca/data/python_text.hpp"
#include "polyalpaca/io/atomic_file.hpp"

namespace polyalpaca::eval {

/// One response of one run to one test prompt.
struct Response {
    std::string run;       ///< the run's directory name
    std::string model;     ///< e.g. "bloom-560m"
    std::string method;    ///< "lora" or "full"
    std::string strategy;  ///< "monolingual", "multilingual", "downsampled", ...
    std::string language;  ///< the prompt's language (its test set's)
    std::string id;        ///< the prompt's id in its test set
    std::string instruction;
    std::string input;
    std::string response;
    nlohmann::json decoding = nlohmann::json::object();  ///< the decoding settings that produced it
};

/// The section headers of a template ("### Instruction:", "### Input:", "### Response:"): lines of its prompts that
/// start with "### " and end with ':'.
inline std::vector<std::string> section_markers(PromptTemplate const& t) {
    std::vector<std::string> out;
    for (std::string_view text : {std::string_view(t.prompt_input()), std::string_view(t.prompt_no_input())}) {
        std::size_t begin = 0;
        while (begin < text.size()) {
            auto end = text.find('\n', begin);
            if (end == std::string_view::npos) end = text.size();
            auto const line = text.substr(begin, end - begin);
            if (line.starts_with("### ") && line.ends_with(':') && std::find(out.begin(), out.end(), line) == out.end())
                out.emplace_back(line);
            begin = end + 1;
        }
    }
    if (std::find(out.begin(), out.end(), t.response_split()) == out.end()) out.push_back(t.response_split());
    return out;
}

/// The response in text a model generated after the prompt (prompt not included): cut where the model starts the
/// next section (any of the template's section markers, anywhere, or a line starting "### "), stripped of
/// whitespace as Python's str.strip() does.
inline std::string extract_response(PromptTemplate const& t, std::string_view continuation) {
    auto cut = continuation.size();
    for (auto const& marker : section_markers(t)) cut = std::min(cut, continuation.find(marker));
    return t.response_after_prompt(continuation.substr(0, cut));
}

/// The response in a model's whole output (prompt included): the text after the first response marker, cut as
/// extract_response does. "" when the output holds no response marker.
inline std::string extract_response_from_output(PromptTemplate const& t, std::string_view output) {
    auto const at = output.find(t.response_split());
    if (at == std::string_view::npos) return {};
    return extract_response(t, output.substr(at + t.response_split().size()));
}

/// One response as a JSON object (key order: id, language, instruction, input, response, run, model, method,
/// strategy, decoding).
inline nlohmann::ordered_json to_json(Response const& r) {
    return nlohmann::ordered_json{{"id", r.id},
                                  {"language", r.language},
                                  {"instruction", r.instruction},
                                  {"input", r.input},
                                  {"response", r.response},
                                  {"run", r.run},
                                  {"model", r.model},
                                  {"method", r.method},
                                  {"strategy", r.strategy},
                                  {"decoding", r.decoding}};
}

/// Writes responses as JSON Lines, atomically: readers see the old file or the whole new one.
inline void write_responses(std::filesystem::path const& path, std::vector<Response> const& responses) {
    io::AtomicFile file(path);
    for (auto const& r : responses)
        file.write(to_json(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    file.commit();
}

/// Reads a responses JSONL file. Every line must be an object with string id, language, instruction, input and
/// response; run, model, method, strategy (strings) and decoding (an object) are optional. Anything else is an
/// Error naming file:line.
inline std::vector<Response> read_responses(std::filesystem::path const& path) {
    std::vector<Response> out;
    for_each_jsonl_object(path, "responses file", "a response", [&](nlohmann::json const& j, std::string const& where) {
        auto text = [&](char const* key, bool required) -> std::string {
            auto const it = j.find(key);
            if (it == j.end()) {
                require(!required, where, ": no \"", key, "\"");
                return {};
            }
            require(it->is_string(), where, ": \"", key, "\" is a JSON ", it->type_name(), ", not a string");
            return it->get<std::string>();
        };
        Response r;
        r.id = text("id", true);
        r.language = text("language", true);
        r.instruction = text("instruction", true);
        r.input = text("input", true);
        r.response = text("response", true);
        r.run = text("run", false);
        r.model = text("model", false);
        r.method = text("method", false);
        r.strategy = text("strategy", false);
        if (auto const it = j.find("decoding"); it != j.end()) {
            require(it->is_object(), where, ": \"decoding\" is a JSON ", it->type_name(), ", not an object");
            r.decoding = *it;
        }
        out.push_back(std::move(r));
    });
    return out;
}

}  // namespace polyalpaca::eval
