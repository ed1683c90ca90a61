// The copy ops: fused QKV split/merge in BLOOM's per-head layout, and gathering/scattering rows.
#include <polyalpaca/polyalpaca.hpp>

#include <catch2/catch.hpp>

namespace pa = polyalpaca;

TEST_CASE("split_fused_qkv reads BLOOM/NeoX's per-head [q|k|v] layout and merge inverts it", "[ops][qkv]") {
    pa::cpu::Context ctx;
    int const heads = 3, hd = 2, n = 4;
    pa::Matrix<float> fused(n, heads * 3 * hd);
    for (pa::Index i = 0; i < fused.size(); ++i) fused.data()[i] = float(i);
    pa::Matrix<float> q(n, heads * hd), k(n, heads * hd), v(n, heads * hd), back(n, heads * 3 * hd);
    pa::cpu::split_fused_qkv(ctx, pa::view(std::as_const(fused)), pa::view(q), pa::view(k), pa::view(v), heads, hd);
    // HF: fused.view(n, heads, 3, hd): q of head h is columns [h*3*hd, h*3*hd + hd)
    for (int r = 0; r < n; ++r)
        for (int h = 0; h < heads; ++h)
            for (int d = 0; d < hd; ++d) {
                CHECK(q(r, h * hd + d) == fused(r, h * 3 * hd + d));
                CHECK(k(r, h * hd + d) == fused(r, h * 3 * hd + hd + d));
                CHECK(v(r, h * hd + d) == fused(r, h * 3 * hd + 2 * hd + d));
            }
    pa::cpu::merge_fused_qkv(ctx, pa::view(std::as_const(q)), pa::view(std::as_const(k)), pa::view(std::as_const(v)),
                             pa::view(back), heads, hd);
    CHECK(back == fused);
    pa::Matrix<float> wrong(n, 5);
    REQUIRE_THROWS_AS(pa::cpu::split_fused_qkv(ctx, pa::view(std::as_const(wrong)), pa::view(q), pa::view(k),
                                               pa::view(v), heads, hd),
                      pa::Error);
}

TEST_CASE("gather_rows and scatter_add_rows move the chosen rows", "[ops][rows]") {
    pa::cpu::Context ctx;
    pa::Matrix<double> src(5, 3);
    for (pa::Index i = 0; i < src.size(); ++i) src.data()[i] = double(i);
    std::vector<std::int32_t> const rows{4, 0, 2};
    pa::Matrix<double> compact(3, 3);
    pa::cpu::gather_rows(ctx, pa::view(std::as_const(src)), rows, pa::view(compact));
    CHECK(compact.row(0) == src.row(4));
    CHECK(compact.row(1) == src.row(0));
    CHECK(compact.row(2) == src.row(2));
    pa::Matrix<double> dst = pa::Matrix<double>::Ones(5, 3);
    pa::cpu::scatter_add_rows(ctx, pa::view(std::as_const(compact)), rows, pa::view(dst));
    CHECK(dst.row(4) == (src.row(4).array() + 1).matrix());
    CHECK(dst.row(1) == pa::Matrix<double>::Ones(1, 3));
    std::vector<std::int32_t> const outside{7};
    pa::Matrix<double> one(1, 3);
    REQUIRE_THROWS_WITH(pa::cpu::gather_rows(ctx, pa::view(std::as_const(src)), outside, pa::view(one)),
                        Catch::Contains("row 7 outside [0, 5)"));
}
