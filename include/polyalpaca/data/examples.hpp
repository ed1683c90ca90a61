/// @file data/examples.hpp
/// @brief Records to tokenised training examples (ids, labels) exactly as alpaca-lora or stanford_alpaca build them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "polyalpaca/core/batch.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/data/bad_records.hpp"
#include "polyalpaca/data/prompt_template.hpp"
#include "polyalpaca/data/record.hpp"
#include "polyalpaca/data/special_layout.hpp"

namespace polyalpaca {

/// How the end-of-sequence token and the cutoff are applied.
enum class EosPolicy {
    /// alpaca-lora finetune.py, tokenize(full_prompt, add_eos_token=True): tokenizer(text, truncation=True,
    /// max_length=cutoff), then EOS appended when the ids do not end in EOS and are shorter than the cutoff.
    AlpacaLora,
    /// stanford_alpaca train.py: tokenizer(prompt + output + eos_token, truncation=True, max_length=cutoff);
    /// EOS is part of the text, so truncation cuts it like any other token.
    StanfordAlpaca,
};

struct ExampleOptions {
    std::size_t cutoff = 512;        ///< most tokens in an example (alpaca-lora cutoff_len, stanford model_max_length)
    bool train_on_inputs = true;     ///< false: the prompt's labels are ignore_index, loss on the response (+ EOS) only
    EosPolicy eos = EosPolicy::AlpacaLora;
    bool drop_over_length = false;   ///< true: an example that does not fit is a bad record instead of truncated
};

/// One tokenised example; labels[t] is ids[t] or ignore_index (the model shifts them, as HF does).
struct Example {
    std::vector<std::int32_t> ids, labels;
    std::string lang, id;
    bool truncated = false;        ///< tokens (or the EOS) were lost to the cutoff
    std::size_t full_length = 0;   ///< tokens the example would have without the cutoff, EOS included
};

namespace data_detail {

/// A text's ids as HF's tokenizer(text, truncation=True, max_length=cutoff) returns them, and what the cutoff took.
struct Encoded {
    std::vector<std::int32_t> ids;
    std::size_t full_length = 0;  ///< ids without the cutoff
    std::int32_t full_last = -1;  ///< last id without the cutoff (-1: none)
};

/// Encodes `text` with special tokens; `tail` (an id) counts as the text's last token, before trailing special
/// tokens. Over the cutoff the text's own tokens are cut so that they and the special tokens fit, as HF does.
template <class Tokenizer>
Encoded encode_truncated(Tokenizer const& tokenizer, SpecialLayout const& layout, std::string_view text,
                         std::optional<std::int32_t> tail, std::size_t cutoff, std::string const& source) {
    Encoded out;
    out.ids = tokenizer.encode(text, true);
    auto const [prefix, suffix] = layout.split(out.ids, source);
    if (tail) out.ids.insert(out.ids.end() - std::ptrdiff_t(suffix), *tail);
    out.full_length = out.ids.size();
    if (!out.ids.empty()) out.full_last = out.ids.back();
    if (out.full_length <= cutoff) return out;
    require(cutoff >= prefix + suffix, source, ": the cutoff of ", cutoff, " tokens is less than the ", prefix + suffix,
            " special tokens the tokenizer adds");
    auto const keep = cutoff - prefix - suffix;  // the text's own tokens (and tail) that remain
    out.ids.erase(out.ids.begin() + std::ptrdiff_t(prefix + keep), out.ids.end() - std::ptrdiff_t(suffix));
    return out;
}

/// Sets the first min(n, size) labels to ignore_index.
inline void mask_prompt(std::vector<std::int32_t>& labels, std::size_t n) {
    std::fill_n(labels.begin(), std::min(n, labels.size()), ignore_index);
}

}  // namespace data_detail

/// The training example of `record`, given the special-token layout of `tokenizer` (see special_layout_of).
///
/// AlpacaLora: ids = tokenizer(full_prompt, truncation, max_length=cutoff) + [EOS if it does not end in EOS and is
/// shorter than cutoff]; with train_on_inputs off the first len(tokenizer(user_prompt, truncation,
/// max_length=cutoff)) labels are ignored (alpaca-lora tokenises the user prompt with add_eos_token=False, so the
/// count includes BOS and no EOS). StanfordAlpaca: ids = tokenizer(prompt + output + eos_token, truncation,
/// max_length=cutoff); with train_on_inputs off the first len(tokenizer(prompt, truncation, max_length=cutoff))
/// labels are ignored (stanford_alpaca always masks, counting the prompt's non-pad tokens, which is its length
/// unless the text holds the pad token; here train_on_inputs picks). Both mask a token count, not a text span,
/// exactly as the references do. EOS is appended as an id, which equals tokenizing the eos_token text when the
/// tokenizer splits special tokens out of text (checked against transformers for LLaMA).
template <class Tokenizer>
Example make_example(Record const& record, PromptTemplate const& prompt_template, Tokenizer const& tokenizer,
                     ExampleOptions const& options, SpecialLayout const& layout) {
    require(options.cutoff > 0, "the example cutoff must be at least 1 token");
    auto const eos = data_detail::eos_id_of(tokenizer);
    auto const user_prompt = prompt_template.generate_prompt(record);
    Example example;
    example.lang = record.lang;
    example.id = record.id;
    auto const full_text = user_prompt + record.output;
    if (options.eos == EosPolicy::AlpacaLora) {
        auto encoded = data_detail::encode_truncated(tokenizer, layout, full_text, std::nullopt, options.cutoff,
                                                     record.source);
        example.ids = std::move(encoded.ids);
        if ((example.ids.empty() || example.ids.back() != eos) && example.ids.size() < options.cutoff)
            example.ids.push_back(eos);
        example.full_length = encoded.full_length + (encoded.full_last == eos ? 0 : 1);
    } else {
        auto encoded = data_detail::encode_truncated(tokenizer, layout, full_text, eos, options.cutoff, record.source);
        example.ids = std::move(encoded.ids);
        example.full_length = encoded.full_length;
    }
    example.truncated = example.full_length > options.cutoff;
    example.labels = example.ids;
    if (!options.train_on_inputs) {
        auto const user = data_detail::encode_truncated(tokenizer, layout, user_prompt, std::nullopt, options.cutoff,
                                                        record.source);
        data_detail::mask_prompt(example.labels, user.ids.size());
    }
    return example;
}

/// Whether the loss scores a token of `e`: a label other than ignore_index after the first position (labels are
/// shifted, as in HF: position t predicts label t from the ids before it).
inline bool has_scored_label(Example const& e) {
    auto const first = e.labels.begin() + std::min<std::ptrdiff_t>(1, std::ptrdiff_t(e.labels.size()));
    return std::any_of(first, e.labels.end(), [](std::int32_t label) { return label != ignore_index; });
}

/// How many examples of every language there are, and how many of them have a scored label.
struct ScoredCount {
    std::size_t examples = 0, scored = 0;
};
template <class ByLanguage>
ScoredCount count_scored(ByLanguage const& by_language) {
    ScoredCount c;
    for (auto const& [lang, list] : by_language)
        for (auto const& e : list) ++c.examples, c.scored += has_scored_label(e) ? 1 : 0;
    return c;
}

/// The same, finding the tokenizer's special-token layout first (make_examples does that once for all records).
template <class Tokenizer>
Example make_example(Record const& record, PromptTemplate const& prompt_template, Tokenizer const& tokenizer,
                     ExampleOptions const& options) {
    return make_example(record, prompt_template, tokenizer, options, special_layout_of(tokenizer));
}

/// Examples of all `records`, in order, tokenised on several threads (Tokenizer::encode must allow that). A truncated
/// example is kept and listed in `report`; with options.drop_over_length it is a bad record instead (OverLength),
/// failing or skipped as `policy` says.
template <class Tokenizer>
std::vector<Example> make_examples(std::span<Record const> records, PromptTemplate const& prompt_template,
                                   Tokenizer const& tokenizer, ExampleOptions const& options,
                                   BadRecordPolicy policy, DataReport& report) {
    auto const layout = special_layout_of(tokenizer);
    std::vector<Example> examples(records.size());
    std::vector<std::exception_ptr> errors(records.size());
    auto const n = std::int64_t(records.size());
#pragma omp parallel for schedule(dynamic, 16) if (n >= 64)
    for (std::int64_t i = 0; i < n; ++i) {
        try {
            examples[std::size_t(i)] = make_example(records[std::size_t(i)], prompt_template, tokenizer, options,
                                                    layout);
        } catch (...) {
            errors[std::size_t(i)] = std::current_exception();
        }
    }
    std::vector<Example> kept;
    kept.reserve(examples.size());
    for (std::size_t i = 0; i < examples.size(); ++i) {
        if (errors[i]) std::rethrow_exception(errors[i]);
        auto& example = examples[i];
        if (example.truncated && options.drop_over_length) {
            reject_record(policy, report, records[i].source, BadRecordReason::OverLength,
                          detail::concat(example.full_length, " tokens with EOS, cutoff ", options.cutoff));
            continue;
        }
        if (example.truncated) report.note_truncated(records[i].source);
        if (!has_scored_label(example)) report.note_unscored(records[i].source);
        kept.push_back(std::move(example));
    }
    return kept;
}

}  // namespace polyalpaca
