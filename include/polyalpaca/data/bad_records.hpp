/// @file data/bad_records.hpp
/// @brief DataReport: every record skipped (where and why), truncated and unscored examples, and per-file counts;
///        the policy hook.
#pragma once

#include <array>
#include <cstddef>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/data/record.hpp"

namespace polyalpaca {

/// A record left out under BadRecordPolicy::Skip.
struct SkippedRecord {
    std::string source;  ///< "file:line" or "file:[index]"
    BadRecordReason reason;
    std::string detail;  ///< what exactly was wrong, e.g. the parser's message or the keys the record has
};

/// Records read and kept from one file.
struct FileCounts {
    std::string file;
    std::size_t kept = 0;
    std::size_t skipped = 0;
    std::size_t blank_lines = 0;  ///< JSON Lines only: empty or whitespace-only lines (not records)
};

/// What the readers and the example builder left out or changed. Nothing is dropped without an entry here.
class DataReport {
public:
    /// Lists a skipped record and counts it under its reason, and under its file ("file:..." sources).
    void skip(std::string source, BadRecordReason reason, std::string detail) {
        ++reason_counts_[static_cast<std::size_t>(reason)];
        for (auto f = files_.rbegin(); f != files_.rend(); ++f) {
            if (source.size() > f->file.size() && source.starts_with(f->file) && source[f->file.size()] == ':') {
                ++f->skipped;
                break;
            }
        }
        skipped_.push_back({std::move(source), reason, std::move(detail)});
    }
    /// An example cut to the cutoff (kept, with `truncated` set).
    void note_truncated(std::string source) { truncated_.push_back(std::move(source)); }
    /// An example with no label the loss scores (kept; it adds nothing to the loss): its prompt fills the cutoff.
    void note_unscored(std::string source) { unscored_.push_back(std::move(source)); }

    /// A reader starts on `file`; the counts of kept records and blank lines that follow go to it.
    void begin_file(std::string file) { files_.push_back({std::move(file)}); }
    void count_kept() { current_file().kept += 1; }
    void count_blank_line() { current_file().blank_lines += 1; }

    std::vector<SkippedRecord> const& skipped() const { return skipped_; }
    std::size_t skipped_count() const { return skipped_.size(); }
    std::size_t skipped_count(BadRecordReason reason) const {
        return reason_counts_[static_cast<std::size_t>(reason)];
    }
    std::vector<std::string> const& truncated() const { return truncated_; }
    std::size_t truncated_count() const { return truncated_.size(); }
    std::size_t unscored_count() const { return unscored_.size(); }
    std::vector<FileCounts> const& files() const { return files_; }
    /// Records kept over all files read so far.
    std::size_t kept_count() const {
        std::size_t n = 0;
        for (auto const& f : files_) n += f.kept;
        return n;
    }
    bool clean() const { return skipped_.empty() && truncated_.empty(); }

    /// One paragraph: per file kept/skipped, skipped per reason, truncated count.
    std::string summary() const {
        std::ostringstream out;
        for (auto const& f : files_) {
            out << f.file << ": " << f.kept << " records kept, " << f.skipped << " skipped";
            if (f.blank_lines) out << ", " << f.blank_lines << " blank lines";
            out << '\n';
        }
        out << "skipped records: " << skipped_.size();
        char const* sep = " (";
        for (auto reason : all_bad_record_reasons) {
            if (auto n = skipped_count(reason)) {
                out << sep << reason_name(reason) << ": " << n;
                sep = ", ";
            }
        }
        if (!skipped_.empty()) out << ')';
        out << "\ntruncated examples: " << truncated_.size() << '\n';
        if (!unscored_.empty())
            out << "examples with no scored token (the prompt fills the cutoff): " << unscored_.size() << '\n';
        return out.str();
    }

    /// The summary, then one line per skipped record and per truncated example, for the run log.
    void write(std::ostream& out) const {
        out << summary();
        for (auto const& s : skipped_)
            out << "skipped " << s.source << ": " << reason_name(s.reason) << ": " << s.detail << '\n';
        for (auto const& t : truncated_) out << "truncated " << t << '\n';
        for (auto const& u : unscored_) out << "no scored token " << u << '\n';
    }

private:
    FileCounts& current_file() {
        require(!files_.empty(), "DataReport: a record was counted before begin_file");
        return files_.back();
    }

    std::vector<SkippedRecord> skipped_;
    std::array<std::size_t, bad_record_reason_count> reason_counts_{};
    std::vector<std::string> truncated_;
    std::vector<std::string> unscored_;
    std::vector<FileCounts> files_;
};

/// The one place the policy is applied: Fail throws Error("<source>: <reason>: <detail>"), Skip lists the record.
inline void reject_record(BadRecordPolicy policy, DataReport& report, std::string source, BadRecordReason reason,
                          std::string detail) {
    if (policy == BadRecordPolicy::Fail) fail(source, ": ", reason_name(reason), ": ", detail);
    report.skip(std::move(source), reason, std::move(detail));
}

}  // namespace polyalpaca
