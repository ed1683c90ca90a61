// polyalpaca_export: an HF checkpoint (a directory with config.json and model.safetensors or its shards, or a run's
// output holding one under model/ or merged/) to a GGUF file llama.cpp loads, or (--adapter) a PEFT LoRA adapter of
// it to a GGUF adapter for llama.cpp's --lora, laid out as llama.cpp's own converters lay them out (docs/gguf.md).
// The model is not built: each tensor is read, reordered and encoded in turn.
#include <polyalpaca/io/gguf_adapter.hpp>
#include <polyalpaca/io/gguf_export.hpp>

#include <boost/program_options.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
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

std::string directory_name(fs::path const& dir) {
    auto const path = fs::absolute(dir).lexically_normal();
    return (path.has_filename() ? path : path.parent_path()).filename().string();
}

}  // namespace

int main(int argc, char** argv) try {
    std::string model, adapter, out, type = "f16", name;
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
        "a PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors; a run's output holding one "
        "under adapter/) of the --model checkpoint: write it as a GGUF adapter for llama.cpp's --lora instead of "
        "the model (its tensors stay f32, as llama.cpp's convert_lora_to_gguf.py writes them)")(
        "name", po::value(&name), "general.name (default: the model's or the adapter's directory name)");
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
        std::cout << desc << "\n";
        return 0;
    }
    po::notify(vm);
    auto const ggml_type = type_of(type);
    auto const dir = checkpoint_of(model);
    if (!adapter.empty()) {
        pa::require(vm["type"].defaulted(), "--type applies to a model; an adapter's tensors are written f32, as "
                    "llama.cpp's convert_lora_to_gguf.py writes them");
        fs::path adapter_dir = adapter;
        bool const run_output = fs::exists(adapter_dir / "adapter" / "adapter_config.json");
        if (!fs::exists(adapter_dir / "adapter_config.json") && run_output) adapter_dir /= "adapter";
        if (name.empty()) name = directory_name(adapter_dir);
        auto const result = io::export_peft_lora_to_gguf(dir, adapter_dir, out, name);
        std::printf("wrote %s: a %s LoRA adapter, %zu modules of rank %lld, alpha %g\n", out.c_str(),
                    result.architecture.c_str(), result.modules, static_cast<long long>(result.rank), result.alpha);
        return 0;
    }
    if (name.empty()) name = directory_name(dir);
    auto const result = io::export_hf_to_gguf(dir, out, ggml_type, name);
    std::printf("wrote %s: %s, %zu tensors, matrices as %s", out.c_str(), result.architecture.c_str(), result.tensors,
                std::string(io::ggml_type_name(ggml_type)).c_str());
    if (!result.tokenizer.empty()) std::printf("; the tokenizer of %s", result.tokenizer.c_str());
    for (std::size_t i = 0; i < result.left_out.size(); ++i)
        std::printf("%s%s", i == 0 ? "; left out as llama.cpp does: " : ", ", result.left_out[i].c_str());
    std::printf("\n");
    return 0;
} catch (std::exception const& e) {
    std::cerr << "polyalpaca_export: " << e.what() << "\n";
    return 2;
}
