/// @file data/synthetic/suite.hpp
/// @brief Builds the synthetic multilingual instruction suite: per language a tuning split, a held-out test split
/// that shares no (instruction, input) with it, and pretraining sentences; deterministic in the seed.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/data/synthetic/languages.hpp"
#include "polyalpaca/data/synthetic/pretrain_text.hpp"
#include "polyalpaca/data/synthetic/tasks.hpp"

namespace polyalpaca::synthetic {

/// What to build.
struct SyntheticSuiteConfig {
    std::vector<std::string> languages = default_suite_languages();
    std::vector<std::string> zero_shot = default_zero_shot_languages();  ///< tested, never tuned on
    std::size_t train_per_language = 1000;
    std::size_t test_per_language = 200;
    std::size_t pretrain_sentences_per_language = 2000;
    std::uint64_t seed = 0;
};

/// One language of a built suite.
struct SuiteLanguage {
    LanguagePack const* pack = nullptr;
    bool zero_shot = false;
    std::vector<SuiteItem> train;  ///< empty for a zero-shot language
    std::vector<SuiteItem> test;
    std::vector<std::string> pretrain;
};

struct SyntheticSuite {
    SyntheticSuiteConfig config;
    std::vector<SuiteLanguage> languages;  ///< in the config's order
};

namespace synthetic_detail {

/// A seed of its own for each (language, part), so adding a language or changing one part's size leaves the
/// others' records as they were: FNV-1a of "code/part" mixed into the suite's seed.
inline std::uint64_t stream_seed(std::uint64_t seed, std::string_view code, std::string_view part) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    auto mix = [&h](std::string_view s) {
        for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    };
    mix(code);
    mix("/");
    mix(part);
    return seed ^ h;
}

inline std::string record_id(std::string_view code, std::string_view split, std::size_t index) {
    char number[16];
    std::snprintf(number, sizeof number, "%05zu", index);
    return std::string(code) + "-" + std::string(split) + "-" + number;
}

/// Attempts to draw a prompt not seen before, before a task counts as used up.
inline constexpr int max_draws = 1000;

/// The test split: tasks in turn, every (instruction, input) distinct, and no task taking more than half of its
/// distinct prompts (so its tuning split still has the other half). A task that runs out drops out of the turns.
inline std::vector<SuiteItem> draw_test(Rng& rng, LanguagePack const& pack, std::size_t count,
                                        std::set<std::string>& keys) {
    std::vector<SuiteItem> items;
    std::vector<std::size_t> taken(task_count, 0);
    std::vector<bool> used_up(task_count, false);
    std::size_t next = 0;  // the task whose turn it is
    while (items.size() < count) {
        bool drawn = false;
        for (std::size_t turn = 0; turn < task_count && !drawn; ++turn) {
            std::size_t const t = (next + turn) % task_count;
            if (used_up[t]) continue;
            auto const task = all_tasks[t];
            if (taken[t] >= distinct_prompt_count(pack, task) / 2) {
                used_up[t] = true;
                continue;
            }
            for (int draw = 0; draw < max_draws && !drawn; ++draw) {
                auto item = make_task(rng, pack, task);
                if (!keys.insert(prompt_key(item.record)).second) continue;
                items.push_back(std::move(item));
                ++taken[t];
                drawn = true;
                next = t + 1;
            }
            if (!drawn) used_up[t] = true;
        }
        require(drawn, "synthetic suite: cannot draw ", count, " distinct test records in ", pack.code,
                " (drew ", items.size(), "); ask for fewer");
    }
    return items;
}

/// The tuning split: tasks in turn, never a prompt of the test split, then shuffled.
inline std::vector<SuiteItem> draw_train(Rng& rng, LanguagePack const& pack, std::size_t count,
                                         std::set<std::string> const& test_keys) {
    std::vector<SuiteItem> items;
    items.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        auto const task = all_tasks[i % task_count];
        for (int draw = 0;; ++draw) {
            require(draw < max_draws, "synthetic suite: every ", task_name(task), " prompt drawn in ", pack.code,
                    " is held out for testing");
            auto item = make_task(rng, pack, task);
            if (test_keys.count(prompt_key(item.record)) != 0) continue;
            items.push_back(std::move(item));
            break;
        }
    }
    for (std::size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[rng.below(i)]);
    return items;
}

}  // namespace synthetic_detail

/// Builds the suite. The same config gives the same suite, byte for byte, on every platform.
inline SyntheticSuite build_synthetic_suite(SyntheticSuiteConfig const& config) {
    using namespace synthetic_detail;
    require(!config.languages.empty(), "synthetic suite: no languages");
    for (std::size_t i = 0; i < config.languages.size(); ++i) {
        find_language(config.languages[i]);
        for (std::size_t j = 0; j < i; ++j)
            require(config.languages[i] != config.languages[j], "synthetic suite: language \"", config.languages[i],
                    "\" is listed twice");
    }
    for (auto const& code : config.zero_shot) {
        find_language(code);
        require(std::find(config.languages.begin(), config.languages.end(), code) != config.languages.end(),
                "synthetic suite: zero-shot language \"", code, "\" is not one of the suite's languages");
    }
    SyntheticSuite suite;
    suite.config = config;
    for (auto const& code : config.languages) {
        SuiteLanguage lang;
        lang.pack = &find_language(code);
        lang.zero_shot = std::find(config.zero_shot.begin(), config.zero_shot.end(), code) != config.zero_shot.end();
        std::set<std::string> test_keys;
        Rng test_rng(stream_seed(config.seed, code, "test"));
        lang.test = draw_test(test_rng, *lang.pack, config.test_per_language, test_keys);
        if (!lang.zero_shot) {
            Rng train_rng(stream_seed(config.seed, code, "train"));
            lang.train = draw_train(train_rng, *lang.pack, config.train_per_language, test_keys);
        }
        Rng text_rng(stream_seed(config.seed, code, "pretrain"));
        lang.pretrain = pretraining_sentences(text_rng, *lang.pack, config.pretrain_sentences_per_language, test_keys);
        for (std::size_t i = 0; i < lang.test.size(); ++i) {
            lang.test[i].record.id = record_id(code, "test", i);
            lang.test[i].record.source = "synthetic:" + lang.test[i].record.id;
        }
        for (std::size_t i = 0; i < lang.train.size(); ++i) {
            lang.train[i].record.id = record_id(code, "train", i);
            lang.train[i].record.source = "synthetic:" + lang.train[i].record.id;
        }
        suite.languages.push_back(std::move(lang));
    }
    return suite;
}

}  // namespace polyalpaca::synthetic
