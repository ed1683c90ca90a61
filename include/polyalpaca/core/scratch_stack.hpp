/// @file core/scratch_stack.hpp
/// @brief Last-in-first-out memory for temporaries that live within one call, such as the gradients a layer
///        passes between its own ops during backward. Every layer of a model draws from the same stack, so a
///        model needs one layer's temporaries at a time instead of one set per layer.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca {

/// Memory is a policy object with `void* allocate(std::size_t bytes)` and `void deallocate(void*)` (host or
/// device memory). The stack grows in blocks while a step first runs; when it is next empty it merges them
/// into one block of their total size, so later steps of the same shapes allocate nothing.
template <class Memory>
class ScratchStack {
public:
    /// Every take starts on this boundary (cache lines on the host, what cuBLASLt prefers on a GPU).
    static constexpr std::size_t alignment = 256;

    /// A position in the stack; release(mark) gives back everything taken after it.
    struct Mark {
        std::size_t block = 0;
        std::size_t offset = 0;
        std::size_t in_use = 0;
    };

    explicit ScratchStack(Memory memory = Memory{}) : memory_(std::move(memory)) {}
    ~ScratchStack() { free_blocks(0); }
    ScratchStack(ScratchStack const&) = delete;
    ScratchStack& operator=(ScratchStack const&) = delete;
    ScratchStack(ScratchStack&& other) noexcept
        : memory_(std::move(other.memory_)),
          blocks_(std::exchange(other.blocks_, {})),
          top_(std::exchange(other.top_, {})),
          peak_(std::exchange(other.peak_, 0)) {}
    ScratchStack& operator=(ScratchStack&& other) noexcept {
        if (this != &other) {
            free_blocks(0);
            memory_ = std::move(other.memory_);
            blocks_ = std::exchange(other.blocks_, {});
            top_ = std::exchange(other.top_, {});
            peak_ = std::exchange(other.peak_, 0);
        }
        return *this;
    }

    /// `bytes` of uninitialised memory, valid until the stack is released to a mark taken before this call.
    void* take(std::size_t bytes) {
        bytes = round_up(std::max<std::size_t>(bytes, 1));
        if (blocks_.empty() || top_.offset + bytes > blocks_[top_.block].bytes) {
            std::size_t next = blocks_.empty() ? 0 : top_.block + 1;
            if (next >= blocks_.size() || blocks_[next].bytes < bytes) {
                free_blocks(next);  // unused: everything past the top is free
                std::size_t const size = std::max(bytes, reserved_bytes());  // grows geometrically
                blocks_.reserve(blocks_.size() + 1);
                blocks_.push_back({memory_.allocate(size), size});
            }
            top_.block = next;
            top_.offset = 0;
        }
        void* at = static_cast<std::byte*>(blocks_[top_.block].data) + top_.offset;
        top_.offset += bytes;
        top_.in_use += bytes;
        peak_ = std::max(peak_, top_.in_use);
        return at;
    }

    Mark mark() const { return top_; }

    /// Gives back everything taken since `m`. Back at the bottom, several blocks merge into one of the peak's
    /// size: in one block the offset is the bytes in use, so every pattern seen so far fits.
    void release(Mark m) {
        top_ = m;
        if (top_.in_use == 0 && blocks_.size() > 1) {
            free_blocks(0);
            blocks_.reserve(1);
            blocks_.push_back({memory_.allocate(peak_), peak_});
        }
    }

    /// The most bytes held at once (alignment included) since the stack was made.
    std::size_t peak_bytes() const { return peak_; }
    /// The bytes the stack owns now.
    std::size_t reserved_bytes() const {
        std::size_t total = 0;
        for (auto const& b : blocks_) total += b.bytes;
        return total;
    }

private:
    struct Block {
        void* data = nullptr;
        std::size_t bytes = 0;
    };

    static std::size_t round_up(std::size_t bytes) { return (bytes + alignment - 1) / alignment * alignment; }

    void free_blocks(std::size_t from) noexcept {
        while (blocks_.size() > from) {
            memory_.deallocate(blocks_.back().data);
            blocks_.pop_back();
        }
    }

    Memory memory_;
    std::vector<Block> blocks_;
    Mark top_;
    std::size_t peak_ = 0;
};

/// The temporaries of one call: takes typed views from a ScratchStack and gives them all back when it ends.
/// Frames nest (a block's backward, then its attention's inside it) and must end in reverse order of creation.
template <class Stack>
class ScratchFrame {
public:
    explicit ScratchFrame(Stack& stack) : stack_(stack), mark_(stack.mark()) {}
    ~ScratchFrame() { stack_.release(mark_); }
    ScratchFrame(ScratchFrame const&) = delete;
    ScratchFrame& operator=(ScratchFrame const&) = delete;

    /// (rows, cols) of T, uninitialised.
    template <class T>
    View<T> take(Index rows, Index cols) {
        require(rows >= 0 && cols >= 0, "ScratchFrame::take: negative shape (", rows, ", ", cols, ")");
        return {static_cast<T*>(stack_.take(std::size_t(rows * cols) * sizeof(T))), rows, cols};
    }

private:
    Stack& stack_;
    typename Stack::Mark mark_;
};

}  // namespace polyalpaca
