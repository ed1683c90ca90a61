/// @file eval/judge_client.hpp
/// @brief The judge over HTTP: asks any OpenAI-compatible chat-completions endpoint to score responses, with
/// retries, backoff, a rate limit, and a scores file that a rerun resumes.
///
/// Behaviour:
/// - URL: base_url + "/chat/completions" (base_url like "https://api.openai.com/v1" or "http://127.0.0.1:8000/v1").
/// - API key: read from the environment variable `api_key_env` when the client is made; sent as
///   "Authorization: Bearer ..."; when the variable is unset or empty no Authorization header is sent (local servers).
/// - Retried: HTTP 429, 5xx, timeouts and network failures, up to max_retries times. The wait is the server's
///   Retry-After (or retry-after-ms) when it sends one, else exponential backoff with jitter (judge_pacing.hpp);
///   either is capped at backoff_max_s, and the log says when the server asked for longer.
///   Any other status is an error at once, carrying the server's error message.
/// - Replies: the score is parsed from the whole answer; `raw` keeps its first judge_raw_max_bytes.
/// - Rate limit: request starts (retries included) at least 60 / requests_per_minute seconds apart.
/// - score_all: keys with a numeric score in the scores file are skipped; keys whose score is null (no parsable
///   score) are asked again unless reask_unparsable is false. Each new score line is appended and synced as soon as
///   its answer arrives (a score asked again replaces its line: the file is rewritten atomically), so a killed run
///   loses at most the request in flight (requests go one at a time) and the file keeps one line per key.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/value_checks.hpp"
#include "polyalpaca/eval/http_client.hpp"
#include "polyalpaca/eval/judge_batch.hpp"
#include "polyalpaca/eval/judge_pacing.hpp"
#include "polyalpaca/eval/judge_prompt.hpp"
#include "polyalpaca/eval/judge_records.hpp"

namespace polyalpaca::eval {

struct JudgeClientOptions {
    std::string base_url = "https://api.openai.com/v1";
    std::string model;                          // required
    std::string api_key_env = "OPENAI_API_KEY";
    double temperature = 0;
    int max_tokens = 256;
    HttpTimeouts timeouts{};
    int max_retries = 5;
    double backoff_initial_s = 1;
    double backoff_max_s = 60;                  // longest wait before a retry, the server's Retry-After included
    double requests_per_minute = 0;             // <= 0: no limit
    bool reask_unparsable = true;
    std::uint64_t jitter_seed = 0x6a75646765;
    std::FILE* log = stderr;                    // progress and summary; nullptr: quiet
};

/// What one score_all call did.
struct JudgeSummary {
    std::size_t responses = 0;       // items given
    std::size_t already_scored = 0;  // skipped: a numeric score was on file
    std::size_t asked = 0;           // answered by the judge in this call
    std::size_t reasked = 0;         // of `asked`: had a null score on file
    std::size_t unparsable = 0;      // of `asked`: no parsable score in the answer
    std::size_t http_requests = 0;   // attempts, retries included
    std::size_t retries = 0;
    double seconds = 0;
    double score_sum = 0;            // over this call's parsed scores
};

/// Every number of the options in its range, named by its polyalpaca_judge option (core/value_checks.hpp).
inline void check_judge_numbers(JudgeClientOptions const& o) {
    constexpr double day = 86400;
    require_number_in("--rpm", o.requests_per_minute, 0, 1e6);
    require_number_in("--timeout", o.timeouts.total_s, 1e-3, day);
    require_number_in("--connect-timeout", o.timeouts.connect_s, 1e-3, day);
    require_count_in("--retries", std::int64_t(o.max_retries), 0, 1000);
    require_number_in("--backoff", o.backoff_initial_s, 0, day);
    require_number_in("--backoff-max", o.backoff_max_s, 0, day);
    require_number_in("--temperature", o.temperature, 0, 10);
    require_count_in("--max-tokens", std::int64_t(o.max_tokens), 1, 1 << 20);
}

class JudgeClient {
public:
    JudgeClient(JudgeClientOptions options, JudgePrompt prompt)
        : options_(std::move(options)), prompt_(std::move(prompt)), limiter_(options_.requests_per_minute),
          backoff_(options_.backoff_initial_s, options_.backoff_max_s, options_.jitter_seed) {
        require(!options_.model.empty(), "the judge needs a model name (the \"model\" of each request)");
        check_judge_numbers(options_);
        std::string base = options_.base_url;
        while (!base.empty() && base.back() == '/') base.pop_back();
        require(!base.empty(), "the judge needs a base URL");
        url_ = base + "/chat/completions";
        if (!options_.api_key_env.empty())
            if (char const* key = std::getenv(options_.api_key_env.c_str()); key != nullptr) api_key_ = key;
    }

    std::string const& url() const { return url_; }
    bool has_api_key() const { return !api_key_.empty(); }
    JudgePrompt const& prompt() const { return prompt_; }
    std::size_t http_requests() const { return http_requests_; }
    std::size_t retries() const { return retries_; }

    /// The judge's answer text for one item; throws Error when the request fails for good.
    std::string ask(JudgeItem const& item) {
        std::string const body = chat_request_body(prompt_, item, options_.model, options_.temperature,
                                                   options_.max_tokens)
                                     .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        std::vector<std::string> headers;
        if (!api_key_.empty()) headers.push_back("Authorization: Bearer " + api_key_);
        auto const what = [&] { return detail::concat("judge request for ", describe_key(item.run, item.language, item.id)); };
        for (int retry = 0;; ++retry) {
            limiter_.wait();
            ++http_requests_;
            HttpResponse const response = http_.post_json(url_, body, headers, options_.timeouts);
            if (response.ok()) {
                auto const completion = nlohmann::json::parse(response.body, nullptr, false);
                require(completion.is_object(), what(), ": ", url_, " answered HTTP ", response.status,
                        " with a body that is not a JSON object: ", excerpt(response.body));
                return chat_completion_text(completion, detail::concat(what(), " (", url_, ")"));
            }
            std::string const why = response.transport_error.empty()
                                        ? detail::concat("HTTP ", response.status, " from ", url_, ": ",
                                                         server_message(response.body))
                                        : response.transport_error;
            bool const retryable = response.transport_error.empty()
                                       ? response.status == 429 || response.status >= 500
                                       : response.retryable_transport;
            if (!retryable) {
                std::string hint;
                if ((response.status == 401 || response.status == 403) && api_key_.empty())
                    hint = detail::concat(" (no API key was sent: environment variable ",
                                          options_.api_key_env.empty() ? "(none)" : options_.api_key_env,
                                          " is not set)");
                fail(what(), " failed: ", why, hint);
            }
            if (retry >= options_.max_retries)
                fail(what(), " failed after ", retry, " retries: ", why);
            std::optional<double> const asked = retry_after_s(response);
            double const wait = judge_wait_s(asked, backoff_.delay_s(retry), options_.backoff_max_s);
            ++retries_;
            if (options_.log && asked && *asked > wait)
                std::fprintf(options_.log, "%sjudge: %s; retry %d of %d: server asked for %g s; waiting %.2f s "
                             "(--backoff-max)\n", tty() ? "\r\033[K" : "", why.c_str(), retry + 1,
                             options_.max_retries, *asked, wait);
            else if (options_.log)
                std::fprintf(options_.log, "%sjudge: %s; retry %d of %d in %.2f s\n", tty() ? "\r\033[K" : "",
                             why.c_str(), retry + 1, options_.max_retries, wait);
            sleep_for_s(wait);
        }
    }

    /// Asks the judge and parses the score from the whole answer; `raw` keeps at most judge_raw_max_bytes of it.
    JudgeScore judge(JudgeItem const& item) {
        std::string const answer = ask(item);
        return JudgeScore{item.run, item.language, item.id, prompt_.parse_score(answer), judge_raw_excerpt(answer)};
    }

    /// Scores every item that has no numeric score in `scores_path` yet, appending each line as it arrives.
    JudgeSummary score_all(std::vector<JudgeItem> const& items, std::filesystem::path const& scores_path) {
        auto const start = JudgeClock::now();
        JudgeSummary summary;
        summary.responses = items.size();
        std::size_t const requests_before = http_requests_, retries_before = retries_;
        ScoresFile on_file = read_scores(scores_path);
        if (on_file.needs_compaction) write_scores(scores_path, on_file);

        std::vector<JudgeItem const*> todo;
        std::vector<bool> was_null;
        for (auto const& item : items) {
            JudgeScore const* known = on_file.find(judge_key(item));
            if (known && (known->score || !options_.reask_unparsable)) {
                ++summary.already_scored;
                continue;
            }
            todo.push_back(&item);
            was_null.push_back(known != nullptr);
        }
        if (options_.log)
            std::fprintf(options_.log, "judge: %zu responses, %zu already scored, %zu to ask %s (model %s)\n",
                         items.size(), summary.already_scored, todo.size(), url_.c_str(), options_.model.c_str());

        std::optional<ScoresAppender> out;
        for (std::size_t i = 0; i < todo.size(); ++i) {
            JudgeScore s = judge(*todo[i]);
            ++summary.asked;
            if (!s.score) ++summary.unparsable;
            else summary.score_sum += *s.score;
            if (was_null[i]) {  // replace its line: rewrite the file, then append to the new one
                ++summary.reasked;
                on_file.put(std::move(s));
                write_scores(scores_path, on_file);
                out.reset();
            } else {
                if (!out) out.emplace(scores_path);
                out->append(s);
                on_file.put(std::move(s));
            }
            progress(i + 1, todo.size(), seconds_since(start), retries_ - retries_before);
        }
        summary.http_requests = http_requests_ - requests_before;
        summary.retries = retries_ - retries_before;
        summary.seconds = seconds_since(start);
        if (options_.log) print_summary(summary, scores_path);
        return summary;
    }

private:
    static double seconds_since(JudgeClock::time_point start) {
        return std::chrono::duration<double>(JudgeClock::now() - start).count();
    }
    static std::string excerpt(std::string const& text, std::size_t max_bytes = 300) {
        return text.size() <= max_bytes ? text : text.substr(0, max_bytes) + "...";
    }
    /// The "error.message" of an OpenAI-style error body, else the start of the body.
    static std::string server_message(std::string const& body) {
        auto const j = nlohmann::json::parse(body, nullptr, false);
        if (j.is_object() && j.contains("error")) {
            auto const& e = j["error"];
            if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
            if (e.is_string()) return e.get<std::string>();
        }
        if (j.is_object() && j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
        return body.empty() ? std::string("(empty body)") : excerpt(body);
    }
    bool tty() const { return options_.log && isatty(fileno(options_.log)) != 0; }
    static std::string clock_text(double seconds) {
        long const s = long(seconds + 0.5);
        char buf[32];
        std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
        return buf;
    }

    /// On a terminal one line redrawn in place; in a log about fifty lines per run.
    void progress(std::size_t done, std::size_t total, double elapsed, std::size_t retries) const {
        if (!options_.log) return;
        bool const tty_out = tty();
        std::size_t const every = std::max<std::size_t>(1, total / 50);
        if (!tty_out && done % every != 0 && done != total) return;
        double const rate = elapsed > 0 ? double(done) / elapsed : 0.0;
        double const eta = rate > 0 ? double(total - done) / rate : 0.0;
        std::fprintf(options_.log, "%sjudge %zu/%zu | %.2f req/s | ETA %s | retries %zu%s", tty_out ? "\r\033[K" : "",
                     done, total, rate, clock_text(eta).c_str(), retries, tty_out ? "" : "\n");
        if (tty_out && done == total) std::fputc('\n', options_.log);
        std::fflush(options_.log);
    }

    void print_summary(JudgeSummary const& s, std::filesystem::path const& scores_path) const {
        std::size_t const scored = s.asked - s.unparsable;
        std::fprintf(options_.log,
                     "judge: %zu responses: %zu already scored, %zu judged now (%zu asked again after no score) in %s "
                     "(%.2f/s); %zu without a parsable score; %zu HTTP requests, %zu retries",
                     s.responses, s.already_scored, s.asked, s.reasked, clock_text(s.seconds).c_str(),
                     s.seconds > 0 ? double(s.asked) / s.seconds : 0.0, s.unparsable, s.http_requests, s.retries);
        if (scored > 0) std::fprintf(options_.log, "; mean of the %zu new scores %.3f", scored, s.score_sum / double(scored));
        std::fprintf(options_.log, "; scores in %s\n", scores_path.string().c_str());
        std::fflush(options_.log);
    }

    JudgeClientOptions options_;
    JudgePrompt prompt_;
    std::string url_;
    std::string api_key_;
    HttpClient http_;
    RateLimiter limiter_;
    Backoff backoff_;
    std::size_t http_requests_ = 0;
    std::size_t retries_ = 0;
};

}  // namespace polyalpaca::eval
