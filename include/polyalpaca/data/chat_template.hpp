/// @file data/chat_template.hpp
/// @brief A prompt template as a Jinja chat template (HF's tokenizer_config.json "chat_template", GGUF's
///        tokenizer.chat_template), so that chat front ends prompt a tuned model as it was trained.
#pragma once

#include <string>
#include <string_view>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/data/prompt_template.hpp"

namespace polyalpaca {

namespace chat_template_detail {

/// `text` as a double-quoted Jinja string literal (Jinja reads Python's escapes).
inline std::string jinja_string(std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '"':
                out += "\\\"";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                out += c;
        }
    }
    return out + "\"";
}

}  // namespace chat_template_detail

/// The Jinja chat template of `t`: each user message is an instruction in the template's prompt without input (the
/// prompt ends where the response begins, so add_generation_prompt adds nothing); each assistant message is its
/// response followed by the EOS token, as in training; any other role is an error raised by the template. Rendered
/// for one user message, it gives exactly t.generate_prompt(message, "").
inline std::string chat_template_of(PromptTemplate const& t) {
    using chat_template_detail::jinja_string;
    constexpr std::string_view marker = "\x1f";  // stands for the instruction while the prompt is cut in two
    auto const prompt = t.generate_prompt(marker, "");
    auto const at = prompt.find(marker);
    require(at != std::string::npos && prompt.find(marker, at + 1) == std::string::npos, t.origin(),
            ": the prompt without input must hold {instruction} once to become a chat template");
    return "{%- for message in messages -%}"
           "{%- if message['role'] == 'user' -%}"
           "{{ " +
           jinja_string(prompt.substr(0, at)) + " + message['content'] + " +
           jinja_string(prompt.substr(at + marker.size())) +
           " }}"
           "{%- elif message['role'] == 'assistant' -%}"
           "{{ message['content'] + eos_token }}"
           "{%- else -%}"
           "{{ raise_exception('an Alpaca-style prompt template has user and assistant messages only') }}"
           "{%- endif -%}"
           "{%- endfor -%}";
}

}  // namespace polyalpaca
