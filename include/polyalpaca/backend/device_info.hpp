/// @file backend/device_info.hpp
/// @brief What a backend runs on, for reports and plans: the device, its model name and its memory (the CPU's read
///        from /proc here, the CUDA backend's from the runtime in cuda/device_info.cuh), and the CPU's measure of the
///        memory a run held (cuda/memory_watch.cuh is the GPU's).
#pragma once

#include <cstddef>
#include <fstream>
#include <string>

#include <sys/resource.h>
#include <unistd.h>

namespace polyalpaca {

struct DeviceInfo {
    std::string device;            ///< "cpu" or "cuda:N"
    std::string name;              ///< the CPU's or the GPU's model name ("" when unknown)
    std::size_t memory_bytes = 0;  ///< physical memory of the device (0 when unknown)
    std::size_t free_bytes = 0;    ///< what a process may still allocate there now (0 when unknown)
};

namespace cpu {

/// The value of the first "key : value" line of a /proc file whose key is `key`, or "".
inline std::string proc_value(char const* file, std::string const& key) {
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line)) {
        auto const colon = line.find(':');
        if (colon == std::string::npos) continue;
        auto name = line.substr(0, colon);
        while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
        if (name != key) continue;
        auto value = line.substr(colon + 1);
        auto const first = value.find_first_not_of(" \t");
        return first == std::string::npos ? std::string() : value.substr(first);
    }
    return "";
}

/// The host: its CPU model, physical memory, and MemAvailable (what the kernel says new allocations can get).
inline DeviceInfo host_device_info() {
    DeviceInfo d;
    d.device = "cpu";
    d.name = proc_value("/proc/cpuinfo", "model name");
    long const pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) d.memory_bytes = std::size_t(pages) * std::size_t(page);
    auto const available = proc_value("/proc/meminfo", "MemAvailable");  // "12345678 kB"
    if (!available.empty()) d.free_bytes = std::size_t(std::stoull(available)) * 1024;
    return d;
}

/// The most memory this process has held (peak resident set), the CPU's measure of what a run needed. The
/// constructor's argument matches cuda::MemoryWatch's (a device), which the CPU has no use for.
class PeakResidentMemory {
public:
    explicit PeakResidentMemory(int = 0) {}
    void sample() {}
    std::size_t peak() const {
        rusage usage{};
        getrusage(RUSAGE_SELF, &usage);
        return std::size_t(usage.ru_maxrss) * 1024;  // Linux reports KiB
    }
};

}  // namespace cpu

}  // namespace polyalpaca
