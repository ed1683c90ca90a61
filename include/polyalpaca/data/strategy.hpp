/// @file data/strategy.hpp
/// @brief Strategy: a mixing strategy as one value with one spelling, read by the trainers' --strategy, the study
///        file and the planner alike: monolingual, multilingual, downsampled, temperature:T, weighted:en=2,fr=1.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/excerpt.hpp"
#include "polyalpaca/data/mixture.hpp"

namespace polyalpaca {

struct Strategy {
    enum class Kind { Monolingual, Multilingual, Downsampled, Temperature, Weighted };
    Kind kind = Kind::Multilingual;
    double temperature = 1;  ///< Temperature: p_l proportional to n_l^(1/T), T >= 1
    std::vector<std::pair<std::string, double>> weights;  ///< Weighted: languages and positive weights, as written

    /// Reads one spelling; an error names `where` (a key or an option), the text and what is allowed.
    static Strategy parse(std::string_view text, std::string_view where);

    /// The spelling parse() reads back: "temperature:2", "weighted:en=2,fr=1".
    std::string spelling() const;
    /// Directory-safe: "temperature2", "weighted-en2-fr1".
    std::string tag() const;
    /// What reports call the runs of a multilingual strategy: "temperature 2"; the spelling otherwise.
    std::string label() const;
    /// The languages a weighted strategy names, in its order (empty for the others).
    std::vector<std::string> weighted_languages() const;
};

namespace strategy_detail {

/// A finite number filling all of `text`, or an error naming `what`.
inline double number(std::string const& text, std::string_view where, std::string_view whole, std::string_view what) {
    std::size_t used = 0;
    double value = NAN;
    try {
        value = std::stod(text, &used);
    } catch (std::exception const&) {
        used = 0;
    }
    require(used == text.size() && !text.empty() && std::isfinite(value), where, ": \"", excerpt(whole, 60), "\": ",
            what, " \"", excerpt(text), "\" is not a number");
    return value;
}

/// A number as the spelling writes it: the shortest form that reads back to the same double.
inline std::string shortest(double value) {
    for (int digits = 1; digits <= 17; ++digits) {
        char text[32];
        std::snprintf(text, sizeof text, "%.*g", digits, value);
        if (std::stod(text) == value) return text;
    }
    return std::to_string(value);
}

}  // namespace strategy_detail

inline Strategy Strategy::parse(std::string_view text, std::string_view where) {
    using strategy_detail::number;
    std::string const shown = excerpt(text, 60);  // what messages quote of it
    Strategy s;
    if (text == "monolingual") return s.kind = Kind::Monolingual, s;
    if (text == "multilingual") return s.kind = Kind::Multilingual, s;
    if (text == "downsampled") return s.kind = Kind::Downsampled, s;
    if (text.starts_with("temperature:")) {
        s.kind = Kind::Temperature;
        s.temperature = number(std::string(text.substr(12)), where, text, "the temperature");
        require(s.temperature >= 1, where, ": \"", shown, "\": the temperature must be at least 1 (p_l ~ n_l^(1/T): 1 ",
                "follows the languages' sizes, larger is flatter), e.g. temperature:2");
        return s;
    }
    if (text.starts_with("weighted:")) {
        s.kind = Kind::Weighted;
        std::string const rest(text.substr(9));
        std::size_t begin = 0;
        while (begin <= rest.size()) {
            auto end = rest.find(',', begin);
            if (end == std::string::npos) end = rest.size();
            auto const item = rest.substr(begin, end - begin);
            auto const eq = item.find('=');
            require(eq != std::string::npos && eq > 0, where, ": \"", shown, "\": \"", excerpt(item),
                    "\" is not LANG=WEIGHT, e.g. weighted:en=2,fr=1");
            auto const lang = item.substr(0, eq);
            double const w = number(item.substr(eq + 1), where, text, "the weight of " + excerpt(lang));
            require(w > 0, where, ": \"", shown, "\": the weight of ", excerpt(lang), " must be positive");
            for (auto const& [seen, _] : s.weights)
                require(seen != lang, where, ": \"", shown, "\": ", excerpt(lang), " is weighted twice");
            s.weights.emplace_back(lang, w);
            begin = end + 1;
        }
        return s;
    }
    fail(where, ": unknown strategy \"", shown,
         "\" (monolingual, multilingual, downsampled, temperature:T, weighted:LANG=W,...)");
}

inline std::string Strategy::spelling() const {
    switch (kind) {
        case Kind::Monolingual: return "monolingual";
        case Kind::Multilingual: return "multilingual";
        case Kind::Downsampled: return "downsampled";
        case Kind::Temperature: return "temperature:" + strategy_detail::shortest(temperature);
        case Kind::Weighted: {
            std::string out = "weighted:";
            for (std::size_t i = 0; i < weights.size(); ++i)
                out += (i ? "," : "") + weights[i].first + "=" + strategy_detail::shortest(weights[i].second);
            return out;
        }
    }
    return "";
}

inline std::string Strategy::tag() const {
    if (kind == Kind::Temperature) return "temperature" + strategy_detail::shortest(temperature);
    std::string out;
    for (char c : spelling())
        if (c == ':' || c == ',') out += '-';
        else if (c != '=') out += c;
    return out;
}

inline std::string Strategy::label() const {
    return kind == Kind::Temperature ? "temperature " + strategy_detail::shortest(temperature) : spelling();
}

inline std::vector<std::string> Strategy::weighted_languages() const {
    std::vector<std::string> out;
    for (auto const& [lang, _] : weights) out.push_back(lang);
    return out;
}

/// The mixture a strategy draws from the pools. Monolingual trains on `pools` holding exactly one language;
/// `ids` is how downsampling picks records across languages (shared ids: the same records in every language).
inline Mixture make_mixture(Strategy const& s, std::vector<LanguagePool> pools, SampleIds ids, std::uint64_t seed) {
    switch (s.kind) {
        case Strategy::Kind::Monolingual:
            require(pools.size() == 1, "the monolingual strategy trains on one language; ", pools.size(),
                    " were given");
            return Mixture::monolingual(pools, pools.front().lang, seed);
        case Strategy::Kind::Multilingual: return Mixture::multilingual(std::move(pools), seed);
        case Strategy::Kind::Downsampled: return Mixture::downsampled(std::move(pools), {.ids = ids}, seed);
        case Strategy::Kind::Temperature:
            return Mixture::temperature(std::move(pools), {.temperature = s.temperature}, seed);
        case Strategy::Kind::Weighted: return Mixture::weighted(std::move(pools), {.weights = s.weights}, seed);
    }
    fail("unknown strategy kind");
}

}  // namespace polyalpaca
