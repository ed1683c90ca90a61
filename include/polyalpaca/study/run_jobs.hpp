/// @file study/run_jobs.hpp
/// @brief A study's runs trained at once, each in a child process of the runner: on the CPU each with a share of
///        the cores (small models use two cores far less than twice as well as one), on GPUs one GPU each. A child
///        trains and evaluates its one run into the run's directory as the runner itself would, its output in
///        <output>/logs/<run>.log; the parent prints one progress line over all of them and each run's result as it
///        ends. A failed run stops new ones from starting; the error names its log once the others have ended.
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/study/planner.hpp"
#include "polyalpaca/train/progress.hpp"

extern char** environ;

namespace polyalpaca::study {

/// How the runner starts itself to train and evaluate one run: the program and its arguments, and the variables
/// set in the child's environment (OMP_NUM_THREADS, CUDA_VISIBLE_DEVICES).
struct JobCommand {
    std::vector<std::string> argv;
    std::vector<std::pair<std::string, std::string>> env;
};

/// The command for the run named `run`, in job slot `slot` (0 to jobs - 1: which GPU, say).
using JobLauncher = std::function<JobCommand(std::string const& run, int slot)>;

/// How a study's runs train: how many at once, on how many CPU threads each, and whether in child processes.
struct JobPlan {
    int jobs = 1;
    int threads = 0;        ///< CPU threads per run (0: the process's own)
    bool children = false;  ///< each run in a child process (else all in this one, one after another)
    std::string note;       ///< why fewer jobs run than the cores or GPUs would allow ("" when none)
};

/// The plan for `jobs` and `threads` as the study file or command line give them (0: choose). On the CPU, neither
/// given: one run after another in this process, on its threads; else each run gets `threads`
/// (or the cores over the jobs) and as many run as the cores allow, fewer when `peak_bytes` (a run's predicted
/// peak) times the jobs would pass 90% of `available_bytes`. On CUDA one job per visible GPU.
inline JobPlan plan_jobs(std::string const& backend, int jobs, int threads, int cores, int gpus,
                         std::size_t peak_bytes, std::size_t available_bytes) {
    require(jobs >= 0 && threads >= 0, "jobs and threads per run are counts (0: choose), got ", jobs, " and ",
            threads);
    JobPlan p;
    p.threads = threads;
    if (backend == "cuda") {
        p.jobs = jobs > 0 ? jobs : std::max(1, gpus);
        require(p.jobs <= std::max(1, gpus), "jobs ", p.jobs, ": each job trains on a GPU of its own, and ", gpus,
                " are visible");
        p.children = p.jobs > 1;
        return p;
    }
    if (jobs == 0 && threads == 0) return p;
    cores = std::max(1, cores);
    p.threads = threads > 0 ? threads : std::max(1, cores / jobs);
    p.jobs = jobs > 0 ? jobs : std::max(1, cores / p.threads);
    if (jobs == 0 && peak_bytes > 0 && available_bytes > 0) {
        int const fit = std::max(1, int(0.9 * double(available_bytes) / double(peak_bytes)));
        if (fit < p.jobs) {
            p.note = std::to_string(p.jobs) + " runs at once would need " +
                     std::to_string(p.jobs * (peak_bytes >> 20)) + " MiB; " + std::to_string(available_bytes >> 20) +
                     " MiB are available, so " + std::to_string(fit) + " run at once";
            p.jobs = fit;
        }
    }
    p.children = true;
    return p;
}

/// What the environment of a job's child sets: on the CPU its thread count (OpenMP, Eigen and OpenBLAS read it);
/// on CUDA the one GPU of its slot, the slot-th of the parent's CUDA_VISIBLE_DEVICES list when that is set.
inline std::vector<std::pair<std::string, std::string>> job_environment(std::string const& backend, int slot,
                                                                        int threads, char const* visible_devices) {
    std::vector<std::pair<std::string, std::string>> env;
    if (threads > 0)
        for (char const* name : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"}) env.emplace_back(name, std::to_string(threads));
    if (backend == "cuda") {
        std::string gpu = std::to_string(slot);
        if (visible_devices != nullptr && *visible_devices != '\0') {
            std::vector<std::string> ids;
            std::string const list = visible_devices;
            for (std::size_t at = 0; at <= list.size();) {
                auto const comma = std::min(list.find(',', at), list.size());
                ids.push_back(list.substr(at, comma - at));
                at = comma + 1;
            }
            require(slot < int(ids.size()), "job ", slot, " needs a GPU, but CUDA_VISIBLE_DEVICES=", list, " lists ",
                    ids.size());
            gpu = ids[std::size_t(slot)];
        }
        env.emplace_back("CUDA_VISIBLE_DEVICES", gpu);
    }
    return env;
}

namespace run_jobs_detail {

using Clock = std::chrono::steady_clock;

/// The last `bytes` of a file ("" when it cannot be read).
inline std::string file_tail(std::filesystem::path const& path, std::size_t bytes) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) return {};
    auto const size = std::size_t(in.tellg());
    auto const from = size > bytes ? size - bytes : 0;
    in.seekg(std::streamoff(from));
    std::string text(size - from, '\0');
    in.read(text.data(), std::streamsize(text.size()));
    return text;
}

/// The share of its training steps a job's log last reported ("step 300/1500 | ..."): 0 before the first, 1 once
/// it evaluates (a line with "prompts").
inline double training_share(std::string const& tail) {
    auto const step = tail.rfind("step ");
    auto const prompts = tail.rfind("| prompts ");
    if (prompts != std::string::npos && (step == std::string::npos || prompts > step)) return 1;
    if (step == std::string::npos) return 0;
    long done = 0, total = 0;
    if (std::sscanf(tail.c_str() + step, "step %ld/%ld", &done, &total) != 2 || total <= 0) return 0;
    return std::clamp(double(done) / double(total), 0.0, 1.0);
}

/// The lines of a log that say what a run came to: its training, evaluation and memory lines.
inline std::string result_lines(std::filesystem::path const& log) {
    std::ifstream in(log);
    std::string line, out;
    while (std::getline(in, line))
        if (line.starts_with("[") && (line.find("] trained:") != std::string::npos ||
                                      line.find("] evaluated in") != std::string::npos ||
                                      line.find("] memory:") != std::string::npos))
            out += line + "\n";
    return out;
}

/// The environment a child starts with: this process's, with `overrides` set. Built before fork (a child of a
/// threaded process may not allocate before exec).
inline std::vector<std::string> child_environment(std::vector<std::pair<std::string, std::string>> const& overrides) {
    std::vector<std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        std::string const entry = *e;
        bool const replaced = std::any_of(overrides.begin(), overrides.end(), [&](auto const& o) {
            return entry.size() > o.first.size() && entry.compare(0, o.first.size(), o.first) == 0 &&
                   entry[o.first.size()] == '=';
        });
        if (!replaced) env.push_back(entry);
    }
    for (auto const& [name, value] : overrides) env.push_back(name + "=" + value);
    return env;
}

/// Starts `command` with stdout and stderr appended to `log` (a resumed run's log keeps what the interrupted one
/// wrote); the child is ended (SIGTERM) if this process dies.
inline pid_t spawn(JobCommand const& command, std::filesystem::path const& log) {
    require(!command.argv.empty(), "a job needs a program to run");
    auto const env_strings = child_environment(command.env);
    std::vector<char*> argv, envp;
    for (auto const& a : command.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (auto const& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    int const fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    require(fd >= 0, "cannot open the job log ", log.string(), ": ", std::strerror(errno));
    std::fflush(nullptr);
    pid_t const parent = getpid();
    pid_t const pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(125);  // the parent died before the line above
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execve(argv[0], argv.data(), envp.data());
        _exit(127);
    }
    int const fork_errno = errno;
    ::close(fd);
    require(pid > 0, "cannot start a job: fork failed: ", std::strerror(fork_errno));
    return pid;
}

/// "exit status 2", "killed by signal 9".
inline std::string describe_status(int status) {
    if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
    return "status " + std::to_string(status);
}

}  // namespace run_jobs_detail

/// Trains and evaluates runs[i] for every i of `pending`, at most `jobs` at once, each by the command `launch` makes,
/// its output in log_dir/<run>.log; `on_change`, when given, hears the names of the runs in training whenever a run
/// starts or ends. Returns how many finished. When one fails, no further run starts; once the running ones have
/// ended an Error names the failed run, its status and its log, with the log's last lines.
inline std::size_t run_jobs(std::vector<PlannedRun> const& runs, std::vector<std::size_t> const& pending, int jobs,
                            JobLauncher const& launch, std::filesystem::path const& log_dir, bool quiet,
                            std::function<void(std::vector<std::string> const&)> const& on_change = {}) {
    using namespace run_jobs_detail;
    require(jobs >= 1, "run_jobs: at least one job at a time, got ", jobs);
    std::filesystem::create_directories(log_dir);
    struct Running {
        std::size_t run;
        int slot;
        pid_t pid;
        Clock::time_point started;
    };
    std::vector<Running> running;
    std::vector<bool> slot_busy(std::size_t(jobs), false);
    std::size_t next = 0, finished = 0;
    std::string failure;
    auto const start = Clock::now();
    auto last_line = Clock::now() - std::chrono::hours(1);
    bool const tty = isatty(fileno(stderr)) != 0;
    auto log_of = [&](std::size_t i) { return log_dir / (runs[i].name + ".log"); };
    auto label = [&](std::size_t i) { return run_label(i, runs.size(), runs[i].name); };
    std::printf("training %zu runs, %d at a time, each in a process of its own (logs in %s)\n", pending.size(), jobs,
                log_dir.string().c_str());
    std::fflush(stdout);
    auto changed = [&] {
        if (!on_change) return;
        std::vector<std::string> training;
        for (auto const& r : running) training.push_back(runs[r.run].name);
        on_change(training);
    };
    for (;;) {
        bool changes = false;  // a run started or ended
        while (failure.empty() && next < pending.size() && int(running.size()) < jobs) {
            int const slot = int(std::find(slot_busy.begin(), slot_busy.end(), false) - slot_busy.begin());
            std::size_t const i = pending[next++];
            pid_t const pid = spawn(launch(runs[i].name, slot), log_of(i));
            slot_busy[std::size_t(slot)] = true;
            running.push_back({i, slot, pid, Clock::now()});
            changes = true;
            std::printf("%s started (job %d)\n", label(i).c_str(), slot + 1);
            std::fflush(stdout);
        }
        if (running.empty()) break;
        for (std::size_t k = 0; k < running.size();) {
            int status = 0;
            pid_t const done = waitpid(running[k].pid, &status, WNOHANG);
            int const wait_errno = errno;
            if (done == 0) {
                ++k;
                continue;
            }
            auto const r = running[k];
            running.erase(running.begin() + long(k));
            changes = true;
            slot_busy[std::size_t(r.slot)] = false;
            double const seconds = std::chrono::duration<double>(Clock::now() - r.started).count();
            if (tty && !quiet) std::fputs("\r\033[K", stderr);
            if (done > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && run_evaluated(runs[r.run])) {
                ++finished;
                std::printf("%s%s done in %s\n", result_lines(log_of(r.run)).c_str(), label(r.run).c_str(),
                            ProgressLine::format_duration(seconds).c_str());
            } else if (failure.empty()) {
                failure = "run " + runs[r.run].name + " failed (" +
                          (done < 0 ? std::string("lost: ") + std::strerror(wait_errno) : describe_status(status)) +
                          "); its output is in " + log_of(r.run).string() + ", which ends:\n" +
                          file_tail(log_of(r.run), 1500);
                std::printf("%s failed: no further run starts; waiting for %zu running\n", label(r.run).c_str(),
                            running.size());
            }
            std::fflush(stdout);
        }
        if (changes) changed();
        double const elapsed = std::chrono::duration<double>(Clock::now() - start).count();
        if (!quiet && !running.empty() && (tty || Clock::now() - last_line >= std::chrono::seconds(15))) {
            double share = double(finished);
            std::string states;
            for (auto const& r : running) {
                double const s = training_share(file_tail(log_of(r.run), 600));
                share += s;
                states += (states.empty() ? "" : ", ") + runs[r.run].name + " " + std::to_string(int(100 * s)) + "%";
            }
            double const fraction = share / double(pending.size());
            std::fprintf(stderr, "%sruns %zu/%zu done | training: %s | %s elapsed | ETA %s%s", tty ? "\r\033[K" : "",
                         finished, pending.size(), states.c_str(), ProgressLine::format_duration(elapsed).c_str(),
                         fraction > 0 ? ProgressLine::format_duration(elapsed * (1 - fraction) / fraction).c_str()
                                      : "-",
                         tty ? "" : "\n");
            std::fflush(stderr);
            last_line = Clock::now();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    if (tty && !quiet) std::fputs("\r\033[K", stderr);
    require(failure.empty(), failure);
    return finished;
}

}  // namespace polyalpaca::study
