/// @file eval/judge_batch.hpp
/// @brief The judge through the OpenAI Batch API: request JSON Lines out, the batch's output JSON Lines back in.
///
/// A request line: {"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {"model", "messages",
/// "temperature", "max_tokens"}}. custom_id is run|language|id with each part percent-encoded ('%', '|' and bytes
/// outside printable ASCII become %XX), so decoding gives back the exact strings.
/// An output line: {"custom_id", "response": {"status_code", "body": <chat completion>}, "error"}.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/eval/judge_prompt.hpp"
#include "polyalpaca/eval/judge_records.hpp"
#include "polyalpaca/io/atomic_file.hpp"

namespace polyalpaca::eval {

namespace judge_detail {

inline void percent_encode(std::string& out, std::string_view part) {
    static constexpr char hex[] = "0123456789ABCDEF";
    for (char ch : part) {
        auto const c = static_cast<unsigned char>(ch);
        if (c < 0x21 || c > 0x7e || c == '%' || c == '|') {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        } else {
            out.push_back(ch);
        }
    }
}

/// `custom_id` for a message: at most its first 60 bytes.
inline std::string custom_id_excerpt(std::string_view custom_id) {
    return custom_id.size() <= 60 ? std::string(custom_id) : std::string(custom_id.substr(0, 60)) + "...";
}

inline std::string percent_decode(std::string_view part, std::string_view custom_id) {
    auto const nibble = [&](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        fail("custom_id '", custom_id_excerpt(custom_id), "': bad percent escape");
    };
    std::string out;
    for (std::size_t i = 0; i < part.size(); ++i) {
        if (part[i] != '%') {
            out.push_back(part[i]);
            continue;
        }
        require(i + 2 < part.size(), "custom_id '", custom_id_excerpt(custom_id), "': cut percent escape");
        out.push_back(static_cast<char>(nibble(part[i + 1]) * 16 + nibble(part[i + 2])));
        i += 2;
    }
    return out;
}

}  // namespace judge_detail

/// The batch custom_id of a response.
inline std::string batch_custom_id(std::string_view run, std::string_view language, std::string_view id) {
    std::string out;
    judge_detail::percent_encode(out, run);
    out.push_back('|');
    judge_detail::percent_encode(out, language);
    out.push_back('|');
    judge_detail::percent_encode(out, id);
    return out;
}

/// The (run, language, id) a custom_id encodes, as a JudgeScore with no score yet.
inline JudgeScore parse_batch_custom_id(std::string_view custom_id) {
    auto const first = custom_id.find('|');
    auto const second = first == std::string_view::npos ? first : custom_id.find('|', first + 1);
    require(second != std::string_view::npos && custom_id.find('|', second + 1) == std::string_view::npos,
            "custom_id '", judge_detail::custom_id_excerpt(custom_id), "' is not run|language|id");
    JudgeScore s;
    s.run = judge_detail::percent_decode(custom_id.substr(0, first), custom_id);
    s.language = judge_detail::percent_decode(custom_id.substr(first + 1, second - first - 1), custom_id);
    s.id = judge_detail::percent_decode(custom_id.substr(second + 1), custom_id);
    return s;
}

/// Writes one request line per item to `path` (atomically); returns the number written.
inline std::size_t write_batch_requests(std::filesystem::path const& path, std::vector<JudgeItem> const& items,
                                        JudgePrompt const& prompt, std::string const& model, double temperature,
                                        int max_tokens) {
    require(!model.empty(), "batch requests need a judge model name");
    std::string text;
    for (auto const& item : items) {
        nlohmann::ordered_json line;
        line["custom_id"] = batch_custom_id(item.run, item.language, item.id);
        line["method"] = "POST";
        line["url"] = "/v1/chat/completions";
        line["body"] = chat_request_body(prompt, item, model, temperature, max_tokens);
        text += line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    }
    io::write_file_atomically(path, text);
    return items.size();
}

/// The text of the first choice of a chat completion (empty when its content is null), or an error naming `where`.
inline std::string chat_completion_text(nlohmann::json const& completion, std::string const& where) {
    auto const choices = completion.find("choices");
    require(choices != completion.end() && choices->is_array() && !choices->empty(), where,
            ": the chat completion has no choices");
    auto const& first = (*choices)[0];
    require(first.is_object() && first.contains("message") && first["message"].is_object(), where,
            ": the first choice has no message");
    auto const& message = first["message"];
    auto const content = message.find("content");  // operator[] on a const json with no such key is undefined
    require(content != message.end(), where, ": the first choice's message has no \"content\"");
    require(content->is_null() || content->is_string(), where, ": the message content is not text");
    return content->is_null() ? std::string() : content->get<std::string>();
}

/// A batch output read back: scores for the requests that succeeded, and one line per request that failed.
struct BatchOutput {
    std::vector<JudgeScore> scores;
    std::vector<std::string> failures;  // "custom_id: why"
};

/// Reads an OpenAI batch output (or error) file: each successful line becomes a score parsed with `prompt`, its
/// answer kept as judge_raw_excerpt() keeps it.
inline BatchOutput read_batch_output(std::filesystem::path const& path, JudgePrompt const& prompt) {
    BatchOutput out;
    judge_detail::for_each_json_line(path, false, [&](nlohmann::json const& o, std::string const& where) {
        std::string const custom_id = judge_detail::string_field(o, "custom_id", where);
        JudgeScore s;
        try {
            s = parse_batch_custom_id(custom_id);
        } catch (Error const& e) {
            fail(where, ": ", e.what());
        }
        auto const error = o.find("error");
        if (error != o.end() && !error->is_null()) {
            std::string const why = error->is_object() && error->contains("message") && (*error)["message"].is_string()
                                        ? (*error)["message"].get<std::string>()
                                        : error->dump();
            out.failures.push_back(custom_id + ": " + why);
            return;
        }
        auto const response = o.find("response");
        require(response != o.end() && response->is_object(), where, ": no \"response\" object and no error");
        auto const code = response->find("status_code");
        require(code != response->end() && code->is_number_integer(), where,
                ": the response has no whole-number \"status_code\"");
        auto const status = code->get<std::int64_t>();
        auto const body = response->find("body");
        if (status != 200) {
            std::string why = "HTTP " + std::to_string(status);
            if (body != response->end() && body->is_object() && body->contains("error") &&
                (*body)["error"].is_object() && (*body)["error"].contains("message") &&
                (*body)["error"]["message"].is_string())
                why += ": " + (*body)["error"]["message"].get<std::string>();
            out.failures.push_back(custom_id + ": " + why);
            return;
        }
        require(body != response->end() && body->is_object(), where, ": the response has no body");
        std::string const answer = chat_completion_text(*body, where);
        s.score = prompt.parse_score(answer);
        s.raw = judge_raw_excerpt(answer);
        out.scores.push_back(std::move(s));
    });
    return out;
}

}  // namespace polyalpaca::eval
