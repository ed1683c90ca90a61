// polyalpaca_export: an HF checkpoint (a directory with config.json and model.safetensors or its shards, or a run's
// output holding one under model/ or merged/) to a GGUF file llama.cpp loads, or (--adapter) a PEFT LoRA adapter of
// it to a GGUF adapter for llama.cpp's --lora, laid out as llama.cpp's own converters lay them out (docs/gguf.md).
// The model is not built: each tensor is read, reordered and encoded in turn. The tokenizer and a chat template go
// with the model; a run's output gives the run's tokenizer and prompt template.
#include <polyalpaca/data/chat_template.hpp>
#include <polyalpaca/io/gguf_adapter.hpp>
#include <polyalpaca/io/gguf_export.hpp>
#include <polyalpaca/tokenizer/file_bytes.hpp>
#include <polyalpaca/tokenizer/json_path.hpp>

#include <boost/program_options.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <string>

namespace pa = polyalpaca;
namespace io = polyalpaca::io;
namespace fs = std::filesystem;
namespace po = boost::program_options;

namespace {

io::GgmlType type_of(std::string const& name) {
    static std::map<std::string, io::GgmlType> const types{{"f32", io::GgmlType::F32},
                                                            {"f16", io::GgmlType::F16},
                                                            {"bf16", io::GgmlType::BF16},
                                                            {"q8_0", io::GgmlType::Q8_0}};
    auto const it = types.find(name);
    pa::require(it != types.end(), "--type '", name, "' is not one of f32, f16, bf16, q8_0");
    return it->second;
}

/// The checkpoint directory of `path`: itself, or what a run's output holds: model/ (full-parameter) or merged/ (an
/// adapter run with --merge). An adapter run's output without merged/ is refused with what to do instead.
fs::path checkpoint_of(fs::path const& path) {
    for (auto const& dir : {path, path / "model", path / "merged"})
        if (fs::exists(dir / "config.json")) return dir;
    pa::require(!fs::exists(path / "adapter_config.json") && !fs::exists(path / "adapter" / "adapter_config.json"),
                path.string(), " holds an adapter, not a model: give it as --adapter with its base as --model, or "
                "export the merged model (a trainer run with --merge writes it under merged/)");
    pa::fail(path.string(), " holds no config.json, neither itself nor under model/ or merged/");
}

/// What a trainer's run_config.json beside the checkpoint or adapter says: the tokenizer and the prompt template it
/// trained with.
struct RunDefaults {
    fs::path tokenizer;
    std::string prompt_template;
};

RunDefaults run_defaults(fs::path const& checkpoint) {
    auto const dir = fs::absolute(checkpoint / "").lexically_normal().parent_path();  // without a trailing '/'
    if (dir.filename() != "model" && dir.filename() != "merged" && dir.filename() != "adapter") return {};
    auto const path = dir.parent_path() / "run_config.json";
    if (!fs::exists(path)) return {};
    auto const origin = path.string();
    auto const json = pa::tokenizer::parse_json(pa::tokenizer::read_file_bytes(path), origin);
    pa::tokenizer::JsonAt const root(json, "$", origin);
    RunDefaults d;
    if (auto const options = root.find("options")) d.tokenizer = options->string_or("tokenizer", "");
    d.prompt_template = root.string_or("template", "");
    return d;
}

/// --chat-template: a prompt template's name or file (data/prompt_template.hpp) made a chat template, a .jinja file
/// as it is, or "none".
std::string chat_template_of(std::string const& choice) {
    if (choice == "none") return "";
    if (fs::path(choice).extension() == ".jinja") return pa::tokenizer::read_file_bytes(choice);
    return pa::chat_template_of(pa::PromptTemplate::from_name_or_file(choice));
}

std::string directory_name(fs::path const& dir) {
    auto const path = fs::absolute(dir).lexically_normal();
    return (path.has_filename() ? path : path.parent_path()).filename().string();
}

}  // namespace

int main(int argc, char** argv) try {
    std::string model, adapter, out, type = "f16", name, tokenizer, chat_template;
    po::options_description desc(
        "polyalpaca_export: writes an HF checkpoint of a BLOOM, GPT-NeoX or LLaMA as a GGUF file for llama.cpp, laid "
        "out as llama.cpp's convert_hf_to_gguf.py lays it out (tensor names, q/k/v row orders, hyperparameters), or "
        "a PEFT LoRA adapter of it as a GGUF adapter for llama.cpp's --lora.\nOptions");
    desc.add_options()("help,h", "show this help")(
        "model", po::value(&model)->required(),
        "the checkpoint: a directory with config.json and model.safetensors (or its index and shards), or a run's "
        "output directory holding one under model/ (full-parameter) or merged/ (an adapter run with --merge)")(
        "out", po::value(&out)->required(), "the GGUF file to write (written atomically)")(
        "type", po::value(&type)->default_value(type),
        "the matrices' type: f32, f16, bf16 or q8_0 (vectors stay f32; a matrix whose rows are no whole number of "
        "Q8_0 blocks is f16, as llama.cpp's converter does)")(
        "adapter", po::value(&adapter),
        "a PEFT adapter directory (adapter_config.json, adapter_model.safetensors; a run's output holding one "
        "under adapter/) of the --model checkpoint: a LoRA is written as a GGUF adapter for llama.cpp's --lora "
        "instead of the model (its tensors stay f32, as llama.cpp's convert_lora_to_gguf.py writes them)")(
        "merge", "with --adapter: write the --model checkpoint with the adapter merged in (LoRA, DoRA or IA3, as "
        "PEFT's merge_and_unload merges them), a plain GGUF model")(
        "name", po::value(&name), "general.name (default: the model's or the adapter's directory name)")(
        "tokenizer", po::value(&tokenizer),
        "the tokenizer to write with the model: a SentencePiece tokenizer.model, or a tokenizer.json of byte-level BPE "
        "(BLOOM's or GPT-2's pre-tokenizer) or of SentencePiece-style BPE with byte fallback (LLaMA's); "
        "tokenizer_config.json beside it is read too. Default: the one beside the weights, else the tokenizer of the "
        "run whose output --model is")(
        "chat-template", po::value(&chat_template),
        "tokenizer.chat_template: a prompt template (alpaca, alpaca_legacy, or a template file in alpaca-lora's "
        "format) made a chat template, a .jinja file, or none. Default: the prompt template of the run whose output "
        "--model is, else the tokenizer's own (tokenizer_config.json)");
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
        std::cout << desc << "\n";
        return 0;
    }
    po::notify(vm);
    auto const ggml_type = type_of(type);
    auto const dir = checkpoint_of(model);
    bool const merge = vm.count("merge") > 0;
    pa::require(!merge || !adapter.empty(), "--merge needs the --adapter to merge into --model");
    fs::path adapter_dir = adapter;
    if (!adapter.empty() && !fs::exists(adapter_dir / "adapter_config.json") &&
        fs::exists(adapter_dir / "adapter" / "adapter_config.json"))
        adapter_dir /= "adapter";  // a run's output
    if (!adapter.empty() && !merge) {
        pa::require(vm["type"].defaulted(), "--type applies to a model; an adapter's tensors are written f32, as "
                    "llama.cpp's convert_lora_to_gguf.py writes them (--merge writes the merged model)");
        pa::require(tokenizer.empty() && chat_template.empty(), "--tokenizer and --chat-template go with a model: "
                    "llama.cpp takes them from the base model's GGUF file, not from the adapter's");
        if (name.empty()) name = directory_name(adapter_dir);
        auto const result = io::export_peft_lora_to_gguf(dir, adapter_dir, out, name);
        std::printf("wrote %s: a %s LoRA adapter, %zu modules of rank %lld, alpha %g\n", out.c_str(),
                    result.architecture.c_str(), result.modules, static_cast<long long>(result.rank), result.alpha);
        return 0;
    }
    std::optional<io::PeftMerge> merged;
    if (merge) merged = io::PeftMerge::open(adapter_dir);
    if (name.empty()) name = directory_name(merge ? adapter_dir : dir);
    auto const run = run_defaults(merge ? adapter_dir : dir);
    io::GgufTokenizerChoice choice;
    choice.file = !tokenizer.empty() ? fs::path(tokenizer) : io::tokenizer_file(dir, {}).empty() ? run.tokenizer : "";
    if (!chat_template.empty()) choice.chat_template = chat_template_of(chat_template);
    else if (!run.prompt_template.empty()) choice.chat_template = chat_template_of(run.prompt_template);
    auto const result = io::export_hf_to_gguf(dir, out, ggml_type, name, choice, merged ? &*merged : nullptr);
    std::printf("wrote %s: %s, %zu tensors, matrices as %s", out.c_str(), result.architecture.c_str(), result.tensors,
                std::string(io::ggml_type_name(ggml_type)).c_str());
    if (merged) std::printf("; %s of %zu modules merged in", merged->kind_name(), merged->modules());
    if (!result.tokenizer.empty()) std::printf("; the tokenizer of %s", result.tokenizer.c_str());
    if (choice.chat_template && !choice.chat_template->empty())
        std::printf("; chat template: %s", chat_template.empty() ? run.prompt_template.c_str() : chat_template.c_str());
    for (std::size_t i = 0; i < result.left_out.size(); ++i)
        std::printf("%s%s", i == 0 ? "; left out as llama.cpp does: " : ", ", result.left_out[i].c_str());
    std::printf("\n");
    return 0;
} catch (std::exception const& e) {
    std::cerr << "polyalpaca_export: " << e.what() << "\n";
    return 2;
}
