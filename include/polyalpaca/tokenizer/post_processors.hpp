/// @file tokenizer/post_processors.hpp
/// @brief Special tokens around one encoded sequence (HF's TemplateProcessing; ByteLevel adds none).
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <variant>
#include <vector>

namespace polyalpaca::tokenizer {

/// Adds special tokens to one sequence's ids; only runs when the caller asks for special tokens.
class PostProcessor {
public:
    virtual ~PostProcessor() = default;
    virtual void add_special_tokens(std::vector<std::int32_t>& ids) const = 0;
};

/// The "single" template: a list of special-token id lists and the sequence itself ($A).
class TemplatePostProcessor final : public PostProcessor {
public:
    struct Sequence {};
    using Item = std::variant<std::vector<std::int32_t>, Sequence>;

    explicit TemplatePostProcessor(std::vector<Item> single) : single_(std::move(single)) {}

    void add_special_tokens(std::vector<std::int32_t>& ids) const override {
        std::vector<std::int32_t> out;
        out.reserve(ids.size() + 4);
        for (auto const& item : single_) {
            if (auto const* special = std::get_if<std::vector<std::int32_t>>(&item)) {
                out.insert(out.end(), special->begin(), special->end());
            } else {
                out.insert(out.end(), ids.begin(), ids.end());
            }
        }
        ids = std::move(out);
    }

private:
    std::vector<Item> single_;
};

/// ByteLevel (offsets only) and other processors that leave the ids alone.
class NoSpecialTokens final : public PostProcessor {
public:
    void add_special_tokens(std::vector<std::int32_t>&) const override {}
};

class SequencePostProcessor final : public PostProcessor {
public:
    explicit SequencePostProcessor(std::vector<std::shared_ptr<PostProcessor const>> steps)
        : steps_(std::move(steps)) {}
    void add_special_tokens(std::vector<std::int32_t>& ids) const override {
        for (auto const& step : steps_) step->add_special_tokens(ids);
    }

private:
    std::vector<std::shared_ptr<PostProcessor const>> steps_;
};

}  // namespace polyalpaca::tokenizer
