// bench/bench_gpt.cpp - decode orders on one real model: the GPT-B preset (seeded random weights)
// on the CPU backend, batch 1 with CFG, at 16x16 and 24x24. Per policy: steps, time per image and
// per step, tokens/s, KV-cache bytes, allocations per step. Measured in the same run: the memory
// bandwidth (streaming read) and the fp32 FMA peak of one core (the backend is single-threaded),
// from which each policy's roofline time is Σ_steps max(bytes/BW, FLOPs/peak) (design.md §6).
//
// Targets (checked in the summary printed at the end):
//   * a batch-1 raster decode step within 1.5x of its roofline time (weight streaming);
//   * each parallel policy's measured speedup over raster >= 0.9 x its roofline-predicted speedup.
// Run: build/bench/bench_gpt   (about 3 minutes; --benchmark_filter=16x16 for half)
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <ordo/eigen/gpt.hpp>
#include <ordo/ordo.hpp>

#include "alloc_counter.hpp"

namespace {

constexpr float kCfg = 4.0f;

struct machine {
    double bandwidth = 0;  // bytes/s, streaming read
    double peak = 0;       // FLOP/s, fp32 FMA, one core
};
machine g_machine;

struct result {
    std::string policy, grid;
    int steps = 0;
    double seconds = 0, roofline_seconds = 0, kv_bytes = 0, allocs_per_step = 0;
};
std::vector<result> g_results;

// Sums a buffer much larger than the last-level cache, 8 independent packet accumulators.
void BM_memory_bandwidth(benchmark::State& state) {
    using namespace ordo::eigen::detail;
    const std::size_t n = std::size_t{1} << 27;  // 512 MB
    std::vector<float> buf(n, 1.0f);
    double best = 0;
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        packet a[8];
        for (auto& x : a) x = Eigen::internal::pset1<packet>(0.0f);
        for (std::size_t i = 0; i + 8 * lanes <= n; i += 8 * lanes)
            for (int k = 0; k < 8; ++k) a[k] = Eigen::internal::padd(a[k], load(buf.data() + i + static_cast<std::size_t>(k * lanes)));
        float s = 0;
        for (auto& x : a) s += sum(x);
        benchmark::DoNotOptimize(s);
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, static_cast<double>(n * sizeof(float)) / dt);
    }
    g_machine.bandwidth = best;
    state.counters["GB_per_s"] = best / 1e9;
}

// Independent FMA chains on registers: what one core can compute at most.
void BM_fma_peak(benchmark::State& state) {
    using namespace ordo::eigen::detail;
    const long iters = 20'000'000;
    double best = 0;
    for (auto _ : state) {
        packet a[12];
        for (int k = 0; k < 12; ++k) a[k] = Eigen::internal::pset1<packet>(static_cast<float>(k));
        const packet m = Eigen::internal::pset1<packet>(0.999999f), c = Eigen::internal::pset1<packet>(1e-7f);
        const auto t0 = std::chrono::steady_clock::now();
        for (long i = 0; i < iters; ++i)
            for (int k = 0; k < 12; ++k) a[k] = fma(a[k], m, c);
        float s = 0;
        for (auto& x : a) s += sum(x);
        benchmark::DoNotOptimize(s);
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, 2.0 * lanes * 12 * static_cast<double>(iters) / dt);
    }
    g_machine.peak = best;
    state.counters["GFLOP_per_s"] = best / 1e9;
}

// The config a policy needs on the B preset: PAR's transition tokens, NAR's extra block.
ordo::models::llamagen::gpt_config config_for(const ordo::plan& p) {
    return ordo::models::llamagen::fit_variant(ordo::models::llamagen::make_preset("B"), p.view());
}

// Roofline time of one image: per step, max(bytes / BW, FLOPs / peak). Bytes: every weight matrix
// the step multiplies (embedding tables are only indexed) plus the K/V rows it attends to (not the
// visible rows not written yet, which read as zeros).
double roofline_seconds(const ordo::plan& p, const ordo::models::llamagen::gpt_config& c, int sequences) {
    const double d = c.dim, layer_params = static_cast<double>(c.qkv_rows()) * d + d * d + 3.0 * c.ffn_hidden() * d;
    const int heads = p.header().num_heads;
    const double params = layer_params * (heads > 1 ? c.num_layers() : c.n_layer) + static_cast<double>(heads) * c.vocab_size * d;
    const ordo::plan_view v = p.view();
    double total = 0;
    ordo::visit_mask(v, [&](auto mask) {
        for (ordo::index_t s = 0; s < p.num_steps(); ++s) {
            const ordo::step_view st = v.step(s);
            double seen = 0;
            for (ordo::index_t q : st.fed)
                for (ordo::index_t kv = 0; kv < v.num_slots(); ++kv) seen += mask(q, kv) && ordo::written(v.fed_step.data(), kv, s) ? 1 : 0;
            const double rows = static_cast<double>(st.num_rows()) * sequences, layers = heads > 1 ? c.num_layers() : c.n_layer;
            const double bytes = 4.0 * params + 4.0 * 2 * c.kv_width() * seen * sequences * layers;
            const double flops = 2.0 * rows * params + 4.0 * d * seen * sequences * layers;
            total += std::max(bytes / g_machine.bandwidth, flops / g_machine.peak);
        }
    });
    return total;
}

void BM_generate(benchmark::State& state, std::string spec, std::string grid) {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), ordo::parse_grid(grid));
    const ordo::models::llamagen::gpt_config c = config_for(p);
    const ordo::models::llamagen::gpt_weights w = ordo::models::llamagen::random_weights(c, 1);
    ordo::eigen::gpt_model model(w);
    const ordo::request req{207 % c.num_classes, 0, {}};
    ordo::session_options o;
    o.guidance.scale = kCfg;
    o.null_label = c.null_label();
    const auto sampler = ordo::make_sampler(ordo::top_k{2000}, ordo::multinomial{});
    ordo::session s(p.view(), std::span<const ordo::request>(&req, 1), sampler, model.vocab_size(), o);
    ordo::contiguous_kv_cache<float> cache(model.num_layers(), s.num_sequences(), ordo::kv_cache_len(p), model.cache_width());
    ordo::check_fit(p.view(), model, cache, s.num_sequences());
    std::vector<float> logits(static_cast<std::size_t>(s.num_sequences()) * static_cast<std::size_t>(p.view().max_rows_per_step()) *
                              static_cast<std::size_t>(p.header().num_heads) * static_cast<std::size_t>(model.vocab_size()));
    double seconds = 0;
    std::uint64_t allocs = 0;
    for (auto _ : state) {
        s.rewind(0);
        const std::uint64_t a0 = bench::allocs();
        const auto t0 = std::chrono::steady_clock::now();
        while (!s.done()) {
            const ordo::step_batch& b = s.next();
            const std::span<float> out(logits.data(), b.logits_size());
            model.forward(b, cache, out);
            s.commit(out);
        }
        seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        allocs = bench::allocs() - a0;
    }
    result r;
    r.policy = spec;
    r.grid = grid;
    r.steps = p.num_steps();
    r.seconds = seconds;
    r.roofline_seconds = roofline_seconds(p, c, s.num_sequences());
    r.kv_bytes = static_cast<double>(ordo::contiguous_kv_cache<float>::required_size(model.num_layers(), s.num_sequences(), ordo::kv_cache_len(p),
                                                                                     model.cache_width()) * sizeof(float));
    r.allocs_per_step = static_cast<double>(allocs) / r.steps;
    g_results.push_back(r);
    state.counters["steps"] = r.steps;
    state.counters["ms_per_step"] = 1e3 * seconds / r.steps;
    state.counters["tokens_per_s"] = p.view().num_positions() / seconds;
    state.counters["kv_MB"] = r.kv_bytes / 1e6;
    state.counters["roofline_fraction"] = r.roofline_seconds / seconds;
    state.counters["allocs_per_step"] = r.allocs_per_step;
}

void print_summary() {
    if (g_results.empty() || g_machine.bandwidth == 0) return;
    std::printf("\nmachine (same run): streaming read %.1f GB/s, fp32 FMA peak %.1f GFLOP/s (one core)\n", g_machine.bandwidth / 1e9,
                g_machine.peak / 1e9);
    std::printf("GPT-B, batch 1, CFG %.1f: time per image, per step, tokens/s, KV cache, and speedup over raster vs the roofline's\n", kCfg);
    std::printf("%-12s %-6s %6s %9s %9s %8s %8s %9s %9s %7s %7s %6s\n", "policy", "grid", "steps", "s/image", "ms/step", "tok/s", "kv MB",
                "roofline", "speedup", "ideal", "ratio", "allocs");
    std::map<std::string, const result*> raster;
    for (const result& r : g_results)
        if (r.policy == "raster") raster[r.grid] = &r;
    bool ok = true;
    for (const result& r : g_results) {
        const result* base = raster.count(r.grid) ? raster[r.grid] : nullptr;
        const double n = r.grid == "16x16" ? 256.0 : 576.0;
        const double speedup = base ? base->seconds / r.seconds : 0, ideal = base ? base->roofline_seconds / r.roofline_seconds : 0;
        const double ratio = ideal > 0 ? speedup / ideal : 0;
        std::printf("%-12s %-6s %6d %9.2f %9.1f %8.1f %8.1f %8.0f%% %8.2fx %6.2fx %7.2f %6.0f\n", r.policy.c_str(), r.grid.c_str(), r.steps, r.seconds,
                    1e3 * r.seconds / r.steps, n / r.seconds, r.kv_bytes / 1e6, 100.0 * r.roofline_seconds / r.seconds, speedup, ideal, ratio,
                    r.allocs_per_step);
        if (r.policy == "raster" && r.seconds > 1.5 * r.roofline_seconds) {
            std::printf("  MISSED: raster step is %.2fx its roofline time (target <= 1.5x)\n", r.seconds / r.roofline_seconds);
            ok = false;
        }
        if (r.policy != "raster" && base && ratio < 0.9) {
            std::printf("  MISSED: speedup %.2fx is %.2f of the roofline's %.2fx (target >= 0.9)\n", speedup, ratio, ideal);
            ok = false;
        }
        if (r.allocs_per_step > 0) {
            std::printf("  MISSED: %.1f allocations per step (target 0)\n", r.allocs_per_step);
            ok = false;
        }
    }
    std::printf("%s\n", ok ? "all targets met" : "some targets missed (see above)");
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::RegisterBenchmark("BM_memory_bandwidth", BM_memory_bandwidth)->Iterations(3)->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_fma_peak", BM_fma_peak)->Iterations(3)->Unit(benchmark::kMillisecond);
    for (const char* grid : {"16x16", "24x24"})
        for (const char* spec : {"raster", "par:2x2", "par:4x4", "nar", "par:2x2+nar", "zipar:8"})
            benchmark::RegisterBenchmark((std::string("BM_generate/GPT-B/") + grid + "/" + spec).c_str(), BM_generate, spec, grid)
                ->Iterations(1)
                ->Unit(benchmark::kSecond);
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    print_summary();
}
