/// @file data/prompt_template.hpp
/// @brief Alpaca prompt templates in alpaca-lora's JSON format: building prompts and cutting responses out of output.
#pragma once

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/excerpt.hpp"
#include "polyalpaca/data/python_text.hpp"
#include "polyalpaca/data/record.hpp"
#include "polyalpaca/io/input_file.hpp"

namespace polyalpaca {

namespace data_detail {

/// alpaca-lora templates/alpaca.json (tloen/alpaca-lora @ 8d58d37b65501eb07a1397a10ca5e80834b626f1), byte for byte:
/// a newline after "### Response:". The same text is committed as templates/alpaca.json.
inline constexpr std::string_view alpaca_template_json = R"json({
    "description": "Template used by Alpaca-LoRA.",
    "prompt_input": "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
    "prompt_no_input": "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n",
    "response_split": "### Response:"    
}
)json";

/// alpaca-lora templates/alpaca_legacy.json (same commit), byte for byte: no newline after "### Response:", the
/// prompts of stanford_alpaca's train.py. Committed as templates/alpaca_legacy.json.
inline constexpr std::string_view alpaca_legacy_template_json = R"json({
    "description": "Legacy template, used by Original Alpaca repository.",
    "prompt_input": "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:",
    "prompt_no_input": "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:",
    "response_split": "### Response:"    
}
)json";

}  // namespace data_detail

/// A prompt template: `prompt_input` (records with an input) and `prompt_no_input` (input ""), with the
/// placeholders {instruction} and {input} filled as Python's str.format does ("{{" and "}}" are literal braces), and
/// `response_split`, the marker a response follows.
class PromptTemplate {
public:
    /// A template file in alpaca-lora's format: keys description, prompt_input, prompt_no_input, response_split.
    static PromptTemplate from_file(std::filesystem::path const& path) {
        auto in = io::open_input_file(path, "the prompt template file");
        std::ostringstream text;
        text << in.rdbuf();
        return from_json_text(text.str(), path.string());
    }
    /// The same from JSON text; `origin` names it in messages.
    static PromptTemplate from_json_text(std::string_view json_text, std::string origin) {
        nlohmann::json json;
        try {
            json = nlohmann::json::parse(json_text.begin(), json_text.end());
        } catch (nlohmann::json::exception const& e) {
            fail(origin, ": prompt template is not valid JSON: ", json_error_text(e.what()));
        }
        require(json.is_object(), origin, ": a prompt template is a JSON object, found a JSON ", json.type_name());
        PromptTemplate t;
        t.origin_ = std::move(origin);
        auto text_of = [&json, &t](char const* key) {
            auto const it = json.find(key);
            require(it != json.end(), t.origin_, ": prompt template has no \"", key, "\"");
            require(it->is_string(), t.origin_, ": prompt template key \"", key, "\" is a JSON ", it->type_name(),
                    ", not a string");
            return it->get<std::string>();
        };
        t.description_ = text_of("description");
        t.prompt_input_ = text_of("prompt_input");
        t.prompt_no_input_ = text_of("prompt_no_input");
        t.response_split_ = text_of("response_split");
        t.with_input_ = compile(t.prompt_input_, "prompt_input", true, t.origin_);
        t.without_input_ = compile(t.prompt_no_input_, "prompt_no_input", false, t.origin_);
        require(!t.response_split_.empty(), t.origin_, ": prompt template key \"response_split\" is empty");
        auto require_split_in = [&t](std::vector<Piece> const& pieces, char const* key) {
            require(literal_text(pieces).find(t.response_split_) != std::string::npos, t.origin_,
                    ": prompt template's response_split \"", t.response_split_, "\" does not occur in \"", key, "\"");
        };
        require_split_in(t.with_input_, "prompt_input");
        require_split_in(t.without_input_, "prompt_no_input");
        return t;
    }

    /// alpaca-lora's default template (LoRA runs): "### Response:\n".
    static PromptTemplate alpaca() { return from_json_text(data_detail::alpaca_template_json, "built-in alpaca"); }
    /// The original Stanford Alpaca prompts (full-parameter runs): "### Response:" without a newline.
    static PromptTemplate alpaca_legacy() {
        return from_json_text(data_detail::alpaca_legacy_template_json, "built-in alpaca_legacy");
    }
    /// "alpaca" or "alpaca_legacy"; any other name is an Error listing both.
    static PromptTemplate builtin(std::string_view name) {
        if (name == "alpaca") return alpaca();
        if (name == "alpaca_legacy") return alpaca_legacy();
        fail("no built-in prompt template \"", name, "\" (built in: alpaca, alpaca_legacy)");
    }
    /// A built-in name, else a path to a template file.
    static PromptTemplate from_name_or_file(std::string const& name_or_path) {
        if (name_or_path == "alpaca" || name_or_path == "alpaca_legacy") return builtin(name_or_path);
        return from_file(name_or_path);
    }

    std::string const& origin() const { return origin_; }
    std::string const& description() const { return description_; }
    std::string const& prompt_input() const { return prompt_input_; }
    std::string const& prompt_no_input() const { return prompt_no_input_; }
    std::string const& response_split() const { return response_split_; }

    /// The prompt the model sees before its response: prompt_input when `input` is not empty, else prompt_no_input.
    std::string generate_prompt(std::string_view instruction, std::string_view input) const {
        std::string out;
        for (auto const& piece : input.empty() ? without_input_ : with_input_) {
            out += piece.literal;
            if (piece.field == Field::Instruction) out += instruction;
            if (piece.field == Field::Input) out += input;
        }
        return out;
    }
    std::string generate_prompt(Record const& record) const { return generate_prompt(record.instruction, record.input); }
    /// The training text: the prompt followed directly by the output (alpaca-lora's generate_prompt with a label).
    std::string full_prompt(Record const& record) const { return generate_prompt(record) + record.output; }

    /// The response in a model's output that starts with the prompt: the text after the first response_split, cut
    /// at the next response_split (alpaca-lora's split(...)[1]) and at the first "\n### " section marker, stripped of
    /// whitespace as Python's str.strip() does. nullopt when the output holds no response_split.
    std::optional<std::string> response_of(std::string_view generated_text) const {
        auto const at = generated_text.find(response_split_);
        if (at == std::string_view::npos) return std::nullopt;
        return response_after_prompt(generated_text.substr(at + response_split_.size()));
    }
    /// The response in text generated after the prompt (the prompt not included): cut at the first response_split
    /// and at the first "\n### ", stripped. Safer than response_of when an instruction may hold the marker.
    std::string response_after_prompt(std::string_view continuation) const {
        continuation = continuation.substr(0, continuation.find(response_split_));
        continuation = continuation.substr(0, continuation.find("\n### "));
        return std::string(data_detail::python_strip(continuation));
    }

private:
    enum class Field { None, Instruction, Input };
    struct Piece {
        std::string literal;  ///< text before the field
        Field field;          ///< the placeholder after it, None at the end
    };

    /// Python str.format's grammar restricted to {instruction} and {input}: any other field, a conversion, a format
    /// spec, a lone '{' or '}' is an Error naming the key; so is a missing placeholder (and {input} in
    /// prompt_no_input, which alpaca-lora formats without an input).
    static std::vector<Piece> compile(std::string const& text, char const* key, bool with_input,
                                      std::string const& origin) {
        std::vector<Piece> pieces(1, Piece{"", Field::None});
        bool has_instruction = false, has_input = false;
        for (std::size_t i = 0; i < text.size(); ++i) {
            char const c = text[i];
            if (c == '}') {
                require(i + 1 < text.size() && text[i + 1] == '}', origin, ": prompt template \"", key,
                        "\": single '}' at character ", i, " (write '}}' for a literal brace)");
                pieces.back().literal += '}';
                ++i;
            } else if (c != '{') {
                pieces.back().literal += c;
            } else if (i + 1 < text.size() && text[i + 1] == '{') {
                pieces.back().literal += '{';
                ++i;
            } else {
                auto const close = text.find('}', i);
                require(close != std::string::npos, origin, ": prompt template \"", key, "\": '{' at character ", i,
                        " is not closed");
                auto const name = std::string_view(text).substr(i + 1, close - i - 1);
                Field field = Field::None;
                if (name == "instruction") field = Field::Instruction, has_instruction = true;
                else if (name == "input" && with_input) field = Field::Input, has_input = true;
                else
                    fail(origin, ": prompt template \"", key, "\": unknown placeholder {", name, "} at character ", i,
                         with_input ? " (placeholders: {instruction}, {input})" : " (placeholders: {instruction})");
                pieces.back().field = field;
                pieces.push_back(Piece{"", Field::None});
                i = close;
            }
        }
        require(has_instruction, origin, ": prompt template \"", key, "\" has no {instruction} placeholder");
        require(has_input || !with_input, origin, ": prompt template \"", key, "\" has no {input} placeholder");
        return pieces;
    }

    static std::string literal_text(std::vector<Piece> const& pieces) {
        std::string out;
        for (auto const& p : pieces) out += p.literal;
        return out;
    }

    std::string origin_, description_, prompt_input_, prompt_no_input_, response_split_;
    std::vector<Piece> with_input_, without_input_;
};

}  // namespace polyalpaca
