// See study_runner_plan.hpp.
#include "study_runner_plan.hpp"

#include <polyalpaca/study/study_plan.hpp>

namespace polyalpaca::study::runner {

int print_plan(StudyFile const& s, PlanDevice const& device) { return study::print_plan(s, device); }

std::map<std::string, std::map<std::string, std::size_t>> require_fit(StudyFile const& s, PlanDevice const& device) {
    return study::require_fit(s, device);
}

}  // namespace polyalpaca::study::runner
