/// @file generate/config.hpp
/// @brief GenerationConfig: the decoding settings of HF transformers' GenerationConfig that polyalpaca
///        implements, its named presets (greedy, the paper's beam search, sampling) and their validation.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca {

/// When beam search stops, as HF's `early_stopping` defines it.
enum class EarlyStopping {
    Heuristic,    ///< HF False (the default): stop once the best running beam, scored at its current length,
                  ///< cannot beat the worst of num_beams finished hypotheses
    AllFinished,  ///< HF True: stop as soon as num_beams hypotheses have finished
    Never,        ///< HF "never": as Heuristic, but with a positive length penalty the running beam is scored
                  ///< at the longest length it could reach (canonical beam search)
};

/// "false", "true" or "never" (HF's spellings).
inline EarlyStopping early_stopping_from_string(std::string const& s) {
    if (s == "false" || s == "False") return EarlyStopping::Heuristic;
    if (s == "true" || s == "True") return EarlyStopping::AllFinished;
    if (s == "never") return EarlyStopping::Never;
    fail("early_stopping: expected \"false\", \"true\" or \"never\", got \"", s, "\"");
}

/// Decoding settings. Defaults follow HF's GenerationConfig (top_k 50 applies only when sampling).
struct GenerationConfig {
    int max_new_tokens = 20;        ///< tokens generated per prompt at most (HF max_new_tokens)
    bool do_sample = false;         ///< sample instead of taking the most likely token (greedy)
    double temperature = 1.0;       ///< sampling only: logits / temperature
    int top_k = 50;                 ///< sampling only: keep the k most likely tokens (0 = off); ties at the k-th kept
    double top_p = 1.0;             ///< sampling only: keep the smallest set of tokens with probability >= top_p
    std::uint64_t seed = 0;         ///< sampling only: seeds core/rng.hpp (not torch's stream)
    int num_beams = 1;              ///< > 1: beam search (with do_sample = false)
    double length_penalty = 1.0;    ///< beam search: a finished hypothesis scores sum log p / new_tokens^length_penalty
    EarlyStopping early_stopping = EarlyStopping::Heuristic;
    int no_repeat_ngram_size = 0;   ///< > 0: no n-gram of this size occurs twice in prompt + generation
    double repetition_penalty = 1.0;  ///< CTRL's penalty on tokens already in prompt + generation (1 = off)
    std::vector<std::int32_t> eos_token_ids;  ///< generation of a sequence ends after any of these (empty: never)
    /// The id that fills the unused tail of sequences laid out as one padded matrix (HF pad_token_id); -1: none.
    /// generate() returns each sequence at its own length and never needs it.
    std::int32_t pad_token_id = -1;

    /// Greedy decoding of up to n new tokens.
    static GenerationConfig greedy(int n) {
        GenerationConfig c;
        c.max_new_tokens = n;
        return c;
    }

    /// The paper's decoding: 4 beams, 256 new tokens, no repeated 6-grams, and a repetition penalty of 1.1 for
    /// full-parameter models (1.0, i.e. none, for LoRA). Length penalty and early stopping keep HF's defaults.
    static GenerationConfig paper(bool full_parameter) {
        GenerationConfig c;
        c.max_new_tokens = 256;
        c.num_beams = 4;
        c.no_repeat_ngram_size = 6;
        c.repetition_penalty = full_parameter ? 1.1 : 1.0;
        return c;
    }

    /// Sampling with HF's sampling defaults (temperature 1, top_k 50, top_p 1) and 256 new tokens.
    static GenerationConfig sample(std::uint64_t seed = 0) {
        GenerationConfig c;
        c.max_new_tokens = 256;
        c.do_sample = true;
        c.seed = seed;
        return c;
    }

    /// A preset by name, for command lines: "greedy" (256 new tokens), "paper-lora", "paper-full", "sample".
    static GenerationConfig from_name(std::string const& name) {
        if (name == "greedy") return greedy(256);
        if (name == "paper-lora") return paper(false);
        if (name == "paper-full") return paper(true);
        if (name == "sample") return sample();
        fail("generation preset \"", name, "\" is unknown; expected greedy, paper-lora, paper-full or sample");
    }
};

/// Throws Error naming the first setting that is out of range for a model with `vocab` tokens.
inline void validate(GenerationConfig const& c, int vocab) {
    require(c.max_new_tokens >= 0, "generation: max_new_tokens must not be negative, got ", c.max_new_tokens);
    require(c.num_beams >= 1, "generation: num_beams must be at least 1, got ", c.num_beams);
    require(!(c.do_sample && c.num_beams > 1),
            "generation: beam sampling (do_sample with num_beams > 1) is not supported; set one of them off");
    require(c.temperature > 0, "generation: temperature must be positive, got ", c.temperature);
    require(c.top_k >= 0, "generation: top_k must not be negative, got ", c.top_k);
    require(c.top_p > 0 && c.top_p <= 1, "generation: top_p must be in (0, 1], got ", c.top_p);
    require(c.repetition_penalty > 0, "generation: repetition_penalty must be positive, got ", c.repetition_penalty);
    require(c.no_repeat_ngram_size >= 0, "generation: no_repeat_ngram_size must not be negative, got ",
            c.no_repeat_ngram_size);
    for (auto id : c.eos_token_ids)
        require(id >= 0 && id < vocab, "generation: eos token id ", id, " is outside the vocabulary [0, ", vocab, ")");
    int const candidates = std::max(2, 1 + int(c.eos_token_ids.size()));  // kept per beam, as HF's beam search
    require(c.num_beams == 1 || vocab >= candidates, "generation: beam search keeps ", candidates,
            " candidates per beam but the vocabulary has only ", vocab, " tokens");
}

}  // namespace polyalpaca
