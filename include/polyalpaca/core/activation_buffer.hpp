/// @file core/activation_buffer.hpp
/// @brief Backend memory for a tensor a layer keeps between forward and backward.
#pragma once

#include <atomic>
#include <cstddef>
#include <utility>

#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca {

/// Bytes held by every ActivationBuffer alive in this process, on any backend: the memory models keep between
/// forward and backward (benchmarks report it next to weights and optimizer state).
inline std::atomic<std::size_t>& activation_bytes_held() {
    static std::atomic<std::size_t> bytes{0};
    return bytes;
}

/// Grows to the largest (rows, cols) asked for and is reused afterwards: after the first step of a
/// given (batch, seq) a training loop allocates nothing.
template <class Backend, class T>
class ActivationBuffer {
public:
    ActivationBuffer() = default;
    ActivationBuffer(ActivationBuffer&& other) noexcept
        : storage_(std::move(other.storage_)), view_(std::exchange(other.view_, {})),
          held_bytes_(std::exchange(other.held_bytes_, 0)) {}
    ActivationBuffer& operator=(ActivationBuffer&& other) noexcept {
        if (this != &other) {
            release();
            storage_ = std::move(other.storage_);
            view_ = std::exchange(other.view_, {});
            held_bytes_ = std::exchange(other.held_bytes_, 0);
        }
        return *this;
    }
    ~ActivationBuffer() { release(); }

    View<T> ensure(Index rows, Index cols) {
        if (Index(storage_.size()) < rows * cols) {
            release();
            storage_ = Storage(std::size_t(rows * cols));
            held_bytes_ = storage_.size() * sizeof(T);
            activation_bytes_held() += held_bytes_;
        }
        view_ = {storage_.data(), rows, cols};
        return view_;
    }
    /// The view of the last ensure().
    View<T> view() const { return view_; }
    T* data() const { return view_.data; }

private:
    using Storage = typename Backend::template Buffer<T>;

    void release() noexcept {
        storage_ = Storage();  // a move from an empty buffer frees the memory (clearing a vector would not)
        activation_bytes_held() -= std::exchange(held_bytes_, 0);
    }

    Storage storage_;
    View<T> view_;
    std::size_t held_bytes_ = 0;
};

}  // namespace polyalpaca
