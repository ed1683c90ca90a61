/// @file tests/unit/cpu_bf16.cpp
/// @brief GemmMath::Bf16 on the CPU (backend/cpu/bf16_gemm.hpp): rounding to bf16; linear forward and backward equal
///        fp32 products of the rounded operands (what bf16 operands with fp32 accumulation compute); attention equals
///        attention in double on the rounded operands; the weights' working copies follow every write (upload, copy,
///        AdamW, a freed and reused buffer); a model's logits, gradients and a short training run within
///        docs/tolerances.md's bf16 bounds of fp32. oneDNN runs the products on whatever the CPU has (bf16 units or
///        emulation on AVX-512); without either they are skipped.
#include <polyalpaca/data/markov_stream.hpp>
#include <polyalpaca/polyalpaca.hpp>
#include <polyalpaca/train/step.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <type_traits>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/relative_error.hpp"

namespace pa = polyalpaca;

namespace {

float bits_to_float(std::uint16_t bits) {
    std::uint32_t const wide = std::uint32_t(bits) << 16;
    float f;
    std::memcpy(&f, &wide, sizeof f);
    return f;
}

float from_bits(std::uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

/// x rounded to bf16 and widened back to fp32, as a matrix.
pa::Matrix<float> rounded(pa::Matrix<float> const& x) {
    pa::Matrix<float> out(x.rows(), x.cols());
    for (pa::Index i = 0; i < x.size(); ++i) out.data()[i] = bits_to_float(pa::cpu::detail::to_bf16_bits(x.data()[i]));
    return out;
}

double max_abs(pa::Matrix<float> const& a) { return double(a.cwiseAbs().maxCoeff()); }

/// The fp32 context that computes the references (Eigen over the BLAS).
pa::cpu::Context fp32_context() { return pa::cpu::Context(); }

/// False, with a warning, where oneDNN cannot multiply bf16 matrices: a build without it, or a CPU without AVX-512.
bool bf16_built() {
    if (!pa::cpu::bf16_gemms_runnable())
        WARN("no bf16 matmul here (" << pa::cpu::bf16_gemms_missing() << "): nothing to check");
    return pa::cpu::bf16_gemms_runnable();
}

pa::cpu::Context bf16_context() {
    pa::cpu::Context ctx;
    ctx.set_gemm_math(pa::cpu::GemmMath::Bf16);
    return ctx;
}

}  // namespace

TEST_CASE("bf16 rounding is to nearest even and keeps infinities and NaN", "[unit][cpu_bf16]") {
    using pa::cpu::detail::to_bf16_bits;
    CHECK(to_bf16_bits(1.0f) == 0x3f80);
    CHECK(to_bf16_bits(-2.0f) == 0xc000);
    CHECK(to_bf16_bits(from_bits(0x3f808000)) == 0x3f80);  // halfway, even below: down
    CHECK(to_bf16_bits(from_bits(0x3f818000)) == 0x3f82);  // halfway, odd below: up
    CHECK(to_bf16_bits(from_bits(0x3f808001)) == 0x3f81);  // above halfway: up
    CHECK(to_bf16_bits(from_bits(0x3f807fff)) == 0x3f80);  // below halfway: down
    CHECK(to_bf16_bits(std::numeric_limits<float>::infinity()) == 0x7f80);
    CHECK(to_bf16_bits(-0.0f) == 0x8000);
    CHECK(to_bf16_bits(std::numeric_limits<float>::max()) == 0x7f80);  // rounds up into infinity, as RNE does
    CHECK(std::isnan(bits_to_float(to_bf16_bits(std::numeric_limits<float>::quiet_NaN()))));
    CHECK(std::isnan(bits_to_float(to_bf16_bits(from_bits(0x7f800001)))));  // a NaN whose payload would round away

    // The threaded rounding agrees with the scalar one on a long array (several chunks, a ragged end).
    std::vector<float> values(200'003);
    pa::Rng rng(5);
    rng.fill_normal(values.data(), values.size(), 3.0f);
    std::vector<std::uint16_t> out(values.size());
    pa::cpu::round_to_bf16(2, values.data(), out.data(), pa::Index(values.size()));
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < values.size(); ++i) wrong += out[i] != to_bf16_bits(values[i]);
    CHECK(wrong == 0);
}

TEST_CASE("bf16 linear forward and backward equal fp32 products of the rounded operands", "[unit][cpu_bf16]") {
    if (!bf16_built()) return;
    auto ctx = bf16_context();
    auto ref_ctx = fp32_context();
    pa::Index const n = 37, in = 48, out = 80;  // every side >= bf16_min_side, none a multiple of the other
    auto const x = pa::testing::random_matrix<float>(n, in, 1);
    auto const w = pa::testing::random_matrix<float>(out, in, 2);
    auto const dy = pa::testing::random_matrix<float>(n, out, 3);
    auto const bias = pa::testing::random_matrix<float>(1, out, 4);
    auto const rx = rounded(x), rw = rounded(w), rdy = rounded(dy);
    // Weights live in CpuEigen buffers, as layers' do (the working copies key on their addresses).
    pa::CpuEigen::Buffer<float> weight(std::size_t(w.size()));
    pa::CpuEigen::upload(ctx, w.data(), weight.data(), weight.size());
    pa::View<float const> const wv(weight.data(), out, in);

    SECTION("forward, written and accumulated, with a bias") {
        pa::Matrix<float> y = pa::Matrix<float>::Constant(n, out, 7.0f), expected(n, out);
        pa::cpu::linear_forward(ctx, pa::view<float>(x), wv, bias.data(), pa::view<float>(y));
        pa::cpu::linear_forward(ref_ctx, pa::view<float>(rx), pa::view<float>(rw), bias.data(),
                                pa::view<float>(expected));
        // fp32 sums of the same products in another order: a few ulps of the largest term's scale.
        CHECK(max_abs(y - expected) <= 1e-5 * max_abs(expected));
        pa::Matrix<float> const before = y;
        pa::cpu::linear_forward(ctx, pa::view<float>(x), wv, nullptr, pa::view<float>(y), true);
        pa::cpu::linear_forward(ref_ctx, pa::view<float>(rx), pa::view<float>(rw), nullptr, pa::view<float>(expected),
                                true);
        CHECK(max_abs(y - expected) <= 2e-5 * max_abs(expected));
        CHECK(max_abs(y - before) > 0.1);
        // Unrounded fp32 differs by the rounding: far more than the summation order above.
        pa::Matrix<float> exact(n, out);
        pa::cpu::linear_forward(ref_ctx, pa::view<float>(x), pa::view<float>(w), nullptr, pa::view<float>(exact));
        pa::Matrix<float> y_once(n, out);
        pa::cpu::linear_forward(ctx, pa::view<float>(x), wv, nullptr, pa::view<float>(y_once));
        CHECK(max_abs(y_once - exact) > 1e-4 * max_abs(exact));
        CHECK(max_abs(y_once - exact) <= 1.5e-2 * max_abs(exact));  // docs/tolerances.md, linear in Bf16
    }
    SECTION("backward adds dx = dy W, dW = dy^T x and the bias gradient") {
        pa::Matrix<float> dx = pa::Matrix<float>::Constant(n, in, 0.5f),
                          dw = pa::Matrix<float>::Constant(out, in, -1.0f);
        pa::Matrix<float> db = pa::Matrix<float>::Constant(1, out, 2.0f);
        pa::Matrix<float> ex = dx, ew = dw, eb = db;
        pa::cpu::linear_backward<float>(ctx, pa::view<float>(x), wv, pa::view<float>(dy), pa::view<float>(dx),
                                        pa::view<float>(dw), db.data());
        pa::cpu::linear_backward<float>(ref_ctx, pa::view<float>(rx), pa::view<float>(rw), pa::view<float>(rdy),
                                        pa::view<float>(ex), pa::view<float>(ew), nullptr);
        pa::cpu::linear_backward<float>(ref_ctx, pa::view<float>(x), pa::view<float>(w), pa::view<float>(dy),
                                        pa::View<float>{}, pa::View<float>{}, eb.data());  // bias from fp32 dy
        CHECK(max_abs(dx - ex) <= 2e-5 * max_abs(ex));
        CHECK(max_abs(dw - ew) <= 2e-5 * max_abs(ew));
        CHECK(max_abs(db - eb) <= 1e-6 * max_abs(eb));
        // dx alone, dW alone
        pa::Matrix<float> dx_only = pa::Matrix<float>::Zero(n, in), dw_only = pa::Matrix<float>::Zero(out, in);
        pa::cpu::linear_backward<float>(ctx, pa::view<float>(x), wv, pa::view<float>(dy), pa::view<float>(dx_only),
                                        pa::View<float>{}, nullptr);
        pa::cpu::linear_backward<float>(ctx, pa::view<float>(x), wv, pa::view<float>(dy), pa::View<float>{},
                                        pa::view<float>(dw_only), nullptr);
        CHECK(max_abs(dx_only - (ex.array() - 0.5f).matrix()) <= 2e-5 * max_abs(ex));
        CHECK(max_abs(dw_only - (ew.array() + 1.0f).matrix()) <= 2e-5 * max_abs(ew));
    }
    SECTION("thin products (a LoRA rank) and few rows stay fp32") {
        auto const a = pa::testing::random_matrix<float>(8, in, 5);  // rank 8 < bf16_min_side
        pa::Matrix<float> u(n, 8), u_fp32(n, 8);
        pa::cpu::linear_forward(ctx, pa::view<float>(x), pa::view<float>(a), nullptr, pa::view<float>(u));
        pa::cpu::linear_forward(ref_ctx, pa::view<float>(x), pa::view<float>(a), nullptr, pa::view<float>(u_fp32));
        CHECK(max_abs(u - u_fp32) == 0.0);
        auto const copies = ctx.bf16_gemms().copy_count();
        pa::Matrix<float> y4(4, out), y4_fp32(4, out);
        pa::cpu::linear_forward(ctx, pa::View<float const>(x.data(), 4, in), wv, nullptr, pa::view<float>(y4));
        pa::cpu::linear_forward(ref_ctx, pa::View<float const>(x.data(), 4, in), pa::view<float>(w), nullptr,
                                pa::view<float>(y4_fp32));
        CHECK(max_abs(y4 - y4_fp32) <= 1e-6 * max_abs(y4_fp32));
        CHECK(ctx.bf16_gemms().copy_count() == copies);
    }
}

TEST_CASE("bf16 working copies follow every write into the weight", "[unit][cpu_bf16]") {
    if (!bf16_built()) return;
    auto ctx = bf16_context();
    auto ref_ctx = fp32_context();
    pa::Index const n = 20, in = 32, out = 24;
    auto const x = pa::testing::random_matrix<float>(n, in, 11);
    auto const w1 = pa::testing::random_matrix<float>(out, in, 12);
    auto const w2 = pa::testing::random_matrix<float>(out, in, 13);
    // What the weight's values give, rounded as the bf16 path rounds them.
    auto expect = [&](pa::Matrix<float> const& w) {
        pa::Matrix<float> y(n, out);
        pa::cpu::linear_forward(ref_ctx, pa::view<float>(rounded(x)), pa::view<float>(rounded(w)), nullptr,
                                pa::view<float>(y));
        return y;
    };
    auto product = [&](float const* weight) {
        pa::Matrix<float> y(n, out);
        pa::cpu::linear_forward(ctx, pa::view<float>(x), pa::View<float const>(weight, out, in), nullptr,
                                pa::view<float>(y));
        return y;
    };
    auto close = [](pa::Matrix<float> const& a, pa::Matrix<float> const& b) {
        return max_abs(a - b) <= 1e-5 * max_abs(b);
    };

    auto buffer = std::make_unique<pa::CpuEigen::Buffer<float>>(std::size_t(w1.size()));
    pa::CpuEigen::upload(ctx, w1.data(), buffer->data(), buffer->size());
    CHECK(close(product(buffer->data()), expect(w1)));
    auto const conversions = ctx.bf16_gemms().conversions();
    CHECK(close(product(buffer->data()), expect(w1)));
    CHECK(ctx.bf16_gemms().conversions() == conversions);  // reused while unwritten

    SECTION("upload") {
        pa::CpuEigen::upload(ctx, w2.data(), buffer->data(), buffer->size());
        CHECK(close(product(buffer->data()), expect(w2)));
    }
    SECTION("copy into part of the weight") {
        pa::CpuEigen::Buffer<float> source(w2.data(), w2.data() + in);                 // w2's first row
        pa::CpuEigen::copy(ctx, source.data(), buffer->data() + in, std::size_t(in));  // into row 1
        pa::Matrix<float> w = w1;
        w.row(1) = w2.row(0);
        CHECK(close(product(buffer->data()), expect(w)));
    }
    SECTION("an AdamW update and a scale") {
        pa::Matrix<float> grad = w2, m = pa::Matrix<float>::Zero(out, in), v = m;
        pa::cpu::adamw_update(
            ctx, buffer->data(), grad.data(), m.data(), v.data(), w1.size(),
            pa::cpu::AdamWStep{.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.0, .step = 1});
        pa::Matrix<float> updated(out, in);
        std::copy(buffer->data(), buffer->data() + buffer->size(), updated.data());
        CHECK(max_abs(updated - w1) > 0.01);
        CHECK(close(product(buffer->data()), expect(updated)));
        pa::cpu::scale(ctx, buffer->data(), w1.size(), 2.0f);
        CHECK(close(product(buffer->data()), expect(2.0f * updated)));
    }
    SECTION("a buffer freed and another made, possibly at the same address") {
        buffer.reset();
        auto other = std::make_unique<pa::CpuEigen::Buffer<float>>(std::size_t(w2.size()));
        std::copy(w2.data(), w2.data() + w2.size(), other->data());  // not through upload: the free alone must do
        CHECK(close(product(other->data()), expect(w2)));
    }
}

namespace {

using Dense = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Causal attention forward and backward in double on operands rounded as attention_bf16.hpp rounds them (q, k,
/// v and dO; the probabilities before P V and P^T dO; scale P (dP - rowsum(P dP)) before dQ and dK). `probs` is the
/// softmax in double; the rest starts from `saved` (the op's fp32 probabilities), so that both round the same
/// values to bf16.
struct RoundedAttention {
    pa::Matrix<float> out, probs, dq, dk, dv;

    RoundedAttention(pa::AttentionShape const& s, pa::Matrix<float> const& q, pa::Matrix<float> const& k,
                     pa::Matrix<float> const& v, pa::Matrix<float> const& dout, std::vector<float> const& slopes,
                     float scale, pa::Matrix<float> const& saved) {
        auto const rq = rounded(q), rk = rounded(k), rv = rounded(v), rdo = rounded(dout);
        out = pa::Matrix<float>::Zero(q.rows(), q.cols());
        probs = pa::Matrix<float>::Zero(pa::Index(s.batch) * s.heads * s.seq, s.seq);
        dq = pa::Matrix<float>::Zero(q.rows(), q.cols());
        dk = pa::Matrix<float>::Zero(k.rows(), k.cols());
        dv = pa::Matrix<float>::Zero(v.rows(), v.cols());
        auto head = [&](pa::Matrix<float> const& x, int b, int h) {
            return x.block(pa::Index(b) * s.seq, pa::Index(h) * s.head_dim, s.seq, s.head_dim).cast<double>().eval();
        };
        auto round_dense = [](Dense const& x) { return rounded(x.cast<float>()).cast<double>().eval(); };
        for (int b = 0; b < s.batch; ++b) {
            for (int h = 0; h < s.heads; ++h) {
                int const g = h / (s.heads / s.kv_heads);
                Dense const qh = head(rq, b, h), kh = head(rk, b, g), vh = head(rv, b, g), doh = head(rdo, b, h);
                Dense p = Dense::Zero(s.seq, s.seq);
                for (int i = 0; i < s.seq; ++i) {
                    Eigen::RowVectorXd row = scale * qh.row(i) * kh.topRows(i + 1).transpose();
                    for (int j = 0; j <= i; ++j) row[j] += slopes.empty() ? 0.0 : double(slopes[h]) * j;
                    row = (row.array() - row.maxCoeff()).exp();
                    p.row(i).head(i + 1) = row / row.sum();
                }
                pa::Index const first = (pa::Index(b) * s.heads + h) * s.seq;
                probs.block(first, 0, s.seq, s.seq) = p.cast<float>();
                p = saved.block(first, 0, s.seq, s.seq).cast<double>();
                Dense const rp = round_dense(p);
                auto rows = [&](pa::Matrix<float>& x, int at) {
                    return x.block(pa::Index(b) * s.seq, pa::Index(at) * s.head_dim, s.seq, s.head_dim);
                };
                rows(out, h) = (rp * vh).cast<float>();
                rows(dv, g) += (rp.transpose() * doh).cast<float>();
                Dense const dp = doh * vh.transpose();
                Eigen::VectorXd const row_dot = (p.array() * dp.array()).rowwise().sum();
                Dense const ds = round_dense(scale * (p.array() * (dp.array().colwise() - row_dot.array())).matrix());
                rows(dq, h) += (ds * kh).cast<float>();
                rows(dk, g) += (ds.transpose() * qh).cast<float>();
            }
        }
    }
};

}  // namespace

TEST_CASE("bf16 attention equals attention on rounded operands, in batched products", "[unit][cpu_bf16]") {
    if (!bf16_built()) return;
    auto ctx = bf16_context();
    auto ref_ctx = fp32_context();
    // GQA with ALiBi, and plain multi-head attention; seq and head_dim at least bf16_min_side.
    bool const gqa = GENERATE(true, false);
    pa::AttentionShape const s{2, 37, gqa ? 4 : 2, 2, 16};
    std::vector<float> const slopes = gqa ? std::vector<float>{-0.5f, -0.25f, -0.125f, -0.0625f} : std::vector<float>{};
    REQUIRE(pa::cpu::detail::bf16_attention(ctx, s));
    float const scale = 0.25f;
    pa::Index const n = pa::Index(s.batch) * s.seq, q_cols = s.heads * s.head_dim, kv_cols = s.kv_heads * s.head_dim;
    auto const q = pa::testing::random_matrix<float>(n, q_cols, 11),
               k = pa::testing::random_matrix<float>(n, kv_cols, 12);
    auto const v = pa::testing::random_matrix<float>(n, kv_cols, 13),
               dout = pa::testing::random_matrix<float>(n, q_cols, 14);
    float const* alibi = slopes.empty() ? nullptr : slopes.data();

    pa::Matrix<float> out(n, q_cols), probs(pa::Index(s.batch) * s.heads * s.seq, s.seq);
    pa::cpu::attention_forward<float>(ctx, pa::view<float>(q), pa::view<float>(k), pa::view<float>(v),
                                      pa::view<float>(out), pa::view<float>(probs), s, alibi, scale);
    RoundedAttention const expected(s, q, k, v, dout, slopes, scale, probs);
    // fp32 sums of the same products in another order.
    CHECK(max_abs(probs - expected.probs) <= 1e-5);
    CHECK(max_abs(out - expected.out) <= 1e-5 * max_abs(expected.out));
    for (pa::Index r = 0; r < probs.rows(); ++r)
        CHECK(probs.row(r).tail(s.seq - 1 - r % s.seq).isZero(0.0f));  // exactly 0 above the diagonal

    // Gradients are added into what the outputs hold.
    pa::Matrix<float> dq = pa::Matrix<float>::Constant(n, q_cols, 0.5f),
                      dk = pa::Matrix<float>::Constant(n, kv_cols, -1.0f);
    pa::Matrix<float> dv = pa::Matrix<float>::Constant(n, kv_cols, 2.0f);
    pa::cpu::attention_backward<float>(ctx, pa::view<float>(dout), pa::view<float>(q), pa::view<float>(k),
                                       pa::view<float>(v), pa::View<float const>(pa::view<float>(probs)),
                                       pa::view<float>(dq), pa::view<float>(dk), pa::view<float>(dv), s, scale);
    auto close = [](pa::Matrix<float> const& got, pa::Matrix<float> const& want, double bound) {
        INFO("max error " << max_abs(got - want) << " of " << max_abs(want));
        CHECK(max_abs(got - want) <= bound * max_abs(want));
    };
    close(dv.array() - 2.0f, expected.dv, 1e-5);
    // dS is computed in fp32 here and in double there: an entry may round to the neighbouring bf16 value, which
    // moves one term of a sum by 2^-8 of itself.
    close(dq.array() - 0.5f, expected.dq, 1e-3);
    close(dk.array() + 1.0f, expected.dk, 1e-3);

    // Against unrounded fp32 attention: the roundings show, within the bf16 bound of a product.
    pa::Matrix<float> exact(n, q_cols), exact_probs(probs.rows(), s.seq);
    pa::cpu::attention_forward<float>(ref_ctx, pa::view<float>(q), pa::view<float>(k), pa::view<float>(v),
                                      pa::view<float>(exact), pa::view<float>(exact_probs), s, alibi, scale);
    CHECK(max_abs(out - exact) > 1e-5 * max_abs(exact));
    CHECK(max_abs(out - exact) <= 1.5e-2 * max_abs(exact));
}

namespace {

using BloomMini = pa::Bloom<pa::bloom::SizeMini, pa::NoAdapter>;
using NeoxTinyLora = pa::GptNeoX<pa::gpt_neox::SizeTiny, pa::LoRA<4, 8, pa::site::Qkv>>;
using LlamaTiny = pa::Llama<pa::llama::SizeTiny, pa::NoAdapter>;
/// head_dim 32, so that attention runs on bf16 operands too (the tiny presets' head_dim 8 keeps it fp32).
struct BloomHeadDim32 : pa::bloom::Defaults {
    static constexpr int vocab = 96, hidden = 64, layers = 2, heads = 2;
};
struct LlamaHeadDim32Gqa : pa::llama::Defaults {
    static constexpr int vocab = 96, hidden = 128, layers = 2, heads = 4, kv_heads = 2, ffn = 128;
};
using BloomHd32 = pa::Bloom<BloomHeadDim32, pa::NoAdapter>;
using LlamaHd32 = pa::Llama<LlamaHeadDim32Gqa, pa::NoAdapter>;

template <class Model>
std::vector<float> logits_of(pa::cpu::Context& ctx, pa::CausalLm<Model, pa::CpuEigen, float>& net,
                             pa::TokenBatch const& batch) {
    std::vector<float> logits(std::size_t(batch.tokens() * Model::config::vocab));
    net.logits(ctx, batch, pa::View<float>(logits.data(), batch.tokens(), Model::config::vocab));
    return logits;
}

}  // namespace

TEMPLATE_TEST_CASE("a model in bf16 GEMMs stays within the bf16 bounds of fp32", "[unit][cpu_bf16]", BloomMini,
                   NeoxTinyLora, LlamaTiny, BloomHd32, LlamaHd32) {
    if (!bf16_built()) return;
    using Net = pa::CausalLm<TestType, pa::CpuEigen, float>;
    pa::cpu::Context fp32;
    auto bf16 = bf16_context();
    Net a(fp32, {.seed = 7}), b(bf16, {.seed = 7});
    pa::MarkovStream stream(TestType::config::vocab, 2, 3);
    auto const batch = stream.next_batch(3, 24);

    // docs/tolerances.md, GemmMath::Bf16: logits 2e-2 (max|a - b| / max|b|).
    auto const reference = logits_of(fp32, a, batch), measured = logits_of(bf16, b, batch);
    double const logit_error = pa::test::relative_error(measured, reference);
    INFO("logits relative error " << logit_error);
    CHECK(logit_error <= 2e-2);
    CHECK(logit_error > 1e-6);  // the bf16 path did run

    // A short training run: every step's loss within 2e-3 relative of fp32's (1.5e-2 for the head_dim 32 LLaMA,
    // as on CUDA: it learns fastest, and its steep curve carries earlier steps' differences on), and the loss falls.
    double const loss_bound = std::is_same_v<TestType, LlamaHd32> ? 1.5e-2 : 2e-3;
    pa::AdamW<pa::CpuEigen, float> opt_a(a.parameters().trainable_count()), opt_b(b.parameters().trainable_count());
    double first = 0, last = 0, worst = 0;
    for (long step = 1; step <= 12; ++step) {
        std::vector<pa::TokenBatch> micro{stream.next_batch(3, 24)};
        auto const ra = pa::train_step(fp32, a, opt_a, std::span<pa::TokenBatch const>(micro), 3e-3, 1.0, step);
        auto const rb = pa::train_step(bf16, b, opt_b, std::span<pa::TokenBatch const>(micro), 3e-3, 1.0, step);
        worst = std::max(worst, std::abs(rb.loss - ra.loss) / ra.loss);
        if (step == 1) first = rb.loss;
        last = rb.loss;
    }
    INFO("worst loss gap " << worst << ", bf16 loss " << first << " -> " << last);
    CHECK(worst <= loss_bound);
    CHECK(last < first);
}
