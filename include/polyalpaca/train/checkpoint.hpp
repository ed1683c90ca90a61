/// @file train/checkpoint.hpp
/// @brief Training checkpoints: trainable weights, optimizer moments (whole, or in the shards of a ZeRO-1 run) and
///        run state, written atomically and read back exactly, so a killed run resumes where it stopped, at the same
///        or another number of ranks.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/parameter_store.hpp"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/distributed/communicator.hpp"
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

inline std::filesystem::path temp_checkpoint_dir(std::filesystem::path const& run_dir, long step) {
    return run_dir / ("." + checkpoint_name(step) + ".tmp");
}

/// The file of ZeRO-1 shard `rank` of `ranks` in a checkpoint.
inline std::string optimizer_shard_name(int rank, int ranks) {
    char name[64];
    std::snprintf(name, sizeof name, "optimizer-shard-%05d-of-%05d.safetensors", rank, ranks);
    return name;
}

/// An empty temp directory for the checkpoint of `step`.
inline std::filesystem::path begin_checkpoint(std::filesystem::path const& run_dir, long step) {
    auto const temp_dir = temp_checkpoint_dir(run_dir, step);
    std::filesystem::create_directories(run_dir);
    std::filesystem::remove_all(temp_dir);
    std::filesystem::create_directories(temp_dir);
    return temp_dir;
}

/// Writes trainable.safetensors and state.json into the temp directory, then renames it into place.
/// `optimizer_shards`: the number of ZeRO-1 shard files the directory holds (0: optimizer.safetensors).
template <class Backend, class T>
std::filesystem::path finish_checkpoint(typename Backend::Context& ctx, std::filesystem::path const& run_dir,
                                        ParameterStore<Backend, T>& store, long optimizer_steps, int optimizer_shards,
                                        RunState const& state) {
    namespace fs = std::filesystem;
    auto const temp_dir = temp_checkpoint_dir(run_dir, state.step);
    auto const final_dir = run_dir / checkpoint_name(state.step);
    Index const n = store.trainable_count();
    std::vector<T> values(static_cast<std::size_t>(n));
    Backend::download(ctx, store.trainable_values(), values.data(), values.size());
    std::vector<float> const values_f(values.begin(), values.end());
    std::vector<io::TensorToWrite> weights;
    for (auto* p : store.parameters()) {
        if (!p->trainable()) continue;
        Index const offset = p->value - store.trainable_values();
        weights.push_back({p->name, io::DType::F32, {p->rows, p->cols},
                           std::span<float const>(values_f.data() + offset, std::size_t(p->size()))});
    }
    io::write_safetensors(temp_dir / "trainable.safetensors", weights);

    nlohmann::json j{{"step", state.step},           {"epoch", state.epoch},
                     {"position", state.position},   {"tokens", state.tokens},
                     {"best_loss", state.best_loss}, {"best_step", state.best_step},
                     {"optimizer_steps", optimizer_steps}, {"trainable_values", n},
                     {"extra", state.extra}};
    if (optimizer_shards > 0) j["optimizer_shards"] = optimizer_shards;
    for (auto w : state.dropout_rng) j["dropout_rng"].push_back(to_hex(w));
    io::write_file_atomically(temp_dir / "state.json", j.dump(2));

    fs::remove_all(final_dir);
    fs::rename(temp_dir, final_dir);
    sync_directory(run_dir);
    return final_dir;
}

/// save_checkpoint's writing into `temp_dir`, then the rename into place.
template <class Backend, class T, class Optimizer>
std::filesystem::path write_checkpoint(typename Backend::Context& ctx, std::filesystem::path const& run_dir,
                                       std::filesystem::path const& temp_dir, ParameterStore<Backend, T>& store,
                                       Optimizer const& optimizer, RunState const& state) {
    Index const n = store.trainable_count();
    require(optimizer.size() == n, "save_checkpoint: the optimizer holds ", optimizer.size(), " values, the model ",
            n, " trainable ones (a ZeRO-1 shard is saved by save_sharded_checkpoint)");
    std::vector<T> moments(static_cast<std::size_t>(2 * n));
    Backend::download(ctx, optimizer.moments().data(), moments.data(), moments.size());
    std::vector<float> const moments_f(moments.begin(), moments.end());
    std::vector<io::TensorToWrite> optim;
    for (auto* p : store.parameters()) {
        if (!p->trainable()) continue;
        Index const offset = p->value - store.trainable_values();
        std::vector<std::int64_t> const shape{p->rows, p->cols};
        optim.push_back({"exp_avg." + p->name, io::DType::F32, shape,
                         std::span<float const>(moments_f.data() + offset, std::size_t(p->size()))});
        optim.push_back({"exp_avg_sq." + p->name, io::DType::F32, shape,
                         std::span<float const>(moments_f.data() + n + offset, std::size_t(p->size()))});
    }
    io::write_safetensors(temp_dir / "optimizer.safetensors", optim);
    return finish_checkpoint(ctx, run_dir, store, optimizer.step_count(), 0, state);
}
}  // namespace detail

/// Writes <run_dir>/checkpoint-<step>/ {trainable.safetensors, optimizer.safetensors, state.json}. The files go
/// into a hidden temp directory that is renamed into place only when all of them are complete and synced, so a
/// kill at any moment leaves either the previous checkpoints alone or the new one whole; a failed write (a full
/// disk) removes the temp directory, and prune_checkpoints removes those a kill left.
template <class Backend, class T, class Optimizer>
std::filesystem::path save_checkpoint(typename Backend::Context& ctx, std::filesystem::path const& run_dir,
                                      ParameterStore<Backend, T>& store, Optimizer const& optimizer,
                                      RunState const& state) {
    auto const temp_dir = detail::begin_checkpoint(run_dir, state.step);
    try {
        return detail::write_checkpoint(ctx, run_dir, temp_dir, store, optimizer, state);
    } catch (...) {
        std::error_code ignored;  // a full disk, say: nothing half-written stays behind
        std::filesystem::remove_all(temp_dir, ignored);
        throw;
    }
}

/// The checkpoint of a ZeRO-1 run, written by all its ranks together (every rank calls this): each rank writes its
/// shard of AdamW's moments (optimizer-shard-RRRRR-of-NNNNN.safetensors: exp_avg and exp_avg_sq of the shard's
/// values, its place in the arena in the metadata), rank 0 the weights and state.json (which records the number of
/// shards). Atomic as save_checkpoint: the directory appears whole once every shard is written. `run_dir` must be
/// on a filesystem every rank sees. Returns the checkpoint's directory.
template <class Backend, class T, class Optimizer, class Communicator>
std::filesystem::path save_sharded_checkpoint(typename Backend::Context& ctx, std::filesystem::path const& run_dir,
                                              ParameterStore<Backend, T>& store, Optimizer const& optimizer,
                                              RunState const& state, Communicator& communicator) {
    int const rank = communicator.rank(), ranks = communicator.size();
    Index const n = store.trainable_count();
    distributed::Shard const shard = distributed::shard_of(n, ranks, rank);
    require(optimizer.size() == shard.count, "save_sharded_checkpoint: the optimizer holds ", optimizer.size(),
            " values, but shard ", rank, " of ", ranks, " of ", n, " trainable values has ", shard.count);
    auto const temp_dir = detail::temp_checkpoint_dir(run_dir, state.step);
    if (rank == 0) detail::begin_checkpoint(run_dir, state.step);
    distributed::barrier(communicator);

    std::vector<T> moments(static_cast<std::size_t>(2 * shard.count));
    Backend::download(ctx, optimizer.moments().data(), moments.data(), moments.size());
    std::vector<float> const moments_f(moments.begin(), moments.end());
    std::vector<std::int64_t> const shape{shard.count};
    auto const half = std::size_t(shard.count);
    std::span<float const> const exp_avg(moments_f.data(), half), exp_avg_sq(moments_f.data() + half, half);
    io::write_safetensors(temp_dir / detail::optimizer_shard_name(rank, ranks),
                          {{"exp_avg", io::DType::F32, shape, exp_avg},
                           {"exp_avg_sq", io::DType::F32, shape, exp_avg_sq}},
                          {{"shard", std::to_string(rank)}, {"shards", std::to_string(ranks)},
                           {"begin", std::to_string(shard.begin)}, {"count", std::to_string(shard.count)},
                           {"trainable_values", std::to_string(n)}});
    distributed::barrier(communicator);
    if (rank != 0) return run_dir / detail::checkpoint_name(state.step);
    return detail::finish_checkpoint(ctx, run_dir, store, optimizer.step_count(), ranks, state);
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

namespace detail {

/// Copies the values [from.begin, from.end()) of an arena, held in `values`, that fall in `into` to their place in
/// `out`, which holds the arena's values [into.begin, into.end()).
template <class T>
void copy_overlap(std::span<T const> values, distributed::Shard from, distributed::Shard into, T* out) {
    Index const begin = std::max(from.begin, into.begin), end = std::min(from.end(), into.end());
    for (Index i = begin; i < end; ++i) out[i - into.begin] = values[std::size_t(i - from.begin)];
}

/// AdamW's moments of the arena values in `shard`, from checkpoint `dir` however it was written (one
/// optimizer.safetensors, or ZeRO-1 shard files of any number of ranks): exp_avg into out[0, count), exp_avg_sq into
/// out[count, 2 count). A missing file or tensor, or a size that does not match, names the file.
template <class Backend, class T>
void read_moments(std::filesystem::path const& dir, nlohmann::json const& state, ParameterStore<Backend, T>& store,
                  distributed::Shard shard, T* out) {
    Index const n = store.trainable_count();
    std::vector<T> values;
    int shards = 0;  // written by a ZeRO-1 run: its number of shard files
    if (auto const it = state.find("optimizer_shards"); it != state.end()) {
        require(it->is_number_integer() && it->get<long long>() >= 1 && it->get<long long>() <= 1 << 20, "checkpoint '",
                (dir / "state.json").string(), "': optimizer_shards must be a whole number of shard files, got ",
                it->dump());
        shards = it->get<int>();
    }
    if (shards > 0) {
        for (int k = 0; k < shards; ++k) {
            distributed::Shard const from = distributed::shard_of(n, shards, k);
            if (std::max(from.begin, shard.begin) >= std::min(from.end(), shard.end())) continue;
            auto const file = io::SafetensorsFile::open(dir / optimizer_shard_name(k, shards));
            values.resize(std::size_t(from.count));
            for (int moment = 0; moment < 2; ++moment) {
                char const* name = moment == 0 ? "exp_avg" : "exp_avg_sq";
                auto const* t = file.find(name);
                require(t != nullptr, "checkpoint file '", file.path().string(), "' has no tensor '", name, "'");
                require(t->element_count() == from.count, "checkpoint file '", file.path().string(), "': tensor '",
                        name, "' has ", t->element_count(), " values, but shard ", k, " of ", shards, " of ", n,
                        " trainable values has ", from.count);
                file.read(name, std::span<T>(values));
                copy_overlap(std::span<T const>(values), from, shard, out + moment * shard.count);
            }
        }
        return;
    }
    auto const file = io::SafetensorsFile::open(dir / "optimizer.safetensors");  // per parameter
    for (auto* p : store.parameters()) {
        if (!p->trainable()) continue;
        distributed::Shard const from{Index(p->value - store.trainable_values()), p->size()};
        if (std::max(from.begin, shard.begin) >= std::min(from.end(), shard.end())) continue;
        values.resize(std::size_t(from.count));
        for (int moment = 0; moment < 2; ++moment) {
            auto const name = (moment == 0 ? "exp_avg." : "exp_avg_sq.") + p->name;
            auto const* t = file.find(name);
            require(t != nullptr, "checkpoint file '", file.path().string(), "' has no tensor '", name, "'");
            require(t->element_count() == p->size(), "checkpoint file '", file.path().string(), "': tensor '", name,
                    "' has ", t->element_count(), " values, the model's has ", p->size());
            file.read(name, std::span<T>(values));
            copy_overlap(std::span<T const>(values), from, shard, out + moment * shard.count);
        }
    }
}

}  // namespace detail

/// Reads a checkpoint written by save_checkpoint or save_sharded_checkpoint into the store and the optimizer, which
/// holds the moments of `shard` of the trainable values (all of them by default; a ZeRO-1 rank's shard otherwise, at
/// any number of ranks: the moments are re-sharded as they are read); returns its run state. Every trainable
/// parameter must be present with its shape; a mismatch names the file and the tensor.
template <class Backend, class T, class Optimizer>
RunState load_checkpoint(typename Backend::Context& ctx, std::filesystem::path const& dir,
                         ParameterStore<Backend, T>& store, Optimizer& optimizer,
                         std::optional<distributed::Shard> shard = std::nullopt) {
    auto const state_path = dir / "state.json";
    Index const n = store.trainable_count();
    auto const j = detail::read_checkpoint_state(dir, n);
    distributed::Shard const mine = shard.value_or(distributed::Shard{0, n});
    require(mine.begin >= 0 && mine.end() <= n && optimizer.size() == mine.count, "load_checkpoint: the optimizer ",
            "holds ", optimizer.size(), " values for trainable values [", mine.begin, ", ", mine.end(), ") of ", n);
    std::vector<T> values(static_cast<std::size_t>(n)), moments(static_cast<std::size_t>(2 * mine.count));
    detail::read_trainable(io::SafetensorsFile::open(dir / "trainable.safetensors"), "", store, values.data());
    detail::read_moments(dir, j, store, mine, moments.data());
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

/// Removes all but the newest `keep_last` checkpoints, never the one of `keep_step` (the best so far), and the temp
/// directories of checkpoints whose writing was cut short (a killed run's): call it when no write is under way.
inline void prune_checkpoints(std::filesystem::path const& run_dir, int keep_last, long keep_step) {
    auto const all = list_checkpoints(run_dir);
    for (std::size_t i = 0; i + std::size_t(keep_last) < all.size(); ++i)
        if (all[i].first != keep_step) std::filesystem::remove_all(all[i].second);
    for (auto const& entry : std::filesystem::directory_iterator(run_dir)) {
        auto const name = entry.path().filename().string();
        if (entry.is_directory() && name.starts_with(".checkpoint-") && name.ends_with(".tmp"))
            std::filesystem::remove_all(entry.path());
    }
}

}  // namespace polyalpaca
