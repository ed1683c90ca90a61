/// @file distributed/nccl.cuh
/// @brief Nccl: the communicator of the CUDA backend (distributed/communicator.hpp), on NCCL, one rank per GPU.
///        The ranks are MPI's (`mpirun -np N`, Slurm's `srun`): MPI starts them, carries NCCL's unique id from rank 0
///        to the others and sums the host figures; NCCL sums the gradient arena on the GPUs, on the context's stream.
///        A program that includes this header links NCCL and MPI (CMake: polyalpaca::nccl).
#pragma once

#include <mpi.h>
#include <nccl.h>

#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"
#include "polyalpaca/distributed/communicator.hpp"
#include "polyalpaca/distributed/mpi.hpp"

namespace polyalpaca::distributed {

namespace nccl_detail {

inline void check(ncclResult_t status, char const* what) {
    if (status == ncclSuccess) return;
    throw Error(std::string("NCCL: ") + what + " failed: " + ncclGetErrorString(status));
}

template <class T>
ncclDataType_t datatype() {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "Nccl sums float or double values");
    return std::is_same_v<T, float> ? ncclFloat32 : ncclFloat64;
}

/// This process's rank among the ranks on its node, and their number (MPI_COMM_TYPE_SHARED).
inline std::pair<int, int> node_rank() {
    MPI_Comm node;
    mpi_detail::check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node),
                      "MPI_Comm_split_type");
    int rank = 0, size = 1;
    MPI_Comm_rank(node, &rank);
    MPI_Comm_size(node, &size);
    MPI_Comm_free(&node);
    return {rank, size};
}

}  // namespace nccl_detail

/// The ranks of MPI_COMM_WORLD, one GPU each: local rank r of a node takes visible GPU r (modulo the GPUs visible), so
/// CUDA_VISIBLE_DEVICES, or a launcher that gives each rank its own GPU (`srun --gpus-per-task=1`), decides which
/// GPUs a node uses.
/// Make the backend's context on device() (the trainer program does). NCCL's collectives run on the stream of the
/// context they are given, in order with the ops around them. Non-copyable.
class Nccl {
public:
    Nccl() {
        try {
            auto const [local_rank, local_ranks] = nccl_detail::node_rank();
            int const visible = cuda::device_count();
            require(visible > 0, "no CUDA GPU is visible to this process");
            // Fewer GPUs than ranks on the node: the launcher gave each rank its own (srun --gpus-per-task=1), or
            // ranks share one, which NCCL refuses in ncclCommInitRank.
            device_ = local_rank % visible;
            POLYALPACA_CUDA_CHECK(cudaSetDevice(device_));
            ncclUniqueId id{};
            if (world_.rank() == 0) nccl_detail::check(ncclGetUniqueId(&id), "ncclGetUniqueId");
            mpi_detail::check(MPI_Bcast(&id, int(sizeof id), MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast");
            if (auto const status = ncclCommInitRank(&comm_, world_.size(), id, world_.rank()); status != ncclSuccess)
                fail("NCCL: ncclCommInitRank failed: ", ncclGetErrorString(status), " (", local_ranks,
                     " ranks on this node, ", visible, " GPU(s) visible to each; NCCL needs a GPU of its own for "
                     "every rank)");
        } catch (std::exception const& e) {  // the other ranks would wait for this one in ncclCommInitRank
            if (world_.size() > 1) world_.abort(e.what());
            throw;
        }
    }
    ~Nccl() {
        if (comm_) ncclCommDestroy(comm_);
    }
    Nccl(Nccl const&) = delete;
    Nccl& operator=(Nccl const&) = delete;

    int rank() const { return world_.rank(); }
    int size() const { return world_.size(); }
    /// The CUDA device of this rank.
    int device() const { return device_; }

    /// Sums n values of GPU memory over all ranks, in place (ncclAllReduce on the context's stream).
    template <class T>
    void all_reduce_sum(cuda::Context& ctx, T* data, Index n) {
        nccl_detail::check(ncclAllReduce(data, data, std::size_t(n), nccl_detail::datatype<T>(), ncclSum, comm_,
                                         ctx.stream()),
                           "ncclAllReduce");
    }

    /// ZeRO-1's gradient sum: this rank's shard (shard_of(n, size(), rank())) of the n values ends as the sum over
    /// the ranks. NCCL's reduce-scatter wants equal shards; these may differ by one value, so each shard is reduced
    /// to its rank (one ncclReduce per rank, in one group, which NCCL runs as one operation).
    template <class T>
    void reduce_scatter_sum(cuda::Context& ctx, T* data, Index n) {
        for_each_shard_in_group(n, [&](int owner, T* shard, std::size_t count) {
            nccl_detail::check(ncclReduce(shard, shard, count, nccl_detail::datatype<T>(), ncclSum, owner, comm_,
                                          ctx.stream()),
                               "ncclReduce");
        }, data);
    }

    /// ZeRO-1's weight exchange: every rank's shard of the n values goes to every rank (one ncclBroadcast per shard,
    /// in one group).
    template <class T>
    void all_gather(cuda::Context& ctx, T* data, Index n) {
        for_each_shard_in_group(n, [&](int owner, T* shard, std::size_t count) {
            nccl_detail::check(ncclBroadcast(shard, shard, count, nccl_detail::datatype<T>(), owner, comm_,
                                             ctx.stream()),
                               "ncclBroadcast");
        }, data);
        ctx.parameters_written(data, std::size_t(n) * sizeof(T));  // the other ranks' weights (bf16 copies)
    }

    /// Sums host figures over all ranks, in place (over MPI: they are on the host).
    void all_reduce_sum(std::span<double> figures) { world_.all_reduce_sum(figures); }

    /// Ends every rank of the run with this rank's message (Mpi::abort), NCCL's communicator first, so that no
    /// rank waits in a collective for this one.
    [[noreturn]] void abort(std::string const& message, int code = 1) {
        if (comm_) ncclCommAbort(comm_);
        comm_ = nullptr;
        world_.abort(message, code);
    }

private:
    /// Calls f(owner rank, shard start, count) for every rank's shard of the n values at data, inside one NCCL group.
    template <class T, class F>
    void for_each_shard_in_group(Index n, F&& f, T* data) {
        nccl_detail::check(ncclGroupStart(), "ncclGroupStart");
        for (int r = 0; r < size(); ++r) {
            Shard const s = shard_of(n, size(), r);
            f(r, data + s.begin, std::size_t(s.count));
        }
        nccl_detail::check(ncclGroupEnd(), "ncclGroupEnd");
    }

    Mpi world_;  // first: MPI starts before NCCL and ends after it
    int device_ = 0;
    ncclComm_t comm_ = nullptr;
};

}  // namespace polyalpaca::distributed
