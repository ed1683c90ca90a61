/// @file tokenizer/file_bytes.hpp
/// @brief A whole file's bytes, with errors that name the file.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca::tokenizer {

inline std::string read_file_bytes(std::filesystem::path const& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path.string(), ": cannot open");
    std::ostringstream buffer;
    buffer << in.rdbuf();
    if (in.bad()) fail(path.string(), ": read error");
    return std::move(buffer).str();
}

}  // namespace polyalpaca::tokenizer
