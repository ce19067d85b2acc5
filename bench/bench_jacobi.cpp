// bench/bench_jacobi.cpp - what a speculative Jacobi window costs on the CPU backend: GPT-B
// (seeded random weights), 16x16, batch 1, CFG 4, one image per run. For window lengths L = 4..32
// (L = 1 is plain raster decoding) it measures the time per forward (a window of L rows against a
// raster step of one), the forwards per image and the tokens accepted per forward, so the speedup
// in time is (raster ms/forward x 256) / (window ms/forward x forwards). On random weights the
// distributions are near uniform and drafts are rarely accepted: this measures the window's cost;
// acceptance on a trained model is lesson 2's (docs/engine.md, speculative decoding).
// Run: build/bench/bench_jacobi   (about 2 minutes)
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <ordo/eigen/gpt.hpp>
#include <ordo/ordo.hpp>

namespace {

struct result {
    std::string name;
    int window = 1, forwards = 0;
    double seconds = 0;
};
std::vector<result> g_results;

void BM_jacobi(benchmark::State& state, int window, ordo::draft_coupling coupling) {
    const ordo::plan p = ordo::make_plan(ordo::raster{}, ordo::grid_shape::make(16, 16));
    const auto c = ordo::models::llamagen::fit_variant(ordo::models::llamagen::make_preset("B"), p.view());
    const auto w = ordo::models::llamagen::random_weights(c, 1);
    ordo::eigen::gpt_model model(w);
    const ordo::request req{207, 0, {}, {}};
    ordo::generate_options o;
    o.session.guidance.scale = 4.0f;
    o.session.null_label = c.null_label();
    o.jacobi.window = window > 1 ? window : 0;
    o.jacobi.coupling = coupling;
    ordo::generate_stats stats;
    o.stats = &stats;
    ordo::contiguous_kv_cache<float> cache(model.num_layers(), 2, ordo::kv_cache_len(p), model.cache_width());
    const auto sampler = ordo::make_sampler(ordo::top_k{2000}, ordo::multinomial{});
    double seconds = 0;
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        benchmark::DoNotOptimize(ordo::generate(model, cache, p.view(), sampler, std::span<const ordo::request>(&req, 1), o));
        seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    g_results.push_back({coupling == ordo::draft_coupling::none ? "SJD" : "SCD-MC", window, stats.forward_passes, seconds});
    state.counters["forwards"] = stats.forward_passes;
    state.counters["ms_per_forward"] = 1e3 * seconds / stats.forward_passes;
    state.counters["tokens_per_forward"] = 256.0 / stats.forward_passes;
}

void print_summary() {
    const result* raster = nullptr;
    for (const result& r : g_results)
        if (r.window == 1) raster = &r;
    if (!raster) return;
    const double step = raster->seconds / raster->forwards;
    std::printf("\nGPT-B 16x16, batch 1, CFG 4, random weights: a window of L rows against a raster step (%.1f ms)\n", 1e3 * step);
    std::printf("%-7s %4s %9s %14s %10s %12s %9s\n", "variant", "L", "forwards", "tokens/forward", "ms/forward", "x raster step", "speedup");
    for (const result& r : g_results) {
        const double per = r.seconds / r.forwards;
        std::printf("%-7s %4d %9d %14.2f %10.1f %12.2f %8.2fx\n", r.window == 1 ? "raster" : r.name.c_str(), r.window, r.forwards, 256.0 / r.forwards,
                    1e3 * per, per / step, raster->seconds / r.seconds);
    }
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::RegisterBenchmark("BM_jacobi/raster", BM_jacobi, 1, ordo::draft_coupling::none)->Iterations(1)->Unit(benchmark::kSecond);
    for (int window : {4, 8, 16, 32})
        benchmark::RegisterBenchmark(("BM_jacobi/SJD/L=" + std::to_string(window)).c_str(), BM_jacobi, window, ordo::draft_coupling::none)
            ->Iterations(1)
            ->Unit(benchmark::kSecond);
    benchmark::RegisterBenchmark("BM_jacobi/SCD-MC/L=16", BM_jacobi, 16, ordo::draft_coupling::maximal)->Iterations(1)->Unit(benchmark::kSecond);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    print_summary();
    return 0;
}
