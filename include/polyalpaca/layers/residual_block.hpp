/// @file layers/residual_block.hpp
/// @brief The two transformer block shapes: sequential pre-norm residuals (BLOOM, LLaMA) and
///        GPT-NeoX's parallel attention + MLP residual.
#pragma once

#include <cstddef>
#include <span>

#include "polyalpaca/core/activation_buffer.hpp"
#include "polyalpaca/core/scratch_stack.hpp"
#include "polyalpaca/core/step_profile.hpp"
#include "polyalpaca/layers/kv_cache.hpp"
#include "polyalpaca/layers/mode.hpp"

namespace polyalpaca {

/// Parts names a family's layer types and builds them for block `index`: Parts::Norm, Parts::Attention,
/// Parts::Mlp, and static make_norm1 / make_norm2 / make_attention / make_mlp(index, options).
/// BlockLayers owns the four layers; the block shapes below differ only in how they wire them.
template <class Parts>
class BlockLayers {
public:
    using Backend = typename Parts::Backend;
    using T = typename Parts::Scalar;
    using Norm = typename Parts::Norm;
    using Attention = typename Parts::Attention;
    using Mlp = typename Parts::Mlp;
    static constexpr auto parameter_count =
        2 * Norm::parameter_count + Attention::parameter_count + Mlp::parameter_count;
    static constexpr auto adapter_parameter_count = Attention::adapter_parameter_count + Mlp::adapter_parameter_count;

    BlockLayers(int index, typename Parts::Options const& options)
        : norm1_(Parts::make_norm1(index, options)),
          attention_(Parts::make_attention(index, options)),
          norm2_(Parts::make_norm2(index, options)),
          mlp_(Parts::make_mlp(index, options)) {}

    template <class F>
    void visit_parameters(F&& f) {
        norm1_.visit_parameters(f);
        attention_.visit_parameters(f);
        norm2_.visit_parameters(f);
        mlp_.visit_parameters(f);
    }

    Attention& attention() { return attention_; }
    Mlp& mlp() { return mlp_; }

protected:
    Norm norm1_;
    Attention attention_;
    Norm norm2_;
    Mlp mlp_;
};

/// h = x + attention(norm1(x));  y = h + mlp(norm2(h)), with h and norm2(h) from one fused op.
template <class Parts>
class SequentialBlock : public BlockLayers<Parts> {
public:
    using Backend = typename Parts::Backend;
    using T = typename Parts::Scalar;
    using BlockLayers<Parts>::BlockLayers;

    View<T> forward(typename Backend::Context& ctx, View<T const> x, int batch, int seq, Mode const& mode) {  // (N, D)
        ProfileRegion region(ctx, Region::Residual);
        auto h = h_.ensure(x.rows, x.cols);
        auto y = y_.ensure(x.rows, x.cols);
        ScratchFrame temps(ctx.temporaries);  // the attention's, then the MLP's output: each lives until its add
        auto branch = temps.template take<T>(x.rows, x.cols);
        attention_.forward_into(ctx, norm1_.forward(ctx, x, mode), branch, batch, seq, mode);
        auto n2 = norm2_.forward_residual(ctx, x, View<T const>(branch), h, mode);
        mlp_.forward_into(ctx, n2, branch, mode);
        add(ctx, View<T const>(h), View<T const>(branch), y);
        return y;
    }

    /// forward for incremental decoding (layers/kv_cache.hpp): the new rows of `seqs` against their cache.
    View<T> forward_cached(typename Backend::Context& ctx, View<T const> x, LayerCache<T> cache,
                           std::span<CachedSequence const> seqs, Mode const& mode) {  // (R, D)
        ProfileRegion region(ctx, Region::Residual);
        auto a = attention_.forward_cached(ctx, norm1_.forward(ctx, x, mode), cache, seqs, mode);
        auto h = h_.ensure(x.rows, x.cols);
        auto y = y_.ensure(x.rows, x.cols);
        ScratchFrame temps(ctx.temporaries);
        auto m = temps.template take<T>(x.rows, x.cols);
        mlp_.forward_into(ctx, norm2_.forward_residual(ctx, x, View<T const>(a), h, mode), m, mode);
        add(ctx, View<T const>(h), View<T const>(m), y);
        return y;
    }

    /// Adds the gradient w.r.t. x into dx.
    void backward(typename Backend::Context& ctx, View<T const> dy, View<T> dx) {
        ProfileRegion region(ctx, Region::Residual);
        ScratchFrame temps(ctx.temporaries);
        auto dh = temps.template take<T>(dy.rows, dy.cols);
        auto dn = temps.template take<T>(dy.rows, dy.cols);
        Backend::fill_zero(ctx, dn.data, std::size_t(dn.size()));
        mlp_.backward(ctx, dy, dn);
        Backend::fill_zero(ctx, dh.data, std::size_t(dh.size()));
        accumulate(ctx, dy, dh);
        norm2_.backward(ctx, dn, dh);
        Backend::fill_zero(ctx, dn.data, std::size_t(dn.size()));
        attention_.backward(ctx, dh, dn);
        accumulate(ctx, View<T const>(dh), dx);
        norm1_.backward(ctx, dn, dx);
    }

private:
    using BlockLayers<Parts>::norm1_, BlockLayers<Parts>::attention_, BlockLayers<Parts>::norm2_, BlockLayers<Parts>::mlp_;
    ActivationBuffer<Backend, T> h_, y_;
};

/// y = x + attention(norm1(x)) + mlp(norm2(x))   (GPT-NeoX use_parallel_residual)
template <class Parts>
class ParallelBlock : public BlockLayers<Parts> {
public:
    using Backend = typename Parts::Backend;
    using T = typename Parts::Scalar;
    using BlockLayers<Parts>::BlockLayers;

    View<T> forward(typename Backend::Context& ctx, View<T const> x, int batch, int seq, Mode const& mode) {  // (N, D)
        ProfileRegion region(ctx, Region::Residual);
        auto y = y_.ensure(x.rows, x.cols);
        ScratchFrame temps(ctx.temporaries);  // the attention's, then the MLP's output: each lives until its add
        auto branch = temps.template take<T>(x.rows, x.cols);
        attention_.forward_into(ctx, norm1_.forward(ctx, x, mode), branch, batch, seq, mode);
        add(ctx, x, View<T const>(branch), y);
        mlp_.forward_into(ctx, norm2_.forward(ctx, x, mode), branch, mode);
        accumulate(ctx, View<T const>(branch), y);
        return y;
    }

    /// forward for incremental decoding (layers/kv_cache.hpp): the new rows of `seqs` against their cache.
    View<T> forward_cached(typename Backend::Context& ctx, View<T const> x, LayerCache<T> cache,
                           std::span<CachedSequence const> seqs, Mode const& mode) {  // (R, D)
        ProfileRegion region(ctx, Region::Residual);
        auto a = attention_.forward_cached(ctx, norm1_.forward(ctx, x, mode), cache, seqs, mode);
        auto y = y_.ensure(x.rows, x.cols);
        add(ctx, x, View<T const>(a), y);
        ScratchFrame temps(ctx.temporaries);
        auto m = temps.template take<T>(x.rows, x.cols);
        mlp_.forward_into(ctx, norm2_.forward(ctx, x, mode), m, mode);
        accumulate(ctx, View<T const>(m), y);
        return y;
    }

    void backward(typename Backend::Context& ctx, View<T const> dy, View<T> dx) {
        ProfileRegion region(ctx, Region::Residual);
        ScratchFrame temps(ctx.temporaries);
        auto dn = temps.template take<T>(dy.rows, dy.cols);
        accumulate(ctx, dy, dx);
        Backend::fill_zero(ctx, dn.data, std::size_t(dn.size()));
        attention_.backward(ctx, dy, dn);
        norm1_.backward(ctx, dn, dx);
        Backend::fill_zero(ctx, dn.data, std::size_t(dn.size()));
        mlp_.backward(ctx, dy, dn);
        norm2_.backward(ctx, dn, dx);
    }

private:
    using BlockLayers<Parts>::norm1_, BlockLayers<Parts>::attention_, BlockLayers<Parts>::norm2_, BlockLayers<Parts>::mlp_;
    ActivationBuffer<Backend, T> y_;
};

}  // namespace polyalpaca
