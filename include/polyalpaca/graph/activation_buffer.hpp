/// @file graph/activation_buffer.hpp
/// @brief Backend memory for a tensor a layer keeps between forward and backward.
#pragma once

#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca {

/// Grows to the largest (rows, cols) asked for and is reused afterwards: after the first step of a
/// given (batch, seq) a training loop allocates nothing.
template <class Backend, class T>
class ActivationBuffer {
public:
    View<T> ensure(Index rows, Index cols) {
        if (Index(storage_.size()) < rows * cols) storage_ = typename Backend::template Buffer<T>(std::size_t(rows * cols));
        view_ = {storage_.data(), rows, cols};
        return view_;
    }
    /// The view of the last ensure().
    View<T> view() const { return view_; }
    T* data() const { return view_.data; }

private:
    typename Backend::template Buffer<T> storage_;
    View<T> view_;
};

}  // namespace polyalpaca
