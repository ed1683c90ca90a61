/// @file study/embedded_default.hpp
/// @brief The study polyalpaca_study runs with no study file: the synthetic suite (en, ru, zh tuned: three scripts;
///        es, fr, bg zero-shot), its byte-level BPE, a small BLOOM pretrained here on the suite's text, LoRA and
///        full-parameter tuning per strategy under matched record budgets, greedy decoding, exact match and language
///        fidelity. --quick is its shortened form for CI. The model's size is bloom::SizeStudy below.
#pragma once

#include <nlohmann/json.hpp>

#include "polyalpaca/models/bloom.hpp"
#include "polyalpaca/study/byte_tokenizer.hpp"
#include "polyalpaca/study/study_file.hpp"

namespace polyalpaca {
namespace bloom {
/// The embedded study's BLOOM: the suite's byte-level BPE of 1024 tokens, 3 layers of width 128.
struct SizeStudy : Defaults { static constexpr int vocab = 1024, hidden = 128, layers = 3, heads = 4; };
}  // namespace bloom
}  // namespace polyalpaca

namespace polyalpaca::study {

static_assert(bloom::SizeStudy::vocab >= byte_vocab_size, "the study model's vocabulary must hold the byte tokenizer");

/// Tokens of the embedded study's BPE: the model's vocabulary.
inline constexpr std::size_t embedded_bpe_vocab = bloom::SizeStudy::vocab;

/// The embedded study as a study file (JSON); `quick` shortens it for CI.
inline nlohmann::json embedded_study_json(bool quick) {
    nlohmann::json j = {
        {"name", quick ? "embedded-quick" : "embedded"},
        {"base_model", {{"preset", "bloom-study"}}},
        {"methods", {"lora", "full"}},
        {"languages", {"en", "ru", "zh"}},
        {"zero_shot", {"es", "fr", "bg"}},
        {"suite", {{"train_per_language", 3000}, {"test_per_language", 200}, {"pretrain_sentences_per_language", 4000},
                   {"seed", 0}, {"bpe_vocab", embedded_bpe_vocab}}},
        // Small batches, many updates: a model this small learns to copy from its context (which most of the suite's
        // answers need) after enough optimizer steps, not enough tokens. At the same tokens and records, pretraining
        // on 2 sequences a step and tuning on 1 record a step answer about twice as many prompts as 8 and 4 did
        // (docs/study.md, "Measured").
        {"pretrain", {{"steps", 4000}, {"sequence", 128}, {"micro_batch", 2}, {"accumulation", 1}, {"lr", 2e-3}}},
        {"strategies", {"monolingual", "multilingual", "downsampled"}},
        {"budgets", {{{"records", 10000}}}},
        {"hyperparameters",
         {{"lora", {{"lr", 2e-3}, {"schedule", "cosine"}, {"warmup_ratio", 0.03}, {"micro_batch", 1}, {"global_batch", 1},
                    {"cutoff", 256}, {"val_size", 20}, {"eval_every", 1000}, {"train_on_inputs", false},
                    {"group_by_length", true}, {"template", "compact"}, {"sample_ids", "disjoint"}}},
          {"full", {{"lr", 5e-4}, {"schedule", "cosine"}, {"warmup_ratio", 0.03}, {"micro_batch", 1}, {"global_batch", 1},
                    {"cutoff", 256}, {"val_size", 20}, {"eval_every", 1000}, {"train_on_inputs", false},
                    {"group_by_length", true}, {"template", "compact"}, {"sample_ids", "disjoint"}}}}},
        {"decoding", {{"preset", "greedy"}, {"max_new_tokens", 32}, {"batch", 16}}},
        {"output", "polyalpaca-study"},
        {"seed", 42},
        // One thread per run (and for the pretraining), as many runs at once as there are cores: a model this small
        // trains on two cores only about 1.2x as fast as on one, its threads stall one another on a busy machine,
        // and its figures then do not depend on the machine's core count.
        {"threads_per_run", 1}};
    if (quick) {
        j["languages"] = {"en", "ru"};
        j["zero_shot"] = {"bg"};
        j["suite"] = {{"train_per_language", 200}, {"test_per_language", 18}, {"pretrain_sentences_per_language", 300},
                      {"seed", 0}, {"bpe_vocab", embedded_bpe_vocab}};
        j["pretrain"]["steps"] = 40;
        j["strategies"] = {"monolingual", "multilingual"};
        j["budgets"] = {{{"records", 160}}};
        j["methods"] = {"full"};
        j["hyperparameters"].erase("lora");
        j["hyperparameters"]["full"]["eval_every"] = 40;
        j["hyperparameters"]["full"]["global_batch"] = 2;  // a step two ranks can share (tests/scripts/study_distributed.sh)
        j["output"] = "polyalpaca-study-quick";
    }
    return j;
}

inline StudyFile embedded_study(bool quick) {
    return parse_study(embedded_study_json(quick), quick ? "embedded quick study" : "embedded study", ".");
}

}  // namespace polyalpaca::study
