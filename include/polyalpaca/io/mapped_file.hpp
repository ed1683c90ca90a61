/// @file io/mapped_file.hpp
/// @brief A read-only memory map of a whole file, unmapped when the object goes.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca::io {

/// The bytes of a file, mapped read-only (an empty file maps to an empty span). Movable, not copyable.
class MappedFile {
public:
    MappedFile() = default;
    explicit MappedFile(std::filesystem::path path) : path_(std::move(path)) {
        int const fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) fail("cannot open '", path_.string(), "': ", std::strerror(errno));
        struct stat st {};
        if (::fstat(fd, &st) != 0) {
            int const err = errno;
            ::close(fd);
            fail("cannot stat '", path_.string(), "': ", std::strerror(err));
        }
        if (!S_ISREG(st.st_mode)) {
            ::close(fd);
            fail("'", path_.string(), "' is not a regular file");
        }
        size_ = std::size_t(st.st_size);
        if (size_ > 0) {
            void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
            if (p == MAP_FAILED) {
                int const err = errno;
                ::close(fd);
                fail("cannot map '", path_.string(), "': ", std::strerror(err));
            }
            data_ = static_cast<std::byte const*>(p);
        }
        ::close(fd);
    }
    MappedFile(MappedFile&& other) noexcept { swap(other); }
    MappedFile& operator=(MappedFile&& other) noexcept {
        MappedFile(std::move(other)).swap(*this);
        return *this;
    }
    MappedFile(MappedFile const&) = delete;
    MappedFile& operator=(MappedFile const&) = delete;
    ~MappedFile() {
        if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
    }

    std::span<std::byte const> bytes() const { return {data_, size_}; }
    std::size_t size() const { return size_; }
    std::filesystem::path const& path() const { return path_; }

private:
    void swap(MappedFile& other) noexcept {
        std::swap(path_, other.path_);
        std::swap(data_, other.data_);
        std::swap(size_, other.size_);
    }

    std::filesystem::path path_;
    std::byte const* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace polyalpaca::io
