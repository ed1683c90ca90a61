/// @file tests/unit/data_examples.cpp
/// @brief Tokenised examples under both EOS policies and train_on_inputs on/off, against hand-computed ids and
/// labels from a byte tokenizer; truncation, the over-length policy, and the special-token layout.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "polyalpaca/data/examples.hpp"

using namespace polyalpaca;
using Catch::Matchers::Contains;
using Ids = std::vector<std::int32_t>;

namespace {

/// One id per UTF-8 byte (byte + 3), BOS = 1 first with special tokens, and EOS = 2 last when `add_eos`.
struct ByteTokenizer {
    bool add_eos = false;
    std::int32_t eos = 2;
    Ids encode(std::string_view text, bool add_special_tokens) const {
        Ids ids;
        if (add_special_tokens) ids.push_back(1);
        for (unsigned char c : text) ids.push_back(std::int32_t(c) + 3);
        if (add_special_tokens && add_eos) ids.push_back(2);
        return ids;
    }
    std::int32_t eos_id() const { return eos; }
};

/// The same with HF's optional EOS.
struct OptionalEosTokenizer {
    std::optional<std::int32_t> eos;
    Ids encode(std::string_view text, bool add_special_tokens) const {
        return ByteTokenizer{}.encode(text, add_special_tokens);
    }
    std::optional<std::int32_t> eos_id() const { return eos; }
};

Ids bytes(std::string_view text) { return ByteTokenizer{}.encode(text, false); }
Ids cat(std::initializer_list<Ids> parts) {
    Ids out;
    for (auto const& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}
Ids masked(std::size_t n) { return Ids(n, -100); }

PromptTemplate const tiny = PromptTemplate::from_json_text(
    R"({"description": "t", "prompt_input": "Q:{instruction}\nI:{input}\nA:", "prompt_no_input": "Q:{instruction}\nA:",
        "response_split": "A:"})",
    "tiny.json");

Record const hi{"en", "7", "Hi", "", "Yo", "t.json:[0]"};  // prompt "Q:Hi\nA:" (7 bytes), full "Q:Hi\nA:Yo"

ExampleOptions options(EosPolicy eos, bool train_on_inputs, std::size_t cutoff = 512) {
    ExampleOptions o;
    o.eos = eos;
    o.train_on_inputs = train_on_inputs;
    o.cutoff = cutoff;
    return o;
}

}  // namespace

TEST_CASE("both EOS policies, prompt and response fit: BOS + text + EOS; train_on_inputs masks BOS + prompt") {
    for (auto eos : {EosPolicy::AlpacaLora, EosPolicy::StanfordAlpaca}) {
        auto const on = make_example(hi, tiny, ByteTokenizer{}, options(eos, true));
        Ids const ids = cat({{1}, bytes("Q:Hi\nA:Yo"), {2}});
        CHECK(on.ids == ids);
        CHECK(on.labels == ids);
        CHECK_FALSE(on.truncated);
        CHECK(on.full_length == 11);
        CHECK(on.lang == "en");
        CHECK(on.id == "7");

        auto const off = make_example(hi, tiny, ByteTokenizer{}, options(eos, false));
        CHECK(off.ids == ids);
        CHECK(off.labels == cat({masked(8), bytes("Yo"), {2}}));
    }
    Record with_input = hi;
    with_input.input = "x";
    auto const e = make_example(with_input, tiny, ByteTokenizer{}, options(EosPolicy::AlpacaLora, false));
    CHECK(e.ids == cat({{1}, bytes("Q:Hi\nI:x\nA:Yo"), {2}}));
    CHECK(e.labels == cat({masked(12), bytes("Yo"), {2}}));
}

TEST_CASE("alpaca-lora truncation: cut to the cutoff, EOS only when there is room") {
    auto const at = [](std::size_t cutoff, bool train_on_inputs = true) {
        return make_example(hi, tiny, ByteTokenizer{}, options(EosPolicy::AlpacaLora, train_on_inputs, cutoff));
    };
    auto const fits = at(11);
    CHECK(fits.ids == cat({{1}, bytes("Q:Hi\nA:Yo"), {2}}));
    CHECK_FALSE(fits.truncated);

    auto const no_room_for_eos = at(10);  // 10 tokens without EOS: alpaca-lora appends nothing
    CHECK(no_room_for_eos.ids == cat({{1}, bytes("Q:Hi\nA:Yo")}));
    CHECK(no_room_for_eos.truncated);
    CHECK(no_room_for_eos.full_length == 11);

    auto const cut = at(9, false);
    CHECK(cut.ids == cat({{1}, bytes("Q:Hi\nA:Y")}));
    CHECK(cut.labels == cat({masked(8), bytes("Y")}));
    CHECK(cut.truncated);

    auto const prompt_only = at(8, false);  // the user prompt alone fills the cutoff: nothing left to learn
    CHECK(prompt_only.ids == cat({{1}, bytes("Q:Hi\nA:")}));
    CHECK(prompt_only.labels == masked(8));

    auto const tiny_cutoff = at(3, false);  // the user prompt is truncated too: min(8, 3) tokens masked
    CHECK(tiny_cutoff.ids == cat({{1}, bytes("Q:")}));
    CHECK(tiny_cutoff.labels == masked(3));
}

TEST_CASE("stanford_alpaca truncation: EOS is the text's last token and is cut like the others") {
    auto const at = [](std::size_t cutoff) {
        return make_example(hi, tiny, ByteTokenizer{}, options(EosPolicy::StanfordAlpaca, false, cutoff));
    };
    CHECK(at(11).ids == cat({{1}, bytes("Q:Hi\nA:Yo"), {2}}));
    CHECK_FALSE(at(11).truncated);
    CHECK(at(10).ids == cat({{1}, bytes("Q:Hi\nA:Yo")}));
    CHECK(at(10).truncated);
    CHECK(at(10).full_length == 11);
    CHECK(at(9).labels == cat({masked(8), bytes("Y")}));
}

TEST_CASE("a tokenizer that appends EOS itself: the policies differ, special tokens survive truncation") {
    ByteTokenizer const bos_eos{.add_eos = true};
    // alpaca-lora: the ids already end in EOS, so none is appended; the user prompt is tokenised with its EOS too,
    // so one more token is masked than the prompt has (the reference code does the same).
    auto const lora = make_example(hi, tiny, bos_eos, options(EosPolicy::AlpacaLora, false));
    CHECK(lora.ids == cat({{1}, bytes("Q:Hi\nA:Yo"), {2}}));
    CHECK(lora.labels == cat({masked(9), bytes("o"), {2}}));
    CHECK(lora.full_length == 11);
    // stanford_alpaca: eos_token text then the tokenizer's own EOS.
    auto const stanford = make_example(hi, tiny, bos_eos, options(EosPolicy::StanfordAlpaca, false));
    CHECK(stanford.ids == cat({{1}, bytes("Q:Hi\nA:Yo"), {2, 2}}));
    CHECK(stanford.labels == cat({masked(9), bytes("o"), {2, 2}}));
    // HF truncation cuts the text and keeps BOS and the trailing EOS.
    for (auto eos : {EosPolicy::AlpacaLora, EosPolicy::StanfordAlpaca}) {
        auto const cut = make_example(hi, tiny, bos_eos, options(eos, true, 6));
        CHECK(cut.ids == cat({{1}, bytes("Q:Hi"), {2}}));
        CHECK(cut.truncated);
    }
    CHECK_THAT([&] {
        try {
            make_example(hi, tiny, bos_eos, options(EosPolicy::AlpacaLora, true, 1));
        } catch (Error const& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    }(), Contains("t.json:[0]: the cutoff of 1 tokens is less than the 2 special tokens"));
}

TEST_CASE("alpaca-lora appends no EOS to text that already ends in it; stanford_alpaca always adds one") {
    ByteTokenizer const bang_is_eos{.eos = std::int32_t('!') + 3};
    Record shout = hi;
    shout.output = "Yo!";
    auto const lora = make_example(shout, tiny, bang_is_eos, options(EosPolicy::AlpacaLora, true));
    CHECK(lora.ids == cat({{1}, bytes("Q:Hi\nA:Yo!")}));
    CHECK(lora.full_length == 11);
    auto const stanford = make_example(shout, tiny, bang_is_eos, options(EosPolicy::StanfordAlpaca, true));
    CHECK(stanford.ids == cat({{1}, bytes("Q:Hi\nA:Yo!!")}));
}

TEST_CASE("the built-in alpaca template: the mask covers BOS and every byte of the prompt") {
    auto const t = PromptTemplate::alpaca();
    auto const e = make_example(hi, t, ByteTokenizer{}, options(EosPolicy::AlpacaLora, false));
    auto const prompt = t.generate_prompt(hi);
    CHECK(prompt.ends_with("### Response:\n"));
    CHECK(e.ids == cat({{1}, bytes(prompt + "Yo"), {2}}));
    CHECK(e.labels == cat({masked(1 + prompt.size()), bytes("Yo"), {2}}));
}

TEST_CASE("make_examples: truncated examples are kept and reported, or dropped under the bad-record policy") {
    std::vector<Record> const records = {
        hi,
        Record{"en", "8", "Hi", "", std::string(30, 'y'), "t.json:[1]"},
        Record{"de", "9", "Hallo", "", "Ja", "t.json:[2]"},
    };
    auto opts = options(EosPolicy::AlpacaLora, true, 20);

    DataReport kept_report;
    auto const kept = make_examples(records, tiny, ByteTokenizer{}, opts, BadRecordPolicy::Fail, kept_report);
    REQUIRE(kept.size() == 3);
    CHECK(kept[1].truncated);
    CHECK(kept[1].ids.size() == 20);
    CHECK(kept[1].full_length == 1 + 7 + 30 + 1);
    CHECK(kept[2].lang == "de");
    CHECK(kept[2].ids == cat({{1}, bytes("Q:Hallo\nA:Ja"), {2}}));
    CHECK(kept_report.truncated() == std::vector<std::string>{"t.json:[1]"});
    CHECK(kept_report.skipped_count() == 0);

    opts.drop_over_length = true;
    DataReport skip_report;
    auto const dropped = make_examples(records, tiny, ByteTokenizer{}, opts, BadRecordPolicy::Skip, skip_report);
    REQUIRE(dropped.size() == 2);
    CHECK(dropped[1].id == "9");
    CHECK(skip_report.skipped_count(BadRecordReason::OverLength) == 1);
    CHECK(skip_report.skipped()[0].source == "t.json:[1]");
    CHECK(skip_report.skipped()[0].detail == "39 tokens with EOS, cutoff 20");
    CHECK(skip_report.truncated_count() == 0);

    DataReport fail_report;
    try {
        make_examples(records, tiny, ByteTokenizer{}, opts, BadRecordPolicy::Fail, fail_report);
        FAIL("an over-long example under Fail must throw");
    } catch (Error const& e) {
        CHECK_THAT(e.what(), Contains("t.json:[1]: longer than the cutoff: 39 tokens with EOS, cutoff 20"));
    }
}

TEST_CASE("a tokenizer's EOS may be optional; without one, examples cannot be made") {
    auto const e = make_example(hi, tiny, OptionalEosTokenizer{2}, options(EosPolicy::AlpacaLora, true));
    CHECK(e.ids.back() == 2);
    CHECK_THROWS_WITH(make_example(hi, tiny, OptionalEosTokenizer{}, options(EosPolicy::AlpacaLora, true)),
                      Contains("the tokenizer has no EOS token"));
}

TEST_CASE("special_layout_of finds the tokens a tokenizer puts around text") {
    auto const bos = special_layout_of(ByteTokenizer{});
    CHECK(bos.prefix == Ids{1});
    CHECK(bos.suffix.empty());
    auto const both = special_layout_of(ByteTokenizer{.add_eos = true});
    CHECK(both.prefix == Ids{1});
    CHECK(both.suffix == Ids{2});
}
