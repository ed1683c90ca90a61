/// @file tokenizer/file_bytes.hpp
/// @brief A whole file's bytes, with errors that name the file.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/io/input_file.hpp"

namespace polyalpaca::tokenizer {

inline std::string read_file_bytes(std::filesystem::path const& path) {
    auto in = io::open_input_file(path, "the file");
    std::ostringstream buffer;
    buffer << in.rdbuf();
    if (in.bad()) fail(path.string(), ": read error");
    return std::move(buffer).str();
}

}  // namespace polyalpaca::tokenizer
