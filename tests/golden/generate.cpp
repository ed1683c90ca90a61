/// @file tests/golden/generate.cpp
/// @brief Cached generation (generate/generate.hpp) on the golden tiny models against HF transformers' generate():
///        greedy and 4-beam tokens and scores, per-step logits against HF and against a full recompute, batched
///        against one prompt at a time, and a LoRA adapter unmerged against the same adapter merged.
#include <polyalpaca/generate/generate.hpp>
#include <polyalpaca/io/adapter_merge.hpp>

#include "model_parity.hpp"

namespace pa = polyalpaca;
using pa::testing::GoldenReference;

namespace {

using Prompts = std::vector<std::vector<std::int32_t>>;

struct Golden {
    Prompts prompts;
    Prompts greedy;   // new tokens of HF's greedy generation
    Prompts beam4;    // new tokens of HF's 4-beam generation
    std::vector<double> beam4_score;
    std::vector<std::vector<double>> greedy_logits;  // (12 * vocab) per prompt
};

std::vector<std::int32_t> row_of(xt::xtensor<std::int32_t, 2> const& ids, std::size_t from = 0) {
    return {ids.data() + from, ids.data() + ids.size()};
}

Golden golden(GoldenReference const& ref) {
    Golden g;
    for (int i = 0; ref.has("generate.prompt." + std::to_string(i)); ++i) {
        auto const s = std::to_string(i);
        g.prompts.push_back(row_of(ref.ids("generate.prompt." + s)));
        g.greedy.push_back(row_of(ref.ids("generate.greedy." + s), g.prompts.back().size()));
        g.beam4.push_back(row_of(ref.ids("generate.beam4." + s), g.prompts.back().size()));
        g.beam4_score.push_back(ref.scalar("generate.beam4_score." + s));
        g.greedy_logits.push_back(ref.values("generate.greedy_logits." + s));
    }
    REQUIRE(g.prompts.size() == 2);
    REQUIRE(g.prompts[0].size() != g.prompts[1].size());  // the batched checks need prompts of different lengths
    return g;
}

/// HF's settings of tools/make_golden.py: no end-of-sequence stop, 12 new tokens.
pa::GenerationConfig greedy_config(Golden const& g) { return pa::GenerationConfig::greedy(int(g.greedy[0].size())); }
pa::GenerationConfig beam_config(Golden const& g) {
    auto c = pa::GenerationConfig::greedy(int(g.beam4[0].size()));
    c.num_beams = 4;
    c.length_penalty = 1.0;
    c.early_stopping = pa::EarlyStopping::Heuristic;
    return c;
}

/// Along HF's greedy path: the cached logits of every step against HF's and against a full recompute.
template <class Net>
void check_cached_logits(pa::cpu::Context& ctx, Net& net, Golden const& g, std::string const& name) {
    using T = typename Net::Scalar;
    double worst_hf = 0, worst_full = 0;
    for (std::size_t i = 0; i < g.prompts.size(); ++i) {
        int const capacity = int(g.prompts[i].size() + g.greedy[i].size());
        std::vector<int> const capacities{capacity};
        auto cache = net.make_cache(capacities);
        std::vector<std::int32_t> tokens = g.prompts[i];
        pa::RowMajorMatrix<T> cached(1, Net::vocab);
        std::vector<pa::CacheStep> step{{0, int(tokens.size())}};
        net.forward_cached(ctx, cache, step, tokens, pa::view(cached));
        for (std::size_t s = 0; s < g.greedy[i].size(); ++s) {
            INFO("prompt " << i << ", step " << s);
            auto const& all = g.greedy_logits[i];
            std::vector<double> const hf(all.begin() + std::ptrdiff_t(s * Net::vocab),
                                         all.begin() + std::ptrdiff_t((s + 1) * Net::vocab));
            worst_hf = std::max(worst_hf, pa::testing::relative_error(cached.data(), hf));

            pa::TokenBatch b;
            b.ids = xt::xtensor<std::int32_t, 2>::from_shape({1, tokens.size()});
            std::copy(tokens.begin(), tokens.end(), b.ids.data());
            b.labels = b.ids;
            pa::RowMajorMatrix<T> full(b.tokens(), Net::vocab);
            net.logits(ctx, b, pa::view(full));
            std::vector<double> const last(full.row(full.rows() - 1).data(),
                                           full.row(full.rows() - 1).data() + Net::vocab);
            worst_full = std::max(worst_full, pa::testing::relative_error(cached.data(), last));

            std::int32_t const next = g.greedy[i][s];
            tokens.push_back(next);
            if (s + 1 == g.greedy[i].size()) break;
            step = {{0, 1}};
            net.forward_cached(ctx, cache, step, std::span<std::int32_t const>(&next, 1), pa::view(cached));
        }
        CHECK(cache.length(0) == capacity - 1);
    }
    pa::testing::report(name, pa::testing::type_name<T>(), "cached logits vs HF", worst_hf);
    pa::testing::report(name, pa::testing::type_name<T>(), "cached logits vs recompute", worst_full);
    CHECK(worst_hf <= pa::testing::parity_tolerance);
    CHECK(worst_full <= 1e-5);
}

/// Greedy and 4-beam generation against HF, batched and one prompt at a time.
template <class Net>
void check_generation(pa::cpu::Context& ctx, Net& net, Golden const& g, std::string const& name) {
    using T = typename Net::Scalar;
    auto const greedy = pa::generate(ctx, net, std::span<std::vector<std::int32_t> const>(g.prompts), greedy_config(g));
    auto const beams = pa::generate(ctx, net, std::span<std::vector<std::int32_t> const>(g.prompts), beam_config(g));
    REQUIRE(greedy.size() == 2);
    REQUIRE(beams.size() == 2);
    double worst_score = 0;
    for (std::size_t i = 0; i < 2; ++i) {
        INFO("prompt " << i);
        CHECK(greedy[i].tokens == g.greedy[i]);
        CHECK_FALSE(greedy[i].stopped_at_eos);
        CHECK(beams[i].tokens == g.beam4[i]);
        CHECK_FALSE(beams[i].stopped_at_eos);
        double const e = std::abs(beams[i].score - g.beam4_score[i]) / std::abs(g.beam4_score[i]);
        worst_score = std::max(worst_score, e);
        CHECK(e <= pa::testing::parity_tolerance);

        Prompts const alone{g.prompts[i]};  // the same prompt without the other one
        auto const greedy_alone = pa::generate(ctx, net, std::span<std::vector<std::int32_t> const>(alone),
                                               greedy_config(g));
        auto const beams_alone = pa::generate(ctx, net, std::span<std::vector<std::int32_t> const>(alone),
                                              beam_config(g));
        CHECK(greedy_alone[0].tokens == greedy[i].tokens);
        CHECK(std::abs(greedy_alone[0].score - greedy[i].score) <= 1e-5 * std::abs(greedy[i].score));
        CHECK(beams_alone[0].tokens == beams[i].tokens);
        CHECK(std::abs(beams_alone[0].score - beams[i].score) <= 1e-5 * std::abs(beams[i].score));
    }
    pa::testing::report(name, pa::testing::type_name<T>(), "beam-4 sequences_scores", worst_score);

    int stops = 0;
    // The paper's preset with end-of-sequence id 2 (generation_config.json of every golden model) and 24 tokens:
    // processors and end-of-sequence stops inside a batch give what each prompt gives alone.
    for (auto config : {pa::GenerationConfig::paper(true), pa::GenerationConfig::greedy(24)}) {
        config.max_new_tokens = 24;
        config.eos_token_ids = {2};
        config.repetition_penalty = 1.1;
        config.no_repeat_ngram_size = 2;
        INFO("num_beams " << config.num_beams);
        auto const batched = pa::generate(ctx, net, std::span<std::vector<std::int32_t> const>(g.prompts), config);
        for (std::size_t i = 0; i < 2; ++i) {
            Prompts const alone{g.prompts[i]};
            auto const single = pa::generate(ctx, net, std::span<std::vector<std::int32_t> const>(alone), config);
            CHECK(single[0].tokens == batched[i].tokens);
            CHECK(single[0].stopped_at_eos == batched[i].stopped_at_eos);
            CHECK(std::abs(single[0].score - batched[i].score) <= 1e-5 * std::abs(batched[i].score));
            CHECK(std::find(batched[i].tokens.begin(), batched[i].tokens.end(), 2) == batched[i].tokens.end());
            CHECK((batched[i].stopped_at_eos || batched[i].tokens.size() == 24));
            stops += batched[i].stopped_at_eos ? 1 : 0;
        }
    }
    std::printf("generate %-12s %-6s end-of-sequence stops with id 2: %d of 4 sequences\n", name.c_str(),
                pa::testing::type_name<T>(), stops);
}

/// An end-of-sequence id stops a sequence: the greedy token of step 5 as EOS ends prompt 0 after 5 tokens.
template <class Net>
void check_eos(pa::cpu::Context& ctx, Net& net, Golden const& g) {
    auto config = greedy_config(g);
    config.eos_token_ids = {g.greedy[0][5]};
    auto const out = pa::generate(ctx, net, std::span<std::vector<std::int32_t> const>(g.prompts), config);
    auto const first = std::find(g.greedy[0].begin(), g.greedy[0].end(), g.greedy[0][5]) - g.greedy[0].begin();
    CHECK(out[0].stopped_at_eos);
    CHECK(out[0].tokens == std::vector<std::int32_t>(g.greedy[0].begin(), g.greedy[0].begin() + first));
    auto const in_other = std::find(g.greedy[1].begin(), g.greedy[1].end(), g.greedy[0][5]);
    CHECK(out[1].stopped_at_eos == (in_other != g.greedy[1].end()));
    CHECK(out[1].tokens == std::vector<std::int32_t>(g.greedy[1].begin(), in_other));
}

template <class Model, class T>
void check_model(std::string const& name) {
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, T> net(ctx, {.seed = 3});
    REQUIRE(pa::io::load_hf_checkpoint(ctx, net, pa::testing::golden_model_dir(name)) == "");
    GoldenReference const ref(name);
    auto const g = golden(ref);
    check_cached_logits(ctx, net, g, name);
    check_generation(ctx, net, g, name);
    check_eos(ctx, net, g);
}

/// The adapter of models/<name>-lora on the base weights, unmerged and merged: the same tokens.
template <class LoraModel, class BaseModel>
void check_lora_merge(std::string const& name) {
    pa::cpu::Context ctx;
    pa::CausalLm<LoraModel, pa::CpuEigen, float> lora(ctx, {.seed = 3});
    REQUIRE(pa::io::load_hf_checkpoint(ctx, lora, pa::testing::golden_model_dir(name)) == "");
    pa::io::load_peft_adapter(ctx, lora, pa::testing::golden_model_dir(name + "-lora"));
    pa::CausalLm<BaseModel, pa::CpuEigen, float> merged(ctx, {.seed = 4});
    pa::io::merge_adapter(ctx, lora, merged);
    GoldenReference const ref(name);
    auto const g = golden(ref);
    auto const prompts = std::span<std::vector<std::int32_t> const>(g.prompts);
    for (auto const& config : {pa::GenerationConfig::greedy(24), pa::GenerationConfig::paper(false)}) {
        auto c = config;
        c.max_new_tokens = 24;
        INFO("num_beams " << c.num_beams);
        auto const a = pa::generate(ctx, lora, prompts, c);
        auto const b = pa::generate(ctx, merged, prompts, c);
        for (std::size_t i = 0; i < a.size(); ++i) {
            CHECK(a[i].tokens == b[i].tokens);
            CHECK(a[i].tokens.size() == 24);
            CHECK(std::abs(a[i].score - b[i].score) <= 1e-4 * std::abs(a[i].score));
        }
        auto const base_tokens = g.greedy[0];  // the adapter changes the model: the output is not the base model's
        if (c.num_beams == 1)
            CHECK(std::vector<std::int32_t>(a[0].tokens.begin(), a[0].tokens.begin() + 12) != base_tokens);
    }
}

}  // namespace

TEMPLATE_TEST_CASE("cached generation matches HF generate on BLOOM (ALiBi)", "[golden][generate][bloom]", float,
                   double) {
    check_model<pa::Bloom<pa::bloom::SizeTiny>, TestType>("bloom");
}

TEMPLATE_TEST_CASE("cached generation matches HF generate on GPT-NeoX (partial rotary, parallel residual)",
                   "[golden][generate][gpt_neox]", float, double) {
    check_model<pa::GptNeoX<pa::gpt_neox::SizeTiny>, TestType>("gpt_neox");
}

TEMPLATE_TEST_CASE("cached generation matches HF generate on LLaMA (grouped-query attention)",
                   "[golden][generate][llama]", float, double) {
    check_model<pa::Llama<pa::llama::SizeTiny>, TestType>("llama");
    check_model<pa::Llama<pa::llama::SizeTinyTied>, TestType>("llama_tied");
}

TEST_CASE("a LoRA adapter generates the same tokens unmerged and merged", "[golden][generate][lora]") {
    using LlamaLora = pa::LoRA<4, 8, pa::site::Query, pa::site::Value>;
    using QkvLora = pa::LoRA<4, 8, pa::site::Qkv>;
    check_lora_merge<pa::Bloom<pa::bloom::SizeTiny, QkvLora>, pa::Bloom<pa::bloom::SizeTiny>>("bloom");
    check_lora_merge<pa::GptNeoX<pa::gpt_neox::SizeTiny, QkvLora>, pa::GptNeoX<pa::gpt_neox::SizeTiny>>("gpt_neox");
    check_lora_merge<pa::Llama<pa::llama::SizeTiny, LlamaLora>, pa::Llama<pa::llama::SizeTiny>>("llama");
    check_lora_merge<pa::Llama<pa::llama::SizeTinyTied, LlamaLora>, pa::Llama<pa::llama::SizeTinyTied>>(
        "llama_tied");
}
