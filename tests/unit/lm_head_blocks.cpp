/// @file tests/unit/lm_head_blocks.cpp
/// @brief The CPU's LM head chunk in vocabulary blocks (backend/cpu/lm_head.hpp): cross_entropy over logits held as
///        column blocks equals the row-major cross_entropy bit for bit; lm_head_chunk_forward_backward over more
///        than one block (full blocks and a rest) equals the plain linear_forward + cross_entropy + linear_backward
///        in fp32 and in GemmMath::Bf16, up to the order of fp32 sums.
#include <cstdint>
#include <span>
#include <vector>

#include <catch2/catch.hpp>

#include "polyalpaca/backend/cpu_eigen.hpp"
#include "support/gradcheck.hpp"

using namespace polyalpaca;
using namespace polyalpaca::testing;

namespace {

constexpr int ignore_index = -100;

std::vector<std::int32_t> random_targets(Index n, Index vocab, std::uint64_t seed) {
    Rng rng(seed);
    std::vector<std::int32_t> targets(static_cast<std::size_t>(n));
    for (auto& t : targets) t = rng.uniform() < 0.25 ? ignore_index : std::int32_t(rng.below(std::uint64_t(vocab)));
    return targets;
}

/// Row-major (rows, vocab) logits as column blocks of `block` columns (cpu::detail::VocabBlocks).
template <class M>
auto as_vocab_blocks(M const& m, Index block) {
    using T = typename M::Scalar;
    std::vector<T> out(std::size_t(m.size()));
    cpu::detail::VocabBlocks<T> const blocks{out.data(), m.rows(), m.cols(), block};
    for (Index r = 0; r < m.rows(); ++r)
        for (Index c = 0; c < m.cols(); ++c) blocks.at(r, c) = m(r, c);
    return out;
}

/// max |a - b| over max |b|.
double scaled_difference(Matrix<float> const& a, Matrix<float> const& b) {
    return double((a - b).cwiseAbs().maxCoeff()) / double(b.cwiseAbs().maxCoeff());
}

}  // namespace

TEMPLATE_TEST_CASE("cross_entropy over vocabulary blocks equals the row-major form bit for bit", "[unit][loss]", float,
                   double) {
    cpu::Context ctx;
    bool const bf16 = GENERATE(false, true);  // exps in double, or in float as GemmMath::Bf16 takes them
    if (bf16 && !cpu::bf16_gemms_runnable()) return;
    if (bf16) ctx.set_gemm_math(cpu::GemmMath::Bf16);
    Index const rows = 9, vocab = 1000;
    Index const block = GENERATE(Index(7), Index(256), Index(300), Index(1000), Index(4096));
    Matrix<TestType> const logits = random_matrix<TestType>(rows, vocab, 3, 4.0);
    auto const targets = random_targets(rows, vocab, 4);
    Matrix<TestType> dlogits(rows, vocab);
    LossSum const plain = cpu::cross_entropy(ctx, view<TestType>(logits), targets, ignore_index,
                                             view<TestType>(dlogits), TestType(0.25));
    auto blocked = as_vocab_blocks(logits, block);
    View<TestType> const in_place(blocked.data(), rows, vocab);
    LossSum const by_blocks = cpu::cross_entropy_in_vocab_blocks(ctx, View<TestType const>(in_place), targets,
                                                                 ignore_index, in_place, TestType(0.25), block);
    CHECK(by_blocks.count == plain.count);
    CHECK(by_blocks.sum == plain.sum);
    CHECK(blocked == as_vocab_blocks(dlogits, block));
}

TEST_CASE("lm_head_chunk_forward_backward over vocabulary blocks equals the plain head", "[unit][loss]") {
    bool const bf16 = GENERATE(false, true);
    if (bf16 && !cpu::bf16_gemms_runnable()) {
        WARN("no bf16 matmul here (" << cpu::bf16_gemms_missing() << "): bf16 not checked");
        return;
    }
    Index const rows = 24, dim = 32;
    Index const vocab = 2 * cpu::lm_head_vocab_block + 1000;  // two full blocks and a rest
    Matrix<float> const hc = random_matrix<float>(rows, dim, 5, 1.0);
    Matrix<float> const w = random_matrix<float>(vocab, dim, 6, 0.5);
    auto const targets = random_targets(rows, vocab, 7);
    float const grad_scale = 1.0f / 18;

    auto run = [&](bool blocked, Matrix<float>& dhc, Matrix<float>& dw) {
        cpu::Context ctx;
        if (bf16) ctx.set_gemm_math(cpu::GemmMath::Bf16);
        Matrix<float> logits(rows, vocab);
        dhc.setConstant(rows, dim, 0.5f);  // added into
        dw.setConstant(vocab, dim, -0.25f);
        if (blocked)
            return cpu::lm_head_chunk_forward_backward<float>(ctx, view<float>(hc), view<float>(w), targets,
                                                              ignore_index, grad_scale, view<float>(logits),
                                                              view<float>(dhc), view<float>(dw));
        cpu::linear_forward(ctx, view<float>(hc), view<float>(w), static_cast<float const*>(nullptr),
                            view<float>(logits));
        auto const loss = cpu::cross_entropy(ctx, view<float>(logits), targets, ignore_index, view<float>(logits),
                                             grad_scale);
        cpu::linear_backward(ctx, view<float>(hc), view<float>(w), view<float>(logits), view<float>(dhc),
                             view<float>(dw), static_cast<float*>(nullptr));
        return loss;
    };
    Matrix<float> dhc_plain, dw_plain, dhc_blocks, dw_blocks;
    LossSum const plain = run(false, dhc_plain, dw_plain);
    LossSum const blocks = run(true, dhc_blocks, dw_blocks);
    CHECK(blocks.count == plain.count);
    // The logits of a block are the same dot products as the whole head's (fp32 sums over 32 terms, in oneDNN's
    // order either way); dX sums 2 full blocks and a rest in fp32 where one product summed 33,768 terms.
    CHECK(blocks.sum == Approx(plain.sum).epsilon(1e-6));
    CHECK(scaled_difference(dhc_blocks, dhc_plain) <= 1e-5);
    CHECK(scaled_difference(dw_blocks, dw_plain) <= 1e-5);
}

TEST_CASE("lm_head_chunk_forward_backward rejects misshapen operands", "[unit][loss]") {
    cpu::Context ctx;
    Matrix<float> const hc = random_matrix<float>(4, 8, 1), w = random_matrix<float>(50, 8, 2);
    Matrix<float> logits(4, 49), dhc(4, 8);
    std::vector<std::int32_t> const targets = {0, 1, 2, 3};
    REQUIRE_THROWS_WITH(cpu::lm_head_chunk_forward_backward<float>(ctx, view<float>(hc), view<float>(w), targets,
                                                                   ignore_index, 1.f, view<float>(logits),
                                                                   view<float>(dhc), View<float>{}),
                        Catch::Contains("lm_head_chunk_forward_backward: logits"));
}
