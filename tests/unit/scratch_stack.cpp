// ScratchStack: last-in-first-out temporaries, merged blocks, and a model whose backward temporaries do not
// grow with its depth.
#include <polyalpaca/polyalpaca.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <set>

namespace pa = polyalpaca;

namespace {
/// Host memory that counts what it hands out, so tests see every allocation.
struct CountingMemory {
    int* allocations;
    int* live;
    void* allocate(std::size_t bytes) {
        ++*allocations;
        ++*live;
        return pa::cpu::HostMemory{}.allocate(bytes);
    }
    void deallocate(void* p) noexcept {
        --*live;
        pa::cpu::HostMemory{}.deallocate(p);
    }
};

using Stack = pa::ScratchStack<CountingMemory>;

bool aligned(void const* p) { return reinterpret_cast<std::uintptr_t>(p) % Stack::alignment == 0; }

template <class Size>
std::size_t backward_peak_bytes() {
    pa::cpu::Context ctx;
    using Model = pa::Llama<Size, pa::LoRA<4, 8, pa::site::Query, pa::site::Value>>;
    pa::CausalLm<Model, pa::CpuEigen, float> net(ctx, {.seed = 3});
    xt::xtensor<std::int32_t, 2> ids = xt::xtensor<std::int32_t, 2>::from_shape({2, 9});
    for (std::size_t i = 0; i < ids.size(); ++i) ids.flat(i) = std::int32_t(i * 7 % Size::vocab);
    net.forward_backward(ctx, pa::make_lm_batch(ids));
    return ctx.temporaries.peak_bytes();
}

// A vocabulary of 8 keeps the LM head's chunk below the blocks' backward temporaries.
struct Tiny2 : pa::llama::SizeTiny {
    static constexpr int vocab = 8, layers = 2;
};
struct Tiny6 : pa::llama::SizeTiny {
    static constexpr int vocab = 8, layers = 6;
};
}  // namespace

TEST_CASE("frames give back what they took, newest first", "[scratch]") {
    int allocations = 0, live = 0;
    {
        Stack stack(CountingMemory{&allocations, &live});
        {
            pa::ScratchFrame outer(stack);
            auto a = outer.take<float>(3, 5);
            CHECK(aligned(a.data));
            CHECK(stack.peak_bytes() == Stack::alignment);
            {
                pa::ScratchFrame inner(stack);
                auto b = inner.take<double>(100, 10);  // 8000 bytes: a second block
                CHECK(aligned(b.data));
                CHECK(b.data != static_cast<void*>(a.data));
                CHECK(stack.peak_bytes() == Stack::alignment + 8192);
            }
            auto c = outer.take<float>(1, 1);  // after the inner frame ended: reuses its place
            CHECK(aligned(c.data));
            CHECK(stack.mark().in_use == 2 * Stack::alignment);
        }
        CHECK(stack.mark().in_use == 0);
        // Back at the bottom the blocks merged into one of the peak's size; the same pattern allocates nothing.
        CHECK(live == 1);
        CHECK(stack.reserved_bytes() == Stack::alignment + 8192);
        int const before = allocations;
        {
            pa::ScratchFrame outer(stack);
            auto a = outer.take<float>(3, 5);
            pa::ScratchFrame inner(stack);
            auto b = inner.take<double>(100, 10);
            CHECK(static_cast<void*>(b.data) == static_cast<void*>(reinterpret_cast<std::byte*>(a.data) + 256));
        }
        CHECK(allocations == before);
    }
    CHECK(live == 0);
}

TEST_CASE("views taken in one frame never overlap", "[scratch]") {
    int allocations = 0, live = 0;
    Stack stack(CountingMemory{&allocations, &live});
    pa::ScratchFrame frame(stack);
    std::set<std::pair<std::uintptr_t, std::uintptr_t>> spans;
    for (int i = 1; i <= 40; ++i) {
        auto v = frame.take<float>(i * 37, 3);
        auto const begin = reinterpret_cast<std::uintptr_t>(v.data);
        spans.insert({begin, begin + std::uintptr_t(v.size()) * sizeof(float)});
    }
    std::uintptr_t end = 0;
    for (auto const& [b, e] : spans) {
        CHECK(b >= end);
        end = e;
    }
    CHECK_THROWS_WITH(frame.take<float>(-1, 2), Catch::Contains("negative shape"));
}

TEST_CASE("a model's backward temporaries do not grow with its depth", "[scratch][model]") {
    auto const two = backward_peak_bytes<Tiny2>();
    auto const six = backward_peak_bytes<Tiny6>();
    // dh, dx, dy of the model and a block's own two (18, 32) float gradients come from the stack, and more.
    std::size_t const one_gradient = 18 * 32 * sizeof(float);
    CHECK(two > 5 * one_gradient);
    CHECK(six == two);
}
