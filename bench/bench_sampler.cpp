// bench/bench_sampler.cpp - sampler cost per token at vocab 16384.
//
// Target (from the issue): top-k/top-p sampling <= 50 us per token on one core; no allocation per
// step (counter allocs_per_iter must read 0).
//
// Chains: greedy; top-k 2000 + multinomial; top-p 0.9 + multinomial; top-k 2000 + top-p 0.9 +
// multinomial; each also led by temperature 1.0 (LlamaGen's default chain). Logits are "realistic":
// Gaussian (sigma 3) with 64 peaks, 16 seeded vectors cycled (BM_flat_*: sigma 1, no peaks). Each
// iteration restores the logits (the sampler works in place) and draws at a new position;
// BM_restore_only times the restore alone.
//
// Run: ./build/bench/bench_sampler  (or with --benchmark_filter=top_p etc.)
// Counters: time_per_token (us per sampled token, the restore included), allocs_per_iter (must be 0).

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <vector>

#include <ordo/engine/sampler.hpp>

// ---------------------------------------------------------------------------------------------
#include "alloc_counter.hpp"

namespace {

using bench::allocs;

constexpr ordo::index_t kVocab = 16384;
constexpr int kVectors = 16;

// Gaussian logits with peaks lifted 6..12 above. Realistic: sigma 3, 64 peaks (a few strong tokens;
// top-p 0.9 keeps ~5-40). Flat: sigma 1, no peaks (the worst case for top-p: it keeps ~9000).
std::vector<std::vector<float>> make_bank(float sigma, int peaks) {
    std::vector<std::vector<float>> b;
    std::mt19937 g(20240601);
    std::normal_distribution<float> nd(0.0f, sigma);
    std::uniform_int_distribution<int> pick(0, kVocab - 1);
    std::uniform_real_distribution<float> lift(6.0f, 12.0f);
    for (int v = 0; v < kVectors; ++v) {
        std::vector<float> l(kVocab);
        for (auto& x : l) x = nd(g);
        for (int p = 0; p < peaks; ++p) l[static_cast<std::size_t>(pick(g))] += lift(g);
        b.push_back(std::move(l));
    }
    return b;
}
const std::vector<std::vector<float>>& logit_bank(bool flat = false) {
    static const auto realistic = make_bank(3.0f, 64);
    static const auto flat_bank = make_bank(1.0f, 0);
    return flat ? flat_bank : realistic;
}

// Time per token: a rate counter inverted (seconds per token; the console prints "12.3us").
benchmark::Counter time_per_token() {
    return benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

template <class Chain>
void run(benchmark::State& state, const Chain& chain, bool flat = false) {
    const auto& bank = logit_bank(flat);
    std::vector<float> logits(kVocab);
    ordo::sampler_workspace ws(kVocab);
    ordo::index_t pos = 0;
    std::size_t v = 0;
    const std::uint64_t a0 = allocs();
    for (auto _ : state) {
        std::memcpy(logits.data(), bank[v].data(), sizeof(float) * kVocab);
        const ordo::index_t tok = ordo::sample(chain, logits, ws, {1234, 7, pos});
        benchmark::DoNotOptimize(tok);
        ++pos;
        v = (v + 1) % kVectors;
    }
    const std::uint64_t a1 = allocs();
    state.counters["time_per_token"] = time_per_token();
    state.counters["allocs_per_iter"] = static_cast<double>(a1 - a0) / static_cast<double>(state.iterations());
}

void BM_restore_only(benchmark::State& state) {
    const auto& bank = logit_bank();
    std::vector<float> logits(kVocab);
    std::size_t v = 0;
    for (auto _ : state) {
        std::memcpy(logits.data(), bank[v].data(), sizeof(float) * kVocab);
        benchmark::DoNotOptimize(logits.data());
        benchmark::ClobberMemory();
        v = (v + 1) % kVectors;
    }
    state.counters["time_per_token"] = time_per_token();
}
BENCHMARK(BM_restore_only);

void BM_greedy(benchmark::State& s) { run(s, ordo::make_sampler(ordo::greedy{})); }
void BM_top_k2000(benchmark::State& s) { run(s, ordo::make_sampler(ordo::top_k{2000}, ordo::multinomial{})); }
void BM_top_p09(benchmark::State& s) { run(s, ordo::make_sampler(ordo::top_p{0.9f}, ordo::multinomial{})); }
void BM_top_k2000_top_p09(benchmark::State& s) {
    run(s, ordo::make_sampler(ordo::top_k{2000}, ordo::top_p{0.9f}, ordo::multinomial{}));
}
void BM_t1_greedy(benchmark::State& s) { run(s, ordo::make_sampler(ordo::temperature{1.0f}, ordo::greedy{})); }
void BM_t1_top_k2000(benchmark::State& s) {
    run(s, ordo::make_sampler(ordo::temperature{1.0f}, ordo::top_k{2000}, ordo::multinomial{}));
}
void BM_t1_top_p09(benchmark::State& s) { run(s, ordo::make_sampler(ordo::temperature{1.0f}, ordo::top_p{0.9f}, ordo::multinomial{})); }
void BM_t1_top_k2000_top_p09(benchmark::State& s) {
    run(s, ordo::make_sampler(ordo::temperature{1.0f}, ordo::top_k{2000}, ordo::top_p{0.9f}, ordo::multinomial{}));
}
// a temperature other than 1 costs one more division per logit
void BM_t09_top_k2000_top_p09(benchmark::State& s) {
    run(s, ordo::make_sampler(ordo::temperature{0.9f}, ordo::top_k{2000}, ordo::top_p{0.9f}, ordo::multinomial{}));
}
// plain multinomial over the whole vocab (no filter): exp for all 16384 tokens
void BM_multinomial(benchmark::State& s) { run(s, ordo::make_sampler(ordo::multinomial{})); }
// flat logits: top-p keeps thousands of tokens, so its draw weighs them all
void BM_flat_top_p09(benchmark::State& s) { run(s, ordo::make_sampler(ordo::top_p{0.9f}, ordo::multinomial{}), true); }
void BM_flat_top_k2000_top_p09(benchmark::State& s) {
    run(s, ordo::make_sampler(ordo::top_k{2000}, ordo::top_p{0.9f}, ordo::multinomial{}), true);
}

BENCHMARK(BM_greedy);
BENCHMARK(BM_top_k2000);
BENCHMARK(BM_top_p09);
BENCHMARK(BM_top_k2000_top_p09);
BENCHMARK(BM_t1_greedy);
BENCHMARK(BM_t1_top_k2000);
BENCHMARK(BM_t1_top_p09);
BENCHMARK(BM_t1_top_k2000_top_p09);
BENCHMARK(BM_t09_top_k2000_top_p09);
BENCHMARK(BM_multinomial);
BENCHMARK(BM_flat_top_p09);
BENCHMARK(BM_flat_top_k2000_top_p09);

}  // namespace

BENCHMARK_MAIN();
