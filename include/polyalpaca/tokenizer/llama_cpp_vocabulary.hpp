/// @file tokenizer/llama_cpp_vocabulary.hpp
/// @brief A llama.cpp vocabulary (GGUF tokenizer.ggml.*) as a Pipeline: "llama" is SentencePiece BPE, "gpt2" is
/// byte-level BPE whose pre-tokenizer comes from tokenizer.ggml.pre.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/excerpt.hpp"
#include "polyalpaca/tokenizer/bpe.hpp"
#include "polyalpaca/tokenizer/decoders.hpp"
#include "polyalpaca/tokenizer/pipeline.hpp"
#include "polyalpaca/tokenizer/pre_tokenizers.hpp"
#include "polyalpaca/tokenizer/sentencepiece_pipeline.hpp"

namespace polyalpaca::tokenizer {

/// The fields of tokenizer.ggml.* a tokenizer needs (io::GgufFile::vocabulary() has the same ones), and what a
/// GGUF writer adds beside them (separator and mask ids, the chat template).
struct LlamaCppVocabulary {
    std::string model;  ///< "llama" or "gpt2"
    std::string pre;    ///< "gpt-2", "bloom", "falcon", or empty/"default"
    std::vector<std::string> tokens;
    std::vector<float> scores;              ///< "llama": one per token
    std::vector<std::int32_t> token_types;  ///< llama.cpp's types (1 normal .. 6 byte); empty: all normal
    std::vector<std::string> merges;        ///< "gpt2": "left right"
    std::int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
    std::int32_t sep_id = -1, mask_id = -1;  ///< written, not used for encoding
    bool add_bos = false, add_eos = false;
    bool add_space_prefix = true;  ///< tokenizer.ggml.add_space_prefix ("llama")
    std::string chat_template;     ///< tokenizer.chat_template (Jinja); empty: none
};

/// HF's pre-tokenizer for a llama.cpp pre name. llama.cpp splits "gpt-2" with
/// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S), "bloom" with BLOOM's Split pattern
/// (the same character set without the nested class) before byte-level encoding, and "falcon" with
/// [\p{P}\$\+<=>\^~\|`]+ , then that, then [0-9][0-9][0-9]; the HF tokenizer.json files those vocabularies come from
/// (and that produced llama.cpp's test vectors) say the same as ByteLevel, and Punctuation + ByteLevel + Digits +
/// Split for falcon.
inline std::shared_ptr<PreTokenizer const> llama_cpp_pre_tokenizer(std::string const& pre, std::string const& origin) {
    if (pre.empty() || pre == "default" || pre == "gpt-2" || pre == "gpt2")
        return std::make_shared<ByteLevelPreTokenizer const>(false, true);
    if (pre == "falcon")
        return std::make_shared<SequencePreTokenizer const>(std::vector<std::shared_ptr<PreTokenizer const>>{
            make_punctuation(SplitBehavior::contiguous), std::make_shared<ByteLevelPreTokenizer const>(false, true),
            make_digits(false),
            std::make_shared<SplitPreTokenizer const>(Regex("[0-9][0-9][0-9]"), SplitBehavior::isolated, false)});
    if (pre == "bloom")
        return std::make_shared<SequencePreTokenizer const>(std::vector<std::shared_ptr<PreTokenizer const>>{
            std::make_shared<SplitPreTokenizer const>(Regex(" ?[^(\\s|.,!?…。，、।۔،)]+"), SplitBehavior::isolated,
                                                      false),
            std::make_shared<ByteLevelPreTokenizer const>(false, false)});
    fail(origin, ": llama.cpp pre-tokenizer '", pre, "' is not supported (gpt-2, bloom, falcon)");
}

inline std::shared_ptr<Pipeline const> llama_cpp_pipeline(LlamaCppVocabulary const& v, std::string const& origin) {
    auto const n = v.tokens.size();
    if (n == 0) fail(origin, ": the vocabulary has no tokens");
    if (!v.token_types.empty() && v.token_types.size() != n)
        fail(origin, ": ", v.token_types.size(), " token types for ", n, " tokens");
    auto type_of = [&](std::size_t i) {
        auto const t = v.token_types.empty() ? 1 : v.token_types[i];
        if (t < 1 || t > 6) fail(origin, ": token ", i, " has unknown type ", t);
        return static_cast<PieceType>(t);
    };
    auto id_or_none = [&](std::int32_t id, char const* what) -> std::optional<std::int32_t> {
        if (id < 0) return std::nullopt;
        if (static_cast<std::size_t>(id) >= n) fail(origin, ": ", what, " id ", id, " is outside ", n, " tokens");
        return id;
    };

    if (v.model == "llama") {
        if (v.scores.size() != n) fail(origin, ": ", v.scores.size(), " scores for ", n, " tokens");
        SentencePieceSpec spec;
        spec.origin = origin;
        spec.pieces = v.tokens;
        spec.scores = v.scores;
        for (std::size_t i = 0; i < n; ++i) {
            spec.types.push_back(type_of(i));
            spec.byte_fallback |= spec.types.back() == PieceType::byte;
        }
        spec.add_dummy_prefix = v.add_space_prefix;
        spec.remove_extra_whitespaces = false;
        auto set_name = [&](std::int32_t id, std::string& name) {
            if (id >= 0 && static_cast<std::size_t>(id) < n) name = v.tokens[static_cast<std::size_t>(id)];
        };
        set_name(v.unk_id, spec.unk_piece);
        set_name(v.bos_id, spec.bos_piece);
        set_name(v.eos_id, spec.eos_piece);
        set_name(v.pad_id, spec.pad_piece);
        auto p = std::make_shared<Pipeline>(*sentencepiece_pipeline(
            spec, {SentencePieceFlavor::sentencepiece, v.add_bos && v.bos_id >= 0, v.add_eos && v.eos_id >= 0}));
        if (auto pad = id_or_none(v.pad_id, "padding")) p->special_ids.pad = pad;
        return p;
    }
    if (v.model != "gpt2")
        fail(origin, ": llama.cpp tokenizer model '", printable_excerpt(v.model), "' is not supported (llama, gpt2)");

    auto p = std::make_shared<Pipeline>();
    p->origin = origin;
    Vocab vocab(v.tokens, origin);
    std::vector<std::pair<std::string, std::string>> merges;
    merges.reserve(v.merges.size());
    for (std::size_t i = 0; i < v.merges.size(); ++i) {
        auto const& m = v.merges[i];
        auto const space = m.find(' ', 1);  // llama.cpp: a merge's first part is never empty
        if (space == std::string::npos) fail(origin, ": merge ", i, " '", m, "' has no space");
        merges.emplace_back(m.substr(0, space), m.substr(space + 1));
    }
    std::vector<AddedToken> added;
    for (std::size_t i = 0; i < n; ++i) {
        auto const t = type_of(i);
        if (t != PieceType::control && t != PieceType::user_defined) continue;
        AddedToken token;
        token.content = v.tokens[i];
        token.id = static_cast<std::int32_t>(i);
        token.special = t == PieceType::control;
        if (token.special) p->special_tokens.insert(token.id);
        added.push_back(std::move(token));
    }
    p->model = std::make_shared<BpeModel const>(std::move(vocab), merges, BpeOptions{}, origin + ": merges");
    p->added = AddedVocabulary(std::move(added), nullptr);
    p->pre_tokenizer = llama_cpp_pre_tokenizer(v.pre, origin);
    p->decoder = std::make_shared<ByteLevelDecoder const>();
    p->special_ids = {id_or_none(v.bos_id, "bos"), id_or_none(v.eos_id, "eos"), id_or_none(v.pad_id, "padding"),
                      id_or_none(v.unk_id, "unknown")};
    std::vector<TemplatePostProcessor::Item> items;
    if (v.add_bos && p->special_ids.bos) items.emplace_back(std::vector<std::int32_t>{*p->special_ids.bos});
    items.emplace_back(TemplatePostProcessor::Sequence{});
    if (v.add_eos && p->special_ids.eos) items.emplace_back(std::vector<std::int32_t>{*p->special_ids.eos});
    p->post_processor = std::make_shared<TemplatePostProcessor const>(std::move(items));
    return p;
}

}  // namespace polyalpaca::tokenizer
