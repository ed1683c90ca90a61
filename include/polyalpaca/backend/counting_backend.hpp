/// @file backend/counting_backend.hpp
/// @brief A backend with storage types and no ops: lets a model type's parameter counts be read at compile time.
#pragma once

#include <vector>

namespace polyalpaca {

struct CountingBackend {
    struct Context {};
    template <class T>
    using Buffer = std::vector<T>;
};

}  // namespace polyalpaca
