/// @file eval/language_id.hpp
/// @brief Language identification with CLD2 (Compact Language Detector 2, Debian's libcld2-dev): the language of a
///        text as an ISO 639-1 code, "un" when the text is too short or CLD2 does not know.
#pragma once

#include <string>
#include <string_view>

#include <cld2/public/compact_lang_det.h>
#include <cld2/public/encodings.h>

#include "polyalpaca/tokenizer/utf8.hpp"

namespace polyalpaca::eval {

/// What CLD2 said about one text.
struct LanguageGuess {
    std::string code = "un";       ///< normalised ISO 639-1 code ("no" for Norwegian, "zh" for both Chinese scripts)
    std::string cld2_code = "un";  ///< CLD2's own code ("no", "zh", "zh-Hant", "iw", ...)
    bool reliable = false;         ///< CLD2's is_reliable
    int percent = 0;               ///< share of the text's letters in that language (0..100)
    int text_bytes = 0;            ///< letter bytes CLD2 scored (tags, digits and punctuation excluded)
};

struct LanguageIdOptions {
    int min_text_bytes = 12;        ///< fewer letter bytes than this: "un" (CLD2 guesses English on short text)
    bool require_reliable = false;  ///< true: an unreliable guess is "un"
};

/// CLD2's code mapped to the code the test sets use: old Hebrew/Yiddish/Indonesian codes to the current ones,
/// Norwegian Bokmål/Nynorsk to "no", Traditional Chinese to "zh". Other codes pass through.
inline std::string normalize_language_code(std::string_view code) {
    if (code == "nb" || code == "nn" || code == "no") return "no";
    if (code.starts_with("zh")) return "zh";
    if (code == "iw") return "he";
    if (code == "ji") return "yi";
    if (code == "in") return "id";
    if (code == "jw") return "jv";
    if (code == "xx-Qaai" || code.empty()) return "un";
    return std::string(code);
}

/// True when a detected code names the prompt's language (both normalised: "nb" and "no" match).
inline bool same_language(std::string_view prompt_lang, std::string_view detected) {
    return normalize_language_code(prompt_lang) == normalize_language_code(detected);
}

/// The language of plain UTF-8 text. Invalid UTF-8 is replaced (U+FFFD) first, as CLD2 requires valid input.
inline LanguageGuess identify_language(std::string_view text, LanguageIdOptions const& options = {}) {
    std::string valid = tokenizer::utf8::is_valid(text) ? std::string(text) : tokenizer::utf8::lossy(text);
    CLD2::CLDHints hints{nullptr, nullptr, CLD2::UNKNOWN_ENCODING, CLD2::UNKNOWN_LANGUAGE};
    CLD2::Language language3[3];
    int percent3[3];
    double scores3[3];
    int text_bytes = 0;
    bool reliable = false;
    CLD2::Language const lang =
        CLD2::ExtDetectLanguageSummary(valid.data(), int(valid.size()), true, &hints, 0, language3, percent3, scores3,
                                       nullptr, &text_bytes, &reliable);
    LanguageGuess g;
    g.reliable = reliable;
    g.text_bytes = text_bytes;
    g.percent = percent3[0];
    if (lang == CLD2::UNKNOWN_LANGUAGE || text_bytes < options.min_text_bytes ||
        (options.require_reliable && !reliable))
        return g;
    g.cld2_code = CLD2::LanguageCode(lang);
    g.code = normalize_language_code(g.cld2_code);
    return g;
}

}  // namespace polyalpaca::eval
