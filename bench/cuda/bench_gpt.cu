// bench/cuda/bench_gpt.cu - decode orders on the GPU GPT: presets B and L (seeded random weights),
// bf16 weights and KV cache, CUDA graphs on, at 16x16 and 24x24, batch 1 and batch 64, both with CFG (2 and 128
// sequences). One iteration decodes one whole image: every step's forward pass (the model's own
// work; the device sampler is timed on its own in bench_sampler.cu), timed with CUDA events.
// Counters per policy: steps, ms per step and per image, speedup over raster measured in the same
// run next to the step ratio (raster steps / policy steps), and the weight bytes a step streams
// over its time as a fraction of the GPU's peak memory bandwidth (from the device attributes) and
// of a device-to-device copy measured in the same run.
//
// Targets on an H100 (the summary at the end says met / missed):
//   * each parallel policy's batch-1 speedup over raster >= 0.9 x its step ratio;
//   * a batch-1 B-preset raster step within 2x of the weight-streaming roofline.
// gpt_generate/...: the B preset end to end through ordo::cuda::generate (sampling on the device,
// tokens back to the session each step), wall time per image.
// Run: build/bench/cuda/bench_cuda --benchmark_filter=gpt
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <ordo/cuda/generate.cuh>
#include <ordo/cuda/gpt.cuh>
#include <ordo/ordo.hpp>

namespace {

namespace oc = ordo::cuda;
using bf16 = __nv_bfloat16;

double g_peak = 0;  // bytes/s, set by every benchmark (the summary runs after CUDA may be torn down)
double peak_bandwidth() {  // bytes/s: 2 (DDR) x memory clock x bus width
    int dev = 0, clock_khz = 0, bus_bits = 0;
    oc::check(cudaGetDevice(&dev), "cudaGetDevice");
    oc::check(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, dev), "memory clock");
    oc::check(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, dev), "bus width");
    g_peak = 2.0 * clock_khz * 1e3 * bus_bits / 8.0;
    return g_peak;
}
double g_copy_bandwidth = 0;  // bytes/s, device-to-device copy (read + write counted)

// Every step's batch of a plan for `requests` requests with CFG, precomputed (inputs are token 0:
// what is fed does not change the time of a step).
struct step_batches {
    std::vector<ordo::step_batch> batches;
    std::vector<std::vector<ordo::index_t>> slots;
    std::vector<std::vector<ordo::rope_coord>> rope;
    std::vector<std::vector<ordo::fed_input>> inputs;
    std::vector<ordo::request> requests;
};
std::unique_ptr<step_batches> make_batches(const ordo::plan& p, int requests, ordo::index_t null_label) {
    auto sb = std::make_unique<step_batches>();
    sb->requests.resize(static_cast<std::size_t>(requests));
    const ordo::plan_view v = p.view();
    const ordo::index_t seqs = 2 * requests;
    for (ordo::index_t s = 0; s < p.num_steps(); ++s) {
        const ordo::step_view st = p.step(s);
        auto& sl = sb->slots.emplace_back(st.fed.begin(), st.fed.end());
        auto& ro = sb->rope.emplace_back();
        auto& in = sb->inputs.emplace_back();
        for (ordo::index_t slot : sl) ro.push_back(ordo::rope_of(v, slot));
        for (ordo::index_t q = 0; q < seqs; ++q)
            for (ordo::index_t slot : sl) {
                const ordo::slot_entry& e = v.slots[static_cast<std::size_t>(slot)];
                ordo::index_t value = 0;
                if (e.kind == ordo::slot_kind::prefix) value = q < requests ? 0 : null_label;
                if (e.kind == ordo::slot_kind::transition) value = e.index;
                in.push_back({e.kind, e.index, value});
            }
    }
    for (ordo::index_t s = 0; s < p.num_steps(); ++s) {
        const auto& sl = sb->slots[static_cast<std::size_t>(s)];
        sb->batches.push_back(ordo::step_batch{v, s, seqs, static_cast<ordo::index_t>(sl.size()), v.header.num_heads, 16384, sl,
                                               sb->rope[static_cast<std::size_t>(s)], sb->inputs[static_cast<std::size_t>(s)], sb->requests,
                                               ordo::max_index, s});
    }
    return sb;
}

// Bytes of weights a step streams: every matrix but the embedding tables (rows are gathered),
// the B head's block only when the plan reads it.
double streamed_bytes(const ordo::models::llamagen::gpt_config& c, bool b_head) {
    const double d = c.dim, h = c.ffn_hidden(), per_layer = c.qkv_rows() * d + d * d + 3 * h * d + 2 * d;
    const double layers = b_head ? c.num_layers() : c.n_layer;
    return sizeof(bf16) * (layers * per_layer + (b_head ? 2.0 : 1.0) * (c.vocab_size * d + d));
}

struct result {
    std::string preset, policy, grid;
    int batch = 0, steps = 0;
    double seconds = 0, bytes_per_step = 0;
};
std::vector<result> g_results;
std::map<std::tuple<std::string, std::string, int>, result> g_raster;  // (preset, grid, batch)
std::map<std::tuple<std::string, std::string, int>, double> g_generate_raster;  // s/image, end to end

void BM_copy_bandwidth(benchmark::State& state) {
    const std::size_t n = std::size_t{1} << 30;  // 1 GiB each way
    oc::device_buffer<char> a(n), b(n);
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    double best = 0;
    for (auto _ : state) {
        cudaEventRecord(e0);
        oc::check(cudaMemcpyAsync(b.data(), a.data(), n, cudaMemcpyDeviceToDevice), "copy");
        cudaEventRecord(e1);
        cudaEventSynchronize(e1);
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        state.SetIterationTime(ms / 1e3);
        best = std::max(best, 2.0 * static_cast<double>(n) / (ms / 1e3));
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    g_copy_bandwidth = best;
    state.counters["GB_per_s"] = best / 1e9;
    state.counters["fraction_of_peak"] = best / peak_bandwidth();
}

// Seeded random weights of `preset` in the variant plan p needs, on the device in bf16 (the host
// copy is freed once uploaded).
std::unique_ptr<oc::device_gpt_weights<bf16>> device_weights(const std::string& preset, const ordo::plan& p) {
    const ordo::models::llamagen::gpt_weights host = ordo::models::llamagen::random_weights(ordo::models::llamagen::fit_variant(ordo::models::llamagen::make_preset(preset), p.view()), 1);
    return std::make_unique<oc::device_gpt_weights<bf16>>(host);
}

void BM_decode(benchmark::State& state, std::string preset, std::string policy, std::string grid, int batch) {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy(policy), ordo::parse_grid(grid));
    const auto w = device_weights(preset, p);
    const ordo::models::llamagen::gpt_config& cfg = w->config();
    oc::gpt_model<bf16> model(*w);
    model.use_graphs(true);  // the warm-up image captures one graph per step; timed images replay them
    const auto sb = make_batches(p, batch, cfg.null_label());
    oc::device_kv_cache<bf16> cache(model.num_layers(), 2 * batch, ordo::kv_cache_len(p), model.cache_width());
    ordo::check_fit(p.view(), model, cache, 2 * batch);
    for (const auto& b : sb->batches) model.run(b, cache);  // warm-up: graph capture, cuBLAS heuristics
    oc::check(cudaStreamSynchronize(model.stream()), "warm-up");
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    double total = 0;
    long images = 0;
    for (auto _ : state) {
        cudaEventRecord(e0, model.stream());
        for (const auto& b : sb->batches) model.run(b, cache);
        cudaEventRecord(e1, model.stream());
        oc::check(cudaEventSynchronize(e1), "decode");
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        state.SetIterationTime(ms / 1e3);
        total += ms / 1e3;
        ++images;
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    result r{preset, policy, grid, batch, p.num_steps(), total / static_cast<double>(images), streamed_bytes(cfg, p.header().num_heads > 1)};
    const double per_step = r.seconds / r.steps;
    state.counters["steps"] = r.steps;
    state.counters["ms_per_step"] = per_step * 1e3;
    state.counters["ms_per_image"] = r.seconds * 1e3;
    state.counters["images_per_s"] = batch / r.seconds;
    state.counters["bw_fraction_of_peak"] = r.bytes_per_step / per_step / peak_bandwidth();
    if (policy == "raster") g_raster[{preset, grid, batch}] = r;
    const auto it = g_raster.find({preset, grid, batch});
    if (it != g_raster.end()) {
        state.counters["speedup"] = it->second.seconds / r.seconds;
        state.counters["step_ratio"] = static_cast<double>(it->second.steps) / r.steps;
    }
    g_results.push_back(r);
}

// A whole image as an engine decodes it: ordo::cuda::generate (forward, sampling on the device with
// LlamaGen's temperature 1 + top-k 2000 + multinomial, the tokens back to the session every step),
// CFG 4. Wall time per image, host work included.
void BM_generate(benchmark::State& state, std::string preset, std::string policy, std::string grid, int batch) {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy(policy), ordo::parse_grid(grid));
    const auto w = device_weights(preset, p);
    const ordo::models::llamagen::gpt_config& cfg = w->config();
    oc::gpt_model<bf16> model(*w);
    model.use_graphs(true);
    oc::device_kv_cache<bf16> cache(model.num_layers(), 2 * batch, ordo::kv_cache_len(p), model.cache_width());
    std::vector<ordo::request> reqs;
    for (int i = 0; i < batch; ++i) reqs.push_back({i % 1000, static_cast<std::uint64_t>(i), {}});
    ordo::generate_options o;
    o.session.guidance.scale = 4.0f;
    o.session.null_label = cfg.null_label();
    const auto chain = ordo::make_sampler(ordo::temperature{1.0f}, ordo::top_k{2000}, ordo::multinomial{});
    (void)oc::generate(model, cache, p.view(), chain, reqs, o);  // warm-up: graph capture
    double total = 0;
    long images = 0;
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        benchmark::DoNotOptimize(oc::generate(model, cache, p.view(), chain, reqs, o));
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        state.SetIterationTime(dt);
        total += dt;
        ++images;
    }
    const double per_image = total / static_cast<double>(images);
    state.counters["steps"] = p.num_steps();
    state.counters["ms_per_step"] = per_image / p.num_steps() * 1e3;
    state.counters["ms_per_image"] = per_image * 1e3;
    state.counters["images_per_s"] = batch / per_image;
    if (policy == "raster") g_generate_raster[{preset, grid, batch}] = per_image;
    const auto it = g_generate_raster.find({preset, grid, batch});
    if (it != g_generate_raster.end()) state.counters["speedup"] = it->second / per_image;
}

const char* kPolicies[] = {"raster", "par:2x2", "par:4x4", "nar", "par:2x2+nar", "zipar:8"};

int register_all() {
    benchmark::RegisterBenchmark("gpt/copy_bandwidth", BM_copy_bandwidth)->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);
    for (const char* preset : {"B", "L"})
        for (const char* grid : {"16x16", "24x24"})
            for (int batch : {1, 64})
                for (const char* policy : kPolicies) {  // raster first: the others' speedup refers to it
                    const std::string name = std::string("gpt/") + preset + "/" + grid + "/batch" + std::to_string(batch) + "/" + policy;
                    benchmark::RegisterBenchmark(name.c_str(), BM_decode, preset, policy, grid, batch)
                        ->UseManualTime()
                        ->MinTime(0.5)
                        ->Unit(benchmark::kMillisecond);
                }
    for (const char* grid : {"16x16", "24x24"})
        for (int batch : {1, 64})
            for (const char* policy : kPolicies) {
                const std::string name = std::string("gpt_generate/B/") + grid + "/batch" + std::to_string(batch) + "/" + policy;
                benchmark::RegisterBenchmark(name.c_str(), BM_generate, "B", policy, grid, batch)->UseManualTime()->MinTime(0.5)->Unit(benchmark::kMillisecond);
            }
    return 0;
}
const int registered = register_all();

// The table and the targets, after all benchmarks ran.
struct summary {
    ~summary() {
        if (g_results.empty()) return;
        const double peak = g_peak;
        std::printf("\n| preset | grid | batch | policy | steps | ms/step | ms/image | speedup vs raster | step ratio | ratio | weight BW / peak |\n");
        std::printf("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for (const result& r : g_results) {
            const auto it = g_raster.find({r.preset, r.grid, r.batch});
            const double speedup = it != g_raster.end() ? it->second.seconds / r.seconds : 0, ratio = it != g_raster.end() ? double(it->second.steps) / r.steps : 0;
            std::printf("| %s | %s | %d | %s | %d | %.3f | %.1f | %.2fx | %.2fx | %.2f | %.0f%% |\n", r.preset.c_str(), r.grid.c_str(), r.batch, r.policy.c_str(), r.steps,
                        r.seconds / r.steps * 1e3, r.seconds * 1e3, speedup, ratio, ratio > 0 ? speedup / ratio : 0,
                        100.0 * r.bytes_per_step / (r.seconds / r.steps) / peak);
        }
        std::printf("\npeak memory bandwidth %.0f GB/s (device attributes); device copy %.0f GB/s\n", peak / 1e9, g_copy_bandwidth / 1e9);
        for (const result& r : g_results) {
            if (r.batch != 1) continue;
            const auto it = g_raster.find({r.preset, r.grid, r.batch});
            if (it == g_raster.end()) continue;
            if (r.policy == "raster") {
                if (r.preset == "B") {
                    const double roof = r.bytes_per_step / peak, step = r.seconds / r.steps;
                    std::printf("target: B raster step within 2x of the weight-streaming roofline (%s): %.3f ms vs %.3f ms = %.2fx -> %s\n", r.grid.c_str(),
                                step * 1e3, roof * 1e3, step / roof, step / roof <= 2.0 ? "met" : "MISSED");
                }
                continue;
            }
            const double speedup = it->second.seconds / r.seconds, ratio = double(it->second.steps) / r.steps;
            std::printf("target: %s %s %s batch 1 speedup %.2fx >= 0.9 x step ratio %.2fx -> %s\n", r.preset.c_str(), r.grid.c_str(), r.policy.c_str(), speedup,
                        ratio, speedup >= 0.9 * ratio ? "met" : "MISSED");
        }
    }
} g_summary;

}  // namespace
