// The GPU GPT against the official code (the golden tiny LlamaGen, PAR and NAR models of
// tests/data/e2e, as the Eigen backend's golden test) and against the Eigen backend for every
// order, in fp32 and bf16, on contiguous and paged device caches, with head_dim 16 (the tiny
// models) and the official presets' 64 (B to XXL) and 100 (3B). A new plan or a new cache never
// meets a device plan or a captured graph made for another.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>

#include <ordo/cuda/gpt.cuh>
#include <ordo/models/llamagen/checkpoint.hpp>
#include <ordo/models/llamagen/model_args.hpp>
#include <ordo/engine/teacher.hpp>
#include <ordo/ordo.hpp>

#include "../gpt_helpers.hpp"
#include "reference.hpp"

namespace oc = ordo::cuda;
using Catch::Contains;

namespace {

// fp32: cuBLAS sums in another order than PyTorch and the CPU (~1e-5), as the Eigen backend's
// golden test allows; the greedy grids must be exact (smallest top-1/top-2 margin 8.9e-3).
constexpr float kTolerance = 1e-4f;
// bf16 weights and GEMM inputs (8 significant bits): logits move by up to a few 1e-2 on these
// models; checked relative to the logits' scale, and the grids are not required to match.
constexpr float kBf16Relative = 5e-2f;

std::string e2e(const std::string& name) { return std::string(ORDO_TEST_DATA) + "/e2e/" + name; }
std::string slurp(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    REQUIRE(f);
    std::string s;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) s.append(buf, n);
    std::fclose(f);
    return s;
}

struct golden_case {
    const char* name;
    const char* policy;
    bool teacher = true;  // has a .teacher file (ZipAR is training-free: its model trains as raster)
};
const golden_case kCases[] = {
    {"raster_G8_cfg2.0_label3", "raster"},
    {"par_G8_n4_cfg2.0_label3", "par:2x2"},
    {"nar_G8_cfg2.0_label3", "nar"},
    {"zipar_G8_w3_cfg2.0_label3", "zipar:3", false},  // the released ZipAR: unwritten slots read as zeros
};

using gpt_helpers::max_abs;
using gpt_helpers::max_abs_diff;
using gpt_helpers::read_f32;
using gpt_helpers::spread_weights;
using gpt_helpers::tiny;

ordo::models::llamagen::gpt_weights load_case(const golden_case& c) {
    const ordo::io::safetensors wf = ordo::io::safetensors::open(e2e(std::string(c.name) + ".weights.safetensors"));
    return ordo::models::llamagen::load_weights(wf, ordo::models::llamagen::model_args_from_json(slurp(e2e(std::string(c.name) + ".weights.json"))));
}

// The golden teacher-forcing case: the token grid, the label and the official logits.
struct teacher_case {
    std::vector<ordo::index_t> tokens;
    ordo::index_t label = 0;
    std::vector<float> logits;
};
teacher_case read_teacher(const golden_case& c) {
    const ordo::io::safetensors tf = ordo::io::safetensors::open(e2e(std::string(c.name) + ".teacher.safetensors"));
    std::vector<std::int64_t> t64(64), label(1);
    tf.read(tf.at("tokens_raster"), t64);
    tf.read(tf.at("label"), label);
    return {std::vector<ordo::index_t>(t64.begin(), t64.end()), static_cast<ordo::index_t>(label[0]), read_f32(tf, tf.find("logits_raster") ? "logits_raster" : "logits")};
}

// tiny() with head_dim hd (two heads), and a weight seed whose greedy decodes have a top-1/top-2
// margin of at least 1e-2 in every order below (checked on the host with the Eigen backend), far
// above the fp32 summation-order differences between cuBLAS and Eigen.
struct head_dim_case {
    ordo::index_t head_dim;
    std::uint64_t seed;
};
constexpr head_dim_case kHeadDims[] = {{16, 11}, {64, 14}, {100, 12}};
ordo::models::llamagen::gpt_config tiny_with_head_dim(ordo::index_t hd) {
    ordo::models::llamagen::gpt_config c = tiny();
    c.dim = c.n_head * hd;
    return c;
}

// Greedy decode on the GPU through a session; logits [position][vocab] as the sampler saw them.
template <class W, class Cache>
ordo_test::decoded gpu_greedy_decode(oc::gpt_model<W>& model, Cache& cache, const ordo::plan_view& p, int label, float scale) {
    return ordo_test::greedy_decode(model, cache, p, label, scale, model.config().null_label());
}

}  // namespace

TEST_CASE("cuda gpt: teacher-forced logits equal the official training forward (fp32)", "[cuda-gpt]") {
    for (const golden_case& c : kCases) {
        if (!c.teacher) continue;
        INFO(c.name);
        const ordo::models::llamagen::gpt_weights hw = load_case(c);
        const oc::device_gpt_weights<float> w(hw);
        oc::gpt_model<float> model(w);
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(c.policy), ordo::grid_shape::make(8, 8));
        oc::device_kv_cache<float> cache(model.num_layers(), 1, ordo::teacher_cache_len(p), model.cache_width());
        const teacher_case tc = read_teacher(c);
        const std::vector<float> ours = ordo::teacher_forcing_logits(model, cache, p.view(), tc.tokens, tc.label);
        const std::vector<float>& ref = tc.logits;
        const float d = max_abs_diff(ours, ref);
        std::printf("cuda gpt fp32 teacher forcing %s: max |diff| = %.3g\n", c.name, d);
        CHECK(d < kTolerance);
    }
}

TEST_CASE("cuda gpt: every decode step's logits and the greedy grid equal the official generate() (fp32), contiguous and paged caches", "[cuda-gpt]") {
    for (const golden_case& c : kCases) {
        INFO(c.name);
        const ordo_test::golden_run run = ordo_test::read_golden_run(e2e(std::string(c.name) + ".json"));
        const ordo::models::llamagen::gpt_weights hw = load_case(c);
        const oc::device_gpt_weights<float> w(hw);
        oc::gpt_model<float> model(w);
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(c.policy), ordo::grid_shape::make(8, 8));
        REQUIRE(p.num_steps() == run.num_forward_calls);
        const ordo::io::safetensors lf = ordo::io::safetensors::open(e2e(std::string(c.name) + ".logits.safetensors"));
        const std::size_t v = static_cast<std::size_t>(model.vocab_size());

        auto check_run = [&](const ordo_test::decoded& d, const char* cache_kind) {
            float worst = 0.0f;
            for (ordo::index_t s = 0; s < p.num_steps(); ++s) {
                char key[16];
                std::snprintf(key, sizeof key, "step_%03d", s);
                const std::vector<float> ref = read_f32(lf, key);
                const ordo::step_view st = p.step(s);
                REQUIRE(ref.size() == static_cast<std::size_t>(st.num_emitted()) * v);
                for (ordo::index_t e = 0; e < st.num_emitted(); ++e)
                    worst = std::max(worst, max_abs_diff(std::span<const float>(d.logits).subspan(static_cast<std::size_t>(st.emitted[e]) * v, v),
                                                         std::span<const float>(ref).subspan(static_cast<std::size_t>(e) * v, v)));
            }
            std::printf("cuda gpt fp32 %s (%s cache): max |diff| over all steps = %.3g\n", c.name, cache_kind, worst);
            CHECK(worst < kTolerance);
            CHECK(d.tokens == run.tokens);
        };
        const ordo::index_t seqs = run.cfg_scale > 1.0f ? 2 : 1;
        {
            oc::device_kv_cache<float> cache(model.num_layers(), seqs, ordo::kv_cache_len(p), model.cache_width());
            check_run(gpu_greedy_decode(model, cache, p.view(), run.label, run.cfg_scale), "contiguous");
        }
        {
            // pages of 8 slots, handed out to the two sequences in interleaved, reversed order
            const ordo::index_t page = 8, per_seq = (ordo::kv_cache_len(p) + page - 1) / page, pages = per_seq * seqs;
            std::vector<ordo::index_t> indptr(static_cast<std::size_t>(seqs) + 1), indices;
            for (ordo::index_t s = 0; s < seqs; ++s) {
                indptr[static_cast<std::size_t>(s) + 1] = (s + 1) * per_seq;
                for (ordo::index_t i = 0; i < per_seq; ++i) indices.push_back(pages - 1 - (i * seqs + s));
            }
            oc::device_buffer<float> memory(static_cast<std::size_t>(pages) * static_cast<std::size_t>(model.num_layers()) * 2 * page *
                                            static_cast<std::size_t>(model.cache_width()));
            oc::device_paged_kv_cache<float> cache(memory.span(), model.num_layers(), page, model.cache_width(), indptr, indices);
            check_run(gpu_greedy_decode(model, cache, p.view(), run.label, run.cfg_scale), "paged");
        }
    }
}

TEST_CASE("cuda gpt: bf16 weights stay within the bf16 tolerance of the official logits", "[cuda-gpt]") {
    for (const golden_case& c : kCases) {
        if (!c.teacher) continue;
        INFO(c.name);
        const ordo_test::golden_run run = ordo_test::read_golden_run(e2e(std::string(c.name) + ".json"));
        const ordo::models::llamagen::gpt_weights hw = load_case(c);
        const oc::device_gpt_weights<__nv_bfloat16> w(hw);
        oc::gpt_model<__nv_bfloat16> model(w);
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(c.policy), ordo::grid_shape::make(8, 8));
        // teacher forcing: the same inputs at every position, so errors do not compound through sampling
        oc::device_kv_cache<__nv_bfloat16> cache(model.num_layers(), 1, ordo::teacher_cache_len(p), model.cache_width());
        const teacher_case tc = read_teacher(c);
        const std::vector<float> ours = ordo::teacher_forcing_logits(model, cache, p.view(), tc.tokens, tc.label);
        const std::vector<float>& ref = tc.logits;
        const float d = max_abs_diff(ours, ref), scale = max_abs(ref);
        std::printf("cuda gpt bf16 teacher forcing %s: max |diff| = %.3g (logit scale %.3g)\n", c.name, d, scale);
        CHECK(d < kBf16Relative * scale);
    }
}

TEST_CASE("cuda gpt: every order decodes as the Eigen backend does (fp32, random weights), head_dim 16, 64 and 100", "[cuda-gpt]") {
    struct order {
        const char* spec;
        const char* grid;
    };
    const order orders[] = {{"raster", "8x8"}, {"par:2x2", "8x8"}, {"par:4x4", "8x8"}, {"nar", "8x8"},   {"par:2x2+nar", "8x8"},
                            {"zipar:3", "8x8"}, {"raster", "12x12"}, {"nar", "6x10"}, {"par:2x2", "12x12"}};
    for (const head_dim_case& hc : kHeadDims)
        for (const order& o : orders) {
            INFO(o.spec << " on " << o.grid << ", head_dim " << hc.head_dim);
            const ordo::plan p = ordo::make_plan(ordo::parse_policy(o.spec), ordo::parse_grid(o.grid));
            const ordo::models::llamagen::gpt_config cfg = ordo::models::llamagen::fit_variant(tiny_with_head_dim(hc.head_dim), p.view());
            REQUIRE(cfg.head_dim() == hc.head_dim);
            const ordo::models::llamagen::gpt_weights hw = spread_weights(cfg, hc.seed);
            const ordo_test::decoded want = ordo_test::eigen_greedy_decode(hw, p.view(), 2, 3.0f);
            const oc::device_gpt_weights<float> w(hw);
            oc::gpt_model<float> model(w);
            oc::device_kv_cache<float> cache(model.num_layers(), 2, ordo::kv_cache_len(p), model.cache_width());
            const ordo_test::decoded got = gpu_greedy_decode(model, cache, p.view(), 2, 3.0f);
            const float d = max_abs_diff(got.logits, want.logits);
            std::printf("cuda gpt vs eigen, %s on %s, head_dim %d: max |diff| of the final logits = %.3g\n", o.spec, o.grid, hc.head_dim, d);
            CHECK(d < 1e-3f * std::max(1.0f, max_abs(want.logits)));
            CHECK(got.tokens == want.tokens);
        }
}

TEST_CASE("cuda gpt: generate() runs a batch of requests through the device model", "[cuda-gpt]") {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy("par:2x2"), ordo::grid_shape::make(8, 8));
    const ordo::models::llamagen::gpt_weights hw = spread_weights(ordo::models::llamagen::fit_variant(tiny(), p.view()), 5);
    const oc::device_gpt_weights<float> w(hw);
    oc::gpt_model<float> model(w);
    const std::vector<ordo::request> reqs = {{1, 7, {}}, {3, 8, {}}, {1, 7, {}}};
    ordo::generate_options go;
    go.session.guidance.scale = 2.0f;
    go.session.null_label = hw.config().null_label();
    go.session.seed = 42;
    oc::device_kv_cache<float> cache(model.num_layers(), 6, ordo::kv_cache_len(p), model.cache_width());
    const auto chain = ordo::make_sampler(ordo::top_k{20}, ordo::multinomial{});
    const auto out = ordo::generate(model, cache, p.view(), chain, reqs, go);
    REQUIRE(out.size() == 3);
    CHECK(out[0] == out[2]);  // same label and id: same tokens, whatever shares the batch
    for (const auto& grid : out)
        for (ordo::index_t t : grid) CHECK((t >= 0 && t < model.vocab_size()));
    // alone in the batch, request 1 gets the same tokens
    oc::device_kv_cache<float> one(model.num_layers(), 2, ordo::kv_cache_len(p), model.cache_width());
    const auto alone = ordo::generate(model, one, p.view(), chain, std::span<const ordo::request>(&reqs[1], 1), go);
    CHECK(alone[0] == out[1]);
}

TEST_CASE("cuda gpt: plans, caches and inputs it cannot run are clear errors", "[cuda-gpt]") {
    const ordo::plan nar = ordo::make_plan(ordo::parse_policy("nar"), ordo::grid_shape::make(4, 4));
    const ordo::models::llamagen::gpt_weights hw = ordo::models::llamagen::random_weights(tiny(), 1);  // no B head, no transition tokens
    const oc::device_gpt_weights<float> w(hw);
    oc::gpt_model<float> model(w);
    oc::device_kv_cache<float> cache(model.num_layers(), 1, ordo::kv_cache_len(nar), model.cache_width());
    CHECK_THROWS_WITH(ordo::check_fit(nar.view(), model, cache, 1), Contains("medusa_norm"));
    const ordo::plan par = ordo::make_plan(ordo::parse_policy("par:2x2"), ordo::grid_shape::make(4, 4));
    CHECK_THROWS_WITH(ordo::check_fit(par.view(), model, cache, 1), Contains("not a PAR checkpoint"));
    const ordo::plan raster = ordo::make_plan(ordo::parse_policy("raster"), ordo::grid_shape::make(4, 4));
    oc::device_kv_cache<float> narrow(model.num_layers(), 1, ordo::kv_cache_len(raster), model.cache_width() / 2);
    std::vector<ordo::request> reqs(1);
    CHECK_THROWS_WITH(ordo::generate(model, narrow, raster.view(), ordo::make_sampler(ordo::greedy{}), reqs), Contains("width"));
    reqs[0].label = 99;  // outside the label table
    CHECK_THROWS_WITH(ordo::generate(model, cache, raster.view(), ordo::make_sampler(ordo::greedy{}), reqs), Contains("class label 99"));
    oc::device_kv_cache<float> small(model.num_layers(), 1, 4, model.cache_width());
    reqs[0].label = 0;
    CHECK_THROWS_WITH(ordo::generate(model, small, raster.view(), ordo::make_sampler(ordo::greedy{}), reqs), Contains("kv cache too small"));
}

TEST_CASE("cuda gpt: CUDA graphs replay each step exactly as the eager launches run it", "[cuda-gpt]") {
    for (const head_dim_case& hc : kHeadDims) {
        for (const char* spec : {"par:2x2+nar", "zipar:3", "raster"}) {
            INFO(spec << ", head_dim " << hc.head_dim);
            const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), ordo::grid_shape::make(8, 8));
            const ordo::models::llamagen::gpt_weights hw = spread_weights(ordo::models::llamagen::fit_variant(tiny_with_head_dim(hc.head_dim), p.view()), 3);
            const oc::device_gpt_weights<__nv_bfloat16> w(hw);
            oc::gpt_model<__nv_bfloat16> eager(w), graphed(w);
            graphed.use_graphs(true);
            oc::device_kv_cache<__nv_bfloat16> c1(eager.num_layers(), 2, ordo::kv_cache_len(p), eager.cache_width());
            oc::device_kv_cache<__nv_bfloat16> c2(graphed.num_layers(), 2, ordo::kv_cache_len(p), graphed.cache_width());
            const ordo_test::decoded want = gpu_greedy_decode(eager, c1, p.view(), 1, 2.0f);
            const ordo_test::decoded first = gpu_greedy_decode(graphed, c2, p.view(), 1, 2.0f);   // captures
            const ordo_test::decoded second = gpu_greedy_decode(graphed, c2, p.view(), 1, 2.0f);  // replays
            CHECK(max_abs_diff(first.logits, want.logits) == 0.0f);
            CHECK(max_abs_diff(second.logits, want.logits) == 0.0f);
            CHECK(first.tokens == want.tokens);
            CHECK(second.tokens == want.tokens);
        }
    }
}

#include <ordo/cuda/generate.cuh>

TEST_CASE("cuda gpt: sampling on the device gives generate()'s tokens (host sampler), every order, with CFG", "[cuda-gpt]") {
    const auto chain = ordo::make_sampler(ordo::temperature{1.1f}, ordo::top_k{40}, ordo::top_p{0.9f}, ordo::multinomial{});
    for (const char* spec : {"raster", "par:2x2", "nar", "par:2x2+nar", "zipar:3"}) {
        INFO(spec);
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), ordo::grid_shape::make(8, 8));
        const ordo::models::llamagen::gpt_weights hw = spread_weights(ordo::models::llamagen::fit_variant(tiny(), p.view()), 21);
        const oc::device_gpt_weights<float> w(hw);
        oc::gpt_model<float> model(w);
        const std::vector<ordo::request> reqs = {{1, 70, {}}, {4, 71, {}}, {2, 72, {}}};
        ordo::generate_options go;
        go.session.guidance.scale = 3.0f;
        go.session.guidance.interval = 20;
        go.session.null_label = hw.config().null_label();
        go.session.seed = 9;
        oc::device_kv_cache<float> cache(model.num_layers(), 6, ordo::kv_cache_len(p), model.cache_width());
        const auto host_sampled = ordo::generate(model, cache, p.view(), chain, reqs, go);
        const auto device_sampled = oc::generate(model, cache, p.view(), chain, reqs, go);
        CHECK(device_sampled == host_sampled);
    }
}

namespace gpt_test_policies {  // (named: nvcc warns of spec() unused in an unnamed namespace)

// Two positions per step, each mixed from both heads and both rows of its step: step 0 feeds the
// prefix and emits 0, 1; step k feeds tokens 2k-2, 2k-1 and emits 2k, 2k+1. The variants differ
// from the default only in the head weights, the order the two rows are fed in, or which head
// takes which weight: the layout, the mask and the step structure are the same.
struct mixed_pairs {
    static constexpr ordo::mask_mode mask = ordo::mask_mode::step_causal;
    float weight = 0.5f;
    bool swap_fed = false;
    bool swap_heads = false;

    void build(ordo::plan_builder& b) const {
        const ordo::index_t n = b.grid().size(), h0 = swap_heads ? 1 : 0, h1 = 1 - h0;
        b.set_heads({"R", "B"});
        for (ordo::index_t q = 0; q < n; ++q) b.add_token_slot(q);
        b.begin_step();
        b.feed(0);
        b.emit(0, {{0, h0, weight}, {0, h1, 1.0f - weight}});
        b.emit(1, {{0, h1, weight}, {0, h0, 1.0f - weight}});
        for (ordo::index_t q = 2; q < n; q += 2) {
            b.begin_step();
            b.feed(b.slot_of(swap_fed ? q - 1 : q - 2));
            b.feed(b.slot_of(swap_fed ? q - 2 : q - 1));
            b.emit(q, {{0, h0, weight}, {1, h1, 1.0f - weight}});
            b.emit(q + 1, {{1, h0, weight}, {0, h1, 1.0f - weight}});
        }
    }
    std::string spec() const { return "mixed_pairs"; }
};

}  // namespace gpt_test_policies
using gpt_test_policies::mixed_pairs;

TEST_CASE("cuda gpt: a plan that differs from the last only in fed row order, head weights or heads gets its own device plan", "[cuda-gpt]") {
    const ordo::grid_shape g = ordo::grid_shape::make(8, 8);
    const std::vector<mixed_pairs> variants = {{}, {0.3f, false, false}, {0.5f, true, false}, {0.3f, false, true}};
    const ordo::models::llamagen::gpt_weights hw = spread_weights(ordo::models::llamagen::fit_variant(tiny(), ordo::make_plan(variants[0], g).view()), 17);
    const oc::device_gpt_weights<float> w(hw);
    const auto chain = ordo::make_sampler(ordo::top_k{20}, ordo::multinomial{});
    const std::vector<ordo::request> reqs = {{1, 5, {}}, {3, 6, {}}};
    ordo::generate_options go;
    go.session.guidance.scale = 2.0f;
    go.session.null_label = hw.config().null_label();
    go.session.seed = 3;
    for (bool graphs : {false, true}) {
        oc::gpt_model<float> reused(w);  // sees every variant in turn, each plan built where the last one was freed
        reused.use_graphs(graphs);
        std::vector<std::vector<std::vector<ordo::index_t>>> tokens;
        for (std::size_t i = 0; i < variants.size(); ++i) {
            INFO("variant " << i << (graphs ? ", graphs" : ", eager"));
            const ordo::plan p = ordo::make_plan(variants[i], g);
            oc::device_kv_cache<float> cache(reused.num_layers(), 4, ordo::kv_cache_len(p), reused.cache_width());
            const auto got = oc::generate(reused, cache, p.view(), chain, reqs, go);  // device sampling reads the device plan's weights
            CHECK(reused.plan().holds(p));
            CHECK(reused.plan().digest() == ordo::digest(p));
            oc::gpt_model<float> fresh(w);
            const auto want = oc::generate(fresh, cache, p.view(), chain, reqs, go);
            CHECK(got == want);
            tokens.push_back(want);
        }
        // the weights and heads change the tokens: a stale device plan would have shown
        CHECK(tokens[1] != tokens[0]);
        CHECK(tokens[3] != tokens[1]);
    }
}

TEST_CASE("cuda gpt: a new cache at a reused address with other geometry does not replay graphs captured on the old one", "[cuda-gpt]") {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy("par:2x2"), ordo::grid_shape::make(8, 8));
    const ordo::models::llamagen::gpt_weights hw = spread_weights(ordo::models::llamagen::fit_variant(tiny(), p.view()), 5);
    const oc::device_gpt_weights<float> w(hw);
    oc::gpt_model<float> graphed(w), eager(w);
    graphed.use_graphs(true);
    const ordo::index_t layers = graphed.num_layers(), width = graphed.cache_width(), seqs = 2, len = ordo::kv_cache_len(p);
    oc::device_buffer<float> memory(ordo::contiguous_kv_cache<float>::required_size(layers, seqs, len + 8, width));
    {
        oc::device_kv_cache<float> old_cache(memory.span(), layers, seqs, len, width);
        gpu_greedy_decode(graphed, old_cache, p.view(), 1, 2.0f);  // captures every step on the old strides
    }
    oc::device_kv_cache<float> cache(memory.span(), layers, seqs, len + 8, width);  // same address and kv range, other slot stride
    const ordo_test::decoded got = gpu_greedy_decode(graphed, cache, p.view(), 1, 2.0f);
    oc::device_kv_cache<float> reference(layers, seqs, len + 8, width);
    const ordo_test::decoded want = gpu_greedy_decode(eager, reference, p.view(), 1, 2.0f);
    CHECK(max_abs_diff(got.logits, want.logits) == 0.0f);
    CHECK(got.tokens == want.tokens);
    // every fed row sits where the new cache's layout puts it
    std::vector<float> a(static_cast<std::size_t>(width)), b(a.size());
    std::size_t misplaced = 0;
    for (ordo::index_t l = 0; l < layers; ++l)
        for (ordo::index_t s = 0; s < seqs; ++s)
            for (ordo::index_t slot = 0; slot < len; ++slot) {
                if (p.view().fed_step[static_cast<std::size_t>(slot)] == p.num_steps()) continue;  // never fed
                for (int kv = 0; kv < 2; ++kv) {
                    const auto mine = kv ? cache.value(l, s, slot) : cache.key(l, s, slot);
                    const auto ref = kv ? reference.value(l, s, slot) : reference.key(l, s, slot);
                    oc::check(cudaMemcpy(a.data(), mine.data(), mine.size_bytes(), cudaMemcpyDeviceToHost), "row");
                    oc::check(cudaMemcpy(b.data(), ref.data(), ref.size_bytes(), cudaMemcpyDeviceToHost), "row");
                    misplaced += a != b;
                }
            }
    CHECK(misplaced == 0);
}

TEST_CASE("cuda gpt: a head_dim above the decode attention's 128 is a clear error", "[cuda-gpt]") {
    ordo::models::llamagen::gpt_config c = tiny();
    c.n_head = 1;
    c.dim = 132;
    const ordo::models::llamagen::gpt_weights hw = ordo::models::llamagen::random_weights(c, 1);
    const oc::device_gpt_weights<float> w(hw);
    CHECK_THROWS_WITH(oc::gpt_model<float>(w), Contains("head_dim 132"));
}
