/// @file tokenizer/hf_json.hpp
/// @brief An HF tokenizer.json (BPE model) as a Pipeline; errors name the file and the JSON path.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/excerpt.hpp"
#include "polyalpaca/tokenizer/added_vocabulary.hpp"
#include "polyalpaca/tokenizer/bpe.hpp"
#include "polyalpaca/tokenizer/file_bytes.hpp"
#include "polyalpaca/tokenizer/hf_json_components.hpp"
#include "polyalpaca/tokenizer/json_path.hpp"
#include "polyalpaca/tokenizer/pipeline.hpp"

namespace polyalpaca::tokenizer::hf_json {

/// The model vocabulary {token: id}: ids must be exactly 0..n-1.
inline Vocab vocab(JsonAt const& at, std::string const& origin) {
    if (!at.is_object()) at.fail_here("expected an object {token: id}");
    auto const n = at.raw().size();
    std::vector<std::string> tokens(n);
    std::vector<bool> seen(n, false);
    for (auto const& [token, value] : at.raw().items()) {
        JsonAt const entry(value, at.path() + "[\"" + token + "\"]", origin);
        auto const id = entry.id();
        if (static_cast<std::size_t>(id) >= n) entry.fail_here("id ", id, " is not below the vocabulary size ", n);
        if (seen[id]) entry.fail_here("id ", id, " is used twice");
        seen[id] = true;
        tokens[id] = token;
    }
    return Vocab(std::move(tokens), origin + ": " + at.path());
}

/// "a b" strings (exactly one space) or ["a", "b"] pairs.
inline std::vector<std::pair<std::string, std::string>> merges(JsonAt const& at) {
    std::vector<std::pair<std::string, std::string>> out;
    auto const n = at.size();
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        auto const m = at[i];
        if (m.is_string()) {
            auto const& s = m.string();
            auto const space = s.find(' ');
            if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
                m.fail_here("a merge must be two tokens separated by one space, found '", s, "'");
            out.emplace_back(s.substr(0, space), s.substr(space + 1));
        } else {
            if (m.size() != 2) m.fail_here("a merge must be a pair of tokens");
            out.emplace_back(m[0].string(), m[1].string());
        }
    }
    return out;
}

inline std::shared_ptr<Model const> model(JsonAt const& at, std::string const& origin) {
    auto const type = at.string_or("type", at.has("merges") ? "BPE" : "");
    if (type != "BPE")
        at.fail_here("model type '", type.empty() ? "(none)" : printable_excerpt(type), "' is not supported (only BPE)");
    if (auto dropout = at.find("dropout"); dropout && dropout->number() > 0.0)
        dropout->fail_here("BPE dropout is random at encode time; only null or 0 is supported");
    BpeOptions options;
    if (auto unk = at.find("unk_token")) options.unk_token = unk->string();
    options.continuing_subword_prefix = at.string_or("continuing_subword_prefix", "");
    options.end_of_word_suffix = at.string_or("end_of_word_suffix", "");
    options.fuse_unk = at.boolean_or("fuse_unk", false);
    options.byte_fallback = at.boolean_or("byte_fallback", false);
    options.ignore_merges = at.boolean_or("ignore_merges", false);
    auto const merges_at = at["merges"];
    return std::make_shared<BpeModel const>(vocab(at["vocab"], origin), merges(merges_at), std::move(options),
                                            origin + ": " + merges_at.path());
}

inline std::vector<AddedToken> added_tokens(JsonAt const& at) {
    std::vector<AddedToken> out;
    for (std::size_t i = 0; i < at.size(); ++i) {
        auto const t = at[i];
        AddedToken token;
        token.id = t["id"].id();
        token.content = t["content"].string();
        if (token.content.empty()) t["content"].fail_here("an added token cannot be empty");
        token.special = t.boolean_or("special", false);
        token.lstrip = t.boolean_or("lstrip", false);
        token.rstrip = t.boolean_or("rstrip", false);
        token.single_word = t.boolean_or("single_word", false);
        token.normalized = t.boolean_or("normalized", !token.special);
        out.push_back(std::move(token));
    }
    return out;
}

/// `name` from tokenizer_config.json (a string or {"content": ...}).
inline std::optional<std::string> config_token(JsonAt const& config, std::string_view name) {
    auto v = config.find(name);
    if (!v) return std::nullopt;
    if (v->is_string()) return v->string();
    if (v->is_object()) return (*v)["content"].string();
    v->fail_here("expected a token string or {\"content\": ...}");
}

/// BOS/EOS/PAD/UNK: from tokenizer_config.json beside the file when there is one, else the special added token
/// with a conventional name (<s>, </s>, <pad>, <|endoftext|>, ...), and the BPE model's unk_token.
inline SpecialIds find_special_ids(Pipeline const& p, std::optional<std::string> const& unk_token,
                                   std::filesystem::path const& config_path) {
    SpecialIds ids;
    auto first_special = [&](std::initializer_list<std::string_view> names) -> std::optional<std::int32_t> {
        for (auto name : names)
            if (auto id = p.added.find(name); id && p.special_tokens.count(*id)) return id;
        return std::nullopt;
    };
    ids.bos = first_special({"<s>", "<|begin_of_text|>", "<|startoftext|>", "<bos>", "[CLS]"});
    ids.eos = first_special({"</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>", "[SEP]"});
    ids.pad = first_special({"<pad>", "<|pad|>", "[PAD]"});
    if (unk_token) ids.unk = p.token_to_id(*unk_token);
    if (!ids.unk) ids.unk = first_special({"<unk>", "[UNK]"});
    if (config_path.empty() || !std::filesystem::exists(config_path)) return ids;
    auto const origin = config_path.string();
    auto const text = read_file_bytes(config_path);
    auto const json = parse_json(text, origin);
    JsonAt const root(json, "$", origin);
    auto set = [&](std::optional<std::int32_t>& slot, std::string_view key) {
        auto name = config_token(root, key);
        if (!name) return;
        auto id = p.token_to_id(*name);
        if (!id) root[key].fail_here("token '", *name, "' is not in ", p.origin);
        slot = id;
    };
    set(ids.bos, "bos_token");
    set(ids.eos, "eos_token");
    set(ids.pad, "pad_token");
    set(ids.unk, "unk_token");
    return ids;
}

/// The pipeline described by tokenizer.json text; `config_path` (may be empty) names a tokenizer_config.json.
inline std::shared_ptr<Pipeline const> load(std::string_view text, std::string const& origin,
                                            std::filesystem::path const& config_path = {}) {
    auto const json = parse_json(text, origin);
    JsonAt const root(json, "$", origin);
    if (!root.is_object()) root.fail_here("expected a tokenizer.json object");
    auto p = std::make_shared<Pipeline>();
    p->origin = origin;
    auto const model_at = root["model"];
    p->model = model(model_at, origin);
    if (auto n = root.find("normalizer")) p->normalizer = normalizer(*n);
    if (auto t = root.find("pre_tokenizer")) p->pre_tokenizer = pre_tokenizer(*t);
    if (auto d = root.find("decoder")) p->decoder = decoder(*d);
    if (auto pp = root.find("post_processor")) p->post_processor = post_processor(*pp);
    std::vector<AddedToken> added;
    if (auto a = root.find("added_tokens")) added = added_tokens(*a);
    for (auto const& t : added)
        if (t.special) p->special_tokens.insert(t.id);
    p->added = AddedVocabulary(std::move(added), p->normalizer.get());
    std::optional<std::string> unk_token;
    if (auto unk = model_at.find("unk_token")) unk_token = unk->string();
    p->special_ids = find_special_ids(*p, unk_token, config_path);
    return p;
}

inline std::shared_ptr<Pipeline const> load_file(std::filesystem::path const& path) {
    return load(read_file_bytes(path), path.string(), path.parent_path() / "tokenizer_config.json");
}

}  // namespace polyalpaca::tokenizer::hf_json
