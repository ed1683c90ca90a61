/// @file train/metrics_log.hpp
/// @brief metrics.jsonl: one JSON object per training step and per evaluation, appended as the run goes.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/io/atomic_file.hpp"

namespace polyalpaca {

class MetricsLog {
public:
    /// Opens `path` for appending. With `resume_step` >= 0 the lines of steps after it (written by the run that was
    /// interrupted after its last checkpoint) are dropped first, so the log matches the resumed run exactly.
    MetricsLog(std::filesystem::path path, long resume_step) : path_(std::move(path)) {
        if (resume_step >= 0 && std::filesystem::exists(path_)) {
            std::ifstream in(path_);
            std::string kept, line;
            while (std::getline(in, line)) {
                if (line.empty()) continue;
                auto const j = nlohmann::json::parse(line, nullptr, false);
                if (!j.is_discarded() && j.value("step", 0L) <= resume_step) kept += line + "\n";
            }
            io::write_file_atomically(path_, kept);
        } else if (std::filesystem::exists(path_)) {
            std::filesystem::remove(path_);
        }
        out_.open(path_, std::ios::app);
        require(bool(out_), "cannot open the metrics log '", path_.string(), "' for writing");
    }

    /// A log that writes nothing: the ranks other than 0 of a data-parallel run.
    MetricsLog() = default;

    void write(nlohmann::json const& record) {
        if (path_.empty()) return;
        out_ << record.dump() << "\n";
        out_.flush();
        require(bool(out_), "cannot write the metrics log '", path_.string(), "'");
    }

    std::filesystem::path const& path() const { return path_; }

private:
    std::filesystem::path path_;
    std::ofstream out_;
};

}  // namespace polyalpaca
