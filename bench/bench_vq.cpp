// bench/bench_vq.cpp - tokens to pixels: LlamaGen's VQ-16 decoder on the CPU backend (procedural
// weights of the real VQ-16 shape, golden/vq's formula) at 16x16 tokens -> 256 px (about 126
// GMAC) and 24x24 -> 384 px, beside the machine's fp32 GEMM peak measured in the same run with
// Eigen on a large square product (the decoder's convolutions are Eigen GEMMs on im2col bands, so
// that is their ceiling). Counters: GMAC/s, and the fraction of the GEMM peak. Both sides use the
// same thread count, OpenMP's (OMP_NUM_THREADS, default all cores): the peak through Eigen's own
// threaded GEMM, the decoder through ordo's threads (fixed column chunks, threads.hpp).
// Target (issue 19): a 256-px decode within 2x of the GEMM peak, i.e. fraction_of_gemm_peak >= 0.5.
// Run: build/bench/bench_vq   (about a minute on 2 cores)
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <ordo/eigen/threads.hpp>
#include <ordo/eigen/vq.hpp>
#include <ordo/models/vq/procedural.hpp>

namespace {

double g_gemm_gmacs = 0;  // measured by BM_sgemm_peak, which runs first

void BM_sgemm_peak(benchmark::State& state) {
    const Eigen::Index n = state.range(0);
    using mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const mat a = mat::Random(n, n), b = mat::Random(n, n);
    mat c(n, n);
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) {
        c.noalias() = a * b;
        benchmark::DoNotOptimize(c.data());
        benchmark::ClobberMemory();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double macs = static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(state.iterations());
    g_gemm_gmacs = std::max(g_gemm_gmacs, macs * 1e-9 / seconds);  // the best size is the peak
    state.counters["GMAC/s"] = macs * 1e-9 / seconds;
    state.counters["threads"] = Eigen::nbThreads();
}

const ordo::models::vq::vq_weights& vq16() {
    static const auto w = ordo::models::vq::procedural_weights(ordo::models::vq::vq16(), 1601, 1.0);
    return w;
}

void BM_vq16_decode(benchmark::State& state) {
    const auto tokens = static_cast<ordo::index_t>(state.range(0));
    ordo::eigen::vq_decoder dec(vq16());
    std::vector<ordo::index_t> codes(static_cast<std::size_t>(tokens) * static_cast<std::size_t>(tokens));
    for (std::size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<ordo::index_t>((i * 7919) % 16384);
    std::vector<float> image(3 * static_cast<std::size_t>(dec.image_height(tokens)) * static_cast<std::size_t>(dec.image_width(tokens)));
    dec.decode(std::span<const ordo::index_t>(codes), tokens, tokens, std::span<float>(image));  // sizes the workspace
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) {
        dec.decode(std::span<const ordo::index_t>(codes), tokens, tokens, std::span<float>(image));
        benchmark::DoNotOptimize(image.data());
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double macs = ordo::models::vq::decode_macs(vq16().config(), tokens, tokens);
    const double rate = macs * 1e-9 * static_cast<double>(state.iterations()) / seconds;
    state.counters["GMAC"] = macs * 1e-9;
    state.counters["GMAC/s"] = rate;
    if (g_gemm_gmacs > 0) {  // the best sgemm rate of any run above, warm-up runs included
        state.counters["gemm_peak_GMAC/s"] = g_gemm_gmacs;
        state.counters["fraction_of_gemm_peak"] = rate / g_gemm_gmacs;
    }
    state.counters["workspace_MB"] = static_cast<double>(dec.workspace_bytes()) / 1e6;
    state.counters["threads"] = ordo::eigen::threads();
    state.SetLabel(std::to_string(dec.image_height(tokens)) + " px");
}

}  // namespace

BENCHMARK(BM_sgemm_peak)->Arg(1024)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_vq16_decode)->Arg(16)->Arg(24)->Unit(benchmark::kSecond)->Iterations(2)->UseRealTime();

BENCHMARK_MAIN();
