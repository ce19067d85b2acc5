// The Eigen GPT backend beyond the golden cases: every order runs on it, the KV-cache decode agrees
// with the one-pass teacher-forcing forward, caches and batches do not change a request's tokens,
// and bad checkpoints, configs and plans fail with messages that name the problem.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include <ordo/models/llamagen/checkpoint.hpp>
#include <ordo/eigen/gpt.hpp>
#include <ordo/models/llamagen/model_args.hpp>
#include <ordo/engine/teacher.hpp>
#include <ordo/ordo.hpp>

#include "gpt_helpers.hpp"

using Catch::Contains;
namespace oe = ordo::eigen;

namespace {

using gpt_helpers::max_abs_diff;
using gpt_helpers::spread_weights;
using gpt_helpers::tiny;

std::string golden(const std::string& name) { return std::string(ORDO_TEST_DATA) + "/e2e/" + name; }
std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

using greedy_chain = decltype(ordo::make_sampler(ordo::greedy{}));

// Decodes with greedy sampling and returns the tokens plus every position's final logits.
struct decoded {
    std::vector<ordo::index_t> tokens;
    std::vector<float> logits;  // [position][vocab]
};
decoded decode(oe::gpt_model& m, const ordo::plan& p, ordo::index_t label) {
    const ordo::request req{label, 0, {}};
    ordo::session<greedy_chain> s(p.view(), std::span<const ordo::request>(&req, 1), ordo::make_sampler(ordo::greedy{}), m.vocab_size());
    ordo::contiguous_kv_cache<float> cache(m.num_layers(), 1, ordo::kv_cache_len(p), m.cache_width());
    ordo::check_fit(p.view(), m, cache, 1);
    decoded d;
    const std::size_t v = static_cast<std::size_t>(m.vocab_size());
    d.logits.resize(static_cast<std::size_t>(p.view().num_positions()) * v);
    std::vector<float> logits, mixed(v);
    while (!s.done()) {
        const ordo::step_batch& b = s.next();
        logits.resize(b.logits_size());
        m.forward(b, cache, logits);
        const ordo::step_view st = p.step(b.step);
        for (ordo::index_t e = 0; e < st.num_emitted(); ++e) {
            s.final_logits(logits, 0, e, mixed);
            std::copy(mixed.begin(), mixed.end(), d.logits.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(st.emitted[e]) * v));
        }
        s.commit(logits);
    }
    d.tokens.assign(s.tokens(0).begin(), s.tokens(0).end());
    return d;
}

}  // namespace

TEST_CASE("KV-cache decoding equals the one-pass teacher-forcing forward, for every order with a training layout", "[gpt]") {
    // The official check: generation logits == the training forward on the generated tokens.
    for (const char* spec : {"raster", "par:2x2", "par:4x4", "nar", "par:2x2+nar"}) {
        INFO(spec);
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), ordo::grid_shape::make(8, 8));
        const ordo::models::llamagen::gpt_weights w = spread_weights(ordo::models::llamagen::fit_variant(tiny(), p.view()), 7);
        oe::gpt_model m(w);
        const decoded d = decode(m, p, 2);
        ordo::contiguous_kv_cache<float> cache(m.num_layers(), 1, ordo::teacher_cache_len(p), m.cache_width());
        const std::vector<float> t = ordo::teacher_forcing_logits(m, cache, p.view(), d.tokens, 2);
        CHECK(max_abs_diff(t, d.logits) < 1e-4f);
        // and the tokens are not degenerate: the model is really conditioned on its context
        CHECK(std::count(d.tokens.begin(), d.tokens.end(), d.tokens[0]) < 60);
    }
}

TEST_CASE("every built-in order runs on the GPT, ZipAR's stand-ins included", "[gpt]") {
    const ordo::grid_shape g = ordo::grid_shape::make(8, 8);
    for (const std::string& spec : ordo::builtin_policies(g)) {
        INFO(spec);
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), g);
        const ordo::models::llamagen::gpt_weights w = spread_weights(ordo::models::llamagen::fit_variant(tiny(), p.view()), 3);
        oe::gpt_model m(w);
        const decoded d = decode(m, p, 1);
        for (ordo::index_t t : d.tokens) CHECK((t >= 0 && t < 40));
    }
}

TEST_CASE("a request's tokens do not depend on its batch or on the cache layout", "[gpt]") {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy("par:2x2"), ordo::grid_shape::make(8, 8));
    const ordo::models::llamagen::gpt_weights w = spread_weights(tiny(3), 11);
    oe::gpt_model m(w);
    const auto sampler = ordo::make_sampler(ordo::top_k{8}, ordo::multinomial{});
    ordo::generate_options o;
    o.session.guidance.scale = 3.0f;
    o.session.null_label = 5;
    o.session.seed = 99;
    const ordo::index_t len = ordo::kv_cache_len(p);

    const std::vector<ordo::request> both{{1, 10, {}}, {4, 20, {}}};
    ordo::contiguous_kv_cache<float> c2(m.num_layers(), 4, len, m.cache_width());
    const auto together = ordo::generate(m, c2, p.view(), sampler, both, o);

    const std::vector<ordo::request> alone{{4, 20, {}}};
    // paged: pages of 8 slots, handed out in reverse order
    const ordo::index_t pages_per_seq = (len + 7) / 8, num_pages = 2 * pages_per_seq;
    std::vector<float> memory(static_cast<std::size_t>(num_pages) * static_cast<std::size_t>(m.num_layers()) * 2 * 8 * static_cast<std::size_t>(m.cache_width()));
    std::vector<ordo::index_t> indptr{0, pages_per_seq, 2 * pages_per_seq}, indices;
    for (ordo::index_t i = num_pages - 1; i >= 0; --i) indices.push_back(i);
    ordo::paged_kv_cache<float> paged(memory, m.num_layers(), 8, m.cache_width(), indptr, indices);
    const auto single = ordo::generate(m, paged, p.view(), sampler, alone, o);
    CHECK(single[0] == together[1]);
    CHECK(together[0] != together[1]);
}

TEST_CASE("a plan the checkpoint cannot run is a clear error", "[gpt][errors]") {
    const ordo::grid_shape g = ordo::grid_shape::make(8, 8);
    const auto sampler = ordo::make_sampler(ordo::greedy{});
    const std::vector<ordo::request> req{{0, 0, {}}};
    auto run = [&](const ordo::models::llamagen::gpt_config& c, const char* spec) {
        const ordo::models::llamagen::gpt_weights w = ordo::models::llamagen::random_weights(c, 1);
        oe::gpt_model m(w);
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), g);
        ordo::contiguous_kv_cache<float> cache(m.num_layers(), 1, ordo::kv_cache_len(p), m.cache_width());
        ordo::generate(m, cache, p.view(), sampler, req);
    };
    REQUIRE_THROWS_WITH(run(tiny(), "nar"), Contains("medusa_norm/medusa_output"));
    REQUIRE_THROWS_WITH(run(tiny(3), "par:4x4"), Contains("the plan feeds 15 PAR transition tokens") && Contains("checkpoint has 3"));
    REQUIRE_THROWS_WITH(run(tiny(), "par:2x2"), Contains("not a PAR checkpoint"));
    // a cache built for another model
    const ordo::models::llamagen::gpt_weights w = ordo::models::llamagen::random_weights(tiny(), 1);
    oe::gpt_model m(w);
    const ordo::plan p = ordo::make_plan(ordo::parse_policy("raster"), g);
    ordo::contiguous_kv_cache<float> narrow(m.num_layers(), 1, ordo::kv_cache_len(p), 8);
    REQUIRE_THROWS_WITH(ordo::generate(m, narrow, p.view(), sampler, req), Contains("kv cache has 2 layers of width 8"));
    ordo::contiguous_kv_cache<float> shallow(1, 1, ordo::kv_cache_len(p), m.cache_width());
    REQUIRE_THROWS_WITH(ordo::generate(m, shallow, p.view(), sampler, req), Contains("kv cache has 1 layers"));
    // a label outside the table
    ordo::contiguous_kv_cache<float> cache(m.num_layers(), 1, ordo::kv_cache_len(p), m.cache_width());
    const std::vector<ordo::request> bad{{6, 0, {}}};
    REQUIRE_THROWS_WITH(ordo::generate(m, cache, p.view(), sampler, bad), Contains("class label 6 outside 0..5"));
    // video grids: this GPT has 2D RoPE
    const ordo::plan v = ordo::make_plan(ordo::parse_policy("nar"), ordo::grid_shape::make(2, 4, 4));
    const ordo::models::llamagen::gpt_weights wn = ordo::models::llamagen::random_weights(tiny(0, 1), 1);
    oe::gpt_model mn(wn);
    ordo::contiguous_kv_cache<float> vc(mn.num_layers(), 1, ordo::kv_cache_len(v), mn.cache_width());
    CHECK_THROWS_WITH(ordo::generate(mn, vc, v.view(), sampler, req), Contains("absolute positions") || Contains("time axis"));
}

TEST_CASE("checkpoints load strictly: a missing, unexpected or mis-shaped tensor is named", "[gpt][errors]") {
    const auto nar = ordo::io::safetensors::open(golden("nar_G8_cfg2.0_label3.weights.safetensors"));
    const auto raster = ordo::io::safetensors::open(golden("raster_G8_cfg2.0_label3.weights.safetensors"));
    const ordo::models::llamagen::gpt_config rc = ordo::models::llamagen::model_args_from_json(slurp(golden("raster_G8_cfg2.0_label3.weights.json")));
    const ordo::models::llamagen::gpt_config nc = ordo::models::llamagen::model_args_from_json(slurp(golden("nar_G8_cfg2.0_label3.weights.json")));
    CHECK_NOTHROW(ordo::models::llamagen::load_weights(raster, rc));
    // NAR weights under a LlamaGen config: the extra block is unexpected
    REQUIRE_THROWS_WITH(ordo::models::llamagen::load_weights(nar, rc), Contains("unexpected tensor 'layers.2.") && Contains("more layers"));
    // LlamaGen weights under a NAR config: the B head is missing
    REQUIRE_THROWS_WITH(ordo::models::llamagen::load_weights(raster, nc), Contains("missing tensor 'layers.2.attention.wqkv.weight'"));
    ordo::models::llamagen::gpt_config wide = rc;
    wide.vocab_size = 512;
    REQUIRE_THROWS_WITH(ordo::models::llamagen::load_weights(raster, wide), Contains("tensor 'tok_embeddings.weight' has shape [256, 64]") && Contains("needs [512, 64]"));
    ordo::models::llamagen::gpt_config par = rc;
    par.transition_tokens = 3;
    REQUIRE_THROWS_WITH(ordo::models::llamagen::load_weights(raster, par), Contains("missing tensor 'spe_tok_embeddings.special_embeddings.weight' [3, 64]"));
}

TEST_CASE("a size preset reads the variant off the checkpoint", "[gpt]") {
    ordo::models::llamagen::gpt_config base = ordo::models::llamagen::make_preset("gpt-b");
    CHECK(base.dim == 768);
    CHECK(base.n_layer == 12);
    CHECK(base.ffn_hidden() == 2048);
    CHECK(ordo::models::llamagen::make_preset("3B").dim == 3200);
    REQUIRE_THROWS_WITH(ordo::models::llamagen::make_preset("XXXXL"), Contains("unknown GPT preset 'XXXXL'") && Contains("B, L, XL, XXL, 3B"));
    // the tiny golden NAR model has 2 trunk layers: a 'preset' of its size
    base.dim = 64;
    base.n_layer = 2;
    base.n_head = 4;
    base.multiple_of = 32;
    const ordo::models::llamagen::gpt_config c = ordo::models::llamagen::infer_variant(base, ordo::io::safetensors::open(golden("nar_G8_cfg2.0_label3.weights.safetensors")));
    CHECK(c.extra_blocks == 1);
    CHECK(c.vocab_size == 256);
    CHECK(c.num_classes == 10);
    const ordo::models::llamagen::gpt_config pc = ordo::models::llamagen::infer_variant(base, ordo::io::safetensors::open(golden("par_G8_n4_cfg2.0_label3.weights.safetensors")));
    CHECK(pc.transition_tokens == 3);
    base.dim = 128;
    REQUIRE_THROWS_WITH(ordo::models::llamagen::infer_variant(base, ordo::io::safetensors::open(golden("par_G8_n4_cfg2.0_label3.weights.safetensors"))),
                        Contains("embedding width 64 does not match the preset's dim 128"));
}

TEST_CASE("saved weights load back bit for bit", "[gpt]") {
    const ordo::models::llamagen::gpt_config c = tiny(3);
    ordo::models::llamagen::gpt_weights w = ordo::models::llamagen::random_weights(c, 5);
    const std::string path = "ordo_test_saved_weights.safetensors";
    ordo::models::llamagen::save_weights(w, path);
    const ordo::models::llamagen::gpt_weights back = ordo::models::llamagen::load_weights(ordo::io::safetensors::open(path), c);
    std::remove(path.c_str());
    ordo::models::llamagen::gpt_weights& b = const_cast<ordo::models::llamagen::gpt_weights&>(back);
    for (std::size_t i = 0; i < w.tensors().size(); ++i) {
        const auto x = w.storage(i), y = b.storage(i);
        CHECK(std::equal(x.begin(), x.end(), y.begin()));
    }
}

TEST_CASE("ModelArgs JSON: official fields, and errors naming the field", "[gpt][errors]") {
    const ordo::models::llamagen::gpt_config c = ordo::models::llamagen::model_args_from_json(R"({"dim": 128, "n_layer": 3, "n_head": 4, "n_kv_head": 2, "vocab_size": 100,
        "num_classes": 7, "ffn_dim_multiplier": null, "multiple_of": 64, "norm_eps": 1e-06, "class_dropout_prob": 0.1,
        "model_type": "c2i", "spe_token_num": 15, "ar_token_num": 16})");
    CHECK(c.dim == 128);
    CHECK(c.kv_heads() == 2);
    CHECK(c.transition_tokens == 15);
    CHECK(c.norm_eps == Approx(1e-6f));
    CHECK(c.ffn_hidden() == 384);  // int(2*4*128/3) = 341 -> 384
    REQUIRE_THROWS_WITH(ordo::models::llamagen::model_args_from_json(R"({"dim": "wide"})"), Contains("'dim' must be an integer"));
    REQUIRE_THROWS_WITH(ordo::models::llamagen::model_args_from_json(R"({"dim": 64.5})"), Contains("'dim' must be an integer"));
    REQUIRE_THROWS_WITH(ordo::models::llamagen::model_args_from_json(R"({"dim": 100, "n_head": 3})"), Contains("dim 100 is not divisible by n_head 3"));
    REQUIRE_THROWS_WITH(ordo::models::llamagen::model_args_from_json(R"({"model_type": "t2i"})"), Contains("class-conditional"));
    REQUIRE_THROWS_WITH(ordo::models::llamagen::model_args_from_json(R"({"dim": 64,)"), Contains("not valid JSON"));
    REQUIRE_THROWS_WITH(ordo::models::llamagen::model_args_from_json(R"({"n_layer": 0})"), Contains("n_layer must be >= 1"));
}
