/// @file eval/judge_pacing.hpp
/// @brief Pacing for the judge client: a requests-per-minute limiter, exponential backoff with jitter, and the
/// server's Retry-After, every wait capped at the longest backoff.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <thread>

#include <curl/curl.h>

#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/eval/http_client.hpp"

namespace polyalpaca::eval {

using JudgeClock = std::chrono::steady_clock;

/// Spaces request starts at least 60 / requests_per_minute seconds apart (every attempt counts, retries included).
/// requests_per_minute <= 0: no limit.
class RateLimiter {
public:
    explicit RateLimiter(double requests_per_minute) : rpm_(requests_per_minute) {}

    /// Sleeps until the next request may start, and books that start.
    void wait() {
        if (rpm_ <= 0) return;
        auto const spacing = std::chrono::duration_cast<JudgeClock::duration>(std::chrono::duration<double>(60.0 / rpm_));
        auto const now = JudgeClock::now();
        if (started_ && next_ > now) std::this_thread::sleep_until(next_);
        next_ = std::max(now, started_ ? next_ : now) + spacing;
        started_ = true;
    }

private:
    double rpm_;
    bool started_ = false;
    JudgeClock::time_point next_{};
};

/// Delay before retry number `retry` (0 for the first retry): initial * 2^retry capped at max_s, times a uniform
/// factor in [0.5, 1) so that clients that failed together do not come back together.
class Backoff {
public:
    Backoff(double initial_s, double max_s, std::uint64_t seed) : initial_(initial_s), max_(max_s), rng_(seed) {}

    double delay_s(int retry) {
        double const base = std::min(max_, initial_ * std::pow(2.0, std::min(retry, 60)));
        return base * rng_.uniform(0.5, 1.0);
    }

private:
    double initial_;
    double max_;
    Rng rng_;
};

/// The wait a response asks for: "retry-after-ms" (milliseconds), or "retry-after" as seconds or an HTTP date.
inline std::optional<double> retry_after_s(HttpResponse const& response) {
    auto number = [](std::string const& text) -> std::optional<double> {
        if (text.empty()) return std::nullopt;
        std::size_t used = 0;
        try {
            double const v = std::stod(text, &used);
            if (used == text.size() && v >= 0 && std::isfinite(v)) return v;
        } catch (std::exception const&) {
        }
        return std::nullopt;
    };
    if (auto const ms = number(response.header("retry-after-ms"))) return *ms / 1000.0;
    std::string const value = response.header("retry-after");
    if (auto const s = number(value)) return *s;
    if (!value.empty()) {
        std::time_t const when = curl_getdate(value.c_str(), nullptr);
        if (when != -1) return std::max(0.0, std::difftime(when, std::time(nullptr)));
    }
    return std::nullopt;
}

/// The wait before a retry: the server's Retry-After when it sent one, else the backoff delay; never longer than
/// `max_s` (a server asking for a day does not stall the run).
inline double judge_wait_s(std::optional<double> retry_after, double backoff_delay_s, double max_s) {
    return std::max(0.0, std::min(retry_after.value_or(backoff_delay_s), max_s));
}

inline void sleep_for_s(double seconds) {
    if (seconds > 0) std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

}  // namespace polyalpaca::eval
