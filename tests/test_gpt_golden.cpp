// The Eigen GPT against the official code: tiny LlamaGen (raster), PAR and NAR models whose
// weights, teacher-forced logits, every step's logits and greedy token grids were produced by the
// official PyTorch classes, and the released ZipAR decoding a raster model (tests/data/e2e, see
// tests/data/golden/README.md and README-zipar.md).
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include <ordo/models/llamagen/checkpoint.hpp>
#include <ordo/eigen/gpt.hpp>
#include <ordo/models/llamagen/model_args.hpp>
#include <ordo/engine/teacher.hpp>
#include <ordo/ordo.hpp>

#include "gpt_helpers.hpp"

using json = nlohmann::json;
using gpt_helpers::max_abs_diff;
using gpt_helpers::read_f32;

namespace {

// Backends that sum in another order than PyTorch differ by ~1e-5 (golden README); the greedy
// tokens stay exact because the smallest top-1/top-2 margin is 3.7e-3.
constexpr float kTolerance = 1e-4f;

std::string e2e(const std::string& name) { return std::string(ORDO_TEST_DATA) + "/e2e/" + name; }

json read_json(const std::string& path) {
    std::ifstream f(path);
    REQUIRE(f.good());
    return json::parse(f);
}

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

struct golden_case {
    std::string name, policy;
    bool teacher = true;  // has a .teacher file (ZipAR is training-free: its model trains as raster)
};
const golden_case kCases[] = {
    {"raster_G8_cfg2.0_label3", "raster"},
    {"par_G8_n4_cfg2.0_label3", "par:2x2"},
    {"nar_G8_cfg2.0_label3", "nar"},
    {"zipar_G8_w3_cfg2.0_label3", "zipar:3", false},
};

}  // namespace

TEST_CASE("the config of every golden model reads from its weights.json", "[gpt][golden]") {
    for (const golden_case& c : kCases) {
        const ordo::models::llamagen::gpt_config cfg = ordo::models::llamagen::model_args_from_json(slurp(e2e(c.name + ".weights.json")));
        const json w = read_json(e2e(c.name + ".weights.json"));
        CHECK(cfg.dim == 64);
        CHECK(cfg.ffn_hidden() == w["ffn_hidden_dim"].get<int>());
        CHECK(cfg.head_dim() == w["head_dim"].get<int>());
        CHECK(cfg.label_rows() == w["label_table_rows"].get<int>());
        CHECK(cfg.null_label() == w["null_class_index"].get<int>());
        // the config names exactly the tensors of the checkpoint, with their shapes
        const auto specs = ordo::models::llamagen::checkpoint_tensors(cfg);
        CHECK(specs.size() == w["tensors"].size());
        for (const auto& s : specs) CHECK(w["tensors"][s.key].get<std::vector<std::int64_t>>() == s.shape);
    }
}

TEST_CASE("teacher-forced logits equal the official training forward", "[gpt][golden]") {
    for (const golden_case& c : kCases) {
        if (!c.teacher) continue;
        INFO(c.name);
        const ordo::io::safetensors wf = ordo::io::safetensors::open(e2e(c.name + ".weights.safetensors"));
        const ordo::models::llamagen::gpt_weights weights =
            ordo::models::llamagen::load_weights(wf, ordo::models::llamagen::model_args_from_json(slurp(e2e(c.name + ".weights.json"))));
        ordo::eigen::gpt_model model(weights);
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(c.policy), ordo::grid_shape::make(8, 8));
        ordo::contiguous_kv_cache<float> cache(model.num_layers(), 1, ordo::teacher_cache_len(p), model.cache_width());

        const ordo::io::safetensors tf = ordo::io::safetensors::open(e2e(c.name + ".teacher.safetensors"));
        std::vector<std::int64_t> t64(64), label(1);
        tf.read(tf.at("tokens_raster"), t64);
        tf.read(tf.at("label"), label);
        const std::vector<ordo::index_t> tokens(t64.begin(), t64.end());
        const std::vector<float> ours = ordo::teacher_forcing_logits(model, cache, p.view(), tokens, static_cast<ordo::index_t>(label[0]));
        const std::vector<float> ref = read_f32(tf, tf.find("logits_raster") ? "logits_raster" : "logits");
        const float d = max_abs_diff(ours, ref);
        INFO("max |diff| = " << d);
        CHECK(d < kTolerance);
    }
}

TEST_CASE("every decode step's logits and the greedy token grid equal the official generate()", "[gpt][golden]") {
    for (const golden_case& c : kCases) {
        INFO(c.name);
        const json run = read_json(e2e(c.name + ".json"));
        const ordo::io::safetensors wf = ordo::io::safetensors::open(e2e(c.name + ".weights.safetensors"));
        const ordo::models::llamagen::gpt_config cfg = ordo::models::llamagen::model_args_from_json(slurp(e2e(c.name + ".weights.json")));
        const ordo::models::llamagen::gpt_weights weights = ordo::models::llamagen::load_weights(wf, cfg);
        ordo::eigen::gpt_model model(weights);
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(c.policy), ordo::grid_shape::make(8, 8));
        REQUIRE(p.num_steps() == run["num_forward_calls"].get<int>());

        const ordo::request req{run["label"].get<int>(), 0, {}};
        ordo::session_options o;
        o.guidance.scale = run["cfg_scale"].get<float>();
        o.null_label = cfg.null_label();
        ordo::session s(p.view(), std::span<const ordo::request>(&req, 1), ordo::make_sampler(ordo::top_k{1}, ordo::greedy{}), model.vocab_size(), o);
        // Cache memory full of NaN: a slot read before the plan writes it poisons the logits (ZipAR's
        // mask shows unwritten slots; they must count as zeros, not as what the memory holds).
        const std::size_t cache_size =
            ordo::contiguous_kv_cache<float>::required_size(model.num_layers(), s.num_sequences(), ordo::kv_cache_len(p), model.cache_width());
        std::vector<float> cache_memory(cache_size, std::numeric_limits<float>::quiet_NaN());
        ordo::contiguous_kv_cache<float> cache(std::span<float>(cache_memory), model.num_layers(), s.num_sequences(), ordo::kv_cache_len(p),
                                               model.cache_width());
        if (run.contains("kv_cache_len")) CHECK(ordo::kv_cache_len(p) == run["kv_cache_len"].get<int>());
        ordo::check_fit(p.view(), model, cache, s.num_sequences());

        const ordo::io::safetensors lf = ordo::io::safetensors::open(e2e(c.name + ".logits.safetensors"));
        std::vector<float> logits, mixed(static_cast<std::size_t>(model.vocab_size()));
        float worst = 0.0f;
        while (!s.done()) {
            const ordo::step_batch& b = s.next();
            logits.resize(b.logits_size());
            model.forward(b, cache, logits);
            char key[16];
            std::snprintf(key, sizeof key, "step_%03d", b.step);
            const std::vector<float> ref = read_f32(lf, key);
            const ordo::index_t k = p.step(b.step).num_emitted();
            REQUIRE(ref.size() == static_cast<std::size_t>(k) * mixed.size());
            for (ordo::index_t e = 0; e < k; ++e) {
                s.final_logits(logits, 0, e, mixed);
                worst = std::max(worst, max_abs_diff(mixed, std::span<const float>(ref).subspan(static_cast<std::size_t>(e) * mixed.size(), mixed.size())));
            }
            s.commit(logits);
        }
        INFO("max |diff| over all steps = " << worst);
        CHECK(worst < kTolerance);
        const std::vector<int> want = run["tokens_raster"].get<std::vector<std::vector<int>>>().empty()
                                          ? std::vector<int>{}
                                          : [&] {
                                                std::vector<int> flat;
                                                for (const auto& row : run["tokens_raster"]) for (int t : row) flat.push_back(t);
                                                return flat;
                                            }();
        const auto got = s.tokens(0);
        CHECK(std::vector<int>(got.begin(), got.end()) == want);
    }
}
