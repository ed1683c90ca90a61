// polyalpaca_study [STUDY.json] [--device cpu|cuda|auto] [--plan [--ranks N]] [--output DIR] [--quick] [--zero1]
//                  [--jobs N] [--threads-per-run T]:
// runs a whole study (docs/study.md) and writes its report. Without a study file it runs the embedded study: the
// synthetic suite, a byte-level BLOOM pretrained here, every strategy tuned and evaluated. Each base model trains on
// an engine compiled for its preset and the chosen backend (study/engine_registry.hpp); --plan needs no engine and no
// data. With --jobs or --threads-per-run (or the study file's keys) the runs train several at once, each in a process
// of this program started again with --only-run (study/run_jobs.hpp). Under mpirun or srun every run trains data
// parallel over the ranks (docs/distributed.md).
#include <polyalpaca/polyalpaca.hpp>
#include <polyalpaca/study/driver.hpp>
#include <polyalpaca/study/embedded_default.hpp>
#include <polyalpaca/study/engine_registry.hpp>
#include <polyalpaca/study/presets.hpp>
#include <polyalpaca/train/kernel_record.hpp>

#include <boost/program_options.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "study_runner_plan.hpp"

#if defined(POLYALPACA_STUDY_MPI)  // data parallel under mpirun or srun (cmake/PolyalpacaStudy.cmake)
#include <polyalpaca/distributed/mpi.hpp>
#endif

namespace pa = polyalpaca;
namespace po = boost::program_options;

// One command, full speed: OpenBLAS reads OPENBLAS_CORETYPE when it loads, and an old release runs a generic SSE
// kernel on newer CPUs (5-10x slower here); spinning OpenMP threads steal the cores its threads need. When the user
// set neither, the program sets what scripts/cpu_env.sh sets and starts itself again (once).
void restart_with_cpu_env(char** argv) {
    if (std::getenv("POLYALPACA_STUDY_ENV") != nullptr) return;
    setenv("POLYALPACA_STUDY_ENV", "1", 1);
    bool changed = false;
    if (std::getenv("OPENBLAS_CORETYPE") == nullptr) {
        __builtin_cpu_init();
        char const* core = __builtin_cpu_supports("avx512f") ? "SkylakeX" : __builtin_cpu_supports("avx2") ? "Haswell" : nullptr;
        if (core) setenv("OPENBLAS_CORETYPE", core, 1), changed = true;
    }
    if (std::getenv("OMP_WAIT_POLICY") == nullptr) setenv("OMP_WAIT_POLICY", "PASSIVE", 1), changed = true;
    if (changed) execv("/proc/self/exe", argv);  // returns only on failure: go on as we are
}

// The backend a device choice means here: "cpu" or "cuda". Fails, before anything is written, when CUDA is asked for
// and this runner cannot use it.
std::string backend_for(std::string const& device) {
    pa::require(device == "cpu" || device == "cuda" || device == "auto", "--device must be cpu, cuda or auto, not '",
                device, "'");
    if (device == "cpu") return "cpu";
    bool const gpu = pa::study::built_with_cuda() && !pa::study::visible_gpus().empty();
    if (device == "auto") return gpu ? "cuda" : "cpu";
    pa::require(pa::study::built_with_cuda(), "--device cuda: this polyalpaca_study was built without the CUDA backend "
                                              "(no CUDA compiler was found when it was configured)");
    char const* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    pa::require(gpu, "--device cuda: no CUDA GPU is visible to this process",
                visible ? std::string(" (CUDA_VISIBLE_DEVICES=") + visible + ")" : std::string());
    return "cuda";
}

// Every base model must have an engine on `backend`; the error names the CMake option that adds one.
void require_engines(pa::study::StudyFile const& s, std::string const& backend) {
    std::string const origin = s.source.empty() ? std::string("the study") : s.source.string();
    for (auto const& m : s.base_models) {
        pa::require(pa::study::preset_index(m.preset) != pa::study::no_preset, origin, ": base_model.preset \"",
                    m.preset, "\" is not a preset polyalpaca knows (", pa::study::known_preset_names(), ")");
        pa::require(pa::study::find_engine(m.preset, backend) != nullptr, origin, ": base_model.preset \"", m.preset,
                    "\" is not compiled into this runner for the ", backend, " backend (compiled: ",
                    pa::study::compiled_presets(backend), "); add it to the CMake option POLYALPACA_STUDY_PRESETS, a "
                    "list (cmake -B build -DPOLYALPACA_STUDY_PRESETS=\"", m.preset,
                    ";...\"), and build polyalpaca_study");
    }
}

int study_main(int argc, char** argv, int rank, int ranks);

// The cores this process may run on (its affinity mask: taskset, cgroups), at least 1.
int usable_cores() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
    return std::max(1, int(std::thread::hardware_concurrency()));
}

// This program's path, for starting it again as a job's child.
std::string self_path() {
    std::error_code ec;
    auto const path = std::filesystem::read_symlink("/proc/self/exe", ec);
    pa::require(!ec, "cannot find this program's path (/proc/self/exe): ", ec.message());
    return path.string();
}

#if defined(POLYALPACA_STUDY_MPI)
using World = std::optional<pa::distributed::Mpi>;
#else
using World = std::optional<pa::distributed::SingleProcess>;
#endif

int main(int argc, char** argv) {
    restart_with_cpu_env(argv);
    // Under a launcher every rank runs this program: rank 0 leads the study and alone prints and writes; the others
    // train each run with it (study/driver.hpp follow_study) and print nothing but their errors.
    World world;
    try {
        if (pa::distributed::launched_as_rank()) {
#if defined(POLYALPACA_STUDY_MPI)
            world.emplace();
            if (world->rank() != 0) (void)std::freopen("/dev/null", "w", stdout);
#else
            throw pa::Error("started by a launcher (mpirun, srun), but this polyalpaca_study was built without MPI: "
                            "apt-get install libopenmpi-dev openmpi-bin, then configure and build again");
#endif
        }
        return study_main(argc, argv, world ? world->rank() : 0, world ? world->size() : 1);
    } catch (std::exception const& e) {
#if defined(POLYALPACA_STUDY_MPI)
        if (world && world->size() > 1) world->abort(std::string("polyalpaca_study: ") + e.what(), 2);
#endif
        std::fprintf(stderr, "polyalpaca_study: %s\n", e.what());
        return 2;
    }
}

int study_main(int argc, char** argv, int rank, int ranks) {
    std::string file, output, device, attention = "auto", frozen_weights = "bf16", gemm_math, only_run, only_base_model;
    bool quick = false, quiet = false, print_default = false, plan = false, zero1 = false;
    int plan_ranks = 1, jobs = 0, threads_per_run = 0;
    po::options_description desc("polyalpaca_study [STUDY.json] [options]");
    desc.add_options()("help,h", "this help")("output", po::value(&output), "output directory (overrides the study file's)")(
        "device", po::value(&device),
        "cpu, cuda (GPU 0) or auto: CUDA when a GPU is visible (overrides the study file's \"device\", default auto)")(
        "attention", po::value(&attention)->default_value("auto"), "CUDA attention kernels: auto, gemm or flash")(
        "gemm-math", po::value(&gemm_math),
        "how GEMMs multiply; CPU: fp32 (the default), bf16 (oneDNN on AVX512_BF16 or AMX) or auto (bf16 where the "
        "CPU has it); CUDA: bf16 (the default), tf32 or fp32")(
        "frozen-weights", po::value(&frozen_weights)->default_value("bf16"),
        "CUDA, LoRA: keep the frozen base weights in bf16 only (bf16, a third of the memory, the same results) or "
        "fp32")(
        "plan", po::bool_switch(&plan),
        "print every run with its budget, optimizer steps and predicted peak memory on the device, then exit")(
        "ranks", po::value(&plan_ranks)->default_value(1),
        "with --plan: memory per rank of this many data-parallel ranks, with and without ZeRO-1")(
        "jobs", po::value(&jobs),
        "runs trained at once, each in a process of its own (overrides the study file's \"jobs\"; 0: as many as "
        "the cores over --threads-per-run, or the visible GPUs, allow)")(
        "threads-per-run", po::value(&threads_per_run),
        "CPU threads each run trains on (overrides the study file's \"threads_per_run\"; 0: the cores over the "
        "jobs). A run's figures depend on it, not on --jobs")(
        "zero1", po::bool_switch(&zero1),
        "under mpirun or srun (data parallel): shard AdamW's state over the ranks (ZeRO-1)")(
        "quick", po::bool_switch(&quick), "the embedded study's shortened form (CI)")(
        "quiet", po::bool_switch(&quiet), "no progress lines")(
        "print-default", po::bool_switch(&print_default), "print the embedded study file and exit");
    po::options_description hidden;
    hidden.add_options()("study", po::value(&file))("only-run", po::value(&only_run))(
        "only-base-model", po::value(&only_base_model));  // a job's child process (study/run_jobs.hpp)
    po::positional_options_description positional;
    positional.add("study", 1);
    po::options_description all;
    all.add(desc).add(hidden);
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
    if (vm.count("help")) {
        std::cout << desc << "\nWithout STUDY.json: the embedded study (docs/study.md). Compiled engines: cpu "
                  << pa::study::compiled_presets("cpu") << "; cuda " << pa::study::compiled_presets("cuda") << ".\n";
        return 0;
    }
    if (print_default) {
        std::cout << pa::study::embedded_study_json(quick).dump(2) << "\n";
        return 0;
    }
    pa::require(file.empty() || !quick, "--quick shortens the embedded study; it does not apply to a study file");
    auto s = file.empty() ? pa::study::embedded_study(quick) : pa::study::read_study_file(file);
    if (!output.empty()) s.output = output;
    if (!device.empty()) s.device = device;
    if (vm.count("jobs")) {
        pa::require(jobs >= 0 && jobs <= 1024, "--jobs must be from 0 (as many as fit) to 1024, not ", jobs);
        s.jobs = jobs;
    }
    if (vm.count("threads-per-run")) {
        pa::require(threads_per_run >= 0 && threads_per_run <= 4096,
                    "--threads-per-run must be from 0 (the cores over the jobs) to 4096, not ", threads_per_run);
        s.threads_per_run = threads_per_run;
    }
    pa::require(frozen_weights == "bf16" || frozen_weights == "fp32", "--frozen-weights must be bf16 or fp32, not '",
                frozen_weights, "'");
    pa::require(attention == "auto" || attention == "gemm" || attention == "flash",
                "--attention must be auto, gemm or flash, not '", attention, "'");
    // A plan for a GPU needs no GPU here (plan on a login node, run on the cluster).
    auto const backend = plan && s.device == "cuda" ? std::string("cuda") : backend_for(s.device);
    pa::require(backend == "cuda" || attention == "auto", "--attention ", attention,
                ": the CPU has one attention path; leave --attention at auto");
    if (!gemm_math.empty()) pa::require_gemm_math(backend, gemm_math);  // before any work
    pa::require(plan_ranks >= 1, "--ranks must be at least 1, got ", plan_ranks);
    pa::require(plan_ranks == 1 || plan, "--ranks ", plan_ranks, " plans memory per rank (with --plan); to train over ",
                "ranks, start the runner under mpirun or srun (docs/distributed.md)");
    pa::study::PlanDevice const plan_device{backend, attention, frozen_weights == "bf16", gemm_math,
                                            plan ? plan_ranks : ranks, zero1};
    if (plan) return pa::study::runner::print_plan(s, plan_device);

    auto const missing = pa::study::missing_files(s);
    if (!missing.empty()) {
        std::string message = missing.front();
        if (missing.size() > 1) message += " (and " + std::to_string(missing.size() - 1) + " more; --plan lists them)";
        throw pa::Error(message);
    }
    require_engines(s, backend);
    auto const predicted_peaks = pa::study::runner::require_fit(s, plan_device);

    pa::study::EngineOptions options;
    options.seed = s.seed;
    options.keep_base_on_host = s.methods.size() > 1 || s.methods.front() == "full";
    for (auto const& [method, h] : s.hyperparameters) options.adapter_dropout[method] = h.lora_dropout;
    options.attention = attention;
    options.gemm_math = gemm_math;
    options.frozen_in_bf16 = frozen_weights == "bf16";
    options.data_parallel = pa::distributed::launched_as_rank();
    options.zero1 = zero1;
    pa::require(!zero1 || options.data_parallel, "--zero1 shards AdamW's state over the ranks of mpirun or srun; "
                "this runner was started alone");
    pa::require(only_base_model.empty() || std::any_of(s.base_models.begin(), s.base_models.end(),
                                                      [&](auto const& m) { return m.preset == only_base_model; }),
                "--only-base-model ", only_base_model, ": the study has no such base model");
    pa::require(only_run.empty() == only_base_model.empty(), "--only-run and --only-base-model go together (a job)");
    for (auto const& one : pa::study::split_by_base_model(s)) {
        if (!only_base_model.empty() && one.preset != only_base_model) continue;
        pa::study::StudyRunOptions run_options{.quiet = quiet, .predicted_peaks = predicted_peaks.at(one.preset)};
        // Runs several at once, each in a child process (study/run_jobs.hpp); decided before the engine is made, so
        // that on the CPU this process pretrains and evaluates the base model on a run's thread count too.
        if (only_run.empty() && !options.data_parallel) {
            std::size_t peak = 0;
            for (auto const& [method, bytes] : run_options.predicted_peaks) peak = std::max(peak, bytes);
            auto const jobs_plan = pa::study::plan_jobs(backend, one.jobs, one.threads_per_run, usable_cores(),
                                                        backend == "cuda" ? int(pa::study::visible_gpus().size()) : 0,
                                                        peak, pa::cpu::host_device_info().free_bytes);
            if (!jobs_plan.note.empty()) std::printf("%s\n", jobs_plan.note.c_str());
            if (backend == "cpu" && jobs_plan.threads > 0) pa::cpu::set_cpu_threads(jobs_plan.threads);
            if (jobs_plan.children) {
                run_options.jobs = jobs_plan.jobs;
                run_options.launch = [&, threads = jobs_plan.threads, preset = one.preset](std::string const& run,
                                                                                            int slot) {
                    pa::study::JobCommand c;
                    c.argv = {self_path()};
                    if (!file.empty()) c.argv.push_back(file);
                    if (quick) c.argv.push_back("--quick");
                    if (!output.empty()) c.argv.insert(c.argv.end(), {"--output", output});
                    c.argv.insert(c.argv.end(), {"--device", backend, "--attention", attention, "--frozen-weights",
                                                 frozen_weights, "--only-base-model", preset, "--only-run", run});
                    if (!gemm_math.empty()) c.argv.insert(c.argv.end(), {"--gemm-math", gemm_math});
                    c.env = pa::study::job_environment(backend, slot, threads, std::getenv("CUDA_VISIBLE_DEVICES"));
                    return c;
                };
            }
        }
        auto engine = pa::study::find_engine(one.preset, backend)->make(options);
        if (rank != 0) {
            pa::study::follow_study(one, *engine);
            continue;
        }
        if (ranks > 1 || options.data_parallel)
            std::printf("data parallel over %d rank(s)%s\n", ranks, zero1 ? ", ZeRO-1" : "");
        if (!only_run.empty()) {  // a job: this one run, here
            run_options.only_run = only_run;
            pa::study::run_study(one, *engine, run_options);
            continue;
        }
        auto const outcome = pa::study::run_study(one, *engine, run_options);
        std::printf("\n%s\nruns trained %zu, skipped as finished %zu; base checkpoint read %d time(s)%s; wall time %s\n"
                    "report %s\n",
                    outcome.summary.c_str(), outcome.runs_trained, outcome.runs_skipped, engine->base_reads(),
                    run_options.launch ? " here and once by each run's process" : "",
                    pa::ProgressLine::format_duration(outcome.seconds).c_str(), outcome.report.string().c_str());
    }
    return 0;
}
