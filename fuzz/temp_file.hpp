/// @file fuzz/temp_file.hpp
/// @brief For targets whose reader takes a path: the input written to a file under /tmp, unique to this process
///        (its pid) and removed when the TempFile goes; and an input split into several files.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

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

/// The input as `count` files: each but the last preceded by its length (4 bytes, little-endian; cut to what is
/// left), the last the rest.
inline std::vector<std::string_view> length_prefixed_parts(std::string_view input, std::size_t count) {
    std::vector<std::string_view> parts;
    for (std::size_t i = 0; i + 1 < count; ++i) {
        std::uint32_t length = 0;
        if (input.size() >= 4) std::memcpy(&length, input.data(), 4);
        input.remove_prefix(std::min<std::size_t>(4, input.size()));
        parts.push_back(input.substr(0, std::min<std::size_t>(length, input.size())));
        input.remove_prefix(parts.back().size());
    }
    parts.push_back(input);
    return parts;
}

}  // namespace polyalpaca::fuzz
