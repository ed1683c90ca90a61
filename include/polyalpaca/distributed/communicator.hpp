/// @file distributed/communicator.hpp
/// @brief The communicator policy of data-parallel training, beside the backend policies: how the ranks of one run
///        sum their gradients and their step figures. SingleProcess (one rank, nothing to exchange) is what every
///        program uses without a launcher; distributed/mpi.hpp's Mpi joins the ranks mpirun or srun started, on
///        the CPU backend. train_step (train/step.hpp) takes either.
#pragma once

#include <concepts>
#include <span>

#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::distributed {

/// What train_step needs of a communicator: its rank and the number of ranks, and in-place sums over all ranks of
/// backend memory (a gradient arena: `all_reduce_sum(ctx, data, n)`) and of host figures (losses, counts). Every
/// rank must make the same calls in the same order, as with any collective.
template <class C, class Context>
concept CommunicatorFor = requires(C& c, Context& ctx, float* f, double* d, Index n, std::span<double> figures) {
    { c.rank() } -> std::convertible_to<int>;
    { c.size() } -> std::convertible_to<int>;
    c.all_reduce_sum(ctx, f, n);
    c.all_reduce_sum(ctx, d, n);
    c.all_reduce_sum(figures);
};

/// One rank: every sum over ranks is the value itself. No MPI is involved, linked or needed.
struct SingleProcess {
    int rank() const { return 0; }
    int size() const { return 1; }
    template <class Context, class T>
    void all_reduce_sum(Context&, T*, Index) {}
    void all_reduce_sum(std::span<double>) {}
};

}  // namespace polyalpaca::distributed
