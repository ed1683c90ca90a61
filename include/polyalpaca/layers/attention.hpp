/// @file layers/attention.hpp
/// @brief CausalSelfAttention: fused or separate QKV, ALiBi or rotary positions, grouped-query heads.
#pragma once

#include <cmath>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "polyalpaca/adapters/sites.hpp"
#include "polyalpaca/backend/op_types.hpp"
#include "polyalpaca/core/scratch_stack.hpp"
#include "polyalpaca/core/step_profile.hpp"
#include "polyalpaca/layers/alibi.hpp"
#include "polyalpaca/layers/kv_cache.hpp"
#include "polyalpaca/layers/linear.hpp"

namespace polyalpaca {

/// FusedPerHead: one query_key_value projection, rows laid out [q_h | k_h | v_h] per head (BLOOM, NeoX).
/// Separate: q_proj, k_proj, v_proj (LLaMA).
enum class QkvLayout { FusedPerHead, Separate };
enum class Positional { Alibi, Rotary };

/// Runtime settings that do not drive storage.
struct AttentionOptions {
    double rope_base = 10000.0;
    RopeStyle rope_style = RopeStyle::RotateHalf;
    double adapter_dropout = 0.0;
};

/// HF module names of the projections.
struct AttentionNames {
    std::string qkv;  ///< fused layout only
    std::string q, k, v;  ///< separate layout only
    std::string out;
};

/// An attention layer's shape, named where a model spells it out (a class-type template parameter):
/// `CausalSelfAttention<B, T, AttentionSpec{.hidden = 1024, .heads = 16, .kv_heads = 16}, Adapter>`.
struct AttentionSpec {
    int hidden = 0;
    int heads = 0;
    int kv_heads = 0;  ///< fewer than heads: grouped-query attention
    QkvLayout layout = QkvLayout::FusedPerHead;
    Positional positional = Positional::Alibi;
    int rotary_dim = 0;  ///< rotary only: the dimensions of a head that are rotated
    bool bias = true;    ///< the projections have biases
};

template <class Backend, class T, AttentionSpec Spec, class Adapter>
class CausalSelfAttention {
    static constexpr int Hidden = Spec.hidden, Heads = Spec.heads, KvHeads = Spec.kv_heads;
    static constexpr QkvLayout Layout = Spec.layout;
    static constexpr Positional Pos = Spec.positional;
    static constexpr int RotaryDim = Spec.rotary_dim;
    static constexpr bool HasBias = Spec.bias;
    static_assert(Heads > 0 && KvHeads > 0, "attention needs at least one head and one kv head");
    static_assert(Hidden % Heads == 0, "the number of attention heads must divide the hidden size");
    static_assert(Heads % KvHeads == 0,
                  "the number of kv heads must divide the number of attention heads (grouped-query attention)");
    static_assert(Layout == QkvLayout::Separate || KvHeads == Heads,
                  "a fused query_key_value projection has as many kv heads as heads");

public:
    static constexpr int head_dim = Hidden / Heads;
    static constexpr int kv_width = KvHeads * head_dim;
    static_assert(Pos == Positional::Alibi || (RotaryDim > 0 && RotaryDim <= head_dim && RotaryDim % 2 == 0),
                  "the rotary dimension must be even and within (0, head_dim]");

    using Qkv = Linear<Backend, T, LinearSpec{.in = Hidden, .out = 3 * Hidden, .bias = HasBias}, site::Qkv, Adapter>;
    using Query = Linear<Backend, T, LinearSpec{.in = Hidden, .out = Hidden, .bias = HasBias}, site::Query, Adapter>;
    using Key = Linear<Backend, T, LinearSpec{.in = Hidden, .out = kv_width, .bias = HasBias}, site::Key, Adapter>;
    using Value = Linear<Backend, T, LinearSpec{.in = Hidden, .out = kv_width, .bias = HasBias}, site::Value, Adapter>;
    using Out = Linear<Backend, T, LinearSpec{.in = Hidden, .out = Hidden, .bias = HasBias}, site::AttnOut, Adapter>;

    static constexpr bool fused = Layout == QkvLayout::FusedPerHead;
    static constexpr Index parameter_count =
        (fused ? Qkv::parameter_count : Query::parameter_count + Key::parameter_count + Value::parameter_count) +
        Out::parameter_count;
    static constexpr Index adapter_parameter_count =
        (fused ? Qkv::adapter_parameter_count
               : Query::adapter_parameter_count + Key::adapter_parameter_count + Value::adapter_parameter_count) +
        Out::adapter_parameter_count;

    CausalSelfAttention(AttentionNames const& names, double init_std, AttentionOptions const& options)
        : projections_(make_projections(names, init_std, options.adapter_dropout)),
          out_(names.out, init_std, options.adapter_dropout),
          options_(options) {
        if constexpr (Pos == Positional::Alibi) {
            for (double s : alibi_slopes(Heads)) slopes_.push_back(T(s));
        }
    }

    template <class F>
    void visit_parameters(F&& f) {
        if constexpr (fused) {
            projections_.qkv.visit_parameters(f);
        } else {
            projections_.q.visit_parameters(f);
            projections_.k.visit_parameters(f);
            projections_.v.visit_parameters(f);
        }
        out_.visit_parameters(f);
    }

    /// x (N, D) with N = batch * seq -> out (N, D), memory the caller owns: the block adds it to the residual right
    /// away, and backward does not need it. position_offset shifts rotary positions.
    void forward_into(typename Backend::Context& ctx, View<T const> x, View<T> out, int batch, int seq,
                      Mode const& mode, int position_offset = 0) {
        ProfileRegion region(ctx, Region::Attention);
        batch_ = batch;
        seq_ = seq;
        position_offset_ = position_offset;
        Index const n = x.rows;
        View<T> q, k, v;
        if constexpr (fused) {
            ScratchFrame temps(ctx.temporaries);  // the fused projection lives only until the split
            auto qkv = temps.template take<T>(n, 3 * Hidden);  // (N, 3D)
            projections_.qkv.forward_into(ctx, x, qkv, mode);
            q = q_.ensure(n, Hidden);
            k = k_.ensure(n, Hidden);
            v = v_.ensure(n, Hidden);
            split_fused_qkv(ctx, View<T const>(qkv), q, k, v, Heads, head_dim);
        } else {
            q = projections_.q.forward(ctx, x, mode);  // (N, D)
            k = projections_.k.forward(ctx, x, mode);  // (N, Hkv*hd)
            v = projections_.v.forward(ctx, x, mode);  // (N, Hkv*hd)
        }
        if constexpr (Pos == Positional::Rotary) {
            rope_forward(ctx, q, seq, position_offset, rope_spec(Heads));
            rope_forward(ctx, k, seq, position_offset, rope_spec(KvHeads));
        }
        q_view_ = q;
        k_view_ = k;
        v_view_ = v;
        auto context = context_.ensure(n, Hidden);
        auto probs = probs_.ensure(Index(batch) * Heads * seq, attention_state_cols(ctx, shape()));
        attention_forward(ctx, View<T const>(q), View<T const>(k), View<T const>(v), context, probs, shape(),
                          Pos == Positional::Alibi ? slopes_.data() : nullptr, scale());
        out_.forward_into(ctx, context, out, mode);
    }

    /// Incremental decoding: x (R, D) holds the new positions of each sequence of `seqs` (rows of sequence i
    /// after those of i - 1); their keys and values are written into `cache` and every new row attends to its
    /// sequence's cached positions. -> (R, D). Keeps nothing for backward.
    View<T> forward_cached(typename Backend::Context& ctx, View<T const> x, LayerCache<T> cache,
                           std::span<CachedSequence const> seqs, Mode const& mode) {
        ProfileRegion region(ctx, Region::Attention);
        Index const n = x.rows;
        View<T> q, k, v;
        if constexpr (fused) {
            ScratchFrame temps(ctx.temporaries);  // the fused projection lives only until the split
            auto qkv = temps.template take<T>(n, 3 * Hidden);  // (R, 3D)
            projections_.qkv.forward_into(ctx, x, qkv, mode);
            q = q_.ensure(n, Hidden);
            k = k_.ensure(n, Hidden);
            v = v_.ensure(n, Hidden);
            split_fused_qkv(ctx, View<T const>(qkv), q, k, v, Heads, head_dim);
        } else {
            q = projections_.q.forward(ctx, x, mode);  // (R, D)
            k = projections_.k.forward(ctx, x, mode);  // (R, Hkv*hd)
            v = projections_.v.forward(ctx, x, mode);  // (R, Hkv*hd)
        }
        if constexpr (Pos == Positional::Rotary) {
            Index r = 0;
            for (auto const& s : seqs) {  // sequence rows sit at positions past, past + 1, ...
                rope_forward(ctx, View<T>(q.row(r), s.rows, q.cols), s.rows, s.past, rope_spec(Heads));
                rope_forward(ctx, View<T>(k.row(r), s.rows, k.cols), s.rows, s.past, rope_spec(KvHeads));
                r += s.rows;
            }
        }
        kv_cache_write(ctx, View<T const>(k), cache.keys, seqs);
        kv_cache_write(ctx, View<T const>(v), cache.values, seqs);
        auto context = context_.ensure(n, Hidden);
        attention_decode(ctx, View<T const>(q), View<T const>(cache.keys), View<T const>(cache.values), context, seqs,
                         Heads, KvHeads, head_dim, Pos == Positional::Alibi ? slopes_.data() : nullptr, scale());
        return out_.forward(ctx, context, mode);
    }

    void backward(typename Backend::Context& ctx, View<T const> dy, View<T> dx) {
        ProfileRegion region(ctx, Region::Attention);
        Index const n = dy.rows;
        ScratchFrame temps(ctx.temporaries);
        auto dcontext = temps.template take<T>(n, Hidden);
        auto dq = temps.template take<T>(n, Hidden);
        auto dk = temps.template take<T>(n, kv_width);
        auto dv = temps.template take<T>(n, kv_width);
        for (auto b : {dcontext, dq, dk, dv}) Backend::fill_zero(ctx, b.data, std::size_t(b.size()));
        out_.backward(ctx, dy, dcontext);
        // A backend that can use the forward's output (CUDA's flash kernels: D = rowsum(dcontext * context)) gets it;
        // an opt-in, so a backend that defines only the plain op (e.g. tests/cuda/bf16_sim's) still runs its own.
        if constexpr (requires {
                          attention_backward(ctx, View<T const>(dcontext), View<T const>(context_.view()),
                                             View<T const>(q_view_), View<T const>(k_view_), View<T const>(v_view_),
                                             View<T const>(probs_.view()), dq, dk, dv, shape(), scale());
                      }) {
            attention_backward(ctx, View<T const>(dcontext), View<T const>(context_.view()), View<T const>(q_view_),
                               View<T const>(k_view_), View<T const>(v_view_), View<T const>(probs_.view()), dq, dk,
                               dv, shape(), scale());
        } else {
            attention_backward(ctx, View<T const>(dcontext), View<T const>(q_view_), View<T const>(k_view_),
                               View<T const>(v_view_), View<T const>(probs_.view()), dq, dk, dv, shape(), scale());
        }
        if constexpr (Pos == Positional::Rotary) {
            rope_backward(ctx, dq, seq_, position_offset_, rope_spec(Heads));
            rope_backward(ctx, dk, seq_, position_offset_, rope_spec(KvHeads));
        }
        if constexpr (fused) {
            auto dqkv = temps.template take<T>(n, 3 * Hidden);
            merge_fused_qkv(ctx, View<T const>(dq), View<T const>(dk), View<T const>(dv), dqkv, Heads, head_dim);
            projections_.qkv.backward(ctx, dqkv, dx);
        } else {
            projections_.q.backward(ctx, dq, dx);
            projections_.k.backward(ctx, dk, dx);
            projections_.v.backward(ctx, dv, dx);
        }
    }

    auto& projections() { return projections_; }
    Out& out() { return out_; }

private:
    struct FusedProjections {
        Qkv qkv;
    };
    struct SeparateProjections {
        Query q;
        Key k;
        Value v;
    };
    using Projections = std::conditional_t<fused, FusedProjections, SeparateProjections>;

    static Projections make_projections(AttentionNames const& names, double init_std, double dropout) {
        if constexpr (fused) return FusedProjections{Qkv(names.qkv, init_std, dropout)};
        else return SeparateProjections{Query(names.q, init_std, dropout), Key(names.k, init_std, dropout),
                                        Value(names.v, init_std, dropout)};
    }
    AttentionShape shape() const { return {batch_, seq_, Heads, KvHeads, head_dim}; }
    static T scale() { return T(1.0 / std::sqrt(double(head_dim))); }
    RopeSpec rope_spec(int heads) const { return {heads, head_dim, RotaryDim, options_.rope_base, options_.rope_style}; }

    Projections projections_;
    Out out_;
    AttentionOptions options_;
    std::vector<T> slopes_;
    int batch_ = 0, seq_ = 0, position_offset_ = 0;
    View<T> q_view_, k_view_, v_view_;
    ActivationBuffer<Backend, T> q_, k_, v_, context_, probs_;
};

}  // namespace polyalpaca
