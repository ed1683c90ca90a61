/// @file io/model_spec.hpp
/// @brief io's names for ModelSpec (models/model_spec.hpp), the presets of every family and the parameter count of
///        a spec, each asked of the spec's family (models/families.hpp).
#pragma once

#include <cstdint>
#include <vector>

#include "polyalpaca/models/families.hpp"
#include "polyalpaca/models/model_spec.hpp"

namespace polyalpaca::io {

using polyalpaca::ModelSpec;
using polyalpaca::Preset;
using polyalpaca::spec_of;

/// Weights of the base model a spec describes (the tied head counted once), as its family counts them; 0 for a
/// family io does not know.
inline std::int64_t parameter_count(ModelSpec const& s) {
    std::int64_t count = 0;
    with_hf_family(s.family, [&]<class Hf>() { count = Hf::parameter_count(s); });
    return count;
}

/// Every size preset of models/*.hpp, by the name of the checkpoint it matches.
inline std::vector<Preset> const& presets() { return all_presets(); }

}  // namespace polyalpaca::io
