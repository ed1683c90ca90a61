/// @file tests/consumer/main.cpp
/// @brief A downstream program: includes polyalpaca headers, uses them, and exits non-zero if anything is off.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include <polyalpaca/core/rng.hpp>
#include <polyalpaca/core/tensor.hpp>

namespace pa = polyalpaca;

int main() {
    // Two seeded generators agree, and a fresh seed gives the same stream again.
    pa::Rng rng(42);
    pa::Rng same(42);
    for (int i = 0; i < 8; ++i) {
        if (rng.next_u64() != same.next_u64()) {
            std::puts("consumer: FAIL: Rng(42) is not deterministic");
            return 1;
        }
    }

    // A 96 x 80 by 80 x 72 product through Eigen (which goes to BLAS when polyalpaca was built with it),
    // checked against a naive loop: proves the include paths, the definitions and the link line all arrive.
    pa::Index const n = 96, k = 80, m = 72;
    pa::Matrix<float> a(n, k), b(k, m);
    for (pa::Index i = 0; i < a.size(); ++i) a.data()[i] = float(rng.normal());
    for (pa::Index i = 0; i < b.size(); ++i) b.data()[i] = float(rng.normal());
    pa::View<float const> av(a.data(), n, k), bv(b.data(), k, m);
    pa::Matrix<float> c = av.map() * bv.map();  // (n, m)

    double worst = 0.0;
    for (pa::Index i = 0; i < n; ++i) {
        for (pa::Index j = 0; j < m; ++j) {
            double ref = 0.0, scale = 0.0;
            for (pa::Index p = 0; p < k; ++p) {
                ref += double(a(i, p)) * double(b(p, j));
                scale += std::abs(double(a(i, p)) * double(b(p, j)));
            }
            worst = std::max(worst, std::abs(double(c(i, j)) - ref) / (scale + 1e-30));
        }
    }
    // fp32 dot products of length k: the error is at most about k * 2^-24 of sum |a b|.
    double const tolerance = double(k + 1) * 0x1.0p-24;
    if (!(worst <= tolerance)) {
        std::printf("consumer: FAIL: GEMM relative error %.3g exceeds %.3g\n", worst, tolerance);
        return 1;
    }

    // Bad shapes throw polyalpaca::Error.
    bool threw = false;
    try {
        pa::require_shape(av, n, k + 1, "a");
    } catch (pa::Error const&) {
        threw = true;
    }
    if (!threw) {
        std::puts("consumer: FAIL: require_shape accepted a wrong shape");
        return 1;
    }

#ifdef EIGEN_USE_BLAS
    char const* gemm = "BLAS";
#else
    char const* gemm = "Eigen";
#endif
    std::printf("consumer: OK (polyalpaca headers, Rng, View, %s GEMM error %.2g <= %.2g)\n", gemm, worst, tolerance);
    return 0;
}
