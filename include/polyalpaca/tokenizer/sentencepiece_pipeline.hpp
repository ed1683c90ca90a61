/// @file tokenizer/sentencepiece_pipeline.hpp
/// @brief A SentencePiece BPE model as a Pipeline: exactly as sentencepiece encodes, or as the tokenizer.json that
/// transformers' LlamaTokenizer(Fast) converts it into.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/tokenizer/bpe.hpp"
#include "polyalpaca/tokenizer/decoders.hpp"
#include "polyalpaca/tokenizer/pipeline.hpp"
#include "polyalpaca/tokenizer/pre_tokenizers.hpp"
#include "polyalpaca/tokenizer/sentencepiece_bpe.hpp"

namespace polyalpaca::tokenizer {

enum class SentencePieceFlavor {
    /// sentencepiece's own encode/decode: text is plain text, the dummy prefix is always added.
    sentencepiece,
    /// transformers 5 LlamaTokenizer(Fast) from tokenizer.model: control pieces in the text are special tokens,
    /// Metaspace with prepend_scheme "first", BPE with the merges transformers generates from the vocabulary.
    transformers,
};

struct SentencePieceOptions {
    SentencePieceFlavor flavor = SentencePieceFlavor::sentencepiece;
    bool add_bos = true;   ///< encode(..., add_special_tokens=true) puts BOS first (LLaMA's default)
    bool add_eos = false;  ///< ... and EOS last
};

/// transformers' generate_merges(vocab): every split of every piece into two pieces of the vocabulary, ordered by the
/// merged piece's id, then the left part's length in characters (ties: left id, right id).
inline std::vector<std::pair<std::string, std::string>> transformers_merges(Vocab const& vocab) {
    std::vector<std::pair<std::string, std::string>> merges;
    struct Local {
        std::int32_t left, right;
        std::size_t left_chars, right_chars;
        std::size_t left_bytes;
    };
    std::vector<Local> local;
    for (std::int32_t id = 0; id < vocab.size(); ++id) {
        auto const& piece = vocab.token(id);
        local.clear();
        auto const total_chars = utf8::count_chars(piece);
        std::size_t chars = 0;
        for (std::size_t at = 0; at < piece.size();) {
            at += utf8::char_length(static_cast<unsigned char>(piece[at]));
            ++chars;
            if (at >= piece.size()) break;
            auto const l = vocab.find(std::string_view(piece).substr(0, at));
            auto const r = vocab.find(std::string_view(piece).substr(at));
            if (l && r) local.push_back({*l, *r, chars, total_chars - chars, at});
        }
        std::sort(local.begin(), local.end(),
                  [](Local const& a, Local const& b) { return std::tie(a.left, a.right) < std::tie(b.left, b.right); });
        std::stable_sort(local.begin(), local.end(), [](Local const& a, Local const& b) {
            return std::tie(a.left_chars, a.right_chars) < std::tie(b.left_chars, b.right_chars);
        });
        for (auto const& m : local) merges.emplace_back(piece.substr(0, m.left_bytes), piece.substr(m.left_bytes));
    }
    return merges;
}

namespace detail {
inline std::optional<std::int32_t> piece_of_type(SentencePieceSpec const& spec, std::string const& name,
                                                 PieceType type) {
    for (std::size_t i = 0; i < spec.pieces.size(); ++i)
        if (spec.pieces[i] == name && spec.types[i] == type) return static_cast<std::int32_t>(i);
    return std::nullopt;
}

inline std::shared_ptr<PostProcessor const> bos_eos(SpecialIds const& ids, SentencePieceOptions const& options,
                                                    std::string const& origin) {
    std::vector<TemplatePostProcessor::Item> items;
    if (options.add_bos) {
        if (!ids.bos) fail(origin, ": add_bos is set but the model has no BOS control piece");
        items.emplace_back(std::vector<std::int32_t>{*ids.bos});
    }
    items.emplace_back(TemplatePostProcessor::Sequence{});
    if (options.add_eos) {
        if (!ids.eos) fail(origin, ": add_eos is set but the model has no EOS control piece");
        items.emplace_back(std::vector<std::int32_t>{*ids.eos});
    }
    return std::make_shared<TemplatePostProcessor const>(std::move(items));
}
}  // namespace detail

inline std::shared_ptr<Pipeline const> sentencepiece_pipeline(SentencePieceSpec const& spec,
                                                              SentencePieceOptions const& options) {
    auto const n = spec.pieces.size();
    if (spec.scores.size() != n || spec.types.size() != n)
        fail(spec.origin, ": ", n, " pieces but ", spec.scores.size(), " scores and ", spec.types.size(), " types");
    for (std::size_t i = 0; i < n; ++i) {
        auto const& piece = spec.pieces[i];
        if (piece.empty()) fail(spec.origin, ": piece ", i, " is empty");
        if (spec.types[i] != PieceType::byte) continue;
        auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
        if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || !hex(piece[3]) || !hex(piece[4]) || piece[5] != '>')
            fail(spec.origin, ": piece ", i, " has type BYTE but is '", piece, "', not <0xHH>");
    }
    auto p = std::make_shared<Pipeline>();
    p->origin = spec.origin;
    p->special_ids.bos = detail::piece_of_type(spec, spec.bos_piece, PieceType::control);
    p->special_ids.eos = detail::piece_of_type(spec, spec.eos_piece, PieceType::control);
    p->special_ids.pad = detail::piece_of_type(spec, spec.pad_piece, PieceType::control);
    p->special_ids.unk = detail::piece_of_type(spec, spec.unk_piece, PieceType::unknown);
    p->post_processor = detail::bos_eos(p->special_ids, options, spec.origin);

    if (options.flavor == SentencePieceFlavor::sentencepiece) {
        p->model = std::make_shared<SentencePieceBpeModel const>(spec);
        p->normalizer = std::make_shared<SentencePieceNormalizer const>(spec);
        p->sentencepiece_decoder = std::make_shared<SentencePieceDecoder const>(spec);
        for (std::size_t i = 0; i < n; ++i)
            if (spec.types[i] == PieceType::control || spec.types[i] == PieceType::unknown)
                p->special_tokens.insert(static_cast<std::int32_t>(i));
        return p;
    }

    Vocab vocab(spec.pieces, spec.origin);
    auto merges = transformers_merges(vocab);
    BpeOptions bpe;
    bpe.fuse_unk = true;
    bpe.byte_fallback = true;
    std::vector<AddedToken> added;
    for (std::size_t i = 0; i < n; ++i) {
        auto const t = spec.types[i];
        bool const named =
            spec.pieces[i] == spec.unk_piece || spec.pieces[i] == spec.bos_piece || spec.pieces[i] == spec.eos_piece;
        if (t != PieceType::control && t != PieceType::user_defined && !named) continue;
        AddedToken token;
        token.content = spec.pieces[i];
        token.id = static_cast<std::int32_t>(i);
        token.special = t != PieceType::user_defined;
        if (token.special) p->special_tokens.insert(token.id);
        added.push_back(std::move(token));
    }
    p->model = std::make_shared<BpeModel const>(std::move(vocab), merges, bpe, spec.origin + ": generated merges");
    p->added = AddedVocabulary(std::move(added), nullptr);
    p->pre_tokenizer = std::make_shared<MetaspacePreTokenizer const>(std::string(space_symbol),
                                                                     MetaspacePreTokenizer::Prepend::first, false);
    p->decoder = std::make_shared<SequenceDecoder const>(std::vector<std::shared_ptr<Decoder const>>{
        std::make_shared<ReplaceDecoder const>(Regex(escape_regex(space_symbol)), " "),
        std::make_shared<ByteFallbackDecoder const>(), std::make_shared<FuseDecoder const>(),
        std::make_shared<StripDecoder const>(" ", 1, 0)});
    return p;
}

}  // namespace polyalpaca::tokenizer
