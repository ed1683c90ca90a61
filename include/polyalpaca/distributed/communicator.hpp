/// @file distributed/communicator.hpp
/// @brief The communicator policy of data-parallel training, beside the backend policies: how the ranks of one run
///        sum their gradients and their step figures, and how ZeRO-1 shares out the optimizer. SingleProcess (one
///        rank, nothing to exchange) is what every program uses without a launcher; distributed/mpi.hpp's Mpi joins
///        the ranks mpirun or srun started, on the CPU backend. train_step (train/step.hpp) takes either.
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstdlib>
#include <span>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::distributed {

/// What train_step needs of a communicator: its rank and the number of ranks, and in-place collectives over all
/// ranks of backend memory (a gradient or weight arena of n values) and of host figures (losses, counts):
///  - `all_reduce_sum(ctx, data, n)`: every rank ends with the sum over the ranks;
///  - `reduce_scatter_sum(ctx, data, n)`: each rank ends with the sum over the ranks of its own shard of the n values
///    (shard_of(n, size, rank); the values outside it are left unspecified);
///  - `all_gather(ctx, data, n)`: each rank's shard goes to every rank.
/// Every rank must make the same calls in the same order, as with any collective.
template <class C, class Context>
concept CommunicatorFor = requires(C& c, Context& ctx, float* f, double* d, Index n, std::span<double> figures) {
    { c.rank() } -> std::convertible_to<int>;
    { c.size() } -> std::convertible_to<int>;
    c.all_reduce_sum(ctx, f, n);
    c.all_reduce_sum(ctx, d, n);
    c.reduce_scatter_sum(ctx, f, n);
    c.reduce_scatter_sum(ctx, d, n);
    c.all_gather(ctx, f, n);
    c.all_gather(ctx, d, n);
    c.all_reduce_sum(figures);
};

/// A contiguous range of an arena of values: the part one rank owns under ZeRO-1.
struct Shard {
    Index begin = 0;
    Index count = 0;
    Index end() const { return begin + count; }
};

/// Rank `rank`'s shard of n values over `ranks` ranks: contiguous, in rank order, the first n % ranks shards one
/// value longer than the rest, so every rank owns at least one value when n >= ranks.
inline Shard shard_of(Index n, int ranks, int rank) {
    require(ranks >= 1 && rank >= 0 && rank < ranks, "shard_of: rank ", rank, " of ", ranks, " ranks");
    require(n >= 0, "shard_of: negative size ", n);
    Index const base = n / ranks, longer = n % ranks;
    return {rank * base + std::min<Index>(rank, longer), base + (rank < longer ? 1 : 0)};
}

/// How the ranks of a data-parallel run hold the optimizer. Replicated: every rank holds AdamW's moments of every
/// trainable value and sums the whole gradient arena (all-reduce). Zero1 (ZeRO stage 1): rank r holds the moments of
/// its shard alone (shard_of(trainable values, ranks, r)), sums only that shard of the gradients (reduce-scatter),
/// updates that shard of the weights and sends it to the others (all-gather). Weights and gradients stay whole on
/// every rank: they are the fp32 master weights the layers compute with.
enum class OptimizerSharding { Replicated, Zero1 };

/// Waits until every rank of `c` is here.
template <class Communicator>
void barrier(Communicator& c) {
    if (c.size() == 1) return;
    std::array<double, 1> nothing{0.0};
    c.all_reduce_sum(std::span<double>(nothing));
}

/// Whether a launcher started this process as a rank of a parallel job: Open MPI's mpirun (OMPI_COMM_WORLD_SIZE),
/// MPICH's or Slurm's PMI (PMI_SIZE), PMIx (PMIX_RANK, srun --mpi=pmix). A program then joins the ranks; without one
/// it runs alone and needs no MPI at run time.
inline bool launched_as_rank() {
    for (char const* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
        if (std::getenv(name) != nullptr) return true;
    return false;
}

/// Rank 0's `value`, on every rank (each passes its own; only rank 0's counts). Exact up to 2^53 in magnitude.
template <class Communicator>
long long from_rank0(Communicator& c, long long value) {
    std::array<double, 1> shared{c.rank() == 0 ? double(value) : 0.0};
    c.all_reduce_sum(std::span<double>(shared));
    return static_cast<long long>(shared[0]);
}

/// One rank: every collective leaves the values as they are. No MPI is involved, linked or needed.
struct SingleProcess {
    int rank() const { return 0; }
    int size() const { return 1; }
    template <class Context, class T>
    void all_reduce_sum(Context&, T*, Index) {}
    template <class Context, class T>
    void reduce_scatter_sum(Context&, T*, Index) {}
    template <class Context, class T>
    void all_gather(Context&, T*, Index) {}
    void all_reduce_sum(std::span<double>) {}
};

}  // namespace polyalpaca::distributed
