/// @file train/progress.hpp
/// @brief A progress line for long work: step, loss, learning rate, tokens/s and ETA.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include <unistd.h>

namespace polyalpaca {

/// On a terminal the line redraws in place; otherwise (logs, CI) one line is printed every `log_every` steps.
class ProgressLine {
public:
    /// `first_step`: the step a resumed run starts from, so rate and ETA count only this process's work.
    ProgressLine(long total_steps, std::FILE* out = stderr, long log_every = 1, long first_step = 0)
        : total_(total_steps), out_(out), log_every_(log_every), first_step_(first_step),
          tty_(isatty(fileno(out)) != 0), start_(std::chrono::steady_clock::now()) {}

    /// `tokens_so_far`: tokens processed by this process since it started.
    void update(long step, double loss, double lr, std::int64_t tokens_so_far, std::string const& extra = {}) {
        double const elapsed = seconds_since_start();
        double const rate = elapsed > 0 ? double(tokens_so_far) / elapsed : 0.0;
        long const done = step - first_step_;
        double const eta = done > 0 ? elapsed * double(total_ - step) / double(done) : 0.0;
        if (!tty_ && step % log_every_ != 0 && step != total_) return;
        std::fprintf(out_, "%sstep %5ld/%ld | loss %.4f | lr %.3g | %.0f tok/s | ETA %s%s%s", tty_ ? "\r\033[K" : "",
                     step, total_, loss, lr, rate, format_duration(eta).c_str(), extra.c_str(), tty_ ? "" : "\n");
        std::fflush(out_);
    }
    /// Ends the in-place line on a terminal.
    void finish() {
        if (tty_) std::fputc('\n', out_);
        std::fflush(out_);
    }
    double seconds_since_start() const {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    }

    static std::string format_duration(double seconds) {
        long const s = long(seconds + 0.5);
        char buf[32];
        std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
        return buf;
    }

private:
    long total_;
    std::FILE* out_;
    long log_every_;
    long first_step_;
    bool tty_;
    std::chrono::steady_clock::time_point start_;
};

}  // namespace polyalpaca
