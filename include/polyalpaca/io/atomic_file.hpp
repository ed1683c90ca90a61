/// @file io/atomic_file.hpp
/// @brief Writes a file atomically: a temp file in the same directory, flushed, fsynced, then renamed over the path;
///        removes the temp files a killed writer left.
#pragma once

#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca::io {

/// A file being written: readers of `path` see the old file (or none) until commit(), then the whole new one.
/// Destroyed without commit() (an exception on the way), the temp file is removed and `path` is untouched.
class AtomicFile {
public:
    explicit AtomicFile(std::filesystem::path path) : path_(std::move(path)) {
        auto const dir = path_.has_parent_path() ? path_.parent_path() : std::filesystem::path(".");
        std::string pattern = (dir / ("." + path_.filename().string() + ".tmp.XXXXXX")).string();
        fd_ = ::mkstemp(pattern.data());
        if (fd_ < 0) fail("cannot create a temp file beside '", path_.string(), "': ", std::strerror(errno));
        temp_ = pattern;
    }
    AtomicFile(AtomicFile const&) = delete;
    AtomicFile& operator=(AtomicFile const&) = delete;
    ~AtomicFile() {
        if (fd_ >= 0) ::close(fd_);
        if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
    }

    void write(std::span<std::byte const> bytes) {
        require(!committed_, "write to '", path_.string(), "' after commit");
        auto const* data = reinterpret_cast<char const*>(bytes.data());
        std::size_t left = bytes.size();
        while (left > 0) {
            ssize_t const n = ::write(fd_, data, left);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) fail("cannot write '", temp_, "' (for '", path_.string(), "'): ", std::strerror(errno));
            data += n;
            left -= std::size_t(n);
        }
        written_ += bytes.size();
    }
    void write(std::string_view text) { write(std::as_bytes(std::span(text.data(), text.size()))); }

    /// Bytes written so far.
    std::size_t size() const { return written_; }

    /// fsyncs the data, renames the temp file over `path`, and fsyncs the directory.
    void commit() {
        require(!committed_, "'", path_.string(), "' committed twice");
        if (::fsync(fd_) != 0) fail("cannot fsync '", temp_, "': ", std::strerror(errno));
        ::fchmod(fd_, 0644);
        if (::close(fd_) != 0) {
            fd_ = -1;
            fail("cannot close '", temp_, "': ", std::strerror(errno));
        }
        fd_ = -1;
        if (::rename(temp_.c_str(), path_.c_str()) != 0)
            fail("cannot rename '", temp_, "' to '", path_.string(), "': ", std::strerror(errno));
        committed_ = true;
        auto const dir = path_.has_parent_path() ? path_.parent_path() : std::filesystem::path(".");
        int const dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
        if (dir_fd >= 0) {
            ::fsync(dir_fd);
            ::close(dir_fd);
        }
    }

private:
    std::filesystem::path path_;
    std::string temp_;
    int fd_ = -1;
    std::size_t written_ = 0;
    bool committed_ = false;
};

/// Writes `bytes` to `path` atomically.
inline void write_file_atomically(std::filesystem::path const& path, std::span<std::byte const> bytes) {
    AtomicFile file(path);
    file.write(bytes);
    file.commit();
}
inline void write_file_atomically(std::filesystem::path const& path, std::string_view text) {
    write_file_atomically(path, std::as_bytes(std::span(text.data(), text.size())));
}

/// Whether `name` is an AtomicFile's temp name: ".NAME.tmp." and mkstemp's six characters.
inline bool is_atomic_temp_name(std::string_view name) {
    auto const mark = name.rfind(".tmp.");
    if (!name.starts_with('.') || mark == std::string_view::npos || mark < 2 || name.size() != mark + 5 + 6)
        return false;
    for (char const c : name.substr(mark + 5))
        if (!std::isalnum(static_cast<unsigned char>(c))) return false;
    return true;
}

/// Removes the temp files that writers killed before commit() left in `dir` and, when `recursive`, below it;
/// returns how many. Call it only where no other process is writing: a live writer's temp file looks the same.
inline std::size_t remove_stale_temp_files(std::filesystem::path const& dir, bool recursive) {
    std::error_code error;
    if (!std::filesystem::is_directory(dir, error)) return 0;
    std::vector<std::filesystem::path> stale;
    auto collect = [&](auto iterator) {
        for (auto const& entry : iterator)
            if (entry.is_regular_file(error) && is_atomic_temp_name(entry.path().filename().string()))
                stale.push_back(entry.path());
    };
    if (recursive) collect(std::filesystem::recursive_directory_iterator(dir));
    else collect(std::filesystem::directory_iterator(dir));
    for (auto const& path : stale) std::filesystem::remove(path, error);
    return stale.size();
}

}  // namespace polyalpaca::io
