/// @file core/error.hpp
/// @brief The one exception type polyalpaca throws, and helpers that build its message.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace polyalpaca {

/// Every error polyalpaca reports on bad input: the message says what was wrong and where.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {
template <class... Parts>
std::string concat(Parts const&... parts) {
    std::ostringstream out;
    (out << ... << parts);
    return out.str();
}
}  // namespace detail

/// Throws Error with the parts of the message joined, e.g. fail("token id ", id, " at row ", row).
template <class... Parts>
[[noreturn]] void fail(Parts const&... parts) {
    throw Error(detail::concat(parts...));
}

/// Throws Error with the message parts when `ok` is false.
template <class... Parts>
void require(bool ok, Parts const&... parts) {
    if (!ok) fail(parts...);
}

}  // namespace polyalpaca
