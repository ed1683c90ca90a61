/// @file layers/repeat.hpp
/// @brief Repeat<N, Block>: N blocks of one type, run in order forward and in reverse backward.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace polyalpaca {

/// N is part of the type (the model's depth); block i is constructed with its index so it can name
/// its parameters ("transformer.h.<i>....").
template <int N, class Block>
class Repeat {
    static_assert(N > 0, "a model needs at least one transformer block");

public:
    static constexpr int count = N;
    static constexpr auto parameter_count = Block::parameter_count * N;

    template <class... Args>
    explicit Repeat(Args const&... args) {
        blocks_.reserve(N);
        for (int i = 0; i < N; ++i) blocks_.emplace_back(i, args...);
    }

    Block& operator[](int i) { return blocks_[std::size_t(i)]; }
    Block const& operator[](int i) const { return blocks_[std::size_t(i)]; }
    auto begin() { return blocks_.begin(); }
    auto end() { return blocks_.end(); }
    auto rbegin() { return blocks_.rbegin(); }
    auto rend() { return blocks_.rend(); }

    template <class F>
    void visit_parameters(F&& f) {
        for (auto& b : blocks_) b.visit_parameters(f);
    }

private:
    std::vector<Block> blocks_;
};

}  // namespace polyalpaca
