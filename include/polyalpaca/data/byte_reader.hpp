/// @file data/byte_reader.hpp
/// @brief Reads a file (in fixed-size chunks) or a string byte by byte, keeping the byte offset and line number.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca::data_detail {

/// Sequential bytes of a file or of text in memory. A file is read through one buffer of `buffer_bytes`, so memory
/// does not grow with the file.
class ByteReader {
public:
    static constexpr std::size_t default_buffer_bytes = std::size_t(1) << 20;

    ByteReader(std::filesystem::path const& path, std::size_t buffer_bytes = default_buffer_bytes)
        : origin_(path.string()), file_(std::fopen(path.c_str(), "rb"), &std::fclose), buffer_(buffer_bytes) {
        if (!file_) fail(origin_, ": cannot open: ", std::strerror(errno));
        require(buffer_bytes > 0, origin_, ": the read buffer must hold at least one byte");
    }
    ByteReader(std::string_view text, std::string origin) : origin_(std::move(origin)), file_(nullptr, &std::fclose) {
        view_ = text;
    }

    std::string const& origin() const { return origin_; }

    /// The next byte (0..255) without consuming it, or -1 at the end.
    int peek() {
        if (at_ == view_.size() && !refill()) return -1;
        return static_cast<unsigned char>(view_[at_]);
    }
    /// The next byte, consumed, or -1 at the end.
    int get() {
        int const c = peek();
        if (c < 0) return c;
        ++at_;
        ++offset_;
        if (c == '\n') ++line_;
        return c;
    }
    /// The bytes read ahead and not yet consumed (refilled when none are left); empty at the end.
    std::string_view available() {
        if (at_ == view_.size()) refill();
        return view_.substr(at_);
    }
    /// Consumes the first `n` bytes of available().
    void consume(std::size_t n) {
        auto const bytes = view_.substr(at_, n);
        line_ += std::uint64_t(std::count(bytes.begin(), bytes.end(), '\n'));
        at_ += bytes.size();
        offset_ += bytes.size();
    }
    /// Byte offset of the next byte in the file.
    std::uint64_t offset() const { return offset_; }
    /// 1-based line of the next byte.
    std::uint64_t line() const { return line_; }

    /// The bytes up to the next '\n' (not included, consumed) into `out`; false when the input had already ended.
    bool read_line(std::string& out) {
        out.clear();
        if (peek() < 0) return false;
        for (;;) {
            if (at_ == view_.size() && !refill()) return true;
            auto const rest = view_.substr(at_);
            auto const nl = rest.find('\n');
            auto const take = nl == std::string_view::npos ? rest.size() : nl;
            out.append(rest.substr(0, take));
            at_ += take;
            offset_ += take;
            if (nl != std::string_view::npos) {
                get();
                return true;
            }
        }
    }

private:
    bool refill() {
        if (!file_) return false;
        auto const n = std::fread(buffer_.data(), 1, buffer_.size(), file_.get());
        if (n == 0 && std::ferror(file_.get()))
            fail(origin_, ": read error at byte offset ", offset_, ": ", std::strerror(errno));
        view_ = std::string_view(buffer_.data(), n);
        at_ = 0;
        return n > 0;
    }

    std::string origin_;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_;
    std::vector<char> buffer_;
    std::string_view view_;
    std::size_t at_ = 0;
    std::uint64_t offset_ = 0;
    std::uint64_t line_ = 1;
};

}  // namespace polyalpaca::data_detail
