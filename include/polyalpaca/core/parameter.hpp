/// @file core/parameter.hpp
/// @brief A named weight tensor: its shape, whether it trains, how it is initialised, where it lives.
#pragma once

#include <string>

#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca {

/// Frozen weights keep no gradient and no optimizer state; trainable ones get both.
enum class Role { Frozen, Trainable };

/// How a parameter is initialised before any checkpoint is loaded.
struct Init {
    enum class Kind { Zeros, Ones, Normal, Uniform } kind = Kind::Zeros;
    double scale = 0;  ///< standard deviation (Normal) or bound b of U(-b, b) (Uniform)

    static Init zeros() { return {Kind::Zeros, 0}; }
    static Init ones() { return {Kind::Ones, 0}; }
    static Init normal(double std) { return {Kind::Normal, std}; }
    static Init uniform(double bound) { return {Kind::Uniform, bound}; }
};

/// One weight tensor, (rows, cols) row-major; vectors are (1, n). Its memory belongs to a
/// ParameterStore arena: `value` always, `grad` only when the role is Trainable and the store has made its gradient
/// arena (training; ParameterStore::allocate_gradients).
template <class T>
struct Parameter {
    std::string name;  ///< the HF module path, e.g. "transformer.h.0.self_attention.dense.weight"
    Index rows = 0;
    Index cols = 0;
    Role role = Role::Trainable;
    Init init;
    T* value = nullptr;
    T* grad = nullptr;

    Parameter() = default;
    Parameter(std::string n, Index r, Index c, Role ro, Init in)
        : name(std::move(n)), rows(r), cols(c), role(ro), init(in) {}

    Index size() const { return rows * cols; }
    bool trainable() const { return role == Role::Trainable; }
    View<T const> values() const { return {value, rows, cols}; }
    View<T> mutable_values() { return {value, rows, cols}; }
    /// An empty view for frozen weights, so backward ops skip their gradient.
    View<T> grads() const { return {grad, grad ? rows : 0, grad ? cols : 0}; }
};

}  // namespace polyalpaca
