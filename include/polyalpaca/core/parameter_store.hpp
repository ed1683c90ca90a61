/// @file core/parameter_store.hpp
/// @brief One contiguous arena per role: frozen weights, trainable weights and (once training starts) their gradients.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/parameter.hpp"
#include "polyalpaca/core/rng.hpp"

namespace polyalpaca {

/// Owns the memory of every Parameter of a network. Trainable values are contiguous, and so are their
/// gradients, in the same order: the optimizer, clipping and (later) all-reduce each see one flat buffer.
template <class Backend, class T>
class ParameterStore {
public:
    using Buffer = typename Backend::template Buffer<T>;

    /// Lays out `params` (visited in a fixed order) and points each one at its slot.
    void bind(std::vector<Parameter<T>*> params) {
        params_ = std::move(params);
        Index frozen = 0, trainable = 0;
        for (auto* p : params_) (p->trainable() ? trainable : frozen) += p->size();
        frozen_ = Buffer(std::size_t(frozen));
        frozen_count_ = frozen;
        trainable_ = Buffer(std::size_t(trainable));
        grads_ = Buffer();
        gradients_zero_ = false;
        Index frozen_at = 0, trainable_at = 0;
        for (auto* p : params_) {
            p->grad = nullptr;  // allocate_gradients() points the trainable ones at their slots
            if (p->trainable()) {
                p->value = trainable_.data() + trainable_at;
                trainable_at += p->size();
            } else {
                p->value = frozen_.data() + frozen_at;
                frozen_at += p->size();
            }
        }
    }

    /// The gradient arena, in the trainable arena's order, made on first use (forward_backward, zero_grads,
    /// gradients()): a network that only runs forward (an evaluator, generate()) never holds it.
    void allocate_gradients() {
        if (gradients_allocated()) return;
        grads_ = Buffer(std::size_t(trainable_count()));
        gradients_zero_ = false;
        Index at = 0;
        for (auto* p : params_)
            if (p->trainable()) {
                p->grad = grads_.data() + at;
                at += p->size();
            }
    }
    bool gradients_allocated() const { return trainable_count() == 0 || grads_.size() > 0; }

    /// Which parameters initialise() draws.
    enum class Which { All, Trainable };

    /// Fills every parameter (or every trainable one) from its Init. Each parameter draws from a generator seeded
    /// by `seed` and its name, so a weight's initial value does not depend on which other weights (adapters)
    /// exist, nor on threads, nor on whether it is drawn again later.
    void initialise(typename Backend::Context& ctx, std::uint64_t seed, Which which = Which::All) {
#pragma omp parallel for schedule(dynamic) if (total_count() >= (Index(1) << 20))
        for (std::size_t i = 0; i < params_.size(); ++i) {
            auto* p = params_[i];
            if (which == Which::Trainable && !p->trainable()) continue;
            Rng rng(seed ^ name_hash(p->name));
            std::vector<T> host(std::size_t(p->size()), T(0));
            switch (p->init.kind) {
                case Init::Kind::Zeros: break;
                case Init::Kind::Ones: std::fill(host.begin(), host.end(), T(1)); break;
                case Init::Kind::Normal: rng.fill_normal(host.data(), host.size(), p->init.scale); break;
                case Init::Kind::Uniform:
                    for (auto& x : host) x = T(rng.uniform(-p->init.scale, p->init.scale));
                    break;
                case Init::Kind::RowNorms: continue;  // below, once every weight it reads is in place
            }
            Backend::upload(ctx, host.data(), p->value, host.size());
        }
        initialise_derived(ctx, which);
    }

    /// Draws the parameters derived from other weights (Init::Kind::RowNorms) again from those weights' values:
    /// after initialise(), and whenever the base weights change (a checkpoint loaded into them).
    void initialise_derived(typename Backend::Context& ctx, Which which = Which::All) {
        for (auto* p : params_) {
            if (p->init.kind != Init::Kind::RowNorms || (which == Which::Trainable && !p->trainable())) continue;
            auto const* source = find(p->init.source);
            require(source != nullptr && source->rows == p->size(), p->name, " starts as the row norms of ",
                    p->init.source, ", which the model lacks or whose rows do not match");
            std::vector<T> values(std::size_t(source->size()));
            Backend::download(ctx, source->value, values.data(), values.size());
            std::vector<T> norms(std::size_t(p->size()));
            for (Index r = 0; r < source->rows; ++r) {
                double sum = 0;
                for (Index c = 0; c < source->cols; ++c) {
                    double const v = double(values[std::size_t(r * source->cols + c)]);
                    sum += v * v;
                }
                norms[std::size_t(r)] = T(std::sqrt(sum));
            }
            Backend::upload(ctx, norms.data(), p->value, norms.size());
        }
    }

    void zero_grads(typename Backend::Context& ctx) {
        allocate_gradients();
        Backend::fill_zero(ctx, grads_.data(), grads_.size());
        gradients_zero_ = true;
    }
    /// zero_grads() unless the gradients are known to be zero already: an optimizer step that zeroes them as it reads
    /// them (AdamW::step_consuming) calls mark_gradients_zero(); anything that adds to them, mark_gradients_written().
    void zero_grads_if_written(typename Backend::Context& ctx) {
        if (!gradients_zero_) zero_grads(ctx);
    }
    /// Called before anything adds to the gradients: makes the arena if there is none yet.
    void mark_gradients_written() {
        allocate_gradients();
        gradients_zero_ = false;
    }
    void mark_gradients_zero() { gradients_zero_ = true; }

    /// Moves the frozen weights `keep(p)` selects into a new, smaller arena (their values copied) and frees the old
    /// one; every other frozen weight goes to `elsewhere(p)`, called while its old values are still there, which
    /// must point p->value at its new home (a backend keeping frozen matrices in bf16 only:
    /// backend/cuda/frozen_bf16.cuh). Returns the frozen values left in the arena.
    template <class Keep, class Elsewhere>
    Index repack_frozen(typename Backend::Context& ctx, Keep&& keep, Elsewhere&& elsewhere) {
        Index kept = 0;
        for (auto* p : params_)
            if (!p->trainable() && keep(*p)) kept += p->size();
        auto arena = Buffer(std::size_t(kept));
        Index at = 0;
        for (auto* p : params_) {
            if (p->trainable()) continue;
            if (keep(*p)) {
                Backend::copy(ctx, static_cast<T const*>(p->value), arena.data() + at, std::size_t(p->size()));
                p->value = arena.data() + at;
                at += p->size();
            } else {
                elsewhere(*p);
            }
        }
        Backend::synchronize(ctx);  // the copies are done before the old arena goes
        frozen_ = std::move(arena);
        return kept;
    }

    std::vector<Parameter<T>*> const& parameters() const { return params_; }
    Parameter<T>* find(std::string const& name) const {
        for (auto* p : params_)
            if (p->name == name) return p;
        return nullptr;
    }

    T* trainable_values() { return trainable_.data(); }
    T* gradients() {
        allocate_gradients();
        return grads_.data();
    }
    Index trainable_count() const { return Index(trainable_.size()); }
    /// Every frozen value, wherever the backend keeps it (repack_frozen may have moved some out of the arena).
    Index frozen_count() const { return frozen_count_; }
    Index total_count() const { return trainable_count() + frozen_count(); }

private:
    static std::uint64_t name_hash(std::string const& name) {  // FNV-1a
        std::uint64_t h = 0xcbf29ce484222325ull;
        for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ull;
        return h;
    }

    std::vector<Parameter<T>*> params_;
    Buffer frozen_;
    Index frozen_count_ = 0;
    Buffer trainable_;
    Buffer grads_;
    bool gradients_zero_ = false;  ///< known to be all zero (false: unknown)
};

}  // namespace polyalpaca
