/// @file study/engine_registry.hpp
/// @brief The engines a study runner was compiled with, one per (preset, backend). The runner's build generates
///        the table (cmake/PolyalpacaStudy.cmake): each engine lives in a translation unit of its own, so the table
///        only declares their factories.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "polyalpaca/study/gpus.hpp"

namespace polyalpaca::study {

class StudyEngine;     // study/engine.hpp
struct EngineOptions;  // study/engine.hpp

struct CompiledEngine {
    std::string_view preset;   ///< e.g. "bloom-560m"
    std::string_view backend;  ///< "cpu" or "cuda"
    std::unique_ptr<StudyEngine> (*make)(EngineOptions const&);
};

/// Every engine of this runner, in the order of POLYALPACA_STUDY_PRESETS (defined by the generated table).
std::span<CompiledEngine const> compiled_engines();

/// The engine of (preset, backend), or nullptr.
inline CompiledEngine const* find_engine(std::string_view preset, std::string_view backend) {
    for (auto const& e : compiled_engines())
        if (e.preset == preset && e.backend == backend) return &e;
    return nullptr;
}

/// "bloom-study, bloom-560m": the presets compiled for `backend`.
inline std::string compiled_presets(std::string_view backend) {
    std::string out;
    for (auto const& e : compiled_engines())
        if (e.backend == backend) out += (out.empty() ? "" : ", ") + std::string(e.preset);
    return out.empty() ? "none" : out;
}

}  // namespace polyalpaca::study
