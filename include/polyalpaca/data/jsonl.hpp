/// @file data/jsonl.hpp
/// @brief Reading JSON Lines files of objects, with every error naming file:line.
#pragma once

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/excerpt.hpp"
#include "polyalpaca/data/alpaca_record.hpp"
#include "polyalpaca/io/input_file.hpp"

namespace polyalpaca {

/// Calls f(object, where) for every non-blank line of a JSONL file, where is "path:line". A file that cannot be
/// opened, or a line that is not JSON or not an object, is an Error: `file_kind` names the file ("responses
/// file"), `object_kind` one line's object ("a response").
template <class F>
void for_each_jsonl_object(std::filesystem::path const& path, char const* file_kind, char const* object_kind, F&& f) {
    auto in = io::open_input_file(path, std::string("the ") + file_kind);
    std::string line;
    for (std::size_t number = 1; std::getline(in, line); ++number) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        auto const where = path.string() + ":" + std::to_string(number);
        // nlohmann copies and prints by recursion, one frame per level: refuse what could exhaust the stack.
        auto const depth = data_detail::json_nesting_depth(line);
        require(depth <= data_detail::max_record_nesting, where, ": ", object_kind, " nested ", depth,
                " deep; at most ", data_detail::max_record_nesting, " levels are read");
        nlohmann::json object;
        try {
            object = nlohmann::json::parse(line);
        } catch (nlohmann::json::exception const& e) {
            fail(where, ": malformed JSON: ", json_error_text(e.what()));
        }
        require(object.is_object(), where, ": ", object_kind, " is a JSON object, found a JSON ", object.type_name());
        f(object, where);
    }
}

}  // namespace polyalpaca
