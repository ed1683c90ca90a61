/// @file tokenizer/pieces.hpp
/// @brief The pieces a text is cut into before the model runs, and HF's split behaviours for cutting them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/tokenizer/regex.hpp"
#include "polyalpaca/tokenizer/utf8.hpp"

namespace polyalpaca::tokenizer {

/// One piece of the text (HF's Split of a PreTokenizedString).
struct Piece {
    std::string text;         ///< normalized text the model will see, or an added token's matched text
    std::int32_t token = -1;  ///< the id when an added token already decided it; then no later stage touches it
    bool at_origin = false;   ///< starts at byte 0 of the original input (Metaspace's prepend_scheme "first")
};
using Pieces = std::vector<Piece>;

/// HF's SplitDelimiterBehavior: what happens to the matched delimiters when a piece is split.
enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

inline SplitBehavior parse_split_behavior(std::string_view name, std::string_view where) {
    if (name == "Removed") return SplitBehavior::removed;
    if (name == "Isolated") return SplitBehavior::isolated;
    if (name == "MergedWithPrevious") return SplitBehavior::merged_with_previous;
    if (name == "MergedWithNext") return SplitBehavior::merged_with_next;
    if (name == "Contiguous") return SplitBehavior::contiguous;
    fail(where, ": unknown split behavior '", name,
         "' (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)");
}

/// A stretch of a piece and whether the pattern matched it.
struct Segment {
    std::size_t begin, end;
    bool is_match;
};

/// The segments of `text` for `matches` (HF's Pattern::find_matches): matched and unmatched stretches in order,
/// covering the text; an empty text gives one empty unmatched segment.
inline std::vector<Segment> segments_from_matches(std::size_t size,
                                                  std::vector<std::pair<std::size_t, std::size_t>> const& matches) {
    if (size == 0) return {{0, 0, false}};
    std::vector<Segment> out;
    std::size_t previous = 0;
    for (auto const& [begin, end] : matches) {
        if (previous != begin) out.push_back({previous, begin, false});
        out.push_back({begin, end, true});
        previous = end;
    }
    if (previous != size) out.push_back({previous, size, false});
    return out;
}

/// Segments where every single character for which `predicate(text, byte)` holds is its own match (HF's
/// `Fn(char) -> bool` patterns).
template <class Predicate>
std::vector<Segment> segments_by_char(std::string_view text, Predicate const& predicate) {
    if (text.empty()) return {{0, 0, false}};
    std::vector<Segment> out;
    std::size_t last_offset = 0;
    std::size_t i = 0;
    while (i < text.size()) {
        auto const n = utf8::char_length(static_cast<unsigned char>(text[i]));
        if (predicate(text, i)) {
            if (last_offset < i) out.push_back({last_offset, i, false});
            out.push_back({i, i + n, true});
            last_offset = i + n;
        }
        i += n;
    }
    if (text.size() > last_offset) out.push_back({last_offset, text.size(), false});
    return out;
}

/// Applies HF's split behaviour: returns the byte ranges that become pieces (some may be empty).
inline std::vector<std::pair<std::size_t, std::size_t>> apply_behavior(std::vector<Segment> segments,
                                                                       SplitBehavior behavior) {
    std::vector<std::pair<std::size_t, std::size_t>> out;
    switch (behavior) {
        case SplitBehavior::isolated:
            for (auto const& s : segments) out.emplace_back(s.begin, s.end);
            break;
        case SplitBehavior::removed:
            for (auto const& s : segments)
                if (!s.is_match) out.emplace_back(s.begin, s.end);
            break;
        case SplitBehavior::merged_with_previous: {
            bool previous_match = false;
            for (auto const& s : segments) {
                if (s.is_match && !previous_match && !out.empty()) {
                    out.back().second = s.end;
                } else {
                    out.emplace_back(s.begin, s.end);
                }
                previous_match = s.is_match;
            }
            break;
        }
        case SplitBehavior::merged_with_next: {
            bool previous_match = false;
            for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
                if (it->is_match && !previous_match && !out.empty()) {
                    out.back().first = it->begin;
                } else {
                    out.emplace_back(it->begin, it->end);
                }
                previous_match = it->is_match;
            }
            std::reverse(out.begin(), out.end());
            break;
        }
        case SplitBehavior::contiguous: {
            bool previous_match = false;
            for (auto const& s : segments) {
                if (s.is_match == previous_match && !out.empty()) {
                    out.back().second = s.end;
                } else {
                    out.emplace_back(s.begin, s.end);
                }
                previous_match = s.is_match;
            }
            break;
        }
    }
    return out;
}

/// Cuts `piece` at `ranges`; empty results are dropped (HF's PreTokenizedString::split filters them).
inline void append_split(Piece const& piece, std::vector<std::pair<std::size_t, std::size_t>> const& ranges,
                         Pieces& out) {
    for (auto const& [begin, end] : ranges) {
        if (begin == end) continue;
        out.push_back({piece.text.substr(begin, end - begin), -1, piece.at_origin && begin == 0});
    }
}

/// Replaces every piece that no added token decided by the pieces `split(piece, out)` appends (it may move from
/// `piece`).
template <class Split>
void split_untokenized(Pieces& pieces, Split const& split) {
    Pieces out;
    out.reserve(pieces.size());
    for (auto& piece : pieces) {
        if (piece.token >= 0) {
            out.push_back(std::move(piece));
            continue;
        }
        split(piece, out);
    }
    pieces = std::move(out);
}

}  // namespace polyalpaca::tokenizer
