// Catch2 main for tests of real artifacts in ../shared/fixtures: without them the test reports itself
// skipped (exit code 77) instead of failing, so a user's clone still passes.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>

#include "support/fixtures.hpp"

int main(int argc, char** argv) {
    auto const dir = polyalpaca::testing::fixtures_dir();
    if (!std::filesystem::is_directory(dir)) {
        std::printf("SKIPPED: the shared fixtures folder %s is absent (set POLYALPACA_FIXTURES to its path)\n",
                    dir.string().c_str());
        return 77;
    }
    return Catch::Session().run(argc, argv);
}
