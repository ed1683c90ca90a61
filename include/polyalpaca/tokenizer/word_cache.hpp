/// @file tokenizer/word_cache.hpp
/// @brief Ids of recently seen words (as HF's BPE cache), and cutting SentencePiece-style text where no merge can
/// cross.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "polyalpaca/tokenizer/vocab.hpp"

namespace polyalpaca::tokenizer {

/// A bounded map word -> ids shared by all threads; a lookup or insert that would wait for another thread is skipped.
class WordCache {
public:
    static constexpr std::size_t capacity = 10000;
    static constexpr std::size_t max_word_bytes = 256;

    /// Appends the cached ids of `word` to `ids`; false when it is not cached.
    bool find(std::string_view word, std::vector<std::int32_t>& ids) const {
        if (word.size() > max_word_bytes) return false;
        std::shared_lock lock(mutex_, std::try_to_lock);
        if (!lock.owns_lock()) return false;
        auto it = map_.find(word);
        if (it == map_.end()) return false;
        ids.insert(ids.end(), it->second.begin(), it->second.end());
        return true;
    }

    void insert(std::string_view word, std::vector<std::int32_t> const& ids, std::size_t from) const {
        if (word.size() > max_word_bytes) return;
        std::unique_lock lock(mutex_, std::try_to_lock);
        if (!lock.owns_lock() || map_.size() >= capacity) return;
        map_.try_emplace(std::string(word), ids.begin() + static_cast<std::ptrdiff_t>(from), ids.end());
    }

private:
    mutable std::shared_mutex mutex_;
    mutable std::unordered_map<std::string, std::vector<std::int32_t>, StringHash, std::equal_to<>> map_;
};

inline constexpr std::string_view metaspace = "\xE2\x96\x81";  // U+2581

/// Whether `token` has a character other than U+2581 right before a U+2581. BPE over text cut before every U+2581
/// that follows another character gives the same ids as BPE over the whole text when U+2581 is a token and no token
/// spans such a cut: then no merge ever crosses a cut and no unknown run continues across one.
inline bool spans_metaspace_cut(std::string_view token) {
    for (std::size_t at = token.find(metaspace, 1); at != std::string_view::npos; at = token.find(metaspace, at + 1))
        if (at < metaspace.size() || token.compare(at - metaspace.size(), metaspace.size(), metaspace) != 0)
            return true;
    return false;
}

/// Calls `run(chunk)` for the pieces of `text` cut before each U+2581 that follows a character other than U+2581.
template <class Run>
void for_each_metaspace_chunk(std::string_view text, Run const& run) {
    std::size_t start = 0;
    for (std::size_t at = text.find(metaspace, 1); at != std::string_view::npos; at = text.find(metaspace, at + 1)) {
        bool const after_metaspace =
            at >= metaspace.size() && text.compare(at - metaspace.size(), metaspace.size(), metaspace) == 0;
        if (after_metaspace || at == start) continue;
        run(text.substr(start, at - start));
        start = at;
    }
    run(text.substr(start));
}

}  // namespace polyalpaca::tokenizer
