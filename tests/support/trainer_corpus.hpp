/// @file tests/support/trainer_corpus.hpp
/// @brief The synthetic three-language corpus the Trainer tests run on (tests/unit/trainer.cpp on the CPU,
///        tests/cuda/trainer_parity.cu on the GPU against the CPU).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "polyalpaca/core/batch.hpp"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/data/mixture.hpp"
#include "polyalpaca/train/flops.hpp"
#include "polyalpaca/train/trainer.hpp"

namespace polyalpaca::test_corpus {

struct Example {
    std::string id;
    std::vector<std::int32_t> ids, labels;
};

/// Language l speaks a Markov chain of its own over a third of the vocabulary; example i has the same id in every
/// language (parallel data) and 6..17 tokens. The first 3 tokens are a "prompt" (labels -100).
inline std::vector<Example> language(int l, int n) {
    Rng table_rng(100 + std::uint64_t(l));
    std::vector<std::int32_t> next(32);
    for (auto& t : next) t = std::int32_t(table_rng.below(32));
    std::vector<Example> out;
    for (int i = 0; i < n; ++i) {
        Rng rng(std::uint64_t(l) * 1000 + std::uint64_t(i));
        Example e{"rec" + std::to_string(i), {}, {}};
        std::int32_t tok = std::int32_t(rng.below(32));
        int const len = 6 + int(rng.below(12));
        for (int t = 0; t < len; ++t) {
            e.ids.push_back(std::int32_t(l * 32) + tok);
            e.labels.push_back(t < 3 ? ignore_index : e.ids.back());
            tok = rng.below(5) == 0 ? std::int32_t(rng.below(32)) : next[std::size_t(tok)];
        }
        out.push_back(std::move(e));
    }
    return out;
}

/// Three languages of 72 examples each: the first 64 train, the last 8 are held out for validation.
struct Corpus {
    std::vector<std::string> langs{"aa", "bb", "cc"};
    std::vector<std::vector<Example>> train;
    std::vector<std::pair<std::string, std::vector<Example>>> validation;
    std::vector<LanguagePool> pools;

    Corpus() {
        for (int l = 0; l < 3; ++l) {
            auto all = language(l, 72);
            validation.emplace_back(langs[std::size_t(l)], std::vector<Example>(all.end() - 8, all.end()));
            all.resize(64);
            pools.push_back(make_pool(langs[std::size_t(l)], all));
            train.push_back(std::move(all));
        }
    }
};

/// The corpus's training settings: global batch 8 in micro-batches of 4 grouped by length, 2 epochs, lr 1e-2 with
/// 2 warmup steps, validation (and a checkpoint) every `eval_every` steps, `keep_last` checkpoints kept.
template <class Model>
TrainerOptions corpus_options(std::filesystem::path dir, long eval_every, int keep_last) {
    TrainerOptions o;
    o.batching = batching_for_global(8, 4, SampleOrder::GroupByLength);
    o.epochs = 2;
    o.lr = 1e-2;
    o.warmup_steps = 2;
    o.eval_every = eval_every;
    o.keep_last = keep_last;
    o.output_dir = std::move(dir);
    o.cost = flop_cost<Model>();
    o.show_progress = false;
    return o;
}

}  // namespace polyalpaca::test_corpus
