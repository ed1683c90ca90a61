/// @file optim/schedule.hpp
/// @brief Learning-rate schedules with linear warmup, as HF transformers' get_*_schedule_with_warmup.
#pragma once

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <string_view>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca {

/// Constant: get_constant_schedule_with_warmup (warmup 0 gives get_constant_schedule).
/// Linear: get_linear_schedule_with_warmup. Cosine: get_cosine_schedule_with_warmup with num_cycles = 0.5.
enum class ScheduleKind { Constant, Linear, Cosine };

/// The kind HF's `lr_scheduler_type` calls `name`; anything else is an Error naming `what` (e.g. "--schedule").
inline ScheduleKind schedule_kind_named(std::string const& name, std::string_view what) {
    if (name == "constant") return ScheduleKind::Constant;
    if (name == "linear") return ScheduleKind::Linear;
    if (name == "cosine") return ScheduleKind::Cosine;
    fail(what, " must be constant, linear or cosine, got '", name, "'");
}

/// A learning-rate schedule: lr_at(step) = base_lr * lambda(step), with HF's lambdas and LambdaLR's
/// numbering (the first optimizer step uses step 0).
struct Schedule {
    ScheduleKind kind = ScheduleKind::Constant;
    double base_lr = 0.0;
    long warmup_steps = 0;
    long total_steps = 0;

    /// Throws Error with a sentence if the schedule cannot be used.
    void validate() const {
        require(std::isfinite(base_lr) && base_lr >= 0, "Learning rate must be a finite non-negative number, got ",
                base_lr, ".");
        require(total_steps > 0, "The schedule needs a positive number of training steps, got ", total_steps, ".");
        require(warmup_steps >= 0, "Warmup steps cannot be negative, got ", warmup_steps, ".");
        require(warmup_steps <= total_steps, "Warmup (", warmup_steps, " steps) is longer than training (",
                total_steps, " steps).");
    }

    /// The lr for optimizer step `step`, counting from 0. Past total_steps, Linear stays at 0 and Cosine
    /// follows the cosine on, exactly as HF does.
    double lr_at(long step) const {
        validate();
        require(step >= 0, "Schedule step must be non-negative, got ", step, ".");
        return base_lr * factor(step);
    }

    /// Warmup steps for a warmup ratio, as HF TrainingArguments.get_warmup_steps: ceil(total_steps * ratio),
    /// floating-point quirks included (ratio 0.07 of 100 steps gives 8). HF reads values >= 1 as step counts,
    /// so a ratio must be below 1.
    static long warmup_from_ratio(double ratio, long total_steps) {
        require(std::isfinite(ratio) && ratio >= 0 && ratio < 1, "Warmup ratio must be in [0, 1), got ", ratio,
                ".");
        require(total_steps > 0, "The schedule needs a positive number of training steps, got ", total_steps, ".");
        return static_cast<long>(std::ceil(double(total_steps) * ratio));
    }

private:
    // The lambdas of transformers.optimization, term for term.
    double factor(long step) const {
        if (step < warmup_steps) return double(step) / double(std::max(1L, warmup_steps));
        if (kind == ScheduleKind::Constant) return 1.0;
        double const decay_steps = double(std::max(1L, total_steps - warmup_steps));
        if (kind == ScheduleKind::Linear) return std::max(0.0, double(total_steps - step) / decay_steps);
        double const progress = double(step - warmup_steps) / decay_steps;
        double const num_cycles = 0.5;
        return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * num_cycles * 2.0 * progress)));
    }
};

}  // namespace polyalpaca
