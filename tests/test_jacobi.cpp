// Speculative Jacobi decoding (engine/jacobi.hpp): lossless, measured exactly. On the quantised
// Gaussian field (exact conditionals) on a 2x3 grid with 3 bins, the 729 joint outcomes of 10^5
// samples of SJD, SCD-GS and SCD-MC follow the exact raster joint (chi-square), and the same test
// rejects deliberately broken acceptance rules. Also: replay, batch independence, the errors, and
// the mean accepted tokens per iteration on the field model (printed).
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include <ordo/eigen/gpt.hpp>
#include <ordo/oracle/field_model.hpp>
#include <ordo/ordo.hpp>

#include "gpt_helpers.hpp"

namespace {

using ordo::index_t;

// Exact raster conditionals, tabulated: table[q][code of tokens 0..q-1] = the logits raster
// decoding of the field model gives position q. A model_for like any other (it reads the tokens it
// conditions on from the cache), cheap enough for 10^5 samples in a Debug build.
struct table_model {
    ordo::grid_shape grid;
    index_t bins = 0;
    std::vector<std::vector<float>> table;  // [position][code * bins + token]

    index_t vocab_size() const { return bins; }
    index_t num_heads() const { return 1; }
    template <class C>
    void forward(const ordo::step_batch& b, C& cache, std::span<float> logits) {
        const ordo::plan_view& p = b.plan;
        for (index_t s = 0; s < b.num_sequences; ++s)
            for (index_t r = 0; r < b.num_rows; ++r) {
                const ordo::fed_input& in = b.input(s, r);
                if (in.kind == ordo::slot_kind::token) cache.key(0, s, b.slots[static_cast<std::size_t>(r)])[0] = static_cast<float>(in.value);
            }
        index_t row0 = 0;
        for (index_t t = b.step; t < b.step + b.window_steps; ++t) {
            const ordo::step_view st = p.step(t);
            const index_t q = st.emitted[0], row = row0 + st.from(0)[0].row;
            for (index_t s = 0; s < b.num_sequences; ++s) {
                index_t code = 0;
                for (index_t j = 0; j < q; ++j) code = code * bins + static_cast<index_t>(cache.key(0, s, p.slot_of[static_cast<std::size_t>(j)])[0]);
                const float* src = table[static_cast<std::size_t>(q)].data() + static_cast<std::size_t>(code * bins);
                std::copy(src, src + bins, logits.data() + (static_cast<std::size_t>(s) * static_cast<std::size_t>(b.num_rows) + static_cast<std::size_t>(row)) * static_cast<std::size_t>(bins));
            }
            row0 += st.num_rows();
        }
    }
};

// The table, from the field model run step by step in raster order on every prefix.
table_model tabulate(ordo::oracle::field_model& field, const ordo::plan& p) {
    const index_t n = p.view().num_positions(), K = field.vocab_size();
    table_model t{p.view().grid(), K, std::vector<std::vector<float>>(static_cast<std::size_t>(n))};
    index_t codes = 1;
    for (index_t q = 0; q < n; ++q) {
        t.table[static_cast<std::size_t>(q)].resize(static_cast<std::size_t>(codes * K));
        if (q + 1 < n) codes *= K;
    }
    ordo::contiguous_kv_cache<float> cache(1, 1, ordo::kv_cache_len(p), 1);
    const ordo::request req{0, 0};
    std::vector<float> out, row(static_cast<std::size_t>(K));
    for (index_t code = 0; code < codes; ++code) {  // tokens 0..n-2, the first the most significant
        ordo::session<ordo::sampler_chain<ordo::greedy>> s(p, std::span<const ordo::request>(&req, 1), ordo::make_sampler(ordo::greedy{}), K);
        index_t prefix = 0;
        for (index_t q = 0; q < n; ++q) {
            const ordo::step_batch& b = s.next();
            out.resize(b.logits_size());
            field.forward(b, cache, std::span<float>(out));
            s.final_logits(out, 0, 0, row);
            std::copy(row.begin(), row.end(), t.table[static_cast<std::size_t>(q)].begin() + prefix * K);
            index_t tok = 0, c = code;
            for (index_t j = n - 2; j > q; --j) c /= K;
            tok = q + 1 < n ? c % K : 0;
            s.commit_tokens(std::span<const index_t>(&tok, 1), 1);
            prefix = prefix * K + tok;
        }
    }
    return t;
}

// log of softmax(row)[x], in double
double log_prob(const float* row, index_t K, index_t x) {
    double m = -INFINITY, s = 0;
    for (index_t v = 0; v < K; ++v) m = std::max(m, static_cast<double>(row[v]));
    for (index_t v = 0; v < K; ++v) s += std::exp(row[v] - m);
    return row[x] - m - std::log(s);
}

// P(joint outcome) under the table (raster decoding), outcomes coded base K in raster order.
std::vector<double> exact_joint(const table_model& t, index_t n) {
    index_t total = 1;
    for (index_t q = 0; q < n; ++q) total *= t.bins;
    std::vector<double> P(static_cast<std::size_t>(total));
    for (index_t code = 0; code < total; ++code) {
        double lp = 0;
        index_t prefix = 0, div = total;
        for (index_t q = 0; q < n; ++q) {
            div /= t.bins;
            const index_t x = code / div % t.bins;
            lp += log_prob(t.table[static_cast<std::size_t>(q)].data() + prefix * t.bins, t.bins, x);
            prefix = prefix * t.bins + x;
        }
        P[static_cast<std::size_t>(code)] = std::exp(lp);
    }
    return P;
}

// Q(a, x), the regularised upper incomplete gamma (Numerical Recipes' series / continued fraction).
double gamma_q(double a, double x) {
    if (x <= 0) return 1.0;
    const double gln = std::lgamma(a);
    if (x < a + 1) {
        double ap = a, sum = 1.0 / a, del = sum;
        for (int n = 0; n < 100000; ++n) {
            ap += 1;
            del *= x / ap;
            sum += del;
            if (std::abs(del) < std::abs(sum) * 1e-15) break;
        }
        return 1.0 - sum * std::exp(-x + a * std::log(x) - gln);
    }
    double b = x + 1 - a, c = 1.0 / 1e-300, d = 1.0 / b, h = d;
    for (int i = 1; i < 100000; ++i) {
        const double an = -i * (i - a);
        b += 2;
        d = an * d + b;
        if (std::abs(d) < 1e-300) d = 1e-300;
        c = b + an / c;
        if (std::abs(c) < 1e-300) c = 1e-300;
        d = 1 / d;
        const double del = d * c;
        h *= del;
        if (std::abs(del - 1) < 1e-15) break;
    }
    return std::exp(-x + a * std::log(x) - gln) * h;
}

struct chi2_result {
    double stat = 0, p = 0;
    index_t df = 0;
};
// Pearson's chi-square of counts against probabilities P; outcomes expected fewer than 5 times
// are pooled into one cell.
chi2_result chi_square(const std::vector<long long>& counts, const std::vector<double>& P, long long n) {
    chi2_result r;
    double pooled_e = 0, pooled_o = 0;
    index_t cells = 0;
    for (std::size_t x = 0; x < P.size(); ++x) {
        const double e = P[x] * static_cast<double>(n);
        if (e < 5) {
            pooled_e += e;
            pooled_o += static_cast<double>(counts[x]);
            continue;
        }
        r.stat += (static_cast<double>(counts[x]) - e) * (static_cast<double>(counts[x]) - e) / e;
        ++cells;
    }
    if (pooled_o > 0 && pooled_e == 0) r.stat = INFINITY;  // outcomes of probability 0 drawn
    if (pooled_e > 0) {
        r.stat += (pooled_o - pooled_e) * (pooled_o - pooled_e) / pooled_e;
        ++cells;
    }
    r.df = cells - 1;
    r.p = gamma_q(r.df / 2.0, r.stat / 2.0);
    return r;
}

const ordo::grid_shape kSmall = ordo::grid_shape::make(2, 3);
constexpr index_t kBins = 3;

struct small_field {
    ordo::plan plan = ordo::make_plan(ordo::raster{}, kSmall);
    ordo::oracle::field_model field{kSmall, ordo::oracle::field_kernel::isotropic(ordo::oracle::kernel_shape::exponential, 2.0, 1e-2), kBins};
    table_model table = tabulate(field, plan);
    std::vector<double> joint = exact_joint(table, 6);
};
small_field& small() {
    static small_field f;
    return f;
}

// counts of the joint outcomes of `total` samples (batches of requests, one seed per batch)
template <class Chain>
std::vector<long long> sample_joint(table_model& model, const ordo::plan& p, Chain chain, ordo::jacobi_options jo, long long total, double* accepted = nullptr) {
    constexpr index_t batch = 2000;
    std::vector<long long> counts(729, 0);
    std::vector<ordo::request> reqs;
    for (index_t i = 0; i < batch; ++i) reqs.push_back({0, static_cast<std::uint64_t>(i)});
    ordo::contiguous_kv_cache<float> cache(1, batch, ordo::kv_cache_len(p), 1);
    long long iters = 0;
    std::vector<float> logits;
    for (long long done = 0, seed = 1; done < total; done += batch, ++seed) {
        ordo::session_options so;
        so.seed = static_cast<std::uint64_t>(seed);
        ordo::jacobi_session s(p, reqs, chain, kBins, so, jo);
        while (!s.done()) {
            const ordo::step_batch& b = s.next();
            logits.resize(b.logits_size());
            model.forward(b, cache, logits);
            s.commit(logits);
        }
        for (index_t i = 0; i < batch; ++i) {
            index_t code = 0;
            for (const index_t t : s.tokens(i)) code = code * kBins + t;
            ++counts[static_cast<std::size_t>(code)];
            iters += s.iterations(i);
        }
    }
    if (accepted) *accepted = 6.0 * static_cast<double>(total) / static_cast<double>(iters);
    return counts;
}

}  // namespace

TEST_CASE("jacobi: the field model's window forward equals its raster steps", "[jacobi]") {
    small_field& f = small();
    const index_t K = kBins;
    // every full window from position 0: rows for positions 0..5 given tokens 0..4
    std::vector<ordo::request> reqs;
    for (index_t i = 0; i < 8; ++i) reqs.push_back({0, static_cast<std::uint64_t>(i)});
    for (const index_t L : {2, 3, 6}) {
        ordo::jacobi_options jo;
        jo.window = L;
        ordo::session_options so;
        so.seed = 3;
        ordo::jacobi_session s(f.plan, reqs, ordo::make_sampler(ordo::multinomial{}), K, so, jo);
        ordo::contiguous_kv_cache<float> c1(1, 8, ordo::kv_cache_len(f.plan), 1), c2(1, 8, ordo::kv_cache_len(f.plan), 1);
        std::vector<float> a, b;
        index_t windows = 0;
        while (!s.done()) {
            const ordo::step_batch& batch = s.next();
            a.resize(batch.logits_size());
            b.resize(batch.logits_size());
            f.field.forward(batch, c1, a);
            f.table.forward(batch, c2, b);
            for (std::size_t i = 0; i < a.size(); ++i) REQUIRE(std::abs(a[i] - b[i]) < 1e-5f);
            s.commit(a);
            ++windows;
        }
        CHECK(windows >= 6 / L);
    }
}

TEST_CASE("jacobi: SJD, SCD-GS and SCD-MC follow the exact raster joint; broken rules do not", "[jacobi][lossless]") {
    small_field& f = small();
    constexpr long long total = 100000;
    const auto chain = ordo::make_sampler(ordo::multinomial{});
    struct variant {
        const char* name;
        ordo::draft_coupling coupling;
        ordo::draft_init init;
        ordo::detail::jacobi_fault fault;
        index_t window;
    };
    using ordo::detail::jacobi_fault;
    const variant variants[] = {
        {"SJD, uniform drafts, L=4", ordo::draft_coupling::none, ordo::draft_init::uniform, jacobi_fault::none, 4},
        {"SJD, left-neighbour drafts, L=6", ordo::draft_coupling::none, ordo::draft_init::left_neighbour, jacobi_fault::none, 6},
        {"SCD-GS, L=4", ordo::draft_coupling::gumbel, ordo::draft_init::uniform, jacobi_fault::none, 4},
        {"SCD-MC, L=4", ordo::draft_coupling::maximal, ordo::draft_init::uniform, jacobi_fault::none, 4},
        {"broken: no residual (SJD, L=4)", ordo::draft_coupling::none, ordo::draft_init::uniform, jacobi_fault::no_residual, 4},
        {"broken: accept with p(x), q ignored (SJD, L=4)", ordo::draft_coupling::none, ordo::draft_init::uniform, jacobi_fault::accept_by_p, 4},
    };
    constexpr double alpha = 1e-3;
    for (const variant& v : variants) {
        ordo::jacobi_options jo;
        jo.window = v.window;
        jo.coupling = v.coupling;
        jo.init = v.init;
        jo.fault = v.fault;
        double acc = 0;
        const auto counts = sample_joint(f.table, f.plan, chain, jo, total, &acc);
        const chi2_result r = chi_square(counts, f.joint, total);
        std::printf("jacobi lossless: %-48s chi2 = %9.1f, df = %3d, p = %.3g, %.2f tokens/iteration\n", v.name, r.stat, r.df, r.p, acc);
        INFO(v.name << ": chi2 " << r.stat << " df " << r.df << " p " << r.p);
        if (v.fault == jacobi_fault::none) CHECK(r.p > alpha);
        else CHECK(r.p < alpha);
    }
    // with top-k: lossless with respect to the filtered distribution (raster with the same chain)
    table_model top2 = f.table;
    for (auto& rows : top2.table)
        for (std::size_t o = 0; o < rows.size(); o += kBins) {  // the filtered conditionals: below the 2nd largest go (ties stay)
            float sorted[kBins];
            std::copy(rows.begin() + static_cast<std::ptrdiff_t>(o), rows.begin() + static_cast<std::ptrdiff_t>(o + kBins), sorted);
            std::sort(sorted, sorted + kBins, std::greater<float>());
            for (std::size_t v = o; v < o + kBins; ++v)
                if (rows[v] < sorted[1]) rows[v] = -1e30f;  // (a model may not emit -inf: the engine refuses it)
        }
    const std::vector<double> joint2 = exact_joint(top2, 6);
    ordo::jacobi_options jo;
    jo.window = 4;
    const auto counts = sample_joint(f.table, f.plan, ordo::make_sampler(ordo::top_k{2}, ordo::multinomial{}), jo, total);
    const chi2_result r = chi_square(counts, joint2, total);
    std::printf("jacobi lossless: %-48s chi2 = %9.1f, df = %3d, p = %.3g\n", "SJD with top-k 2 vs filtered raster, L=4", r.stat, r.df, r.p);
    CHECK(r.p > alpha);
}

namespace {
// generate() with speculative decoding on the field model of `g`; tokens per request.
std::vector<std::vector<index_t>> field_run(ordo::oracle::field_model& m, const ordo::plan& p, const std::vector<ordo::request>& reqs, ordo::jacobi_options jo,
                                            std::uint64_t seed, float cfg = 1.0f) {
    ordo::generate_options o;
    o.session.seed = seed;
    o.session.guidance.scale = cfg;
    o.jacobi = jo;
    const index_t seqs = static_cast<index_t>(reqs.size()) * (cfg > 1.0f ? 2 : 1);
    ordo::contiguous_kv_cache<float> cache(1, seqs, ordo::kv_cache_len(p), 1);
    return ordo::generate(m, cache, p.view(), ordo::make_sampler(ordo::temperature{1.0f}, ordo::multinomial{}), reqs, o);
}
}  // namespace

TEST_CASE("jacobi: a run replays exactly, and a request's tokens do not depend on its batch", "[jacobi]") {
    const ordo::grid_shape g = ordo::grid_shape::make(4, 4);
    ordo::oracle::field_model m(g, ordo::oracle::field_kernel::isotropic(ordo::oracle::kernel_shape::exponential, 3.0, 1e-2), 16);
    const ordo::plan p = ordo::make_plan(ordo::raster{}, g);
    for (const auto coupling : {ordo::draft_coupling::none, ordo::draft_coupling::gumbel, ordo::draft_coupling::maximal}) {
        ordo::jacobi_options jo;
        jo.window = 5;
        jo.coupling = coupling;
        jo.init = coupling == ordo::draft_coupling::maximal ? ordo::draft_init::left_neighbour : ordo::draft_init::uniform;
        const std::vector<ordo::request> batch{{0, 3}, {0, 7}, {0, 11}}, alone{{0, 7}};
        const auto a = field_run(m, p, batch, jo, 5, 2.0f), b = field_run(m, p, batch, jo, 5, 2.0f);
        CHECK(a == b);
        const auto c = field_run(m, p, alone, jo, 5, 2.0f);
        CHECK(c[0] == a[1]);
        const auto d = field_run(m, p, alone, jo, 6, 2.0f);
        CHECK(d[0] != c[0]);  // the seed matters
        for (const auto& t : a) CHECK(std::count(t.begin(), t.end(), -1) == 0);
    }
}

TEST_CASE("jacobi: with a greedy chain it is Jacobi decoding and gives raster's greedy tokens", "[jacobi]") {
    const ordo::grid_shape g = ordo::grid_shape::make(4, 5);
    ordo::oracle::field_model m(g, ordo::oracle::field_kernel::isotropic(ordo::oracle::kernel_shape::exponential, 2.0, 1e-2), 8);
    const ordo::plan p = ordo::make_plan(ordo::raster{}, g);
    const std::vector<ordo::request> reqs{{0, 1}, {0, 2}};
    ordo::contiguous_kv_cache<float> cache(1, 2, ordo::kv_cache_len(p), 1);
    const auto greedy = ordo::make_sampler(ordo::greedy{});
    const auto raster = ordo::generate(m, cache, p.view(), greedy, reqs);
    for (const index_t L : {1, 3, 20}) {
        ordo::generate_options o;
        o.jacobi.window = L;
        o.jacobi.init = ordo::draft_init::left_neighbour;
        CHECK(ordo::generate(m, cache, p.view(), greedy, reqs, o) == raster);
    }
}

TEST_CASE("jacobi: errors are clear and change nothing", "[jacobi][errors]") {
    small_field& f = small();
    const std::vector<ordo::request> reqs{{0, 1}};
    const auto chain = ordo::make_sampler(ordo::multinomial{});
    ordo::jacobi_options jo;
    jo.window = 7;  // the grid has 6 positions: a configuration error (near the end windows are clamped instead)
    CHECK_THROWS_WITH(ordo::jacobi_session(f.plan, reqs, chain, kBins, {}, jo), Catch::Contains("window 7 is outside 1..6"));
    jo.window = 0;
    CHECK_THROWS_WITH(ordo::jacobi_session(f.plan, reqs, chain, kBins, {}, jo), Catch::Contains("window 0 is outside"));
    jo.window = 4;
    for (const char* spec : {"par:2x2", "nar"}) {
        const ordo::plan other = ordo::make_plan(ordo::parse_policy(spec), ordo::grid_shape::make(4, 4));
        CHECK_THROWS_WITH(ordo::jacobi_session(other, reqs, chain, kBins, {}, jo), Catch::Contains("not raster-like"));
    }
    const std::vector<index_t> order{5, 4, 3, 2, 1, 0};
    const std::vector<ordo::request> ordered{{0, 1, {}, order}};
    CHECK_THROWS_WITH(ordo::jacobi_session(f.plan, ordered, chain, kBins, {}, jo), Catch::Contains("own order"));

    // NaN in a window's logits: refused, nothing accepted; the same window commits after
    ordo::jacobi_session s(f.plan, reqs, chain, kBins, {}, jo);
    ordo::contiguous_kv_cache<float> cache(1, 1, ordo::kv_cache_len(f.plan), 1);
    const ordo::step_batch& b = s.next();
    CHECK(b.num_rows == 4);
    CHECK(b.window_steps == 4);
    std::vector<float> logits(b.logits_size());
    f.table.forward(b, cache, logits);
    std::vector<float> bad = logits;
    bad[bad.size() - 2] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(s.commit(bad), Catch::Contains("window row 3 are NaN"));
    CHECK(s.frontier(0) == 0);
    CHECK(s.forward_passes() == 0);
    CHECK(std::count(s.tokens(0).begin(), s.tokens(0).end(), -1) == 6);
    CHECK_THROWS_WITH(s.commit(std::vector<float>(3)), Catch::Contains("needs 12"));
    CHECK_THROWS_WITH(s.next(), Catch::Contains("twice"));
    s.commit(logits);
    CHECK(s.frontier(0) >= 1);
    // the last window is clamped to the tokens left
    while (!s.done()) {
        const ordo::step_batch& w = s.next();
        CHECK(w.window_steps == std::min<index_t>(4, 6 - w.step));
        logits.resize(w.logits_size());
        f.table.forward(w, cache, logits);
        s.commit(logits);
    }
    CHECK_THROWS_WITH(s.next(), Catch::Contains("finished"));

    // a cache too small for the plan: refused before any forward
    ordo::contiguous_kv_cache<float> tiny(1, 1, ordo::kv_cache_len(f.plan) - 1, 1);
    tiny.key(0, 0, 0)[0] = 42.0f;
    ordo::generate_options o;
    o.jacobi.window = 4;
    CHECK_THROWS_WITH(ordo::generate(f.field, tiny, f.plan.view(), chain, reqs, o), Catch::Contains("kv cache too small"));
    CHECK(tiny.key(0, 0, 0)[0] == 42.0f);
}

TEST_CASE("jacobi: mean accepted tokens per iteration on the field model", "[jacobi][stats]") {
    const ordo::grid_shape g = ordo::grid_shape::make(8, 8);
    const ordo::plan p = ordo::make_plan(ordo::raster{}, g);
    const auto start = std::chrono::steady_clock::now();
    constexpr index_t nreq = 16;
    std::vector<ordo::request> reqs;
    for (int i = 0; i < nreq; ++i) reqs.push_back({0, static_cast<std::uint64_t>(i)});
    for (const double ell : {1.0, 8.0}) {
        ordo::oracle::field_model m(g, ordo::oracle::field_kernel::isotropic(ordo::oracle::kernel_shape::exponential, ell, 1e-2), 16);
        for (const auto coupling : {ordo::draft_coupling::none, ordo::draft_coupling::gumbel, ordo::draft_coupling::maximal}) {
            std::printf("jacobi stats: 8x8, 16 bins, ell %4.1f, %-7s:", ell,
                        coupling == ordo::draft_coupling::none ? "SJD" : coupling == ordo::draft_coupling::gumbel ? "SCD-GS" : "SCD-MC");
            for (const index_t L : {4, 8, 16, 32}) {
                ordo::jacobi_options jo;
                jo.window = L;
                jo.coupling = coupling;
                ordo::session_options so;
                so.seed = 1;
                ordo::jacobi_session s(p, reqs, ordo::make_sampler(ordo::multinomial{}), 16, so, jo);
                ordo::contiguous_kv_cache<float> cache(1, nreq, ordo::kv_cache_len(p), 1);
                std::vector<float> logits;
                while (!s.done()) {
                    const ordo::step_batch& b = s.next();
                    logits.resize(b.logits_size());
                    m.forward(b, cache, logits);
                    s.commit(logits);
                }
                index_t iters = 0;
                for (index_t i = 0; i < nreq; ++i) iters += s.iterations(i);
                std::printf("  L=%2d %.2f", L, nreq * 64.0 / static_cast<double>(iters));
                CHECK(iters <= nreq * 64);
            }
            std::printf("  (tokens/iteration; raster 1.00)\n");
        }
    }
    std::printf("jacobi stats: %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

TEST_CASE("jacobi: the GPT runs windows; greedy SJD gives raster's greedy tokens, with CFG", "[jacobi][gpt]") {
    const auto c = gpt_helpers::tiny();
    const auto w = gpt_helpers::spread_weights(c, 11);
    ordo::eigen::gpt_model m(w);
    const ordo::plan p = ordo::make_plan(ordo::raster{}, ordo::grid_shape::make(3, 4));
    const std::vector<ordo::request> reqs{{1, 1}, {3, 2}};
    ordo::contiguous_kv_cache<float> cache(m.num_layers(), 4, ordo::kv_cache_len(p), m.cache_width());
    ordo::generate_options o;
    o.session.guidance.scale = 2.0f;
    o.session.null_label = c.num_classes;
    const auto greedy = ordo::make_sampler(ordo::greedy{});
    const auto raster = ordo::generate(m, cache, p.view(), greedy, reqs, o);
    for (const index_t L : {2, 5, 12}) {
        o.jacobi.window = L;
        CHECK(ordo::generate(m, cache, p.view(), greedy, reqs, o) == raster);
    }
    o.jacobi.window = 6;
    o.jacobi.coupling = ordo::draft_coupling::gumbel;
    const auto a = ordo::generate(m, cache, p.view(), ordo::make_sampler(ordo::top_k{8}, ordo::multinomial{}), reqs, o);
    CHECK(a == ordo::generate(m, cache, p.view(), ordo::make_sampler(ordo::top_k{8}, ordo::multinomial{}), reqs, o));
}

namespace {
// The dequantised fields (one row per request) that generate() draws on a field model.
Eigen::MatrixXd field_samples(ordo::oracle::field_model& m, const ordo::plan& p, index_t count, std::uint64_t seed, ordo::jacobi_options jo) {
    std::vector<ordo::request> reqs;
    for (index_t i = 0; i < count; ++i) reqs.push_back({0, static_cast<std::uint64_t>(i)});
    const auto tokens = field_run(m, p, reqs, jo, seed);
    const index_t n = p.view().num_positions();
    Eigen::MatrixXd x(count, n);
    for (index_t i = 0; i < count; ++i)
        for (index_t q = 0; q < n; ++q) x(i, q) = m.value(q, tokens[static_cast<std::size_t>(i)][static_cast<std::size_t>(q)]);
    return x;
}
// Sample covariance, and the variance of each entry's estimate (from the centred products).
struct covariance_estimate {
    Eigen::MatrixXd cov, var;
};
covariance_estimate estimate_covariance(const Eigen::MatrixXd& x) {
    const Eigen::MatrixXd c = x.rowwise() - x.colwise().mean();
    const double n = static_cast<double>(x.rows());
    covariance_estimate e{c.transpose() * c / (n - 1), Eigen::MatrixXd(x.cols(), x.cols())};
    for (Eigen::Index i = 0; i < x.cols(); ++i)
        for (Eigen::Index j = 0; j < x.cols(); ++j) {
            const Eigen::ArrayXd prod = c.col(i).array() * c.col(j).array();
            e.var(i, j) = (prod - prod.mean()).square().sum() / (n - 1) / n;
        }
    return e;
}
// The largest |difference| of two independent covariance estimates, in standard errors. NaN-proof:
// a non-finite entry gives infinity.
double max_z(const covariance_estimate& a, const covariance_estimate& b) {
    double worst = 0;
    for (Eigen::Index i = 0; i < a.cov.rows(); ++i)
        for (Eigen::Index j = i; j < a.cov.cols(); ++j) {
            const double z = std::abs(a.cov(i, j) - b.cov(i, j)) / std::sqrt(a.var(i, j) + b.var(i, j));
            worst = std::isfinite(z) ? std::max(worst, z) : INFINITY;
        }
    return worst;
}
}  // namespace

// Larger than enumerable: on a 6x6 field with 16 bins, SJD's and SCD's sample covariance equals
// raster's within sampling error (the 666 distinct entries, each a z-score of the difference of
// two independent estimates; Bonferroni at 666 x 1e-5). Raster's is the oracle's Σ up to the
// quantisation of 16 bins (checked on correlations, which that bias barely moves), and a broken
// rule is caught by the same test.
TEST_CASE("jacobi: on a 6x6 field SJD's sample covariance equals raster's within sampling error", "[jacobi][covariance]") {
    const ordo::grid_shape g = ordo::grid_shape::make(6, 6);
    ordo::oracle::field_model m(g, ordo::oracle::field_kernel::isotropic(ordo::oracle::kernel_shape::exponential, 3.0, 1e-2), 16);
    const ordo::plan p = ordo::make_plan(ordo::raster{}, g);
    constexpr index_t count = 8000;
    constexpr double z_limit = 4.42;  // two-sided p = 1e-5 per entry
    const covariance_estimate raster = estimate_covariance(field_samples(m, p, count, 101, {}));
    // raster against the oracle: correlations within 0.03 + 5 standard errors
    const Eigen::MatrixXd& sigma = m.covariance();
    double worst_corr = 0;
    for (Eigen::Index i = 0; i < sigma.rows(); ++i)
        for (Eigen::Index j = 0; j < sigma.cols(); ++j) {
            const double r = raster.cov(i, j) / std::sqrt(raster.cov(i, i) * raster.cov(j, j));
            const double d = std::abs(r - sigma(i, j) / std::sqrt(sigma(i, i) * sigma(j, j)));
            worst_corr = std::isfinite(d) ? std::max(worst_corr, d) : INFINITY;
        }
    std::printf("jacobi covariance: raster vs the oracle's correlations: max |diff| %.4f\n", worst_corr);
    CHECK(worst_corr < 0.03 + 5.0 / std::sqrt(static_cast<double>(count)));

    struct variant {
        const char* name;
        index_t window;
        ordo::draft_coupling coupling;
        ordo::draft_init init;
        ordo::detail::jacobi_fault fault;
    };
    using ordo::detail::jacobi_fault;
    const variant variants[] = {
        {"SJD, uniform drafts, L=8", 8, ordo::draft_coupling::none, ordo::draft_init::uniform, jacobi_fault::none},
        {"SJD, left-neighbour drafts, L=16", 16, ordo::draft_coupling::none, ordo::draft_init::left_neighbour, jacobi_fault::none},
        {"SCD-GS, L=8", 8, ordo::draft_coupling::gumbel, ordo::draft_init::uniform, jacobi_fault::none},
        {"SCD-MC, L=16", 16, ordo::draft_coupling::maximal, ordo::draft_init::left_neighbour, jacobi_fault::none},
        {"broken: no residual (SJD, L=8)", 8, ordo::draft_coupling::none, ordo::draft_init::uniform, jacobi_fault::no_residual},
    };
    for (const variant& v : variants) {
        ordo::jacobi_options jo;
        jo.window = v.window;
        jo.coupling = v.coupling;
        jo.init = v.init;
        jo.fault = v.fault;
        const double z = max_z(raster, estimate_covariance(field_samples(m, p, count, 202, jo)));
        std::printf("jacobi covariance: %-36s max |z| over 666 entries = %.2f (limit %.2f)\n", v.name, z, z_limit);
        INFO(v.name << ": max z " << z);
        if (v.fault == jacobi_fault::none) CHECK(z < z_limit);
        else CHECK(z > z_limit);
    }
}
