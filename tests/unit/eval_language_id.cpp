/// @file tests/unit/eval_language_id.cpp
/// @brief CLD2 language identification on real paragraphs (en, de, fr, es, ru, bg, zh, hi, fi, cs, no), "un" for
///        tiny strings, code normalisation, and the fidelity shares and confusion table built from it.

#include <map>
#include <string>

#include <catch2/catch.hpp>

#include "polyalpaca/eval/fidelity.hpp"

using namespace polyalpaca;

namespace {

/// One ordinary paragraph per language (written for this test; no copyrighted text).
std::map<std::string, std::string> const paragraphs = {
    {"en",
     "The city council met on Tuesday evening to discuss the new library. Most residents agreed that the old "
     "building was too small and that children needed a quiet place to read after school."},
    {"de",
     "Der Stadtrat traf sich am Dienstagabend, um über die neue Bibliothek zu sprechen. Die meisten Bewohner "
     "waren sich einig, dass das alte Gebäude zu klein ist und Kinder einen ruhigen Ort zum Lesen brauchen."},
    {"fr",
     "Le conseil municipal s'est réuni mardi soir pour discuter de la nouvelle bibliothèque. La plupart des "
     "habitants pensent que l'ancien bâtiment est trop petit et que les enfants ont besoin d'un endroit calme."},
    {"es",
     "El ayuntamiento se reunió el martes por la noche para hablar de la nueva biblioteca. La mayoría de los "
     "vecinos está de acuerdo en que el edificio antiguo es demasiado pequeño para los niños del barrio."},
    {"ru",
     "Городской совет собрался во вторник вечером, чтобы обсудить новую библиотеку. Большинство жителей "
     "согласились, что старое здание слишком маленькое и детям нужно тихое место для чтения после школы."},
    {"bg",
     "Общинският съвет се събра във вторник вечерта, за да обсъди новата библиотека. Повечето жители са "
     "съгласни, че старата сграда е твърде малка и че децата се нуждаят от тихо място за четене след училище."},
    {"zh",
     "市议会星期二晚上开会讨论新图书馆的建设。大多数居民都认为旧的建筑太小了，孩子们放学以后需要一个安静的地方读书。"
     "议员们决定明年春天开始施工。"},
    {"hi",
     "नगर परिषद ने मंगलवार शाम को नए पुस्तकालय पर चर्चा करने के लिए बैठक की। अधिकांश निवासी इस बात से सहमत थे कि "
     "पुरानी इमारत बहुत छोटी है और बच्चों को स्कूल के बाद पढ़ने के लिए एक शांत जगह की ज़रूरत है।"},
    {"fi",
     "Kaupunginvaltuusto kokoontui tiistai-iltana keskustelemaan uudesta kirjastosta. Useimmat asukkaat olivat "
     "sitä mieltä, että vanha rakennus on liian pieni ja lapset tarvitsevat rauhallisen paikan lukemiseen."},
    {"cs",
     "Městská rada se sešla v úterý večer, aby projednala novou knihovnu. Většina obyvatel souhlasila, že stará "
     "budova je příliš malá a že děti potřebují po škole klidné místo ke čtení."},
    {"no",
     "Bystyret møttes tirsdag kveld for å diskutere det nye biblioteket. De fleste innbyggerne var enige i at "
     "den gamle bygningen er altfor liten, og at barna trenger et rolig sted å lese etter skoletid."},
};

}  // namespace

TEST_CASE("CLD2 names the language of clear paragraphs", "[eval][language_id]") {
    for (auto const& [lang, text] : paragraphs) {
        auto const g = eval::identify_language(text);
        INFO(lang << ": detected " << g.code << " (CLD2 " << g.cld2_code << ", " << g.percent << "%, reliable "
                  << g.reliable << ", " << g.text_bytes << " bytes)");
        CHECK(g.code == lang);
        CHECK(g.reliable);
        CHECK(g.percent >= 80);
    }
}

TEST_CASE("tiny or empty strings are 'un'", "[eval][language_id]") {
    for (char const* s : {"", "ok", "42", "!!", "Hi.", "   \n"}) {
        INFO('"' << s << '"');
        CHECK(eval::identify_language(s).code == "un");
    }
    CHECK(eval::identify_language("\xC3\x28 invalid bytes").code == "un");
}

TEST_CASE("codes are normalised: Norwegian, Chinese scripts, old codes", "[eval][language_id]") {
    CHECK(eval::normalize_language_code("nb") == "no");
    CHECK(eval::normalize_language_code("nn") == "no");
    CHECK(eval::normalize_language_code("zh-Hant") == "zh");
    CHECK(eval::normalize_language_code("iw") == "he");
    CHECK(eval::normalize_language_code("bg") == "bg");
    CHECK(eval::same_language("nb", "no"));
    CHECK_FALSE(eval::same_language("da", "no"));
    auto const traditional = eval::identify_language(
        "市議會星期二晚上開會討論新圖書館的建設。大多數居民都認為舊的建築太小了，孩子們放學以後需要一個安靜的地方讀書"
        "。");
    CHECK(traditional.code == "zh");
}

TEST_CASE("fidelity: shares per prompt language and the confusion table", "[eval][fidelity]") {
    eval::Fidelity f;
    std::vector<eval::Response> rs;
    auto add = [&rs](std::string lang, std::string text) {
        eval::Response r;
        r.language = std::move(lang);
        r.response = std::move(text);
        rs.push_back(std::move(r));
    };
    add("de", paragraphs.at("de"));
    add("de", paragraphs.at("en"));  // answered in English
    add("de", "ja");                 // too short to tell
    add("fr", paragraphs.at("fr"));
    add("no", paragraphs.at("no"));
    f.add_all(rs);
    CHECK(f.total("de") == 3);
    CHECK(f.matches("de") == 1);
    CHECK(f.share("de") == Approx(1.0 / 3));
    CHECK(f.count("de", "en") == 1);
    CHECK(f.count("de", "un") == 1);
    CHECK(f.share("fr") == 1.0);
    CHECK(f.share("no") == 1.0);
    CHECK(f.share("xx") == 0.0);
    CHECK(f.detected_languages() == std::vector<std::string>{"de", "en", "fr", "no", "un"});
    auto const table = f.confusion_markdown();
    CHECK(table.find("| de | 1 | 1 | 0 | 0 | 1 | 1/3 |") != std::string::npos);
    CHECK(table.find("| no | 0 | 0 | 0 | 1 | 0 | 1/1 |") != std::string::npos);
}
