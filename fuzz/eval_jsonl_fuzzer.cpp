/// @file fuzz/eval_jsonl_fuzzer.cpp
/// @brief libFuzzer target: any bytes read as each JSON Lines file of the evaluation (a test set under both
///        bad-record policies, a responses file, the judge's items, a scores file, the report's score table) end
///        in its records or an Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "polyalpaca/eval/judge_records.hpp"
#include "polyalpaca/eval/responses.hpp"
#include "polyalpaca/eval/score_table.hpp"
#include "polyalpaca/eval/test_set.hpp"
#include "temp_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    namespace pa = polyalpaca;
    namespace ev = polyalpaca::eval;
    pa::fuzz::TempFile const file("test_en.jsonl", std::string_view(reinterpret_cast<char const*>(data), size));
    for (auto const policy : {pa::BadRecordPolicy::Fail, pa::BadRecordPolicy::Skip}) {
        try {
            pa::DataReport report;
            (void)ev::read_test_set(file.path(), policy, report);
        } catch (pa::Error const&) {
        }
    }
    try {
        (void)ev::read_responses(file.path());
    } catch (pa::Error const&) {
    }
    try {
        (void)ev::read_judge_items(file.path());
    } catch (pa::Error const&) {
    }
    try {
        (void)ev::read_scores(file.path());
    } catch (pa::Error const&) {
    }
    try {
        (void)ev::ScoreTable::read(file.path());
    } catch (pa::Error const&) {
    }
    return 0;
}
