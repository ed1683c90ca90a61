/// @file core/parameter.hpp
/// @brief A named weight tensor: its shape, whether it trains, how it is initialised, where it lives.
#pragma once

#include <string>

#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca {

/// Frozen weights keep no gradient and no optimizer state; trainable ones get both.
enum class Role { Frozen, Trainable };

/// Which file a parameter belongs in: the base model's HF checkpoint, or an adapter's PEFT file.
enum class Owner { Base, Adapter };

/// How a parameter is initialised before any checkpoint is loaded. RowNorms derives it from another weight, the row
/// norms of `source` (DoRA's magnitude starts as the norms of its base weight): it is drawn again whenever the base
/// weights change (ParameterStore::initialise_derived).
struct Init {
    enum class Kind { Zeros, Ones, Normal, Uniform, RowNorms } kind = Kind::Zeros;
    double scale = 0;    ///< standard deviation (Normal) or bound b of U(-b, b) (Uniform)
    std::string source;  ///< the weight whose row norms a RowNorms parameter starts as

    static Init zeros() { return {Kind::Zeros, 0, {}}; }
    static Init ones() { return {Kind::Ones, 0, {}}; }
    static Init normal(double std) { return {Kind::Normal, std, {}}; }
    static Init uniform(double bound) { return {Kind::Uniform, bound, {}}; }
    static Init row_norms(std::string of) { return {Kind::RowNorms, 0, std::move(of)}; }
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
    Owner owner = Owner::Base;
    /// Saved as a [1, n] matrix although rows == 1 (vectors are otherwise saved as [n]): IA3's input scales.
    bool saved_as_matrix = false;
    T* value = nullptr;
    T* grad = nullptr;

    Parameter() = default;
    Parameter(std::string n, Index r, Index c, Role ro, Init in, Owner ow = Owner::Base)
        : name(std::move(n)), rows(r), cols(c), role(ro), init(in), owner(ow) {}

    Index size() const { return rows * cols; }
    bool trainable() const { return role == Role::Trainable; }
    bool of_adapter() const { return owner == Owner::Adapter; }
    View<T const> values() const { return {value, rows, cols}; }
    View<T> mutable_values() { return {value, rows, cols}; }
    /// An empty view for frozen weights, so backward ops skip their gradient.
    View<T> grads() const { return {grad, grad ? rows : 0, grad ? cols : 0}; }
};

}  // namespace polyalpaca
