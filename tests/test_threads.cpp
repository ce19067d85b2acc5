// The CPU backend on several threads and in bf16 (ordo/eigen/threads.hpp, skinny.hpp, gpt.hpp):
// products, logits and tokens bit-identical for any thread count; bf16's accuracy cost against
// fp32 on the golden checkpoints, within a bound derived from bf16's rounding.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

#include <ordo/eigen/gpt.hpp>
#include <ordo/engine/teacher.hpp>
#include <ordo/models/llamagen/checkpoint.hpp>
#include <ordo/models/llamagen/model_args.hpp>
#include <ordo/ordo.hpp>

#include "gpt_helpers.hpp"

using Catch::Contains;
namespace oe = ordo::eigen;
namespace llamagen = ordo::models::llamagen;

namespace {

// Sets the thread count for a scope, and restores the one before.
// n threads, and every call split however small (the test models are far below the work at which
// the backend starts a parallel region).
struct threads_for_scope {
    int before = oe::threads();
    double min_work = oe::parallel_min_work();
    explicit threads_for_scope(int n) {
        oe::set_threads(n);
        oe::set_parallel_min_work(0);
    }
    ~threads_for_scope() {
        oe::set_threads(before);
        oe::set_parallel_min_work(min_work);
    }
};

bool same_bits(std::span<const float> a, std::span<const float> b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::string e2e(const std::string& name) { return std::string(ORDO_TEST_DATA) + "/e2e/" + name; }
std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

struct golden_model {
    std::string name, policy;
};
const golden_model kGolden[] = {
    {"raster_G8_cfg2.0_label3", "raster"},
    {"par_G8_n4_cfg2.0_label3", "par:2x2"},
    {"nar_G8_cfg2.0_label3", "nar"},
};

llamagen::gpt_weights load_golden(const std::string& name) {
    const ordo::io::safetensors f = ordo::io::safetensors::open(e2e(name + ".weights.safetensors"));
    return llamagen::load_weights(f, llamagen::model_args_from_json(slurp(e2e(name + ".weights.json"))));
}

// Every step's logits (all sequences, rows and heads, concatenated) and the token grids of a
// decode of `labels` with CFG 2 (2 sequences per label), sampled with top-k and top-p (or greedy).
struct run {
    std::vector<float> logits;
    std::vector<std::vector<ordo::index_t>> tokens;
};
run decode(oe::gpt_model& m, const ordo::plan& p, const std::vector<ordo::request>& reqs, ordo::index_t null_label, bool greedy) {
    ordo::session_options o;
    o.guidance.scale = 2.0f;
    o.null_label = null_label;
    o.seed = 7;
    run r;
    auto go = [&](auto sampler) {
        ordo::session s(p.view(), std::span<const ordo::request>(reqs), sampler, m.vocab_size(), o);
        ordo::contiguous_kv_cache<float> cache(m.num_layers(), s.num_sequences(), ordo::kv_cache_len(p), m.cache_width());
        ordo::check_fit(p.view(), m, cache, s.num_sequences());
        std::vector<float> logits;
        while (!s.done()) {
            const ordo::step_batch& b = s.next();
            logits.resize(b.logits_size());
            m.forward(b, cache, logits);
            r.logits.insert(r.logits.end(), logits.begin(), logits.end());
            s.commit(logits);
        }
        for (std::size_t i = 0; i < reqs.size(); ++i) r.tokens.emplace_back(s.tokens(static_cast<ordo::index_t>(i)).begin(), s.tokens(static_cast<ordo::index_t>(i)).end());
    };
    if (greedy) go(ordo::make_sampler(ordo::top_k{1}, ordo::greedy{}));
    else go(ordo::make_sampler(ordo::top_k{20}, ordo::top_p{0.95f}, ordo::multinomial{}));
    return r;
}

std::vector<float> random_floats(std::size_t n, std::uint32_t seed) {
    std::mt19937 g(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (float& x : v) x = u(g);
    return v;
}

}  // namespace

TEST_CASE("the thread count is an option: >= 1, process-wide", "[threads]") {
    const int before = oe::threads();
    CHECK(before >= 1);
    CHECK_THROWS_WITH(oe::set_threads(0), Contains("thread count must be >= 1, got 0"));
    CHECK_THROWS_WITH(oe::set_threads(-3), Contains("got -3"));
    CHECK(oe::threads() == before);
    {
        threads_for_scope t(3);
        CHECK(oe::threads() == 3);
        CHECK(Eigen::nbThreads() == (oe::threads_enabled() ? 3 : 1));
    }
    CHECK(oe::threads() == before);
    if (!oe::threads_enabled()) WARN("built without OpenMP: the thread tests below run on one thread");
}

// The split never changes a summation order: an output element is summed by the kernel of its
// block of 4 weight rows whichever thread computes it. A split at arbitrary rows (31 rows over 3
// threads: rows 10 and 20, inside blocks) would send those rows to the 1-row path, which sums in
// another order, and in = 37 (no multiple of any SIMD width) leaves a scalar tail in every row.
TEST_CASE("skinny_gemm is bit-identical on 1, 2, 3 and 4 threads (fp32 and bf16 weights)", "[threads]") {
    for (const auto& [out, in] : {std::pair{31, 37}, std::pair{30, 37}, std::pair{1029, 45}, std::pair{3, 37}}) {
        const std::vector<float> w = random_floats(static_cast<std::size_t>(out) * static_cast<std::size_t>(in), 1);
        std::vector<oe::bf16> wb(w.size());
        for (std::size_t i = 0; i < w.size(); ++i) wb[i] = oe::to_bf16(w[i]);
        for (const int rows : {1, 2, 3, 5, 33}) {
            INFO("out " << out << " in " << in << " rows " << rows);
            const std::vector<float> x = random_floats(static_cast<std::size_t>(rows) * static_cast<std::size_t>(in), 2);
            auto product = [&](int threads, bool bf16) {
                threads_for_scope t(threads);
                std::vector<float> y(static_cast<std::size_t>(rows) * static_cast<std::size_t>(out), std::nanf(""));
                if (bf16) oe::skinny_gemm(wb.data(), out, in, x.data(), rows, static_cast<std::size_t>(in), y.data(), static_cast<std::size_t>(out));
                else oe::skinny_gemm(w.data(), out, in, x.data(), rows, static_cast<std::size_t>(in), y.data(), static_cast<std::size_t>(out));
                return y;
            };
            for (const bool bf16 : {false, true}) {
                const std::vector<float> one = product(1, bf16);
                // the product itself is right (double reference; fp32 sums of 45 terms of size 1)
                double worst = 0;
                for (int r = 0; r < rows; ++r)
                    for (int o = 0; o < out; ++o) {
                        double ref = 0;
                        for (int i = 0; i < in; ++i)
                            ref += static_cast<double>(bf16 ? oe::to_float(wb[static_cast<std::size_t>(o * in + i)]) : w[static_cast<std::size_t>(o * in + i)]) *
                                   x[static_cast<std::size_t>(r * in + i)];
                        const float got = one[static_cast<std::size_t>(r * out + o)];
                        worst = std::isfinite(got) ? std::max(worst, std::abs(got - ref)) : INFINITY;
                    }
                CHECK(worst < 1e-5);
                for (const int threads : {2, 3, 4}) CHECK(same_bits(product(threads, bf16), one));
            }
        }
    }
}

TEST_CASE("bf16 conversion rounds to nearest even and keeps NaN and inf", "[threads][bf16]") {
    CHECK(oe::to_bf16(1.0f).bits == 0x3f80);
    CHECK(oe::to_float(oe::to_bf16(1.0f + 1.0f / 256)) == 1.0f);                   // a tie: to even (down)
    CHECK(oe::to_float(oe::to_bf16(1.0f + 3.0f / 256)) == 1.0f + 4.0f / 256);      // a tie: to even (up)
    CHECK(oe::to_float(oe::to_bf16(1.0f + 1.0f / 256 + 1.0f / 4096)) == 1.0f + 2.0f / 256);
    CHECK(std::isnan(oe::to_float(oe::to_bf16(std::nanf("")))));
    CHECK(oe::to_float(oe::to_bf16(INFINITY)) == INFINITY);
    CHECK(oe::to_float(oe::to_bf16(-2.5f)) == -2.5f);
    // relative error at most u = 2^-8 (8 significant bits, rounded to nearest)
    for (const float x : random_floats(1000, 3)) CHECK(std::abs(oe::to_float(oe::to_bf16(x)) - x) <= std::ldexp(std::abs(x), -8));
    CHECK(oe::parse_weight_dtype("bf16") == oe::weight_dtype::bf16);
    CHECK(oe::parse_weight_dtype("fp32") == oe::weight_dtype::fp32);
    CHECK_THROWS_WITH(oe::parse_weight_dtype("int8"), Contains("must be \"fp32\" or \"bf16\", got \"int8\""));
}

TEST_CASE("the GPT's logits and tokens are bit-identical on 1, 2, 3 and 4 threads (batch 2, CFG, fp32 and bf16)", "[threads][gpt]") {
    for (const golden_model& g : kGolden) {
        const llamagen::gpt_weights w = load_golden(g.name);
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(g.policy), ordo::grid_shape::make(8, 8));
        const std::vector<ordo::request> reqs{{3, 0, {}}, {1, 1, {}}};
        for (const oe::weight_dtype dtype : {oe::weight_dtype::fp32, oe::weight_dtype::bf16}) {
            INFO(g.name << " " << oe::dtype_name(dtype));
            oe::gpt_model m(w, dtype);
            CHECK(m.dtype() == dtype);
            auto at = [&](int threads) {
                threads_for_scope t(threads);
                return decode(m, p, reqs, w.config().null_label(), false);
            };
            const run one = at(1);
            REQUIRE(!one.logits.empty());
            CHECK(tolerance::max_abs(one.logits) < tolerance::not_finite);
            CHECK(one.tokens[0] != one.tokens[1]);
            for (const int threads : {2, 3, 4}) {
                INFO(threads << " threads");
                const run many = at(threads);
                CHECK(same_bits(many.logits, one.logits));
                CHECK(many.tokens == one.tokens);
            }
        }
    }
}

// bf16 rounds each weight by at most u = 2^-8 ≈ 0.39% relative. A logit is a sum of products through
// every layer, so its error is a few u of the logits' scale: measured on the golden checkpoints
// (docs/cpu-backend.md) 0.6-0.7% of the largest |logit|; the bound is 8u ≈ 3.1%, so a kernel that
// mis-converts (a wrong shift, swapped halves) fails by orders of magnitude. With the same inputs
// (teacher forcing) the top token changes only where fp32's top-2 margin is within twice that
// error. A free-running decode diverges after its first changed token (every later step sees
// different context), so the agreement of whole decodes is measured and reported, with a floor
// far above chance (1/256).
TEST_CASE("bf16 weights: logit error and token agreement against fp32 on the golden checkpoints", "[threads][bf16][gpt]") {
    const float u = std::ldexp(1.0f, -8);
    double greedy_agree = 0, sampled_agree = 0, total = 0, top1_agree = 0, positions = 0;
    for (const golden_model& g : kGolden) {
        INFO(g.name);
        const llamagen::gpt_weights w = load_golden(g.name);
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(g.policy), ordo::grid_shape::make(8, 8));
        oe::gpt_model f32(w), b16(w, oe::weight_dtype::bf16);
        // teacher forcing: the same inputs, so the logits compare one for one
        const ordo::io::safetensors tf = ordo::io::safetensors::open(e2e(g.name + ".teacher.safetensors"));
        std::vector<std::int64_t> t64(64), label(1);
        tf.read(tf.at("tokens_raster"), t64);
        tf.read(tf.at("label"), label);
        const std::vector<ordo::index_t> tokens(t64.begin(), t64.end());
        ordo::contiguous_kv_cache<float> cache(f32.num_layers(), 1, ordo::teacher_cache_len(p), f32.cache_width());
        const std::vector<float> a = ordo::teacher_forcing_logits(f32, cache, p.view(), tokens, static_cast<ordo::index_t>(label[0]));
        const std::vector<float> b = ordo::teacher_forcing_logits(b16, cache, p.view(), tokens, static_cast<ordo::index_t>(label[0]));
        const float err = tolerance::max_abs_diff(a, b), scale = tolerance::max_abs(a);
        INFO("max |logit(bf16) - logit(fp32)| = " << err << ", max |logit| = " << scale);
        CHECK(err < 8 * u * scale);
        CHECK(err > 0.0f);  // bf16 is in use
        const std::size_t v = static_cast<std::size_t>(f32.vocab_size());
        int flips = 0;
        for (std::size_t pos = 0; pos * v < a.size(); ++pos) {
            const float* fa = a.data() + pos * v;
            const float* fb = b.data() + pos * v;
            const std::size_t ia = static_cast<std::size_t>(std::max_element(fa, fa + v) - fa), ib = static_cast<std::size_t>(std::max_element(fb, fb + v) - fb);
            positions += 1;
            if (ia == ib) {
                top1_agree += 1;
                continue;
            }
            ++flips;
            CHECK(fa[ia] - fa[ib] <= 2 * err);  // only a near-tie flips
        }
        // free-running decodes of 4 images (CFG 2), greedy and sampled
        const std::vector<ordo::request> reqs{{3, 0, {}}, {1, 1, {}}, {0, 2, {}}, {2, 3, {}}};
        const run ga = decode(f32, p, reqs, w.config().null_label(), true), gb = decode(b16, p, reqs, w.config().null_label(), true);
        const run sa = decode(f32, p, reqs, w.config().null_label(), false), sb = decode(b16, p, reqs, w.config().null_label(), false);
        double g_same = 0, s_same = 0, n = 0;
        for (std::size_t i = 0; i < reqs.size(); ++i)
            for (std::size_t k = 0; k < sa.tokens[i].size(); ++k) {
                g_same += ga.tokens[i][k] == gb.tokens[i][k];
                s_same += sa.tokens[i][k] == sb.tokens[i][k];
                n += 1;
            }
        greedy_agree += g_same;
        sampled_agree += s_same;
        total += n;
        WARN(g.name << ": max logit error " << err << " (" << 100.0 * err / scale << "% of max |logit| " << scale << "); teacher-forced top-1 flips "
                    << flips << " / " << a.size() / v << "; free-running tokens agreeing: greedy " << g_same << " / " << n << ", sampled " << s_same << " / " << n);
    }
    WARN("all: teacher-forced top-1 agreement " << top1_agree << " / " << positions << "; free-running greedy " << greedy_agree << " / " << total << ", sampled (top-k 20, top-p 0.95) "
                                                << sampled_agree << " / " << total);
    CHECK(top1_agree >= 0.9 * positions);
    CHECK(greedy_agree >= 0.4 * total);
    CHECK(sampled_agree >= 0.4 * total);
}

TEST_CASE("bf16 matrices are checked against the weights they are used with", "[threads][bf16][errors]") {
    const llamagen::gpt_weights a = llamagen::random_weights(gpt_helpers::tiny(), 1), b = llamagen::random_weights(gpt_helpers::tiny(3), 1);
    auto m = std::make_shared<const oe::gpt_bf16_matrices>(b);
    CHECK_THROWS_WITH(oe::gpt_model(a, m), Contains("the bf16 matrices are of"));
    CHECK(m->bytes() < b.bytes() / 2);
}
