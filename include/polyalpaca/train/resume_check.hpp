/// @file train/resume_check.hpp
/// @brief What defines a trainer's run (the options whose change would make a resumed run another run), as recorded
///        in run_config.json's "options", and the comparison a resume makes against that record before any work.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/io/safetensors_checkpoint.hpp"
#include "polyalpaca/train/program_options.hpp"

namespace polyalpaca {

/// The options of `c` that decide what a run computes: its model, data, strategy, budget, optimizer and seeds.
/// Left out are those that only decide how or where it runs or what it writes (threads, --micro-batch within the
/// same --global-batch, --gemm-math, --attention, --zero1, --eval-every, --keep-last, --save-dtype, --merge).
/// Keys are the command-line spellings; paths are absolute, so a resume from another directory compares equal.
inline nlohmann::json defining_options(TrainerCommandLine const& c, bool adapter) {
    auto absolute = [](std::filesystem::path const& p) {
        return p.empty() ? std::string() : std::filesystem::absolute(p).lexically_normal().string();
    };
    nlohmann::json data = nlohmann::json::array();
    for (auto const& d : c.data) {
        auto const eq = d.find('=');
        data.push_back(eq == std::string::npos ? d : d.substr(0, eq + 1) + absolute(d.substr(eq + 1)));
    }
    nlohmann::json o{{"model-dir", absolute(c.model_dir)},
                     {"tokenizer", absolute(c.tokenizer)},
                     {"data", data},
                     {"languages", c.languages},
                     {"strategy", c.strategy},
                     {"sample-ids", c.sample_ids},
                     {"template", c.prompt_template},
                     {"eos", c.eos},
                     {"cutoff", c.cutoff},
                     {"train-on-inputs", c.train_on_inputs},
                     {"bad-records", c.bad_records},
                     {"val-size", c.val_size},
                     {"val-seed", c.val_seed},
                     {"seed", c.seed},
                     {"group-by-length", c.group_by_length},
                     {"global-batch", c.global_batch},
                     {"epochs", c.epochs},
                     {"budget-records", c.budget_records},
                     {"budget-tokens", c.budget_tokens},
                     {"budget-flops", c.budget_flops},
                     {"schedule", c.schedule},
                     {"lr", c.lr},
                     {"warmup-steps", c.warmup_steps},
                     {"warmup-ratio", c.warmup_ratio},
                     {"weight-decay", c.weight_decay},
                     {"max-grad-norm", c.max_grad_norm}};
    if (adapter) o["lora-dropout"] = c.lora_dropout;
    return o;
}

/// One line per option whose value in `now` differs from `recorded` (both defining_options), e.g.
/// "--lr 0.0003 when the run started, 0.001 now"; an option the record lacks (an older trainer's) is not compared.
inline std::vector<std::string> changed_options(nlohmann::json const& recorded, nlohmann::json const& now) {
    std::vector<std::string> changes;
    for (auto const& [key, value] : now.items()) {
        if (!recorded.contains(key) || recorded.at(key) == value) continue;
        changes.push_back("--" + key + " " + recorded.at(key).dump() + " when the run started, " + value.dump() +
                          " now");
    }
    return changes;
}

/// What a resume carries into the new run_config.json: the changes it was allowed to make, and the record of every
/// resume's changes so far ("changed_on_resume": null when there never were any).
struct ResumeCheck {
    std::vector<std::string> changes;
    nlohmann::json changed_on_resume;
};

/// Before a trainer resumes the run in output_dir from `checkpoint` (its newest, of step `step`): the options that
/// define the run must be those run_config.json recorded, or the resume is refused naming each change, unless
/// `allow_changes`. A run_config.json that is not JSON is refused too; one without "options" (an older trainer's)
/// has nothing to compare.
inline ResumeCheck check_resume_options(std::filesystem::path const& output_dir, long step,
                                        std::filesystem::path const& checkpoint, nlohmann::json const& now,
                                        bool allow_changes) {
    auto const file = output_dir / "run_config.json";
    if (!std::filesystem::exists(file)) return {};
    nlohmann::json recorded;
    try {
        recorded = io::read_json_file(file);
    } catch (Error const& e) {
        fail(e.what(), " (the record of the run that would resume from ", checkpoint.string(),
             "); use --no-resume to start afresh");
    }
    if (!recorded.is_object() || !recorded.contains("options") || !recorded.at("options").is_object()) return {};
    ResumeCheck check{changed_options(recorded.at("options"), now), recorded.value("changed_on_resume", nlohmann::json())};
    if (check.changes.empty()) return check;
    if (!allow_changes) {
        std::string list;
        for (auto const& c : check.changes) list += (list.empty() ? "" : "; ") + c;
        fail("--output-dir ", output_dir.string(), " holds a run that would resume from ", checkpoint.string(),
             ", but options that define the run changed: ", list, ". Rerun with the recorded values, --no-resume "
             "to start afresh, or --allow-changed-options to continue under the new ones (recorded in "
             "run_config.json)");
    }
    check.changed_on_resume.push_back({{"checkpoint_step", step}, {"changes", check.changes}});
    return check;
}

}  // namespace polyalpaca
