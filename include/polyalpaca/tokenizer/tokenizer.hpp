/// @file tokenizer/tokenizer.hpp
/// @brief polyalpaca::Tokenizer: encode/decode exactly as HF tokenizers (tokenizer.json) or sentencepiece
/// (tokenizer.model, llama2.c tokenizer.bin, llama.cpp vocabularies) do.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "polyalpaca/tokenizer/hf_json.hpp"
#include "polyalpaca/tokenizer/llama2c_tokenizer.hpp"
#include "polyalpaca/tokenizer/llama_cpp_vocabulary.hpp"
#include "polyalpaca/tokenizer/pipeline.hpp"
#include "polyalpaca/tokenizer/sentencepiece_model.hpp"
#include "polyalpaca/tokenizer/sentencepiece_pipeline.hpp"

namespace polyalpaca {

using tokenizer::LlamaCppVocabulary;
using tokenizer::SentencePieceFlavor;
using tokenizer::SentencePieceOptions;

/// A loaded tokenizer. Immutable and cheap to copy (the stages are shared); encode/decode may run on many threads.
/// Bad files and invalid UTF-8 text are polyalpaca::Error naming the file and the place.
class Tokenizer {
public:
    /// An HF tokenizer.json with a BPE model. BOS/EOS/PAD come from tokenizer_config.json beside it when present,
    /// else from special added tokens with conventional names (<s>, </s>, <pad>, <|endoftext|>, ...).
    static Tokenizer from_hf_json(std::filesystem::path const& path) {
        return Tokenizer(tokenizer::hf_json::load_file(path));
    }
    /// The same from tokenizer.json text; `origin` names it in messages.
    static Tokenizer from_hf_json_text(std::string_view json, std::string const& origin = "tokenizer.json") {
        return Tokenizer(tokenizer::hf_json::load(json, origin));
    }
    /// A sentencepiece tokenizer.model (BPE, identity normalizer, as LLaMA's).
    static Tokenizer from_sentencepiece(std::filesystem::path const& path, SentencePieceOptions const& options = {}) {
        return Tokenizer(tokenizer::sentencepiece_pipeline(tokenizer::read_sentencepiece_model(path), options));
    }
    /// llama2.c's tokenizer.bin: the same pieces and scores as the tokenizer.model it was exported from.
    static Tokenizer from_llama2c(std::filesystem::path const& path, SentencePieceOptions const& options = {}) {
        return Tokenizer(tokenizer::sentencepiece_pipeline(tokenizer::read_llama2c_tokenizer(path), options));
    }
    /// A llama.cpp vocabulary (what a GGUF file's tokenizer.ggml.* keys hold); `origin` names it in messages.
    static Tokenizer from_llama_cpp(LlamaCppVocabulary const& vocabulary, std::string const& origin) {
        return Tokenizer(tokenizer::llama_cpp_pipeline(vocabulary, origin));
    }

    /// Token ids of `text` (valid UTF-8, else Error naming the byte offset); special tokens per the post-processor
    /// when `add_special_tokens`.
    std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens = true) const {
        return pipeline_->encode(text, add_special_tokens);
    }
    /// The text of `ids`; an id outside the vocabulary is an Error (HF would skip it silently).
    std::string decode(std::span<std::int32_t const> ids, bool skip_special_tokens = false) const {
        return pipeline_->decode(ids, skip_special_tokens);
    }

    std::optional<std::int32_t> bos_id() const { return pipeline_->special_ids.bos; }
    std::optional<std::int32_t> eos_id() const { return pipeline_->special_ids.eos; }
    std::optional<std::int32_t> pad_id() const { return pipeline_->special_ids.pad; }
    std::optional<std::int32_t> unk_id() const { return pipeline_->special_ids.unk; }

    /// One more than the largest id (model vocabulary and added tokens).
    std::int32_t vocab_size() const { return pipeline_->vocab_size(); }
    std::optional<std::int32_t> token_to_id(std::string_view token) const { return pipeline_->token_to_id(token); }
    /// Error when `id` names no token.
    std::string const& id_to_token(std::int32_t id) const { return pipeline_->id_to_token(id); }
    bool is_special(std::int32_t id) const { return pipeline_->special_tokens.count(id) != 0; }
    /// The file it was loaded from.
    std::string const& origin() const { return pipeline_->origin; }

private:
    explicit Tokenizer(std::shared_ptr<tokenizer::Pipeline const> pipeline) : pipeline_(std::move(pipeline)) {}

    std::shared_ptr<tokenizer::Pipeline const> pipeline_;
};

}  // namespace polyalpaca
