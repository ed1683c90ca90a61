/// @file backend/sizing/ledger.hpp
/// @brief Simulated memory for the dry-run backend (backend/sizing.hpp): a Ledger hands out fake addresses and
///        records the bytes behind them, current and peak, by pool; Buffer<T> is the backend's owning storage,
///        which allocates nothing real.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <utility>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca::sizing {

/// What an allocation is for. Buffers are the backend's Buffer<T> (parameter arenas, optimizer state, activations,
/// KV caches); the others are what a backend context holds itself.
enum class Pool : std::uint8_t {
    Buffers,      ///< Backend::Buffer<T>
    Temporaries,  ///< the blocks of the context's ScratchStack
    OpScratch,    ///< memory ops take for themselves (CUDA scratch slots, host staging)
    Bf16Copies,   ///< CUDA's bf16 working copies of weights
    Workspace,    ///< cuBLASLt's workspace
};
inline constexpr std::size_t pool_count = 5;

inline char const* to_string(Pool pool) {
    switch (pool) {
        case Pool::Buffers: return "buffers";
        case Pool::Temporaries: return "temporaries";
        case Pool::OpScratch: return "op scratch";
        case Pool::Bf16Copies: return "bf16 copies";
        case Pool::Workspace: return "workspace";
    }
    return "?";
}

/// Bytes held, by pool.
struct PoolBytes {
    std::array<std::size_t, pool_count> bytes{};
    std::size_t operator[](Pool pool) const { return bytes[std::size_t(pool)]; }
    std::size_t total() const {
        std::size_t sum = 0;
        for (auto b : bytes) sum += b;
        return sum;
    }
};

/// Simulated memory. allocate() returns a fake address (non-null, 256-byte aligned, distinct from every other
/// one handed out, never dereferenced) and records its bytes; release() gives them back. The peak is the most
/// bytes held at once since the ledger was made; a phase's peak, since start_phase().
class Ledger {
public:
    void* allocate(std::size_t bytes, Pool pool) {
        auto const address = next_;
        next_ += (bytes + 255) / 256 * 256 + 256;  // a gap, so even empty allocations get distinct addresses
        live_.emplace(address, Allocation{bytes, pool});
        held_.bytes[std::size_t(pool)] += bytes;
        current_ += bytes;
        if (current_ > peak_) {
            peak_ = current_;
            at_peak_ = held_;
        }
        if (current_ > phase_peak_) {
            phase_peak_ = current_;
            at_phase_peak_ = held_;
        }
        return reinterpret_cast<void*>(address);
    }

    void release(void const* address) {
        auto const it = live_.find(reinterpret_cast<std::uintptr_t>(address));
        require(it != live_.end(), "sizing::Ledger: release of an address it did not hand out");
        held_.bytes[std::size_t(it->second.pool)] -= it->second.bytes;
        current_ -= it->second.bytes;
        live_.erase(it);
    }

    /// `bytes` of fake address space with nothing recorded behind it: keys that stand for memory kept elsewhere
    /// (the CUDA backend's frozen weights kept in bf16 only, backend/cuda/frozen_bf16.cuh).
    void* reserve_addresses(std::size_t bytes) {
        auto const address = next_;
        next_ += (bytes + 255) / 256 * 256 + 256;
        return reinterpret_cast<void*>(address);
    }

    /// Starts a phase: its peak is measured from the bytes held now.
    void start_phase() {
        phase_peak_ = current_;
        at_phase_peak_ = held_;
    }

    std::size_t current() const { return current_; }
    std::size_t peak() const { return peak_; }
    std::size_t phase_peak() const { return phase_peak_; }
    PoolBytes const& held() const { return held_; }
    PoolBytes const& at_peak() const { return at_peak_; }
    PoolBytes const& at_phase_peak() const { return at_phase_peak_; }
    std::size_t live_allocations() const { return live_.size(); }

private:
    struct Allocation {
        std::size_t bytes;
        Pool pool;
    };
    std::unordered_map<std::uintptr_t, Allocation> live_;
    std::uintptr_t next_ = std::uintptr_t(1) << 44;
    std::size_t current_ = 0, peak_ = 0, phase_peak_ = 0;
    PoolBytes held_, at_peak_, at_phase_peak_;
};

/// The ledger that Buffers made on this thread record into: the one of the newest sizing Context alive here.
inline std::shared_ptr<Ledger>& active_ledger() {
    thread_local std::shared_ptr<Ledger> ledger;
    return ledger;
}

/// size() values of T that exist only in the active ledger; data() is a fake address (nullptr when empty, as an
/// empty std::vector's may be). Move-only, like the device buffers it stands in for.
template <class T>
class Buffer {
public:
    Buffer() = default;
    explicit Buffer(std::size_t size) : size_(size) {
        if (size == 0) return;
        ledger_ = active_ledger();
        require(ledger_ != nullptr, "sizing::Buffer: no sizing Context is alive on this thread to record it");
        data_ = static_cast<T*>(ledger_->allocate(size * sizeof(T), Pool::Buffers));
    }
    ~Buffer() { release(); }
    Buffer(Buffer const&) = delete;
    Buffer& operator=(Buffer const&) = delete;
    Buffer(Buffer&& other) noexcept
        : ledger_(std::move(other.ledger_)), data_(std::exchange(other.data_, nullptr)),
          size_(std::exchange(other.size_, 0)) {}
    Buffer& operator=(Buffer&& other) noexcept {
        if (this != &other) {
            release();
            ledger_ = std::move(other.ledger_);
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }

    T* data() const { return data_; }
    std::size_t size() const { return size_; }

private:
    void release() noexcept {
        if (data_) ledger_->release(data_);
        ledger_.reset();
        data_ = nullptr;
        size_ = 0;
    }

    std::shared_ptr<Ledger> ledger_;
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

/// Memory for the context's ScratchStack, recorded in the ledger as Pool::Temporaries.
struct LedgerMemory {
    std::shared_ptr<Ledger> ledger;
    void* allocate(std::size_t bytes) { return ledger->allocate(bytes, Pool::Temporaries); }
    void deallocate(void* p) noexcept { ledger->release(p); }
};

}  // namespace polyalpaca::sizing
