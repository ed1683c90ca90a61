/// @file tokenizer/vocab.hpp
/// @brief A token <-> id table with heterogeneous (string_view) lookup.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca::tokenizer {

struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

/// "<0xAB>": the token byte-fallback vocabularies hold for byte 0xAB.
inline std::string byte_piece_name(int byte) {
    static constexpr char hex[] = "0123456789ABCDEF";
    return std::string("<0x") + hex[(byte >> 4) & 15] + hex[byte & 15] + ">";
}

/// Tokens by id (dense: id i is tokens[i]) and ids by token.
class Vocab {
public:
    Vocab() = default;

    /// `tokens[i]` is the token of id i; duplicates are an Error naming `origin`.
    Vocab(std::vector<std::string> tokens, std::string_view origin) : tokens_(std::move(tokens)) {
        ids_.reserve(tokens_.size());
        for (std::size_t i = 0; i < tokens_.size(); ++i) {
            auto const [it, inserted] = ids_.emplace(tokens_[i], static_cast<std::int32_t>(i));
            if (!inserted) fail(origin, ": token '", tokens_[i], "' appears twice (ids ", it->second, " and ", i, ")");
        }
    }

    std::int32_t size() const { return static_cast<std::int32_t>(tokens_.size()); }
    std::optional<std::int32_t> find(std::string_view token) const {
        auto it = ids_.find(token);
        if (it == ids_.end()) return std::nullopt;
        return it->second;
    }
    bool contains_id(std::int32_t id) const { return id >= 0 && id < size(); }
    std::string const& token(std::int32_t id) const { return tokens_[static_cast<std::size_t>(id)]; }
    std::vector<std::string> const& tokens() const { return tokens_; }

private:
    std::vector<std::string> tokens_;
    std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>> ids_;
};

/// The model step of a tokenizer: one pre-tokenized piece to ids.
class Model {
public:
    virtual ~Model() = default;
    virtual void tokenize(std::string_view piece, std::vector<std::int32_t>& ids) const = 0;
    virtual Vocab const& vocab() const = 0;
};

}  // namespace polyalpaca::tokenizer
