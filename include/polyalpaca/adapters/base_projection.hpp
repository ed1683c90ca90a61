/// @file adapters/base_projection.hpp
/// @brief What a Linear layer hands its adapter branch: the base weight and bias the branch adapts.
#pragma once

#include "polyalpaca/core/parameter.hpp"

namespace polyalpaca {

/// The projection y = x W^T + b an adapter branch computes around: W (Out, In) and b (1, Out), which an adapter
/// leaves frozen (their grads are empty and null, so the base's backward ops skip them).
template <class T>
struct BaseProjection {
    Parameter<T>& weight;
    Parameter<T>& bias;
    bool has_bias;

    View<T const> w() const { return weight.values(); }
    T const* b() const { return has_bias ? bias.value : nullptr; }
    T* db() const { return has_bias ? bias.grad : nullptr; }
};

}  // namespace polyalpaca
