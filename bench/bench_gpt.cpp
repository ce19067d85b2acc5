// bench/bench_gpt.cpp - decode orders on real models: the GPT-B preset (seeded random weights)
// on the CPU backend, batch 1 with CFG, at 16x16 and 24x24; and LPD, RandAR and ARPG beside the
// orders of a LlamaGen model of the same size (LPD-L, RandAR-L, ARPG-L and GPT-L: 24 blocks of
// width 1024, 16 heads) at 16x16. Per policy: steps, time per image and
// per step, tokens/s, KV-cache bytes, allocations per step. Measured in the same run: the memory
// bandwidth (streaming read) and the fp32 FMA peak of one core (this table runs on one thread),
// from which each policy's roofline time is Σ_steps max(bytes/BW, FLOPs/peak) (design.md §6).
//
// Targets (checked in the summary printed at the end):
//   * a batch-1 raster decode step within 1.5x of its roofline time (weight streaming);
//   * each parallel policy's measured speedup over raster >= 0.9 x its roofline-predicted speedup.
// Run: build/bench/bench_gpt   (about 6 minutes; --benchmark_filter='bandwidth|fma|-L/' for the L models)
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <ordo/eigen/arpg.hpp>
#include <ordo/eigen/gpt.hpp>
#include <ordo/eigen/lpd.hpp>
#include <ordo/ordo.hpp>

#include "alloc_counter.hpp"

namespace {

const int g_all_threads = ordo::eigen::max_threads();  // before any set_threads()

constexpr float kCfg = 4.0f;

struct machine {
    double bandwidth = 0;  // bytes/s, streaming read
    double peak = 0;       // FLOP/s, fp32 FMA, one core
};
machine g_machine;

struct result {
    std::string model, policy, grid;
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

// What the roofline needs of a model: the weights every step multiplies, and the cache's shape.
struct model_shape {
    double params = 0;  // weights multiplied per row (embedding tables are only indexed)
    double dim = 0, kv_width = 0, layers = 0;
};

// Roofline time of one image: per step, max(bytes / BW, FLOPs / peak). Bytes: every weight matrix
// the step multiplies plus the K/V rows it attends to (not the visible rows not written yet, which
// read as zeros).
double roofline_seconds(const ordo::plan& p, const model_shape& m, int sequences) {
    const ordo::plan_view v = p.view();
    double total = 0;
    ordo::visit_mask(v, [&](auto mask) {
        for (ordo::index_t s = 0; s < p.num_steps(); ++s) {
            const ordo::step_view st = v.step(s);
            double seen = 0;
            for (ordo::index_t q : st.fed)
                for (ordo::index_t kv = 0; kv < v.num_slots(); ++kv) seen += mask(q, kv) && ordo::written(v.fed_step.data(), kv, s) ? 1 : 0;
            const double rows = static_cast<double>(st.num_rows()) * sequences;
            const double bytes = 4.0 * m.params + 4.0 * 2 * m.kv_width * seen * sequences * m.layers;
            const double flops = 2.0 * rows * m.params + 4.0 * m.dim * seen * sequences * m.layers;
            total += std::max(bytes / g_machine.bandwidth, flops / g_machine.peak);
        }
    });
    return total;
}

model_shape shape_of(const ordo::models::llamagen::gpt_config& c, int heads) {
    const double d = c.dim, layer_params = static_cast<double>(c.qkv_rows()) * d + d * d + 3.0 * c.ffn_hidden() * d;
    const double layers = heads > 1 ? c.num_layers() : c.n_layer;
    return {layer_params * layers + static_cast<double>(heads) * c.vocab_size * d, d, static_cast<double>(c.kv_width()), layers};
}
model_shape shape_of(const ordo::models::lpd::lpd_config& c) {
    const double d = c.dim, layer_params = 4.0 * d * d + 2.0 * c.mlp_hidden * d;
    return {layer_params * c.depth + static_cast<double>(c.vocab_size) * d, d, d, static_cast<double>(c.depth)};
}

// One image of `p` on `model`, timed, with the result recorded under `model_name`.
template <class Model>
void time_generate(benchmark::State& state, Model& model, const ordo::plan& p, const std::string& model_name, const std::string& spec,
                   const std::string& grid, const model_shape& shape, ordo::index_t label, ordo::index_t null_label, ordo::cfg_ramp ramp) {
    ordo::eigen::set_threads(1);  // this table is the one-core roofline's
    const ordo::request req{label, 0, {}, {}};
    ordo::session_options o;
    o.guidance.scale = kCfg;
    o.guidance.ramp = ramp;
    o.null_label = null_label;
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
    r.model = model_name;
    r.policy = spec;
    r.grid = grid;
    r.steps = p.num_steps();
    r.seconds = seconds;
    r.roofline_seconds = roofline_seconds(p, shape, s.num_sequences());
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
    ordo::eigen::set_threads(g_all_threads);
}

// A LlamaGen-family order on the GPT preset (PAR's transition tokens, NAR's extra block as the
// policy needs).
void BM_generate(benchmark::State& state, std::string preset, std::string spec, std::string grid) {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), ordo::parse_grid(grid));
    const ordo::models::llamagen::gpt_config c = ordo::models::llamagen::fit_variant(ordo::models::llamagen::make_preset(preset), p.view());
    const ordo::models::llamagen::gpt_weights w = ordo::models::llamagen::random_weights(c, 1);
    ordo::eigen::gpt_model model(w);
    // RandAR (its GPT with the position-instruction vector) guides per call
    const bool randar = c.position_instruction;
    time_generate(state, model, p, (randar ? "RandAR-" : "GPT-") + preset, spec, grid, shape_of(c, p.header().num_heads), 207 % c.num_classes,
                  c.null_label(), randar ? ordo::cfg_ramp::linear_in_step_start : ordo::cfg_ramp::per_step);
}

// ARPG on its preset (self- and cross-decoder halves of the preset's depth), its per-call CFG ramp.
model_shape shape_of(const ordo::models::arpg::arpg_config& c) {
    const double d = c.dim, self = 4.0 * d * d + 3.0 * c.ffn_hidden * d, cross = 2.0 * d * d + 3.0 * c.ffn_hidden * d;
    // the shared K/V is two more d x d products; the cache holds n_self + 1 layers
    return {self * c.n_self + cross * c.n_cross + 2.0 * d * d + static_cast<double>(c.vocab_size) * d, d, d, static_cast<double>(c.n_self + 1)};
}
void BM_generate_arpg(benchmark::State& state, std::string preset, std::string spec, std::string grid) {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), ordo::parse_grid(grid));
    const ordo::models::arpg::arpg_config c = ordo::models::arpg::make_preset(preset);
    const ordo::models::arpg::arpg_weights w = ordo::models::arpg::random_weights(c, 1);
    ordo::eigen::arpg_model model(w);
    time_generate(state, model, p, "ARPG-" + preset, spec, grid, shape_of(c), 207, model.null_label(), ordo::cfg_ramp::linear_in_step_end);
}

// LPD on its preset, with its linear CFG schedule.
void BM_generate_lpd(benchmark::State& state, std::string preset, std::string spec, std::string grid) {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), ordo::parse_grid(grid));
    const ordo::models::lpd::lpd_config c = ordo::models::lpd::make_preset(preset, p.view().num_positions());
    const ordo::models::lpd::lpd_weights w = ordo::models::lpd::random_weights(c, 1);
    ordo::eigen::lpd_model model(w);
    time_generate(state, model, p, "LPD-" + preset, spec, grid, shape_of(c), 207, model.null_label(), ordo::cfg_ramp::linear_in_rank);
}

// The weight-streaming floor with every core: each thread sums its own contiguous part of a buffer
// the size of GPT-B's multiplied weights in fp32, 8 packet accumulators per thread.
double g_floor_bandwidth = 0;  // bytes/s, all threads
void BM_streaming_floor(benchmark::State& state) {
    using namespace ordo::eigen::detail;
    ordo::eigen::set_threads(g_all_threads);
    const std::size_t n = static_cast<std::size_t>(shape_of(ordo::models::llamagen::make_preset("B"), 1).params);
    const std::vector<float> buf(n, 1.0f);
    const ordo::index_t parts = 4096;
    std::vector<float> sums(static_cast<std::size_t>(g_all_threads), 0.0f);
    double best = 0;
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        ordo::eigen::parallel_ranges(parts, static_cast<double>(n), [&](ordo::index_t b, ordo::index_t e, int t) {
            const std::size_t step = 8 * lanes, i0 = n * static_cast<std::size_t>(b) / parts / step * step, i1 = n * static_cast<std::size_t>(e) / parts / step * step;
            packet a[8];
            for (auto& x : a) x = Eigen::internal::pset1<packet>(0.0f);
            for (std::size_t i = i0; i < i1; i += step)
                for (int k = 0; k < 8; ++k) a[k] = Eigen::internal::padd(a[k], load(buf.data() + i + static_cast<std::size_t>(k * lanes)));
            float s = 0;
            for (auto& x : a) s += sum(x);
            sums[static_cast<std::size_t>(t)] += s;
        });
        benchmark::DoNotOptimize(sums.data());
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, static_cast<double>(n * sizeof(float)) / dt);
    }
    g_floor_bandwidth = best;
    state.counters["GB_per_s"] = best / 1e9;
    state.counters["threads"] = g_all_threads;
    state.counters["fp32_floor_ms"] = 1e3 * static_cast<double>(n * sizeof(float)) / best;
}

struct thread_result {
    std::string policy, dtype;
    int batch = 0, threads = 0, steps = 0;
    double seconds = 0, weight_bytes = 0;
};
std::vector<thread_result> g_thread_results;

// One image per request of `spec` on GPT-B at 16x16 (random weights, CFG 4, top-k 2000): `batch`
// requests on `threads` threads (0: all) with `dtype` matrices.
void BM_threads(benchmark::State& state, std::string spec, int batch, int threads, ordo::eigen::weight_dtype dtype) {
    const int t = threads > 0 ? threads : g_all_threads;
    ordo::eigen::set_threads(t);
    const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), ordo::parse_grid("16x16"));
    const ordo::models::llamagen::gpt_config c = ordo::models::llamagen::fit_variant(ordo::models::llamagen::make_preset("B"), p.view());
    const ordo::models::llamagen::gpt_weights w = ordo::models::llamagen::random_weights(c, 1);
    ordo::eigen::gpt_model model(w, dtype);
    std::vector<ordo::request> reqs;
    for (int i = 0; i < batch; ++i) reqs.push_back({207, static_cast<std::uint64_t>(i), {}, {}});
    ordo::session_options o;
    o.guidance.scale = kCfg;
    o.null_label = c.null_label();
    ordo::session s(p.view(), std::span<const ordo::request>(reqs), ordo::make_sampler(ordo::top_k{2000}, ordo::multinomial{}), model.vocab_size(), o);
    ordo::contiguous_kv_cache<float> cache(model.num_layers(), s.num_sequences(), ordo::kv_cache_len(p), model.cache_width());
    ordo::check_fit(p.view(), model, cache, s.num_sequences());
    std::vector<float> logits(static_cast<std::size_t>(s.num_sequences()) * static_cast<std::size_t>(p.view().max_rows_per_step()) *
                              static_cast<std::size_t>(p.header().num_heads) * static_cast<std::size_t>(model.vocab_size()));
    double seconds = 0;
    for (auto _ : state) {
        s.rewind(0);
        const auto t0 = std::chrono::steady_clock::now();
        while (!s.done()) {
            const ordo::step_batch& b = s.next();
            const std::span<float> out(logits.data(), b.logits_size());
            model.forward(b, cache, out);
            s.commit(out);
        }
        seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    const double bytes = shape_of(c, p.header().num_heads).params * (dtype == ordo::eigen::weight_dtype::bf16 ? 2.0 : 4.0);
    g_thread_results.push_back({spec, ordo::eigen::dtype_name(dtype), batch, t, p.num_steps(), seconds, bytes});
    state.counters["threads"] = t;
    state.counters["ms_per_step"] = 1e3 * seconds / p.num_steps();
    state.counters["s_per_image"] = seconds / batch;
    if (g_floor_bandwidth > 0) state.counters["step_over_floor"] = seconds / p.num_steps() / (bytes / g_floor_bandwidth);
    ordo::eigen::set_threads(g_all_threads);
}

void print_thread_summary() {
    if (g_thread_results.empty()) return;
    const double b_bytes = shape_of(ordo::models::llamagen::make_preset("B"), 1).params * 4;
    std::printf("\nGPT-B 16x16, CFG %.1f: threads and weight dtype (same run)", kCfg);
    if (g_floor_bandwidth > 0)
        std::printf("; streaming floor on %d threads %.1f GB/s: %.1f ms per step in fp32, %.1f in bf16", g_all_threads, g_floor_bandwidth / 1e9,
                    1e3 * b_bytes / g_floor_bandwidth, 0.5e3 * b_bytes / g_floor_bandwidth);
    std::printf("\n%-10s %5s %7s %5s %6s %9s %9s %9s %10s %11s\n", "policy", "batch", "threads", "dtype", "steps", "s/image", "ms/step", "floor ms", "step/floor",
                "vs 1 thread");
    for (const thread_result& r : g_thread_results) {
        const double step = r.seconds / r.steps, floor = g_floor_bandwidth > 0 ? r.weight_bytes / g_floor_bandwidth : 0;
        double one = 0;
        for (const thread_result& q : g_thread_results)
            if (q.policy == r.policy && q.batch == r.batch && q.dtype == r.dtype && q.threads == 1) one = q.seconds;
        std::printf("%-10s %5d %7d %5s %6d %9.2f %9.1f %9.1f %10.2f %10.2fx\n", r.policy.c_str(), r.batch, r.threads, r.dtype.c_str(), r.steps, r.seconds / r.batch,
                    1e3 * step, 1e3 * floor, floor > 0 ? step / floor : 0.0, one > 0 ? one / r.seconds : 0.0);
    }
}

void print_summary() {
    if (g_results.empty() || g_machine.bandwidth == 0) return;
    std::printf("\nmachine (same run): streaming read %.1f GB/s, fp32 FMA peak %.1f GFLOP/s (one core)\n", g_machine.bandwidth / 1e9,
                g_machine.peak / 1e9);
    std::printf("batch 1, CFG %.1f: time per image, per step, tokens/s, KV cache, and speedup over raster (the same-size GPT's) vs the roofline's "
                "and the step ratio\n", kCfg);
    std::printf("%-7s %-22s %-6s %6s %9s %9s %8s %8s %9s %9s %7s %7s %7s %6s\n", "model", "policy", "grid", "steps", "s/image", "ms/step", "tok/s",
                "kv MB", "roofline", "speedup", "ideal", "ratio", "steps/", "allocs");
    // raster of the GPT of the same size (LPD-L is compared with GPT-L) on the same grid
    std::map<std::string, const result*> raster;
    for (const result& r : g_results)
        if (r.policy == "raster") raster[r.model.substr(r.model.find('-')) + r.grid] = &r;
    bool ok = true;
    for (const result& r : g_results) {
        const auto it = raster.find(r.model.substr(r.model.find('-')) + r.grid);
        const result* base = it != raster.end() ? it->second : nullptr;
        const double n = r.grid == "16x16" ? 256.0 : 576.0;
        const double speedup = base ? base->seconds / r.seconds : 0, ideal = base ? base->roofline_seconds / r.roofline_seconds : 0;
        const double ratio = ideal > 0 ? speedup / ideal : 0, step_ratio = base ? static_cast<double>(base->steps) / r.steps : 0;
        std::printf("%-7s %-22s %-6s %6d %9.2f %9.1f %8.1f %8.1f %8.0f%% %8.2fx %6.2fx %7.2f %6.2fx %6.0f\n", r.model.c_str(), r.policy.c_str(),
                    r.grid.c_str(), r.steps, r.seconds, 1e3 * r.seconds / r.steps, n / r.seconds, r.kv_bytes / 1e6, 100.0 * r.roofline_seconds / r.seconds,
                    speedup, ideal, ratio, step_ratio, r.allocs_per_step);
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
            benchmark::RegisterBenchmark((std::string("BM_generate/GPT-B/") + grid + "/" + spec).c_str(), BM_generate, "B", spec, grid)
                ->Iterations(1)
                ->Unit(benchmark::kSecond);
    // LPD-L against the LlamaGen orders on GPT-L (same depth, width and heads)
    for (const char* spec : {"raster", "par:2x2", "par:4x4", "nar"})
        benchmark::RegisterBenchmark((std::string("BM_generate/GPT-L/16x16/") + spec).c_str(), BM_generate, "L", spec, "16x16")
            ->Iterations(1)
            ->Unit(benchmark::kSecond);
    for (const char* spec : {"lpd:20", "lpd:32"})
        benchmark::RegisterBenchmark((std::string("BM_generate/LPD-L/16x16/") + spec).c_str(), BM_generate_lpd, "L", spec, "16x16")
            ->Iterations(1)
            ->Unit(benchmark::kSecond);
    benchmark::RegisterBenchmark("BM_generate/RandAR-L/16x16/randar:88", BM_generate, "L", "randar:88", "16x16")->Iterations(1)->Unit(benchmark::kSecond);
    for (const char* spec : {"arpg:64", "arpg:32"})
        benchmark::RegisterBenchmark((std::string("BM_generate/ARPG-L/16x16/") + spec).c_str(), BM_generate_arpg, "L", spec, "16x16")
            ->Iterations(1)
            ->Unit(benchmark::kSecond);
    benchmark::RegisterBenchmark("BM_streaming_floor", BM_streaming_floor)->Iterations(10)->Unit(benchmark::kMillisecond);
    for (const char* spec : {"raster", "par:2x2", "nar"})  // PAR-4x is 2x2 regions
        for (const int batch : {1, 8})
            for (const int threads : {1, 0})
                for (const auto dtype : {ordo::eigen::weight_dtype::fp32, ordo::eigen::weight_dtype::bf16})
                    benchmark::RegisterBenchmark((std::string("BM_threads/GPT-B/16x16/") + spec + "/b" + std::to_string(batch) + "/" +
                                                  (threads ? "t1" : "tall") + "/" + ordo::eigen::dtype_name(dtype))
                                                     .c_str(),
                                                 BM_threads, spec, batch, threads, dtype)
                        ->Iterations(1)
                        ->Unit(benchmark::kSecond);
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    print_summary();
    print_thread_summary();
}
