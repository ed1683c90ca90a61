/// @file tests/support/fixtures.hpp
/// @brief Where the real artifacts (../shared/fixtures) and the committed golden files live.
#pragma once

#include <cstdlib>
#include <filesystem>

namespace polyalpaca::testing {

/// $POLYALPACA_FIXTURES, else ../shared/fixtures beside the repository.
inline std::filesystem::path fixtures_dir() {
    if (char const* env = std::getenv("POLYALPACA_FIXTURES")) return env;
    return std::filesystem::path(POLYALPACA_SOURCE_DIR) / ".." / "shared" / "fixtures";
}

/// tests/golden/data in the repository.
inline std::filesystem::path golden_dir() { return std::filesystem::path(POLYALPACA_SOURCE_DIR) / "tests" / "golden" / "data"; }

}  // namespace polyalpaca::testing
