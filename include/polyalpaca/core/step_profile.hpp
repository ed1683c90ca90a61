/// @file core/step_profile.hpp
/// @brief Where a training step's time goes, by phase (forward, backward, update) and region (norms, projections,
/// LoRA branches, attention, ...).
///
/// Layers open a ProfileRegion around their work and the network and train_step set the phase. Both do nothing
/// unless the Context's `profile` points to a StepProfile, which then stamps its backend's clock at every region
/// boundary: the time between two stamps belongs to the innermost region open between them, so a region's time is
/// exclusive of the regions inside it (an attention layer's time excludes its projections). On a GPU the clock's
/// stamps are events on the stream: intervals are device time, including any wait for the host to launch work.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <iomanip>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca {

enum class Phase : std::uint8_t { Forward, Backward, Update };
inline constexpr int phase_count = 3;

/// What a region covers (exclusive of regions inside it).
enum class Region : std::uint8_t {
    Outside,     ///< between regions: the network's own glue (label upload, gradient buffers)
    Embedding,   ///< token embedding lookup and its gradient
    Norm,        ///< LayerNorm / RMSNorm, with the residual add fused into it
    Linear,      ///< projections' base GEMMs (with bias), bf16 conversions of their operands
    Adapter,     ///< adapter branches (LoRA, DoRA, IA3): dropout, low-rank GEMMs, scales
    Attention,   ///< attention core: rotary, scores, mask, softmax, context; splitting fused QKV
    Activation,  ///< the MLP's GELU / SwiGLU and its gradient buffers
    Residual,    ///< the block's residual adds and gradient buffers
    LmHead,      ///< LM head and cross-entropy (fused: logits, loss and gradient chunk by chunk)
    Optimizer,   ///< zeroing gradients, clipping, AdamW
};
inline constexpr int region_count = 10;

inline char const* phase_name(Phase p) {
    constexpr char const* names[phase_count] = {"forward", "backward", "update"};
    return names[int(p)];
}

inline char const* region_name(Region r) {
    constexpr char const* names[region_count] = {"outside regions", "embedding",   "norms",     "projections",
                                                 "adapter branches", "attention",   "mlp activation",
                                                 "residual adds",   "lm head + loss", "zero grad, clip, adamw"};
    return names[int(r)];
}

/// One word per region, for machine-readable lines.
inline char const* region_key(Region r) {
    constexpr char const* keys[region_count] = {"outside", "embedding", "norm",     "linear",  "adapter",
                                                "attention", "activation", "residual", "lm_head", "optimizer"};
    return keys[int(r)];
}

/// Milliseconds per (phase, region) over everything a StepProfile saw between two finish() calls.
struct ProfileTable {
    std::array<std::array<double, region_count>, phase_count> ms{};
    std::int64_t boundaries = 0;  ///< clock stamps taken

    double at(Phase p, Region r) const { return ms[std::size_t(p)][std::size_t(r)]; }
    double region_ms(Region r) const {
        double sum = 0;
        for (auto const& phase : ms) sum += phase[std::size_t(r)];
        return sum;
    }
    double phase_ms(Phase p) const {
        double sum = 0;
        for (double v : ms[std::size_t(p)]) sum += v;
        return sum;
    }
    double total_ms() const {
        double sum = 0;
        for (int p = 0; p < phase_count; ++p) sum += phase_ms(Phase(p));
        return sum;
    }
};

/// A clock for host work: ops that return when their work is done (the CPU backend).
class HostClock {
public:
    void stamp() { stamps_.push_back(std::chrono::steady_clock::now()); }
    /// The milliseconds between consecutive stamps; forgets the stamps.
    std::vector<double> intervals_ms() {
        std::vector<double> out;
        for (std::size_t i = 1; i < stamps_.size(); ++i)
            out.push_back(std::chrono::duration<double, std::milli>(stamps_[i] - stamps_[i - 1]).count());
        stamps_.clear();
        return out;
    }

private:
    std::vector<std::chrono::steady_clock::time_point> stamps_;
};

/// Collects region boundaries on a Clock (stamp(); intervals_ms(), which waits for the last stamp and forgets
/// them all). Starts in Phase::Forward with no region open.
template <class Clock>
class StepProfile {
public:
    explicit StepProfile(Clock clock = Clock{}) : clock_(std::move(clock)) {}

    void enter(Region region) {
        open_.push_back(region);
        boundary();
    }
    void leave() {
        require(!open_.empty(), "StepProfile::leave: no region is open");
        open_.pop_back();
        boundary();
    }
    void set_phase(Phase phase) {
        if (phase == phase_) return;
        phase_ = phase;
        boundary();
    }

    /// The time between the first stamp and now, by (phase, region); then starts over in Phase::Forward.
    ProfileTable finish() {
        require(open_.empty(), "StepProfile::finish: ", open_.size(), " region(s) still open (innermost: ",
                open_.empty() ? "" : region_name(open_.back()), ")");
        clock_.stamp();
        auto const intervals = clock_.intervals_ms();
        require(intervals.size() == active_.size(), "StepProfile::finish: the clock returned ", intervals.size(),
                " intervals for ", active_.size(), " boundaries");
        ProfileTable table;
        for (std::size_t i = 0; i < intervals.size(); ++i)
            table.ms[std::size_t(active_[i].phase)][std::size_t(active_[i].region)] += intervals[i];
        table.boundaries = std::int64_t(active_.size()) + 1;
        active_.clear();
        phase_ = Phase::Forward;
        return table;
    }

    Clock& clock() { return clock_; }

private:
    struct Active {
        Phase phase;
        Region region;
    };
    /// A stamp, and what runs from it to the next one.
    void boundary() {
        active_.push_back({phase_, open_.empty() ? Region::Outside : open_.back()});
        clock_.stamp();
    }

    Clock clock_;
    Phase phase_ = Phase::Forward;
    std::vector<Region> open_;
    std::vector<Active> active_;
};

/// The Context's profile, or a null pointer for contexts without one.
template <class Context>
auto* step_profile_of(Context& ctx) {
    if constexpr (requires { ctx.profile; }) return ctx.profile;
    else return static_cast<StepProfile<HostClock>*>(nullptr);
}

/// Marks `region` open for its lifetime when the Context is profiling.
template <class Context>
class ProfileRegion {
public:
    ProfileRegion(Context& ctx, Region region) : profile_(step_profile_of(ctx)) {
        if (profile_) profile_->enter(region);
    }
    ~ProfileRegion() {
        if (!profile_) return;
        try {
            profile_->leave();
        } catch (...) {  // a failed stamp while unwinding: the op's own error is the one to report
        }
    }
    ProfileRegion(ProfileRegion const&) = delete;
    ProfileRegion& operator=(ProfileRegion const&) = delete;

private:
    decltype(step_profile_of(std::declval<Context&>())) profile_;
};

template <class Context>
void set_profile_phase(Context& ctx, Phase phase) {
    if (auto* profile = step_profile_of(ctx)) profile->set_phase(phase);
}

/// Runs f() with a fresh profile on ctx (make_step_profile(ctx), found in the backend's namespace); returns f's
/// result and the profile's table. ctx.profile is null again afterwards, also when f throws.
template <class Context, class F>
auto profiled(Context& ctx, F&& f) {
    auto profile = make_step_profile(ctx);
    struct Detach {
        Context& ctx;
        ~Detach() { ctx.profile = nullptr; }
    } detach{ctx};
    ctx.profile = &profile;
    auto result = f();
    return std::pair{std::move(result), profile.finish()};
}

/// The table as text: one row per region that took time, a column per phase, the total and its share.
inline std::string format_profile(ProfileTable const& table) {
    std::ostringstream out;
    double const total = table.total_ms();
    out << std::left << std::setw(24) << "region" << std::right;
    for (int p = 0; p < phase_count; ++p) out << std::setw(12) << (std::string(phase_name(Phase(p))) + " ms");
    out << std::setw(12) << "total ms" << std::setw(9) << "share" << '\n';
    auto cell = [&](double ms) {
        if (ms == 0) out << std::setw(12) << "-";
        else out << std::setw(12) << std::fixed << std::setprecision(3) << ms;
    };
    for (int r = 0; r < region_count; ++r) {
        double const ms = table.region_ms(Region(r));
        if (ms == 0) continue;
        out << std::left << std::setw(24) << region_name(Region(r)) << std::right;
        for (int p = 0; p < phase_count; ++p) cell(table.at(Phase(p), Region(r)));
        cell(ms);
        out << std::setw(8) << std::fixed << std::setprecision(1) << (total > 0 ? 100.0 * ms / total : 0.0) << "%\n";
    }
    out << std::left << std::setw(24) << "all" << std::right;
    for (int p = 0; p < phase_count; ++p) cell(table.phase_ms(Phase(p)));
    cell(total);
    out << std::setw(9) << "100.0%" << '\n';
    return out.str();
}

}  // namespace polyalpaca
