// The device sampler on a whole decode step: 512 rows x vocab 16384, LlamaGen's chains. Timed with
// CUDA events around sample_rows (the launch, the kernel and the status check it synchronises on);
// the logits are restored from a pristine copy between iterations, outside the timed region.
// Target on an H100: a whole step under 100 us.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include <ordo/cuda/sampler.cuh>

namespace {

constexpr int kRows = 512;
constexpr int kVocab = 16384;

template <class Chain>
void run_step(benchmark::State& state, const Chain& chain) {
    std::mt19937 g(5);
    std::normal_distribution<float> nd(0.0f, 2.0f);
    std::vector<float> host(static_cast<std::size_t>(kRows) * kVocab);
    for (auto& x : host) x = nd(g);
    std::vector<ordo::draw_key> keys(kRows);
    for (int r = 0; r < kRows; ++r) keys[static_cast<std::size_t>(r)] = {1, static_cast<std::uint64_t>(r), r};
    const ordo::cuda::device_buffer<float> pristine{std::span<const float>(host)};
    ordo::cuda::device_buffer<float> logits(host.size());
    const ordo::cuda::device_buffer<ordo::draw_key> dkeys{std::span<const ordo::draw_key>(keys)};
    ordo::cuda::device_buffer<ordo::index_t> tokens(kRows);
    ordo::cuda::sampler_workspace ws(kRows, kVocab);
    cudaStream_t stream = nullptr;
    cudaEvent_t start, stop;
    ordo::cuda::check(cudaEventCreate(&start), "cudaEventCreate");
    ordo::cuda::check(cudaEventCreate(&stop), "cudaEventCreate");
    double total_ms = 0.0;
    for (auto _ : state) {
        ordo::cuda::check(cudaMemcpyAsync(logits.data(), pristine.data(), pristine.bytes(), cudaMemcpyDeviceToDevice, stream), "restore the logits");
        ordo::cuda::check(cudaEventRecord(start, stream), "cudaEventRecord");
        ordo::cuda::sample_rows(chain, logits.span(), std::span<const ordo::draw_key>(dkeys.span()), tokens.span(), ws, stream);
        ordo::cuda::check(cudaEventRecord(stop, stream), "cudaEventRecord");
        ordo::cuda::check(cudaEventSynchronize(stop), "cudaEventSynchronize");
        float ms = 0.0f;
        ordo::cuda::check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
        state.SetIterationTime(static_cast<double>(ms) * 1e-3);
        total_ms += ms;
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    state.counters["us_per_step"] = benchmark::Counter(total_ms * 1e3 / static_cast<double>(state.iterations()));
    state.counters["rows"] = kRows;
    state.counters["vocab"] = kVocab;
}

void BM_sampler_greedy(benchmark::State& state) { run_step(state, ordo::make_sampler(ordo::greedy{})); }
void BM_sampler_llamagen(benchmark::State& state) {
    run_step(state, ordo::make_sampler(ordo::temperature{1.0f}, ordo::top_k{2000}, ordo::multinomial{}));
}
void BM_sampler_llamagen_top_p(benchmark::State& state) {
    run_step(state, ordo::make_sampler(ordo::temperature{1.0f}, ordo::top_k{2000}, ordo::top_p{0.9f}, ordo::multinomial{}));
}

}  // namespace

BENCHMARK(BM_sampler_greedy)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_sampler_llamagen)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_sampler_llamagen_top_p)->UseManualTime()->Unit(benchmark::kMicrosecond);
