/// @file eval/judge_prompt.hpp
/// @brief The judge's prompt: a system message and a user template with placeholders, a score scale, and the
/// parser that reads a score out of the judge's answer. Loaded from a JSON or text file, or the built-in rubric.
///
/// Placeholders: {instruction} {input} {response} {language} (the code as in the responses, e.g. "de") and
/// {language_name} (its English name, e.g. "German"; the code itself when the code is not in the table below).
/// "{{" and "}}" are literal braces. A brace followed by a name and "}" is a placeholder and must be one of those
/// five; any other brace is literal text. Both the system message and the template may use placeholders.
///
/// Score rules (parse_score): numbers are digits with an optional decimal part and an optional exponent ("4", "4.5",
/// "1e308", "2.5E-1"; no sign). An "e" without exponent digits after it is text ("Score: 4e" is 4), as is a "." without
/// digits after it ("Score: 4." is 4); a number beyond double's range lies outside any scale. If the answer has a
/// "Score" label (case-insensitive, then ":" or "=", markdown "*" and "_" around it allowed) the score is the
/// number right after the last such label (spaces, "*", "_", "[", "(" and quotes may come between); otherwise it
/// is the first number in the answer that lies in the scale. A labelled number outside [min, max], a label with no
/// number after it, or no number in the scale at all: no score (null).
#pragma once

#include <cctype>
#include <charconv>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/excerpt.hpp"
#include "polyalpaca/eval/judge_records.hpp"
#include "polyalpaca/io/input_file.hpp"

namespace polyalpaca::eval {

/// English name of a language code ("de" -> "German"); the code itself when it is not listed.
inline std::string language_name(std::string_view code) {
    static constexpr std::pair<std::string_view, std::string_view> names[] = {
        {"ar", "Arabic"},  {"bg", "Bulgarian"},  {"bn", "Bengali"},   {"ca", "Catalan"},   {"cs", "Czech"},
        {"da", "Danish"},  {"de", "German"},     {"el", "Greek"},     {"en", "English"},   {"es", "Spanish"},
        {"et", "Estonian"}, {"fa", "Persian"},   {"fi", "Finnish"},   {"fr", "French"},    {"he", "Hebrew"},
        {"hi", "Hindi"},   {"hr", "Croatian"},   {"hu", "Hungarian"}, {"id", "Indonesian"}, {"it", "Italian"},
        {"ja", "Japanese"}, {"ko", "Korean"},    {"lt", "Lithuanian"}, {"lv", "Latvian"},  {"nl", "Dutch"},
        {"no", "Norwegian"}, {"pl", "Polish"},   {"pt", "Portuguese"}, {"ro", "Romanian"}, {"ru", "Russian"},
        {"sk", "Slovak"},  {"sl", "Slovenian"},  {"sv", "Swedish"},   {"sw", "Swahili"},   {"th", "Thai"},
        {"tr", "Turkish"}, {"uk", "Ukrainian"},  {"ur", "Urdu"},      {"vi", "Vietnamese"}, {"zh", "Chinese"}};
    for (auto const& [c, name] : names)
        if (c == code) return std::string(name);
    return std::string(code);
}

class JudgePrompt {
public:
    std::string system;
    std::string user_template;
    double min_score = 1;
    double max_score = 5;
    std::string source = "built-in rubric";  // where it came from, for messages

    /// A 1-5 rubric for helpfulness and correctness that also asks whether the response is in the requested language.
    static JudgePrompt builtin() {
        JudgePrompt p;
        p.system =
            "You are a strict, fair grader of answers written by an AI assistant. You judge one answer at a time "
            "and follow the scoring rubric exactly.";
        p.user_template =
            "Grade the answer below on a scale from 1 to 5.\n"
            "\n"
            "The answer should be written in {language_name} (language code {language}), the language of the "
            "instruction.\n"
            "\n"
            "Rubric:\n"
            "5: fully correct, complete and helpful; follows the instruction; entirely in {language_name}.\n"
            "4: correct and helpful with small omissions or small flaws in wording; in {language_name}.\n"
            "3: partly correct or partly helpful, or noticeably incomplete; or correct but with passages in "
            "another language.\n"
            "2: mostly wrong, unhelpful or off-topic; or mostly not in {language_name}.\n"
            "1: wrong, empty, nonsensical or repetitive; or not in {language_name} at all.\n"
            "\n"
            "[Instruction]\n{instruction}\n\n"
            "[Input (may be empty)]\n{input}\n\n"
            "[Answer]\n{response}\n\n"
            "Explain your judgement in one or two sentences, then end with a last line of the form \"Score: N\" "
            "where N is an integer from 1 to 5.";
        p.check();
        return p;
    }

    /// A ".json" file: {"system": "...", "template": "...", "min_score": 1, "max_score": 5} (system and the scale
    /// optional, defaulting to the built-in ones). Any other file is a text template; it may start with a header
    /// between two "---" lines holding "system: ...", "min_score: N" and "max_score: N" lines.
    static JudgePrompt load(std::filesystem::path const& path) {
        auto in = io::open_input_file(path, "the judge prompt");
        std::string const text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        JudgePrompt p = builtin();
        p.source = path.string();
        if (path.extension() == ".json") {
            auto const j = nlohmann::json::parse(text, nullptr, false);
            require(j.is_object(), "judge prompt '", path.string(), "': not a JSON object");
            for (auto const& [key, value] : j.items()) {
                bool const known = key == "system" || key == "template" || key == "min_score" || key == "max_score";
                require(known, "judge prompt '", path.string(), "': unknown key \"", key,
                        "\" (known: system, template, min_score, max_score)");
                bool const text_key = key == "system" || key == "template";
                require(text_key ? value.is_string() : value.is_number(), "judge prompt '", path.string(), "': \"",
                        key, "\" must be a ", text_key ? "string" : "number");
            }
            require(j.contains("template"), "judge prompt '", path.string(), "': no \"template\"");
            p.user_template = j["template"].get<std::string>();
            if (j.contains("system")) p.system = j["system"].get<std::string>();
            if (j.contains("min_score")) p.min_score = j["min_score"].get<double>();
            if (j.contains("max_score")) p.max_score = j["max_score"].get<double>();
        } else {
            p.user_template = text;
            if (text.starts_with("---\n")) {
                auto const end = text.find("\n---\n", 3);
                require(end != std::string::npos, "judge prompt '", path.string(),
                        "': header opened with '---' is never closed by a '---' line");
                p.user_template = text.substr(end + 5);
                read_header(path, std::string_view(text).substr(4, end - 3), p);
            }
        }
        p.check();
        return p;
    }

    /// The template with every placeholder replaced by the item's fields.
    std::string fill_user(JudgeItem const& item) const { return fill(user_template, item, "template"); }
    std::string fill_system(JudgeItem const& item) const { return fill(system, item, "system message"); }

    /// Chat messages: the system message (when not empty), then the filled template as the user turn.
    nlohmann::json messages(JudgeItem const& item) const {
        auto m = nlohmann::json::array();
        if (!system.empty()) m.push_back({{"role", "system"}, {"content", fill_system(item)}});
        m.push_back({{"role", "user"}, {"content", fill_user(item)}});
        return m;
    }

    /// The score in `answer` by the rules in the file comment, or none.
    std::optional<double> parse_score(std::string_view answer) const {
        std::optional<std::size_t> after_label;
        for (std::size_t i = 0; i + 5 <= answer.size(); ++i) {
            if (!iequals(answer.substr(i, 5), "score")) continue;
            if (i > 0 && std::isalnum(static_cast<unsigned char>(answer[i - 1]))) continue;
            std::size_t j = skip(answer, i + 5, " \t*_");
            if (j < answer.size() && (answer[j] == ':' || answer[j] == '=')) after_label = j + 1;
        }
        if (after_label) {
            std::size_t const j = skip(answer, *after_label, " \t\r\n*_[(\"'");
            auto const number = read_number(answer, j);
            if (!number || !in_scale(number->first)) return std::nullopt;
            return number->first;
        }
        for (std::size_t i = 0; i < answer.size(); ++i) {
            if (!std::isdigit(static_cast<unsigned char>(answer[i]))) continue;
            if (i > 0 && (std::isalnum(static_cast<unsigned char>(answer[i - 1])) || answer[i - 1] == '.')) continue;
            auto const number = read_number(answer, i);
            if (number && in_scale(number->first)) return number->first;
            if (number) i = number->second - 1;
        }
        return std::nullopt;
    }

    bool in_scale(double v) const { return v >= min_score && v <= max_score; }

private:
    static bool iequals(std::string_view a, std::string_view b) {
        if (a.size() != b.size()) return false;
        for (std::size_t i = 0; i < a.size(); ++i)
            if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
                return false;
        return true;
    }
    static std::size_t skip(std::string_view s, std::size_t i, std::string_view chars) {
        while (i < s.size() && chars.find(s[i]) != std::string_view::npos) ++i;
        return i;
    }
    /// Digits with an optional decimal part and exponent starting at `i`: the value and the position after it. A
    /// value beyond double's range reads as infinity (outside any scale); one too small to tell from 0 as 0.
    static std::optional<std::pair<double, std::size_t>> read_number(std::string_view s, std::size_t i) {
        auto const digit = [&](std::size_t k) {
            return k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]));
        };
        auto const digits_from = [&](std::size_t k) {
            while (digit(k)) ++k;
            return k;
        };
        std::size_t j = digits_from(i);
        if (j == i) return std::nullopt;
        if (j < s.size() && s[j] == '.' && digit(j + 1)) j = digits_from(j + 1);
        bool negative_exponent = false;
        if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
            std::size_t const sign = j + 1 < s.size() && (s[j + 1] == '+' || s[j + 1] == '-') ? 1 : 0;
            if (digit(j + 1 + sign)) {
                negative_exponent = sign == 1 && s[j + 1] == '-';
                j = digits_from(j + 1 + sign);
            }
        }
        if (j - i > 30) return std::nullopt;
        double v = 0;
        auto const [end, ec] = std::from_chars(s.data() + i, s.data() + j, v);
        // At most 30 characters: the digits alone are within [1e-30, 1e30], so the exponent's sign tells an
        // overflow from an underflow.
        if (ec == std::errc::result_out_of_range)
            v = negative_exponent ? 0.0 : std::numeric_limits<double>::infinity();
        else if (ec != std::errc() || end != s.data() + j) return std::nullopt;
        return std::pair{v, j};
    }

    static void read_header(std::filesystem::path const& path, std::string_view header, JudgePrompt& p) {
        std::size_t line_no = 1;
        while (!header.empty()) {
            auto const nl = header.find('\n');
            std::string_view line = header.substr(0, nl);
            header = nl == std::string_view::npos ? std::string_view{} : header.substr(nl + 1);
            ++line_no;
            if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
            auto const colon = line.find(':');
            std::string const where = detail::concat("judge prompt '", path.string(), "' line ", line_no);
            require(colon != std::string_view::npos, where, ": expected 'key: value' in the header");
            std::string_view const key = line.substr(0, colon);
            std::string value(line.substr(colon + 1));
            value.erase(0, value.find_first_not_of(" \t"));
            while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.pop_back();
            if (key == "system") {
                p.system = value;
            } else if (key == "min_score" || key == "max_score") {
                std::size_t used = 0;
                double v = 0;
                try {
                    v = std::stod(value, &used);
                } catch (std::exception const&) {
                    used = 0;
                }
                require(used == value.size() && used > 0, where, ": '", value, "' is not a number");
                (key == "min_score" ? p.min_score : p.max_score) = v;
            } else {
                fail(where, ": unknown header key '", key, "' (known: system, min_score, max_score)");
            }
        }
    }

    static bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

    /// Replaces placeholders; with `item` null only checks them.
    std::string fill(std::string_view text, JudgeItem const* item, char const* what) const {
        std::string out;
        out.reserve(text.size() + (item ? item->instruction.size() + item->input.size() + item->response.size() : 0));
        for (std::size_t i = 0; i < text.size(); ++i) {
            char const c = text[i];
            if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {
                out.push_back(c);
                ++i;
                continue;
            }
            std::size_t j = i + 1;
            while (c == '{' && j < text.size() && is_name_char(text[j])) ++j;
            if (c != '{' || j == i + 1 || j >= text.size() || text[j] != '}') {
                out.push_back(c);
                continue;
            }
            std::string_view const name = text.substr(i + 1, j - i - 1);
            i = j;
            if (name == "instruction") out += item ? item->instruction : "";
            else if (name == "input") out += item ? item->input : "";
            else if (name == "response") out += item ? item->response : "";
            else if (name == "language") out += item ? item->language : "";
            else if (name == "language_name") out += item ? language_name(item->language) : "";
            else
                fail("judge prompt '", source, "': unknown placeholder {", name, "} in the ", what,
                     " (known: {instruction} {input} {response} {language} {language_name}; write {{ for a literal brace)");
        }
        return out;
    }
    std::string fill(std::string_view text, JudgeItem const& item, char const* what) const {
        return fill(text, &item, what);
    }

    void check() const {
        require(min_score < max_score, "judge prompt '", source, "': score scale [", min_score, ", ", max_score,
                "] is empty (min_score must be below max_score)");
        require(user_template.find("{response}") != std::string::npos, "judge prompt '", source,
                "': the template never shows the judge the {response}");
        fill(system, nullptr, "system message");
        fill(user_template, nullptr, "template");
    }
};

/// Bytes of a judge's answer kept in a score line's "raw": the score is parsed from the whole answer first.
inline constexpr std::size_t judge_raw_max_bytes = 4096;

/// `answer` as a score line keeps it: at most judge_raw_max_bytes, cut at a UTF-8 character boundary, with "..."
/// appended when cut.
inline std::string judge_raw_excerpt(std::string_view answer) { return excerpt(answer, judge_raw_max_bytes); }

/// The request body for one chat completion: model, messages, temperature and max_tokens.
inline nlohmann::json chat_request_body(JudgePrompt const& prompt, JudgeItem const& item, std::string const& model,
                                        double temperature, int max_tokens) {
    return {{"model", model}, {"messages", prompt.messages(item)}, {"temperature", temperature},
            {"max_tokens", max_tokens}};
}

}  // namespace polyalpaca::eval
