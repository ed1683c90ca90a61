// The LLM judge: prompt template and score parser, batch JSON Lines, and the HTTP client against a loopback
// HTTP/1.1 server this test runs on 127.0.0.1 (retries, backoff, Retry-After, timeouts, rate limit, resume).
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "polyalpaca/eval/judge_batch.hpp"
#include "polyalpaca/eval/judge_client.hpp"
#include "polyalpaca/eval/judge_prompt.hpp"
#include "polyalpaca/eval/judge_records.hpp"
#include "polyalpaca/eval/score_table.hpp"
#include "unit/loopback_http_server.hpp"

namespace pe = polyalpaca::eval;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using loopback::Clock;
using loopback::LoopbackServer;
using loopback::Reply;
using loopback::Request;

namespace {

Reply completion(std::string const& text) {
    nlohmann::json j = {{"id", "chatcmpl-1"}, {"object", "chat.completion"},
                        {"choices", {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", text}}},
                                      {"finish_reason", "stop"}}}}};
    return {200, j.dump(), {}, 0};
}
Reply error_reply(int status, std::string const& message, std::vector<std::string> headers = {}) {
    return {status, nlohmann::json{{"error", {{"message", message}, {"type", "test"}}}}.dump(), std::move(headers), 0};
}

/// The last message of a chat request: the filled template.
std::string user_content(Request const& r) { return r.json()["messages"].back()["content"].get<std::string>(); }

struct TempDir {
    fs::path path;
    explicit TempDir(std::string const& name)
        : path(fs::temp_directory_path() / ("polyalpaca_judge_" + name + "_" + std::to_string(::getpid()))) {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
};

pe::JudgeItem item(std::string run, std::string language, std::string id, std::string instruction,
                   std::string response = "Paris.") {
    return {std::move(run), std::move(language), std::move(id), std::move(instruction), "", std::move(response)};
}

std::vector<std::string> lines_of(fs::path const& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

pe::JudgeClientOptions options_for(LoopbackServer const& server) {
    pe::JudgeClientOptions o;
    o.base_url = server.base_url();
    o.model = "judge-model";
    o.api_key_env = "POLYALPACA_TEST_JUDGE_KEY";
    o.timeouts = {2.0, 5.0};
    o.backoff_initial_s = 0.01;
    o.backoff_max_s = 0.05;
    o.log = nullptr;
    return o;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

TEST_CASE("judge prompt: the built-in rubric fills every placeholder", "[eval][judge]") {
    auto const p = pe::JudgePrompt::builtin();
    CHECK(p.min_score == 1);
    CHECK(p.max_score == 5);
    pe::JudgeItem const it{"r", "de", "3", "Nenne die Hauptstadt von Frankreich.", "Kontext", "Paris."};
    std::string const user = p.fill_user(it);
    CHECK_THAT(user, Contains("Nenne die Hauptstadt von Frankreich."));
    CHECK_THAT(user, Contains("Kontext"));
    CHECK_THAT(user, Contains("[Answer]\nParis."));
    CHECK_THAT(user, Contains("German (language code de)"));
    CHECK(user.find('{') == std::string::npos);
    auto const m = p.messages(it);
    REQUIRE(m.size() == 2);
    CHECK(m[0]["role"] == "system");
    CHECK(m[1]["content"] == user);
    CHECK(pe::language_name("xx") == "xx");
}

TEST_CASE("judge prompt: score parser rules", "[eval][judge]") {
    auto const p = pe::JudgePrompt::builtin();
    auto score = [&](std::string const& s) { return p.parse_score(s); };
    CHECK(score("Score: 4") == 4.0);
    CHECK(score("Good answer.\n**Score:** 4.5") == 4.5);
    CHECK(score("score = 2") == 2.0);
    CHECK(score("Score: 2 at first, but on reflection...\nScore: 5") == 5.0);  // the last label
    CHECK_FALSE(score("Score: 7"));                                            // labelled, outside the scale
    CHECK_FALSE(score("Score: four"));
    CHECK(score("I rate it 4 out of 5") == 4.0);                               // no label: first in the scale
    CHECK(score("10 points? No: 3") == 3.0);                                   // 10 is outside the scale
    CHECK_FALSE(score("I cannot decide."));
    CHECK_FALSE(score(""));
    CHECK(score("Score: [3]") == 3.0);
    CHECK_FALSE(score("Highscore: 9 items, v2"));                              // "Highscore" is no label, v2 no number
}

TEST_CASE("judge prompt: text and JSON files, placeholders checked", "[eval][judge]") {
    TempDir dir("prompt");
    auto const text = dir.path / "prompt.txt";
    std::ofstream(text) << "---\nsystem: Grade {language} text.\nmin_score: 0\nmax_score: 10\n---\n"
                           "Q: {instruction}\nA: {response}\nJSON stays: {\"a\": 1} and {{literal}}";
    auto const p = pe::JudgePrompt::load(text);
    CHECK(p.min_score == 0);
    CHECK(p.max_score == 10);
    auto const it = item("r", "fr", "x", "Why?");
    CHECK(p.fill_system(it) == "Grade fr text.");
    CHECK(p.fill_user(it) == "Q: Why?\nA: Paris.\nJSON stays: {\"a\": 1} and {literal}");
    CHECK(p.parse_score("Score: 9") == 9.0);

    auto const json = dir.path / "prompt.json";
    std::ofstream(json) << R"({"template": "Rate {response} for {instruction}", "max_score": 3})";
    auto const q = pe::JudgePrompt::load(json);
    CHECK(q.max_score == 3);
    CHECK(q.system == pe::JudgePrompt::builtin().system);
    CHECK(q.fill_user(it) == "Rate Paris. for Why?");

    auto const bad = dir.path / "bad.txt";
    std::ofstream(bad) << "Rate {response} in {langauge}";
    CHECK_THROWS_WITH(pe::JudgePrompt::load(bad), Contains(bad.string()) && Contains("unknown placeholder {langauge}"));
    auto const bad_json = dir.path / "bad.json";
    std::ofstream(bad_json) << R"({"template": "{response}", "scale": 5})";
    CHECK_THROWS_WITH(pe::JudgePrompt::load(bad_json), Contains(bad_json.string()) && Contains("unknown key \"scale\""));
    std::ofstream(bad_json) << R"({"template": "{response}", "min_score": 5, "max_score": 5})";
    CHECK_THROWS_WITH(pe::JudgePrompt::load(bad_json), Contains("is empty"));
    auto const no_response = dir.path / "no_response.txt";
    std::ofstream(no_response) << "Rate {instruction}";
    CHECK_THROWS_WITH(pe::JudgePrompt::load(no_response), Contains("{response}"));
}

TEST_CASE("judge batch: custom ids round-trip, requests and outputs", "[eval][judge]") {
    for (auto const& [run, language, id] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"multi|bloom 560m", "de", "7"}, {"r%20", "zh", "%7C"}, {"ü run", "pt-BR", "a|b%c d\n"}, {"", "", ""}}) {
        std::string const custom_id = pe::batch_custom_id(run, language, id);
        CHECK(std::count(custom_id.begin(), custom_id.end(), '|') == 2);
        auto const s = pe::parse_batch_custom_id(custom_id);
        CHECK(s.run == run);
        CHECK(s.language == language);
        CHECK(s.id == id);
    }
    CHECK(pe::batch_custom_id("a|b", "c", "d") != pe::batch_custom_id("a", "b|c", "d"));
    CHECK_THROWS_WITH(pe::parse_batch_custom_id("only|two"), Contains("not run|language|id"));

    TempDir dir("batch");
    auto const prompt = pe::JudgePrompt::builtin();
    std::vector<pe::JudgeItem> const items{item("run a", "de", "1", "Frage eins"), item("run a", "de", "2", "Frage zwei"),
                                           item("run|b", "fi", "x", "Kysymys"), item("run|b", "fi", "y", "Toinen")};
    auto const requests = dir.path / "requests.jsonl";
    CHECK(pe::write_batch_requests(requests, items, prompt, "gpt-test", 0.0, 128) == 4);
    auto const lines = lines_of(requests);
    REQUIRE(lines.size() == 4);
    std::string output;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        auto const r = nlohmann::json::parse(lines[i]);
        CHECK(r["method"] == "POST");
        CHECK(r["url"] == "/v1/chat/completions");
        CHECK(r["body"]["model"] == "gpt-test");
        CHECK(r["body"]["max_tokens"] == 128);
        CHECK(r["body"]["temperature"] == 0.0);
        CHECK(r["body"]["messages"] == prompt.messages(items[i]));
        std::string const answers[] = {"Score: 5", "Fine. Score: 2", "no idea", ""};
        nlohmann::json out = {{"id", "batch_req_" + std::to_string(i)}, {"custom_id", r["custom_id"]}, {"error", nullptr}};
        if (i < 3) {
            out["response"] = {{"status_code", 200}, {"request_id", "req"},
                               {"body", nlohmann::json::parse(completion(answers[i]).body)}};
        } else {
            out["response"] = {{"status_code", 400}, {"body", {{"error", {{"message", "context too long"}}}}}};
        }
        output += out.dump() + "\n";
    }
    auto const output_path = dir.path / "output.jsonl";
    std::ofstream(output_path) << output;
    auto const back = pe::read_batch_output(output_path, prompt);
    REQUIRE(back.scores.size() == 3);
    CHECK(back.scores[0].run == "run a");
    CHECK(back.scores[0].id == "1");
    CHECK(back.scores[0].score == 5.0);
    CHECK(back.scores[1].score == 2.0);
    CHECK(back.scores[2].run == "run|b");
    CHECK(back.scores[2].id == "x");
    CHECK_FALSE(back.scores[2].score);
    CHECK(back.scores[2].raw == "no idea");
    REQUIRE(back.failures.size() == 1);
    CHECK_THAT(back.failures[0], Contains("HTTP 400: context too long"));
}

TEST_CASE("judge replies: a message without content or a status that is not a number is an error", "[eval][judge]") {
    // Found by fuzz/judge_reply_fuzzer: message["content"] on a const json with no "content" read past the map
    // (undefined behaviour), and a batch line whose status_code or error message has another type escaped as a
    // nlohmann::json::type_error.
    auto const no_content = nlohmann::json::parse(R"({"choices": [{"message": {"role": "assistant"}}]})");
    CHECK_THROWS_WITH(pe::chat_completion_text(no_content, "judge (http://x)"),
                      Contains("judge (http://x): the first choice's message has no \"content\""));
    auto const null_content = nlohmann::json::parse(R"({"choices": [{"message": {"content": null}}]})");
    CHECK(pe::chat_completion_text(null_content, "judge").empty());

    TempDir dir("reply_types");
    auto const path = dir.path / "output.jsonl";
    std::ofstream(path) << R"({"custom_id": "r|de|1", "response": {"status_code": "200", "body": {}}})"
                        << "\n";
    CHECK_THROWS_WITH(pe::read_batch_output(path, pe::JudgePrompt::builtin()),
                      Contains("output.jsonl:1: the response has no whole-number \"status_code\""));
    std::ofstream(path) << R"({"custom_id": "r|de|1", "response": {"status_code": 400, "body": )"
                        << R"({"error": {"message": 7}}}})"
                        << "\n";
    auto const failed = pe::read_batch_output(path, pe::JudgePrompt::builtin());
    REQUIRE(failed.failures.size() == 1);
    CHECK(failed.failures[0] == "r|de|1: HTTP 400");

    // A bad custom_id names the file and line, and quotes at most its first 60 bytes.
    std::ofstream(path) << R"({"custom_id": ")" << std::string(5000, 'x') << R"(", "response": {}})"
                        << "\n";
    CHECK_THROWS_WITH(pe::read_batch_output(path, pe::JudgePrompt::builtin()),
                      Contains("output.jsonl:1: custom_id '" + std::string(60, 'x') + "...' is not run|language|id"));
    // Found running fuzz/judge_reply_fuzzer on a hand-made input: an "error" nested deep overflowed the stack in
    // json::dump (32,000 levels under ASan, a million without). Every JSON Lines file the judge reads (items,
    // scores, batch output) now refuses lines nested deeper than 64.
    std::size_t const deep = 1'000'000;
    std::ofstream(path) << R"({"custom_id": "r|de|1", "error": )" << std::string(deep, '[') << std::string(deep, ']')
                        << "}\n";
    CHECK_THROWS_WITH(pe::read_batch_output(path, pe::JudgePrompt::builtin()),
                      Contains("output.jsonl:1: nested 1000001 deep; at most 64 levels are read"));
    std::ofstream(path) << R"({"custom_id": "r|de|%4", "response": {}})"
                        << "\n";
    CHECK_THROWS_WITH(pe::read_batch_output(path, pe::JudgePrompt::builtin()),
                      Contains("output.jsonl:1: custom_id 'r|de|%4': cut percent escape"));
}

TEST_CASE("judge client: the request carries the model, filled messages and the key", "[eval][judge]") {
    LoopbackServer server([](Request const&, std::size_t) { return completion("Clear and correct.\nScore: 4"); });
    auto const prompt = pe::JudgePrompt::builtin();
    auto const it = item("run", "es", "11", "¿Capital de Francia?", "París.");
    ::setenv("POLYALPACA_TEST_JUDGE_KEY", "sk-loopback-123", 1);
    {
        pe::JudgeClient client(options_for(server), prompt);
        CHECK(client.has_api_key());
        auto const s = client.judge(it);
        CHECK(s.score == 4.0);
        CHECK(s.raw == "Clear and correct.\nScore: 4");
    }
    ::unsetenv("POLYALPACA_TEST_JUDGE_KEY");
    {
        pe::JudgeClient client(options_for(server), prompt);
        CHECK_FALSE(client.has_api_key());
        CHECK(client.judge(it).score == 4.0);
    }
    auto const reqs = server.requests();
    REQUIRE(reqs.size() == 2);
    CHECK(reqs[0].method == "POST");
    CHECK(reqs[0].target == "/v1/chat/completions");
    CHECK(reqs[0].headers.at("authorization") == "Bearer sk-loopback-123");
    CHECK(reqs[0].headers.at("content-type") == "application/json");
    auto const body = reqs[0].json();
    CHECK(body["model"] == "judge-model");
    CHECK(body["messages"] == prompt.messages(it));
    CHECK(body["messages"][1]["content"] == prompt.fill_user(it));
    CHECK(body["temperature"] == 0.0);
    CHECK(body["max_tokens"] == 256);
    CHECK(reqs[1].headers.count("authorization") == 0);
}

TEST_CASE("judge client: 429 and 5xx are retried, Retry-After honoured", "[eval][judge]") {
    auto const prompt = pe::JudgePrompt::builtin();
    SECTION("429 with Retry-After: 0, then success") {
        LoopbackServer server([](Request const&, std::size_t i) {
            return i == 0 ? error_reply(429, "slow down", {"Retry-After: 0"}) : completion("Score: 3");
        });
        auto o = options_for(server);
        o.backoff_initial_s = 2.0;  // a backoff would take at least 1 s; Retry-After 0 means at once
        o.backoff_max_s = 2.0;
        pe::JudgeClient client(o, prompt);
        auto const t0 = Clock::now();
        CHECK(client.judge(item("r", "en", "1", "q")).score == 3.0);
        CHECK(seconds_since(t0) < 0.9);
        CHECK(server.count() == 2);
        CHECK(client.retries() == 1);
        CHECK(client.http_requests() == 2);
    }
    SECTION("500, then success, after a backoff") {
        LoopbackServer server([](Request const&, std::size_t i) {
            return i == 0 ? error_reply(500, "overloaded") : completion("Score: 2");
        });
        auto o = options_for(server);
        o.backoff_initial_s = 0.2;  // jitter keeps it within [0.1, 0.2)
        o.backoff_max_s = 1.0;
        pe::JudgeClient client(o, prompt);
        auto const t0 = Clock::now();
        CHECK(client.judge(item("r", "en", "1", "q")).score == 2.0);
        double const took = seconds_since(t0);
        CHECK(took >= 0.1);
        CHECK(took < 1.0);
        CHECK(server.count() == 2);
        CHECK(client.retries() == 1);
    }
    SECTION("5xx every time: gives up after max_retries") {
        LoopbackServer server([](Request const&, std::size_t) { return error_reply(503, "down for maintenance"); });
        auto o = options_for(server);
        o.max_retries = 3;
        pe::JudgeClient client(o, prompt);
        CHECK_THROWS_WITH(client.judge(item("r", "en", "1", "q")),
                          Contains("after 3 retries") && Contains("HTTP 503") && Contains("down for maintenance") &&
                              Contains(server.base_url()));
        CHECK(server.count() == 4);
    }
}

TEST_CASE("judge client: 401 fails at once with the server's message and no key in it", "[eval][judge]") {
    LoopbackServer server([](Request const&, std::size_t) { return error_reply(401, "Incorrect API key provided"); });
    auto const prompt = pe::JudgePrompt::builtin();
    ::setenv("POLYALPACA_TEST_JUDGE_KEY", "sk-secret-999", 1);
    {
        pe::JudgeClient client(options_for(server), prompt);
        try {
            client.judge(item("run7", "bg", "5", "q"));
            FAIL("a 401 must throw");
        } catch (polyalpaca::Error const& e) {
            std::string const what = e.what();
            CHECK_THAT(what, Contains("HTTP 401") && Contains("Incorrect API key provided") &&
                                 Contains(server.base_url() + "/chat/completions") && Contains("run 'run7'"));
            CHECK(what.find("sk-secret-999") == std::string::npos);
        }
    }
    ::unsetenv("POLYALPACA_TEST_JUDGE_KEY");
    pe::JudgeClient keyless(options_for(server), prompt);
    CHECK_THROWS_WITH(keyless.judge(item("r", "bg", "5", "q")), Contains("POLYALPACA_TEST_JUDGE_KEY is not set"));
    CHECK(server.count() == 2);  // no retries
}

TEST_CASE("judge client: a response slower than the timeout", "[eval][judge]") {
    LoopbackServer server([](Request const&, std::size_t i) {
        Reply r = completion("Score: 5");
        if (i == 0) r.delay_s = 3.0;
        return r;
    });
    auto o = options_for(server);
    o.timeouts = {1.0, 0.3};
    o.max_retries = 0;
    auto const prompt = pe::JudgePrompt::builtin();
    {
        pe::JudgeClient client(o, prompt);
        auto const t0 = Clock::now();
        CHECK_THROWS_WITH(client.judge(item("r", "en", "1", "q")),
                          Contains("timed out") && Contains(server.base_url()));
        CHECK(seconds_since(t0) < 1.5);
    }
    o.max_retries = 1;
    pe::JudgeClient client(o, prompt);
    CHECK(client.judge(item("r", "en", "1", "q")).score == 5.0);  // the second request is answered at once
    CHECK(server.count() == 2);
}

TEST_CASE("judge client: requests per minute space the requests", "[eval][judge]") {
    LoopbackServer server([](Request const&, std::size_t) { return completion("Score: 4"); });
    auto o = options_for(server);
    o.requests_per_minute = 600;  // one every 0.1 s
    pe::JudgeClient client(o, pe::JudgePrompt::builtin());
    for (int i = 0; i < 5; ++i) CHECK(client.judge(item("r", "en", std::to_string(i), "q")).score == 4.0);
    auto const reqs = server.requests();
    REQUIRE(reqs.size() == 5);
    for (std::size_t i = 1; i < reqs.size(); ++i) {
        double const gap = std::chrono::duration<double>(reqs[i].arrived - reqs[i - 1].arrived).count();
        CHECK(gap >= 0.09);
        CHECK(gap < 0.5);
    }
}

TEST_CASE("judge client: score_all resumes, re-asks unparsable scores, appends per line", "[eval][judge]") {
    TempDir dir("resume");
    auto const scores = dir.path / "scores.jsonl";
    std::vector<pe::JudgeItem> items;
    for (int i = 0; i < 6; ++i) items.push_back(item("run", i < 3 ? "de" : "fi", std::to_string(i), "question " + std::to_string(i)));
    // First run: question 1 gets an answer with no score; question 4 hits a 400 that stops the run.
    LoopbackServer server([](Request const& r, std::size_t) {
        std::string const q = user_content(r);
        if (q.find("question 1") != std::string::npos) return completion("I would rather not say.");
        if (q.find("question 4") != std::string::npos) return error_reply(400, "bad request for question 4");
        return completion("Score: 3");
    });
    pe::JudgeClient first(options_for(server), pe::JudgePrompt::builtin());
    CHECK_THROWS_WITH(first.score_all(items, scores), Contains("bad request for question 4"));
    CHECK(server.count() == 5);
    auto lines = lines_of(scores);
    REQUIRE(lines.size() == 4);  // questions 0..3, each on disk as it arrived
    auto const line1 = nlohmann::json::parse(lines[1]);
    CHECK(line1["score"].is_null());
    CHECK(line1["raw"] == "I would rather not say.");
    std::vector<std::string> keys;
    auto const line0 = nlohmann::ordered_json::parse(lines[0]);
    for (auto const& [key, value] : line0.items()) keys.push_back(key);
    CHECK(keys == std::vector<std::string>{"run", "language", "id", "score", "raw"});
    std::ofstream(scores, std::ios::app) << R"({"run": "run", "langu)";  // a write cut short by a kill

    // Second run: only the null one and the two never answered are sent.
    server.set_handler([](Request const&, std::size_t) { return completion("Score: 5"); });
    pe::JudgeClient second(options_for(server), pe::JudgePrompt::builtin());
    auto const summary = second.score_all(items, scores);
    CHECK(server.count() == 5 + 3);
    CHECK(summary.already_scored == 3);
    CHECK(summary.asked == 3);
    CHECK(summary.reasked == 1);
    CHECK(summary.unparsable == 0);
    auto const sent = server.requests();
    CHECK_THAT(user_content(sent[5]), Contains("question 1"));
    CHECK_THAT(user_content(sent[6]), Contains("question 4"));
    CHECK_THAT(user_content(sent[7]), Contains("question 5"));
    auto const back = pe::read_scores(scores);
    CHECK_FALSE(back.needs_compaction);  // one line per key again
    REQUIRE(back.scores.size() == 6);
    CHECK(lines_of(scores).size() == 6);
    CHECK(back.find(pe::judge_key("run", "de", "0"))->score == 3.0);
    CHECK(back.find(pe::judge_key("run", "de", "1"))->score == 5.0);
    CHECK(back.find(pe::judge_key("run", "fi", "4"))->score == 5.0);
    auto const table = pe::ScoreTable::read(scores);  // what the report reads
    CHECK(table.find("run", "de", "1") == 5.0);
    CHECK(table.find("run", "de", "2") == 3.0);

    // Third run: nothing left to ask.
    pe::JudgeClient third(options_for(server), pe::JudgePrompt::builtin());
    CHECK(third.score_all(items, scores).asked == 0);
    CHECK(server.count() == 8);
}

TEST_CASE("judge records: responses read with clear errors", "[eval][judge]") {
    TempDir dir("records");
    auto const path = dir.path / "responses.jsonl";
    std::ofstream(path) << R"({"run": "r", "language": "de", "id": "1", "instruction": "i", "input": "", "response": "a", "temperature": 0.7})"
                        << "\n\n"
                        << R"({"run": "r", "language": "en", "id": "1", "instruction": "i", "response": "b"})" << "\n";
    auto const items = pe::read_judge_items(path);
    REQUIRE(items.size() == 2);
    CHECK(items[1].input.empty());
    CHECK(pe::judge_key(items[0]) != pe::judge_key(items[1]));
    std::ofstream(path, std::ios::app) << R"({"run": "r", "language": "de", "id": "1", "instruction": "i", "response": "c"})" << "\n";
    CHECK_THROWS_WITH(pe::read_judge_items(path), Contains(path.string() + ":4") && Contains("already appeared at") &&
                                                      Contains(path.string() + ":1"));
    std::ofstream(path) << R"({"run": "r", "language": "de", "id": "1", "instruction": "i"})" << "\n";
    CHECK_THROWS_WITH(pe::read_judge_items(path), Contains(path.string() + ":1: no \"response\""));
    std::ofstream(path) << R"({"run": "r", "language": "de", "id": 1, "instruction": "i", "response": "a"})" << "\n";
    CHECK_THROWS_WITH(pe::read_judge_items(path), Contains(path.string() + ":1: \"id\" is not a string"));
}

TEST_CASE("judge pacing: every wait is capped at backoff_max_s, Retry-After included", "[eval][judge]") {
    CHECK(pe::judge_wait_s(100000.0, 0.7, 1.0) == 1.0);  // a server asking for a day waits --backoff-max
    CHECK(pe::judge_wait_s(0.5, 0.7, 1.0) == 0.5);       // a shorter Retry-After is obeyed
    CHECK(pe::judge_wait_s(0.0, 0.7, 1.0) == 0.0);
    CHECK(pe::judge_wait_s(std::nullopt, 0.7, 1.0) == 0.7);
    CHECK(pe::judge_wait_s(std::nullopt, 3.0, 1.0) == 1.0);

    // A live 429 asking for 3 s under --backoff-max 0.05: the retry comes at once and the log says why.
    LoopbackServer server([](Request const&, std::size_t i) {
        return i == 0 ? error_reply(429, "slow down", {"Retry-After: 3"}) : completion("Score: 4");
    });
    char* log_text = nullptr;
    std::size_t log_size = 0;
    std::FILE* log = ::open_memstream(&log_text, &log_size);
    REQUIRE(log != nullptr);
    auto o = options_for(server);
    o.log = log;
    {
        pe::JudgeClient client(o, pe::JudgePrompt::builtin());
        auto const t0 = Clock::now();
        CHECK(client.judge(item("r", "en", "1", "q")).score == 4.0);
        CHECK(seconds_since(t0) < 1.5);
        CHECK(client.retries() == 1);
    }
    std::fclose(log);
    std::string const logged(log_text, log_size);
    std::free(log_text);
    CHECK_THAT(logged, Contains("retry 1 of 5: server asked for 3 s; waiting 0.05 s (--backoff-max)"));
}

TEST_CASE("judge prompt: numbers with an exponent are read whole", "[eval][judge]") {
    auto const p = pe::JudgePrompt::builtin();
    auto score = [&](std::string const& s) { return p.parse_score(s); };
    CHECK_FALSE(score("Score: 1e308"));  // read "1" and stopped at 'e' before
    CHECK_FALSE(score("Score: 4e5"));
    CHECK(score("Score: 4E0") == 4.0);
    CHECK(score("Score: 3.5e+0") == 3.5);
    CHECK(score("Score: 40e-1") == 4.0);
    CHECK_FALSE(score("Score: 2.5e-1"));  // 0.25, below the scale
    CHECK_FALSE(score("Score: 1e999"));   // beyond double's range: no throw, outside the scale
    CHECK_FALSE(score("Score: 1e-999"));  // too small to tell from 0: outside a 1-5 scale
    CHECK(score("Score: 4e") == 4.0);     // no exponent digits: 4, then text
    CHECK(score("Score: 4e+") == 4.0);
    CHECK(score("Score: 4.") == 4.0);
    CHECK(score("Score: 4.e5") == 4.0);
    CHECK(score("Score: 4/5") == 4.0);
    CHECK(score("I rate it 4 out of 5") == 4.0);
    CHECK(score("1e308 points? No: 3") == 3.0);  // no label: 1e308 is outside the scale, 3 is the first inside
    pe::JudgePrompt ten = p;
    ten.min_score = 0;
    ten.max_score = 10;
    CHECK(ten.parse_score("Score: 2.5e-1") == 0.25);
    CHECK(ten.parse_score("Score: 1e-999") == 0.0);
    CHECK_FALSE(ten.parse_score("Score: 1e400"));
}

TEST_CASE("judge answers: scored whole, kept cut to judge_raw_max_bytes at a character boundary", "[eval][judge]") {
    CHECK(pe::judge_raw_excerpt("Score: 4") == "Score: 4");
    std::string const exact(pe::judge_raw_max_bytes, 'a');
    CHECK(pe::judge_raw_excerpt(exact) == exact);
    std::string accented = "a";  // "é" is two bytes: byte 4096 is the second byte of one
    for (int i = 0; i < 3000; ++i) accented += "\xc3\xa9";
    std::string const cut = pe::judge_raw_excerpt(accented);
    CHECK(cut == accented.substr(0, pe::judge_raw_max_bytes - 1) + "...");

    std::string const long_answer = std::string(3'000'000, 'x') + "\nScore: 4";  // the score only at the end
    LoopbackServer server([&](Request const&, std::size_t) { return completion(long_answer); });
    pe::JudgeClient client(options_for(server), pe::JudgePrompt::builtin());
    auto const s = client.judge(item("r", "en", "1", "q"));
    CHECK(s.score == 4.0);
    CHECK(s.raw == std::string(pe::judge_raw_max_bytes, 'x') + "...");

    TempDir dir("raw_cut");
    auto const path = dir.path / "output.jsonl";
    auto const body = nlohmann::json::parse(completion(long_answer).body);
    nlohmann::json const line = {{"custom_id", "r|de|1"}, {"error", nullptr},
                                 {"response", {{"status_code", 200}, {"body", body}}}};
    std::ofstream(path) << line.dump() << "\n";
    auto const back = pe::read_batch_output(path, pe::JudgePrompt::builtin());
    REQUIRE(back.scores.size() == 1);
    CHECK(back.scores[0].score == 4.0);
    CHECK(back.scores[0].raw == std::string(pe::judge_raw_max_bytes, 'x') + "...");
}

TEST_CASE("judge client: a reply body over http_max_body_bytes ends the request, without a retry", "[eval][judge]") {
    LoopbackServer server([](Request const&, std::size_t) {
        return Reply{200, std::string(pe::http_max_body_bytes + 1, ' '), {}, 0};
    });
    pe::JudgeClient client(options_for(server), pe::JudgePrompt::builtin());
    CHECK_THROWS_WITH(client.judge(item("r", "en", "1", "q")),
                      Contains(server.base_url()) && Contains("the reply exceeded 16777216 bytes"));
    CHECK(server.count() == 1);
}

TEST_CASE("judge options: every number is checked before any work, named by its option", "[eval][judge]") {
    pe::JudgeClientOptions fine;
    fine.model = "m";
    CHECK_NOTHROW(pe::check_judge_numbers(fine));
    auto with = [&](auto change) {
        auto o = fine;
        change(o);
        return o;
    };
    CHECK_THROWS_WITH(pe::check_judge_numbers(with([](auto& o) { o.requests_per_minute = -1; })),
                      Contains("--rpm must be a number from 0 to"));
    CHECK_THROWS_WITH(pe::check_judge_numbers(with([](auto& o) { o.timeouts.total_s = std::nan(""); })),
                      Contains("--timeout must be a number from"));
    CHECK_THROWS_WITH(pe::check_judge_numbers(with([](auto& o) { o.max_retries = -1; })),
                      Contains("--retries must be a whole number from 0 to 1000, got -1"));
    CHECK_THROWS_WITH(pe::check_judge_numbers(with([](auto& o) { o.backoff_max_s = 1e300; })),
                      Contains("--backoff-max must be a number from 0 to 86400"));
    CHECK_THROWS_WITH(pe::check_judge_numbers(with([](auto& o) { o.max_tokens = 0; })),
                      Contains("--max-tokens must be a whole number from 1"));
    CHECK_THROWS_WITH(pe::JudgeClient(with([](auto& o) { o.temperature = -1; }), pe::JudgePrompt::builtin()),
                      Contains("--temperature must be a number from 0 to 10, got -1"));
}
