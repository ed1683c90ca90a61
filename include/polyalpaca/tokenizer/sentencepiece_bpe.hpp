/// @file tokenizer/sentencepiece_bpe.hpp
/// @brief sentencepiece's BPE model (merges by piece score), its identity normalizer and its decoder.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/tokenizer/normalizers.hpp"
#include "polyalpaca/tokenizer/utf8.hpp"
#include "polyalpaca/tokenizer/vocab.hpp"
#include "polyalpaca/tokenizer/word_cache.hpp"

namespace polyalpaca::tokenizer {

/// ModelProto.SentencePiece.Type (the same numbers as llama.cpp's token types).
enum class PieceType : std::int32_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

inline constexpr std::string_view space_symbol = "\xE2\x96\x81";  // U+2581

/// The pieces of a SentencePiece model and how its normalizer is configured.
struct SentencePieceSpec {
    std::vector<std::string> pieces;
    std::vector<float> scores;
    std::vector<PieceType> types;
    bool byte_fallback = false;
    bool add_dummy_prefix = true;
    bool remove_extra_whitespaces = true;
    bool escape_whitespaces = true;
    std::string unk_surface = " \xE2\x81\x87 ";
    std::string unk_piece = "<unk>", bos_piece = "<s>", eos_piece = "</s>", pad_piece = "<pad>";
    std::string origin;  ///< file name for messages
};

/// Longest user-defined symbol at a position, else one character (sentencepiece's PrefixMatcher).
class UserSymbolMatcher {
public:
    explicit UserSymbolMatcher(SentencePieceSpec const& spec) {
        for (std::size_t i = 0; i < spec.pieces.size(); ++i) {
            if (spec.types[i] != PieceType::user_defined) continue;
            symbols_.insert(spec.pieces[i]);
            longest_ = std::max(longest_, spec.pieces[i].size());
        }
    }
    /// Bytes of the unit at the start of `text`, and whether it is a user-defined symbol.
    std::size_t match(std::string_view text, bool& user_defined) const {
        for (std::size_t n = std::min(longest_, text.size()); n > 0; --n) {
            if (symbols_.count(text.substr(0, n))) {
                user_defined = true;
                return n;
            }
        }
        user_defined = false;
        return utf8::char_length(static_cast<unsigned char>(text[0]));
    }

private:
    std::unordered_set<std::string, StringHash, std::equal_to<>> symbols_;
    std::size_t longest_ = 0;
};

/// sentencepiece's normalizer for an identity rule: dummy prefix, optional removal of extra spaces, ' ' -> U+2581.
class SentencePieceNormalizer final : public Normalizer {
public:
    explicit SentencePieceNormalizer(SentencePieceSpec const& spec)
        : add_dummy_prefix_(spec.add_dummy_prefix),
          remove_extra_whitespaces_(spec.remove_extra_whitespaces),
          escape_whitespaces_(spec.escape_whitespaces),
          matcher_(spec) {}

    void normalize(Piece& piece) const override {
        std::string_view input = piece.text;
        std::string out;
        if (remove_extra_whitespaces_)
            while (!input.empty() && input.front() == ' ') input.remove_prefix(1);
        if (input.empty()) {
            piece.text.clear();
            return;
        }
        out.reserve(input.size() + 16);
        auto const space = escape_whitespaces_ ? space_symbol : std::string_view(" ");
        if (add_dummy_prefix_) out += space;
        bool is_prev_space = remove_extra_whitespaces_;
        while (!input.empty()) {
            bool user_defined = false;
            auto const n = matcher_.match(input, user_defined);
            auto unit = input.substr(0, n);
            if (is_prev_space)
                while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
            if (!unit.empty()) {
                for (char c : unit) {
                    if (escape_whitespaces_ && c == ' ') {
                        out += space_symbol;
                    } else {
                        out += c;
                    }
                }
                is_prev_space = unit.back() == ' ';
            }
            input.remove_prefix(n);
            if (!remove_extra_whitespaces_) is_prev_space = false;
        }
        if (remove_extra_whitespaces_)
            while (out.size() >= space.size() && out.compare(out.size() - space.size(), space.size(), space) == 0)
                out.resize(out.size() - space.size());
        piece.text = std::move(out);
    }

private:
    bool add_dummy_prefix_, remove_extra_whitespaces_, escape_whitespaces_;
    UserSymbolMatcher matcher_;
};

/// sentencepiece's bpe_model.cc Encode plus the byte fallback / unknown fusing of SentencePieceProcessor::Encode.
/// Pairs of pieces are looked up by id (a table of every piece = left + right split), falling back to the
/// concatenated string only for symbols that are not pieces themselves.
class SentencePieceBpeModel final : public Model {
public:
    explicit SentencePieceBpeModel(SentencePieceSpec const& spec)
        : vocab_(spec.pieces, spec.origin),
          scores_(spec.scores),
          types_(spec.types),
          byte_fallback_(spec.byte_fallback),
          matcher_(spec) {
        for (std::size_t i = 0; i < spec.pieces.size(); ++i) {
            auto const t = spec.types[i];
            auto const id = static_cast<std::int32_t>(i);
            bool const normal = t == PieceType::normal || t == PieceType::user_defined || t == PieceType::unused;
            (normal ? pieces_ : reserved_).try_emplace(spec.pieces[i], id);
            if (t == PieceType::unknown) unk_id_ = id;
        }
        if (unk_id_ < 0) fail(spec.origin, ": the model has no piece of type UNKNOWN");
        for (auto const& [piece, id] : pieces_) {
            std::string_view const p = piece;
            for (std::size_t at = utf8::char_length(static_cast<unsigned char>(p[0])); at < p.size();
                 at += utf8::char_length(static_cast<unsigned char>(p[at]))) {
                auto const l = pieces_.find(p.substr(0, at));
                auto const r = pieces_.find(p.substr(at));
                if (l != pieces_.end() && r != pieces_.end()) pairs_.emplace(pair_key(l->second, r->second), id);
            }
            if (utf8::char_length(static_cast<unsigned char>(p[0])) == p.size()) chars_.emplace(char_key(p), id);
        }
        // Cutting before U+2581 is exact when no mergeable piece (user-defined symbols included) spans a cut.
        cuts_exact_ =
            pieces_.count(space_symbol) != 0 &&
            std::none_of(pieces_.begin(), pieces_.end(), [](auto const& p) { return spans_metaspace_cut(p.first); });
        for (int b = 0; b < 256; ++b) {
            auto it = reserved_.find(byte_piece_name(b));
            byte_ids_[b] = it != reserved_.end() && types_[static_cast<std::size_t>(it->second)] == PieceType::byte
                               ? it->second
                               : unk_id_;
        }
    }

    Vocab const& vocab() const override { return vocab_; }
    std::int32_t unk_id() const { return unk_id_; }

    void tokenize(std::string_view normalized, std::vector<std::int32_t>& ids) const override {
        if (!cuts_exact_) {
            encode_chunk(normalized, ids);
            return;
        }
        for_each_metaspace_chunk(normalized, [&](std::string_view chunk) {
            if (cache_.find(chunk, ids)) return;
            auto const from = ids.size();
            encode_chunk(chunk, ids);
            cache_.insert(chunk, ids, from);
        });
    }

private:
    void encode_chunk(std::string_view normalized, std::vector<std::int32_t>& ids) const {
        if (normalized.empty()) return;
        std::vector<Symbol> symbols;
        symbols.reserve(normalized.size());
        for (std::size_t at = 0; at < normalized.size();) {
            bool frozen = false;
            auto const n = matcher_.match(normalized.substr(at), frozen);
            auto const index = static_cast<std::int32_t>(symbols.size());
            auto const piece = normalized.substr(at, n);
            symbols.push_back({index - 1, at + n < normalized.size() ? index + 1 : -1, frozen, piece, piece_id(piece)});
            at += n;
        }
        std::priority_queue<Pair> agenda;
        std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> rev_merge;
        auto maybe_add = [&](std::int32_t left, std::int32_t right) {
            if (left == -1 || right == -1) return;
            auto const& l = symbols[static_cast<std::size_t>(left)];
            auto const& r = symbols[static_cast<std::size_t>(right)];
            if (l.frozen || r.frozen) return;
            std::int32_t merged = -1;
            if (l.id >= 0 && r.id >= 0) {
                auto it = pairs_.find(pair_key(l.id, r.id));
                if (it == pairs_.end()) return;
                merged = it->second;
            } else {  // a symbol that is not a piece itself: look the concatenation up
                auto it = pieces_.find(std::string_view(l.piece.data(), l.piece.size() + r.piece.size()));
                if (it == pieces_.end()) return;
                merged = it->second;
            }
            auto const size = l.piece.size() + r.piece.size();
            agenda.push({left, right, scores_[static_cast<std::size_t>(merged)], size, merged});
            if (types_[static_cast<std::size_t>(merged)] == PieceType::unused)
                rev_merge[std::string_view(l.piece.data(), size)] = {l.piece, r.piece};
        };
        for (std::size_t i = 1; i < symbols.size(); ++i)
            maybe_add(static_cast<std::int32_t>(i - 1), static_cast<std::int32_t>(i));
        while (!agenda.empty()) {
            auto const top = agenda.top();
            agenda.pop();
            auto& l = symbols[static_cast<std::size_t>(top.left)];
            auto& r = symbols[static_cast<std::size_t>(top.right)];
            if (l.piece.empty() || r.piece.empty() || l.piece.size() + r.piece.size() != top.size) continue;
            l.piece = std::string_view(l.piece.data(), l.piece.size() + r.piece.size());
            l.id = top.merged;
            l.next = r.next;
            if (r.next >= 0) symbols[static_cast<std::size_t>(r.next)].prev = top.left;
            r.piece = {};
            maybe_add(l.prev, top.left);
            maybe_add(top.left, l.next);
        }
        bool previous_unknown = false;
        std::vector<std::pair<std::string_view, std::int32_t>> pending;  // pieces still to emit, last one first
        for (std::int32_t index = 0; index != -1; index = symbols[static_cast<std::size_t>(index)].next) {
            pending.emplace_back(symbols[static_cast<std::size_t>(index)].piece,
                                 symbols[static_cast<std::size_t>(index)].id);
            while (!pending.empty()) {
                auto [w, id] = pending.back();
                pending.pop_back();
                if (id < 0) id = piece_to_id(w);
                if (types_[static_cast<std::size_t>(id)] == PieceType::unused) {  // resegment into its parts
                    if (auto it = rev_merge.find(w); it != rev_merge.end()) {
                        pending.emplace_back(it->second.second, -1);
                        pending.emplace_back(it->second.first, -1);
                        continue;
                    }
                }
                bool const unknown = id == unk_id_;
                if (unknown && byte_fallback_) {
                    for (char c : w) ids.push_back(byte_ids_[static_cast<unsigned char>(c)]);
                } else if (!(unknown && previous_unknown)) {  // consecutive unknowns fuse into one
                    ids.push_back(id);
                }
                previous_unknown = unknown;
            }
        }
    }

    struct Symbol {
        std::int32_t prev, next;
        bool frozen;
        std::string_view piece;
        std::int32_t id;  ///< the piece's id when it is a normal/user-defined/unused piece, else -1
    };
    struct Pair {
        std::int32_t left, right;
        float score;
        std::size_t size;
        std::int32_t merged;
        bool operator<(Pair const& other) const {  // highest score first, then the leftmost
            return score < other.score || (score == other.score && left > other.left);
        }
    };

    static std::uint64_t pair_key(std::int32_t a, std::int32_t b) {
        return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b);
    }
    static std::uint32_t char_key(std::string_view c) {
        std::uint32_t key = 0;
        for (char b : c) key = (key << 8) | static_cast<unsigned char>(b);
        return key;
    }

    std::int32_t piece_id(std::string_view piece) const {
        if (utf8::char_length(static_cast<unsigned char>(piece[0])) == piece.size()) {
            auto it = chars_.find(char_key(piece));
            return it == chars_.end() ? -1 : it->second;
        }
        auto it = pieces_.find(piece);
        return it == pieces_.end() ? -1 : it->second;
    }

    std::int32_t piece_to_id(std::string_view w) const {
        if (auto it = reserved_.find(w); it != reserved_.end()) return it->second;
        if (auto it = pieces_.find(w); it != pieces_.end()) return it->second;
        return unk_id_;
    }

    Vocab vocab_;
    std::vector<float> scores_;
    std::vector<PieceType> types_;
    bool byte_fallback_;
    UserSymbolMatcher matcher_;
    std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>> pieces_, reserved_;
    std::unordered_map<std::uint64_t, std::int32_t> pairs_;  ///< (left id, right id) -> id of left + right
    std::unordered_map<std::uint32_t, std::int32_t> chars_;  ///< one-character pieces by their UTF-8 bytes
    std::int32_t unk_id_ = -1;
    std::int32_t byte_ids_[256] = {};
    bool cuts_exact_ = false;
    WordCache cache_;
};

/// sentencepiece's DecodeIds: control pieces are invisible, <unk> is the unknown surface, byte pieces become bytes
/// (each invalid byte U+FFFD), U+2581 becomes ' ' and the dummy-prefix space of the first piece is dropped.
class SentencePieceDecoder {
public:
    explicit SentencePieceDecoder(SentencePieceSpec const& spec)
        : pieces_(spec.pieces),
          types_(spec.types),
          unk_surface_(spec.unk_surface),
          consume_bos_space_(spec.add_dummy_prefix || spec.remove_extra_whitespaces),
          remove_extra_whitespaces_(spec.remove_extra_whitespaces) {}

    /// `ids` must be in range (the caller checks).
    std::string decode(std::span<std::int32_t const> ids) const {
        std::string text;
        std::string bytes;
        bool is_bos_ws = true, bos_ws_seen = false;
        for (auto const id : ids) {
            auto const t = types_[static_cast<std::size_t>(id)];
            std::string_view piece = pieces_[static_cast<std::size_t>(id)];
            if (t == PieceType::byte) {
                bytes += static_cast<char>(byte_value(piece));
                continue;
            }
            flush_bytes(bytes, text);
            if (bos_ws_seen || !text.empty()) is_bos_ws = false;
            bos_ws_seen = false;
            if (t == PieceType::control) continue;
            if (t == PieceType::unknown) {
                text += unk_surface_;
                continue;
            }
            if (is_bos_ws && consume_bos_space_) {
                if (piece.substr(0, space_symbol.size()) == space_symbol) {
                    piece.remove_prefix(space_symbol.size());
                    bos_ws_seen = !remove_extra_whitespaces_;
                }
            }
            for (std::size_t i = 0; i < piece.size();) {
                if (piece.compare(i, space_symbol.size(), space_symbol) == 0) {
                    text += ' ';
                    i += space_symbol.size();
                } else {
                    text += piece[i++];
                }
            }
        }
        flush_bytes(bytes, text);
        return text;
    }

private:
    static int byte_value(std::string_view piece) {  // "<0xAB>"
        auto digit = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
        return digit(piece[3]) * 16 + digit(piece[4]);
    }
    static void flush_bytes(std::string& bytes, std::string& text) {
        for (std::size_t i = 0; i < bytes.size();) {
            auto const n = utf8::sequence_length(bytes, i);
            if (n == 0) {
                text += utf8::replacement_character;
                ++i;
            } else {
                text.append(bytes, i, n);
                i += n;
            }
        }
        bytes.clear();
    }

    std::vector<std::string> pieces_;
    std::vector<PieceType> types_;
    std::string unk_surface_;
    bool consume_bos_space_, remove_extra_whitespaces_;
};

}  // namespace polyalpaca::tokenizer
