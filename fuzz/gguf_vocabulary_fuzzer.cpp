/// @file fuzz/gguf_vocabulary_fuzzer.cpp
/// @brief libFuzzer target: any bytes read as a tokenizer's directory, as the GGUF export reads it
///        (llama_cpp_vocabulary_of_tokenizer_json: tokenizer.json, tokenizer_config.json, chat_template.json and the
///        model's config.json) end in a llama.cpp vocabulary or an Error. The input holds the four files in that order,
///        each but the last preceded by its length (fuzz/temp_file.hpp, length_prefixed_parts); an empty part is an
///        absent file (tokenizer.json is always written).
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "polyalpaca/io/gguf_hf_vocabulary.hpp"
#include "temp_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    namespace pa = polyalpaca;
    constexpr std::array<std::string_view, 4> names{"tokenizer.json", "tokenizer_config.json", "chat_template.json",
                                                    "config.json"};
    auto const parts = pa::fuzz::length_prefixed_parts({reinterpret_cast<char const*>(data), size}, names.size());
    std::array<std::optional<pa::fuzz::TempFile>, names.size()> files;
    for (std::size_t i = 0; i < names.size(); ++i)
        if (i == 0 || !parts[i].empty()) files[i].emplace(names[i], parts[i]);
    auto const dir = files[0]->path().parent_path();
    try {
        // 256 rows: more than the seeds' tokenizers have ids (the rest become [PAD<id>]); a larger id is an error.
        auto const vocabulary = pa::io::llama_cpp_vocabulary_of_tokenizer_json(dir / "tokenizer.json",
                                                                                dir / "config.json", 256);
        // What the GGUF writer relies on: a token and a type per row, a score per row for "llama", special ids
        // that are rows or -1.
        auto const rows = vocabulary.tokens.size();
        if (rows != 256 || vocabulary.token_types.size() != rows) __builtin_trap();
        if (vocabulary.model == "llama" && vocabulary.scores.size() != rows) __builtin_trap();
        for (auto const id : {vocabulary.bos_id, vocabulary.eos_id, vocabulary.unk_id, vocabulary.pad_id,
                              vocabulary.sep_id, vocabulary.mask_id})
            if (id < -1 || id >= std::int32_t(rows)) __builtin_trap();
    } catch (pa::Error const&) {
    }
    return 0;
}
