// RandAR's model on the CPU backend: the LlamaGen GPT (ordo/eigen/gpt.hpp) plus the position-instruction
// vector (gpt_config::position_instruction). The config read off the golden weights.json and the
// checkpoint, strict loading, plan fit, and the official training forward against the golden teacher
// logits of a tiny RandARTransformer (tests/data/e2e/randar_*, from /work/shared/golden, see its
// README-lpd-randar-arpg.md): the layout [cls, P_0, x_0, ..., P_{N-1}, x_{N-1}] built by hand as a plan,
// in one pass, step by step, and with each request's own order.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <ordo/eigen/gpt.hpp>
#include <ordo/engine/kv_cache.hpp>
#include <ordo/engine/teacher.hpp>
#include <ordo/models/llamagen/checkpoint.hpp>
#include <ordo/models/llamagen/model_args.hpp>
#include <ordo/ordo.hpp>

#include "decode_helpers.hpp"
#include "gpt_helpers.hpp"
#include "model_test_helpers.hpp"

using Catch::Contains;
namespace llamagen = ordo::models::llamagen;
namespace io = ordo::io;
using json = nlohmann::json;
using gpt_helpers::max_abs_diff;
using namespace model_test;
using ordo::index_t;

namespace {

const std::string kCase = "randar_G16_s88_orderseed0_cfg1.0-4.0_label3";
constexpr index_t kGrid = 16, kN = kGrid * kGrid, kVocab = 64;
std::string e2e(const std::string& name) { return std::string(ORDO_TEST_DATA) + "/e2e/" + name; }

// fp32 backends summing in another order than PyTorch differ by ~1e-5 (golden README: 2.3e-5 for the
// teacher pass of an independent re-implementation).
constexpr float kTolerance = 1e-4f;


// RandAR's training layout as a plan (what the official forward_train feeds): slot 0 the class, P_t
// at 1 + 2t and x_t at 2 + 2t. Step t feeds x_{t-1} (step 0: the class) and P_t, and emits
// position `order[t]` from P_t's row. Positions are the grid cells themselves, or, with `by_index`,
// the generation indices (cell = a request's order table).
ordo::plan training_layout(const std::vector<index_t>& order, ordo::teacher_forcing forcing = ordo::teacher_forcing::shifted, bool by_index = false) {
    ordo::plan_builder b(ordo::grid_shape::make(kGrid, kGrid), 1, ordo::mask_mode::slot_causal);
    b.set_encoding(ordo::position_encoding::rope);
    b.set_forcing(forcing);
    std::vector<index_t> p(order.size()), x(order.size());
    for (std::size_t t = 0; t < order.size(); ++t) {
        const index_t pos = by_index ? static_cast<index_t>(t) : order[t];
        p[t] = b.add_query_slot(pos);
        x[t] = b.add_token_slot(pos);
    }
    for (std::size_t t = 0; t < order.size(); ++t) {
        b.begin_step();
        b.feed(t == 0 ? 0 : x[t - 1]);
        const index_t row = b.feed(p[t]);
        b.emit(by_index ? static_cast<index_t>(t) : order[t], {ordo::source{row, 0, 1.0f}});
    }
    return std::move(b).finish();
}

struct golden {
    llamagen::gpt_config cfg;
    llamagen::gpt_weights weights;
    std::vector<index_t> tokens, order;
    index_t label = 0;
    std::vector<float> seq, raster;  // logits_seq (row t predicts order[t]) and logits_raster
};
golden load_golden() {
    golden g;
    g.cfg = llamagen::model_args_from_json(slurp(e2e(kCase + ".weights.json")), kCase);
    g.weights = llamagen::load_weights(io::safetensors::open(e2e(kCase + ".weights.safetensors")), g.cfg);
    const io::safetensors tf = io::safetensors::open(e2e(kCase + ".teacher.safetensors"));
    g.tokens = read_ints(tf, "tokens_raster");
    g.order = read_ints(tf, "order");
    g.label = read_ints(tf, "label").at(0);
    g.seq = read_f32(tf, "logits_seq");
    g.raster = read_f32(tf, "logits_raster");
    REQUIRE(g.tokens.size() == static_cast<std::size_t>(kN));
    REQUIRE(g.order.size() == static_cast<std::size_t>(kN));
    return g;
}

// Rows of [position][vocab] logits reordered by generation index: out[t] = in[order[t]].
std::vector<float> by_generation_index(const std::vector<float>& raster, const std::vector<index_t>& order) {
    std::vector<float> out(raster.size());
    for (std::size_t t = 0; t < order.size(); ++t)
        std::copy_n(raster.begin() + static_cast<std::ptrdiff_t>(order[t]) * kVocab, kVocab, out.begin() + static_cast<std::ptrdiff_t>(t) * kVocab);
    return out;
}

}  // namespace

TEST_CASE("randar: the config reads off the golden weights.json and the checkpoint", "[randar]") {
    const std::string text = slurp(e2e(kCase + ".weights.json"));
    const llamagen::gpt_config c = llamagen::model_args_from_json(text, kCase);
    const nlohmann::ordered_json w = nlohmann::ordered_json::parse(text);
    const auto& args = w["constructor_args"];
    CHECK(c.position_instruction);
    CHECK(c.dim == args["dim"].get<int>());
    CHECK(c.n_layer == args["n_layer"].get<int>());
    CHECK(c.n_head == args["n_head"].get<int>());
    CHECK(c.kv_heads() == c.n_head);
    CHECK(c.vocab_size == args["vocab_size"].get<int>());
    CHECK(c.num_classes == args["num_classes"].get<int>());
    CHECK(c.multiple_of == args["multiple_of"].get<int>());
    CHECK(c.head_dim() == w["derived"]["head_dim"].get<int>());
    CHECK(c.ffn_hidden() == w["derived"]["ffn_hidden"].get<int>());
    CHECK(c.label_rows() == w["derived"]["label_table_rows"].get<int>());
    CHECK(c.null_label() == w["derived"]["null_class_index"].get<int>());
    CHECK(c.str().find("RandAR position instruction") != std::string::npos);
    // the config names exactly the checkpoint's tensors, in the official state-dict order
    const auto specs = llamagen::checkpoint_tensors(c);
    REQUIRE(specs.size() == w["tensors"].size());
    std::size_t i = 0;
    for (const auto& [key, shape] : w["tensors"].items()) {
        CHECK(specs[i].key == key);
        CHECK(specs[i].shape == shape.get<std::vector<std::int64_t>>());
        ++i;
    }
    CHECK(specs.front().key == "pos_instruct_embeddings");

    // infer_variant reads the vector's presence off a checkpoint (a preset-sized base without it)
    const io::safetensors f = io::safetensors::open(e2e(kCase + ".weights.safetensors"));
    llamagen::gpt_config base = c;
    base.position_instruction = false;
    base.vocab_size = 7;
    const llamagen::gpt_config inferred = llamagen::infer_variant(base, f);
    CHECK(inferred.position_instruction);
    CHECK(inferred.vocab_size == 64);
    CHECK(inferred.str() == c.str());
    const io::safetensors raster = io::safetensors::open(e2e("raster_G8_cfg2.0_label3.weights.safetensors"));
    llamagen::gpt_config with = llamagen::model_args_from_json(slurp(e2e("raster_G8_cfg2.0_label3.weights.json")));
    CHECK_FALSE(with.position_instruction);
    with.position_instruction = true;
    CHECK_FALSE(llamagen::infer_variant(with, raster).position_instruction);

    // loaded bit for bit; the model reports the same shape as the plain GPT
    const llamagen::gpt_weights weights = llamagen::load_weights(f, c);
    for (std::size_t k = 0; k < weights.tensors().size(); ++k) {
        const std::vector<float> ref = read_f32(f, weights.tensors()[k].key);
        REQUIRE(std::memcmp(ref.data(), weights.storage(k).data(), ref.size() * sizeof(float)) == 0);
    }
    CHECK(weights.pos_instruct == weights.storage(0).data());
    CHECK(weights.cls == weights.storage(1).data());
    ordo::eigen::gpt_model m(weights);
    CHECK(m.vocab_size() == 64);
    CHECK(m.num_heads() == 1);
    CHECK(m.num_layers() == 2);
    CHECK(m.cache_width() == 64);

    // the switch in a bare config; RandAR's own constructor arguments imply it; errors
    CHECK(llamagen::model_args_from_json(R"({"dim": 64, "n_head": 4, "position_instruction": true})").position_instruction);
    CHECK_FALSE(llamagen::model_args_from_json(R"({"dim": 64, "n_head": 4, "position_instruction": false})").position_instruction);
    CHECK_FALSE(llamagen::model_args_from_json(R"({"dim": 64, "n_head": 4})").position_instruction);
    CHECK(llamagen::model_args_from_json(R"({"dim": 64, "n_head": 4, "position_order": "raster"})").position_instruction);
    CHECK(llamagen::model_args_from_json(R"({"constructor_args": {"dim": 64, "n_head": 4, "zero_class_qk": false}})").position_instruction);
    CHECK_THROWS_WITH(llamagen::model_args_from_json(R"({"position_instruction": 1})"), Contains("'position_instruction' must be true or false"));
    CHECK_THROWS_WITH(llamagen::model_args_from_json(R"({"constructor_args": 5})"), Contains("'constructor_args' must be an object"));

    // random weights of a RandAR-sized config carry the vector; saved, they load back with it
    llamagen::gpt_config tiny = gpt_helpers::tiny();
    tiny.position_instruction = true;
    const llamagen::gpt_weights rw = llamagen::random_weights(tiny, 3);
    REQUIRE(rw.pos_instruct != nullptr);
    CHECK(rw.tensors().front().shape == std::vector<std::int64_t>{1, 32});
    CHECK(rw.bytes() == llamagen::weight_bytes(tiny));
}

TEST_CASE("randar: checkpoints load strictly: the position-instruction vector missing, unexpected or mis-shaped is named", "[randar][errors]") {
    const io::safetensors golden_file = io::safetensors::open(e2e(kCase + ".weights.safetensors"));
    const llamagen::gpt_config c = llamagen::model_args_from_json(slurp(e2e(kCase + ".weights.json")));
    const std::vector<std::byte> same = rewritten(golden_file, keep);
    CHECK_NOTHROW(llamagen::load_weights(io::safetensors::from_memory(same), c));

    SECTION("missing") {
        const auto f = rewritten(golden_file, [](const std::string& k, auto&, auto&) { return k != "pos_instruct_embeddings"; });
        CHECK_THROWS_WITH(llamagen::load_weights(io::safetensors::from_memory(f), c), Contains("missing tensor 'pos_instruct_embeddings' [1, 64]"));
        CHECK_FALSE(llamagen::infer_variant(c, io::safetensors::from_memory(f)).position_instruction);  // then a plain GPT
    }
    SECTION("unexpected: a RandAR checkpoint read as a plain GPT") {
        llamagen::gpt_config plain = c;
        plain.position_instruction = false;
        CHECK_THROWS_WITH(llamagen::load_weights(golden_file, plain), Contains("unexpected tensor 'pos_instruct_embeddings' [1, 64]") && Contains("a RandAR checkpoint"));
        // zero_class_qk is an attribute, freqs_cis a plain attribute: neither is in the state dict
        const std::vector<float> flag(1, 1.0f), freqs(257 * 8 * 2, 0.0f);
        const auto z = rewritten(golden_file, keep, [&](st_writer& w) { w.add("zero_class_qk", {1}, flag); });
        CHECK_THROWS_WITH(llamagen::load_weights(io::safetensors::from_memory(z), c), Contains("unexpected tensor 'zero_class_qk' [1]"));
        const auto fc = rewritten(golden_file, keep, [&](st_writer& w) { w.add("freqs_cis", {257, 8, 2}, freqs); });
        CHECK_THROWS_WITH(llamagen::load_weights(io::safetensors::from_memory(fc), c), Contains("unexpected tensor 'freqs_cis'") && Contains("runtime buffer"));
    }
    SECTION("mis-shaped") {
        const auto f = rewritten(golden_file, [](const std::string& k, std::vector<std::int64_t>& s, std::vector<float>&) {
            if (k == "pos_instruct_embeddings") s = {64};
            return true;
        });
        CHECK_THROWS_WITH(llamagen::load_weights(io::safetensors::from_memory(f), c), Contains("tensor 'pos_instruct_embeddings' has shape [64]") && Contains("needs [1, 64]"));
        CHECK_THROWS_WITH(llamagen::infer_variant(c, io::safetensors::from_memory(f)), Contains("pos_instruct_embeddings has shape [64]") && Contains("needs [1, 64]"));
        const auto wide = rewritten(golden_file, [](const std::string& k, std::vector<std::int64_t>& s, std::vector<float>& v) {
            if (k == "pos_instruct_embeddings") { s = {2, 64}; v.resize(128); }
            return true;
        });
        CHECK_THROWS_WITH(llamagen::load_weights(io::safetensors::from_memory(wide), c), Contains("tensor 'pos_instruct_embeddings' has shape [2, 64]"));
    }
}

TEST_CASE("randar: a plan with query rows needs the position-instruction vector and cached queries", "[randar][errors]") {
    const std::vector<index_t> order = [] {
        std::vector<index_t> o(static_cast<std::size_t>(kN));
        for (index_t i = 0; i < kN; ++i) o[static_cast<std::size_t>(i)] = (i * 37) % kN;  // 37 is prime to 256: a permutation
        return o;
    }();
    const ordo::plan p = training_layout(order);
    CHECK(llamagen::has_query_rows(p.view()));
    CHECK_FALSE(llamagen::has_query_rows(ordo::make_plan(ordo::parse_policy("raster"), ordo::grid_shape::make(4, 4)).view()));
    CHECK(llamagen::fit_variant(gpt_helpers::tiny(), p.view()).position_instruction);

    // a plain LlamaGen checkpoint cannot run it
    llamagen::gpt_config plain = llamagen::model_args_from_json(slurp(e2e(kCase + ".weights.json")));
    plain.position_instruction = false;
    CHECK_THROWS_WITH(llamagen::check_plan_fit(plain, p.view()), Contains("a RandAR plan needs the position-instruction vector") &&
                                                                       Contains("pos_instruct_embeddings [1, 64]"));
    const llamagen::gpt_weights pw = llamagen::random_weights(plain, 1);
    ordo::eigen::gpt_model pm(pw);
    CHECK_THROWS_WITH(pm.prepare(p.view(), 1), Contains("a RandAR plan needs the position-instruction vector"));
    // ... nor can a hand-made batch with a query row make it embed one
    {
        const ordo::index_t slot = 1;
        const ordo::rope_coord rc = ordo::rope_of(p.view(), slot);
        const ordo::fed_input in{ordo::slot_kind::query, order[0], -1, order[0]};
        const ordo::request req{3, 0, {}, {}};
        const ordo::step_batch b{p.view(), 0, 1, 1, 1, kVocab, std::span<const index_t>(&slot, 1), std::span<const ordo::rope_coord>(&rc, 1),
                                 std::span<const ordo::fed_input>(&in, 1), std::span<const ordo::request>(&req, 1)};
        ordo::contiguous_kv_cache<float> cache(pm.num_layers(), 1, ordo::kv_cache_len(p.view()), pm.cache_width());
        std::vector<float> out(b.logits_size());
        CHECK_THROWS_WITH(pm.forward(b, cache, std::span<float>(out)), Contains("query row") && Contains("no position-instruction vector"));
    }

    // a RandAR checkpoint runs it, and plain plans too (the vector is then unused)
    llamagen::gpt_config randar = plain;
    randar.position_instruction = true;
    CHECK_NOTHROW(llamagen::check_plan_fit(randar, p.view()));
    CHECK_NOTHROW(llamagen::check_plan_fit(randar, ordo::make_plan(ordo::parse_policy("raster"), ordo::grid_shape::make(16, 16)).view()));

    // queries that are not cached (ARPG's cross-decoder queries) are another model's
    ordo::plan_builder b(ordo::grid_shape::make(1, 2), 1, ordo::mask_mode::step_causal);
    b.set_query_mode(ordo::query_mode::cross);
    const index_t s0 = b.add_token_slot(0), s1 = b.add_token_slot(1);
    b.begin_step();
    b.feed(0);
    b.emit(0, {ordo::source{b.feed_query(s0, 0), 0, 1.0f}});
    b.begin_step();
    b.feed(s0);
    b.emit(1, {ordo::source{b.feed_query(s1, 1), 0, 1.0f}});
    const ordo::plan cross = std::move(b).finish();
    CHECK_THROWS_WITH(llamagen::check_plan_fit(randar, cross.view()), Contains("not written to the cache") && Contains("ARPG"));
}

TEST_CASE("randar: the training forward equals the official teacher logits", "[randar][golden]") {
    const golden g = load_golden();
    ordo::eigen::gpt_model model(g.weights);

    SECTION("one pass over the layout [cls, P_0, x_0, ..., P_{N-1}, x_{N-1}]") {
        const ordo::plan p = training_layout(g.order);
        REQUIRE(p.view().header.train_slots == 2 * kN);  // shifted: x_{N-1} is not fed
        ordo::contiguous_kv_cache<float> cache(model.num_layers(), 1, ordo::teacher_cache_len(p.view()), model.cache_width());
        const std::vector<float> ours = ordo::teacher_forcing_logits(model, cache, p.view(), g.tokens, g.label);
        const float d = max_abs_diff(ours, g.raster);
        const float ds = max_abs_diff(by_generation_index(ours, g.order), g.seq);
        INFO("one-pass teacher forcing: max |diff| = " << d << " (raster), " << ds << " (by generation index); max |logit| = " << gpt_helpers::max_abs(g.raster));
        CHECK(d < kTolerance);
        CHECK(ds < kTolerance);
        WARN("randar one-pass teacher forcing max |diff| = " << d);
    }
    SECTION("step by step through the KV cache (the same layout replayed on the given tokens)") {
        const ordo::plan p = training_layout(g.order, ordo::teacher_forcing::replay);
        ordo::contiguous_kv_cache<float> cache(model.num_layers(), 1, ordo::teacher_cache_len(p.view()), model.cache_width());
        const std::vector<float> ours = ordo::teacher_forcing_logits(model, cache, p.view(), g.tokens, g.label);
        const float d = max_abs_diff(ours, g.raster);
        INFO("replayed steps: max |diff| = " << d);
        CHECK(d < kTolerance);
    }
    SECTION("positions as generation indices, the cells from the request's order (per_request_positions)") {
        const ordo::plan p = training_layout(g.order, ordo::teacher_forcing::replay, /*by_index=*/true);
        const ordo::request req{g.label, 0, {}, std::span<const index_t>(g.order)};
        ordo::session s(p.view(), std::span<const ordo::request>(&req, 1), ordo::make_sampler(ordo::greedy{}), model.vocab_size());
        ordo::contiguous_kv_cache<float> cache(model.num_layers(), 1, ordo::kv_cache_len(p.view()), model.cache_width());
        ordo::check_fit(p.view(), model, cache, 1);
        std::vector<float> out, mixed(static_cast<std::size_t>(kVocab));
        float worst = 0.0f;
        while (!s.done()) {
            const ordo::step_batch& b = s.next();
            REQUIRE(b.per_request_positions);
            out.resize(b.logits_size());
            model.forward(b, cache, std::span<float>(out));
            const index_t t = p.view().step(b.step).emitted[0];  // the generation index
            s.final_logits(out, 0, 0, mixed);
            worst = std::max(worst, max_abs_diff(mixed, std::span<const float>(g.seq).subspan(static_cast<std::size_t>(t) * kVocab, kVocab)));
            const index_t given = g.tokens[static_cast<std::size_t>(g.order[static_cast<std::size_t>(t)])];
            s.commit_tokens(std::span<const index_t>(&given, 1), 1);
        }
        INFO("per-request orders: max |diff| = " << worst);
        CHECK(worst < kTolerance);
        const auto got = s.tokens(0);
        CHECK(std::vector<index_t>(got.begin(), got.end()) == g.tokens);
    }
}

TEST_CASE("randar: the P token is the vector rotated by its target's RoPE, and the rotation matters", "[randar][golden]") {
    // The same forward with each P_t fed as a table row the test fills itself: a copy of the golden
    // weights as a plain GPT whose transition table row t is P_t. Rotated here from the official
    // formula (fp32 table 1 / base^(2k / (head_dim/2)), interleaved pairs per head, the first
    // head_dim/4 pairs by the row, the rest by the column) it reproduces the teacher logits; left
    // unrotated it does not.
    const golden g = load_golden();
    const io::safetensors wf = io::safetensors::open(e2e(kCase + ".weights.safetensors"));
    const std::vector<float> v = read_f32(wf, "pos_instruct_embeddings");
    llamagen::gpt_config c = g.cfg;
    c.position_instruction = false;
    c.transition_tokens = kN;
    const index_t hd = c.head_dim(), q = hd / 4;

    const ordo::plan p = training_layout(g.order);
    const index_t rows = p.view().header.train_slots;
    std::vector<index_t> slots(static_cast<std::size_t>(rows));
    std::vector<ordo::rope_coord> rope(slots.size());
    std::vector<ordo::fed_input> inputs(slots.size());
    for (index_t s = 0; s < rows; ++s) {
        const ordo::slot_entry& e = p.view().slots[static_cast<std::size_t>(s)];
        slots[static_cast<std::size_t>(s)] = s;
        rope[static_cast<std::size_t>(s)] = ordo::rope_of(p.view(), s);  // P_t still rotates with its target inside attention
        if (e.kind == ordo::slot_kind::prefix) inputs[static_cast<std::size_t>(s)] = {e.kind, 0, g.label};
        else if (e.kind == ordo::slot_kind::token) inputs[static_cast<std::size_t>(s)] = {e.kind, e.index, g.tokens[static_cast<std::size_t>(e.index)]};
        else inputs[static_cast<std::size_t>(s)] = {ordo::slot_kind::transition, (s + 1) / 2, (s + 1) / 2};  // P_t at slot 1 + 2t: M_{t+1}
    }
    const ordo::request req{g.label, 0, {}, {}};

    auto run = [&](bool rotate) {
        llamagen::gpt_weights w(c);
        for (std::size_t i = 0; i < w.tensors().size(); ++i) {
            const std::string& key = w.tensors()[i].key;
            std::span<float> dst = w.storage(i);
            if (key != "spe_tok_embeddings.special_embeddings.weight") {
                wf.read(wf.at(key), dst);
                continue;
            }
            for (index_t t = 0; t < kN; ++t) {
                float* row = dst.data() + static_cast<std::size_t>(t) * static_cast<std::size_t>(c.dim);
                std::copy(v.begin(), v.end(), row);
                if (!rotate) continue;
                const ordo::coord at = p.view().grid().at(g.order[static_cast<std::size_t>(t)]);
                for (index_t h = 0; h < c.n_head; ++h)
                    for (index_t j = 0; j < hd / 2; ++j) {
                        const float freq = 1.0f / std::pow(c.rope_base, static_cast<float>(2 * (j % q)) / static_cast<float>(hd / 2));
                        const float angle = static_cast<float>(j < q ? at.h : at.w) * freq;
                        float* x = row + h * hd + 2 * j;
                        const float a = x[0], b = x[1];
                        x[0] = a * std::cos(angle) - b * std::sin(angle);
                        x[1] = b * std::cos(angle) + a * std::sin(angle);
                    }
            }
        }
        ordo::eigen::gpt_model m(w);
        ordo::contiguous_kv_cache<float> cache(m.num_layers(), 1, ordo::teacher_cache_len(p.view()), m.cache_width());
        const ordo::step_batch b{p.view(), 0, 1, rows, 1, kVocab, slots, rope, inputs, std::span<const ordo::request>(&req, 1), rows};
        std::vector<float> out(b.logits_size());
        m.forward(b, cache, std::span<float>(out));
        std::vector<float> at_p(static_cast<std::size_t>(kN) * kVocab);  // logits at P_t's slot 1 + 2t: predicts order[t]
        for (index_t t = 0; t < kN; ++t)
            std::copy_n(out.begin() + static_cast<std::ptrdiff_t>(1 + 2 * t) * kVocab, kVocab, at_p.begin() + static_cast<std::ptrdiff_t>(t) * kVocab);
        return at_p;
    };
    const float rotated = max_abs_diff(run(true), g.seq), unrotated = max_abs_diff(run(false), g.seq);
    INFO("P rotated in the test: max |diff| = " << rotated << "; unrotated: " << unrotated);
    CHECK(rotated < kTolerance);
    CHECK(unrotated > 1e-3f);
}

TEST_CASE("randar: every call's logits and the greedy tokens equal the official generate(), with CFG", "[randar][golden]") {
    const golden g = load_golden();
    const json run = json::parse(slurp(e2e(kCase + ".json")));
    const ordo::eigen::gpt_model model(g.weights);
    const io::safetensors lf = io::safetensors::open(e2e(kCase + ".logits.safetensors"));
    const ordo::grid_shape grid = ordo::grid_shape::make(16, 16);
    const std::vector<index_t> order = run["order"].get<std::vector<index_t>>();
    std::vector<index_t> want;
    for (const auto& row : run["tokens_raster"]) for (int t : row) want.push_back(t);
    const std::vector<float> scales = run["cfg_scales"].get<std::vector<float>>();
    const ordo::cfg guidance{scales[1], -1, {}, ordo::cfg_ramp::linear_in_step_start, scales[0]};
    const auto greedy = ordo::make_sampler(ordo::top_k{1}, ordo::greedy{});
    // the order in the plan, and the schedule with the order as the request's position table
    const ordo::plan baked = ordo::make_plan(ordo::interleaved_queries{88, 0, order}, grid);
    const ordo::plan schedule = ordo::make_plan(ordo::parse_policy("randar:88,seed=request"), grid);
    REQUIRE(baked.num_steps() == run["num_forward_calls"].get<int>());
    for (const bool per_request : {false, true})
        for (const bool paged : {false, true}) {
            INFO((per_request ? "schedule + position table" : "order in the plan") << (paged ? ", paged cache" : ", contiguous cache"));
            ordo::request req{run["label"].get<int>(), 0, {}, {}};
            if (per_request) req.order = order;
            decode_helpers::golden_steps steps{lf, kVocab};
            const auto got = decode_helpers::decode(model, per_request ? schedule : baked, {req}, guidance, g.cfg.null_label(), paged, greedy, steps);
            INFO("max |diff| over all calls = " << steps.worst << " (smallest top-1/top-2 margin " << run["min_top1_top2_margin"].get<double>() << ")");
            CHECK(steps.worst < 1e-4f);
            CHECK(got[0] == want);
        }
}
