/// @file study/byte_tokenizer.hpp
/// @brief The tokenizers of studies on the synthetic suite, as HF tokenizer.json: bytes (BPE with no merges over
///        GPT-2's 256 byte symbols, plus <pad>, <s>, </s>) or a byte-level BPE learned from the suite's text
///        (tokenizer/bpe_trainer.hpp), and the compact prompt template they train with. Written to the study's
///        output, either loads in HF tokenizers as well as in polyalpaca::Tokenizer.
#pragma once

#include <memory>
#include <span>
#include <string_view>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/data/prompt_template.hpp"
#include "polyalpaca/tokenizer/bpe_trainer.hpp"
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

/// How a suite's BPE cuts text into words before merging: runs of letters, of digits, of whitespace and of other
/// characters, each its own word. Unlike GPT-2's pattern no word carries the space before it, so a word is the same
/// tokens wherever it stands (first in a list or after ", ", in the input or in the answer), and copying a word
/// from the prompt is copying its ids.
inline constexpr std::string_view suite_bpe_split_pattern = R"(\s+|\p{L}+|\p{N}+|[^\s\p{L}\p{N}]+)";

/// That cut as a pre-tokenizer: Split (isolated), then every byte as its printable symbol.
inline tokenizer::SequencePreTokenizer suite_bpe_pre_tokenizer() {
    using namespace tokenizer;
    return SequencePreTokenizer({std::make_shared<SplitPreTokenizer const>(Regex{suite_bpe_split_pattern},
                                                                           SplitBehavior::isolated, false),
                                 std::make_shared<ByteLevelPreTokenizer const>(false, false)});
}

/// The tokenizer.json text of a byte-level BPE: ids 0..2 <pad>, <s>, </s>, byte b id 3 + b, then each merge's result
/// in the merges' order (a result already in the vocabulary keeps its id). With no merges it is the byte tokenizer,
/// which takes the text whole; with merges the text is first cut as suite_bpe_pre_tokenizer cuts it, as the merges
/// were learned.
inline std::string byte_level_bpe_json(std::span<std::pair<std::string, std::string> const> merges = {}) {
    nlohmann::ordered_json vocab;
    nlohmann::ordered_json added = nlohmann::ordered_json::array();
    char const* specials[] = {"<pad>", "<s>", "</s>"};
    for (int i = 0; i < byte_offset; ++i) {
        vocab[specials[i]] = i;
        added.push_back({{"id", i}, {"content", specials[i]}, {"single_word", false}, {"lstrip", false},
                         {"rstrip", false}, {"normalized", false}, {"special", true}});
    }
    for (int b = 0; b < 256; ++b) vocab[study_detail::byte_symbol(b)] = b + byte_offset;
    auto merge_list = nlohmann::ordered_json::array();
    for (auto const& [left, right] : merges) {
        if (!vocab.contains(left + right)) vocab[left + right] = int(vocab.size());
        merge_list.push_back(left + " " + right);
    }
    nlohmann::ordered_json const bytes{
        {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}};
    nlohmann::ordered_json const split{{"type", "Split"},
                                       {"pattern", {{"Regex", std::string(suite_bpe_split_pattern)}}},
                                       {"behavior", "Isolated"},
                                       {"invert", false}};
    auto const pre_tokenizer =
        merges.empty() ? bytes : nlohmann::ordered_json{{"type", "Sequence"}, {"pretokenizers", {split, bytes}}};
    nlohmann::ordered_json j{
        {"version", "1.0"},
        {"truncation", nullptr},
        {"padding", nullptr},
        {"added_tokens", added},
        {"normalizer", nullptr},
        {"pre_tokenizer", pre_tokenizer},
        {"post_processor", nullptr},
        {"decoder", bytes},
        {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
                   {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
                   {"ignore_merges", false}, {"vocab", vocab}, {"merges", merge_list}}}};
    return j.dump(1) + "\n";
}

inline std::string byte_tokenizer_json() { return byte_level_bpe_json(); }

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
