/// @file tests/cuda/ops_parity.cu
/// @brief Every non-GEMM CUDA op against its CPU twin in polyalpaca::cpu, forward and backward, on random inputs
/// with awkward sizes (one row, widths that are not multiples of 32, more rows or elements than one grid pass).
/// Both sides compute in fp32 (statistics in double), so the tolerances of docs/tolerances.md ("CUDA vs CPU") are
/// a few fp32 ulps, and 0 for ops that copy or do one rounding per element. Skips (77) without a GPU.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "cuda_test.cuh"
#include "polyalpaca/backend/cpu_eigen.hpp"
#include "polyalpaca/backend/cuda.cuh"
#include "polyalpaca/core/rng.hpp"

namespace pa = polyalpaca;
namespace cu = polyalpaca::cuda;
using namespace polyalpaca::cuda_test;
using Vec = std::vector<float>;

namespace {

constexpr double fp32_tol = 1e-6;            // one rounding in a longer fp32 expression, or double statistics rounded
constexpr double transcendental_tol = 4e-6;  // tanhf/erff/expf on the device vs glibc, a few ulps

Vec random_vector(pa::Rng& rng, pa::Index n, double scale = 1.0) {
    Vec v(static_cast<std::size_t>(n));
    for (auto& x : v) x = float(scale * rng.normal());
    return v;
}
std::string size_name(pa::Index rows, pa::Index cols) {
    return "(" + std::to_string(rows) + ", " + std::to_string(cols) + ")";
}

struct Dev {  // a device copy of a host vector, viewed as (rows, cols)
    cu::DeviceBuffer<float> buffer;
    pa::Index rows, cols;
    Dev(cu::Context& ctx, Vec const& host, pa::Index r, pa::Index c) : buffer(to_device(ctx, host)), rows(r), cols(c) {}
    pa::View<float> view() { return {buffer.data(), rows, cols}; }
    float* data() { return buffer.data(); }
    Vec host(cu::Context& ctx) { return to_host(ctx, buffer.data(), std::size_t(rows * cols)); }
};
pa::View<float> hv(Vec& v, pa::Index rows, pa::Index cols) { return {v.data(), rows, cols}; }

void check_elementwise(cu::Context& ctx, pa::cpu::Context& cpu, pa::Rng& rng, pa::Index rows, pa::Index cols) {
    pa::Index const n = rows * cols;
    auto const tag = size_name(rows, cols);
    Vec x = random_vector(rng, n, 2.0), y = random_vector(rng, n), dy = random_vector(rng, n),
        dx0 = random_vector(rng, n);
    Dev gx(ctx, x, rows, cols), gy(ctx, y, rows, cols), gdy(ctx, dy, rows, cols);
    auto run = [&](char const* name, double tol, auto cpu_fwd, auto gpu_fwd, auto cpu_bwd, auto gpu_bwd) {
        Vec want = y;
        cpu_fwd(hv(x, rows, cols), hv(want, rows, cols));
        gpu_fwd(gx.view(), gy.view());
        expect_close(gy.host(ctx), want, tol, std::string(name) + " forward " + tag);
        Vec want_dx = dx0;
        Dev gdx(ctx, dx0, rows, cols);
        cpu_bwd(hv(x, rows, cols), hv(dy, rows, cols), hv(want_dx, rows, cols));
        gpu_bwd(gx.view(), gdy.view(), gdx.view());
        expect_close(gdx.host(ctx), want_dx, tol, std::string(name) + " backward " + tag);
    };
#define POLYALPACA_OP_PAIR(op, tol)                                                                                    \
    run(                                                                                                               \
        #op, tol, [&](pa::View<float> a, pa::View<float> b) { pa::cpu::op##_forward<float>(cpu, a, b); },              \
        [&](pa::View<float> a, pa::View<float> b) { cu::op##_forward(ctx, a, b); },                                    \
        [&](pa::View<float> a, pa::View<float> d, pa::View<float> o) { pa::cpu::op##_backward<float>(cpu, a, d, o); }, \
        [&](pa::View<float> a, pa::View<float> d, pa::View<float> o) { cu::op##_backward(ctx, a, d, o); })
    POLYALPACA_OP_PAIR(gelu_tanh, transcendental_tol);
    POLYALPACA_OP_PAIR(gelu_erf, transcendental_tol);
    POLYALPACA_OP_PAIR(silu, transcendental_tol);
#undef POLYALPACA_OP_PAIR

    // swiglu: gate = x, up = dy.
    Vec want = y, dgate = dx0, dup = random_vector(rng, n);
    Dev gdgate(ctx, dgate, rows, cols), gdup(ctx, dup, rows, cols);
    pa::cpu::swiglu_forward<float>(cpu, hv(x, rows, cols), hv(dy, rows, cols), hv(want, rows, cols));
    cu::swiglu_forward(ctx, gx.view(), gdy.view(), gy.view());
    expect_close(gy.host(ctx), want, transcendental_tol, "swiglu forward " + tag);
    Vec dout = random_vector(rng, n);
    Dev gdout(ctx, dout, rows, cols);
    pa::cpu::swiglu_backward<float>(cpu, hv(x, rows, cols), hv(dy, rows, cols), hv(dout, rows, cols),
                                    hv(dgate, rows, cols), hv(dup, rows, cols));
    cu::swiglu_backward(ctx, gx.view(), gdy.view(), gdout.view(), gdgate.view(), gdup.view());
    expect_close(gdgate.host(ctx), dgate, transcendental_tol, "swiglu backward dgate " + tag);
    expect_close(gdup.host(ctx), dup, transcendental_tol, "swiglu backward dup " + tag);

    // add (out aliasing a), accumulate, scale: one rounding per element on both sides.
    Vec sum = x;
    pa::cpu::add<float>(cpu, hv(x, rows, cols), hv(dy, rows, cols), hv(sum, rows, cols));
    Dev gsum(ctx, x, rows, cols);
    cu::add(ctx, gsum.view(), gdy.view(), gsum.view());
    expect_close(gsum.host(ctx), sum, 0, "add (out = a) " + tag);
    pa::cpu::accumulate<float>(cpu, hv(dy, rows, cols), hv(sum, rows, cols));
    cu::accumulate(ctx, gdy.view(), gsum.view());
    expect_close(gsum.host(ctx), sum, 0, "accumulate " + tag);
    pa::cpu::scale<float>(cpu, sum.data(), n, 0.37f);
    cu::scale(ctx, gsum.data(), n, 0.37f);
    expect_close(gsum.host(ctx), sum, 0, "scale " + tag);
}

void check_norms(cu::Context& ctx, pa::cpu::Context& cpu, pa::Rng& rng, pa::Index n, pa::Index dim) {
    auto const tag = size_name(n, dim);
    Vec x = random_vector(rng, n * dim, 3.0), gamma = random_vector(rng, dim), beta = random_vector(rng, dim);
    for (pa::Index i = 0; i < n * dim; ++i) x[std::size_t(i)] += 1.5f;  // a non-zero mean
    Vec dy = random_vector(rng, n * dim), dx0 = random_vector(rng, n * dim), dgamma0 = random_vector(rng, dim),
        dbeta0 = random_vector(rng, dim);
    Dev gx(ctx, x, n, dim), ggamma(ctx, gamma, 1, dim), gbeta(ctx, beta, 1, dim), gdy(ctx, dy, n, dim),
        gy(ctx, Vec(static_cast<std::size_t>(n * dim)), n, dim), gmean(ctx, Vec(static_cast<std::size_t>(n)), n, 1),
        grstd(ctx, Vec(static_cast<std::size_t>(n)), n, 1);
    Vec y(static_cast<std::size_t>(n * dim)), mean(static_cast<std::size_t>(n)), rstd(static_cast<std::size_t>(n));

    pa::cpu::layer_norm_forward<float>(cpu, hv(x, n, dim), gamma.data(), beta.data(), 1e-5f, hv(y, n, dim), mean.data(),
                                       rstd.data());
    cu::layer_norm_forward(ctx, gx.view(), ggamma.data(), gbeta.data(), 1e-5f, gy.view(), gmean.data(), grstd.data());
    expect_close(gy.host(ctx), y, fp32_tol, "layer_norm forward y " + tag);
    expect_close(gmean.host(ctx), mean, fp32_tol, "layer_norm forward mean " + tag);
    expect_close(grstd.host(ctx), rstd, fp32_tol, "layer_norm forward rstd " + tag);
    {
        Vec dx = dx0, dgamma = dgamma0, dbeta = dbeta0;
        Dev gdx(ctx, dx, n, dim), gdgamma(ctx, dgamma, 1, dim), gdbeta(ctx, dbeta, 1, dim);
        pa::cpu::layer_norm_backward<float>(cpu, hv(dy, n, dim), hv(x, n, dim), gamma.data(), mean.data(), rstd.data(),
                                            hv(dx, n, dim), dgamma.data(), dbeta.data());
        // The CPU's saved statistics, so both backwards start from the same numbers.
        Dev cmean(ctx, mean, n, 1), crstd(ctx, rstd, n, 1);
        cu::layer_norm_backward(ctx, gdy.view(), gx.view(), ggamma.data(), cmean.data(), crstd.data(), gdx.view(),
                                gdgamma.data(), gdbeta.data());
        expect_close(gdx.host(ctx), dx, fp32_tol, "layer_norm backward dx " + tag);
        expect_close(gdgamma.host(ctx), dgamma, fp32_tol, "layer_norm backward dgamma " + tag);
        expect_close(gdbeta.host(ctx), dbeta, fp32_tol, "layer_norm backward dbeta " + tag);
    }

    pa::cpu::rms_norm_forward<float>(cpu, hv(x, n, dim), gamma.data(), 1e-6f, hv(y, n, dim), rstd.data());
    cu::rms_norm_forward(ctx, gx.view(), ggamma.data(), 1e-6f, gy.view(), grstd.data());
    expect_close(gy.host(ctx), y, fp32_tol, "rms_norm forward y " + tag);
    expect_close(grstd.host(ctx), rstd, fp32_tol, "rms_norm forward rstd " + tag);
    {
        Vec dx = dx0, dgamma = dgamma0;
        Dev gdx(ctx, dx, n, dim), gdgamma(ctx, dgamma, 1, dim), crstd(ctx, rstd, n, 1);
        pa::cpu::rms_norm_backward<float>(cpu, hv(dy, n, dim), hv(x, n, dim), gamma.data(), rstd.data(), hv(dx, n, dim),
                                          dgamma.data());
        cu::rms_norm_backward(ctx, gdy.view(), gx.view(), ggamma.data(), crstd.data(), gdx.view(), gdgamma.data());
        expect_close(gdx.host(ctx), dx, fp32_tol, "rms_norm backward dx " + tag);
        expect_close(gdgamma.host(ctx), dgamma, fp32_tol, "rms_norm backward dgamma " + tag);
        // dx null: only dgamma is added.
        Dev gdgamma2(ctx, dgamma0, 1, dim);
        cu::rms_norm_backward(ctx, gdy.view(), gx.view(), ggamma.data(), crstd.data(), pa::View<float>{},
                              gdgamma2.data());
        expect_close(gdgamma2.host(ctx), dgamma, fp32_tol, "rms_norm backward dgamma only " + tag);
    }
}

/// add_layer_norm_forward / add_rms_norm_forward: the sum and the norm of it, against the CPU ops, and the sum
/// written in place over x.
void check_residual_norms(cu::Context& ctx, pa::cpu::Context& cpu, pa::Rng& rng, pa::Index n, pa::Index dim) {
    auto const tag = size_name(n, dim);
    Vec x = random_vector(rng, n * dim, 2.0), r = random_vector(rng, n * dim, 3.0), gamma = random_vector(rng, dim),
        beta = random_vector(rng, dim);
    auto const size = static_cast<std::size_t>(n * dim), rows = static_cast<std::size_t>(n);
    Vec sum(size), y(size), mean(rows), rstd(rows);
    Dev gx(ctx, x, n, dim), gr(ctx, r, n, dim), ggamma(ctx, gamma, 1, dim), gbeta(ctx, beta, 1, dim),
        gsum(ctx, Vec(size), n, dim), gy(ctx, Vec(size), n, dim), gmean(ctx, Vec(rows), n, 1), grstd(ctx, Vec(rows), n, 1);

    pa::cpu::add_layer_norm_forward<float>(cpu, hv(x, n, dim), hv(r, n, dim), gamma.data(), beta.data(), 1e-5f,
                                           hv(sum, n, dim), hv(y, n, dim), mean.data(), rstd.data());
    cu::add_layer_norm_forward(ctx, gx.view(), gr.view(), ggamma.data(), gbeta.data(), 1e-5f, gsum.view(), gy.view(),
                               gmean.data(), grstd.data());
    expect_close(gsum.host(ctx), sum, 0, "add_layer_norm forward sum " + tag);
    expect_close(gy.host(ctx), y, fp32_tol, "add_layer_norm forward y " + tag);
    expect_close(gmean.host(ctx), mean, fp32_tol, "add_layer_norm forward mean " + tag);
    expect_close(grstd.host(ctx), rstd, fp32_tol, "add_layer_norm forward rstd " + tag);

    pa::cpu::add_rms_norm_forward<float>(cpu, hv(x, n, dim), hv(r, n, dim), gamma.data(), 1e-6f, hv(sum, n, dim),
                                         hv(y, n, dim), rstd.data());
    cu::add_rms_norm_forward(ctx, gx.view(), gr.view(), ggamma.data(), 1e-6f, gx.view(), gy.view(), grstd.data());
    expect_close(gx.host(ctx), sum, 0, "add_rms_norm forward sum, in place over x " + tag);
    expect_close(gy.host(ctx), y, fp32_tol, "add_rms_norm forward y " + tag);
    expect_close(grstd.host(ctx), rstd, fp32_tol, "add_rms_norm forward rstd " + tag);
}

void check_embedding_rows(cu::Context& ctx, pa::cpu::Context& cpu, pa::Rng& rng, pa::Index vocab, pa::Index dim,
                          pa::Index n) {
    auto const tag = "vocab " + std::to_string(vocab) + ", " + size_name(n, dim);
    std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
    for (auto& id : ids) id = std::int32_t(rng.below(std::uint64_t(vocab)));
    ids[0] = std::int32_t(vocab - 1);
    if (n > 2) ids[n - 1] = ids[1];  // a repeated id
    Vec table = random_vector(rng, vocab * dim), out(static_cast<std::size_t>(n * dim)),
        dout = random_vector(rng, n * dim), dtable = random_vector(rng, vocab * dim);
    Dev gtable(ctx, table, vocab, dim), gout(ctx, out, n, dim), gdout(ctx, dout, n, dim),
        gdtable(ctx, dtable, vocab, dim);
    std::span<std::int32_t const> ids_span(ids);
    pa::cpu::embedding_forward<float>(cpu, ids_span, hv(table, vocab, dim), hv(out, n, dim));
    cu::embedding_forward(ctx, ids_span, gtable.view(), gout.view());
    expect_close(gout.host(ctx), out, 0, "embedding forward " + tag);
    pa::cpu::embedding_backward<float>(cpu, ids_span, hv(dout, n, dim), hv(dtable, vocab, dim));
    cu::embedding_backward(ctx, ids_span, gdout.view(), gdtable.view());
    expect_close(gdtable.host(ctx), dtable, 0, "embedding backward (same order as CPU) " + tag);

    // gather_rows / scatter_add_rows with distinct rows of an (n, dim) matrix.
    std::vector<std::int32_t> rows;
    for (pa::Index r = n - 1; r >= 0; r -= 3) rows.push_back(std::int32_t(r));
    pa::Index const m = pa::Index(rows.size());
    Vec gathered(static_cast<std::size_t>(m * dim)), back = random_vector(rng, n * dim);
    Dev ggathered(ctx, gathered, m, dim), gback(ctx, back, n, dim);
    std::span<std::int32_t const> rows_span(rows);
    pa::cpu::gather_rows<float>(cpu, hv(dout, n, dim), rows_span, hv(gathered, m, dim));
    cu::gather_rows(ctx, gdout.view(), rows_span, ggathered.view());
    expect_close(ggathered.host(ctx), gathered, 0, "gather_rows " + tag);
    pa::cpu::scatter_add_rows<float>(cpu, hv(gathered, m, dim), rows_span, hv(back, n, dim));
    cu::scatter_add_rows(ctx, ggathered.view(), rows_span, gback.view());
    expect_close(gback.host(ctx), back, 0, "scatter_add_rows " + tag);
}

/// The per-column scales of the adapters (IA3, DoRA): scale_columns (with and without a shift, in place),
/// column_dots, row_norms and divide, against the CPU's.
void check_scaling(cu::Context& ctx, pa::cpu::Context& cpu, pa::Rng& rng, pa::Index rows, pa::Index cols) {
    auto const tag = std::to_string(rows) + " x " + std::to_string(cols);
    Vec x = random_vector(rng, rows * cols), b = random_vector(rng, rows * cols), v = random_vector(rng, cols),
        shift = random_vector(rng, cols), y(static_cast<std::size_t>(rows * cols));
    Dev gx(ctx, x, rows, cols), gb(ctx, b, rows, cols), gv(ctx, v, 1, cols), gshift(ctx, shift, 1, cols),
        gy(ctx, y, rows, cols);
    pa::cpu::scale_columns<float>(cpu, hv(x, rows, cols), v.data(), shift.data(), hv(y, rows, cols));
    cu::scale_columns(ctx, gx.view(), gv.view().data, gshift.view().data, gy.view());
    expect_close(gy.host(ctx), y, 0, "scale_columns with a shift " + tag);
    pa::cpu::scale_columns<float>(cpu, hv(x, rows, cols), v.data(), nullptr, hv(x, rows, cols));
    cu::scale_columns(ctx, gx.view(), gv.view().data, nullptr, gx.view());
    expect_close(gx.host(ctx), x, 0, "scale_columns in place " + tag);

    Vec dots = random_vector(rng, cols);
    Dev gdots(ctx, dots, 1, cols);
    pa::cpu::column_dots<float>(cpu, hv(x, rows, cols), hv(b, rows, cols), dots.data());
    cu::column_dots(ctx, gx.view(), gb.view(), gdots.view().data);
    expect_close(gdots.host(ctx), dots, fp32_tol * double(rows), "column_dots " + tag);

    Vec norms(static_cast<std::size_t>(rows));
    Dev gnorms(ctx, norms, 1, rows);
    pa::cpu::row_norms<float>(cpu, hv(b, rows, cols), norms.data());
    cu::row_norms(ctx, gb.view(), gnorms.view().data);
    expect_close(gnorms.host(ctx), norms, fp32_tol * double(cols), "row_norms " + tag);

    Vec ratio(static_cast<std::size_t>(cols));
    Dev gratio(ctx, ratio, 1, cols);
    pa::cpu::divide<float>(cpu, v.data(), shift.data(), ratio.data(), cols);
    cu::divide(ctx, gv.view().data, gshift.view().data, gratio.view().data, cols);
    expect_close(gratio.host(ctx), ratio, fp32_tol, "divide " + tag);
}

void check_qkv_rope(cu::Context& ctx, pa::cpu::Context& cpu, pa::Rng& rng, int batch, int seq, int heads, int head_dim,
                    int rotary_dim, int offset, pa::RopeStyle style) {
    pa::Index const n = pa::Index(batch) * seq, width = pa::Index(heads) * head_dim;
    auto const tag = "batch " + std::to_string(batch) + " seq " + std::to_string(seq) + " heads " +
                     std::to_string(heads) + " head_dim " + std::to_string(head_dim) + " rotary " +
                     std::to_string(rotary_dim) + (style == pa::RopeStyle::RotateHalf ? " half" : " pairs");
    Vec fused = random_vector(rng, n * 3 * width), q(static_cast<std::size_t>(n * width)), k = q, v = q;
    Dev gfused(ctx, fused, n, 3 * width), gq(ctx, q, n, width), gk(ctx, k, n, width), gv(ctx, v, n, width);
    pa::cpu::split_fused_qkv<float>(cpu, hv(fused, n, 3 * width), hv(q, n, width), hv(k, n, width), hv(v, n, width),
                                    heads, head_dim);
    cu::split_fused_qkv(ctx, gfused.view(), gq.view(), gk.view(), gv.view(), heads, head_dim);
    expect_close(gq.host(ctx), q, 0, "split_fused_qkv q " + tag);
    expect_close(gk.host(ctx), k, 0, "split_fused_qkv k " + tag);
    expect_close(gv.host(ctx), v, 0, "split_fused_qkv v " + tag);
    Vec merged(static_cast<std::size_t>(n * 3 * width));
    Dev gmerged(ctx, merged, n, 3 * width);
    pa::cpu::merge_fused_qkv<float>(cpu, hv(q, n, width), hv(k, n, width), hv(v, n, width), hv(merged, n, 3 * width),
                                    heads, head_dim);
    cu::merge_fused_qkv(ctx, gq.view(), gk.view(), gv.view(), gmerged.view(), heads, head_dim);
    expect_close(gmerged.host(ctx), merged, 0, "merge_fused_qkv " + tag);
    expect(merged == fused, "merge_fused_qkv inverts split_fused_qkv " + tag);

    pa::RopeSpec const spec{heads, head_dim, rotary_dim, 10000.0, style};
    pa::cpu::rope_forward<float>(cpu, hv(q, n, width), seq, offset, spec);
    cu::rope_forward(ctx, gq.view(), seq, offset, spec);
    expect_close(gq.host(ctx), q, fp32_tol, "rope forward " + tag);
    pa::cpu::rope_backward<float>(cpu, hv(k, n, width), seq, offset, spec);
    cu::rope_backward(ctx, gk.view(), seq, offset, spec);
    expect_close(gk.host(ctx), k, fp32_tol, "rope backward " + tag);
}

void check_dropout(cu::Context& ctx, pa::cpu::Context& cpu, pa::Rng& rng, pa::Index rows, pa::Index cols, float p) {
    pa::Index const n = rows * cols;
    auto const tag = size_name(rows, cols) + " p " + std::to_string(p);
    Vec x = random_vector(rng, n), dy = random_vector(rng, n), dx0 = random_vector(rng, n);
    Dev gx(ctx, x, rows, cols), gy(ctx, Vec(static_cast<std::size_t>(n)), rows, cols),
        gmask(ctx, Vec(static_cast<std::size_t>(n)), rows, cols);
    pa::Rng drop_rng(7), reference(7);
    cu::dropout_forward(ctx, gx.view(), gy.view(), gmask.view(), p, drop_rng);
    if (p > 0) reference.next_u64();
    expect(drop_rng.next_u64() == reference.next_u64(),
           "dropout_forward draws exactly one seed (none at p = 0) " + tag);
    Vec const mask = gmask.host(ctx), y = gy.host(ctx);
    float const keep = 1.0f / (1.0f - p);
    pa::Index dropped = 0;
    bool values_ok = true, y_ok = true;
    for (pa::Index i = 0; i < n; ++i) {
        float const m = mask[std::size_t(i)];
        dropped += m == 0.0f;
        values_ok = values_ok && (m == 0.0f || m == keep);
        y_ok = y_ok && y[std::size_t(i)] == x[std::size_t(i)] * m;
    }
    expect(values_ok, "dropout mask is 0 or 1 / (1 - p) " + tag);
    expect(y_ok, "dropout y = x * mask exactly " + tag);
    double const rate = double(dropped) / double(n);
    double const sigma = std::sqrt(double(p) * (1.0 - p) / double(n));
    std::printf("  dropout %-40s drop rate %.5f (p %.3f, 5 sigma %.5f)\n", tag.c_str(), rate, double(p), 5 * sigma);
    expect(std::abs(rate - double(p)) <= 5 * sigma + 1e-12, "dropout drop rate within 5 sigma of p " + tag);
    // The same seed gives the same mask; y may alias x.
    pa::Rng again(7);
    Dev galias(ctx, x, rows, cols), gmask2(ctx, Vec(static_cast<std::size_t>(n)), rows, cols);
    cu::dropout_forward(ctx, galias.view(), galias.view(), gmask2.view(), p, again);
    expect(gmask2.host(ctx) == mask && galias.host(ctx) == y, "dropout is reproducible and y may alias x " + tag);
    // Backward against the CPU op on the same mask.
    Vec dx = dx0;
    Dev gdx(ctx, dx0, rows, cols), gdy(ctx, dy, rows, cols);
    Vec mask_copy = mask;
    pa::cpu::dropout_backward<float>(cpu, hv(dy, rows, cols), hv(mask_copy, rows, cols), hv(dx, rows, cols));
    cu::dropout_backward(ctx, gdy.view(), gmask.view(), gdx.view());
    expect_close(gdx.host(ctx), dx, fp32_tol, "dropout backward " + tag);
}

void check_optim(cu::Context& ctx, pa::cpu::Context& cpu, pa::Rng& rng, pa::Index n) {
    auto const tag = "n " + std::to_string(n);
    Vec param = random_vector(rng, n), grad = random_vector(rng, n, 0.1), m = random_vector(rng, n, 0.01),
        v = random_vector(rng, n, 0.01);
    for (auto& x : v) x = x * x;
    Dev gparam(ctx, param, n, 1), ggrad(ctx, grad, n, 1), gm(ctx, m, n, 1), gv(ctx, v, n, 1);
    for (long step : {1L, 2L, 50L}) {
        pa::cpu::adamw_update<float>(cpu, param.data(), grad.data(), m.data(), v.data(), n,
                                     {1e-3, 0.9, 0.999, 1e-8, 0.01, step});
        cu::adamw_update(ctx, gparam.data(), ggrad.data(), gm.data(), gv.data(), n,
                         {1e-3, 0.9, 0.999, 1e-8, 0.01, step});
    }
    expect_close(gparam.host(ctx), param, fp32_tol, "adamw_update param after 3 steps " + tag);
    expect_close(gm.host(ctx), m, fp32_tol, "adamw_update exp_avg " + tag);
    expect_close(gv.host(ctx), v, fp32_tol, "adamw_update exp_avg_sq " + tag);
    // The consuming update (clipping's scale applied as the gradients are read, then zeroed) against the CPU's.
    Vec consumed = grad;
    Dev gconsumed(ctx, grad, n, 1);
    pa::cpu::adamw_update_consuming<float>(cpu, param.data(), consumed.data(), m.data(), v.data(), n,
                                           {1e-3, 0.9, 0.999, 1e-8, 0.01, 51}, 0.25f);
    cu::adamw_update_consuming(ctx, gparam.data(), gconsumed.data(), gm.data(), gv.data(), n,
                               {1e-3, 0.9, 0.999, 1e-8, 0.01, 51}, 0.25f);
    expect_close(gparam.host(ctx), param, fp32_tol, "adamw_update_consuming param " + tag);
    expect_close(gv.host(ctx), v, fp32_tol, "adamw_update_consuming exp_avg_sq " + tag);
    expect(gconsumed.host(ctx) == Vec(std::size_t(n), 0.f), "adamw_update_consuming leaves zero gradients " + tag);

    double const want = pa::cpu::squared_norm<float>(cpu, grad.data(), n);
    double const got = cu::squared_norm(ctx, ggrad.data(), n);
    double const again = cu::squared_norm(ctx, ggrad.data(), n);
    double const error = std::abs(got - want) / want;
    std::printf("  %-48s relative error %.3e (tolerance 1.0e-12)\n", ("squared_norm " + tag).c_str(), error);
    expect(error <= 1e-12, "squared_norm " + tag + ": relative error " + std::to_string(error));
    expect(got == again, "squared_norm is deterministic " + tag);
}

void check_errors(cu::Context& ctx) {
    std::vector<std::int32_t> ids{0, 5};
    Dev table(ctx, Vec(10), 5, 2), out(ctx, Vec(4), 2, 2);
    expect_error([&] { cu::embedding_forward(ctx, std::span<std::int32_t const>(ids), table.view(), out.view()); },
                 "token id 5 at position 1 is outside the vocabulary [0, 5)", "embedding_forward bad id");
    std::vector<std::int32_t> twice{1, 1};
    expect_error([&] { cu::scatter_add_rows(ctx, out.view(), std::span<std::int32_t const>(twice), table.view()); },
                 "appears more than once", "scatter_add_rows repeated row");
    expect_error([&] { cu::add(ctx, table.view(), out.view(), table.view()); }, "add: b: expected shape (5, 2)",
                 "add shape mismatch");
    pa::Rng rng(1);
    expect_error([&] { cu::dropout_forward(ctx, out.view(), out.view(), out.view(), 1.0f, rng); },
                 "p must be in [0, 1)", "dropout p = 1");
}

}  // namespace

int main() {
    if (no_gpu("cuda_ops_parity")) return 77;
    cu::Context ctx;
    pa::cpu::Context cpu(1);
    pa::Rng rng(20240611);
    for (auto [rows, cols] : {std::pair<pa::Index, pa::Index>{1, 1}, {3, 33}, {129, 257}, {2049, 2100}})
        check_elementwise(ctx, cpu, rng, rows, cols);
    for (auto [n, dim] : {std::pair<pa::Index, pa::Index>{1, 1}, {1, 37}, {7, 1000}, {300, 2053}, {16500, 3}})
        check_norms(ctx, cpu, rng, n, dim);
    for (auto [n, dim] : {std::pair<pa::Index, pa::Index>{1, 1}, {7, 1000}, {2048, 1024}, {300, 4096}})
        check_residual_norms(ctx, cpu, rng, n, dim);
    check_embedding_rows(ctx, cpu, rng, 3, 5, 1);
    check_embedding_rows(ctx, cpu, rng, 50, 37, 200);
    check_embedding_rows(ctx, cpu, rng, 1000, 300, 4100);
    for (auto style : {pa::RopeStyle::RotateHalf, pa::RopeStyle::AdjacentPairs}) {
        check_qkv_rope(ctx, cpu, rng, 1, 1, 1, 2, 2, 0, style);
        check_qkv_rope(ctx, cpu, rng, 2, 5, 3, 10, 6, 7, style);
        check_qkv_rope(ctx, cpu, rng, 3, 77, 4, 64, 64, 0, style);
    }
    for (auto [rows, cols] : {std::pair<pa::Index, pa::Index>{1, 1}, {7, 96}, {512, 3072}, {3000, 5}})
        check_scaling(ctx, cpu, rng, rows, cols);
    check_dropout(ctx, cpu, rng, 1, 1, 0.0f);
    check_dropout(ctx, cpu, rng, 37, 41, 0.0f);
    check_dropout(ctx, cpu, rng, 301, 333, 0.1f);
    check_dropout(ctx, cpu, rng, 999, 1001, 0.5f);
    for (pa::Index n : {1, 255, 257, 100003, 5000011}) check_optim(ctx, cpu, rng, n);
    check_errors(ctx);
    return finish("cuda_ops_parity");
}
