/// @file io/safetensors_checkpoint.hpp
/// @brief SafetensorsCheckpoint: an HF model directory, one model.safetensors or an index and its shards.
#pragma once

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/excerpt.hpp"
#include "polyalpaca/io/input_file.hpp"
#include "polyalpaca/io/safetensors_file.hpp"

namespace polyalpaca::io {

/// Reads a whole (small) text file; Error naming it when it cannot be read.
inline std::string read_text_file(std::filesystem::path const& path) {
    auto in = open_input_file(path, "the file");
    std::ostringstream text;
    text << in.rdbuf();
    require(!in.bad(), "cannot read '", path.string(), "'");
    return text.str();
}

/// Parses a JSON file; Error naming the file and the parser's position when it is not JSON.
/// The deepest nesting parse_json_text accepts. HF and PEFT files nest a few levels; a deeper document is refused
/// while it is parsed, before a copy, a comparison or a message recurses through it.
inline constexpr int max_json_depth = 64;

/// Parses `text` (from `origin`, named in errors) as JSON; Error when it is not JSON or nests too deep.
inline nlohmann::json parse_json_text(std::string_view text, std::string const& origin) {
    try {
        return nlohmann::json::parse(text, [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
            require(depth <= max_json_depth, "'", origin, "' nests deeper than ", max_json_depth, " levels");
            return true;
        });
    } catch (nlohmann::json::exception const& e) {
        fail("'", origin, "' is not valid JSON: ", json_error_text(e.what()));
    }
}

inline nlohmann::json read_json_file(std::filesystem::path const& path) {
    return parse_json_text(read_text_file(path), path.string());
}

/// The weights of an HF checkpoint directory: `model.safetensors`, or `model.safetensors.index.json` with the
/// shards its weight_map names (each must exist, hold the tensors mapped to it and no other; no tensor twice).
/// A path to a single .safetensors file is accepted too.
class SafetensorsCheckpoint {
public:
    static constexpr char const* single_file_name = "model.safetensors";
    static constexpr char const* index_file_name = "model.safetensors.index.json";

    static SafetensorsCheckpoint open(std::filesystem::path const& path) {
        SafetensorsCheckpoint c;
        c.path_ = path;
        if (std::filesystem::is_regular_file(path)) {
            c.add_shard(SafetensorsFile::open(path));
        } else if (std::filesystem::is_regular_file(path / index_file_name)) {
            c.open_sharded(path / index_file_name);
        } else if (std::filesystem::is_regular_file(path / single_file_name)) {
            c.add_shard(SafetensorsFile::open(path / single_file_name));
        } else {
            fail("'", path.string(), "' holds neither ", single_file_name, " nor ", index_file_name);
        }
        return c;
    }

    std::filesystem::path const& path() const { return path_; }
    std::size_t shard_count() const { return shards_.size(); }
    SafetensorsFile const& shard(std::size_t i) const { return shards_.at(i); }

    /// Every tensor of every shard, sorted by name.
    std::vector<TensorInfo> tensors() const {
        std::vector<TensorInfo> all;
        for (auto const& [name, at] : index_) all.push_back(shards_[at.shard].tensors()[at.tensor]);
        return all;
    }
    /// The index file's "metadata" (sharded) or the single file's "__metadata__".
    std::map<std::string, std::string> const& metadata() const { return metadata_; }

    TensorInfo const* find(std::string_view name) const {
        auto it = index_.find(name);
        return it == index_.end() ? nullptr : &shards_[it->second.shard].tensors()[it->second.tensor];
    }
    /// The file holding tensor `name`.
    SafetensorsFile const& file_of(std::string_view name) const { return shards_[locate(name).shard]; }

    std::span<std::byte const> raw(std::string_view name) const { return file_of(name).raw(name); }
    template <class T>
    void read(std::string_view name, std::span<T> out) const {
        file_of(name).read(name, out);
    }

private:
    struct Location {
        std::size_t shard;
        std::size_t tensor;
    };

    Location const& locate(std::string_view name) const {
        auto it = index_.find(name);
        if (it == index_.end())
            fail("checkpoint '", path_.string(), "': no tensor ", detail::quoted(std::string(name)));
        return it->second;
    }

    void add_shard(SafetensorsFile file) {
        std::size_t const s = shards_.size();
        for (std::size_t i = 0; i < file.tensors().size(); ++i) {
            auto const& name = file.tensors()[i].name;
            auto [it, inserted] = index_.emplace(name, Location{s, i});
            if (!inserted)
                fail("checkpoint '", path_.string(), "': tensor ", detail::quoted(name), " is in both '",
                     shards_[it->second.shard].path().filename().string(), "' and '", file.path().filename().string(),
                     "'");
        }
        if (shards_.empty()) metadata_ = file.metadata();
        shards_.push_back(std::move(file));
    }

    void open_sharded(std::filesystem::path const& index_path) {
        std::string const where = "'" + index_path.string() + "': ";
        nlohmann::json const index = read_json_file(index_path);
        require(index.is_object(), where, "is a ", index.type_name(), ", not a JSON object");
        auto const map_it = index.find("weight_map");
        require(map_it != index.end() && map_it->is_object(), where, "has no \"weight_map\" object");
        if (auto m = index.find("metadata"); m != index.end() && m->is_object())
            for (auto const& [key, value] : m->items())
                metadata_[key] = value.is_string() ? value.get<std::string>() : detail::describe(value);

        std::map<std::string, std::vector<std::string>> tensors_of_shard;
        for (auto const& [tensor, shard] : map_it->items()) {
            require(shard.is_string(), where, "weight_map entry ", detail::quoted(tensor), " is a ", shard.type_name(),
                    ", not a file name");
            auto const& file = shard.get_ref<std::string const&>();
            require(!file.empty() && file != "." && file != ".." && file.find('/') == std::string::npos &&
                        file.find('\\') == std::string::npos,
                    where, "weight_map entry ", detail::quoted(tensor), " names ", detail::quoted(file),
                    ", not a file in the checkpoint directory");
            tensors_of_shard[file].push_back(tensor);
        }
        require(!tensors_of_shard.empty(), where, "weight_map is empty");
        auto const dir = index_path.parent_path();
        for (auto const& [file, listed] : tensors_of_shard) {
            require(std::filesystem::is_regular_file(dir / file), where, "weight_map names shard '", file,
                    "', which does not exist (", listed.size(), " tensors, e.g. ", detail::quoted(listed.front()), ")");
            auto shard = SafetensorsFile::open(dir / file);
            for (auto const& tensor : listed)
                require(shard.find(tensor) != nullptr, where, "weight_map puts tensor ", detail::quoted(tensor),
                        " in '", file, "', which does not hold it");
            for (auto const& t : shard.tensors()) {
                auto const listed_in = map_it->find(t.name);
                require(listed_in != map_it->end(), where, "shard '", file, "' holds tensor ", detail::quoted(t.name),
                        ", which weight_map does not list");
                require(*listed_in == file, where, "tensor ", detail::quoted(t.name), " is in '", file,
                        "' but weight_map puts it in ", listed_in->dump());
            }
            add_shard(std::move(shard));
        }
    }

    std::filesystem::path path_;
    std::vector<SafetensorsFile> shards_;
    std::map<std::string, Location, std::less<>> index_;
    std::map<std::string, std::string> metadata_;
};

}  // namespace polyalpaca::io
