/// @file tests/cuda/bf16_sim/model_error.cpp
/// @brief Predicts, on the CPU, the bf16 errors tests/cuda/model_parity.cu measures: the same models, seeds,
/// perturbation, batch and 30-step AdamW run, with a CPU backend whose GEMM ops (linear forward/backward and the
/// attention GEMMs) round their operands to bf16 as GemmMath::Bf16 does (round to nearest even) and accumulate in
/// fp32, against the plain fp32 CPU model. Prints each model's logits, loss, worst gradient and loss-curve gap.
///
/// Build and run (not part of the CTest suite; its output is quoted in docs/tolerances.md):
///   g++ -O2 -std=c++20 -fopenmp -DEIGEN_USE_BLAS -I include -isystem /usr/include/eigen3 \
///       tests/cuda/bf16_sim/model_error.cpp -o /tmp/model_error -lopenblas && /tmp/model_error
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "polyalpaca/backend/cpu_eigen.hpp"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/data/markov_stream.hpp"
#include "polyalpaca/models/bloom.hpp"
#include "polyalpaca/models/causal_lm.hpp"
#include "polyalpaca/models/gpt_neox.hpp"
#include "polyalpaca/models/llama.hpp"
#include "polyalpaca/optim/adamw.hpp"
#include "polyalpaca/train/step.hpp"

namespace pa = polyalpaca;
using Vec = std::vector<float>;

namespace sim {

/// As __float2bfloat16_rn: round to nearest even at 8 mantissa bits.
inline float bf16(float x) {
    if (!std::isfinite(x)) return x;
    std::uint32_t u;
    std::memcpy(&u, &x, 4);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    std::memcpy(&x, &u, 4);
    return x;
}
inline Vec rounded(pa::View<float const> v) {
    Vec out(std::size_t(v.rows * v.cols));
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = bf16(v.data[i]);
    return out;
}

/// The CPU context whose GEMM ops are the bf16-operand ones below (others resolve to polyalpaca::cpu's).
struct Context : pa::cpu::Context {
    using pa::cpu::Context::Context;
};

inline void add_column_sums(float const* g, pa::Index n, pa::Index out, float* db) {
    for (pa::Index j = 0; j < out; ++j) {
        float s = 0;
        for (pa::Index i = 0; i < n; ++i) s += g[i * out + j];
        db[j] += s;
    }
}

inline void linear_forward(Context& ctx, pa::View<float const> x, pa::View<float const> w, float const* bias,
                           pa::View<float> y, bool accumulate = false) {
    Vec const rx = rounded(x), rw = rounded(w);
    pa::cpu::linear_forward<float>(ctx, {rx.data(), x.rows, x.cols}, {rw.data(), w.rows, w.cols}, bias, y, accumulate);
}

/// db from the rounded dy when dw is wanted too (the BGRADB epilogue reads the bf16 operand), else from fp32 dy.
inline void linear_backward(Context& ctx, pa::View<float const> x, pa::View<float const> w, pa::View<float const> dy,
                            pa::View<float> dx, pa::View<float> dw, float* dbias) {
    Vec const rx = rounded(x), rw = rounded(w), rdy = rounded(dy);
    pa::cpu::linear_backward<float>(ctx, {rx.data(), x.rows, x.cols}, {rw.data(), w.rows, w.cols},
                                    {rdy.data(), dy.rows, dy.cols}, dx, dw, nullptr);
    if (dbias) add_column_sums(dw.data ? rdy.data() : dy.data, dy.rows, dy.cols, dbias);
}

inline float at(float const* a, pa::Index cols, int seq, int hd, int b, int t, int head, int e) {
    return a[(pa::Index(b) * seq + t) * cols + pa::Index(head) * hd + e];
}

/// attention_forward with scores from bf16 q, k and out from bf16 probs, v (the softmax in fp32).
inline void attention_forward(Context&, pa::View<float const> q, pa::View<float const> k, pa::View<float const> v,
                              pa::View<float> out, pa::View<float> probs, pa::AttentionShape const& s,
                              float const* slopes, float scale) {
    int const hd = s.head_dim, group = s.heads / s.kv_heads, T = s.seq;
    pa::Index const qc = pa::Index(s.heads) * hd, kc = pa::Index(s.kv_heads) * hd;
    Vec const rq = rounded(q), rk = rounded(k), rv = rounded(v);
    for (int b = 0; b < s.batch; ++b)
        for (int h = 0; h < s.heads; ++h) {
            int const g = h / group;
            float* P = probs.data + (pa::Index(b) * s.heads + h) * T * T;
            for (int i = 0; i < T; ++i) {
                float mx = -INFINITY;
                for (int j = 0; j <= i; ++j) {
                    float acc = 0;
                    for (int e = 0; e < hd; ++e)
                        acc += at(rq.data(), qc, T, hd, b, i, h, e) * at(rk.data(), kc, T, hd, b, j, g, e);
                    P[i * T + j] = scale * acc + (slopes ? slopes[h] * float(j) : 0.0f);
                    mx = std::max(mx, P[i * T + j]);
                }
                float sum = 0;
                for (int j = 0; j <= i; ++j) sum += (P[i * T + j] = std::exp(P[i * T + j] - mx));
                for (int j = 0; j < T; ++j) P[i * T + j] = j <= i ? P[i * T + j] / sum : 0.0f;
                for (int e = 0; e < hd; ++e) {
                    float acc = 0;
                    for (int j = 0; j <= i; ++j) acc += bf16(P[i * T + j]) * at(rv.data(), kc, T, hd, b, j, g, e);
                    out.data[(pa::Index(b) * T + i) * qc + pa::Index(h) * hd + e] = acc;
                }
            }
        }
}

/// attention_backward with every GEMM operand rounded to bf16 (dS computed in fp32, then rounded).
inline void attention_backward(Context&, pa::View<float const> dout, pa::View<float const> q, pa::View<float const> k,
                               pa::View<float const> v, pa::View<float const> probs, pa::View<float> dq,
                               pa::View<float> dk, pa::View<float> dv, pa::AttentionShape const& s, float scale) {
    int const hd = s.head_dim, group = s.heads / s.kv_heads, T = s.seq;
    pa::Index const qc = pa::Index(s.heads) * hd, kc = pa::Index(s.kv_heads) * hd;
    Vec const rq = rounded(q), rk = rounded(k), rv = rounded(v), rdo = rounded(dout);
    for (int b = 0; b < s.batch; ++b)
        for (int h = 0; h < s.heads; ++h) {
            int const g = h / group;
            float const* P = probs.data + (pa::Index(b) * s.heads + h) * T * T;
            Vec dS(std::size_t(T) * T, 0.0f);
            for (int i = 0; i < T; ++i) {
                Vec dP(std::size_t(T), 0.0f);
                float dot = 0;
                for (int j = 0; j <= i; ++j) {
                    float acc = 0;
                    for (int e = 0; e < hd; ++e)
                        acc += at(rdo.data(), qc, T, hd, b, i, h, e) * at(rv.data(), kc, T, hd, b, j, g, e);
                    dP[std::size_t(j)] = acc;
                    dot += P[i * T + j] * acc;
                }
                for (int j = 0; j <= i; ++j)
                    dS[std::size_t(i * T + j)] = scale * P[i * T + j] * (dP[std::size_t(j)] - dot);
            }
            for (int j = 0; j < T; ++j)
                for (int e = 0; e < hd; ++e) {
                    float accv = 0, acck = 0;
                    for (int i = j; i < T; ++i) {
                        accv += bf16(P[i * T + j]) * at(rdo.data(), qc, T, hd, b, i, h, e);
                        acck += bf16(dS[std::size_t(i * T + j)]) * at(rq.data(), qc, T, hd, b, i, h, e);
                    }
                    if (dv.data) dv.data[(pa::Index(b) * T + j) * kc + pa::Index(g) * hd + e] += accv;
                    if (dk.data) dk.data[(pa::Index(b) * T + j) * kc + pa::Index(g) * hd + e] += acck;
                }
            if (dq.data)
                for (int i = 0; i < T; ++i)
                    for (int e = 0; e < hd; ++e) {
                        float acc = 0;
                        for (int j = 0; j <= i; ++j)
                            acc += bf16(dS[std::size_t(i * T + j)]) * at(rk.data(), kc, T, hd, b, j, g, e);
                        dq.data[(pa::Index(b) * T + i) * qc + pa::Index(h) * hd + e] += acc;
                    }
        }
}

}  // namespace sim

namespace {

/// CpuEigen with the bf16-operand GEMM ops.
struct SimBf16 : pa::CpuEigen {
    using Context = sim::Context;
};

double relative_error(Vec const& a, Vec const& b) {
    double diff = 0, scale = 1e-30;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
        scale = std::max(scale, std::abs(double(b[i])));
    }
    return diff / scale;
}

pa::TokenBatch masked_batch(int vocab, int batch, int seq, std::uint64_t seed) {
    pa::Rng rng(seed);
    pa::TokenBatch b;
    b.ids = xt::xtensor<std::int32_t, 2>::from_shape({std::size_t(batch), std::size_t(seq)});
    for (auto& id : b.ids) id = std::int32_t(rng.below(std::uint64_t(vocab)));
    b.labels = b.ids;
    for (int i = 0; i < batch; ++i)
        for (int t = 0; t < 1 + i; ++t) b.labels(i, t) = pa::ignore_index;
    return b;
}

template <class Model>
void check_model(std::string const& label, std::uint64_t seed) {
    using CpuNet = pa::CausalLm<Model, pa::CpuEigen, float>;
    using SimNet = pa::CausalLm<Model, SimBf16, float>;
    pa::cpu::Context cpu_ctx(1);
    sim::Context sim_ctx(1);
    auto cpu = std::make_unique<CpuNet>(cpu_ctx, pa::NetworkOptions{.seed = seed});
    auto bf = std::make_unique<SimNet>(sim_ctx, pa::NetworkOptions{.seed = seed});
    {  // model_parity's perturb
        pa::Rng rng(seed + 1);
        auto const& c = cpu->parameters().parameters();
        auto const& g = bf->parameters().parameters();
        for (std::size_t i = 0; i < c.size(); ++i) {
            for (pa::Index j = 0; j < c[i]->size(); ++j) c[i]->value[j] += float(0.02 * rng.normal());
            std::copy(c[i]->value, c[i]->value + c[i]->size(), g[i]->value);
        }
    }
    auto const batch = masked_batch(Model::config::vocab, 3, 16, seed + 2);
    constexpr int vocab = Model::config::vocab;
    pa::Index const n = batch.tokens();
    Vec cl(std::size_t(n * vocab)), sl(cl.size());
    cpu->logits(cpu_ctx, batch, pa::View<float>(cl.data(), n, vocab));
    bf->logits(sim_ctx, batch, pa::View<float>(sl.data(), n, vocab));
    double const logits_error = relative_error(sl, cl);
    cpu->parameters().zero_grads(cpu_ctx);
    bf->parameters().zero_grads(sim_ctx);
    auto const lc = cpu->forward_backward(cpu_ctx, batch);
    auto const lb = bf->forward_backward(sim_ctx, batch);
    double const loss_error = std::abs(lb.mean() - lc.mean()) / std::abs(lc.mean());
    double worst = 0;
    std::string worst_name;
    auto const& c = cpu->parameters().parameters();
    auto const& g = bf->parameters().parameters();
    for (std::size_t i = 0; i < c.size(); ++i) {
        if (!c[i]->trainable()) continue;
        double const e =
            relative_error(Vec(g[i]->grad, g[i]->grad + g[i]->size()), Vec(c[i]->grad, c[i]->grad + c[i]->size()));
        if (e >= worst) worst = e, worst_name = c[i]->name;
    }
    // model_parity's training run: 30 AdamW steps on the Markov stream (lr 3e-3, clip 1.0).
    pa::AdamWConfig const config{.lr = 3e-3};
    pa::AdamW<pa::CpuEigen, float> cpu_opt(cpu->parameters().trainable_count(), config);
    pa::AdamW<SimBf16, float> sim_opt(bf->parameters().trainable_count(), config);
    pa::MarkovStream stream(Model::config::vocab, 2, seed + 3);
    double gap = 0, c0 = 0, c1 = 0, s0 = 0, s1 = 0;
    for (int step = 1; step <= 30; ++step) {
        std::vector<pa::TokenBatch> const micro{stream.next_batch(4, 32)};
        std::span<pa::TokenBatch const> const batches(micro);
        double const a = pa::train_step(cpu_ctx, *cpu, cpu_opt, batches, config.lr, 1.0, step).loss;
        double const b = pa::train_step(sim_ctx, *bf, sim_opt, batches, config.lr, 1.0, step).loss;
        gap = std::max(gap, std::abs(b - a) / std::abs(a));
        if (step == 1) c0 = a, s0 = b;
        c1 = a, s1 = b;
    }
    std::printf(
        "%-22s logits %.2e  loss %.2e  gradients %.2e (%s)  training gap %.2e (cpu %.3f -> %.3f, "
        "bf16 %.3f -> %.3f)\n",
        label.c_str(), logits_error, loss_error, worst, worst_name.c_str(), gap, c0, c1, s0, s1);
    std::fflush(stdout);
}

using BloomLora = pa::LoRA<4, 8, pa::site::Qkv, pa::site::AttnOut, pa::site::MlpUp, pa::site::MlpDown>;
using NeoxLora = pa::LoRA<2, 16, pa::site::Qkv>;
using LlamaLora = pa::LoRA<3, 6, pa::site::Query, pa::site::Key, pa::site::Value, pa::site::AttnOut, pa::site::MlpGate,
                           pa::site::MlpUp, pa::site::MlpDown>;

/// model_parity's head_dim 32 models (run there on the flash kernels; simulated here with the GEMM path's
/// roundings, which round the same operands: q, k, v, dout, P and dS).
struct BloomFlashSize : pa::bloom::Defaults {
    static constexpr int vocab = 96, hidden = 64, layers = 2, heads = 2;
};
struct LlamaFlashSize : pa::llama::Defaults {
    static constexpr int vocab = 96, hidden = 128, layers = 2, heads = 4, kv_heads = 2, ffn = 128;
};

}  // namespace

int main() {
    check_model<pa::Bloom<pa::bloom::SizeTiny>>("bloom-tiny full", 11);
    check_model<pa::Bloom<pa::bloom::SizeTiny, BloomLora>>("bloom-tiny lora", 12);
    check_model<pa::GptNeoX<pa::gpt_neox::SizeTiny>>("gpt_neox-tiny full", 13);
    check_model<pa::GptNeoX<pa::gpt_neox::SizeTiny, NeoxLora>>("gpt_neox-tiny lora", 14);
    check_model<pa::Llama<pa::llama::SizeTiny>>("llama-tiny full", 15);
    check_model<pa::Llama<pa::llama::SizeTiny, LlamaLora>>("llama-tiny lora", 16);
    check_model<pa::Llama<pa::llama::SizeTinyTied>>("llama-tiny-tied full", 17);
    check_model<pa::Bloom<BloomFlashSize, BloomLora>>("bloom head_dim 32 lora", 18);
    check_model<pa::Llama<LlamaFlashSize>>("llama head_dim 32 full", 19);
    return 0;
}
