/// @file core/rng.hpp
/// @brief A small seeded generator (xoshiro256**) whose whole state can be saved and restored.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>

namespace polyalpaca {

/// Deterministic across platforms: the same seed gives the same stream everywhere.
class Rng {
public:
    using State = std::array<std::uint64_t, 4>;

    explicit Rng(std::uint64_t seed = 0) { reseed(seed); }

    void reseed(std::uint64_t seed) {
        for (auto& word : state_) word = splitmix64(seed);
    }
    State const& state() const { return state_; }
    void set_state(State const& s) { state_ = s; }

    std::uint64_t next_u64() {
        std::uint64_t const result = rotl(state_[1] * 5, 7) * 9;
        std::uint64_t const t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }
    /// Uniform in [0, 1) with 53 random bits.
    double uniform() { return double(next_u64() >> 11) * 0x1.0p-53; }
    /// Uniform in [lo, hi).
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
    /// Uniform integer in [0, n).
    std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next_u64() % n; }
    /// Standard normal (Box-Muller).
    double normal() {
        double u1 = uniform();
        while (u1 <= 0.0) u1 = uniform();
        double const u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
    }

    /// Fills out[0..n) with normal(0, std) values, using both values of each Box-Muller pair.
    template <class T>
    void fill_normal(T* out, std::size_t n, double std) {
        for (std::size_t i = 0; i < n; i += 2) {
            double u1 = uniform();
            while (u1 <= 0.0) u1 = uniform();
            double const radius = std * std::sqrt(-2.0 * std::log(u1));
            double const angle = 2.0 * std::numbers::pi * uniform();
            out[i] = T(radius * std::cos(angle));
            if (i + 1 < n) out[i + 1] = T(radius * std::sin(angle));
        }
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    static std::uint64_t splitmix64(std::uint64_t& x) {
        std::uint64_t z = (x += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    State state_{};
};

}  // namespace polyalpaca
