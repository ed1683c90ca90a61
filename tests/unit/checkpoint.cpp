// Training checkpoints: an interrupted run resumed from its checkpoint continues exactly as the uninterrupted one.
#include <polyalpaca/data/markov_stream.hpp>
#include <polyalpaca/polyalpaca.hpp>
#include <polyalpaca/train/checkpoint.hpp>

#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>

namespace pa = polyalpaca;
namespace fs = std::filesystem;

namespace {
using Model = pa::Llama<pa::llama::SizeTiny, pa::LoRA<4, 8, pa::site::Query, pa::site::Value>>;
using Net = pa::CausalLm<Model, pa::CpuEigen, float>;

fs::path fresh_dir(char const* name) {
    auto const dir = fs::temp_directory_path() / ("polyalpaca_test_" + std::string(name) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    return dir;
}

// Runs steps [from, to) of a deterministic run: data and dropout depend only on the step and the restored state.
void run_steps(pa::cpu::Context& ctx, Net& net, pa::AdamW<pa::CpuEigen, float>& adamw, long from, long to) {
    for (long step = from; step < to; ++step) {
        pa::MarkovStream stream(96, 2, 1000 + std::uint64_t(step));
        std::vector<pa::TokenBatch> micro{stream.next_batch(2, 9)};
        pa::train_step(ctx, net, adamw, std::span<pa::TokenBatch const>(micro), 1e-2, 1.0, step);
    }
}

std::vector<float> trainable(Net& net) {
    auto& s = net.parameters();
    return {s.trainable_values(), s.trainable_values() + s.trainable_count()};
}
}  // namespace

TEST_CASE("resume from a checkpoint reproduces the uninterrupted run bit for bit", "[train][checkpoint]") {
    pa::cpu::Context ctx;
    auto const dir = fresh_dir("resume");
    pa::NetworkOptions const options{.seed = 5, .adapter_dropout = 0.1};

    Net straight(ctx, options);
    pa::AdamW<pa::CpuEigen, float> adamw_straight(straight.parameters().trainable_count());
    run_steps(ctx, straight, adamw_straight, 0, 6);

    Net first(ctx, options);
    pa::AdamW<pa::CpuEigen, float> adamw_first(first.parameters().trainable_count());
    run_steps(ctx, first, adamw_first, 0, 3);
    pa::RunState state{.step = 3, .epoch = 0, .position = 3, .tokens = 54};
    state.dropout_rng = first.dropout_rng().state();
    pa::save_checkpoint(ctx, dir, first.parameters(), adamw_first, state);

    Net resumed(ctx, options);  // a new process: same base weights, adapters from the checkpoint
    pa::AdamW<pa::CpuEigen, float> adamw_resumed(resumed.parameters().trainable_count());
    auto const checkpoints = pa::list_checkpoints(dir);
    REQUIRE(checkpoints.size() == 1);
    auto const back = pa::load_checkpoint(ctx, checkpoints.back().second, resumed.parameters(), adamw_resumed);
    CHECK(back.step == 3);
    CHECK(back.tokens == 54);
    resumed.dropout_rng().set_state(back.dropout_rng);
    run_steps(ctx, resumed, adamw_resumed, back.step, 6);

    auto const a = trainable(straight), b = trainable(resumed);
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    CHECK(adamw_resumed.step_count() == 6);
    fs::remove_all(dir);
}

TEST_CASE("an interrupted checkpoint write is ignored and old checkpoints are pruned", "[train][checkpoint]") {
    pa::cpu::Context ctx;
    auto const dir = fresh_dir("prune");
    Net net(ctx);
    pa::AdamW<pa::CpuEigen, float> adamw(net.parameters().trainable_count());
    for (long step : {10, 20, 30, 40}) pa::save_checkpoint(ctx, dir, net.parameters(), adamw, pa::RunState{.step = step});
    fs::create_directories(dir / ".checkpoint-50.tmp");  // what a kill during a write leaves behind
    fs::create_directories(dir / "checkpoint-60");         // a directory without state.json is not complete
    CHECK(pa::list_checkpoints(dir).back().first == 40);
    pa::prune_checkpoints(dir, 2, 10);
    std::vector<long> left;
    for (auto const& [step, path] : pa::list_checkpoints(dir)) left.push_back(step);
    CHECK(left == std::vector<long>{10, 30, 40});
    CHECK(!fs::exists(dir / ".checkpoint-50.tmp"));  // the killed write's leftovers go with the pruning
    fs::remove_all(dir);
}

TEST_CASE("a checkpoint write that fails leaves nothing behind", "[train][checkpoint][bad_input]") {
    pa::cpu::Context ctx;
    auto const dir = fresh_dir("failed_write");
    Net net(ctx);
    pa::AdamW<pa::CpuEigen, float> adamw(net.parameters().trainable_count());
    pa::save_checkpoint(ctx, dir, net.parameters(), adamw, pa::RunState{.step = 10});
    // An optimizer of another size makes the write fail after its temp directory was made (as a full disk would).
    pa::AdamW<pa::CpuEigen, float> other(net.parameters().trainable_count() + 1);
    CHECK_THROWS_WITH(pa::save_checkpoint(ctx, dir, net.parameters(), other, pa::RunState{.step = 20}),
                      Catch::Contains("the optimizer holds"));
    CHECK(!fs::exists(dir / ".checkpoint-20.tmp"));
    CHECK(!fs::exists(dir / "checkpoint-20"));
    CHECK(pa::list_checkpoints(dir).size() == 1);
    fs::remove_all(dir);
}

TEST_CASE("a checkpoint of another adapter is refused with a clear message", "[train][checkpoint][bad_input]") {
    pa::cpu::Context ctx;
    auto const dir = fresh_dir("mismatch");
    Net net(ctx);
    pa::AdamW<pa::CpuEigen, float> adamw(net.parameters().trainable_count());
    auto const saved = pa::save_checkpoint(ctx, dir, net.parameters(), adamw, pa::RunState{.step = 1});
    pa::CausalLm<pa::Llama<pa::llama::SizeTiny, pa::LoRA<2, 8, pa::site::Query>>, pa::CpuEigen, float> other(ctx);
    pa::AdamW<pa::CpuEigen, float> other_adamw(other.parameters().trainable_count());
    REQUIRE_THROWS_WITH(pa::load_checkpoint(ctx, saved, other.parameters(), other_adamw),
                        Catch::Contains("written for another model or adapter"));
    fs::remove_all(dir);
}
