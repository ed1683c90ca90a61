/// @file io/gguf_hf_vocabulary.hpp
/// @brief The llama.cpp vocabulary of an HF tokenizer.json: "gpt2" for byte-level BPE (BLOOM's, GPT-NeoX's), as
///        convert_hf_to_gguf.py's _set_vocab_gpt2 makes it, and "llama" for SentencePiece-style BPE with byte
///        fallback (LLaMA's), scored so that llama.cpp merges as HF does; with what gguf-py's SpecialVocab reads from
///        the files beside it: special ids (tokenizer_config.json, then the model's config.json), add_bos / add_eos,
///        the chat template.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/tokenizer/file_bytes.hpp"
#include "polyalpaca/tokenizer/hf_json.hpp"
#include "polyalpaca/tokenizer/json_path.hpp"
#include "polyalpaca/tokenizer/llama_cpp_vocabulary.hpp"

namespace polyalpaca::io {

namespace gguf_hf_vocabulary_detail {

using tokenizer::JsonAt;

/// BLOOM's Split pattern in its tokenizer.json (an Oniguruma nested character class).
inline constexpr std::string_view bloom_split_pattern = " ?[^(\\s|[.,!?…。，、।۔،])]+";

/// llama.cpp's token types.
enum TokenType : std::int32_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

inline bool is_byte_level(JsonAt const& at, bool use_regex) {
    return at.string_or("type", "") == "ByteLevel" && !at.boolean_or("add_prefix_space", true) &&
           at.boolean_or("use_regex", true) == use_regex;
}

inline bool is_bloom_split(JsonAt const& at) {
    if (at.string_or("type", "") != "Split" || at.boolean_or("invert", false)) return false;
    auto const pattern = at.find("pattern");
    auto const regex = pattern && pattern->is_object() ? pattern->find("Regex") : std::nullopt;
    return regex && regex->is_string() && regex->string() == bloom_split_pattern &&
           at.string_or("behavior", "") == "Isolated";
}

/// llama.cpp's name for the pre-tokenizer, recognised by its structure (the converter hashes the ids of a check text,
/// which recognises only published tokenizers): GPT-2's regex split is "gpt-2", BLOOM's Split before byte-level
/// encoding is "bloom". Anything else would split text in llama.cpp otherwise than in HF, and is refused.
inline std::string llama_cpp_pre_name(JsonAt const& root) {
    auto const pre = root.find("pre_tokenizer");
    if (pre && is_byte_level(*pre, true)) return "gpt-2";
    if (pre && pre->string_or("type", "") == "Sequence") {
        auto const steps = (*pre)["pretokenizers"];
        if (steps.size() == 2 && is_bloom_split(steps[0]) && is_byte_level(steps[1], false)) return "bloom";
    }
    (pre ? *pre : root)
        .fail_here(
            "this pre-tokenizer has no llama.cpp equivalent known here (GPT-2's ByteLevel split, \"gpt-2\", and "
            "BLOOM's "
            "Split + ByteLevel, \"bloom\"): llama.cpp would split text differently");
}

/// llama.cpp applies no normalizer to a "gpt2" vocabulary: only none, or NFC (GPT-NeoX's; text already in NFC, as
/// most text is, tokenizes the same), is accepted.
inline void check_normalizer(JsonAt const& root) {
    auto const n = root.find("normalizer");
    if (!n || n->string_or("type", "") == "NFC") return;
    n->fail_here("normalizer '", n->string_or("type", "?"), "' has no llama.cpp equivalent for a byte-level BPE");
}

inline void check_model(JsonAt const& model) {
    if (model.string_or("type", "BPE") != "BPE") model["type"].fail_here("a llama.cpp vocabulary here is BPE");
    for (char const* key : {"continuing_subword_prefix", "end_of_word_suffix"})
        if (!model.string_or(key, "").empty()) model[key].fail_here("llama.cpp's BPE has no ", key);
    if (model.boolean_or("ignore_merges", false))
        model["ignore_merges"].fail_here(
            "llama.cpp's \"gpt-2\", \"bloom\" and \"llama\" vocabularies apply "
            "every merge");
}

/// A byte-level tokenizer.json as llama.cpp's "gpt2" reads text: no normalizer (or NFC), byte-level decoding.
inline void check_byte_level(JsonAt const& root) {
    check_normalizer(root);
    if (auto const decoder = root.find("decoder"); !decoder || decoder->string_or("type", "") != "ByteLevel")
        (decoder ? *decoder : root)
            .fail_here(
                "a llama.cpp \"gpt2\" vocabulary decodes byte-level: the decoder must "
                "be ByteLevel");
}

/// Whether llama.cpp's "llama" (SentencePiece) tokenizer puts a space before the text, for a byte-fallback
/// tokenizer.json: its Metaspace pre-tokenizer's prepend scheme (first or always: yes; never: no), or the older
/// layout's Prepend("▁") + Replace(" ", "▁") normalizers. Any other way to mark spaces is refused.
inline bool sentencepiece_space_prefix(JsonAt const& root) {
    constexpr std::string_view metaspace = "\xE2\x96\x81";
    auto const pre = root.find("pre_tokenizer");
    auto const normalizer = root.find("normalizer");
    if (pre && pre->string_or("type", "") == "Metaspace" && !normalizer &&
        pre->string_or("replacement", "") == metaspace)
        return tokenizer::hf_json::prepend_scheme(*pre) != tokenizer::MetaspacePreTokenizer::Prepend::never;
    if (!pre && normalizer && normalizer->string_or("type", "") == "Sequence") {
        auto const steps = (*normalizer)["normalizers"];
        auto is_replace_space = [&](JsonAt const& n) {
            auto const pattern = n.string_or("type", "") == "Replace" ? n.find("pattern") : std::nullopt;
            auto const literal = pattern && pattern->is_object() ? pattern->find("String") : std::nullopt;
            return literal && literal->is_string() && literal->string() == " " &&
                   n.string_or("content", "") == metaspace;
        };
        if (steps.size() == 2 && steps[0].string_or("type", "") == "Prepend" &&
            steps[0].string_or("prepend", "") == metaspace && is_replace_space(steps[1]))
            return true;
        if (steps.size() == 1 && is_replace_space(steps[0])) return false;
    }
    (pre          ? *pre
     : normalizer ? *normalizer
                  : root)
        .fail_here(
            "a byte-fallback tokenizer.json becomes llama.cpp's SentencePiece vocabulary only with a Metaspace "
            "pre-tokenizer (\"▁\") or Prepend(\"▁\") + Replace(\" \", \"▁\") normalizers");
}

/// SentencePiece merges the adjacent pair whose joined piece scores highest; HF's BPE merges the pair of lowest
/// rank. A piece some merge makes therefore scores minus the rank of the first merge that makes it, and a piece no
/// merge makes (a character, a byte) scores below them all.
inline std::vector<float> sentencepiece_scores(std::vector<std::string> const& tokens,
                                               std::vector<std::pair<std::string, std::string>> const& merges) {
    std::map<std::string, std::size_t> first_rank;
    for (std::size_t r = 0; r < merges.size(); ++r) first_rank.emplace(merges[r].first + merges[r].second, r);
    std::vector<float> scores;
    scores.reserve(tokens.size());
    for (auto const& t : tokens) {
        auto const it = first_rank.find(t);
        scores.push_back(it != first_rank.end() ? -float(it->second) : -float(merges.size()));
    }
    return scores;
}

inline bool is_byte_piece(std::string_view t) {
    auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); };
    return t.size() == 6 && t.starts_with("<0x") && t.back() == '>' && hex(t[3]) && hex(t[4]);
}

/// "left right"; a pair's spaces become U+0120, as gguf-py's SpecialVocab writes merges of the newer pair format.
inline std::vector<std::string> merge_strings(JsonAt const& merges) {
    std::vector<std::string> out;
    out.reserve(merges.size());
    auto encode_spaces = [](std::string const& part) {
        std::string s;
        for (char c : part) s += c == ' ' ? std::string("\xC4\xA0") : std::string(1, c);
        return s;
    };
    for (auto const& [left, right] : tokenizer::hf_json::merges(merges)) {
        auto const pair_format = !merges[out.size()].is_string();
        out.push_back(pair_format ? encode_spaces(left) + " " + encode_spaces(right) : left + " " + right);
    }
    return out;
}

/// convert_hf_to_gguf.py's does_token_look_special.
inline bool looks_special(std::string_view t) {
    auto wrapped = [&](std::string_view open, std::string_view close) {
        return t.size() >= open.size() + close.size() && t.starts_with(open) && t.ends_with(close);
    };
    return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" || wrapped("<|", "|>") ||
           wrapped("<｜", "｜>") || wrapped("<unused", ">");
}

/// A JSON file's value and its name, which a JsonAt into it points at (so this must outlive the JsonAt).
struct JsonFile {
    nlohmann::json value;
    std::string origin;
};

inline std::optional<JsonAt> read_json_if_present(std::filesystem::path const& path, JsonFile& storage) {
    if (!std::filesystem::exists(path)) return std::nullopt;
    storage.origin = path.string();
    storage.value = tokenizer::parse_json(tokenizer::read_file_bytes(path), storage.origin);
    return JsonAt(storage.value, "$", storage.origin);
}

/// The chat template of the tokenizer's directory, as SpecialVocab finds it: tokenizer_config.json's
/// "chat_template", else chat_template.jinja, else chat_template.json's "chat_template".
inline std::string chat_template(JsonAt const& config, std::filesystem::path const& dir) {
    auto const from = config.find("chat_template");
    if (from && !from->is_string())
        from->fail_here("a list of named chat templates is not supported; give one with --chat-template");
    if (from) return from->string();
    if (auto const jinja = dir / "chat_template.jinja"; std::filesystem::exists(jinja))
        return tokenizer::read_file_bytes(jinja);
    JsonFile storage;
    if (auto const json = read_json_if_present(dir / "chat_template.json", storage))
        return json->string_or("chat_template", "");
    return "";
}

}  // namespace gguf_hf_vocabulary_detail

/// The llama.cpp vocabulary of `tokenizer_json` for a model whose embedding has `vocab_rows` rows: "gpt2" for
/// byte-level BPE, "llama" for BPE with byte fallback (LLaMA's tokenizer.json, converted from SentencePiece). With
/// tokenizer_config.json and chat_template.jinja/.json beside it and the model's `config_json` (either may be
/// absent) supplying special tokens, add_bos/add_eos and the chat template as gguf-py's SpecialVocab reads them;
/// special ids neither file names are the tokenizer's own (tokenizer/hf_json.hpp). Ids below vocab_rows that name
/// no token become "[PAD<id>]" (unused), as the converter writes them. A tokenizer llama.cpp would split, normalize
/// or decode differently from HF is refused, naming the file and the JSON path.
///
/// Where the converter differs on purpose ("llama" from tokenizer.json, its _set_vocab_llama_hf): it scores every
/// piece -1000, which leaves llama.cpp's SentencePiece merges in no particular order; here each piece scores by its
/// merge's rank (sentencepiece_scores), and <unk> and <0xNN> are "unknown" and "byte" as a tokenizer.model makes
/// them.
inline tokenizer::LlamaCppVocabulary llama_cpp_vocabulary_of_tokenizer_json(std::filesystem::path const& tokenizer_json,
                                                                            std::filesystem::path const& config_json,
                                                                            std::int64_t vocab_rows) {
    namespace d = gguf_hf_vocabulary_detail;
    using tokenizer::JsonAt;
    auto const origin = tokenizer_json.string();
    auto const text = tokenizer::read_file_bytes(tokenizer_json);  // read once: the JSON here, the pipeline below
    auto const json = tokenizer::parse_json(text, origin);
    JsonAt const root(json, "$", origin);
    auto const model = root["model"];
    d::check_model(model);
    bool const sentencepiece = model.boolean_or("byte_fallback", false);

    tokenizer::LlamaCppVocabulary v;
    if (sentencepiece) {
        v.model = "llama";
        v.pre = "default";
        v.add_space_prefix = d::sentencepiece_space_prefix(root);
    } else {
        d::check_byte_level(root);
        v.model = "gpt2";
        v.pre = d::llama_cpp_pre_name(root);
    }

    // Tokens by id: the model's vocabulary, then the added tokens (HF's get_vocab()).
    std::map<std::int64_t, std::string> by_id;
    for (auto const& [token, id] : model["vocab"].raw().items()) {
        JsonAt const at(id, model["vocab"].path() + "[\"" + token + "\"]", origin);
        by_id[at.id()] = token;
    }
    std::vector<tokenizer::AddedToken> added;
    if (auto const a = root.find("added_tokens")) added = tokenizer::hf_json::added_tokens(*a);
    for (auto const& t : added) by_id[t.id] = t.content;
    require(by_id.empty() || by_id.rbegin()->first < vocab_rows, origin, ": token id ", by_id.rbegin()->first,
            " is not below the model's ", vocab_rows, " embedding rows");
    auto added_with_content = [&](std::string const& content) -> tokenizer::AddedToken const* {
        for (auto const& t : added)
            if (t.content == content) return &t;
        return nullptr;
    };
    auto const unk = model.string_or("unk_token", "");
    for (std::int64_t id = 0; id < vocab_rows; ++id) {
        auto const it = by_id.find(id);
        if (it == by_id.end()) {
            v.tokens.push_back("[PAD" + std::to_string(id) + "]");
            v.token_types.push_back(d::unused);
            continue;
        }
        std::string token = it->second;
        std::int32_t type = d::normal;
        if (sentencepiece && token == unk)
            type = d::unknown;
        else if (sentencepiece && d::is_byte_piece(token))
            type = d::byte;
        else if (auto const a = added_with_content(token)) {
            type = a->special || d::looks_special(token) ? d::control : d::user_defined;
            if (type == d::user_defined && !sentencepiece)  // llama.cpp takes them pre-normalized: U+2581 is a space
                for (std::size_t at; (at = token.find("\xE2\x96\x81")) != std::string::npos;) token.replace(at, 3, " ");
        }
        v.tokens.push_back(std::move(token));
        v.token_types.push_back(type);
    }
    if (sentencepiece)
        v.scores = d::sentencepiece_scores(v.tokens, tokenizer::hf_json::merges(model["merges"]));
    else
        v.merges = d::merge_strings(model["merges"]);

    // add_bos / add_eos: the post-processor's, then tokenizer_config.json's where the post-processor says nothing.
    std::optional<bool> add_bos, add_eos;
    d::JsonFile config_storage;
    auto const config_path = tokenizer_json.parent_path() / "tokenizer_config.json";
    auto const config = d::read_json_if_present(config_path, config_storage);
    auto config_token = [&](char const* key) {
        return config ? tokenizer::hf_json::config_token(*config, key) : std::nullopt;
    };
    auto bos = config_token("bos_token"), eos = config_token("eos_token");
    if (!bos) bos = config_token("cls_token");
    if (!eos) eos = config_token("sep_token");
    if (auto const pp = root.find("post_processor")) {
        std::vector<JsonAt> processors;
        if (auto const list = pp->find("processors"))
            for (std::size_t i = 0; i < list->size(); ++i) processors.push_back((*list)[i]);
        else
            processors.push_back(*pp);
        for (auto const& p : processors) {
            auto const type = p.string_or("type", "");
            if (type == "ByteLevel") {
                if (!add_bos) add_bos = false;
                if (!add_eos) add_eos = false;
            } else if (type == "TemplateProcessing") {
                auto const single = p["single"];
                auto special_at = [&](std::size_t i) -> std::optional<std::string> {
                    auto const item = single[i].find("SpecialToken");
                    return item ? std::optional(item->string_or("id", "")) : std::nullopt;
                };
                if (single.size() > 1) {
                    if (auto const first = special_at(0)) {
                        if (!config) bos = first;
                        add_bos = first == bos || first == config_token("cls_token");
                    }
                    if (auto const last = special_at(single.size() - 1)) {
                        if (!config) eos = last;
                        add_eos = last == eos;
                    }
                }
            } else {
                p.fail_here("post-processor '", type, "' adds tokens a llama.cpp \"gpt2\" vocabulary does not");
            }
        }
    }
    if (config) {
        if (!add_bos)
            add_bos = config->find("add_bos_token") ? std::optional(config->boolean_or("add_bos_token", false))
                                                    : std::nullopt;
        if (!add_eos)
            add_eos = config->find("add_eos_token") ? std::optional(config->boolean_or("add_eos_token", false))
                                                    : std::nullopt;
        v.chat_template = d::chat_template(*config, tokenizer_json.parent_path());
    }
    v.add_bos = add_bos.value_or(sentencepiece);  // llama.cpp's defaults when the files say nothing
    v.add_eos = add_eos.value_or(false);

    // Special ids: the added token tokenizer_config.json names, else config.json's <type>_token_id.
    auto set_from_config = [&](std::int32_t& slot, std::optional<std::string> const& content) {
        if (!content) return;
        if (auto const a = added_with_content(*content)) slot = a->id;
    };
    if (config) {
        set_from_config(v.bos_id, bos);
        set_from_config(v.eos_id, eos);
        set_from_config(v.unk_id, config_token("unk_token"));
        set_from_config(v.sep_id, config_token("sep_token"));
        set_from_config(v.pad_id, config_token("pad_token"));
        set_from_config(v.mask_id, config_token("mask_token"));
    }
    d::JsonFile model_config_storage;
    if (auto const model_config = d::read_json_if_present(config_json, model_config_storage)) {
        auto set_from_ids = [&](std::int32_t& slot, char const* key) {
            auto const at = model_config->find(key);
            if (slot < 0 && at && at->raw().is_number_integer()) slot = at->id();
        };
        set_from_ids(v.bos_id, "bos_token_id");
        set_from_ids(v.eos_id, "eos_token_id");
        set_from_ids(v.unk_id, "unk_token_id");
        set_from_ids(v.sep_id, "sep_token_id");
        set_from_ids(v.pad_id, "pad_token_id");
        set_from_ids(v.mask_id, "mask_token_id");
    }
    // Neither names them: the ids the tokenizer itself encodes with (its conventional special tokens), where the
    // converter would write none and llama.cpp would take token 11 for BOS and EOS.
    auto const own = tokenizer::hf_json::load(text, origin, config_path)->special_ids;
    for (auto [slot, id] : {std::pair{&v.bos_id, own.bos}, std::pair{&v.eos_id, own.eos}, std::pair{&v.unk_id, own.unk},
                            std::pair{&v.pad_id, own.pad}})
        if (*slot < 0 && id) *slot = *id;
    return v;
}

}  // namespace polyalpaca::io
