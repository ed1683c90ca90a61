// polyalpaca_study [STUDY.json] [--output DIR] [--quick]: runs a whole study (docs/study.md) and writes its report.
// Without a study file it runs the embedded study: the synthetic suite, a byte-level BLOOM pretrained here, every
// strategy tuned and evaluated. The model types are fixed at compile time: a study file naming another preset is
// an error listing the compiled ones.
#include <polyalpaca/polyalpaca.hpp>
#include <polyalpaca/study/driver.hpp>
#include <polyalpaca/study/embedded_default.hpp>

#include <boost/program_options.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include <unistd.h>

namespace pa = polyalpaca;
namespace po = boost::program_options;

// The LoRA of the paper: r 8, alpha 16 on the fused query_key_value.
template <class Size>
using BloomLora = pa::Bloom<Size, pa::LoRA<8, 16, pa::site::Qkv>>;

template <class Size>
pa::study::StudyOutcome run_bloom(pa::study::StudyFile const& s, bool quiet) {
    return pa::study::run_study<pa::Bloom<Size>, BloomLora<Size>>(s, quiet);
}

// The presets this binary is compiled for, and the study of one base model run with its types.
#ifndef POLYALPACA_STUDY_SMALL_ONLY
char const* const compiled = "bloom-study, bloom-560m";
#else
char const* const compiled = "bloom-study";
#endif

bool is_compiled(std::string const& preset) {
#ifndef POLYALPACA_STUDY_SMALL_ONLY
    if (preset == "bloom-560m") return true;
#endif
    return preset == "bloom-study";
}

pa::study::StudyOutcome dispatch(pa::study::StudyFile const& s, bool quiet) {
#ifndef POLYALPACA_STUDY_SMALL_ONLY
    if (s.preset == "bloom-560m") return run_bloom<pa::bloom::Size560m>(s, quiet);
#endif
    return run_bloom<pa::bloom::SizeStudy>(s, quiet);
}

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

int main(int argc, char** argv) try {
    restart_with_cpu_env(argv);
    std::string file, output;
    bool quick = false, quiet = false, print_default = false;
    po::options_description desc("polyalpaca_study [STUDY.json] [options]");
    desc.add_options()("help,h", "this help")("output", po::value(&output), "output directory (overrides the study file's)")(
        "quick", po::bool_switch(&quick), "the embedded study's shortened form (CI)")(
        "quiet", po::bool_switch(&quiet), "no progress lines")(
        "print-default", po::bool_switch(&print_default), "print the embedded study file and exit");
    po::options_description hidden;
    hidden.add_options()("study", po::value(&file));
    po::positional_options_description positional;
    positional.add("study", 1);
    po::options_description all;
    all.add(desc).add(hidden);
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
    if (vm.count("help")) {
        std::cout << desc << "\nWithout STUDY.json: the embedded study (docs/study.md).\n";
        return 0;
    }
    if (print_default) {
        std::cout << pa::study::embedded_study_json(quick).dump(2) << "\n";
        return 0;
    }
    pa::require(file.empty() || !quick, "--quick shortens the embedded study; it does not apply to a study file");
    auto s = file.empty() ? pa::study::embedded_study(quick) : pa::study::read_study_file(file);
    if (!output.empty()) s.output = output;
    for (auto const& m : s.base_models)
        pa::require(is_compiled(m.preset), s.source.empty() ? std::string("the study") : s.source.string(),
                    ": base_model.preset \"", m.preset, "\" is not compiled into polyalpaca_study (compiled: ", compiled,
                    "); add it to examples/polyalpaca_study.cpp's dispatch()");
    for (auto const& one : pa::study::split_by_base_model(s)) {
        auto const outcome = dispatch(one, quiet);
        std::printf("\n%s\nruns trained %zu, skipped as finished %zu; wall time %s\nreport %s\n",
                    outcome.summary.c_str(), outcome.runs_trained, outcome.runs_skipped,
                    pa::ProgressLine::format_duration(outcome.seconds).c_str(), outcome.report.string().c_str());
    }
    return 0;
} catch (std::exception const& e) {
    std::fprintf(stderr, "polyalpaca_study: %s\n", e.what());
    return 2;
}
