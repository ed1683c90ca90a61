/// @file core/value_checks.hpp
/// @brief Range checks for the numbers a user gives (command-line options, study-file keys), each failing with one
///        sentence that names the option or key, the value and the range allowed: the one validation layer of the
///        trainers, the evaluator, the judge and the study runner.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca {

/// `value` must be finite and in [lo, hi]; `what` names it ("--lr", "the study file's \"lr\"").
inline void require_number_in(std::string_view what, double value, double lo, double hi) {
    require(std::isfinite(value) && value >= lo && value <= hi, what, " must be a number from ", lo, " to ", hi,
            ", got ", value);
}

/// The sentence of every failed whole-number check; `shown` is the value as given (a number, or an excerpt of
/// what stood where a number should).
template <class T>
[[noreturn]] void fail_count(std::string_view what, T lo, T hi, std::string_view shown) {
    fail(what, " must be a whole number from ", lo, " to ", hi, ", got ", shown);
}

/// A whole number in [lo, hi]. An unsigned one read from "-5" has wrapped around to 2^64 - 5: it is shown as the
/// negative number it was given as.
inline void require_count_in(std::string_view what, std::uint64_t value, std::uint64_t lo, std::uint64_t hi) {
    if (value >= lo && value <= hi) return;
    auto const shown = value > std::uint64_t(std::numeric_limits<std::int64_t>::max())
                           ? std::to_string(std::int64_t(value))
                           : std::to_string(value);
    fail_count(what, lo, hi, shown);
}
inline void require_count_in(std::string_view what, std::int64_t value, std::int64_t lo, std::int64_t hi) {
    if (value < lo || value > hi) fail_count(what, lo, hi, std::to_string(value));
}

}  // namespace polyalpaca
