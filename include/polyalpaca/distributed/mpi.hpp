/// @file distributed/mpi.hpp
/// @brief Mpi: the communicator of the CPU backend (distributed/communicator.hpp), on MPI (Open MPI's
///        libopenmpi-dev): ranks started by `mpirun -np N` or Slurm's `srun`, which sum host memory with
///        MPI_Allreduce. A program that includes this header links MPI (CMake: polyalpaca::mpi); run without a
///        launcher it is one rank (MPI's singleton start).
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <span>
#include <string>
#include <type_traits>

#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

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
