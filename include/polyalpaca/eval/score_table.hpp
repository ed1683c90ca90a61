/// @file eval/score_table.hpp
/// @brief Judge scores as the report reads them: a JSONL file of {"run", "language", "id", "score" (number or
///        null), "raw"}, joined with the responses on (run, language, id).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/data/jsonl.hpp"
#include "polyalpaca/eval/responses.hpp"

namespace polyalpaca::eval {

/// Mean judge score of one (run, language): over the responses that have a numeric score.
struct ScoreMean {
    double mean = 0;
    std::size_t scored = 0;    ///< responses with a numeric score
    std::size_t unscored = 0;  ///< responses the judge gave no number (null score, or no line for them)
};

class ScoreTable {
public:
    /// Reads a judge scores file; a line that is not such an object, or a (run, language, id) given twice, is an
    /// Error naming file:line.
    static ScoreTable read(std::filesystem::path const& path) {
        ScoreTable t;
        auto add_line = [&](nlohmann::json const& j, std::string const& where) {
            auto text = [&](char const* key) {
                auto const it = j.find(key);
                require(it != j.end() && it->is_string(), where, ": \"", key, "\" is missing or not a string");
                return it->get<std::string>();
            };
            Key key{text("run"), text("language"), text("id")};
            auto const score = j.find("score");
            require(score != j.end() && (score->is_null() || score->is_number()), where,
                    ": \"score\" is missing or neither a number nor null");
            std::optional<double> value;
            if (score->is_number()) value = score->get<double>();
            require(t.scores_.emplace(key, value).second, where, ": a second score for run '", std::get<0>(key),
                    "', language '", std::get<1>(key), "', id '", std::get<2>(key), "'");
        };
        for_each_jsonl_object(path, "judge scores file", "a judge score", add_line);
        return t;
    }

    /// Adds one score (tests, and scores computed in the same process).
    void add(std::string run, std::string language, std::string id, std::optional<double> score) {
        scores_[Key{std::move(run), std::move(language), std::move(id)}] = score;
    }

    std::optional<double> find(std::string const& run, std::string const& language, std::string const& id) const {
        auto const it = scores_.find(Key{run, language, id});
        return it == scores_.end() ? std::nullopt : it->second;
    }

    /// The mean score of `run` in `language` over the responses given (the join: scores of other ids are ignored).
    /// Finite scores give a finite mean, even where their sum overflows (three scores of 1e308: 1e308).
    ScoreMean mean(std::string const& run, std::string const& language, std::vector<Response> const& responses) const {
        ScoreMean m;
        std::vector<double> values;
        for (auto const& r : responses) {
            if (r.language != language) continue;
            if (auto const s = find(run, language, r.id)) values.push_back(*s);
            else ++m.unscored;
        }
        m.scored = values.size();
        m.mean = mean_of(values);
        return m;
    }

    /// The plain mean; where the sum overflows, the mean of the values divided by the largest magnitude, times it.
    static double mean_of(std::vector<double> const& values) {
        if (values.empty()) return 0.0;
        double sum = 0, largest = 0;
        for (double v : values) sum += v, largest = std::max(largest, std::abs(v));
        if (std::isfinite(sum) || !std::isfinite(largest)) return sum / double(values.size());
        double scaled = 0;
        for (double v : values) scaled += v / largest;
        return scaled / double(values.size()) * largest;
    }

    std::size_t size() const { return scores_.size(); }

private:
    using Key = std::tuple<std::string, std::string, std::string>;
    std::map<Key, std::optional<double>> scores_;
};

}  // namespace polyalpaca::eval
