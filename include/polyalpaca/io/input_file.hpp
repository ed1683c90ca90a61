/// @file io/input_file.hpp
/// @brief Opens a file the user named for reading, or fails with one sentence naming it and why: missing,
///        unreadable, or a directory (which std::ifstream opens without complaint and then reads as empty).
#pragma once

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca::io {

/// `path` opened for binary reading; `what` names the file in the error ("the test set", "the study file").
inline std::ifstream open_input_file(std::filesystem::path const& path, std::string_view what) {
    std::error_code error;
    if (std::filesystem::is_directory(path, error)) fail(path.string(), ": cannot open ", what, ": it is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path.string(), ": cannot open ", what, ": ", std::strerror(errno));
    return in;
}

}  // namespace polyalpaca::io
