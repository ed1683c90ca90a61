/// @file io/gguf_vocabulary.hpp
/// @brief A tokenizer's tokenizer.ggml.* keys in a GGUF file, as llama.cpp's converter writes them: from a
///        SentencePiece tokenizer.model ("llama": pieces, scores, piece types, special ids), and the writing of any
///        tokenizer::LlamaCppVocabulary (the form io/gguf_tokenizer.hpp reads back).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/io/gguf.hpp"
#include "polyalpaca/io/gguf_writer.hpp"
#include "polyalpaca/tokenizer/llama_cpp_vocabulary.hpp"
#include "polyalpaca/tokenizer/sentencepiece_model.hpp"

namespace polyalpaca::io {

/// The llama.cpp vocabulary of a SentencePiece BPE model, as convert_hf_to_gguf.py's _set_vocab_sentencepiece makes
/// it: model "llama", pre "default", every piece with its score and type (SentencePiece's piece types are llama.cpp's
/// token types), the <s>, </s>, <unk> and <pad> pieces' ids where the model has them, BOS added to each text.
inline tokenizer::LlamaCppVocabulary llama_cpp_vocabulary_of(tokenizer::SentencePieceSpec const& spec) {
    tokenizer::LlamaCppVocabulary v;
    v.model = "llama";
    v.pre = "default";
    v.tokens = spec.pieces;
    v.scores = spec.scores;
    for (auto const type : spec.types) v.token_types.push_back(static_cast<std::int32_t>(type));
    auto id_of = [&](std::string const& piece) {
        for (std::size_t i = 0; i < spec.pieces.size(); ++i)
            if (spec.pieces[i] == piece) return std::int32_t(i);
        return std::int32_t(-1);
    };
    v.bos_id = id_of(spec.bos_piece);
    v.eos_id = id_of(spec.eos_piece);
    v.unk_id = id_of(spec.unk_piece);
    v.pad_id = id_of(spec.pad_piece);
    v.add_bos = true;
    v.add_eos = false;
    v.add_space_prefix = spec.add_dummy_prefix;
    return v;
}

/// The vocabulary of a SentencePiece tokenizer.model file.
inline tokenizer::LlamaCppVocabulary llama_cpp_vocabulary_of_sentencepiece(std::filesystem::path const& path) {
    return llama_cpp_vocabulary_of(tokenizer::read_sentencepiece_model(path));
}

/// Writes `v` as tokenizer.ggml.* keys: model, pre, tokens, scores (when it has them), token types, merges ("gpt2"),
/// the special ids it has, add_bos_token / add_eos_token, add_space_prefix ("llama"), and tokenizer.chat_template
/// when it has one. `vocab` is the model's embedding rows, which the token list must match.
inline void set_tokenizer_metadata(GgufWriter& w, tokenizer::LlamaCppVocabulary const& v, std::int64_t vocab,
                                   std::string const& origin) {
    require(std::int64_t(v.tokens.size()) == vocab, origin, ": the tokenizer has ", v.tokens.size(),
            " tokens but the model's embedding has ", vocab, " rows");
    require(v.scores.empty() || v.scores.size() == v.tokens.size(), origin, ": ", v.scores.size(), " scores for ",
            v.tokens.size(), " tokens");
    require(v.token_types.empty() || v.token_types.size() == v.tokens.size(), origin, ": ", v.token_types.size(),
            " token types for ", v.tokens.size(), " tokens");
    w.set("tokenizer.ggml.model", v.model);
    w.set("tokenizer.ggml.pre", v.pre.empty() ? std::string("default") : v.pre);
    w.set("tokenizer.ggml.tokens", GgufValue{GgufArray{v.tokens}});
    if (!v.scores.empty()) w.set("tokenizer.ggml.scores", GgufValue{GgufArray{v.scores}});
    if (!v.token_types.empty()) w.set("tokenizer.ggml.token_type", GgufValue{GgufArray{v.token_types}});
    if (!v.merges.empty()) w.set("tokenizer.ggml.merges", GgufValue{GgufArray{v.merges}});
    for (auto [key, id] : {std::pair{"bos_token_id", v.bos_id}, std::pair{"eos_token_id", v.eos_id},
                           std::pair{"unknown_token_id", v.unk_id},
                           std::pair{"seperator_token_id", v.sep_id},  // sic: llama.cpp's key
                           std::pair{"padding_token_id", v.pad_id}, std::pair{"mask_token_id", v.mask_id}}) {
        if (id < 0) continue;
        require(id < vocab, origin, ": ", key, " ", id, " is outside the ", vocab, " tokens");
        w.set(std::string("tokenizer.ggml.") + key, GgufValue{std::uint32_t(id)});
    }
    w.set("tokenizer.ggml.add_bos_token", GgufValue{v.add_bos});
    w.set("tokenizer.ggml.add_eos_token", GgufValue{v.add_eos});
    if (v.model == "llama") w.set("tokenizer.ggml.add_space_prefix", GgufValue{v.add_space_prefix});
    if (!v.chat_template.empty()) w.set("tokenizer.chat_template", v.chat_template);
}

}  // namespace polyalpaca::io
