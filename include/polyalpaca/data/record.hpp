/// @file data/record.hpp
/// @brief One instruction-tuning record (Alpaca's instruction/input/output), and the ways a record can be bad.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace polyalpaca {

/// One Alpaca record as read from a file. `input` is "" when the file has none.
struct Record {
    std::string lang;         ///< language of the file it came from
    std::string id;           ///< the record's "id" (string or integer) where present, else its index in the file
    std::string instruction;
    std::string input;
    std::string output;
    std::string source;       ///< where it was read: "file:line" (JSON Lines) or "file:[index]" (JSON array)
};

/// What to do with a bad record: stop with an Error naming it (default), or skip it and list it in the DataReport.
enum class BadRecordPolicy { Fail, Skip };

/// Why a record was rejected.
enum class BadRecordReason {
    MalformedJson,         ///< the record's JSON text does not parse
    NotAnObject,           ///< the record is not a JSON object
    MissingInstruction,
    InstructionNotString,
    MissingOutput,
    OutputNotString,
    InputNotString,        ///< "input" is present but not a string
    BadId,                 ///< "id" is present but neither a string nor an integer
    InvalidUtf8,           ///< a string holds bytes that are not UTF-8
    EmptyOutput,           ///< "output" is ""
    OverLength,            ///< the tokenised example is longer than the cutoff and over-long examples are dropped
};

inline constexpr std::size_t bad_record_reason_count = 11;

inline constexpr std::array<BadRecordReason, bad_record_reason_count> all_bad_record_reasons = {
    BadRecordReason::MalformedJson,   BadRecordReason::NotAnObject,     BadRecordReason::MissingInstruction,
    BadRecordReason::InstructionNotString, BadRecordReason::MissingOutput, BadRecordReason::OutputNotString,
    BadRecordReason::InputNotString,  BadRecordReason::BadId,           BadRecordReason::InvalidUtf8,
    BadRecordReason::EmptyOutput,     BadRecordReason::OverLength,
};

/// A short human-readable name of the reason, as written in messages and reports.
inline std::string_view reason_name(BadRecordReason reason) {
    switch (reason) {
        case BadRecordReason::MalformedJson: return "malformed JSON";
        case BadRecordReason::NotAnObject: return "not a JSON object";
        case BadRecordReason::MissingInstruction: return "missing instruction";
        case BadRecordReason::InstructionNotString: return "instruction is not a string";
        case BadRecordReason::MissingOutput: return "missing output";
        case BadRecordReason::OutputNotString: return "output is not a string";
        case BadRecordReason::InputNotString: return "input is not a string";
        case BadRecordReason::BadId: return "id is neither a string nor an integer";
        case BadRecordReason::InvalidUtf8: return "invalid UTF-8";
        case BadRecordReason::EmptyOutput: return "empty output";
        case BadRecordReason::OverLength: return "longer than the cutoff";
    }
    return "unknown reason";
}

}  // namespace polyalpaca
