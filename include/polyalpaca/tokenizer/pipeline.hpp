/// @file tokenizer/pipeline.hpp
/// @brief One tokenizer's stages (added tokens, normalizer, pre-tokenizer, model, post-processor, decoder) run in
/// HF tokenizers' order.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/tokenizer/added_vocabulary.hpp"
#include "polyalpaca/tokenizer/decoders.hpp"
#include "polyalpaca/tokenizer/normalizers.hpp"
#include "polyalpaca/tokenizer/post_processors.hpp"
#include "polyalpaca/tokenizer/pre_tokenizers.hpp"
#include "polyalpaca/tokenizer/sentencepiece_bpe.hpp"
#include "polyalpaca/tokenizer/utf8.hpp"
#include "polyalpaca/tokenizer/vocab.hpp"

namespace polyalpaca::tokenizer {

/// The ids a training loop needs; absent when the tokenizer has none.
struct SpecialIds {
    std::optional<std::int32_t> bos, eos, pad, unk;
};

struct Pipeline {
    std::string origin;  ///< the file it came from, for messages
    AddedVocabulary added;
    std::shared_ptr<Normalizer const> normalizer;       ///< may be null
    std::shared_ptr<PreTokenizer const> pre_tokenizer;  ///< may be null
    std::shared_ptr<Model const> model;
    std::shared_ptr<PostProcessor const> post_processor;                ///< may be null
    std::shared_ptr<Decoder const> decoder;                             ///< null: tokens joined with ' ' (HF's default)
    std::shared_ptr<SentencePieceDecoder const> sentencepiece_decoder;  ///< set: decode as sentencepiece does
    std::unordered_set<std::int32_t> special_tokens;  ///< ids skipped by decode(..., skip_special_tokens)
    SpecialIds special_ids;

    std::int32_t vocab_size() const {
        std::int32_t n = model->vocab().size();
        for (auto const& t : added.tokens()) n = std::max(n, t.id + 1);
        return n;
    }

    std::optional<std::int32_t> token_to_id(std::string_view token) const {
        if (auto id = added.find(token)) return id;
        return model->vocab().find(token);
    }

    /// Error when `id` names no token.
    std::string const& id_to_token(std::int32_t id) const {
        if (auto const* t = added.text(id)) return *t;
        if (model->vocab().contains_id(id)) return model->vocab().token(id);
        fail(origin, ": token id ", id, " is outside the vocabulary (", vocab_size(), " ids)");
    }

    std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens) const {
        utf8::require_valid(text, "text to encode");
        auto pieces = added.split(text, normalizer.get());
        if (pre_tokenizer) pre_tokenizer->pre_tokenize(pieces);
        std::vector<std::int32_t> ids;
        ids.reserve(text.size() / 3 + 4);
        for (auto const& piece : pieces) {
            if (piece.token >= 0) {
                ids.push_back(piece.token);
            } else {
                model->tokenize(piece.text, ids);
            }
        }
        if (add_special_tokens && post_processor) post_processor->add_special_tokens(ids);
        return ids;
    }

    std::string decode(std::span<std::int32_t const> ids, bool skip_special_tokens) const {
        if (sentencepiece_decoder) {
            for (auto id : ids)
                if (!model->vocab().contains_id(id))
                    fail(origin, ": token id ", id, " is outside the vocabulary (", model->vocab().size(), " ids)");
            return sentencepiece_decoder->decode(ids);
        }
        Tokens tokens;
        tokens.reserve(ids.size());
        for (auto id : ids) {
            auto const& token = id_to_token(id);
            if (skip_special_tokens && special_tokens.count(id)) continue;
            tokens.push_back(token);
        }
        if (decoder) return decoder->decode(std::move(tokens));
        std::string out;
        for (std::size_t i = 0; i < tokens.size(); ++i) {
            if (i) out += ' ';
            out += tokens[i];
        }
        return out;
    }
};

}  // namespace polyalpaca::tokenizer
