/// @file distributed/mpi.hpp
/// @brief Mpi: the communicator of the CPU backend (distributed/communicator.hpp), on MPI (Open MPI's
///        libopenmpi-dev): ranks started by `mpirun -np N` or Slurm's `srun`, which sum host memory with
///        MPI_Allreduce (ZeRO-1: MPI_Reduce_scatter and MPI_Allgatherv). A program that includes this header
///        links MPI (CMake: polyalpaca::mpi); run without a launcher it is one rank (MPI's singleton start).
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"
#include "polyalpaca/distributed/communicator.hpp"

namespace polyalpaca::distributed {

namespace mpi_detail {

inline void check(int status, char const* what) {
    if (status == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(status, text, &length);
    throw Error(std::string("MPI: ") + what + " failed: " + std::string(text, std::size_t(length)));
}

template <class T>
MPI_Datatype datatype() {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "Mpi sums float or double values");
    return std::is_same_v<T, float> ? MPI_FLOAT : MPI_DOUBLE;
}

}  // namespace mpi_detail

/// The ranks of MPI_COMM_WORLD. The first Mpi of a process initialises MPI (MPI_THREAD_FUNNELED: OpenMP threads
/// compute, the main thread communicates) and finalises it when destroyed; errors of MPI calls are thrown as
/// polyalpaca::Error. Non-copyable.
class Mpi {
public:
    Mpi() {
        int initialised = 0;
        mpi_detail::check(MPI_Initialized(&initialised), "MPI_Initialized");
        if (!initialised) {
            int provided = 0;
            mpi_detail::check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
            owns_ = true;
        }
        mpi_detail::check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
        mpi_detail::check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
        mpi_detail::check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
    }
    ~Mpi() {
        int finalised = 0;
        MPI_Finalized(&finalised);
        if (owns_ && !finalised) MPI_Finalize();
    }
    Mpi(Mpi const&) = delete;
    Mpi& operator=(Mpi const&) = delete;

    int rank() const { return rank_; }
    int size() const { return size_; }

    /// Sums n values of the CPU backend's memory over all ranks, in place.
    template <class Context, class T>
    void all_reduce_sum(Context&, T* data, Index n) {
        static_assert(std::is_same_v<Context, cpu::Context>,
                      "distributed::Mpi sums host memory, the CPU backend's; a GPU's gradients need a communicator "
                      "of its own backend");
        // MPI counts are ints: sum in chunks of at most 2^30 values.
        constexpr Index chunk = Index(1) << 30;
        for (Index at = 0; at < n; at += chunk) {
            int const count = int(std::min(chunk, n - at));
            mpi_detail::check(MPI_Allreduce(MPI_IN_PLACE, data + at, count, mpi_detail::datatype<T>(), MPI_SUM,
                                            MPI_COMM_WORLD),
                              "MPI_Allreduce");
        }
    }

    /// ZeRO-1's gradient sum: this rank's shard (shard_of(n, size(), rank())) of the n values ends as the sum over
    /// the ranks (one MPI_Reduce_scatter); the values outside it are left unspecified.
    template <class Context, class T>
    void reduce_scatter_sum(Context&, T* data, Index n) {
        static_assert(std::is_same_v<Context, cpu::Context>, "distributed::Mpi shares out host memory only");
        auto const counts = shard_layout(n).first;
        // In place, MPI leaves this rank's sum at the start of the buffer: move it to where the shard is.
        mpi_detail::check(MPI_Reduce_scatter(MPI_IN_PLACE, data, counts.data(), mpi_detail::datatype<T>(), MPI_SUM,
                                             MPI_COMM_WORLD),
                          "MPI_Reduce_scatter");
        Shard const mine = shard_of(n, size_, rank_);
        if (mine.begin > 0) std::memmove(data + mine.begin, data, std::size_t(mine.count) * sizeof(T));
    }

    /// ZeRO-1's weight exchange: every rank's shard of the n values goes to every rank (one MPI_Allgatherv).
    template <class Context, class T>
    void all_gather(Context& ctx, T* data, Index n) {
        static_assert(std::is_same_v<Context, cpu::Context>, "distributed::Mpi shares out host memory only");
        auto const [counts, offsets] = shard_layout(n);
        mpi_detail::check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, counts.data(), offsets.data(),
                                         mpi_detail::datatype<T>(), MPI_COMM_WORLD),
                          "MPI_Allgatherv");
        ctx.parameters_written(data, std::size_t(n) * sizeof(T));  // the other ranks' weights (bf16 copies)
    }

    /// Sums host figures over all ranks, in place.
    void all_reduce_sum(std::span<double> figures) {
        require(figures.size() <= std::size_t(std::numeric_limits<int>::max()), "Mpi: too many figures to sum");
        mpi_detail::check(MPI_Allreduce(MPI_IN_PLACE, figures.data(), int(figures.size()), MPI_DOUBLE, MPI_SUM,
                                        MPI_COMM_WORLD),
                          "MPI_Allreduce");
    }

    /// Ends every rank of the run: prints "rank R of N: message" on this rank's stderr and calls MPI_Abort, which the
    /// launcher turns into the end of all ranks. For an error one rank meets alone (a file it reads, memory), so
    /// that no other rank waits in a collective for it.
    [[noreturn]] void abort(std::string const& message, int code = 1) {
        std::fprintf(stderr, "rank %d of %d: %s\n", rank_, size_, message.c_str());
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code);
        std::abort();  // MPI_Abort does not return; if it did, this rank still ends
    }

private:
    /// Every rank's shard of n values as MPI counts and offsets, which are ints.
    std::pair<std::vector<int>, std::vector<int>> shard_layout(Index n) const {
        require(n <= Index(std::numeric_limits<int>::max()), "ZeRO-1 over MPI shares out at most 2^31 - 1 values (",
                "MPI counts are ints), but the arena holds ", n);
        std::vector<int> counts, offsets;
        for (int r = 0; r < size_; ++r) {
            Shard const s = shard_of(n, size_, r);
            counts.push_back(int(s.count));
            offsets.push_back(int(s.begin));
        }
        return {counts, offsets};
    }

    int rank_ = 0;
    int size_ = 1;
    bool owns_ = false;
};

/// Runs f() and returns what it returns; an exception on this rank ends every rank of the run with this rank's
/// message (Mpi::abort) instead of leaving the others waiting in a collective.
template <class F>
decltype(auto) abort_all_on_error(Mpi& world, F&& f) {
    try {
        return f();
    } catch (std::exception const& e) {
        world.abort(e.what());
    }
}

}  // namespace polyalpaca::distributed
