// polyalpaca_judge: scores responses with an LLM judge behind any OpenAI-compatible chat-completions endpoint
// (OpenAI, vLLM, llama.cpp server), resuming from the scores file; or writes OpenAI Batch API requests and reads the
// batch's output back into the same scores file. See docs/judge.md.
#include <polyalpaca/eval/judge_batch.hpp>
#include <polyalpaca/eval/judge_client.hpp>
#include <polyalpaca/eval/judge_prompt.hpp>
#include <polyalpaca/eval/judge_records.hpp>

#include <boost/program_options.hpp>

#include <cstdio>
#include <iostream>
#include <string>
#include <unordered_set>
#include <vector>

namespace pa = polyalpaca;
namespace pe = polyalpaca::eval;
namespace po = boost::program_options;

namespace {

/// Responses of every file, in order; a (run, language, id) in two files is an error.
std::vector<pe::JudgeItem> read_all(std::vector<std::string> const& files) {
    std::vector<pe::JudgeItem> items;
    std::unordered_set<std::string> seen;
    for (auto const& file : files) {
        for (auto& item : pe::read_judge_items(file)) {
            pa::require(seen.insert(pe::judge_key(item)).second, file, ": ",
                        pe::describe_key(item.run, item.language, item.id), " is also in an earlier --responses file");
            items.push_back(std::move(item));
        }
    }
    return items;
}

}  // namespace

int main(int argc, char** argv) try {
    pe::JudgeClientOptions o;
    std::vector<std::string> responses;
    std::string scores, prompt_file, write_batch, read_batch;
    po::options_description desc(
        "polyalpaca_judge: scores model responses (JSON Lines) with an LLM judge and appends one line per response "
        "to the scores file; a rerun asks only what has no score yet.\nOptions");
    desc.add_options()("help,h", "show this help")(
        "responses", po::value(&responses)->multitoken()->required(), "responses JSON Lines file(s)")(
        "scores", po::value(&scores)->required(), "scores JSON Lines file (created, or resumed)")(
        "base-url", po::value(&o.base_url)->default_value(o.base_url),
        "OpenAI-compatible API base; requests go to BASE/chat/completions (vLLM: http://127.0.0.1:8000/v1)")(
        "model", po::value(&o.model), "judge model name sent in each request (required unless --read-batch-output)")(
        "api-key-env", po::value(&o.api_key_env)->default_value(o.api_key_env),
        "environment variable holding the API key; unset: no Authorization header (local servers)")(
        "rpm", po::value(&o.requests_per_minute)->default_value(0), "at most this many requests per minute (0: no limit)")(
        "timeout", po::value(&o.timeouts.total_s)->default_value(o.timeouts.total_s), "seconds per request")(
        "connect-timeout", po::value(&o.timeouts.connect_s)->default_value(o.timeouts.connect_s),
        "seconds to open a connection")(
        "retries", po::value(&o.max_retries)->default_value(o.max_retries),
        "retries of a request after 429, 5xx, a timeout or a network error")(
        "backoff", po::value(&o.backoff_initial_s)->default_value(o.backoff_initial_s),
        "first backoff in seconds (doubles per retry, jittered, at most --backoff-max)")(
        "backoff-max", po::value(&o.backoff_max_s)->default_value(o.backoff_max_s),
        "longest wait before a retry in seconds, also when the server's Retry-After asks for longer")(
        "temperature", po::value(&o.temperature)->default_value(o.temperature), "judge sampling temperature")(
        "max-tokens", po::value(&o.max_tokens)->default_value(o.max_tokens), "judge answer length limit")(
        "keep-unparsable", po::bool_switch(), "do not ask again for responses whose score is null")(
        "prompt", po::value(&prompt_file), "judge prompt file (.json, or a text template); default: built-in 1-5 rubric")(
        "write-batch", po::value(&write_batch),
        "write OpenAI Batch API requests for the responses with no score to this file, and send nothing")(
        "read-batch-output", po::value(&read_batch),
        "read an OpenAI batch output file and merge its scores into --scores, and send nothing");
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
        std::cout << desc << "\n";
        return 0;
    }
    po::notify(vm);
    o.reask_unparsable = !vm["keep-unparsable"].as<bool>();
    pe::check_judge_numbers(o);  // before any file is read
    pa::require(write_batch.empty() || read_batch.empty(), "--write-batch and --read-batch-output exclude each other");
    pa::require(!o.model.empty() || !read_batch.empty(), "--model is required (the judge model's name)");

    pe::JudgePrompt const prompt = prompt_file.empty() ? pe::JudgePrompt::builtin() : pe::JudgePrompt::load(prompt_file);
    std::vector<pe::JudgeItem> const items = read_all(responses);

    if (!read_batch.empty()) {
        pe::ScoresFile file = pe::read_scores(scores);
        std::unordered_set<std::string> wanted;
        for (auto const& item : items) wanted.insert(pe::judge_key(item));
        auto const out = pe::read_batch_output(read_batch, prompt);
        std::size_t merged = 0, unparsable = 0, unknown = 0;
        for (auto const& s : out.scores) {
            if (!wanted.count(pe::judge_key(s))) {
                ++unknown;
                continue;
            }
            unparsable += s.score ? 0 : 1;
            file.put(s);
            ++merged;
        }
        pe::write_scores(scores, file);
        for (auto const& f : out.failures) std::fprintf(stderr, "polyalpaca_judge: failed in the batch: %s\n", f.c_str());
        std::printf("merged %zu scores (%zu without a parsable score) into %s; %zu failed requests; %zu lines for "
                    "responses not given by --responses were skipped\n",
                    merged, unparsable, scores.c_str(), out.failures.size(), unknown);
        return 0;
    }

    if (!write_batch.empty()) {
        pe::ScoresFile const file = pe::read_scores(scores);
        std::vector<pe::JudgeItem> todo;
        for (auto const& item : items) {
            pe::JudgeScore const* known = file.find(pe::judge_key(item));
            if (!known || (!known->score && o.reask_unparsable)) todo.push_back(item);
        }
        pe::write_batch_requests(write_batch, todo, prompt, o.model, o.temperature, o.max_tokens);
        std::printf("wrote %zu batch requests to %s (%zu of %zu responses already scored)\n", todo.size(),
                    write_batch.c_str(), items.size() - todo.size(), items.size());
        return 0;
    }

    pe::JudgeClient client(o, prompt);
    client.score_all(items, scores);
    return 0;
} catch (std::exception const& e) {
    std::fprintf(stderr, "polyalpaca_judge: %s\n", e.what());
    return 2;
}
