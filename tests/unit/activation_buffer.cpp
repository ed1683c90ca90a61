// activation_bytes_held(): what every ActivationBuffer holds, through growth, moves and destruction, and what a
// model keeps between forward and backward.
#include <polyalpaca/polyalpaca.hpp>

#include <catch2/catch.hpp>

#include <utility>

namespace pa = polyalpaca;

namespace {

std::size_t held() { return pa::activation_bytes_held().load(); }

// The bytes a model holds after one forward + backward of (batch, 9) tokens; checks they are given back with it.
template <class Size>
std::size_t model_activation_bytes(int batch) {
    std::size_t const before = held();
    std::size_t during = 0;
    {
        pa::cpu::Context ctx;
        using Model = pa::Llama<Size, pa::LoRA<4, 8, pa::site::Query, pa::site::Value>>;
        pa::CausalLm<Model, pa::CpuEigen, float> net(ctx, {.seed = 3});
        auto ids = xt::xtensor<std::int32_t, 2>::from_shape({std::size_t(batch), 9});
        for (std::size_t i = 0; i < ids.size(); ++i) ids.flat(i) = std::int32_t(i * 7 % Size::vocab);
        net.forward_backward(ctx, pa::make_lm_batch(ids));
        during = held() - before;
    }
    CHECK(held() == before);
    return during;
}

template <int Layers>
struct Tiny : pa::llama::SizeTiny {
    static constexpr int layers = Layers;
};

}  // namespace

TEST_CASE("activation buffers count what they hold through growth, moves and destruction", "[activation]") {
    std::size_t const before = held();
    {
        pa::ActivationBuffer<pa::CpuEigen, float> a;
        a.ensure(3, 4);
        CHECK(held() - before == 12 * sizeof(float));
        a.ensure(2, 2);  // fits: no new memory
        CHECK(held() - before == 12 * sizeof(float));
        a.ensure(5, 4);  // grows: the old memory is given back
        CHECK(held() - before == 20 * sizeof(float));

        pa::ActivationBuffer<pa::CpuEigen, float> b(std::move(a));
        CHECK(held() - before == 20 * sizeof(float));
        CHECK(b.view().rows == 5);
        pa::ActivationBuffer<pa::CpuEigen, float> c;
        c.ensure(1, 1);
        c = std::move(b);  // c's own memory is given back
        CHECK(held() - before == 20 * sizeof(float));
    }
    CHECK(held() == before);
}

TEST_CASE("a model holds the same activations in every block, in proportion to the batch", "[activation][model]") {
    auto const one = model_activation_bytes<Tiny<1>>(2);
    auto const two = model_activation_bytes<Tiny<2>>(2);
    auto const three = model_activation_bytes<Tiny<3>>(2);
    std::size_t const block = two - one;
    // A block keeps at least its input, q, k, v, the attention's output and the MLP's two (18, 64) projections.
    CHECK(block > (5 * 18 * 32 + 2 * 18 * 64) * sizeof(float));
    CHECK(three - two == block);
    CHECK(model_activation_bytes<Tiny<2>>(4) == 2 * two);
}
