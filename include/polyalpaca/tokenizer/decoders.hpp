/// @file tokenizer/decoders.hpp
/// @brief HF tokenizers' decoders: ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "polyalpaca/tokenizer/byte_level.hpp"
#include "polyalpaca/tokenizer/regex.hpp"
#include "polyalpaca/tokenizer/utf8.hpp"

namespace polyalpaca::tokenizer {

using Tokens = std::vector<std::string>;

/// Turns tokens back into text pieces (HF's Decoder::decode_chain); the tokenizer joins the result.
class Decoder {
public:
    virtual ~Decoder() = default;
    virtual Tokens decode_chain(Tokens tokens) const = 0;

    std::string decode(Tokens tokens) const {
        std::string out;
        for (auto const& t : decode_chain(std::move(tokens))) out += t;
        return out;
    }
};

class SequenceDecoder final : public Decoder {
public:
    explicit SequenceDecoder(std::vector<std::shared_ptr<Decoder const>> steps) : steps_(std::move(steps)) {}
    Tokens decode_chain(Tokens tokens) const override {
        for (auto const& step : steps_) tokens = step->decode_chain(std::move(tokens));
        return tokens;
    }

private:
    std::vector<std::shared_ptr<Decoder const>> steps_;
};

/// All tokens' byte-level characters back to bytes, then lossy UTF-8 (one U+FFFD per maximal bad subpart).
class ByteLevelDecoder final : public Decoder {
public:
    Tokens decode_chain(Tokens tokens) const override {
        std::string bytes;
        for (auto const& t : tokens) byte_level::append_decoded(t, bytes);
        return {utf8::lossy(bytes)};
    }
};

/// Replacement characters back to spaces; in the first token they vanish unless prepend_scheme is "never".
class MetaspaceDecoder final : public Decoder {
public:
    MetaspaceDecoder(std::string replacement, bool drop_in_first)
        : replacement_(std::move(replacement)), drop_in_first_(drop_in_first) {}
    Tokens decode_chain(Tokens tokens) const override {
        for (std::size_t i = 0; i < tokens.size(); ++i) {
            std::string out;
            auto const& t = tokens[i];
            for (std::size_t k = 0; k < t.size();) {
                if (t.compare(k, replacement_.size(), replacement_) == 0) {
                    if (!(i == 0 && drop_in_first_)) out += ' ';
                    k += replacement_.size();
                } else {
                    out += t[k++];
                }
            }
            tokens[i] = std::move(out);
        }
        return tokens;
    }

private:
    std::string replacement_;
    bool drop_in_first_;
};

/// Every match of a literal or regex in each token replaced by `content`.
class ReplaceDecoder final : public Decoder {
public:
    ReplaceDecoder(Regex pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
    Tokens decode_chain(Tokens tokens) const override {
        for (auto& t : tokens) {
            auto const matches = pattern_.find_all(t);
            if (matches.empty()) continue;
            std::string out;
            std::size_t previous = 0;
            for (auto const& [begin, end] : matches) {
                out.append(t, previous, begin - previous);
                out += content_;
                previous = end;
            }
            out.append(t, previous, std::string::npos);
            t = std::move(out);
        }
        return tokens;
    }

private:
    Regex pattern_;
    std::string content_;
};

/// Runs of <0xXX> tokens back to bytes: valid UTF-8 as one token, otherwise one U+FFFD per byte.
class ByteFallbackDecoder final : public Decoder {
public:
    Tokens decode_chain(Tokens tokens) const override {
        Tokens out;
        std::string bytes;
        std::size_t count = 0;
        auto flush = [&] {
            if (count == 0) return;
            if (utf8::is_valid(bytes)) {
                out.push_back(bytes);
            } else {
                for (std::size_t i = 0; i < count; ++i) out.emplace_back(utf8::replacement_character);
            }
            bytes.clear();
            count = 0;
        };
        for (auto& t : tokens) {
            if (auto byte = parse_byte(t)) {
                bytes += static_cast<char>(*byte);
                ++count;
                continue;
            }
            flush();
            out.push_back(std::move(t));
        }
        flush();
        return out;
    }

private:
    /// "<0xAB>" -> 0xAB, as Rust's u8::from_str_radix(&token[3..5], 16) accepts it (a leading '+' included).
    static std::optional<int> parse_byte(std::string_view t) {
        if (t.size() != 6 || t.substr(0, 3) != "<0x" || t.back() != '>') return std::nullopt;
        auto digit = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
        };
        if (t[3] == '+') {
            auto const d = digit(t[4]);
            if (d < 0) return std::nullopt;
            return d;
        }
        auto const hi = digit(t[3]), lo = digit(t[4]);
        if (hi < 0 || lo < 0) return std::nullopt;
        return hi * 16 + lo;
    }
};

/// All tokens joined into one.
class FuseDecoder final : public Decoder {
public:
    Tokens decode_chain(Tokens tokens) const override {
        std::string all;
        for (auto const& t : tokens) all += t;
        return {std::move(all)};
    }
};

/// Up to `start` leading and `stop` trailing `content` characters removed from each token.
class StripDecoder final : public Decoder {
public:
    StripDecoder(std::string content, std::size_t start, std::size_t stop)
        : content_(std::move(content)), start_(start), stop_(stop) {}
    Tokens decode_chain(Tokens tokens) const override {
        for (auto& t : tokens) {
            std::vector<std::size_t> offsets;  // byte offset of each character, plus the end
            for (std::size_t i = 0; i < t.size(); i += utf8::char_length(static_cast<unsigned char>(t[i])))
                offsets.push_back(i);
            auto const chars = offsets.size();
            offsets.push_back(t.size());
            auto is_content = [&](std::size_t c) {
                return t.compare(offsets[c], offsets[c + 1] - offsets[c], content_) == 0;
            };
            std::size_t start_cut = 0;
            for (std::size_t c = 0; c < std::min(start_, chars) && is_content(c); ++c) start_cut = c + 1;
            std::size_t stop_cut = chars;
            for (std::size_t k = 0; k < std::min(stop_, chars) && is_content(chars - k - 1); ++k)
                stop_cut = chars - k - 1;
            t = start_cut < stop_cut ? t.substr(offsets[start_cut], offsets[stop_cut] - offsets[start_cut])
                                     : std::string();
        }
        return tokens;
    }

private:
    std::string content_;
    std::size_t start_, stop_;
};

}  // namespace polyalpaca::tokenizer
