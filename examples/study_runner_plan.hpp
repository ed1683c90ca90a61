// The study runner's plan (study/study_plan.hpp: --plan's table and the fit check made before any work), compiled in
// a translation unit of its own, examples/study_runner_plan.cpp: it instantiates the memory plan of every preset
// (study/memory_table.hpp), which takes as long to compile as the rest of the runner, so the two compile in parallel.
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include <polyalpaca/study/memory_table.hpp>
#include <polyalpaca/study/study_file.hpp>

namespace polyalpaca::study::runner {

/// study::print_plan.
int print_plan(StudyFile const& s, PlanDevice const& device);

/// study::require_fit: the predicted peaks by base model (preset) and method.
std::map<std::string, std::map<std::string, std::size_t>> require_fit(StudyFile const& s, PlanDevice const& device);

}  // namespace polyalpaca::study::runner
