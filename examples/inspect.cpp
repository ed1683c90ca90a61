// polyalpaca-inspect DIR: what an HF model directory (or a PEFT adapter directory) holds, before training on it:
// architecture, the matching preset (or the nearest one and what differs), parameter count, weight dtypes, shards,
// and the tokenizer found. polyalpaca-inspect DIR --cpp [NAME]: the C++ Size struct of DIR's config.json (the header
// polyalpaca_add_trainer(HF_CONFIG) generates), so a checkpoint that is no preset gets a model type without guessing.
#include <polyalpaca/io/hf_config.hpp>
#include <polyalpaca/io/hf_weights.hpp>
#include <polyalpaca/io/model_source.hpp>
#include <polyalpaca/io/peft.hpp>
#include <polyalpaca/io/safetensors.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>

namespace fs = std::filesystem;
namespace io = polyalpaca::io;

namespace {

/// 559214592 -> "559,214,592"
std::string grouped(std::int64_t n) {
    std::string digits = std::to_string(n), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

void print_config(fs::path const& dir) {
    auto const config = io::read_hf_config(dir);
    auto const spec = io::spec_from_config(config, (dir / "config.json").string());
    auto const architectures = config.value("architectures", nlohmann::json::array());
    std::cout << "architecture: " << spec.family;
    if (!architectures.empty()) std::cout << " (" << architectures[0].get<std::string>() << ")";
    std::cout << "\n  vocab " << spec.vocab << ", hidden " << spec.hidden << ", layers " << spec.layers << ", heads "
              << spec.heads << ", kv heads " << spec.kv_heads << ", ffn " << spec.ffn << ", norm eps " << spec.norm_eps
              << (spec.tied_head ? ", tied head" : ", untied head") << "\n";
    if (auto const match = io::matching_preset(config); !match.empty()) {
        std::cout << "preset: " << match << "\n";
    } else if (auto const nearest = io::nearest_preset(config); !nearest.name.empty()) {
        std::cout << "preset: none; nearest is " << nearest.name << ", which differs in:\n";
        for (auto const& d : nearest.differences) std::cout << "  " << d << "\n";
    } else {
        std::cout << "preset: none\n";
    }
    std::cout << "parameters (from config.json): " << grouped(spec.parameter_count) << "\n";
}

void print_weights(fs::path const& dir) {
    auto const ckpt = io::SafetensorsCheckpoint::open(dir);
    std::map<std::string, std::int64_t> tensors_of_dtype;
    std::int64_t weights = 0, buffers = 0;
    for (auto const& t : ckpt.tensors()) {
        if (io::is_known_buffer(t.name)) {
            ++buffers;
            continue;
        }
        ++tensors_of_dtype[std::string(io::dtype_name(t.dtype))];
        weights += t.element_count();
    }
    std::cout << "weights: " << grouped(weights) << " in " << ckpt.tensors().size() - std::size_t(buffers)
              << " tensors";
    if (buffers > 0) std::cout << " (and " << buffers << " buffers)";
    std::cout << ", " << ckpt.shard_count() << (ckpt.shard_count() == 1 ? " shard" : " shards") << "\ndtypes:";
    for (auto const& [dtype, count] : tensors_of_dtype) std::cout << " " << dtype << " (" << count << " tensors)";
    std::cout << "\n";
}

void print_adapter(fs::path const& dir) {
    auto const config = io::read_json_file(dir / io::peft_config_file);
    auto const type = config.value("peft_type", std::string("?"));
    std::cout << "PEFT adapter: " << type << (config.value("use_dora", false) ? " (DoRA)" : "");
    if (type == "IA3")
        std::cout << ", feedforward_modules " << config.value("feedforward_modules", nlohmann::json()).dump();
    else
        std::cout << ", r " << config.value("r", nlohmann::json()).dump() << ", alpha "
                  << config.value("lora_alpha", nlohmann::json()).dump();
    std::cout << ", target_modules " << config.value("target_modules", nlohmann::json()).dump() << ", base model "
              << config.value("base_model_name_or_path", nlohmann::json()).dump() << "\n";
    if (fs::exists(dir / io::peft_weights_file)) {
        auto const file = io::SafetensorsFile::open(dir / io::peft_weights_file);
        std::int64_t n = 0;
        for (auto const& t : file.tensors()) n += t.element_count();
        std::cout << "adapter weights: " << grouped(n) << " in " << file.tensors().size() << " tensors\n";
    }
}

std::string tokenizer_kind(fs::path const& dir) {
    if (fs::exists(dir / "tokenizer.json")) {
        auto const tokenizer = io::read_json_file(dir / "tokenizer.json");
        auto const model =
            tokenizer.is_object() ? tokenizer.value("model", nlohmann::json::object()) : nlohmann::json::object();
        auto const type = model.is_object() ? model.value("type", nlohmann::json()) : nlohmann::json();
        return "tokenizer.json (" + (type.is_string() ? type.get<std::string>() : std::string("model type not given")) +
               ")";
    }
    if (fs::exists(dir / "tokenizer.model")) return "tokenizer.model (SentencePiece)";
    return "none";
}

}  // namespace

int main(int argc, char** argv) {
    bool const cpp = argc >= 3 && std::string(argv[2]) == "--cpp";
    if ((argc != 2 && !(cpp && argc <= 4)) || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        std::cerr << "usage: polyalpaca-inspect DIR [--cpp [NAME]]\n"
                     "  DIR: an HF model directory (config.json, model.safetensors or an index and shards,\n"
                     "       tokenizer.json / tokenizer.model) or a PEFT adapter directory\n"
                     "  --cpp: print the C++ Size struct (named NAME, default ModelSize) of DIR's config.json\n";
        return argc == 2 ? 0 : 2;
    }
    fs::path const dir = argv[1];
    if (cpp) try {
        auto const file = fs::is_directory(dir) ? dir / "config.json" : dir;
        std::cout << io::model_source(io::read_hf_config(file), argc == 4 ? argv[3] : "ModelSize", file.string())
                         .header();
        return 0;
    } catch (std::exception const& e) {
        std::cerr << "polyalpaca-inspect: " << e.what() << "\n";
        return 1;
    }
    try {
        if (!fs::is_directory(dir)) throw polyalpaca::Error("'" + dir.string() + "' is not a directory");
        std::cout << "directory: " << dir.string() << "\n";
        bool const is_adapter = fs::exists(dir / io::peft_config_file);
        bool const has_config = fs::exists(dir / "config.json");
        bool const has_weights = fs::exists(dir / io::SafetensorsCheckpoint::single_file_name) ||
                                 fs::exists(dir / io::SafetensorsCheckpoint::index_file_name);
        if (!is_adapter && !has_config && !has_weights)
            throw polyalpaca::Error("'" + dir.string() + "' holds no config.json, model.safetensors, " +
                                    "model.safetensors.index.json or adapter_config.json");
        if (is_adapter) print_adapter(dir);
        if (has_config) print_config(dir);
        if (has_weights) print_weights(dir);
        std::cout << "tokenizer: " << tokenizer_kind(dir) << "\n";
    } catch (std::exception const& e) {  // polyalpaca::Error, or a filesystem error
        std::cerr << "polyalpaca-inspect: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
