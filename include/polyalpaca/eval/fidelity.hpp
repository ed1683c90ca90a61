/// @file eval/fidelity.hpp
/// @brief Language fidelity: per prompt language, the share of responses identified (CLD2) as that language, and the
///        confusion table prompt language x detected language.
#pragma once

#include <cstddef>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "polyalpaca/eval/language_id.hpp"
#include "polyalpaca/eval/responses.hpp"

namespace polyalpaca::eval {

/// Counts for one run: responses per prompt language and detected language.
class Fidelity {
public:
    /// Counts one response: `prompt_lang` (its test set's) and what was detected ("un" when unknown).
    void add(std::string const& prompt_lang, std::string const& detected) {
        ++table_[prompt_lang][detected];
        ++totals_[prompt_lang];
        if (same_language(prompt_lang, detected)) ++matches_[prompt_lang];
    }
    /// Identifies and counts every response.
    void add_all(std::vector<Response> const& responses, LanguageIdOptions const& options = {}) {
        for (auto const& r : responses) add(r.language, identify_language(r.response, options).code);
    }

    /// Responses of prompt language `lang`.
    std::size_t total(std::string const& lang) const { return find(totals_, lang); }
    /// Of those, the ones identified as `lang`.
    std::size_t matches(std::string const& lang) const { return find(matches_, lang); }
    /// matches / total; 0 with no responses.
    double share(std::string const& lang) const {
        auto const n = total(lang);
        return n > 0 ? double(matches(lang)) / double(n) : 0.0;
    }
    /// Responses of prompt language `prompt_lang` identified as `detected`.
    std::size_t count(std::string const& prompt_lang, std::string const& detected) const {
        auto const it = table_.find(prompt_lang);
        return it == table_.end() ? 0 : find(it->second, detected);
    }
    std::vector<std::string> prompt_languages() const {
        std::vector<std::string> out;
        for (auto const& [lang, n] : totals_) out.push_back(lang);
        return out;
    }
    /// Every detected language, sorted.
    std::vector<std::string> detected_languages() const {
        std::set<std::string> all;
        for (auto const& [p, row] : table_)
            for (auto const& [d, n] : row) all.insert(d);
        return {all.begin(), all.end()};
    }

    /// The confusion table as markdown: one row per prompt language, one column per detected language.
    std::string confusion_markdown() const {
        auto const detected = detected_languages();
        std::ostringstream out;
        out << "| prompt \\ detected |";
        for (auto const& d : detected) out << ' ' << d << " |";
        out << " fidelity |\n|---|";
        for (std::size_t i = 0; i < detected.size(); ++i) out << "---:|";
        out << "---:|\n";
        for (auto const& p : prompt_languages()) {
            out << "| " << p << " |";
            for (auto const& d : detected) out << ' ' << count(p, d) << " |";
            out << ' ' << matches(p) << '/' << total(p) << " |\n";
        }
        return out.str();
    }

private:
    template <class Map>
    static std::size_t find(Map const& m, std::string const& key) {
        auto const it = m.find(key);
        return it == m.end() ? 0 : it->second;
    }

    std::map<std::string, std::map<std::string, std::size_t>> table_;
    std::map<std::string, std::size_t> totals_, matches_;
};

}  // namespace polyalpaca::eval
