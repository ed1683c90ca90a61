/// @file io/gguf_tokenizer.hpp
/// @brief The tokenizer a GGUF file carries (its tokenizer.ggml.* keys), built as llama.cpp builds it.
#pragma once

#include <string>

#include "polyalpaca/io/gguf.hpp"
#include "polyalpaca/tokenizer/tokenizer.hpp"

namespace polyalpaca::io {

/// The vocabulary of `file` in the form Tokenizer::from_llama_cpp takes; an Error names the file and key when a
/// tokenizer key is missing or malformed (GgufFile::vocabulary).
inline LlamaCppVocabulary llama_cpp_vocabulary(GgufFile const& file) {
    auto const v = file.vocabulary();
    LlamaCppVocabulary out;
    out.model = v.model;
    out.pre = v.pre;
    out.tokens = v.tokens;
    out.scores = v.scores;
    out.token_types = v.token_types;
    out.merges = v.merges;
    out.bos_id = v.bos_id;
    out.eos_id = v.eos_id;
    out.unk_id = v.unk_id;
    out.pad_id = v.pad_id;
    out.add_bos = v.add_bos;
    out.add_eos = v.add_eos;
    if (file.contains("tokenizer.ggml.add_space_prefix"))
        out.add_space_prefix = file.get_bool("tokenizer.ggml.add_space_prefix");
    return out;
}

/// The tokenizer of `file`; `origin` names it in messages.
inline Tokenizer gguf_tokenizer(GgufFile const& file, std::string const& origin) {
    return Tokenizer::from_llama_cpp(llama_cpp_vocabulary(file), origin);
}

}  // namespace polyalpaca::io
