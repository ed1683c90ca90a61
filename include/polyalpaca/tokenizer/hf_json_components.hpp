/// @file tokenizer/hf_json_components.hpp
/// @brief The normalizer, pre-tokenizer, post-processor and decoder sections of an HF tokenizer.json.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "polyalpaca/tokenizer/decoders.hpp"
#include "polyalpaca/tokenizer/json_path.hpp"
#include "polyalpaca/tokenizer/normalizers.hpp"
#include "polyalpaca/tokenizer/post_processors.hpp"
#include "polyalpaca/tokenizer/pre_tokenizers.hpp"
#include "polyalpaca/tokenizer/precompiled_charsmap.hpp"
#include "polyalpaca/tokenizer/regex.hpp"
#include "polyalpaca/tokenizer/unicode_normalizers.hpp"
#include "polyalpaca/tokenizer/utf8.hpp"

namespace polyalpaca::tokenizer::hf_json {

/// {"String": literal} or {"Regex": pattern} as a compiled pattern.
inline Regex pattern(JsonAt const& at) {
    if (auto s = at.find("String")) return Regex(escape_regex(s->string()));
    if (auto r = at.find("Regex")) {
        try {
            return Regex(r->string());
        } catch (Error const& e) {
            r->fail_here(e.what());
        }
    }
    at.fail_here("expected {\"String\": ...} or {\"Regex\": ...}");
}

inline std::string type_of(JsonAt const& at) { return at["type"].string(); }

inline std::shared_ptr<Normalizer const> normalizer(JsonAt const& at) {
    auto const type = type_of(at);
    if (type == "Sequence") {
        std::vector<std::shared_ptr<Normalizer const>> steps;
        auto const list = at["normalizers"];
        for (std::size_t i = 0; i < list.size(); ++i) steps.push_back(normalizer(list[i]));
        return std::make_shared<SequenceNormalizer const>(std::move(steps));
    }
    if (type == "Prepend") return std::make_shared<PrependNormalizer const>(at["prepend"].string());
    if (type == "Replace")
        return std::make_shared<ReplaceNormalizer const>(pattern(at["pattern"]), at["content"].string());
    if (type == "Strip")
        return std::make_shared<StripNormalizer const>(at.boolean_or("strip_left", true),
                                                       at.boolean_or("strip_right", true));
    if (type == "NFC") return std::make_shared<UnicodeNormalizer const>(unicode::Form::nfc);
    if (type == "NFD") return std::make_shared<UnicodeNormalizer const>(unicode::Form::nfd);
    if (type == "NFKC") return std::make_shared<UnicodeNormalizer const>(unicode::Form::nfkc);
    if (type == "NFKD") return std::make_shared<UnicodeNormalizer const>(unicode::Form::nfkd);
    if (type == "Lowercase") return std::make_shared<LowercaseNormalizer const>();
    if (type == "StripAccents") return std::make_shared<StripAccentsNormalizer const>();
    if (type == "Nmt") return std::make_shared<NmtNormalizer const>();
    if (type == "ByteLevel") return std::make_shared<ByteLevelNormalizer const>();
    if (type == "BertNormalizer") {
        BertNormalizer::Options options;
        options.clean_text = at["clean_text"].boolean();
        options.handle_chinese_chars = at["handle_chinese_chars"].boolean();
        options.lowercase = at["lowercase"].boolean();
        auto const strip = at.find("strip_accents");  // null or absent: as lowercase
        options.strip_accents = strip ? strip->boolean() : options.lowercase;
        return std::make_shared<BertNormalizer const>(options);
    }
    if (type == "Precompiled") {
        auto const charsmap = at["precompiled_charsmap"];
        try {
            return std::make_shared<PrecompiledNormalizer const>(PrecompiledCharsmap(decode_base64(charsmap.string())));
        } catch (Error const& e) {
            charsmap.fail_here(e.what());
        }
    }
    at.fail_here("normalizer type '", type,
                 "' is not supported (supported: Sequence, Prepend, Replace, Strip, NFC, NFD, NFKC, NFKD, Lowercase, "
                 "StripAccents, Nmt, ByteLevel, BertNormalizer, Precompiled)");
}

inline MetaspacePreTokenizer::Prepend prepend_scheme(JsonAt const& at) {
    if (auto scheme = at.find("prepend_scheme")) {
        auto const& s = scheme->string();
        if (s == "always") return MetaspacePreTokenizer::Prepend::always;
        if (s == "first") return MetaspacePreTokenizer::Prepend::first;
        if (s == "never") return MetaspacePreTokenizer::Prepend::never;
        scheme->fail_here("unknown prepend_scheme '", s, "' (always, first, never)");
    }
    // Files written before prepend_scheme existed carry add_prefix_space.
    return at.boolean_or("add_prefix_space", true) ? MetaspacePreTokenizer::Prepend::always
                                                   : MetaspacePreTokenizer::Prepend::never;
}

inline std::string replacement_char(JsonAt const& at) {
    auto const r = at["replacement"];
    auto const& s = r.string();
    if (s.empty() || utf8::count_chars(s) != 1) r.fail_here("the replacement must be exactly one character");
    return s;
}

inline std::shared_ptr<PreTokenizer const> pre_tokenizer(JsonAt const& at) {
    auto const type = type_of(at);
    if (type == "Sequence") {
        std::vector<std::shared_ptr<PreTokenizer const>> steps;
        auto const list = at["pretokenizers"];
        for (std::size_t i = 0; i < list.size(); ++i) steps.push_back(pre_tokenizer(list[i]));
        return std::make_shared<SequencePreTokenizer const>(std::move(steps));
    }
    if (type == "Split") {
        auto const behavior = at["behavior"];
        return std::make_shared<SplitPreTokenizer const>(pattern(at["pattern"]),
                                                         parse_split_behavior(behavior.string(), behavior.path()),
                                                         at.boolean_or("invert", false));
    }
    if (type == "ByteLevel")
        return std::make_shared<ByteLevelPreTokenizer const>(at.boolean_or("add_prefix_space", true),
                                                             at.boolean_or("use_regex", true));
    if (type == "Metaspace")
        return std::make_shared<MetaspacePreTokenizer const>(replacement_char(at), prepend_scheme(at),
                                                             at.boolean_or("split", true));
    if (type == "Digits") return make_digits(at.boolean_or("individual_digits", false));
    if (type == "Punctuation") {
        auto behavior = at.find("behavior");
        return make_punctuation(behavior ? parse_split_behavior(behavior->string(), behavior->path())
                                         : SplitBehavior::isolated);
    }
    if (type == "WhitespaceSplit") return make_whitespace_split();
    if (type == "Whitespace") return make_whitespace();
    if (type == "BertPreTokenizer") return make_bert();
    if (type == "CharDelimiterSplit") {
        auto const delimiter = at["delimiter"];
        if (utf8::count_chars(delimiter.string()) != 1) delimiter.fail_here("must be exactly one character");
        std::size_t n = 0;
        return make_char_delimiter_split(utf8::decode(delimiter.string(), 0, n));
    }
    if (type == "FixedLength") {
        auto const length = at.find("length");
        auto const chars = length ? length->integer() : 5;
        if (chars < 1) length->fail_here("must be at least 1");
        return std::make_shared<FixedLengthPreTokenizer const>(static_cast<std::size_t>(chars));
    }
    if (type == "UnicodeScripts") return std::make_shared<UnicodeScriptsPreTokenizer const>();
    at.fail_here("pre-tokenizer type '", type,
                 "' is not supported (supported: Sequence, Split, ByteLevel, Metaspace, Digits, Punctuation, "
                 "Whitespace, WhitespaceSplit, BertPreTokenizer, CharDelimiterSplit, FixedLength, UnicodeScripts)");
}

inline std::shared_ptr<Decoder const> decoder(JsonAt const& at) {
    auto const type = type_of(at);
    if (type == "Sequence") {
        std::vector<std::shared_ptr<Decoder const>> steps;
        auto const list = at["decoders"];
        for (std::size_t i = 0; i < list.size(); ++i) steps.push_back(decoder(list[i]));
        return std::make_shared<SequenceDecoder const>(std::move(steps));
    }
    if (type == "ByteLevel") return std::make_shared<ByteLevelDecoder const>();
    if (type == "Metaspace")
        return std::make_shared<MetaspaceDecoder const>(replacement_char(at),
                                                        prepend_scheme(at) != MetaspacePreTokenizer::Prepend::never);
    if (type == "Replace")
        return std::make_shared<ReplaceDecoder const>(pattern(at["pattern"]), at["content"].string());
    if (type == "ByteFallback") return std::make_shared<ByteFallbackDecoder const>();
    if (type == "Fuse") return std::make_shared<FuseDecoder const>();
    if (type == "Strip") {
        auto count = [&](char const* key) {
            auto const v = at[key].integer();
            if (v < 0) at[key].fail_here("must not be negative");
            return static_cast<std::size_t>(v);
        };
        auto const content = at["content"];
        if (utf8::count_chars(content.string()) != 1) content.fail_here("must be exactly one character");
        return std::make_shared<StripDecoder const>(content.string(), count("start"), count("stop"));
    }
    at.fail_here("decoder type '", type,
                 "' is not supported (supported: Sequence, ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip)");
}

/// BertProcessing/RobertaProcessing store a special token as [token, id].
inline std::vector<std::int32_t> special_pair_ids(JsonAt const& at) {
    if (at.size() != 2) at.fail_here("expected [token, id]");
    return {at[1].id()};
}

inline std::shared_ptr<PostProcessor const> post_processor(JsonAt const& at) {
    auto const type = type_of(at);
    if (type == "Sequence") {
        std::vector<std::shared_ptr<PostProcessor const>> steps;
        auto const list = at["processors"];
        for (std::size_t i = 0; i < list.size(); ++i) steps.push_back(post_processor(list[i]));
        return std::make_shared<SequencePostProcessor const>(std::move(steps));
    }
    if (type == "ByteLevel") return std::make_shared<NoSpecialTokens const>();
    if (type == "BertProcessing" || type == "RobertaProcessing") {
        using Item = TemplatePostProcessor::Item;
        return std::make_shared<TemplatePostProcessor const>(std::vector<Item>{
            special_pair_ids(at["cls"]), TemplatePostProcessor::Sequence{}, special_pair_ids(at["sep"])});
    }
    if (type == "TemplateProcessing") {
        auto const specials = at["special_tokens"];
        std::vector<TemplatePostProcessor::Item> items;
        auto const single = at["single"];
        for (std::size_t i = 0; i < single.size(); ++i) {
            auto const item = single[i];
            if (auto seq = item.find("Sequence")) {
                auto const& which = (*seq)["id"].string();
                if (which != "A") (*seq)["id"].fail_here("a single-sequence template can only use $A, not $", which);
                items.emplace_back(TemplatePostProcessor::Sequence{});
            } else if (auto special = item.find("SpecialToken")) {
                auto const& name = (*special)["id"].string();
                auto const entry = specials[name];
                auto const ids = entry["ids"];
                std::vector<std::int32_t> list;
                for (std::size_t k = 0; k < ids.size(); ++k) list.push_back(ids[k].id());
                items.emplace_back(std::move(list));
            } else {
                item.fail_here("expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
            }
        }
        return std::make_shared<TemplatePostProcessor const>(std::move(items));
    }
    at.fail_here("post-processor type '", type,
                 "' is not supported (supported: TemplateProcessing, ByteLevel, BertProcessing, RobertaProcessing, "
                 "Sequence)");
}

}  // namespace polyalpaca::tokenizer::hf_json
