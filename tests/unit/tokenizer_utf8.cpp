/// @file tests/unit/tokenizer_utf8.cpp
/// @brief UTF-8 validation with byte offsets, Unicode's maximal-subpart replacement, and the GPT-2 byte table.

#include <set>
#include <string>

#include <catch2/catch.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/tokenizer/byte_level.hpp"
#include "polyalpaca/tokenizer/utf8.hpp"

using namespace polyalpaca::tokenizer;

TEST_CASE("valid UTF-8 passes; the first bad byte is reported by offset", "[tokenizer][unit]") {
    CHECK(utf8::first_invalid("") == std::string_view::npos);
    CHECK(utf8::first_invalid("Hello, мир, 世界, 🦙, \xF4\x8F\xBF\xBF") == std::string_view::npos);
    struct Case {
        std::string text;
        std::size_t offset;
    };
    for (auto const& [text, offset] : {
             Case{"abc\xFF", 3},            // never valid in UTF-8
             Case{"\xC0\x80", 0},           // overlong NUL
             Case{"ab\xE0\x80\x80", 2},     // overlong 3-byte form
             Case{"\xED\xA0\x80", 0},       // UTF-16 surrogate
             Case{"x\xF4\x90\x80\x80", 1},  // above U+10FFFF
             Case{"ok\xE2\x82", 2},         // truncated at the end
             Case{"\x80", 0},               // stray continuation byte
             Case{"\xE2\x82"
                  "a",
                  0},  // continuation missing in the middle
         }) {
        INFO(offset);
        CHECK(utf8::first_invalid(text) == offset);
        try {
            utf8::require_valid(text, "text");
            FAIL("no error");
        } catch (polyalpaca::Error const& e) {
            CHECK_THAT(e.what(), Catch::Contains("byte offset " + std::to_string(offset)));
        }
    }
}

TEST_CASE("lossy decoding replaces each maximal ill-formed subpart (Unicode Table 3-8)", "[tokenizer][unit]") {
    // The Unicode Standard, chapter 3, "U+FFFD Substitution of Maximal Subparts", Table 3-8.
    std::string const bytes = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
    std::string const r(utf8::replacement_character);
    CHECK(utf8::lossy(bytes) == "a" + r + r + r + "b" + r + "c" + r + r + "d");
    CHECK(utf8::lossy("ok 🦙") == "ok 🦙");
    CHECK(utf8::lossy("\xF0\x9F\xA6") == r);  // one truncated sequence, one replacement
}

TEST_CASE("code points survive encode/decode at every length boundary", "[tokenizer][unit]") {
    for (char32_t cp : {0x0u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xD7FFu, 0xE000u, 0xFFFDu, 0xFFFFu, 0x10000u, 0x10FFFFu}) {
        auto const s = utf8::encode(cp);
        REQUIRE(utf8::sequence_length(s, 0) == s.size());
        std::size_t n = 0;
        CHECK(utf8::decode(s, 0, n) == cp);
        CHECK(n == s.size());
        CHECK(utf8::count_chars(s + s) == 2);
    }
}

TEST_CASE("the byte-level table is a bijection onto printable characters", "[tokenizer][unit]") {
    std::set<std::string> seen;
    for (int b = 0; b < 256; ++b) {
        auto const& ch = byte_level::table().utf8[b];
        seen.insert(ch);
        std::size_t n = 0;
        auto const cp = utf8::decode(ch, 0, n);
        CHECK(byte_level::byte_of(cp) == static_cast<unsigned char>(b));
        CHECK(cp > 0x20);  // never a control character or space
    }
    CHECK(seen.size() == 256);
    CHECK(byte_level::table().utf8[' '] == "Ġ");  // GPT-2's space
    std::string all;
    for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
    std::string back;
    byte_level::append_decoded(byte_level::encode(all), back);
    CHECK(back == all);
}
