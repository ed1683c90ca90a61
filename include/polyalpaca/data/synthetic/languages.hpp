/// @file data/synthetic/languages.hpp
/// @brief The languages the synthetic suite is written in, looked up by code, and the suite's default choice of
/// languages and of zero-shot languages.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/data/synthetic/language_pack.hpp"
#include "polyalpaca/data/synthetic/languages_cyrillic_han.hpp"
#include "polyalpaca/data/synthetic/languages_latin.hpp"

namespace polyalpaca::synthetic {

/// Every language the suite can be written in, in a fixed order.
inline constexpr std::array<LanguagePack const*, 8> all_languages = {
    &languages::english, &languages::spanish,   &languages::french,  &languages::german,
    &languages::finnish, &languages::russian,   &languages::bulgarian, &languages::chinese,
};

/// The pack of a language code; an unknown code is an Error listing the known ones.
inline LanguagePack const& find_language(std::string_view code) {
    std::string known;
    for (auto const* pack : all_languages) {
        if (pack->code == code) return *pack;
        known += known.empty() ? "" : ", ";
        known += pack->code;
    }
    fail("the synthetic suite has no language \"", code, "\" (it has: ", known, ")");
}

/// The default languages: all of them.
inline std::vector<std::string> default_suite_languages() {
    std::vector<std::string> codes;
    for (auto const* pack : all_languages) codes.emplace_back(pack->code);
    return codes;
}

/// The default zero-shot languages, kept out of tuning: Bulgarian (its tuned relative is Russian, same script and
/// family) and Spanish (its tuned relative is French, a Romance language in the same script).
inline std::vector<std::string> default_zero_shot_languages() { return {"bg", "es"}; }

}  // namespace polyalpaca::synthetic
