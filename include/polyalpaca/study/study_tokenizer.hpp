/// @file study/study_tokenizer.hpp
/// @brief The tokenizer a study runs with: the study file's, else its checkpoint's tokenizer.json or
///        tokenizer.model, else one made here: bytes, or, for a synthetic suite that asks for one, a byte-level BPE
///        learned from the suite's text.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "polyalpaca/data/prompt_template.hpp"
#include "polyalpaca/study/byte_tokenizer.hpp"
#include "polyalpaca/study/study_data.hpp"
#include "polyalpaca/study/study_file.hpp"

namespace polyalpaca::study {

struct StudyTokenizer {
    Tokenizer tokenizer;
    std::string made_here;  ///< the tokenizer.json text when it was made here (to write beside the results), else ""
};

/// The text a suite's BPE learns from: every tuning record as it is trained on (the prompt under the template, then
/// the response) and every pretraining sentence, language by language. The test split is left out.
inline std::vector<std::string> suite_tokenizer_corpus(StudyData const& d, PromptTemplate const& prompt_template) {
    std::vector<std::string> texts;
    for (auto const& [lang, records] : d.train)
        for (auto const& r : records) texts.push_back(prompt_template.generate_prompt(r) + r.output);
    for (auto const& [lang, sentences] : d.pretrain) texts.insert(texts.end(), sentences.begin(), sentences.end());
    return texts;
}

/// The tokenizer file the study names or its checkpoint holds, "" when the study makes its own.
inline std::filesystem::path study_tokenizer_file(StudyFile const& s) {
    namespace fs = std::filesystem;
    fs::path path = s.tokenizer;
    if (path.empty() && !s.checkpoint.empty())
        for (char const* name : {"tokenizer.json", "tokenizer.model"})
            if (fs::exists(s.checkpoint / name)) path = s.checkpoint / name;
    return path;
}

/// The study's tokenizer (see the file's brief). `d` and `prompt_template` (the first method's) matter only to a
/// suite's BPE, which the same study and suite seed learn the same on every run.
inline StudyTokenizer study_tokenizer(StudyFile const& s, StudyData const& d, PromptTemplate const& prompt_template) {
    auto const path = study_tokenizer_file(s);
    if (!path.empty())
        return {path.extension() == ".json" ? Tokenizer::from_hf_json(path) : Tokenizer::from_sentencepiece(path), ""};
    std::string json = byte_tokenizer_json();
    if (s.suite && s.suite->bpe_vocab > 0) {
        auto const corpus = suite_tokenizer_corpus(d, prompt_template);
        auto const merges = tokenizer::train_byte_level_bpe(corpus, suite_bpe_pre_tokenizer(),
                                                            {.new_tokens = s.suite->bpe_vocab - byte_vocab_size});
        json = byte_level_bpe_json(merges);
    }
    return {Tokenizer::from_hf_json_text(json, (s.output / "tokenizer.json").string()), json};
}

}  // namespace polyalpaca::study
