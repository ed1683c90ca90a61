/// @file layers/embedding.hpp
/// @brief Embedding<Vocab, Dim>: token ids to vectors; its table can double as a tied LM head.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "polyalpaca/core/activation_buffer.hpp"
#include "polyalpaca/core/parameter.hpp"
#include "polyalpaca/core/step_profile.hpp"
#include "polyalpaca/layers/mode.hpp"

namespace polyalpaca {

template <class Backend, class T, int Vocab, int Dim, Role BaseRole = Role::Trainable>
class Embedding {
    static_assert(Vocab > 0 && Dim > 0, "an embedding needs a positive vocabulary and width");

public:
    static constexpr Index parameter_count = Index(Vocab) * Dim;

    Embedding(std::string const& module, double init_std)
        : table_(module + ".weight", Vocab, Dim, BaseRole, Init::normal(init_std)) {}

    template <class F>
    void visit_parameters(F&& f) {
        f(table_);
    }

    /// ids (N) -> (N, D); an id outside [0, Vocab) throws, naming it and its position.
    View<T> forward(typename Backend::Context& ctx, std::span<std::int32_t const> ids, Mode const&) {
        ProfileRegion region(ctx, Region::Embedding);
        ids_ = ids;
        auto y = y_.ensure(Index(ids.size()), Dim);
        embedding_forward(ctx, ids, table_.values(), y);
        return y;
    }

    void backward(typename Backend::Context& ctx, View<T const> dy) {
        ProfileRegion region(ctx, Region::Embedding);
        if (table_.grad) embedding_backward(ctx, ids_, dy, table_.grads());
    }

    Parameter<T>& table() { return table_; }

private:
    Parameter<T> table_;
    std::span<std::int32_t const> ids_;
    ActivationBuffer<Backend, T> y_;
};

}  // namespace polyalpaca
