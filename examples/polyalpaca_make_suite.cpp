// polyalpaca_make_suite: writes the synthetic multilingual instruction suite to a directory (train/<lang>.json,
// test/test_<lang>.jsonl, pretrain/<lang>.txt, suite.json) and prints what it wrote per language.
#include <polyalpaca/data/prompt_template.hpp>
#include <polyalpaca/data/synthetic/suite_files.hpp>

#include <boost/program_options.hpp>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace pa = polyalpaca;
namespace po = boost::program_options;

namespace {

/// "en,fr, de" -> {"en", "fr", "de"}; "none" or "" -> {}.
std::vector<std::string> codes_of(std::string const& list) {
    std::vector<std::string> codes;
    if (list == "none") return codes;
    for (auto const& item : pa::synthetic::split_list(list, ",")) {
        auto const first = item.find_first_not_of(' ');
        if (first == std::string::npos) continue;
        codes.push_back(item.substr(first, item.find_last_not_of(' ') - first + 1));
    }
    return codes;
}

}  // namespace

int main(int argc, char** argv) try {
    pa::synthetic::SyntheticSuiteConfig config;
    std::string out, languages = pa::synthetic::join(config.languages, ","),
                     zero_shot = pa::synthetic::join(config.zero_shot, ","), prompt_template = "alpaca";
    po::options_description desc(
        "polyalpaca_make_suite: writes the synthetic multilingual instruction suite (arithmetic, counting, ordering, "
        "copying and questions about the input, in eight languages) to a directory.\nOptions");
    desc.add_options()("help,h", "show this help")(
        "out", po::value(&out)->required(), "directory to write (created if needed)")(
        "languages", po::value(&languages)->default_value(languages), "comma-separated language codes")(
        "zero-shot", po::value(&zero_shot)->default_value(zero_shot),
        "languages tested but never tuned on (\"none\" for none)")(
        "train", po::value(&config.train_per_language)->default_value(config.train_per_language),
        "tuning records per tuned language")(
        "test", po::value(&config.test_per_language)->default_value(config.test_per_language),
        "held-out test records per language")(
        "pretrain", po::value(&config.pretrain_sentences_per_language)
                        ->default_value(config.pretrain_sentences_per_language),
        "pretraining sentences per language")(
        "seed", po::value(&config.seed)->default_value(config.seed), "the suite's seed")(
        "template", po::value(&prompt_template)->default_value(prompt_template),
        "prompt template of the test files' alpaca_prompt: alpaca, alpaca_legacy or a template file");
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
        std::cout << desc << "\n";
        return 0;
    }
    po::notify(vm);
    config.languages = codes_of(languages);
    config.zero_shot = codes_of(zero_shot);

    auto const suite = pa::synthetic::build_synthetic_suite(config);
    pa::synthetic::write_suite(out, suite, pa::PromptTemplate::from_name_or_file(prompt_template));

    std::printf("%-9s %-10s %-9s %7s %6s %9s\n", "language", "script", "role", "train", "test", "pretrain");
    for (auto const& lang : suite.languages)
        std::printf("%-9s %-10s %-9s %7zu %6zu %9zu\n", std::string(lang.pack->code).c_str(),
                    std::string(lang.pack->script).c_str(), lang.zero_shot ? "zero-shot" : "tuned", lang.train.size(),
                    lang.test.size(), lang.pretrain.size());
    std::printf("wrote %s (seed %llu)\n", (std::filesystem::path(out) / "suite.json").string().c_str(),
                static_cast<unsigned long long>(config.seed));
    return 0;
} catch (std::exception const& e) {
    std::cerr << "polyalpaca_make_suite: " << e.what() << "\n";
    return 2;
}
