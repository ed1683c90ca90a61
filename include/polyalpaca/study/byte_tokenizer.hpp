/// @file study/byte_tokenizer.hpp
/// @brief The embedded study's byte-level tokenizer as an HF tokenizer.json (BPE with no merges over GPT-2's 256
///        byte symbols, plus <pad>, <s>, </s>), and the compact prompt template it trains with. Written to the
///        study's output, the tokenizer loads in HF tokenizers as well as in polyalpaca::Tokenizer.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "polyalpaca/data/prompt_template.hpp"
#include "polyalpaca/tokenizer/tokenizer.hpp"

namespace polyalpaca::study {

/// Token ids of the byte tokenizer: 0 <pad>, 1 <s>, 2 </s>, then byte b is id 3 + b.
inline constexpr int byte_pad_id = 0, byte_bos_id = 1, byte_eos_id = 2, byte_offset = 3;
inline constexpr int byte_vocab_size = 256 + byte_offset;

namespace study_detail {

/// GPT-2's bytes_to_unicode: the printable symbol standing for byte b in byte-level BPE vocabularies.
inline std::string byte_symbol(int b) {
    auto printable = [](int x) { return (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255); };
    int code = b;
    if (!printable(b)) {
        int n = 0;
        for (int x = 0; x < b; ++x) n += printable(x) ? 0 : 1;
        code = 256 + n;
    }
    std::string out;
    if (code < 0x80) {
        out += char(code);
    } else {
        out += char(0xC0 | (code >> 6));
        out += char(0x80 | (code & 0x3F));
    }
    return out;
}

}  // namespace study_detail

/// The tokenizer.json text of the byte tokenizer.
inline std::string byte_tokenizer_json() {
    nlohmann::ordered_json vocab;
    nlohmann::ordered_json added = nlohmann::ordered_json::array();
    char const* specials[] = {"<pad>", "<s>", "</s>"};
    for (int i = 0; i < byte_offset; ++i) {
        vocab[specials[i]] = i;
        added.push_back({{"id", i}, {"content", specials[i]}, {"single_word", false}, {"lstrip", false},
                         {"rstrip", false}, {"normalized", false}, {"special", true}});
    }
    for (int b = 0; b < 256; ++b) vocab[study_detail::byte_symbol(b)] = b + byte_offset;
    nlohmann::ordered_json j{
        {"version", "1.0"},
        {"truncation", nullptr},
        {"padding", nullptr},
        {"added_tokens", added},
        {"normalizer", nullptr},
        {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}},
        {"post_processor", nullptr},
        {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}},
        {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
                   {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
                   {"ignore_merges", false}, {"vocab", vocab}, {"merges", nlohmann::ordered_json::array()}}}};
    return j.dump(1) + "\n";
}

inline Tokenizer byte_tokenizer() { return Tokenizer::from_hf_json_text(byte_tokenizer_json(), "byte tokenizer"); }

/// The compact Alpaca-style template of the embedded study: the section headers without the preamble sentence, so
/// byte-level prompts stay short.
inline std::string compact_template_json() {
    return R"json({
    "description": "Alpaca's section headers without the preamble (the embedded study's byte-level prompts).",
    "prompt_input": "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
    "prompt_no_input": "### Instruction:\n{instruction}\n\n### Response:\n",
    "response_split": "### Response:"
}
)json";
}

}  // namespace polyalpaca::study
