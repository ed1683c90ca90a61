/// @file train/checkpoint.hpp
/// @brief Training checkpoints: trainable weights, optimizer moments and run state, written atomically and
///        read back exactly, so a killed run resumes where it stopped.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/graph/parameter_store.hpp"
#include "polyalpaca/io/atomic_file.hpp"
#include "polyalpaca/io/safetensors_checkpoint.hpp"
#include "polyalpaca/io/safetensors_file.hpp"
#include "polyalpaca/io/safetensors_writer.hpp"

namespace polyalpaca {

/// Where a run is: enough to continue it bit for bit (with the same data and settings).
struct RunState {
    long step = 0;             ///< optimizer steps done
    long epoch = 0;            ///< current epoch
    long position = 0;         ///< micro-batches of the current epoch already consumed
    std::int64_t tokens = 0;   ///< tokens processed so far
    double best_loss = 0;      ///< best validation loss so far (valid when best_step >= 0)
    long best_step = -1;
    Rng::State dropout_rng{};  ///< the model's dropout generator
    nlohmann::json extra = nlohmann::json::object();  ///< anything else the trainer wants back (settings digest ...)
};

namespace detail {
inline std::string to_hex(std::uint64_t v) {
    char buf[17];
    auto const [end, ec] = std::to_chars(buf, buf + 16, v, 16);
    return std::string(buf, end);
}
inline std::uint64_t from_hex(std::string const& s, std::filesystem::path const& file) {
    std::uint64_t v = 0;
    auto const [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
    require(ec == std::errc() && end == s.data() + s.size(), "checkpoint state '", file.string(),
            "': bad generator word '", s, "'");
    return v;
}
inline std::string checkpoint_name(long step) { return "checkpoint-" + std::to_string(step); }
/// Makes a rename inside `dir` durable.
inline void sync_directory(std::filesystem::path const& dir) {
    int const fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}
}  // namespace detail

/// Writes <run_dir>/checkpoint-<step>/ {trainable.safetensors, optimizer.safetensors, state.json}. The files go
/// into a hidden temp directory that is renamed into place only when all of them are complete and synced, so a
/// kill at any moment leaves either the previous checkpoints alone or the new one whole.
template <class Backend, class T, class Optimizer>
std::filesystem::path save_checkpoint(typename Backend::Context& ctx, std::filesystem::path const& run_dir,
                                      ParameterStore<Backend, T>& store, Optimizer const& optimizer,
                                      RunState const& state) {
    namespace fs = std::filesystem;
    fs::create_directories(run_dir);
    auto const final_dir = run_dir / detail::checkpoint_name(state.step);
    auto const temp_dir = run_dir / ("." + detail::checkpoint_name(state.step) + ".tmp");
    fs::remove_all(temp_dir);
    fs::create_directories(temp_dir);

    Index const n = store.trainable_count();
    std::vector<T> values(static_cast<std::size_t>(n)), moments(static_cast<std::size_t>(2 * n));
    Backend::download(ctx, store.trainable_values(), values.data(), values.size());
    Backend::download(ctx, optimizer.moments().data(), moments.data(), moments.size());
    std::vector<float> values_f(values.begin(), values.end()), moments_f(moments.begin(), moments.end());
    std::vector<io::TensorToWrite> weights, optim;
    for (auto* p : store.parameters()) {
        if (!p->trainable()) continue;
        Index const offset = p->value - store.trainable_values();
        std::vector<std::int64_t> const shape{p->rows, p->cols};
        std::span<float const> const slot(values_f.data() + offset, std::size_t(p->size()));
        weights.push_back({p->name, io::DType::F32, shape, slot});
        optim.push_back({"exp_avg." + p->name, io::DType::F32, shape,
                         std::span<float const>(moments_f.data() + offset, std::size_t(p->size()))});
        optim.push_back({"exp_avg_sq." + p->name, io::DType::F32, shape,
                         std::span<float const>(moments_f.data() + n + offset, std::size_t(p->size()))});
    }
    io::write_safetensors(temp_dir / "trainable.safetensors", weights);
    io::write_safetensors(temp_dir / "optimizer.safetensors", optim);

    nlohmann::json j{{"step", state.step},           {"epoch", state.epoch},
                     {"position", state.position},   {"tokens", state.tokens},
                     {"best_loss", state.best_loss}, {"best_step", state.best_step},
                     {"optimizer_steps", optimizer.step_count()}, {"trainable_values", n},
                     {"extra", state.extra}};
    for (auto w : state.dropout_rng) j["dropout_rng"].push_back(detail::to_hex(w));
    io::write_file_atomically(temp_dir / "state.json", j.dump(2));

    fs::remove_all(final_dir);
    fs::rename(temp_dir, final_dir);
    detail::sync_directory(run_dir);
    return final_dir;
}

namespace detail {
/// state.json of checkpoint `dir`, checked to be for a model with `trainable` trainable values.
inline nlohmann::json read_checkpoint_state(std::filesystem::path const& dir, Index trainable) {
    auto j = io::read_json_file(dir / "state.json");
    require(j.value("trainable_values", Index(-1)) == trainable, "checkpoint '", dir.string(), "' holds ",
            j.value("trainable_values", Index(-1)), " trainable values but this model has ", trainable,
            ": it was written for another model or adapter");
    return j;
}

/// Reads tensor `prefix + name` of every trainable parameter into `arena` (laid out as the store's trainable
/// values); a missing tensor or a shape mismatch names the file and the tensor.
template <class Backend, class T>
void read_trainable(io::SafetensorsFile const& file, std::string const& prefix, ParameterStore<Backend, T>& store,
                    T* arena) {
    for (auto* p : store.parameters()) {
        if (!p->trainable()) continue;
        auto const name = prefix + p->name;
        auto const* t = file.find(name);
        require(t != nullptr, "checkpoint file '", file.path().string(), "' has no tensor '", name, "'");
        require(t->element_count() == p->size(), "checkpoint file '", file.path().string(), "': tensor '", name,
                "' has ", t->element_count(), " values, the model's has ", p->size());
        file.read(name, std::span<T>(arena + (p->value - store.trainable_values()), std::size_t(p->size())));
    }
}
}  // namespace detail

/// Only the trainable weights of a checkpoint written by save_checkpoint (what restoring the best step needs):
/// no optimizer state is read, and none has to exist in memory.
template <class Backend, class T>
void load_checkpoint_weights(typename Backend::Context& ctx, std::filesystem::path const& dir,
                             ParameterStore<Backend, T>& store) {
    Index const n = store.trainable_count();
    detail::read_checkpoint_state(dir, n);
    std::vector<T> values(static_cast<std::size_t>(n));
    detail::read_trainable(io::SafetensorsFile::open(dir / "trainable.safetensors"), "", store, values.data());
    Backend::upload(ctx, values.data(), store.trainable_values(), values.size());
}

/// Reads a checkpoint written by save_checkpoint into the store and the optimizer; returns its run state.
/// Every trainable parameter must be present with its shape; a mismatch names the file and the tensor.
template <class Backend, class T, class Optimizer>
RunState load_checkpoint(typename Backend::Context& ctx, std::filesystem::path const& dir,
                         ParameterStore<Backend, T>& store, Optimizer& optimizer) {
    auto const state_path = dir / "state.json";
    Index const n = store.trainable_count();
    auto const j = detail::read_checkpoint_state(dir, n);
    std::vector<T> values(static_cast<std::size_t>(n)), moments(static_cast<std::size_t>(2 * n));
    detail::read_trainable(io::SafetensorsFile::open(dir / "trainable.safetensors"), "", store, values.data());
    auto const optim = io::SafetensorsFile::open(dir / "optimizer.safetensors");
    detail::read_trainable(optim, "exp_avg.", store, moments.data());
    detail::read_trainable(optim, "exp_avg_sq.", store, moments.data() + n);
    Backend::upload(ctx, values.data(), store.trainable_values(), values.size());
    Backend::upload(ctx, moments.data(), optimizer.moments().data(), moments.size());
    optimizer.set_step_count(j.at("optimizer_steps").get<long>());

    RunState s;
    s.step = j.at("step").get<long>();
    s.epoch = j.at("epoch").get<long>();
    s.position = j.at("position").get<long>();
    s.tokens = j.at("tokens").get<std::int64_t>();
    s.best_loss = j.at("best_loss").get<double>();
    s.best_step = j.at("best_step").get<long>();
    s.extra = j.value("extra", nlohmann::json::object());
    auto const& words = j.at("dropout_rng");
    require(words.is_array() && words.size() == s.dropout_rng.size(), "checkpoint state '", state_path.string(),
            "': dropout_rng must be ", s.dropout_rng.size(), " hex words");
    for (std::size_t i = 0; i < s.dropout_rng.size(); ++i)
        s.dropout_rng[i] = detail::from_hex(words[i].get<std::string>(), state_path);
    return s;
}

/// The complete checkpoints of a run, oldest first (temp directories of interrupted writes are ignored).
inline std::vector<std::pair<long, std::filesystem::path>> list_checkpoints(std::filesystem::path const& run_dir) {
    std::vector<std::pair<long, std::filesystem::path>> found;
    if (!std::filesystem::is_directory(run_dir)) return found;
    for (auto const& entry : std::filesystem::directory_iterator(run_dir)) {
        auto const name = entry.path().filename().string();
        if (!entry.is_directory() || !name.starts_with("checkpoint-")) continue;
        long step = 0;
        auto const digits = name.substr(11);
        auto const [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), step);
        if (ec != std::errc() || end != digits.data() + digits.size()) continue;
        if (std::filesystem::exists(entry.path() / "state.json")) found.emplace_back(step, entry.path());
    }
    std::sort(found.begin(), found.end());
    return found;
}

/// Removes all but the newest `keep_last` checkpoints, never the one of `keep_step` (the best so far).
inline void prune_checkpoints(std::filesystem::path const& run_dir, int keep_last, long keep_step) {
    auto const all = list_checkpoints(run_dir);
    for (std::size_t i = 0; i + std::size_t(keep_last) < all.size(); ++i)
        if (all[i].first != keep_step) std::filesystem::remove_all(all[i].second);
}

}  // namespace polyalpaca
