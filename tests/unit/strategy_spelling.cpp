// Strategy: one spelling read by the trainers, the study file and the planner; bad spellings are sentences naming
// where they were found.
#include <polyalpaca/data/strategy.hpp>

#include <catch2/catch.hpp>

namespace pa = polyalpaca;

namespace {
std::string error_of(std::string const& text) {
    try {
        (void)pa::Strategy::parse(text, "--strategy");
    } catch (std::exception const& e) {
        return e.what();
    }
    return "";
}
}  // namespace

TEST_CASE("every strategy reads back from its spelling, with its tag and label", "[mixture][strategy]") {
    struct Case {
        char const* text;
        pa::Strategy::Kind kind;
        char const* tag;
        char const* label;
    };
    for (auto const& c : {Case{"monolingual", pa::Strategy::Kind::Monolingual, "monolingual", "monolingual"},
                          Case{"multilingual", pa::Strategy::Kind::Multilingual, "multilingual", "multilingual"},
                          Case{"downsampled", pa::Strategy::Kind::Downsampled, "downsampled", "downsampled"},
                          Case{"temperature:2", pa::Strategy::Kind::Temperature, "temperature2", "temperature 2"},
                          Case{"temperature:1.5", pa::Strategy::Kind::Temperature, "temperature1.5", "temperature 1.5"},
                          Case{"weighted:en=2,fr=1", pa::Strategy::Kind::Weighted, "weighted-en2-fr1",
                               "weighted:en=2,fr=1"}}) {
        INFO(c.text);
        auto const s = pa::Strategy::parse(c.text, "test");
        CHECK(s.kind == c.kind);
        CHECK(s.spelling() == c.text);
        CHECK(s.tag() == c.tag);
        CHECK(s.label() == c.label);
        CHECK(pa::Strategy::parse(s.spelling(), "test").spelling() == s.spelling());
    }
    auto const w = pa::Strategy::parse("weighted:zh=0.25,en=3", "test");
    CHECK(w.weighted_languages() == std::vector<std::string>{"zh", "en"});
    CHECK(w.weights[0].second == 0.25);
    CHECK(pa::Strategy::parse("temperature:2.0", "test").spelling() == "temperature:2");  // one spelling
}

TEST_CASE("bad strategy spellings are refused with the place and what is allowed", "[mixture][strategy]") {
    CHECK_THAT(error_of("temperature"), Catch::Contains("--strategy: unknown strategy \"temperature\"") &&
                                            Catch::Contains("temperature:T"));
    CHECK_THAT(error_of("temperature:hot"), Catch::Contains("the temperature \"hot\" is not a number"));
    CHECK_THAT(error_of("temperature:0.5"), Catch::Contains("the temperature must be at least 1"));
    CHECK_THAT(error_of("temperature:inf"), Catch::Contains("is not a number"));
    CHECK_THAT(error_of("temperature:2x"), Catch::Contains("is not a number"));
    CHECK_THAT(error_of("weighted:"), Catch::Contains("\"\" is not LANG=WEIGHT"));
    CHECK_THAT(error_of("weighted:en"), Catch::Contains("\"en\" is not LANG=WEIGHT"));
    CHECK_THAT(error_of("weighted:en=-1"), Catch::Contains("the weight of en must be positive"));
    CHECK_THAT(error_of("weighted:en=nan"), Catch::Contains("the weight of en \"nan\" is not a number"));
    CHECK_THAT(error_of("weighted:en=1,en=2"), Catch::Contains("en is weighted twice"));
    CHECK_THAT(error_of("Monolingual"), Catch::Contains("unknown strategy"));
}

TEST_CASE("make_mixture builds each strategy's mixture over the pools", "[mixture][strategy]") {
    auto pool = [](std::string const& lang, int n) {
        pa::LanguagePool p{lang, {}};
        for (int i = 0; i < n; ++i) p.examples.push_back({lang, std::to_string(i), 10, std::size_t(i)});
        return p;
    };
    std::vector<pa::LanguagePool> const pools{pool("en", 40), pool("fr", 10)};
    auto const multi = pa::make_mixture(pa::Strategy::parse("multilingual", "t"), pools, pa::SampleIds::Shared, 1);
    CHECK(multi.plan(0).size() == 50);
    auto const down = pa::make_mixture(pa::Strategy::parse("downsampled", "t"), pools, pa::SampleIds::Shared, 1);
    CHECK(down.plan(0).size() == 10);
    auto const mono = pa::make_mixture(pa::Strategy::parse("monolingual", "t"), {pools[1]}, pa::SampleIds::Shared, 1);
    CHECK(mono.plan(0).size() == 10);
    CHECK_THROWS_WITH(pa::make_mixture(pa::Strategy::parse("monolingual", "t"), pools, pa::SampleIds::Shared, 1),
                      Catch::Contains("trains on one language; 2 were given"));
    auto const temp = pa::make_mixture(pa::Strategy::parse("temperature:1", "t"), pools, pa::SampleIds::Shared, 1);
    CHECK(temp.plan(0).size() == 50);
    auto const weighted =
        pa::make_mixture(pa::Strategy::parse("weighted:en=1,fr=1", "t"), pools, pa::SampleIds::Shared, 1);
    CHECK(weighted.shares().size() == 2);
}
