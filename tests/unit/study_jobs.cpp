// Runs trained at once in child processes (study/run_jobs.hpp): how many run and on how many threads, what each
// child's environment sets, how a child's progress is read from its log, and that run_jobs runs every job, at most
// `jobs` at once, and names a failed one's log after the others end. The jobs here are shell commands standing in
// for the runner.
#include <catch2/catch.hpp>

#include <polyalpaca/study/run_jobs.hpp>

#include <filesystem>
#include <fstream>
#include <string>

namespace pa = polyalpaca;
namespace ps = polyalpaca::study;

namespace {

// A planned run named `name`, its directory under root/runs.
ps::PlannedRun shell_run(std::filesystem::path const& root, std::string const& name) {
    ps::PlannedRun r;
    r.name = name;
    r.dir = root / "runs" / name;
    return r;
}

}  // namespace

TEST_CASE("plan_jobs: one run after another unless asked; cores, memory and GPUs bound the jobs", "[study][jobs]") {
    constexpr std::size_t gib = std::size_t(1) << 30;
    // Neither given: one run after another in this process, on its threads.
    auto p = ps::plan_jobs("cpu", 0, 0, 8, 0, gib, 16 * gib);
    CHECK(p.jobs == 1);
    CHECK(p.threads == 0);
    CHECK_FALSE(p.children);
    // One thread per run: as many runs as cores, each in a child.
    p = ps::plan_jobs("cpu", 0, 1, 8, 0, gib, 64 * gib);
    CHECK(p.jobs == 8);
    CHECK(p.threads == 1);
    CHECK(p.children);
    CHECK(p.note.empty());
    // ... fewer when their memory would not fit: 90% of 10 GiB holds 3 runs of 3 GiB.
    p = ps::plan_jobs("cpu", 0, 1, 8, 0, 3 * gib, 10 * gib);
    CHECK(p.jobs == 3);
    CHECK_THAT(p.note, Catch::Contains("8 runs at once would need 24576 MiB"));
    // Jobs given: the cores shared among them.
    p = ps::plan_jobs("cpu", 2, 0, 7, 0, gib, 16 * gib);
    CHECK(p.jobs == 2);
    CHECK(p.threads == 3);
    CHECK(p.children);
    // A single job with its thread count set still runs in a child, so its figures do not depend on --jobs.
    p = ps::plan_jobs("cpu", 1, 1, 2, 0, gib, 16 * gib);
    CHECK(p.jobs == 1);
    CHECK(p.children);
    // CUDA: a job per visible GPU, never more jobs than GPUs.
    p = ps::plan_jobs("cuda", 0, 0, 16, 4, gib, 16 * gib);
    CHECK(p.jobs == 4);
    CHECK(p.children);
    CHECK_FALSE(ps::plan_jobs("cuda", 0, 0, 16, 1, gib, 16 * gib).children);
    CHECK_THROWS_WITH(ps::plan_jobs("cuda", 3, 0, 16, 2, gib, 16 * gib), Catch::Contains("2 are visible"));
}

TEST_CASE("job_environment: threads on the CPU, one GPU per slot on CUDA", "[study][jobs]") {
    using Env = std::vector<std::pair<std::string, std::string>>;
    CHECK(ps::job_environment("cpu", 1, 2, nullptr) == Env{{"OMP_NUM_THREADS", "2"}, {"OPENBLAS_NUM_THREADS", "2"}});
    CHECK(ps::job_environment("cpu", 0, 0, nullptr).empty());
    CHECK(ps::job_environment("cuda", 1, 0, nullptr) == Env{{"CUDA_VISIBLE_DEVICES", "1"}});
    CHECK(ps::job_environment("cuda", 1, 0, "4,6") == Env{{"CUDA_VISIBLE_DEVICES", "6"}});
    CHECK(ps::job_environment("cuda", 0, 0, "") == Env{{"CUDA_VISIBLE_DEVICES", "0"}});
    CHECK_THROWS_WITH(ps::job_environment("cuda", 2, 0, "4,6"), Catch::Contains("CUDA_VISIBLE_DEVICES=4,6 lists 2"));
}

TEST_CASE("a job's progress is the share of its training steps its log last reported", "[study][jobs]") {
    using ps::run_jobs_detail::training_share;
    CHECK(training_share("") == 0);
    CHECK(training_share("pretraining: done before\n[1/3 x] training: monolingual en\n") == 0);
    CHECK(training_share("step   300/1500 | loss 1.2 | lr 0.002 | 9000 tok/s | ETA 0:00:10\n") == Approx(0.2));
    CHECK(training_share("step   300/1500 | loss 1.2\nstep  1500/1500 | loss 0.8\n[1/3 x] trained: ...\n") == 1);
    CHECK(training_share("step 1500/1500 | loss 0.8\n[1/3 x] en | prompts 16/200 | 400 prompts/s\n") == 1);
}

TEST_CASE("run_jobs runs every job, at most `jobs` at once, and names a failed one's log", "[study][jobs]") {
    auto const root = std::filesystem::temp_directory_path() / "polyalpaca_study_jobs";
    std::filesystem::remove_all(root);
    std::vector<ps::PlannedRun> runs;
    for (auto const* name : {"a", "b", "c"}) runs.push_back(shell_run(root, name));
    auto const marks = root / "marks";
    std::filesystem::create_directories(marks);
    // Each job notes how many jobs run beside it (marks present), waits, and writes its evaluation.json.
    auto const job = [&](std::string const& run, int slot) {
        auto const dir = root / "runs" / run;
        std::string const script = "touch " + (marks / run).string() + "; ls " + marks.string() + " | wc -l > " +
                                   (root / (run + ".beside")).string() + "; sleep 0.6; rm " + (marks / run).string() +
                                   "; mkdir -p " + dir.string() + "; echo '{}' > " + (dir / "evaluation.json").string() +
                                   "; echo \"[x] trained: slot $SLOT, threads $OMP_NUM_THREADS\"";
        return ps::JobCommand{{"/bin/sh", "-c", script},
                              {{"SLOT", std::to_string(slot)}, {"OMP_NUM_THREADS", "1"}}};
    };
    std::size_t most_training = 0;
    std::vector<std::string> last_training{"?"};
    auto const on_change = [&](std::vector<std::string> const& training) {
        most_training = std::max(most_training, training.size());
        last_training = training;
    };
    CHECK(ps::run_jobs(runs, {0, 1, 2}, 2, job, root / "logs", true, on_change) == 3);
    CHECK(most_training == 2);  // study_state.json heard of two runs training at once
    CHECK(last_training.empty());
    for (auto const& r : runs) {
        CHECK(ps::run_evaluated(r));
        std::ifstream beside(root / (r.name + ".beside"));
        int n = 0;
        beside >> n;
        CHECK(n >= 1);
        CHECK(n <= 2);  // never more than two at once
        std::ifstream log(root / "logs" / (r.name + ".log"));
        std::string line;
        std::getline(log, line);
        CHECK_THAT(line, Catch::StartsWith("[x] trained: slot ") && Catch::EndsWith("threads 1"));
    }

    // A failed job: the others still end, no further one starts, and the error names the log and quotes its end.
    std::filesystem::remove_all(root / "runs");
    auto const failing = [&](std::string const& run, int slot) {
        if (run == "a") return ps::JobCommand{{"/bin/sh", "-c", "echo 'cannot read the data'; exit 3"}, {}};
        return job(run, slot);
    };
    try {
        ps::run_jobs(runs, {0, 1, 2}, 2, failing, root / "logs", true);
        FAIL("a failed job was not reported");
    } catch (pa::Error const& e) {
        std::string const what = e.what();
        CHECK_THAT(what, Catch::Contains("run a failed (exit status 3)"));
        CHECK_THAT(what, Catch::Contains((root / "logs" / "a.log").string()));
        CHECK_THAT(what, Catch::Contains("cannot read the data"));
    }
    CHECK(ps::run_evaluated(runs[1]));       // it ran beside the failed one and ended
    CHECK_FALSE(ps::run_evaluated(runs[2]));  // it never started
    std::filesystem::remove_all(root);
}
