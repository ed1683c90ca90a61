/// @file fuzz/study_file_fuzzer.cpp
/// @brief libFuzzer target: any bytes read as a study file end in a planned study (its runs, split by base model,
///        its missing files) or an Error, as `polyalpaca_study STUDY.json` reads it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "polyalpaca/study/planner.hpp"
#include "polyalpaca/study/study_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    namespace ps = polyalpaca::study;
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(std::string_view(reinterpret_cast<char const*>(data), size));
    } catch (nlohmann::json::exception const&) {
        return 0;  // read_study_file turns this into an Error naming the file
    }
    try {
        auto const study = ps::parse_study(j, "fuzz.json", "/nonexistent");
        for (auto const& part : ps::split_by_base_model(study)) (void)ps::plan_runs(part);
        (void)ps::plan_runs(study);
        (void)ps::missing_files(study);
    } catch (polyalpaca::Error const&) {
    }
    return 0;
}
