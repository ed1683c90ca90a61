/// @file layers/mode.hpp
/// @brief What a forward pass needs besides its input: training or evaluation, and the dropout generator.
#pragma once

#include "polyalpaca/core/rng.hpp"

namespace polyalpaca {

/// Dropout is active only when `training` is set; it then draws from `rng`.
struct Mode {
    bool training = false;
    Rng* rng = nullptr;
};

}  // namespace polyalpaca
