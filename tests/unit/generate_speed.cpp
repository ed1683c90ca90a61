/// @file tests/unit/generate_speed.cpp
/// @brief Decoding speed on the CPU (tokens per second) with the KV cache, against recomputing the whole sequence
///        every step, for the tiny LLaMA and the BLOOM mini presets (random weights). Prints the rates that
///        docs/generation.md quotes; checks only that the cache is faster. A hidden case measures BLOOM-560m
///        with the paper's LoRA adapter (2.3 GB of weights): `unit_generate_speed "[bloom560m]"`.
#include <polyalpaca/generate/generate.hpp>
#include <polyalpaca/polyalpaca.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

namespace pa = polyalpaca;

namespace {

using Ids = std::vector<std::int32_t>;

template <class Net>
double recompute_tokens_per_second(pa::cpu::Context& ctx, Net& net, Ids ids, int new_tokens) {
    auto const t0 = std::chrono::steady_clock::now();
    for (int step = 0; step < new_tokens; ++step) {
        pa::TokenBatch b;
        b.ids = xt::xtensor<std::int32_t, 2>::from_shape({1, ids.size()});
        std::copy(ids.begin(), ids.end(), b.ids.data());
        b.labels = b.ids;
        pa::RowMajorMatrix<float> logits(b.tokens(), Net::vocab);
        net.logits(ctx, b, pa::view(logits));
        Eigen::Index next = 0;
        logits.row(logits.rows() - 1).maxCoeff(&next);
        ids.push_back(std::int32_t(next));
    }
    return new_tokens / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <class Model>
void measure(char const* name) {
    using Net = pa::CausalLm<Model, pa::CpuEigen, float>;
    pa::cpu::Context ctx;
    Net net(ctx, {.seed = 5});
    pa::Rng rng(9);
    int const prompt_length = 16, new_tokens = 128;
    std::vector<Ids> prompts(4);
    for (auto& p : prompts)
        for (int t = 0; t < prompt_length; ++t) p.push_back(std::int32_t(rng.below(Net::vocab)));

    auto rate = [&](std::size_t batch, pa::GenerationConfig const& config) {
        pa::GenerationProgress progress;
        pa::generate(ctx, net, std::span<Ids const>(prompts.data(), batch), config, &progress);
        return double(progress.decoded_tokens) / progress.decode_seconds;
    };
    auto greedy = pa::GenerationConfig::greedy(new_tokens);
    auto beams = pa::GenerationConfig::paper(true);
    beams.max_new_tokens = new_tokens;
    double const one = rate(1, greedy);
    double const four = rate(4, greedy);
    double const beam = rate(1, beams);
    double const recompute = recompute_tokens_per_second(ctx, net, prompts[0], new_tokens);
    std::printf("decode %-10s threads %d: greedy batch 1 %.0f tok/s, batch 4 %.0f tok/s, paper beam-4 %.0f tok/s "
                "(beam rows), recompute without cache %.0f tok/s (prompt %d, %d new tokens)\n",
                name, ctx.threads, one, four, beam, recompute, prompt_length, new_tokens);
    CHECK(one > recompute);
}

}  // namespace

TEST_CASE("cached decoding is faster than recomputing the sequence", "[unit][generate][speed]") {
    measure<pa::Llama<pa::llama::SizeTiny>>("llama-tiny");
    measure<pa::Bloom<pa::bloom::SizeMini>>("bloom-mini");
}

TEST_CASE("decoding speed of BLOOM-560m with a LoRA adapter (run by hand)", "[.][speed][bloom560m]") {
    using Net = pa::CausalLm<pa::Bloom<pa::bloom::Size560m, pa::LoRA<8, 16, pa::site::Qkv>>, pa::CpuEigen, float>;
    pa::cpu::Context ctx;
    auto net = std::make_unique<Net>(ctx, pa::NetworkOptions{.seed = 5});
    pa::Rng rng(9);
    std::vector<Ids> prompts(4);
    for (auto& p : prompts)
        for (int t = 0; t < 32; ++t) p.push_back(std::int32_t(rng.below(Net::vocab)));
    int const new_tokens = 32;
    auto run = [&](std::size_t batch, pa::GenerationConfig config) {
        config.max_new_tokens = new_tokens;
        config.no_repeat_ngram_size = 0;  // random weights repeat themselves; keep every step a full step
        pa::GenerationProgress progress;
        auto const out = pa::generate(ctx, *net, std::span<Ids const>(prompts.data(), batch), config, &progress);
        for (auto const& g : out) CHECK(g.tokens.size() == std::size_t(new_tokens));
        std::printf("decode bloom-560m threads %d: batch %zu, %d beams: prefill %.1f tok/s, decode %.1f tok/s "
                    "(%.2f steps/s)\n", ctx.threads, batch, config.num_beams,
                    double(progress.prompt_tokens) / progress.prefill_seconds,
                    double(progress.decoded_tokens) / progress.decode_seconds,
                    (new_tokens - 1) / progress.decode_seconds);
    };
    run(1, pa::GenerationConfig::greedy(new_tokens));
    run(4, pa::GenerationConfig::greedy(new_tokens));
    run(1, pa::GenerationConfig::paper(false));
}
