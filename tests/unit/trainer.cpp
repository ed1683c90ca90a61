// The Trainer on a synthetic three-language corpus: per-language validation loss falls, runs are deterministic,
// a run resumed from a checkpoint ends exactly where the uninterrupted run ends, and budgets are met as planned.
#include <polyalpaca/polyalpaca.hpp>
#include <polyalpaca/data/mixture.hpp>
#include <polyalpaca/train/flops.hpp>
#include <polyalpaca/train/trainer.hpp>

#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "support/trainer_corpus.hpp"

namespace pa = polyalpaca;
namespace fs = std::filesystem;

namespace {
using Model = pa::Llama<pa::llama::SizeTiny>;
using Net = pa::CausalLm<Model, pa::CpuEigen, float>;

using polyalpaca::test_corpus::Corpus;

pa::TrainerOptions options(fs::path dir) { return pa::test_corpus::corpus_options<Model>(std::move(dir), 8, 1); }

fs::path fresh(std::string const& name) {
    auto const dir = fs::temp_directory_path() / ("polyalpaca_trainer_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    return dir;
}

std::vector<float> weights(Net& net) {
    auto& s = net.parameters();
    return {s.trainable_values(), s.trainable_values() + s.trainable_count()};
}
}  // namespace

TEST_CASE("multilingual training lowers every language's validation loss", "[trainer]") {
    Corpus c;
    pa::cpu::Context ctx;
    Net net(ctx, {.seed = 1});
    auto const dir = fresh("falls");
    pa::Trainer<Model, pa::CpuEigen> trainer(ctx, net, options(dir));
    auto const before = trainer.evaluate(c.validation);
    auto const r = trainer.fit(pa::Mixture::multilingual(c.pools, 7), c.train, c.validation);
    CHECK(r.steps == 2 * 192 / 8);
    CHECK(r.spent.records == 2 * 192);
    for (auto const& lang : c.langs) {
        INFO(lang << ": " << before.at(lang).mean() << " -> " << r.best_language_losses.at(lang));
        CHECK(r.best_language_losses.at(lang) < 0.8 * before.at(lang).mean());
    }
    CHECK(fs::exists(dir / "metrics.jsonl"));
    CHECK(fs::exists(dir / "run_summary.json"));
    CHECK(pa::list_checkpoints(dir / "checkpoints").size() <= 2);  // the last one and the best

    // load_best gives a fresh model the best step's weights (and reads no optimizer state).
    Net fresh_net(ctx, {.seed = 1});
    auto const restore_dir = fresh("restore");
    pa::Trainer<Model, pa::CpuEigen> restorer(ctx, fresh_net, options(restore_dir));
    restorer.load_best(r);
    auto const restored = restorer.evaluate(c.validation);
    for (auto const& lang : c.langs)
        CHECK(restored.at(lang).mean() == Approx(r.best_language_losses.at(lang)).epsilon(1e-6));
    fs::remove_all(dir);
    fs::remove_all(restore_dir);
}

TEST_CASE("a run resumed from its checkpoint ends bit for bit where the uninterrupted run ends", "[trainer][resume]") {
    Corpus c;
    pa::cpu::Context ctx;
    auto const mixture = pa::Mixture::downsampled(c.pools, {.ids = pa::SampleIds::Disjoint}, 3);
    auto const straight_dir = fresh("straight"), resumed_dir = fresh("resumed");

    Net straight(ctx, {.seed = 2, .adapter_dropout = 0});
    auto o = options(straight_dir);
    o.keep_last = 10;
    pa::Trainer<Model, pa::CpuEigen>(ctx, straight, o).fit(mixture, c.train, c.validation);

    // What a kill after step 8 leaves: the checkpoint of step 8 and a metrics log that ran a little further.
    fs::create_directories(resumed_dir / "checkpoints");
    fs::copy(straight_dir / "checkpoints" / "checkpoint-8", resumed_dir / "checkpoints" / "checkpoint-8");
    fs::copy(straight_dir / "metrics.jsonl", resumed_dir / "metrics.jsonl");
    Net resumed(ctx, {.seed = 2});
    o.output_dir = resumed_dir;
    auto const r = pa::Trainer<Model, pa::CpuEigen>(ctx, resumed, o).fit(mixture, c.train, c.validation);
    CHECK(r.resumed);
    auto const a = weights(straight), b = weights(resumed);
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);

    std::ifstream ma(straight_dir / "metrics.jsonl"), mb(resumed_dir / "metrics.jsonl");
    std::string la, lb;
    int lines = 0;
    while (std::getline(ma, la) && std::getline(mb, lb)) {  // identical but for the tokens/s timing field
        auto ja = nlohmann::json::parse(la), jb = nlohmann::json::parse(lb);
        ja.erase("tokens_per_second");
        jb.erase("tokens_per_second");
        REQUIRE(ja == jb);
        ++lines;
    }
    CHECK(lines > 10);
    fs::remove_all(straight_dir);
    fs::remove_all(resumed_dir);
}

TEST_CASE("the paper's matched budgets are spent as planned and the same seed gives the same run", "[trainer][budget]") {
    Corpus c;
    pa::cpu::Context ctx;
    std::int64_t const C = 64;  // one epoch of one language
    auto const dir = fresh("budget");
    std::vector<double> final_losses;
    for (int repeat = 0; repeat < 2; ++repeat) {
        Net net(ctx, {.seed = 4});
        auto o = options(dir / std::to_string(repeat));
        o.budget = pa::Budget::records(C);
        auto const r = pa::Trainer<Model, pa::CpuEigen>(ctx, net, o).fit(
            pa::Mixture::downsampled(c.pools, {.ids = pa::SampleIds::Shared}, 5), c.train, c.validation);
        CHECK(r.spent.records == C);
        for (auto const& l : r.spent.languages) CHECK(l.records == (l.lang == "aa" ? 22 : 21));  // 64 = 22 + 21 + 21
        final_losses.push_back(r.best_loss);
    }
    CHECK(final_losses[0] == final_losses[1]);
    {
        Net net(ctx, {.seed = 4});
        auto o = options(dir / "multi");
        o.budget = pa::Budget::records(3 * C);
        auto const r = pa::Trainer<Model, pa::CpuEigen>(ctx, net, o).fit(pa::Mixture::multilingual(c.pools, 5), c.train,
                                                                         c.validation);
        CHECK(r.spent.records == 3 * C);
        CHECK(r.spent.flops > o.cost.per_token * double(r.spent.tokens));  // plus the attention term
    }
    fs::remove_all(dir);
}
