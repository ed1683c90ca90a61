/// @file tokenizer/bpe.hpp
/// @brief HF tokenizers' BPE model: merges by rank with a priority queue, unk / fuse_unk, byte fallback, affixes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/tokenizer/utf8.hpp"
#include "polyalpaca/tokenizer/vocab.hpp"
#include "polyalpaca/tokenizer/word_cache.hpp"

namespace polyalpaca::tokenizer {

struct BpeOptions {
    std::optional<std::string> unk_token;
    std::string continuing_subword_prefix;
    std::string end_of_word_suffix;
    bool fuse_unk = false;
    bool byte_fallback = false;
    bool ignore_merges = false;
};

class BpeModel final : public Model {
public:
    /// `merges[r]` = (left, right) has rank r. Merges whose parts or result are not in the vocabulary are an Error
    /// naming `origin` and the merge's index.
    BpeModel(Vocab vocab, std::vector<std::pair<std::string, std::string>> const& merges, BpeOptions options,
             std::string_view origin)
        : vocab_(std::move(vocab)), options_(std::move(options)) {
        merges_.reserve(merges.size());
        auto const prefix_length = options_.continuing_subword_prefix.size();
        for (std::size_t rank = 0; rank < merges.size(); ++rank) {
            auto const& [left, right] = merges[rank];
            auto const a = vocab_.find(left), b = vocab_.find(right);
            if (!a) fail(origin, "[", rank, "]: merge token '", left, "' is not in the vocabulary");
            if (!b) fail(origin, "[", rank, "]: merge token '", right, "' is not in the vocabulary");
            std::string merged = left;
            bool const prefixed = right.compare(0, prefix_length, options_.continuing_subword_prefix) == 0;
            merged.append(right, prefixed ? prefix_length : 0);
            auto const c = vocab_.find(merged);
            if (!c) fail(origin, "[", rank, "]: merged token '", merged, "' is not in the vocabulary");
            merges_.insert_or_assign(key(*a, *b),
                                     std::pair{static_cast<std::int32_t>(rank), *c});  // last wins, as in HF
        }
        if (options_.unk_token && !vocab_.find(*options_.unk_token))
            fail(origin, ": unk_token '", *options_.unk_token, "' is not in the vocabulary");
        if (options_.byte_fallback) {
            for (int b = 0; b < 256; ++b) byte_ids_[b] = vocab_.find(byte_piece_name(b)).value_or(-1);
        }
        cuts_exact_ = options_.continuing_subword_prefix.empty() && options_.end_of_word_suffix.empty() &&
                      !options_.ignore_merges && vocab_.find(metaspace) &&
                      std::none_of(vocab_.tokens().begin(), vocab_.tokens().end(),
                                   [](std::string const& t) { return spans_metaspace_cut(t); });
    }

    Vocab const& vocab() const override { return vocab_; }

    void tokenize(std::string_view word, std::vector<std::int32_t>& ids) const override {
        if (!cuts_exact_) {
            tokenize_cached(word, ids);
            return;
        }
        for_each_metaspace_chunk(word, [&](std::string_view chunk) { tokenize_cached(chunk, ids); });
    }

private:
    void tokenize_cached(std::string_view word, std::vector<std::int32_t>& ids) const {
        if (word.empty() || cache_.find(word, ids)) return;
        auto const from = ids.size();
        tokenize_word(word, ids);
        cache_.insert(word, ids, from);
    }

    void tokenize_word(std::string_view word, std::vector<std::int32_t>& ids) const {
        if (options_.ignore_merges) {
            if (auto id = vocab_.find(word)) {
                ids.push_back(*id);
                return;
            }
        }
        std::vector<Symbol> symbols;
        symbols.reserve(word.size());
        initial_symbols(word, symbols);
        merge_all(symbols);
        for (auto const& s : symbols)
            if (s.length != 0) ids.push_back(s.id);
    }

    struct Symbol {
        std::int32_t id;
        std::int32_t prev, next;
        std::size_t length;  ///< bytes of the word it covers; 0 once merged into its left neighbour
    };
    struct Candidate {
        std::int32_t rank;
        std::size_t pos;
        std::int32_t new_id;
        bool operator<(Candidate const& other) const {  // std::priority_queue pops the lowest rank, then pos
            if (rank != other.rank) return rank > other.rank;
            return pos > other.pos;
        }
    };

    static std::uint64_t key(std::int32_t a, std::int32_t b) {
        return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b);
    }

    static void add(std::vector<Symbol>& symbols, std::int32_t id, std::size_t length) {
        auto const n = static_cast<std::int32_t>(symbols.size());
        if (n > 0) symbols.back().next = n;
        symbols.push_back({id, n - 1, -1, length});
    }

    void initial_symbols(std::string_view word, std::vector<Symbol>& symbols) const {
        std::int32_t unk = -1;  // pending unknown: id and covered bytes
        std::size_t unk_length = 0;
        std::string s;
        for (std::size_t i = 0; i < word.size();) {
            auto const n = utf8::char_length(static_cast<unsigned char>(word[i]));
            bool const first = i == 0, last = i + n >= word.size();
            s.clear();
            if (!first) s += options_.continuing_subword_prefix;
            s.append(word.substr(i, n));
            if (last) s += options_.end_of_word_suffix;
            i += n;
            if (auto id = vocab_.find(s)) {
                if (unk >= 0) add(symbols, unk, unk_length);
                unk = -1;
                add(symbols, *id, n);
                continue;
            }
            if (options_.byte_fallback && add_bytes(s, symbols)) continue;
            if (!options_.unk_token) continue;  // HF drops the character silently when there is no unk_token
            if (unk >= 0 && options_.fuse_unk) {
                unk_length += n;
                continue;
            }
            if (unk >= 0) add(symbols, unk, unk_length);
            unk = *vocab_.find(*options_.unk_token);
            unk_length = n;
        }
        if (unk >= 0) add(symbols, unk, unk_length);
    }

    /// Byte fallback: every byte of `s` as <0xXX>, only when all of them exist.
    bool add_bytes(std::string_view s, std::vector<Symbol>& symbols) const {
        for (char c : s)
            if (byte_ids_[static_cast<unsigned char>(c)] < 0) return false;
        for (char c : s) add(symbols, byte_ids_[static_cast<unsigned char>(c)], 1);
        return true;
    }

    std::optional<std::pair<std::int32_t, std::int32_t>> find_merge(std::int32_t a, std::int32_t b) const {
        auto it = merges_.find(key(a, b));
        if (it == merges_.end()) return std::nullopt;
        return it->second;
    }

    void merge_all(std::vector<Symbol>& symbols) const {
        std::priority_queue<Candidate> queue;
        for (std::size_t i = 0; i + 1 < symbols.size(); ++i)
            if (auto m = find_merge(symbols[i].id, symbols[i + 1].id)) queue.push({m->first, i, m->second});
        while (!queue.empty()) {
            auto const top = queue.top();
            queue.pop();
            auto& current = symbols[top.pos];
            if (current.length == 0 || current.next == -1) continue;
            auto const next_pos = static_cast<std::size_t>(current.next);
            auto const right = symbols[next_pos];
            auto const m = find_merge(current.id, right.id);
            if (!m || m->second != top.new_id) continue;  // stale entry
            current.id = top.new_id;
            current.length += right.length;
            current.next = right.next;
            symbols[next_pos].length = 0;
            if (right.next > -1 && static_cast<std::size_t>(right.next) < symbols.size())
                symbols[static_cast<std::size_t>(right.next)].prev = static_cast<std::int32_t>(top.pos);
            if (current.prev >= 0) {
                auto const prev = static_cast<std::size_t>(current.prev);
                if (auto pm = find_merge(symbols[prev].id, current.id)) queue.push({pm->first, prev, pm->second});
            }
            if (current.next >= 0) {
                auto const next = static_cast<std::size_t>(current.next);
                if (auto nm = find_merge(current.id, symbols[next].id)) queue.push({nm->first, top.pos, nm->second});
            }
        }
    }

    Vocab vocab_;
    BpeOptions options_;
    std::unordered_map<std::uint64_t, std::pair<std::int32_t, std::int32_t>> merges_;  ///< pair -> (rank, new id)
    std::int32_t byte_ids_[256] = {};
    bool cuts_exact_ = false;  ///< BPE per U+2581-led chunk equals BPE per word (see spans_metaspace_cut)
    WordCache cache_;
};

}  // namespace polyalpaca::tokenizer
