/// @file fuzz/temp_file.hpp
/// @brief For targets whose reader takes a path: the input written to a file under /tmp, unique to this process
///        (its pid) and removed when the TempFile goes.
#pragma once

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include <unistd.h>

namespace polyalpaca::fuzz {

class TempFile {
public:
    /// Writes `bytes` to /tmp/polyalpaca_fuzz_<pid>/<name>.
    TempFile(std::string_view name, std::string_view bytes)
        : path_(std::filesystem::temp_directory_path() / ("polyalpaca_fuzz_" + std::to_string(::getpid())) /
                std::string(name)) {
        std::filesystem::create_directories(path_.parent_path());
        std::ofstream out(path_, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), std::streamsize(bytes.size()));
    }
    ~TempFile() {
        std::error_code ignored;
        std::filesystem::remove(path_, ignored);
    }
    TempFile(TempFile const&) = delete;
    TempFile& operator=(TempFile const&) = delete;

    std::filesystem::path const& path() const { return path_; }

private:
    std::filesystem::path path_;
};

}  // namespace polyalpaca::fuzz
