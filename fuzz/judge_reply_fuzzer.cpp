/// @file fuzz/judge_reply_fuzzer.cpp
/// @brief libFuzzer target: any bytes read as a judge server's reply body end, as JudgeClient reads an HTTP 200
///        answer, in the first choice's message content and the score the built-in judge prompt parses from it, or
///        in an Error; the bytes are also given to parse_score directly, and read as an OpenAI batch output file.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "polyalpaca/eval/judge_client.hpp"
#include "temp_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    namespace ev = polyalpaca::eval;
    static ev::JudgePrompt const prompt = ev::JudgePrompt::builtin();
    std::string_view const body(reinterpret_cast<char const*>(data), size);
    (void)prompt.parse_score(body);
    try {
        auto const completion = nlohmann::json::parse(body, nullptr, false);
        if (completion.is_object()) {
            auto const content = ev::chat_completion_text(completion, "judge (fuzz)");
            (void)prompt.parse_score(content);
        }
    } catch (polyalpaca::Error const&) {
    }
    try {
        polyalpaca::fuzz::TempFile const file("batch_output.jsonl", body);
        (void)ev::read_batch_output(file.path(), prompt);
    } catch (polyalpaca::Error const&) {
    }
    return 0;
}
