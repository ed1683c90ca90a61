/// @file core/tensor.hpp
/// @brief Non-owning row-major views over backend memory, and Eigen maps of them on the host.
#pragma once

#include <cstdint>
#include <type_traits>

#include <Eigen/Core>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca {

using Index = std::int64_t;

template <class T>
using Matrix = Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using Vector = Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic, 1>;

/// A row-major (rows, cols) view over memory a backend owns. T may be const.
/// The view never owns or frees; on the GPU backend `data` is a device pointer.
template <class T>
struct View {
    T* data = nullptr;
    Index rows = 0;
    Index cols = 0;

    View() = default;
    View(T* d, Index r, Index c) : data(d), rows(r), cols(c) {}
    /// A mutable view converts to a const one.
    template <class U>
        requires(std::is_const_v<T> && std::is_same_v<std::remove_const_t<T>, U>)
    View(View<U> const& other) : data(other.data), rows(other.rows), cols(other.cols) {}

    Index size() const { return rows * cols; }
    bool empty() const { return data == nullptr || size() == 0; }
    T* row(Index r) const { return data + r * cols; }

    /// Host only: an Eigen map of the same memory.
    auto map() const {
        using M = std::conditional_t<std::is_const_v<T>, Matrix<T> const, Matrix<T>>;
        return Eigen::Map<M>(data, rows, cols);
    }
    /// Host only: the memory as one column vector of size() entries.
    auto flat() const {
        using V = std::conditional_t<std::is_const_v<T>, Vector<T> const, Vector<T>>;
        return Eigen::Map<V>(data, size());
    }
};

template <class T>
using RowMajorMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A view of a host matrix.
template <class T>
View<T> view(RowMajorMatrix<T>& m) { return {m.data(), m.rows(), m.cols()}; }
template <class T>
View<T const> view(RowMajorMatrix<T> const& m) { return {m.data(), m.rows(), m.cols()}; }

/// Throws Error naming `what` unless `v` has the expected shape.
template <class T>
void require_shape(View<T> const& v, Index rows, Index cols, char const* what) {
    require(v.rows == rows && v.cols == cols, what, ": expected shape (", rows, ", ", cols, "), got (", v.rows, ", ",
            v.cols, ")");
}

}  // namespace polyalpaca
