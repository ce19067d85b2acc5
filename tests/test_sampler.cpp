// The sampler: LlamaGen's semantics (temperature, top-k, top-p, greedy, multinomial), the
// counter-based draw contract, classifier-free guidance, and clear errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include <ordo/engine/sampler.hpp>

using Catch::Contains;

namespace {

constexpr float ninf = -std::numeric_limits<float>::infinity();

std::vector<float> random_logits(std::mt19937& g, int n, float sigma, int peaks = 0) {
    std::normal_distribution<float> nd(0.0f, sigma);
    std::vector<float> l(static_cast<std::size_t>(n));
    for (auto& x : l) x = nd(g);
    std::uniform_int_distribution<int> pick(0, n - 1);
    for (int p = 0; p < peaks; ++p) l[static_cast<std::size_t>(pick(g))] += 3.0f * sigma;
    return l;
}

// Processed logits of a run: which tokens survived the filters.
std::vector<bool> kept_of(const std::vector<float>& processed) {
    std::vector<bool> k(processed.size());
    for (std::size_t i = 0; i < processed.size(); ++i) k[i] = processed[i] != ninf;
    return k;
}

template <class Chain>
std::vector<bool> kept_by(const Chain& chain, std::vector<float> l) {
    ordo::sampler_workspace ws(static_cast<ordo::index_t>(l.size()));
    (void)ordo::sample(chain, l, ws, {1, 2, 3});
    return kept_of(l);
}

// --- plain references, written the obvious way (full sort) ------------------------------------

// top-k as LlamaGen: remove logits < the k-th largest (over the whole vocab, -inf included).
std::vector<float> ref_top_k(std::vector<float> l, int k) {
    k = std::min(std::max(k, 1), static_cast<int>(l.size()));
    std::vector<float> s = l;
    std::sort(s.begin(), s.end(), std::greater<>());
    const float kth = s[static_cast<std::size_t>(k - 1)];
    for (auto& x : l)
        if (x < kth) x = ninf;
    return l;
}

// top-p as HuggingFace's top_k_top_p_filtering: sort descending (ties: lower index first), softmax
// (in double here), cumulative sum, remove where the cumulative mass BEFORE the token exceeds p.
std::vector<float> ref_top_p(std::vector<float> l, float p) {
    const std::size_t n = l.size();
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return l[a] > l[b]; });
    const double mx = l[order[0]];
    std::vector<double> w(n, 0.0);
    double total = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        w[i] = l[i] == ninf ? 0.0 : std::exp(static_cast<double>(l[i]) - mx);
        total += w[i];
    }
    double before = 0.0;
    std::vector<float> out = l;
    for (std::size_t r = 0; r < n; ++r) {
        if (before > static_cast<double>(p) * total) out[order[r]] = ninf;
        before += w[order[r]];
    }
    return out;
}

// The draw contract: masses in vocab order, a sequential double sum, the first prefix > u * total.
ordo::index_t ref_draw(const std::vector<float>& processed, ordo::draw_key key) {
    const float mx = *std::max_element(processed.begin(), processed.end());
    std::vector<double> prefix(processed.size());
    double s = 0.0;
    for (std::size_t i = 0; i < processed.size(); ++i) {
        if (processed[i] != ninf) s += ordo::contract::exp_mass(static_cast<double>(processed[i]) - mx);
        prefix[i] = s;
    }
    const double target = static_cast<double>(ordo::uniform_draw(key.seed, key.request, key.position)) * s;
    for (std::size_t i = 0; i < processed.size(); ++i)
        if (prefix[i] > target) return static_cast<ordo::index_t>(i);
    return -1;
}

double chi_square(const std::vector<int>& counts, const std::vector<double>& probs, int draws) {
    double chi = 0.0;
    for (std::size_t i = 0; i < counts.size(); ++i) {
        if (probs[i] == 0.0) {
            REQUIRE(counts[i] == 0);
            continue;
        }
        const double e = probs[i] * draws;
        chi += (counts[i] - e) * (counts[i] - e) / e;
    }
    return chi;
}

std::vector<double> softmax(const std::vector<float>& l) {
    const float mx = *std::max_element(l.begin(), l.end());
    std::vector<double> p(l.size());
    double s = 0.0;
    for (std::size_t i = 0; i < l.size(); ++i) s += p[i] = l[i] == ninf ? 0.0 : std::exp(static_cast<double>(l[i]) - mx);
    for (auto& x : p) x /= s;
    return p;
}

}  // namespace

TEST_CASE("greedy is the argmax, lowest index on ties", "[sampler]") {
    std::mt19937 g(7);
    const auto chain = ordo::make_sampler(ordo::greedy{});
    for (int rep = 0; rep < 50; ++rep) {
        auto l = random_logits(g, 1000, 2.0f);
        const auto expect = static_cast<ordo::index_t>(std::max_element(l.begin(), l.end()) - l.begin());
        ordo::sampler_workspace ws(1000);
        CHECK(ordo::sample(chain, l, ws, {}) == expect);
    }
    std::vector<float> tie{1.0f, 3.0f, 2.0f, 3.0f, 3.0f, ninf};
    ordo::sampler_workspace ws(6);
    CHECK(ordo::sample(chain, std::span<float>(tie), ws, {}) == 1);
    std::vector<float> first_inf{ninf, ninf, -5.0f, -5.0f};
    ordo::sampler_workspace ws4(4);
    CHECK(ordo::sample(chain, std::span<float>(first_inf), ws4, {}) == 2);
    // filters never remove the argmax
    std::vector<float> tie2{0.5f, 3.0f, 3.0f, 1.0f};
    CHECK(ordo::sample(ordo::make_sampler(ordo::top_k{1}, ordo::top_p{0.01f}, ordo::greedy{}), std::span<float>(tie2), ws4, {}) == 1);
}

TEST_CASE("top_k 1 draws the greedy token", "[sampler]") {
    std::mt19937 g(11);
    ordo::sampler_workspace ws(512);
    const auto chain = ordo::make_sampler(ordo::top_k{1}, ordo::multinomial{});
    for (int rep = 0; rep < 100; ++rep) {
        auto l = random_logits(g, 512, 1.0f);
        auto l2 = l;
        const auto greedy = ordo::sample(ordo::make_sampler(ordo::greedy{}), l2, ws, {});
        CHECK(ordo::sample(chain, l, ws, {5, static_cast<std::uint64_t>(rep), rep}) == greedy);
        CHECK(std::count_if(l.begin(), l.end(), [](float x) { return x != ninf; }) == 1);
    }
}

TEST_CASE("top_k keeps ties with the k-th largest", "[sampler]") {
    std::vector<float> l{1.0f, 5.0f, 3.0f, 3.0f, 0.0f, 3.0f, 4.0f};
    const auto kept = kept_by(ordo::make_sampler(ordo::top_k{3}, ordo::multinomial{}), l);
    CHECK(kept == std::vector<bool>{false, true, true, true, false, true, true});
    // k beyond the finite count (or the vocab) removes nothing
    std::vector<float> l2{1.0f, ninf, 2.0f, ninf};
    CHECK(kept_by(ordo::make_sampler(ordo::top_k{3}, ordo::greedy{}), l2) == std::vector<bool>{true, false, true, false});
    CHECK(kept_by(ordo::make_sampler(ordo::top_k{100}, ordo::greedy{}), l2) == std::vector<bool>{true, false, true, false});
    // -0 and +0 are the same logit
    std::vector<float> z{-0.0f, 1.0f, 0.0f, -1.0f};
    CHECK(kept_by(ordo::make_sampler(ordo::top_k{2}, ordo::greedy{}), z) == std::vector<bool>{true, true, true, false});
}

TEST_CASE("top_k matches a full sort on random logits", "[sampler]") {
    std::mt19937 g(13);
    for (int rep = 0; rep < 200; ++rep) {
        const int n = 1 + static_cast<int>(g() % (rep % 2 ? 5000 : 20000));
        auto l = random_logits(g, n, rep % 2 ? 3.0f : 0.05f, 5);
        if (rep % 3 == 0)  // quantised logits: many ties
            for (auto& x : l) x = std::round(x * 4.0f) / 4.0f;
        if (rep % 5 == 0)
            for (int i = 0; i < n; i += 3) l[static_cast<std::size_t>(i)] = ninf;
        if (std::all_of(l.begin(), l.end(), [](float x) { return x == ninf; })) l[0] = 0.0f;
        const int k = 1 + static_cast<int>(g() % static_cast<unsigned>(n + 10));
        CHECK(kept_by(ordo::make_sampler(ordo::top_k{k}, ordo::multinomial{}), l) == kept_of(ref_top_k(l, k)));
    }
}

TEST_CASE("top_k is exact when its sampled threshold misleads", "[sampler]") {
    // the sampler samples every (n / 256)-th logit to guess a threshold; make exactly those the largest
    std::mt19937 g(37);
    auto l = random_logits(g, 16384, 1.0f);
    for (int s = 0; s < 256; ++s) l[static_cast<std::size_t>(s * 64)] = 100.0f + static_cast<float>(s);
    for (int k : {1, 255, 256, 257, 1000, 4096})
        CHECK(kept_by(ordo::make_sampler(ordo::top_k{k}, ordo::greedy{}), l) == kept_of(ref_top_k(l, k)));
    // and all-equal logits: everything ties with the k-th
    std::vector<float> flat(16384, 0.25f);
    CHECK(kept_by(ordo::make_sampler(ordo::top_k{100}, ordo::greedy{}), flat) == std::vector<bool>(16384, true));
}

TEST_CASE("top_p matches HuggingFace's filtering (full-sort reference)", "[sampler]") {
    std::mt19937 g(17);
    const float ps[] = {0.9f, 0.5f, 0.99f, 0.1f, 1e-6f, 0.999999f, 0.75f};
    for (int rep = 0; rep < 400; ++rep) {
        const int n = rep < 20 ? 1 + rep : 2 + static_cast<int>(g() % 20000);
        const float sigma = rep % 4 == 0 ? 0.01f : (rep % 4 == 1 ? 1.0f : (rep % 4 == 2 ? 3.0f : 30.0f));
        auto l = random_logits(g, n, sigma, rep % 7);
        if (rep % 3 == 0)
            for (auto& x : l) x = std::round(x * 2.0f) / 2.0f;  // ties
        if (rep % 5 == 0)
            for (int i = 1; i < n; i += 4) l[static_cast<std::size_t>(i)] = ninf;
        const float p = ps[rep % 7];
        INFO("rep " << rep << " n " << n << " sigma " << sigma << " p " << p);
        CHECK(kept_by(ordo::make_sampler(ordo::top_p{p}, ordo::multinomial{}), l) == kept_of(ref_top_p(l, p)));
        // LlamaGen's combination: top-k first, then top-p on what is left
        const int k = 1 + static_cast<int>(g() % static_cast<unsigned>(n));
        CHECK(kept_by(ordo::make_sampler(ordo::top_k{k}, ordo::top_p{p}, ordo::multinomial{}), l) ==
              kept_of(ref_top_p(ref_top_k(l, k), p)));
    }
    // all equal: p of the mass, rounded up to whole tokens, lowest indices first
    std::vector<float> flat(10, 2.0f);
    CHECK(kept_by(ordo::make_sampler(ordo::top_p{0.35f}, ordo::multinomial{}), flat) ==
          std::vector<bool>{true, true, true, true, false, false, false, false, false, false});
    // p = 1 is off
    std::vector<float> l{0.0f, -50.0f, 10.0f};
    CHECK(kept_by(ordo::make_sampler(ordo::top_p{1.0f}, ordo::multinomial{}), l) == std::vector<bool>{true, true, true});
}

TEST_CASE("temperature divides the logits, clamped at 1e-5", "[sampler]") {
    std::mt19937 g(19);
    auto l = random_logits(g, 300, 2.0f);
    for (float t : {0.7f, 1.0f, 1.3f, 0.0f, -2.0f, 1e-7f}) {
        auto x = l;
        ordo::sampler_workspace ws(300);
        const auto tok = ordo::sample(ordo::make_sampler(ordo::temperature{t}, ordo::greedy{}), x, ws, {});
        const float d = std::max(t, 1e-5f);
        for (std::size_t i = 0; i < l.size(); ++i) CHECK(x[i] == l[i] / d);
        CHECK(tok == std::max_element(l.begin(), l.end()) - l.begin());
    }
    // after a filter too (not fused into the first pass)
    auto x = l;
    ordo::sampler_workspace ws(300);
    (void)ordo::sample(ordo::make_sampler(ordo::top_k{10}, ordo::temperature{0.5f}, ordo::greedy{}), x, ws, {});
    const auto ref = ref_top_k(l, 10);
    for (std::size_t i = 0; i < l.size(); ++i) CHECK(x[i] == (ref[i] == ninf ? ninf : l[i] / 0.5f));
    // a low temperature sharpens: top-p 0.9 keeps only the top token
    auto y = l;
    CHECK(kept_by(ordo::make_sampler(ordo::temperature{0.01f}, ordo::top_p{0.9f}, ordo::multinomial{}), y) ==
          kept_of(ref_top_k(l, 1)));
    // a huge negative logit over a tiny temperature becomes -inf and drops out
    std::vector<float> big{-1e34f, 1.0f, 2.0f};
    ordo::sampler_workspace ws3(3);
    CHECK(ordo::sample(ordo::make_sampler(ordo::temperature{0.0f}, ordo::multinomial{}), std::span<float>(big), ws3, {}) == 2);
    CHECK(big[0] == ninf);
}

TEST_CASE("the draw follows its cross-device contract exactly", "[sampler]") {
    std::mt19937 g(23);
    for (int rep = 0; rep < 300; ++rep) {
        const int n = 1 + static_cast<int>(g() % 3000);
        auto l = random_logits(g, n, rep % 2 ? 1.0f : 4.0f, 3);
        if (rep % 4 == 0)
            for (int i = 0; i < n; i += 2) l[static_cast<std::size_t>(i)] = ninf;
        if (std::all_of(l.begin(), l.end(), [](float x) { return x == ninf; })) l[0] = 1.0f;
        const ordo::draw_key key{g(), g(), static_cast<ordo::index_t>(g() % 100000)};
        ordo::sampler_workspace ws(n);
        auto x = l;
        const auto tok = ordo::sample(ordo::make_sampler(ordo::top_k{1 + rep}, ordo::top_p{0.95f}, ordo::multinomial{}), x, ws, key);
        CHECK(tok == ref_draw(x, key));
        CHECK(x[static_cast<std::size_t>(tok)] != ninf);
        auto y = l;
        CHECK(ordo::sample(ordo::make_sampler(ordo::multinomial{}), y, ws, key) == ref_draw(l, key));
    }
}

TEST_CASE("exp_mass is exp to within a few ulp", "[sampler]") {
    std::mt19937_64 g(29);
    std::uniform_real_distribution<double> u(-700.0, 0.0);
    for (int i = 0; i < 100000; ++i) {
        const double x = i % 2 ? u(g) : -std::ldexp(std::generate_canonical<double, 53>(g), -(i % 50));
        const double ref = std::exp(x);
        CHECK(std::fabs(ordo::contract::exp_mass(x) - ref) <= 4.0 * (std::nextafter(ref, 1.0e300) - ref));
    }
    CHECK(ordo::contract::exp_mass(0.0) == 1.0);
    CHECK(ordo::contract::exp_mass(-800.0) == 0.0);
    CHECK(ordo::contract::exp_mass(-3.0e38) == 0.0);
    CHECK(ordo::contract::exp_mass(-std::numeric_limits<double>::infinity()) == 0.0);
}

// exp_mass as it was written before its operations went through dadd/dmul: plain IEEE double
// arithmetic in the same order. The host helpers must not change a single bit (the device's
// __dadd_rn/__dmul_rn give these same bits, which tests/cuda/test_sampler.cu checks).
double exp_mass_plain(double x) {
    constexpr double inv_ln2 = 0x1.71547652b82fep0;
    constexpr double ln2_hi = 0x1.62e42fee00000p-1, ln2_lo = 0x1.a39ef35793c76p-33;
    if (!(std::fabs(x) < 1024.0)) x = -1024.0;
    const std::int32_t k0 = static_cast<std::int32_t>(x * inv_ln2 - 0.5);
    if (k0 < -1022) return 0.0;
    const double kd = static_cast<double>(k0);
    const double r = (x - kd * ln2_hi) - kd * ln2_lo;
    const double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    const double c01 = 1.0 + r, c23 = 0.5 + r * (1.0 / 6.0), c45 = 1.0 / 24.0 + r * (1.0 / 120.0),
                 c67 = 1.0 / 720.0 + r * (1.0 / 5040.0), c89 = 1.0 / 40320.0 + r * (1.0 / 362880.0),
                 cab = 1.0 / 3628800.0 + r * (1.0 / 39916800.0), ccd = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0);
    const double c03 = c01 + r2 * c23, c47 = c45 + r2 * c67, c8b = c89 + r2 * cab;
    const double p = (c03 + r4 * c47) + r8 * (c8b + r4 * ccd);
    return p * std::ldexp(1.0, k0);
}

TEST_CASE("the contract's double helpers are plain IEEE operations on the host", "[sampler]") {
    std::mt19937_64 g(31);
    std::uniform_real_distribution<double> u(-1e3, 1e3);
    for (int i = 0; i < 10000; ++i) {
        const double a = u(g), b = u(g) * 1e-7;
        CHECK(std::bit_cast<std::uint64_t>(ordo::contract::dmul(a, b)) == std::bit_cast<std::uint64_t>(a * b));
        CHECK(std::bit_cast<std::uint64_t>(ordo::contract::dadd(a, b)) == std::bit_cast<std::uint64_t>(a + b));
    }
    CHECK(std::signbit(ordo::contract::dadd(-0.0, -0.0)));
    CHECK(!std::signbit(ordo::contract::dadd(-0.0, 0.0)));
}

TEST_CASE("exp_mass through dadd/dmul keeps the bits of the plain formula", "[sampler]") {
    std::mt19937_64 g(37);
    std::uniform_real_distribution<double> u(-760.0, 0.0);
    for (int i = 0; i < 200000; ++i) {
        const double x = i % 3 ? u(g) : -std::ldexp(std::generate_canonical<double, 53>(g), -(i % 60));
        INFO("x = " << x);
        CHECK(std::bit_cast<std::uint64_t>(ordo::contract::exp_mass(x)) == std::bit_cast<std::uint64_t>(exp_mass_plain(x)));
    }
    for (double x : {0.0, -0.0, -708.0, -708.4, -709.0, -745.0, -1023.9, -1024.0, -2000.0})
        CHECK(std::bit_cast<std::uint64_t>(ordo::contract::exp_mass(x)) == std::bit_cast<std::uint64_t>(exp_mass_plain(x)));
}

TEST_CASE("signed_key orders floats and round-trips", "[sampler]") {
    const float v[] = {-std::numeric_limits<float>::infinity(), -3e38f, -1.5f, -1e-40f, -0.0f, 0.0f, 1e-40f, 2.0f, 3e38f,
                       std::numeric_limits<float>::infinity()};
    for (std::size_t i = 0; i + 1 < std::size(v); ++i) {
        CHECK(ordo::contract::signed_key(v[i]) <= ordo::contract::signed_key(v[i + 1]));
        CHECK((ordo::contract::signed_key(v[i]) == ordo::contract::signed_key(v[i + 1])) == (v[i] == v[i + 1]));
    }
    for (float x : v) CHECK(ordo::contract::signed_key_float(ordo::contract::signed_key(x)) == x);
    CHECK(!std::signbit(ordo::contract::signed_key_float(ordo::contract::signed_key(-0.0f))));  // -0 comes back as +0
}

TEST_CASE("top_p's bucket masses do not depend on the order of the tokens", "[sampler]") {
    // each bucket sums its factors exactly (as integers), so permuting distinct logits permutes the
    // kept set and nothing else, however close a token lies to the boundary
    std::mt19937 g(41);
    for (int rep = 0; rep < 200; ++rep) {
        const int n = 2 + static_cast<int>(g() % 5000);
        std::vector<float> l = random_logits(g, n, rep % 2 ? 0.5f : 3.0f, 2);
        std::sort(l.begin(), l.end());
        l.erase(std::unique(l.begin(), l.end()), l.end());
        std::shuffle(l.begin(), l.end(), g);
        std::vector<std::size_t> perm(l.size());
        std::iota(perm.begin(), perm.end(), std::size_t{0});
        std::shuffle(perm.begin(), perm.end(), g);
        std::vector<float> lp(l.size());
        for (std::size_t i = 0; i < l.size(); ++i) lp[i] = l[perm[i]];
        const auto chain = ordo::make_sampler(ordo::top_p{rep % 3 ? 0.9f : 0.3f}, ordo::greedy{});
        const std::vector<bool> a = kept_by(chain, l), b = kept_by(chain, lp);
        for (std::size_t i = 0; i < l.size(); ++i) REQUIRE(b[i] == a[perm[i]]);
    }
}

TEST_CASE("multinomial frequencies match the softmax", "[sampler]") {
    const std::vector<float> l{0.0f, 1.0f, -1.0f, 2.0f, 0.5f, -3.0f, 1.5f, -0.5f};
    constexpr int draws = 20000;
    // chi-square, 7 degrees of freedom: P(> 24.32) = 0.001 (and the draws are deterministic)
    auto run = [&](const auto& chain, std::vector<double> probs, double bound) {
        std::vector<int> counts(l.size(), 0);
        ordo::sampler_workspace ws(8);
        for (int pos = 0; pos < draws; ++pos) {
            auto x = l;
            ++counts[static_cast<std::size_t>(ordo::sample(chain, x, ws, {42, 7, pos}))];
        }
        CHECK(chi_square(counts, probs, draws) < bound);
    };
    run(ordo::make_sampler(ordo::multinomial{}), softmax(l), 24.32);
    run(ordo::make_sampler(ordo::temperature{1.0f}, ordo::multinomial{}), softmax(l), 24.32);
    std::vector<float> hot(l.size());
    for (std::size_t i = 0; i < l.size(); ++i) hot[i] = l[i] / 2.0f;
    run(ordo::make_sampler(ordo::temperature{2.0f}, ordo::multinomial{}), softmax(hot), 24.32);
    // top-k 3 keeps {3, 6, 1}: 2 degrees of freedom, P(> 13.82) = 0.001
    run(ordo::make_sampler(ordo::top_k{3}, ordo::multinomial{}), softmax(ref_top_k(l, 3)), 13.82);
    // top-p 0.8: the reference filter, then the softmax of what is left
    const auto filtered = ref_top_p(l, 0.8f);
    const auto dof = std::count_if(filtered.begin(), filtered.end(), [](float x) { return x != ninf; }) - 1;
    REQUIRE(dof == 3);  // keeps {3, 6, 1, 4}: P(> 16.27) = 0.001
    run(ordo::make_sampler(ordo::top_p{0.8f}, ordo::multinomial{}), softmax(filtered), 16.27);
    run(ordo::make_sampler(ordo::top_k{5}, ordo::top_p{0.8f}, ordo::multinomial{}), softmax(ref_top_p(ref_top_k(l, 5), 0.8f)), 16.27);
}

TEST_CASE("a draw depends on its key alone", "[sampler]") {
    std::mt19937 g(31);
    const auto chain = ordo::make_sampler(ordo::temperature{0.9f}, ordo::top_k{200}, ordo::top_p{0.95f}, ordo::multinomial{});
    const auto base = random_logits(g, 4096, 1.0f);
    ordo::sampler_workspace fresh(4096), used(4096);
    // what the workspace sampled before does not matter
    for (int rep = 0; rep < 20; ++rep) {
        auto x = random_logits(g, 4096, 0.5f);
        (void)ordo::sample(ordo::make_sampler(ordo::top_p{0.3f}, ordo::multinomial{}), x, used, {9, 9, rep});
    }
    for (int pos = 0; pos < 50; ++pos) {
        auto a = base, b = base;
        CHECK(ordo::sample(chain, a, fresh, {1, 2, pos}) == ordo::sample(chain, b, used, {1, 2, pos}));
        CHECK(a == b);
    }
    // other requests, positions and seeds are independent streams
    auto sequence = [&](std::uint64_t seed, std::uint64_t request, ordo::index_t first) {
        std::vector<ordo::index_t> s;
        for (ordo::index_t pos = first; pos < first + 64; ++pos) {
            auto x = base;
            s.push_back(ordo::sample(chain, x, fresh, {seed, request, pos}));
        }
        return s;
    };
    const auto s0 = sequence(1, 2, 0);
    CHECK(s0 == sequence(1, 2, 0));
    CHECK(std::set<ordo::index_t>(s0.begin(), s0.end()).size() > 10);
    for (const auto& other : {sequence(1, 3, 0), sequence(2, 2, 0), sequence(1, 2, 64), sequence(1, 1ull << 32 | 2, 0)}) {
        int same = 0;
        for (std::size_t i = 0; i < s0.size(); ++i) same += s0[i] == other[i];
        CHECK(same < 16);
    }
    // and the batch does not matter: interleaving requests leaves each request's tokens as they were
    std::vector<ordo::index_t> interleaved;
    for (ordo::index_t pos = 0; pos < 64; ++pos) {
        auto x = base, y = base;
        (void)ordo::sample(chain, y, fresh, {1, 99, pos});
        interleaved.push_back(ordo::sample(chain, x, fresh, {1, 2, pos}));
    }
    CHECK(interleaved == s0);
}

TEST_CASE("sampler errors name the problem", "[sampler][errors]") {
    ordo::sampler_workspace ws(32);
    const auto chain = ordo::make_sampler(ordo::multinomial{});
    std::vector<float> l(32, 0.0f);
    auto with = [&](std::size_t i, float v) {
        auto x = l;
        x[i] = v;
        return x;
    };
    auto x = with(17, std::numeric_limits<float>::quiet_NaN());
    CHECK_THROWS_WITH(ordo::sample(chain, x, ws, {}), Contains("logit 17 is NaN"));
    x = with(3, std::numeric_limits<float>::infinity());
    CHECK_THROWS_WITH(ordo::sample(chain, x, ws, {}), Contains("logit 3 is +inf"));
    x = std::vector<float>(32, ninf);
    CHECK_THROWS_WITH(ordo::sample(chain, x, ws, {}), Contains("all 32 logits are -inf"));
    x = with(5, 3e38f);
    CHECK_THROWS_WITH(ordo::sample(ordo::make_sampler(ordo::temperature{0.5f}, ordo::greedy{}), x, ws, {}),
                      Contains("logit 5 overflows to +inf at temperature 0.5"));
    std::vector<float> small(31, 0.0f);
    CHECK_THROWS_WITH(ordo::sample(chain, small, ws, {}), Contains("31 logits, but the workspace was made for vocab 32"));
    x = l;
    CHECK_THROWS_WITH(ordo::sample(ordo::make_sampler(ordo::top_k{-1}, ordo::greedy{}), x, ws, {}), Contains("top_k: k = -1 is negative"));
    CHECK_THROWS_WITH(ordo::sample(ordo::make_sampler(ordo::top_p{0.0f}, ordo::greedy{}), x, ws, {}), Contains("top_p: p = 0 is outside (0, 1]"));
    CHECK_THROWS_WITH(ordo::sample(ordo::make_sampler(ordo::top_p{1.5f}, ordo::greedy{}), x, ws, {}), Contains("p = 1.5 is outside"));
    CHECK_THROWS_WITH(ordo::sample(ordo::make_sampler(ordo::top_p{std::nanf("")}, ordo::greedy{}), x, ws, {}), Contains("outside (0, 1]"));
    CHECK_THROWS_WITH(ordo::sample(ordo::make_sampler(ordo::temperature{std::nanf("")}, ordo::greedy{}), x, ws, {}),
                      Contains("temperature: value nan"));
    CHECK_THROWS_WITH(ordo::sampler_workspace(0), Contains("vocab 0 must be >= 1"));
    x = with(0, std::numeric_limits<float>::quiet_NaN());
    CHECK_THROWS_AS(ordo::sample(chain, x, ws, {}), std::invalid_argument);
    // the parameter checks run before the logits are touched
    x = l;
    CHECK_THROWS(ordo::sample(ordo::make_sampler(ordo::temperature{0.5f}, ordo::top_k{-1}, ordo::greedy{}), x, ws, {}));
    CHECK(x == l);
}

TEST_CASE("cfg_combine is uncond + (cond - uncond) * scale", "[sampler][cfg]") {
    const std::vector<float> c{1.0f, 2.0f, -3.0f, 0.5f}, u{0.0f, 4.0f, -1.0f, 0.5f};
    std::vector<float> out(4);
    ordo::cfg_combine(c, u, 4.0f, out);
    CHECK(out == std::vector<float>{4.0f, -4.0f, -9.0f, 0.5f});
    for (std::size_t i = 0; i < 4; ++i) CHECK(out[i] == u[i] + (c[i] - u[i]) * 4.0f);
    auto inplace = c;
    ordo::cfg_combine(inplace, u, 1.5f, inplace);  // out may alias an input
    for (std::size_t i = 0; i < 4; ++i) CHECK(inplace[i] == u[i] + (c[i] - u[i]) * 1.5f);
    std::vector<float> three(3);
    CHECK_THROWS_WITH(ordo::cfg_combine(c, u, 2.0f, three), Contains("cond has 4 logits, uncond 4, out 3"));
    CHECK_THROWS_WITH(ordo::cfg_combine(c, std::span<const float>(u).first(2), 2.0f, out), Contains("uncond 2"));
}

TEST_CASE("cfg scale per step: scale > 1, cfg_interval, schedule", "[sampler][cfg]") {
    constexpr ordo::cfg off{};
    static_assert(!off.active());
    CHECK(off.scale_at(0) == 1.0f);
    constexpr ordo::cfg one{1.0f};
    static_assert(!one.active());  // LlamaGen guides only for scale > 1
    const ordo::cfg always{4.0f};
    CHECK(always.active());
    for (ordo::index_t s : {0, 1, 100, 255}) CHECK(always.scale_at(s) == 4.0f);
    // cfg_interval k: the decode loop's i = step - 1 drops guidance once i > k, so steps 0..k+1 are guided
    const ordo::cfg interval{4.0f, 2};
    CHECK(interval.scale_at(0) == 4.0f);  // the prefill is always guided
    CHECK(interval.scale_at(1) == 4.0f);
    CHECK(interval.scale_at(3) == 4.0f);
    CHECK(interval.scale_at(4) == 1.0f);
    CHECK(interval.scale_at(200) == 1.0f);
    const ordo::cfg zero{4.0f, 0};
    CHECK(zero.scale_at(1) == 4.0f);
    CHECK(zero.scale_at(2) == 1.0f);
    // a schedule overrides the scale and repeats its last value
    const float sched[] = {1.0f, 2.0f, 3.0f};
    const ordo::cfg ramp{7.0f, -1, sched};
    CHECK(ramp.active());
    CHECK(ramp.scale_at(0) == 1.0f);
    CHECK(ramp.scale_at(1) == 2.0f);
    CHECK(ramp.scale_at(2) == 3.0f);
    CHECK(ramp.scale_at(50) == 3.0f);
    const ordo::cfg ramp_cut{7.0f, 0, sched};
    CHECK(ramp_cut.scale_at(1) == 2.0f);
    CHECK(ramp_cut.scale_at(2) == 1.0f);
    const float low[] = {1.0f, 0.5f, 1.0f};
    CHECK_FALSE(ordo::cfg{7.0f, -1, low}.active());
    CHECK(ordo::cfg{7.0f, -1, low}.scale_at(1) == 1.0f);
    CHECK((ordo::cfg{1.0f, 0, sched}.active()));  // the guided steps 0 and 1 have 1.0, 2.0
    const float late[] = {1.0f, 1.0f, 3.0f};
    CHECK_FALSE((ordo::cfg{1.0f, 0, late}.active()));  // 3.0 comes after the interval
    CHECK_THROWS_WITH(always.scale_at(-1), Contains("step -1 is negative"));
}
