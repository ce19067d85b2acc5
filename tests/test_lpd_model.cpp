// The LPD decoder on the CPU (ordo/eigen/lpd.hpp, ordo/models/lpd/): the config read off a
// checkpoint, strict loading, the official training forward against the golden teacher logits of a
// tiny model built with the official classes (tests/data/e2e/lpd_*, see
// tests/data/golden/README-lpd.md), and the KV-cache step forward against that training forward.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <ordo/eigen/lpd.hpp>
#include <ordo/engine/kv_cache.hpp>
#include <ordo/engine/teacher.hpp>
#include <ordo/models/lpd/checkpoint.hpp>
#include <ordo/ordo.hpp>

#include "decode_helpers.hpp"
#include "model_test_helpers.hpp"
#include "tolerance.hpp"

using Catch::Contains;
using json = nlohmann::json;
namespace lpd = ordo::models::lpd;
namespace io = ordo::io;
using namespace model_test;

namespace {

const std::string kCase = "lpd_G16_s20_orderseed0_cfg4.0_label3";
std::string e2e(const std::string& name) { return std::string(ORDO_TEST_DATA) + "/e2e/" + name; }

// fp32 backends summing in another order than PyTorch differ by ~1e-5 (golden README: 6e-6 for the
// teacher pass of an independent re-implementation).
constexpr float kTolerance = 1e-4f;


}  // namespace

TEST_CASE("lpd: the config reads off the checkpoint's shapes and the head count off weights.json", "[lpd]") {
    const io::safetensors f = io::safetensors::open(e2e(kCase + ".weights.safetensors"));
    const ordo::index_t heads = lpd::num_heads_from_weights_json(e2e(kCase + ".weights.json"));
    CHECK(heads == 4);
    const lpd::lpd_config c = lpd::config_from_checkpoint(f, heads);
    const json w = json::parse(slurp(e2e(kCase + ".weights.json")));
    CHECK(c.dim == w["constructor_args"]["decoder_embed_dim"].get<int>());
    CHECK(c.depth == w["constructor_args"]["decoder_depth"].get<int>());
    CHECK(c.num_heads == w["constructor_args"]["decoder_num_heads"].get<int>());
    CHECK(c.vocab_size == w["constructor_args"]["vqgan_vocab_size"].get<int>());
    CHECK(c.num_classes == w["constructor_args"]["class_num"].get<int>());
    CHECK(c.mlp_hidden == w["derived"]["mlp_hidden"].get<int>());
    CHECK(c.head_dim() == w["derived"]["head_dim"].get<int>());
    CHECK(c.pos_rows() == w["derived"]["pos_embed_rows"].get<int>());
    CHECK(c.num_cells == 256);
    CHECK(c.norm_eps == 1e-6f);
    // the config names exactly the tensors of the checkpoint, with their shapes
    const auto specs = lpd::checkpoint_tensors(c);
    CHECK(specs.size() == w["tensors"].size());
    for (const auto& s : specs) CHECK(w["tensors"][s.key].get<std::vector<std::int64_t>>() == s.shape);

    const lpd::lpd_weights weights = lpd::load_checkpoint(f, heads);
    ordo::eigen::lpd_model m(weights);
    CHECK(m.vocab_size() == 64);
    CHECK(m.num_heads() == 1);
    CHECK(m.num_layers() == 2);
    CHECK(m.cache_width() == 64);
    CHECK(m.null_label() == 10);
    static_assert(ordo::model_for<ordo::eigen::lpd_model, ordo::contiguous_kv_cache<float>>);
    // loaded bit for bit
    for (std::size_t i = 0; i < weights.tensors().size(); ++i) {
        const std::vector<float> ref = read_f32(f, weights.tensors()[i].key);
        REQUIRE(std::memcmp(ref.data(), weights.storage(i).data(), ref.size() * sizeof(float)) == 0);
    }

    // head count: from a bare object too; errors
    CHECK(lpd::num_heads_from_json(R"({"decoder_num_heads": 20})") == 20);
    CHECK_THROWS_WITH(lpd::num_heads_from_json(R"({"constructor_args": {}})"), Contains("no 'decoder_num_heads'"));
    CHECK_THROWS_WITH(lpd::num_heads_from_json(R"({"decoder_num_heads": 2.5})"), Contains("must be an integer"));
    CHECK_THROWS_WITH(lpd::config_from_checkpoint(f, 5), Contains("dim 64 is not divisible by 5 heads"));
    CHECK_THROWS_WITH(lpd::config_from_checkpoint(f, 0), Contains("head count must be >= 1"));
}

TEST_CASE("lpd: presets and random weights of any size", "[lpd]") {
    const lpd::lpd_config l = lpd::make_preset("lpd_l");
    CHECK((l.depth == 24 && l.dim == 1024 && l.num_heads == 16 && l.mlp_hidden == 4096 && l.num_cells == 256));
    CHECK((l.vocab_size == 16384 && l.num_classes == 1000));
    const lpd::lpd_config xl = lpd::make_preset("XL", 1024);
    CHECK((xl.depth == 36 && xl.dim == 1280 && xl.num_heads == 20 && xl.head_dim() == 64 && xl.pos_rows() == 1025));
    CHECK_THROWS_WITH(lpd::make_preset("XXXL"), Contains("unknown LPD preset 'XXXL'") && Contains("L, XL, XXL"));
    // lpd_l at 256 cells: 24 blocks of 12 D^2 + token_emb and head (V x D each); about 1.35 GB of fp32
    CHECK(lpd::weight_bytes(l) > 1'300'000'000u);
    CHECK(lpd::weight_bytes(l) < 1'400'000'000u);

    lpd::lpd_config c;
    c.dim = 32; c.depth = 2; c.num_heads = 2; c.mlp_hidden = 128; c.vocab_size = 40; c.num_classes = 5; c.num_cells = 16;
    const lpd::lpd_weights w = lpd::random_weights(c, 7);
    const lpd::lpd_weights w2 = lpd::random_weights(c, 7);
    REQUIRE(w.bytes() == lpd::weight_bytes(c));
    for (std::size_t i = 0; i < w.tensors().size(); ++i)
        CHECK(std::memcmp(w.storage(i).data(), w2.storage(i).data(), w.storage(i).size_bytes()) == 0);
    CHECK(w.layers[1].norm2_b[0] == 0.0f);
    CHECK(w.layers[1].norm2_w[0] == 1.0f);
    c.num_heads = 3;
    CHECK_THROWS_WITH(lpd::random_weights(c, 1), Contains("dim 32 is not divisible by num_heads 3"));

    // saved weights load back bit for bit, config included
    const std::string path = (std::filesystem::temp_directory_path() / "ordo_test_lpd_saved.safetensors").string();
    lpd::save_weights(w, path);
    const lpd::lpd_weights back = lpd::load_checkpoint(io::safetensors::open(path), 2);
    std::filesystem::remove(path);
    CHECK(back.config().str() == w.config().str());
    for (std::size_t i = 0; i < w.tensors().size(); ++i)
        CHECK(std::memcmp(w.storage(i).data(), back.storage(i).data(), w.storage(i).size_bytes()) == 0);
}

TEST_CASE("lpd: checkpoints load strictly: a missing, unexpected, mis-shaped or truncated tensor is named", "[lpd][errors]") {
    const io::safetensors golden = io::safetensors::open(e2e(kCase + ".weights.safetensors"));
    const lpd::lpd_config c = lpd::config_from_checkpoint(golden, 4);
    const std::vector<std::byte> same = rewritten(golden, keep);
    CHECK_NOTHROW(lpd::load_weights(io::safetensors::from_memory(same), c));

    SECTION("missing") {
        const auto f = rewritten(golden, [](const std::string& k, auto&, auto&) { return k != "blocks.1.mlp.fc2.bias"; });
        CHECK_THROWS_WITH(lpd::load_weights(io::safetensors::from_memory(f), c), Contains("missing tensor 'blocks.1.mlp.fc2.bias' [64]"));
        const auto nf = rewritten(golden, [](const std::string& k, auto&, auto&) { return k != "fake_latent"; });
        CHECK_THROWS_WITH(lpd::load_checkpoint(io::safetensors::from_memory(nf), 4), Contains("missing tensor 'fake_latent' [1, 64]"));
        const auto np = rewritten(golden, [](const std::string& k, auto&, auto&) { return k != "pos_embed"; });
        CHECK_THROWS_WITH(lpd::load_checkpoint(io::safetensors::from_memory(np), 4), Contains("not an LPD checkpoint: no tensor 'pos_embed'"));
    }
    SECTION("unexpected") {
        const std::vector<float> qn(16, 1.0f);
        const auto f = rewritten(golden, keep, [&](st_writer& w) { w.add("blocks.0.attn.q_norm.weight", {16}, qn.data(), 64); });
        CHECK_THROWS_WITH(lpd::load_checkpoint(io::safetensors::from_memory(f), 4), Contains("unexpected tensor 'blocks.0.attn.q_norm.weight' [16]"));
        const std::vector<float> n1(64, 1.0f);
        const auto deeper = rewritten(golden, keep, [&](st_writer& w) { w.add("blocks.2.norm1.weight", {64}, n1.data(), 256); });
        CHECK_THROWS_WITH(lpd::load_weights(io::safetensors::from_memory(deeper), c), Contains("unexpected tensor 'blocks.2.norm1.weight'") && Contains("more blocks"));
    }
    SECTION("mis-shaped") {
        const auto f = rewritten(golden, [](const std::string& k, std::vector<std::int64_t>& s, std::vector<float>& v) {
            if (k == "blocks.0.attn.qkv.bias") { s = {191}; v.resize(191); }
            return true;
        });
        CHECK_THROWS_WITH(lpd::load_checkpoint(io::safetensors::from_memory(f), 4),
                          Contains("tensor 'blocks.0.attn.qkv.bias' has shape [191]") && Contains("needs [192]"));
        // pos_embed flattened to 2-D
        const auto p2 = rewritten(golden, [](const std::string& k, std::vector<std::int64_t>& s, std::vector<float>&) {
            if (k == "pos_embed") s = {257, 64};
            return true;
        });
        CHECK_THROWS_WITH(lpd::load_checkpoint(io::safetensors::from_memory(p2), 4), Contains("tensor 'pos_embed' has shape [257, 64]"));
        // a config of another size reads the same file: the first tensor that differs is named
        lpd::lpd_config wide = c;
        wide.vocab_size = 128;
        CHECK_THROWS_WITH(lpd::load_weights(golden, wide), Contains("tensor 'token_emb.weight' has shape [64, 64]") && Contains("needs [128, 64]"));
        // a non-float tensor
        const std::vector<std::int64_t> ids(64, 1);
        const auto i64 = rewritten(golden, [](const std::string& k, auto&, auto&) { return k != "norm.bias"; },
                                   [&](st_writer& w) { w.add("norm.bias", {64}, ids.data(), 512, "I64"); });
        CHECK_THROWS_WITH(lpd::load_weights(io::safetensors::from_memory(i64), c), Contains("tensor 'norm.bias' has dtype I64"));
    }
    SECTION("a LlamaGen checkpoint is not an LPD checkpoint") {
        const io::safetensors raster = io::safetensors::open(e2e("raster_G8_cfg2.0_label3.weights.safetensors"));
        CHECK_THROWS_WITH(lpd::config_from_checkpoint(raster, 4), Contains("not an LPD checkpoint") && Contains("LlamaGen"));
        CHECK_THROWS_WITH(lpd::load_weights(raster, c), Contains("unexpected tensor") && Contains("not an LPD checkpoint"));
    }
    SECTION("truncated") {
        // the file's last tensor (the golden files sort them by name) is cut short
        const std::string last = "tensor '" + golden.tensors().back().name + "'";
        std::vector<std::byte> cut(same.begin(), same.end() - 100);
        CHECK_THROWS_WITH(lpd::load_checkpoint(io::safetensors::from_memory(cut), 4), Contains(last) && Contains("truncated"));
        // a file that shrinks after it was opened: the read names the tensor
        const std::string path = (std::filesystem::temp_directory_path() / "ordo_test_lpd_truncated.safetensors").string();
        {
            std::ofstream out(path, std::ios::binary | std::ios::trunc);
            out.write(reinterpret_cast<const char*>(same.data()), static_cast<std::streamsize>(same.size()));
        }
        const io::safetensors f = io::safetensors::open(path);
        std::filesystem::resize_file(path, same.size() - 100);
        CHECK_THROWS_WITH(lpd::load_checkpoint(f, 4), Contains(last) && Contains("truncated"));
        std::filesystem::remove(path);
    }
}

TEST_CASE("lpd: the one-pass training forward equals the official teacher logits", "[lpd][golden]") {
    const io::safetensors wf = io::safetensors::open(e2e(kCase + ".weights.safetensors"));
    const lpd::lpd_weights weights = lpd::load_checkpoint(wf, lpd::num_heads_from_weights_json(e2e(kCase + ".weights.json")));
    const ordo::eigen::lpd_model model(weights);
    const io::safetensors tf = io::safetensors::open(e2e(kCase + ".teacher.safetensors"));
    const std::vector<ordo::index_t> tokens = read_ints(tf, "tokens_raster"), order = read_ints(tf, "order"), groups = read_ints(tf, "group_sizes");
    const ordo::index_t label = read_ints(tf, "label").at(0);
    const std::vector<float> ours = model.training_logits(label, order, tokens, groups);
    const std::vector<float> ref = read_f32(tf, "logits_seq");
    const float d = tolerance::max_abs_diff(ours, ref);
    INFO("max |diff| = " << d << ", max |logit| = " << tolerance::max_abs(ref));
    CHECK(d < kTolerance);
    // the same rows in raster order
    const std::vector<float> raster = read_f32(tf, "logits_raster");
    std::vector<float> ours_raster(ours.size());
    for (std::size_t t = 0; t < order.size(); ++t)
        std::copy_n(ours.begin() + static_cast<std::ptrdiff_t>(t * 64), 64, ours_raster.begin() + static_cast<std::ptrdiff_t>(order[t]) * 64);
    CHECK(tolerance::max_abs_diff(ours_raster, raster) < kTolerance);

    // the unconditional class (fake_latent) changes the logits; bad inputs are named
    const std::vector<float> uncond = model.training_logits(model.null_label(), order, tokens, groups);
    CHECK(tolerance::max_abs_diff(uncond, ours) > 1e-3f);
    std::vector<ordo::index_t> bad = order;
    bad[1] = bad[0];
    CHECK_THROWS_WITH(model.training_logits(label, bad, tokens, groups), Contains("not a permutation"));
    std::vector<ordo::index_t> short_groups(groups.begin(), groups.end() - 1);
    CHECK_THROWS_WITH(model.training_logits(label, order, tokens, short_groups), Contains("group sizes sum to"));
    CHECK_THROWS_WITH(model.training_logits(11, order, tokens, groups), Contains("class label 11"));
}

namespace {

// The official sample_tokens layout as a plan, built by hand (the lpd policy's job; this keeps the
// model test independent of it): slot 1 + t holds generation index t (position = its raster cell);
// call k feeds the previous group's tokens (call 0: the class slot) and the queries of group k
// written into the slots of the tokens they predict.
ordo::plan lpd_layout(ordo::grid_shape g, std::span<const ordo::index_t> order, std::span<const ordo::index_t> groups, ordo::index_t prefix = 1,
                      bool two_heads = false) {
    ordo::plan_builder b(g, prefix, ordo::mask_mode::step_causal);
    b.set_encoding(ordo::position_encoding::cell_table);
    b.set_forcing(ordo::teacher_forcing::replay);
    if (two_heads) b.set_heads({"main", "extra"});
    else b.set_heads({"main"});
    for (ordo::index_t cell : order) b.add_token_slot(cell);
    ordo::index_t c = 0, prev = 0;
    for (ordo::index_t gk : groups) {
        b.begin_step();
        if (c == 0)
            for (ordo::index_t s = 0; s < prefix; ++s) b.feed(s);
        for (ordo::index_t t = prev; t < c; ++t) b.feed(prefix + t);
        for (ordo::index_t t = c; t < c + gk; ++t) {
            const ordo::index_t row = b.feed_query(prefix + t, order[static_cast<std::size_t>(t)]);
            b.emit(order[static_cast<std::size_t>(t)], {{row, 0, 1.0f}});
        }
        prev = c;
        c += gk;
    }
    return std::move(b).finish();
}

}  // namespace

TEST_CASE("lpd: KV-cache steps (cond and fake_latent halves in one batch) equal the training forward", "[lpd]") {
    const io::safetensors wf = io::safetensors::open(e2e(kCase + ".weights.safetensors"));
    const lpd::lpd_weights weights = lpd::load_checkpoint(wf, 4);
    ordo::eigen::lpd_model model(weights);
    const io::safetensors tf = io::safetensors::open(e2e(kCase + ".teacher.safetensors"));
    const std::vector<ordo::index_t> tokens = read_ints(tf, "tokens_raster"), order = read_ints(tf, "order"), groups = read_ints(tf, "group_sizes");
    const ordo::index_t label = 3, v = model.vocab_size();
    const std::vector<float> cond = model.training_logits(label, order, tokens, groups);
    const std::vector<float> uncond = model.training_logits(model.null_label(), order, tokens, groups);

    const ordo::plan p = lpd_layout(ordo::grid_shape::make(16, 16), order, groups);
    const ordo::plan_view pv = p.view();
    REQUIRE(pv.num_steps() == 20);
    ordo::contiguous_kv_cache<float> cache(model.num_layers(), 2, ordo::kv_cache_len(pv), model.cache_width());
    const ordo::index_t sequences = 2;
    model.prepare(pv, sequences);
    const std::vector<ordo::request> reqs{{label, 0, {}, {}}};
    std::vector<ordo::index_t> gen_of(256);  // raster cell -> generation index
    for (std::size_t t = 0; t < order.size(); ++t) gen_of[static_cast<std::size_t>(order[t])] = static_cast<ordo::index_t>(t);
    float worst = 0.0f;
    std::size_t compared = 0;
    for (ordo::index_t k = 0; k < pv.num_steps(); ++k) {
        const ordo::step_view st = pv.step(k);
        const ordo::index_t rows = st.num_rows();
        std::vector<ordo::index_t> slots(st.fed.begin(), st.fed.end());
        std::vector<ordo::rope_coord> rope(static_cast<std::size_t>(rows));
        std::vector<ordo::fed_input> inputs(static_cast<std::size_t>(sequences * rows));
        for (ordo::index_t s = 0; s < sequences; ++s)
            for (ordo::index_t r = 0; r < rows; ++r) {
                const ordo::index_t slot = slots[static_cast<std::size_t>(r)], target = st.query_target(r);
                ordo::fed_input& in = inputs[static_cast<std::size_t>(s * rows + r)];
                if (target >= 0) in = {ordo::slot_kind::query, target, -1, target};
                else if (slot == 0) in = {ordo::slot_kind::prefix, 0, s == 0 ? label : model.null_label(), -1};
                else {
                    const ordo::index_t cell = order[static_cast<std::size_t>(slot - 1)];
                    in = {ordo::slot_kind::token, cell, tokens[static_cast<std::size_t>(cell)], cell};
                }
            }
        ordo::step_batch b{pv, k, sequences, rows, 1, v, slots, rope, inputs, reqs};
        b.written_through = k;  // what a session passes: this step's writes and earlier ones
        std::vector<float> logits(b.logits_size());
        model.forward(b, cache, logits);
        // each query row predicts its target: compare with the training row of that generation index
        for (ordo::index_t r = 0; r < rows; ++r) {
            const ordo::index_t target = st.query_target(r);
            if (target < 0) continue;
            const std::size_t t = static_cast<std::size_t>(gen_of[static_cast<std::size_t>(target)]);
            for (ordo::index_t s = 0; s < sequences; ++s) {
                const std::span<const float> ours(logits.data() + static_cast<std::size_t>(s * rows + r) * static_cast<std::size_t>(v), static_cast<std::size_t>(v));
                const std::vector<float>& ref = s == 0 ? cond : uncond;
                const std::span<const float> want(ref.data() + t * static_cast<std::size_t>(v), static_cast<std::size_t>(v));
                worst = std::max(worst, tolerance::max_abs_diff(ours, want));
                ++compared;
            }
        }
    }
    INFO("max |diff| KV steps vs training forward = " << worst);
    CHECK(compared == 2 * 256);
    CHECK(worst < kTolerance);
}

TEST_CASE("lpd: a plan the model cannot run is a clear error", "[lpd][errors]") {
    const io::safetensors wf = io::safetensors::open(e2e(kCase + ".weights.safetensors"));
    const lpd::lpd_weights weights = lpd::load_checkpoint(wf, 4);
    ordo::eigen::lpd_model model(weights);
    const io::safetensors tf = io::safetensors::open(e2e(kCase + ".teacher.safetensors"));
    const std::vector<ordo::index_t> order = read_ints(tf, "order"), groups = read_ints(tf, "group_sizes");
    CHECK_NOTHROW(model.prepare(lpd_layout(ordo::grid_shape::make(16, 16), order, groups).view(), 2));
    // RoPE positions (a LlamaGen raster plan)
    const ordo::plan raster = ordo::make_plan(ordo::parse_policy("raster"), ordo::grid_shape::make(16, 16));
    CHECK_THROWS_WITH(model.prepare(raster.view(), 1), Contains("not cell_table"));
    // another grid: 8 x 8 cells against pos_embed's 257 rows
    std::vector<ordo::index_t> small(64);
    for (ordo::index_t i = 0; i < 64; ++i) small[static_cast<std::size_t>(i)] = i;
    const std::vector<ordo::index_t> g8{1, 3, 60};
    CHECK_THROWS_WITH(model.prepare(lpd_layout(ordo::grid_shape::make(8, 8), small, g8).view(), 1), Contains("has 64 cells") && Contains("257 rows"));
    // two prefix rows, two heads
    CHECK_THROWS_WITH(model.prepare(lpd_layout(ordo::grid_shape::make(16, 16), order, groups, 2).view(), 1), Contains("2 prefix rows"));
    CHECK_THROWS_WITH(model.prepare(lpd_layout(ordo::grid_shape::make(16, 16), order, groups, 1, true).view(), 1), Contains("reads 2 output heads"));
}

namespace {

const auto kGreedy = ordo::make_sampler(ordo::top_k{1}, ordo::greedy{});
ordo::cfg lpd_cfg(float scale) { return {scale, -1, {}, ordo::cfg_ramp::linear_in_rank}; }
using decode_helpers::decode;

}  // namespace

TEST_CASE("lpd: every call's logits and the greedy tokens equal the official sample_tokens, with CFG", "[lpd][golden]") {
    const json run = json::parse(slurp(e2e(kCase + ".json")));
    const io::safetensors wf = io::safetensors::open(e2e(kCase + ".weights.safetensors"));
    const lpd::lpd_weights weights = lpd::load_checkpoint(wf, lpd::num_heads_from_weights_json(e2e(kCase + ".weights.json")));
    const ordo::eigen::lpd_model model(weights);
    const io::safetensors lf = io::safetensors::open(e2e(kCase + ".logits.safetensors"));
    const ordo::grid_shape g = ordo::grid_shape::make(16, 16);
    const std::vector<ordo::index_t> order = run["order"].get<std::vector<ordo::index_t>>();
    std::vector<ordo::index_t> want;
    for (const auto& row : run["tokens_raster"]) for (int t : row) want.push_back(t);

    // the order built into the plan (lpd:20 draws the golden order, seed 0), and the schedule with
    // the order as the request's position table
    const ordo::plan baked = ordo::make_plan(ordo::parse_policy("lpd:20"), g);
    REQUIRE(std::vector<ordo::index_t>(baked.view().order.begin(), baked.view().order.end()) == order);
    const ordo::plan schedule = ordo::make_plan(ordo::parse_policy("lpd:20,seed=request"), g);
    REQUIRE(baked.num_steps() == run["num_forward_calls"].get<int>());
    for (const bool per_request : {false, true})
        for (const bool paged : {false, true}) {
            INFO((per_request ? "schedule + position table" : "order in the plan") << (paged ? ", paged cache" : ", contiguous cache"));
            ordo::request req{run["label"].get<int>(), 0, {}, {}};
            if (per_request) req.order = order;
            float worst = 0.0f;
            std::vector<float> mixed(64);
            const auto got = decode(model, per_request ? schedule : baked, {req}, lpd_cfg(run["cfg"].get<float>()), model.null_label(), paged, kGreedy,
                                    [&](auto& s, const ordo::step_batch& b, std::span<const float> logits) {
                                        char key[16];
                                        std::snprintf(key, sizeof key, "step_%03d", b.step);
                                        const std::vector<float> ref = read_f32(lf, key);
                                        const ordo::index_t k = b.plan.step(b.step).num_emitted();
                                        REQUIRE(ref.size() == static_cast<std::size_t>(k) * 64);
                                        for (ordo::index_t e = 0; e < k; ++e) {
                                            s.final_logits(logits, 0, e, mixed);
                                            worst = std::max(worst, tolerance::max_abs_diff(mixed, std::span<const float>(ref).subspan(static_cast<std::size_t>(e) * 64, 64)));
                                        }
                                    });
            INFO("max |diff| over all calls = " << worst << " (smallest top-1/top-2 margin " << run["min_top1_top2_margin"].get<double>() << ")");
            CHECK(worst < kTolerance);
            CHECK(got[0] == want);
        }
}

TEST_CASE("lpd: teacher forcing (the plan's steps on given tokens) equals the official training forward", "[lpd][golden]") {
    const io::safetensors wf = io::safetensors::open(e2e(kCase + ".weights.safetensors"));
    const lpd::lpd_weights weights = lpd::load_checkpoint(wf, lpd::num_heads_from_weights_json(e2e(kCase + ".weights.json")));
    ordo::eigen::lpd_model model(weights);
    const io::safetensors tf = io::safetensors::open(e2e(kCase + ".teacher.safetensors"));
    const std::vector<ordo::index_t> tokens = read_ints(tf, "tokens_raster");
    const ordo::index_t label = read_ints(tf, "label").at(0);
    const ordo::plan p = ordo::make_plan(ordo::parse_policy("lpd:20"), ordo::grid_shape::make(16, 16));
    REQUIRE(std::vector<ordo::index_t>(p.view().order.begin(), p.view().order.end()) == read_ints(tf, "order"));
    ordo::contiguous_kv_cache<float> cache(model.num_layers(), 1, ordo::teacher_cache_len(p), model.cache_width());
    const std::vector<float> replay = ordo::teacher_forcing_logits(model, cache, p.view(), tokens, label);
    const std::vector<float> ref = read_f32(tf, "logits_raster");
    INFO("max |diff| = " << tolerance::max_abs_diff(replay, ref));
    CHECK(tolerance::max_abs_diff(replay, ref) < kTolerance);
    // decoding equals one training pass: the replay and the model's one-pass forward agree closely
    const std::vector<float> one_pass = model.training_logits(label, read_ints(tf, "order"), tokens, read_ints(tf, "group_sizes"));
    std::vector<float> one_pass_raster(one_pass.size());
    const std::vector<ordo::index_t> order = read_ints(tf, "order");
    for (std::size_t t = 0; t < order.size(); ++t)
        std::copy_n(one_pass.begin() + static_cast<std::ptrdiff_t>(t * 64), 64, one_pass_raster.begin() + static_cast<std::ptrdiff_t>(order[t]) * 64);
    CHECK(tolerance::max_abs_diff(replay, one_pass_raster) < 1e-5f);
}

TEST_CASE("lpd: three requests with three orders in one batch get the tokens each gets alone (real model, CFG, sampling)", "[lpd][golden]") {
    const io::safetensors wf = io::safetensors::open(e2e(kCase + ".weights.safetensors"));
    const lpd::lpd_weights weights = lpd::load_checkpoint(wf, lpd::num_heads_from_weights_json(e2e(kCase + ".weights.json")));
    const ordo::eigen::lpd_model model(weights);
    const ordo::grid_shape g = ordo::grid_shape::make(16, 16);
    const ordo::plan schedule = ordo::make_plan(ordo::parse_policy("lpd:20,seed=request"), g);
    std::vector<std::vector<ordo::index_t>> orders;
    for (int seed : {0, 1, 2}) orders.push_back(std::get<ordo::query_groups>(ordo::parse_policy("lpd:20,seed=" + std::to_string(seed))).order(g));
    std::vector<ordo::request> reqs;
    for (int i = 0; i < 3; ++i) reqs.push_back({i + 1, static_cast<std::uint64_t>(40 + i), {}, orders[static_cast<std::size_t>(i)]});
    const auto sampler = ordo::make_sampler(ordo::temperature{1.0f}, ordo::top_k{16}, ordo::multinomial{});
    const auto nothing = [](auto&, const ordo::step_batch&, std::span<const float>) {};
    const auto together = decode(model, schedule, reqs, lpd_cfg(4.0f), model.null_label(), false, sampler, nothing);
    for (std::size_t i = 0; i < reqs.size(); ++i) {
        INFO("request " << i);
        CHECK(decode(model, schedule, {reqs[i]}, lpd_cfg(4.0f), model.null_label(), true, sampler, nothing)[0] == together[i]);
        const ordo::plan baked = ordo::make_plan(ordo::parse_policy("lpd:20,seed=" + std::to_string(i)), g);
        ordo::request plain = reqs[i];
        plain.order = {};
        CHECK(decode(model, baked, {plain}, lpd_cfg(4.0f), model.null_label(), false, sampler, nothing)[0] == together[i]);
    }
    CHECK(together[0] != together[1]);
}
