/// @file eval/judge_records.hpp
/// @brief What the judge reads and writes: response records in (JSON Lines), score records out (JSON Lines),
/// keyed by (run, language, id).
///
/// A response line needs "run", "language", "id", "instruction" and "response" ("input" may be absent: empty);
/// other keys (decoding settings) are ignored. A score line is exactly
/// {"run", "language", "id", "score" (number, or null when the judge's answer had no parsable score), "raw"}.
/// All three key fields are strings. The judge keeps one line per key: new scores are appended, a score asked
/// again replaces its line (the file is rewritten atomically). Reading tolerates several lines for one key (the last
/// wins) and a cut last line; write_scores() then rewrites the file with one line per key.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/data/alpaca_record.hpp"
#include "polyalpaca/io/atomic_file.hpp"
#include "polyalpaca/io/input_file.hpp"

namespace polyalpaca::eval {

/// One model response to judge.
struct JudgeItem {
    std::string run;
    std::string language;
    std::string id;
    std::string instruction;
    std::string input;
    std::string response;
};

/// The judge's verdict on one response.
struct JudgeScore {
    std::string run;
    std::string language;
    std::string id;
    std::optional<double> score;  // empty: the answer had no parsable score in the scale
    std::string raw;              // the judge's text
};

/// The identity of a response: run, language and id joined by a separator none of them holds.
inline std::string judge_key(std::string_view run, std::string_view language, std::string_view id) {
    std::string key;
    key.append(run).push_back('\x1f');
    key.append(language).push_back('\x1f');
    key.append(id);
    return key;
}
inline std::string judge_key(JudgeItem const& item) { return judge_key(item.run, item.language, item.id); }
inline std::string judge_key(JudgeScore const& score) { return judge_key(score.run, score.language, score.id); }

/// "run 'r', language 'de', id '7'": how messages name one response.
inline std::string describe_key(std::string_view run, std::string_view language, std::string_view id) {
    return detail::concat("run '", run, "', language '", language, "', id '", id, "'");
}

namespace judge_detail {

inline std::string string_field(nlohmann::json const& object, char const* key, std::string const& where,
                                bool optional = false) {
    auto const it = object.find(key);
    if (it == object.end() || it->is_null()) {
        require(optional, where, ": no \"", key, "\"");
        return {};
    }
    require(it->is_string(), where, ": \"", key, "\" is not a string");
    return it->get<std::string>();
}

/// Calls `on_line(object, where)` for every non-blank line of a JSON Lines file. A last line with no newline that
/// does not parse (a write cut short) is skipped when `tolerate_cut_tail`; every other bad line is an error.
template <class OnLine>
bool for_each_json_line(std::filesystem::path const& path, bool tolerate_cut_tail, OnLine on_line) {
    auto in = io::open_input_file(path, "the JSON Lines file");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    bool cut_tail = false;
    std::size_t line_no = 0, begin = 0;
    while (begin < text.size()) {
        std::size_t end = text.find('\n', begin);
        bool const terminated = end != std::string::npos;
        if (!terminated) end = text.size();
        ++line_no;
        std::string_view const line(text.data() + begin, end - begin);
        begin = end + 1;
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        std::string const where = detail::concat(path.string(), ":", line_no);
        nlohmann::json value = nlohmann::json::parse(line, nullptr, false);
        if (value.is_discarded() && !terminated && tolerate_cut_tail) {
            cut_tail = true;
            continue;
        }
        require(!value.is_discarded(), where, ": not valid JSON");
        // nlohmann copies and prints by recursion, one frame per level: refuse what could exhaust the stack.
        auto const depth = data_detail::json_nesting_depth(line);
        require(depth <= data_detail::max_record_nesting, where, ": nested ", depth, " deep; at most ",
                data_detail::max_record_nesting, " levels are read");
        require(value.is_object(), where, ": not a JSON object");
        on_line(value, where);
    }
    return cut_tail;
}

}  // namespace judge_detail

/// Reads responses (JSON Lines). Two lines with the same (run, language, id) are an error naming both.
inline std::vector<JudgeItem> read_judge_items(std::filesystem::path const& path) {
    std::vector<JudgeItem> items;
    std::unordered_map<std::string, std::string> seen;
    judge_detail::for_each_json_line(path, false, [&](nlohmann::json const& o, std::string const& where) {
        JudgeItem item;
        item.run = judge_detail::string_field(o, "run", where);
        item.language = judge_detail::string_field(o, "language", where);
        item.id = judge_detail::string_field(o, "id", where);
        item.instruction = judge_detail::string_field(o, "instruction", where);
        item.input = judge_detail::string_field(o, "input", where, true);
        item.response = judge_detail::string_field(o, "response", where);
        auto const [it, fresh] = seen.emplace(judge_key(item), where);
        require(fresh, where, ": ", describe_key(item.run, item.language, item.id), " already appeared at ",
                it->second);
        items.push_back(std::move(item));
    });
    return items;
}

/// One score line (no newline), keys in the documented order.
inline std::string score_line(JudgeScore const& s) {
    nlohmann::ordered_json line;
    line["run"] = s.run;
    line["language"] = s.language;
    line["id"] = s.id;
    if (!s.score) line["score"] = nullptr;
    else if (*s.score == double(static_cast<long long>(*s.score))) line["score"] = static_cast<long long>(*s.score);
    else line["score"] = *s.score;
    line["raw"] = s.raw;
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// A scores file read back: one score per key (the last line wins), in order of first appearance.
struct ScoresFile {
    std::vector<JudgeScore> scores;
    std::unordered_map<std::string, std::size_t> index;  // judge_key -> position in `scores`
    bool needs_compaction = false;  // duplicate keys, or a last line cut short or with no newline

    JudgeScore const* find(std::string const& key) const {
        auto const it = index.find(key);
        return it == index.end() ? nullptr : &scores[it->second];
    }
    void put(JudgeScore score) {
        auto const [it, fresh] = index.emplace(judge_key(score), scores.size());
        if (fresh) scores.push_back(std::move(score));
        else scores[it->second] = std::move(score);
    }
};

/// Reads a scores file; a missing file reads as empty.
inline ScoresFile read_scores(std::filesystem::path const& path) {
    ScoresFile file;
    if (!std::filesystem::exists(path)) return file;
    std::size_t lines = 0;
    bool const cut = judge_detail::for_each_json_line(path, true, [&](nlohmann::json const& o, std::string const& where) {
        JudgeScore s;
        s.run = judge_detail::string_field(o, "run", where);
        s.language = judge_detail::string_field(o, "language", where);
        s.id = judge_detail::string_field(o, "id", where);
        auto const score = o.find("score");
        require(score != o.end(), where, ": no \"score\"");
        require(score->is_null() || score->is_number(), where, ": \"score\" is neither a number nor null");
        if (score->is_number()) s.score = score->get<double>();
        s.raw = judge_detail::string_field(o, "raw", where, true);
        file.put(std::move(s));
        ++lines;
    });
    bool const ends_in_newline = [&] {
        std::ifstream in(path, std::ios::binary | std::ios::ate);
        if (in.tellg() <= 0) return true;
        in.seekg(-1, std::ios::end);
        return in.get() == '\n';
    }();
    file.needs_compaction = cut || !ends_in_newline || lines != file.scores.size();
    return file;
}

/// Rewrites `path` atomically with one line per key.
inline void write_scores(std::filesystem::path const& path, ScoresFile const& file) {
    std::string text;
    for (auto const& s : file.scores) text += score_line(s) + "\n";
    io::write_file_atomically(path, text);
}

/// Appends score lines to a file, each with one write() on an O_APPEND descriptor followed by fdatasync, so a
/// killed process leaves every finished line on disk and at most a cut last line (read_scores skips it).
class ScoresAppender {
public:
    explicit ScoresAppender(std::filesystem::path path) : path_(std::move(path)) {
        fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd_ < 0) fail("cannot open '", path_.string(), "' to append scores: ", std::strerror(errno));
    }
    ScoresAppender(ScoresAppender const&) = delete;
    ScoresAppender& operator=(ScoresAppender const&) = delete;
    ~ScoresAppender() {
        if (fd_ >= 0) ::close(fd_);
    }

    void append(JudgeScore const& s) {
        std::string const line = score_line(s) + "\n";
        char const* data = line.data();
        std::size_t left = line.size();
        while (left > 0) {
            ssize_t const n = ::write(fd_, data, left);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) fail("cannot append to '", path_.string(), "': ", std::strerror(errno));
            data += n;
            left -= std::size_t(n);
        }
        if (::fdatasync(fd_) != 0) fail("cannot sync '", path_.string(), "': ", std::strerror(errno));
    }

private:
    std::filesystem::path path_;
    int fd_ = -1;
};

}  // namespace polyalpaca::eval
