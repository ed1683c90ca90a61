/// @file tokenizer/bpe_trainer.hpp
/// @brief Learns byte-level BPE merges from text, as GPT-2's tokenizer was made: the text is cut into words by the
///        tokenizer's own pre-tokenizer (ending in ByteLevel, so a word is its bytes' printable symbols), and the
///        most frequent pair of adjacent symbols is merged again and again. The merges, in order, are what a
///        tokenizer.json's BPE model lists; HF tokenizers and polyalpaca::Tokenizer, given the same pre-tokenizer,
///        then encode the training words as the training cut them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "polyalpaca/tokenizer/byte_level.hpp"
#include "polyalpaca/tokenizer/pieces.hpp"
#include "polyalpaca/tokenizer/pre_tokenizers.hpp"

namespace polyalpaca::tokenizer {

struct BpeTrainerOptions {
    std::size_t new_tokens = 0;      ///< merge until this many tokens beyond the 256 bytes exist
    std::int64_t min_frequency = 2;  ///< a pair seen fewer times is never merged
};

/// The merges learned from `texts` cut into words by `split` (whose last step is ByteLevel), each merge as the
/// byte-level symbols (GPT-2's printable characters) of its two parts. As HF tokenizers' BpeTrainer learns them
/// with the same pre-tokenizer, the ByteLevel alphabet and no limit on word length: the most frequent pair wins,
/// ties going to the pair of lower symbol ids, where the 256 byte symbols are numbered in code point order and each
/// merge's result after them.
inline std::vector<std::pair<std::string, std::string>> train_byte_level_bpe(std::span<std::string const> texts,
                                                                             PreTokenizer const& split,
                                                                             BpeTrainerOptions const& options) {
    // Words and their counts.
    std::map<std::string, std::int64_t> word_counts;
    for (auto const& text : texts) {
        Pieces pieces{Piece{text, -1, true}};
        split.pre_tokenize(pieces);
        for (auto const& p : pieces) ++word_counts[p.text];
    }
    // The byte symbols in code point order: their ids.
    std::vector<std::pair<char32_t, std::string>> alphabet;
    for (int b = 0; b < 256; ++b) alphabet.emplace_back(byte_level::table().code_point[b], byte_level::table().utf8[b]);
    std::sort(alphabet.begin(), alphabet.end());
    std::unordered_map<std::string, int> id_of;
    std::vector<std::string> symbol_text;  // id -> its byte-level text
    for (auto const& [code_point, text] : alphabet) {
        id_of[text] = int(symbol_text.size());
        symbol_text.push_back(text);
    }
    std::vector<std::vector<int>> words;
    std::vector<std::int64_t> counts;
    for (auto const& [text, count] : word_counts) {
        std::vector<int> symbols;
        for (std::size_t i = 0; i < text.size();) {
            auto const length = utf8::sequence_length(text, i);
            symbols.push_back(id_of.at(text.substr(i, length)));
            i += length;
        }
        words.push_back(std::move(symbols));
        counts.push_back(count);
    }

    std::vector<std::pair<std::string, std::string>> merges;
    auto key = [](int a, int b) { return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b); };
    while (symbol_text.size() < 256 + options.new_tokens) {
        std::unordered_map<std::uint64_t, std::int64_t> pair_counts;
        for (std::size_t w = 0; w < words.size(); ++w)
            for (std::size_t i = 0; i + 1 < words[w].size(); ++i)
                pair_counts[key(words[w][i], words[w][i + 1])] += counts[w];
        std::uint64_t best = 0;
        std::int64_t best_count = 0;
        for (auto const& [pair, count] : pair_counts)
            if (count > best_count || (count == best_count && pair < best)) best = pair, best_count = count;
        if (best_count < options.min_frequency) break;
        int const left = int(best >> 32), right = int(best & 0xFFFFFFFFu);
        // A result made before by other parts keeps its id (and adds no token).
        auto const [at, added] = id_of.try_emplace(symbol_text[left] + symbol_text[right], int(symbol_text.size()));
        if (added) symbol_text.push_back(at->first);
        int const merged = at->second;
        merges.emplace_back(symbol_text[left], symbol_text[right]);
        for (auto& word : words) {
            std::size_t out = 0;
            for (std::size_t i = 0; i < word.size(); ++out) {
                bool const joins = i + 1 < word.size() && word[i] == left && word[i + 1] == right;
                word[out] = joins ? merged : word[i];
                i += joins ? 2 : 1;
            }
            word.resize(out);
        }
    }
    return merges;
}

}  // namespace polyalpaca::tokenizer
