/// @file fuzz/alpaca_fuzzer.cpp
/// @brief libFuzzer target: any bytes read as Alpaca data, as a JSON array of records and as JSON Lines, under both
///        bad-record policies (fail and skip), end in records or an Error; so does the format sniffing that
///        read_alpaca does on a file.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "polyalpaca/data/alpaca.hpp"

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    namespace pa = polyalpaca;
    std::string_view const text(reinterpret_cast<char const*>(data), size);
    for (auto const format : {pa::RecordFormat::JsonArray, pa::RecordFormat::JsonLines}) {
        for (auto const policy : {pa::BadRecordPolicy::Fail, pa::BadRecordPolicy::Skip}) {
            try {
                pa::DataReport report;
                (void)pa::parse_alpaca(text, "fuzz/en.json", format, {.lang = "", .policy = policy}, report);
            } catch (pa::Error const&) {
            }
        }
    }
    try {
        pa::data_detail::ByteReader reader(text, "fuzz/en.json");
        (void)pa::data_detail::sniff_format(reader);
    } catch (pa::Error const&) {
    }
    return 0;
}
