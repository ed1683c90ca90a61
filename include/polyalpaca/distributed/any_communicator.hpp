/// @file distributed/any_communicator.hpp
/// @brief AnyCommunicator<Context>: a communicator of one backend (distributed/communicator.hpp) chosen at run time,
///        for a program that runs as one rank without a launcher and data parallel under one with the same compiled
///        code (the study runner's engines). It owns the communicator it wraps; every call is one virtual call on top
///        of the collective it makes.
#pragma once

#include <memory>
#include <span>
#include <utility>

#include "polyalpaca/core/tensor.hpp"
#include "polyalpaca/distributed/communicator.hpp"

namespace polyalpaca::distributed {

template <class Context>
class AnyCommunicator {
public:
    template <class C>
        requires CommunicatorFor<C, Context>
    explicit AnyCommunicator(std::unique_ptr<C> communicator)
        : impl_(std::make_unique<Holder<C>>(std::move(communicator))) {}

    int rank() const { return impl_->rank(); }
    int size() const { return impl_->size(); }
    /// The GPU the communicator gives this rank (distributed::Nccl), or -1 when it gives none.
    int device() const { return impl_->device(); }

    void all_reduce_sum(Context& ctx, float* data, Index n) { impl_->all_reduce_sum(ctx, data, n); }
    void all_reduce_sum(Context& ctx, double* data, Index n) { impl_->all_reduce_sum(ctx, data, n); }
    void reduce_scatter_sum(Context& ctx, float* data, Index n) { impl_->reduce_scatter_sum(ctx, data, n); }
    void reduce_scatter_sum(Context& ctx, double* data, Index n) { impl_->reduce_scatter_sum(ctx, data, n); }
    void all_gather(Context& ctx, float* data, Index n) { impl_->all_gather(ctx, data, n); }
    void all_gather(Context& ctx, double* data, Index n) { impl_->all_gather(ctx, data, n); }
    void all_reduce_sum(std::span<double> figures) { impl_->all_reduce_sum(figures); }

private:
    struct Interface {
        virtual ~Interface() = default;
        virtual int rank() const = 0;
        virtual int size() const = 0;
        virtual int device() const = 0;
        virtual void all_reduce_sum(Context&, float*, Index) = 0;
        virtual void all_reduce_sum(Context&, double*, Index) = 0;
        virtual void reduce_scatter_sum(Context&, float*, Index) = 0;
        virtual void reduce_scatter_sum(Context&, double*, Index) = 0;
        virtual void all_gather(Context&, float*, Index) = 0;
        virtual void all_gather(Context&, double*, Index) = 0;
        virtual void all_reduce_sum(std::span<double>) = 0;
    };

    template <class C>
    struct Holder final : Interface {
        explicit Holder(std::unique_ptr<C> c) : held(std::move(c)) {}
        int rank() const override { return held->rank(); }
        int size() const override { return held->size(); }
        int device() const override {
            if constexpr (requires { held->device(); }) return held->device();
            else return -1;
        }
        void all_reduce_sum(Context& ctx, float* d, Index n) override { held->all_reduce_sum(ctx, d, n); }
        void all_reduce_sum(Context& ctx, double* d, Index n) override { held->all_reduce_sum(ctx, d, n); }
        void reduce_scatter_sum(Context& ctx, float* d, Index n) override { held->reduce_scatter_sum(ctx, d, n); }
        void reduce_scatter_sum(Context& ctx, double* d, Index n) override { held->reduce_scatter_sum(ctx, d, n); }
        void all_gather(Context& ctx, float* d, Index n) override { held->all_gather(ctx, d, n); }
        void all_gather(Context& ctx, double* d, Index n) override { held->all_gather(ctx, d, n); }
        void all_reduce_sum(std::span<double> figures) override { held->all_reduce_sum(figures); }
        std::unique_ptr<C> held;
    };

    std::unique_ptr<Interface> impl_;
};

}  // namespace polyalpaca::distributed
