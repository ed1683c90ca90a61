/// @file tests/unit/generate_processors.cpp
/// @brief Logits processors, presets, BeamSearch bookkeeping and generate()'s stopping rules on hand-computed cases.
#include <polyalpaca/generate/generate.hpp>
#include <polyalpaca/polyalpaca.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

namespace pa = polyalpaca;
namespace gen = polyalpaca::generation;

namespace {

double const inf = std::numeric_limits<double>::infinity();
using Ids = std::vector<std::int32_t>;

std::vector<double> logs(std::vector<double> const& probs) {
    std::vector<double> out;
    for (double p : probs) out.push_back(std::log(p));
    return out;
}

}  // namespace

TEST_CASE("repetition penalty divides positive and multiplies negative scores of seen tokens once",
          "[unit][generate]") {
    std::vector<double> s{2.0, -2.0, 0.5, 1.0};
    Ids const history{0, 1, 1};
    gen::repetition_penalty(s, history, 2.0);
    CHECK(s == std::vector<double>{1.0, -4.0, 0.5, 1.0});
    gen::repetition_penalty(s, history, 1.0);
    CHECK(s == std::vector<double>{1.0, -4.0, 0.5, 1.0});
    Ids const bad{4};
    CHECK_THROWS_WITH(gen::repetition_penalty(s, bad, 1.1), Catch::Contains("token 4"));
}

TEST_CASE("no-repeat n-gram bans the tokens that would repeat an n-gram of the history", "[unit][generate]") {
    Ids const history{1, 2, 3, 1, 2};
    auto banned = [&](int n, Ids const& h) {
        std::vector<double> s(5, 0.0);
        gen::no_repeat_ngram(s, h, n);
        Ids out;
        for (int t = 0; t < 5; ++t)
            if (s[std::size_t(t)] == -inf) out.push_back(t);
        return out;
    };
    CHECK(banned(3, history) == Ids{3});        // "1 2" was followed by 3
    CHECK(banned(2, history) == Ids{3});        // "2" was followed by 3
    CHECK(banned(1, history) == Ids{1, 2, 3});  // every token seen
    CHECK(banned(4, history).empty());          // "3 1 2" never occurred before
    CHECK(banned(3, Ids{1}).empty());           // too short to complete a 3-gram
    CHECK(banned(0, history).empty());          // off
    CHECK(banned(2, Ids{1, 2, 1, 2}) == Ids{1});
    CHECK(banned(2, Ids{4, 4, 4}) == Ids{4});
}

TEST_CASE("temperature, top-k and top-p follow HF's warpers", "[unit][generate]") {
    std::vector<double> s{1.0, -2.0, 4.0};
    gen::temperature(s, 2.0);
    CHECK(s == std::vector<double>{0.5, -1.0, 2.0});
    CHECK_THROWS(gen::temperature(s, 0.0));

    std::vector<double> k{1, 3, 3, 2};
    gen::top_k(k, 2);  // the 2nd largest is 3: both 3s stay
    CHECK(k == std::vector<double>{-inf, 3, 3, -inf});
    std::vector<double> k3{1, 3, 3, 2};
    gen::top_k(k3, 3);
    CHECK(k3 == std::vector<double>{-inf, 3, 3, 2});
    std::vector<double> k0{1, 3, 3, 2};
    gen::top_k(k0, 0);
    CHECK(k0 == std::vector<double>{1, 3, 3, 2});
    gen::top_k(k0, 100);  // clamped to the vocabulary: nothing removed
    CHECK(k0 == std::vector<double>{1, 3, 3, 2});

    auto p = [](double top_p) {
        auto s = logs({0.1, 0.2, 0.3, 0.4});
        gen::top_p(s, top_p);
        std::vector<bool> kept;
        for (double v : s) kept.push_back(v != -inf);
        return kept;
    };
    CHECK(p(1.0) == std::vector<bool>{true, true, true, true});
    CHECK(p(0.75) == std::vector<bool>{false, true, true, true});   // removes cumulative 0.1 <= 0.25
    CHECK(p(0.5) == std::vector<bool>{false, false, true, true});   // removes 0.1, 0.3 <= 0.5
    CHECK(p(0.01) == std::vector<bool>{false, false, false, true});  // the most likely token always stays
    std::vector<double> bad{0.0};
    CHECK_THROWS(gen::top_p(bad, 0.0));
}

TEST_CASE("processors run in HF's order and warpers only when sampling", "[unit][generate]") {
    pa::GenerationConfig c;
    c.no_repeat_ngram_size = 1;
    c.top_k = 1;
    c.temperature = 2.0;
    Ids const history{0};
    std::vector<double> greedy{5, 4, 1};
    gen::process(greedy, history, c);  // not sampling: no temperature, no top-k
    CHECK(greedy == std::vector<double>{-inf, 4, 1});
    c.do_sample = true;
    std::vector<double> sampled{5, 4, 1};
    gen::process(sampled, history, c);  // the ban comes before top-k, so token 1 survives
    CHECK(sampled == std::vector<double>{-inf, 2, -inf});

    std::vector<double> ties{1, 3, 3};
    CHECK(gen::argmax(ties) == 1);
    std::vector<double> none{-inf, -inf};
    CHECK_THROWS_WITH(gen::log_softmax(none), Catch::Contains("banned"));
}

TEST_CASE("sampling draws tokens with their probabilities and never a banned one", "[unit][generate]") {
    pa::Rng rng(3);
    auto const log_probs = logs({0.2, 0.5, 0.0, 0.3});  // token 2 has probability 0 (-inf)
    std::vector<int> counts(4, 0);
    int const draws = 100000;
    for (int i = 0; i < draws; ++i) ++counts[std::size_t(gen::sample(log_probs, rng))];
    CHECK(counts[2] == 0);
    CHECK(std::abs(counts[0] / double(draws) - 0.2) < 0.01);
    CHECK(std::abs(counts[1] / double(draws) - 0.5) < 0.01);
    CHECK(std::abs(counts[3] / double(draws) - 0.3) < 0.01);
}

TEST_CASE("generation presets and names", "[unit][generate]") {
    auto const g = pa::GenerationConfig::greedy(7);
    CHECK(g.max_new_tokens == 7);
    CHECK(g.num_beams == 1);
    CHECK_FALSE(g.do_sample);
    for (bool full : {false, true}) {
        auto const p = pa::GenerationConfig::paper(full);
        CHECK(p.num_beams == 4);
        CHECK(p.max_new_tokens == 256);
        CHECK(p.no_repeat_ngram_size == 6);
        CHECK(p.repetition_penalty == (full ? 1.1 : 1.0));
        CHECK(p.length_penalty == 1.0);
        CHECK(p.early_stopping == pa::EarlyStopping::Heuristic);
        CHECK_FALSE(p.do_sample);
    }
    CHECK(pa::GenerationConfig::from_name("paper-full").repetition_penalty == 1.1);
    CHECK(pa::GenerationConfig::from_name("paper-lora").repetition_penalty == 1.0);
    CHECK(pa::GenerationConfig::from_name("greedy").num_beams == 1);
    CHECK(pa::GenerationConfig::from_name("sample").do_sample);
    CHECK_THROWS_WITH(pa::GenerationConfig::from_name("beam"), Catch::Contains("\"beam\" is unknown"));
    CHECK(pa::early_stopping_from_string("never") == pa::EarlyStopping::Never);
    CHECK(pa::early_stopping_from_string("true") == pa::EarlyStopping::AllFinished);
    CHECK(pa::early_stopping_from_string("false") == pa::EarlyStopping::Heuristic);
    CHECK_THROWS(pa::early_stopping_from_string("maybe"));

    auto beam_sampling = pa::GenerationConfig::paper(false);
    beam_sampling.do_sample = true;
    CHECK_THROWS_WITH(pa::validate(beam_sampling, 100), Catch::Contains("beam sampling"));
    auto eos = pa::GenerationConfig::greedy(1);
    eos.eos_token_ids = {100};
    CHECK_THROWS_WITH(pa::validate(eos, 100), Catch::Contains("eos token id 100"));
}

namespace {

/// 2 beams, vocabulary {0, 1, 2 = eos}, 3 new tokens at most (the walk-through in each test's comments).
pa::GenerationConfig two_beams(pa::EarlyStopping stopping) {
    auto c = pa::GenerationConfig::greedy(3);
    c.num_beams = 2;
    c.eos_token_ids = {2};
    c.early_stopping = stopping;
    return c;
}

std::vector<double> join(std::vector<double> a, std::vector<double> const& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

/// Steps 1 and 2 of the walk-through; after them the finished hypotheses are [2] (log .4) and [0, 2].
void first_two_steps(gen::BeamSearch& search) {
    // step 1: only beam 0 spreads. Candidates 0 (log .5), 2 = eos (log .4), 1 (log .1): eos is among the best
    // 2, so [2] finishes with score log .4 / 1; the running beams are [0] and [1].
    auto c1 = search.step(join(logs({.5, .1, .4}), logs({.5, .1, .4})));
    REQUIRE(c1.size() == 2);
    CHECK((c1[0].source == 0 && c1[0].token == 0 && c1[1].source == 0 && c1[1].token == 1));
    REQUIRE(search.finished()[0].finished);
    CHECK(search.finished()[0].tokens == Ids{2});
    CHECK(search.finished()[0].score == Approx(std::log(.4)));
    CHECK_FALSE(search.finished()[1].finished);
    // step 2: [0,0] = log .5 + log .9 is best, [1,2] = log .1 + log .8 second (eos: finishes with score / 2),
    // then [0,1] and [0,2] tie (log .5 + log .05; the lower index first).
    auto c2 = search.step(join(logs({.9, .05, .05}), logs({.1, .1, .8})));
    CHECK((c2[0].source == 0 && c2[0].token == 0 && c2[1].source == 0 && c2[1].token == 1));
    CHECK(search.running(0).tokens == Ids{0, 0});
    CHECK(search.running(1).tokens == Ids{0, 1});
    CHECK(search.finished()[0].tokens == Ids{2});
    CHECK(search.finished()[1].tokens == Ids{1, 2});
    CHECK(search.finished()[1].score == Approx((std::log(.1) + std::log(.8)) / 2));
}

}  // namespace

TEST_CASE("beam search: end-of-sequence hypotheses, length penalty and the last step as HF", "[unit][generate]") {
    gen::BeamSearch search(two_beams(pa::EarlyStopping::Heuristic), 3);
    first_two_steps(search);
    // best running log(.5 * .9) / 2 beats the worst finished: the search goes on.
    CHECK_FALSE(search.done());
    // step 3 is the last: the best two candidates [0,0,0] and [0,0,1] finish (scores / 3) and beat both.
    search.step(join(logs({.5, .25, .25}), logs({1. / 3, 1. / 3, 1. / 3})));
    CHECK(search.done());
    CHECK(search.finished()[0].tokens == Ids{0, 0, 0});
    CHECK(search.finished()[0].score == Approx((std::log(.5) + std::log(.9) + std::log(.5)) / 3));
    CHECK(search.finished()[1].tokens == Ids{0, 0, 1});
}

TEST_CASE("beam search: early_stopping true stops once num_beams hypotheses finished", "[unit][generate]") {
    gen::BeamSearch search(two_beams(pa::EarlyStopping::AllFinished), 3);
    first_two_steps(search);
    CHECK(search.done());
    CHECK(search.finished()[0].tokens == Ids{2});
}

TEST_CASE("beam search: the heuristic stops when the best running beam cannot win", "[unit][generate]") {
    auto c = two_beams(pa::EarlyStopping::Heuristic);
    c.max_new_tokens = 10;
    gen::BeamSearch search(c, 3);
    // step 1: eos (log .6) and token 1 (log .3) lead; [2] finishes, running [1] and [0] (log .1).
    search.step(join(logs({.1, .3, .6}), logs({.1, .3, .6})));
    CHECK_FALSE(search.done());  // only one finished hypothesis
    // step 2: [1,2] finishes with (log .3 + log .9) / 2 = -0.65; the best running beam [1,0] at
    // (log .3 + log .05) / 2 = -2.1 cannot beat the worst finished one: done with 8 tokens left.
    search.step(join(logs({.05, .05, .9}), logs({.05, .05, .9})));
    CHECK(search.done());
    CHECK(search.finished()[0].tokens == Ids{2});
    CHECK(search.finished()[1].tokens == Ids{1, 2});
    // with early_stopping "never" and a positive length penalty the running beam is scored at 10 tokens
    // (-2.1 * 2 / 10 = -0.42 > -0.65): the search goes on.
    c.early_stopping = pa::EarlyStopping::Never;
    gen::BeamSearch never(c, 3);
    never.step(join(logs({.1, .3, .6}), logs({.1, .3, .6})));
    never.step(join(logs({.05, .05, .9}), logs({.05, .05, .9})));
    CHECK_FALSE(never.done());
}

TEST_CASE("generate: max_new_tokens, end-of-sequence, sampling seeds on a random tiny LLaMA", "[unit][generate]") {
    using Net = pa::CausalLm<pa::Llama<pa::llama::SizeTiny>, pa::CpuEigen, float>;
    pa::cpu::Context ctx;
    Net net(ctx, {.seed = 7});
    std::vector<Ids> const prompts{{1, 5, 9}, {1, 2}, {7}};
    auto const span = std::span<Ids const>(prompts);

    auto const five = pa::generate(ctx, net, span, pa::GenerationConfig::greedy(5));
    for (auto const& g : five) CHECK(g.tokens.size() == 5);
    auto const none = pa::generate(ctx, net, span, pa::GenerationConfig::greedy(0));
    for (auto const& g : none) CHECK(g.tokens.empty());

    auto stop = pa::GenerationConfig::greedy(5);  // prompt 0's third token as end-of-sequence
    stop.eos_token_ids = {five[0].tokens[2]};
    auto const stopped = pa::generate(ctx, net, span, stop);
    CHECK(stopped[0].stopped_at_eos);
    CHECK(stopped[0].tokens.size() <= 2);
    CHECK(std::equal(stopped[0].tokens.begin(), stopped[0].tokens.end(), five[0].tokens.begin()));

    pa::GenerationProgress progress;
    int calls = 0;
    progress.on_step = [&](pa::GenerationProgress const&) { ++calls; };
    auto one_token = pa::GenerationConfig::sample(11);  // top_k 1: sampling can only take the greedy token
    one_token.max_new_tokens = 5;
    one_token.top_k = 1;
    auto const forced = pa::generate(ctx, net, span, one_token, &progress);
    for (std::size_t i = 0; i < prompts.size(); ++i) CHECK(forced[i].tokens == five[i].tokens);
    CHECK(calls == 6);  // prefill and 5 steps
    CHECK(progress.prompt_tokens == 6);
    CHECK(progress.decoded_tokens == 3 * 4);  // the 5th token of each prompt needs no forward

    auto hot = pa::GenerationConfig::sample(1);
    hot.max_new_tokens = 24;
    hot.temperature = 3.0;
    hot.top_k = 0;
    auto const a = pa::generate(ctx, net, span, hot);
    auto const b = pa::generate(ctx, net, span, hot);
    hot.seed = 2;
    auto const c = pa::generate(ctx, net, span, hot);
    for (std::size_t i = 0; i < prompts.size(); ++i) {
        CHECK(a[i].tokens == b[i].tokens);
        CHECK(a[i].tokens != c[i].tokens);
    }
    std::vector<Ids> const empty{{}};
    CHECK_THROWS_WITH(pa::generate(ctx, net, std::span<Ids const>(empty), hot), Catch::Contains("prompt 0 is empty"));
}
