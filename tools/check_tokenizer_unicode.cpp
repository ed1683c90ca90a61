// tools/check_tokenizer_unicode.cpp: the comparing half of tools/check_tokenizer_unicode.py. Reads the case sets
// that script wrote (texts; per normalizer HF's normalize_str, per pre-tokenizer HF's pre_tokenize_str, per pair the
// pieces of a whole encode) and runs the same components from include/polyalpaca/tokenizer/.
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/tokenizer/added_vocabulary.hpp"
#include "polyalpaca/tokenizer/hf_json_components.hpp"

using nlohmann::json;
using namespace polyalpaca::tokenizer;

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: check_tokenizer_unicode CASES.json\n";
        return 2;
    }
    std::ifstream in(argv[1]);
    auto const sets = json::parse(in);
    std::size_t checks = 0, mismatches = 0;
    auto compare = [&](json const& want, json const& got, std::string const& what, std::string const& text) {
        ++checks;
        if (want == got) return;
        if (++mismatches > 20) return;
        auto const a = want.dump(-1, ' ', true), b = got.dump(-1, ' ', true);  // ASCII, the rest escaped
        std::size_t at = 0;
        while (at < a.size() && at < b.size() && a[at] == b[at]) ++at;
        auto const from = at > 60 ? at - 60 : 0;
        std::cout << what.substr(0, 160) << "\n  text " << json(text).dump(-1, ' ', true).substr(0, 200)
                  << "\n  first difference at byte " << at << " of the JSON:\n  HF   ..." << a.substr(from, 160)
                  << "\n  here ..." << b.substr(from, 160) << "\n";
    };
    auto texts_of = [](Pieces const& pieces) {
        std::vector<std::string> out;
        for (auto const& p : pieces) out.push_back(p.text);
        return out;
    };
    for (auto const& set : sets) {
        auto const texts = set["texts"].get<std::vector<std::string>>();
        auto const wrap = set.value("wrap", std::string());
        for (auto const& e : set["normalizers"]) {
            auto const n = hf_json::normalizer(JsonAt(e["json"], "$", "normalizer"));
            for (std::size_t i = 0; i < texts.size(); ++i)
                compare(e["normalized"][i], n->normalized(texts[i]), e["json"].dump(), texts[i]);
        }
        for (auto const& e : set["pre_tokenizers"]) {
            auto const p = hf_json::pre_tokenizer(JsonAt(e["json"], "$", "pre_tokenizer"));
            for (std::size_t i = 0; i < texts.size(); ++i) {
                auto const text = wrap + texts[i] + wrap;
                Pieces pieces{{text, -1, true}};
                if (text.empty()) pieces.clear();
                p->pre_tokenize(pieces);
                compare(e["pieces"][i], texts_of(pieces), e["json"].dump(), text);
            }
        }
        for (auto const& e : set.value("pipelines", json::array())) {
            auto const n = hf_json::normalizer(JsonAt(e["normalizer"], "$", "normalizer"));
            auto const p = hf_json::pre_tokenizer(JsonAt(e["pre_tokenizer"], "$", "pre_tokenizer"));
            for (std::size_t i = 0; i < texts.size(); ++i) {
                auto pieces = AddedVocabulary().split(texts[i], n.get());
                p->pre_tokenize(pieces);
                compare(e["pieces"][i], texts_of(pieces), e["normalizer"].dump() + " + " + e["pre_tokenizer"].dump(),
                        texts[i]);
            }
        }
        std::cout << set["name"].get<std::string>() << ": " << checks << " checks so far, " << mismatches
                  << " mismatches\n";
    }
    std::cout << checks << " checked, " << mismatches << " mismatches\n";
    return mismatches == 0 ? 0 : 1;
}
