// bench/bench_engine.cpp - the engine's own work per step with a null model: building the step
// batch (slots, rotary coordinates, fed inputs), checking the logits, mixing heads, CFG and
// sampling; everything except the forward pass.
// Target: <= 2 us per step + 20 ns per fed row, no allocation per step.
#include <benchmark/benchmark.h>

#include <ordo/engine/generate.hpp>
#include <ordo/ordo.hpp>

#include "alloc_counter.hpp"

namespace {

// One whole decode per iteration: rewind(0) restarts the session without allocating. The null
// model's logits are a constant buffer; vocab is small so the sampler does not hide the engine.
void BM_engine_overhead(benchmark::State& state, const char* spec, const char* grid, int batch, bool cfg) {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), ordo::parse_grid(grid));
    std::vector<ordo::request> reqs;
    for (int i = 0; i < batch; ++i) reqs.push_back({i, static_cast<std::uint64_t>(i)});
    ordo::session_options so;
    so.guidance.scale = cfg ? 2.0f : 1.0f;
    const ordo::index_t vocab = 16;
    ordo::session s(p.view(), std::span<const ordo::request>(reqs), ordo::make_sampler(ordo::greedy{}), vocab, so);
    std::vector<float> logits(static_cast<std::size_t>(s.num_sequences()) * static_cast<std::size_t>(p.view().max_rows_per_step()) *
                                  static_cast<std::size_t>(p.header().num_heads) * vocab,
                              0.0f);
    for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(i % 7);
    std::uint64_t a0 = 0, a1 = 0;
    for (auto _ : state) {
        s.rewind(0);
        a0 = bench::allocs();
        while (!s.done()) {
            const ordo::step_batch& b = s.next();
            s.commit(std::span<const float>(logits.data(), b.logits_size()));
        }
        a1 = bench::allocs();
        benchmark::DoNotOptimize(s.tokens(0).data());
    }
    const double steps = p.num_steps(), rows = static_cast<double>(p.view().num_fed_rows()) * s.num_sequences();
    state.counters["steps"] = steps;
    state.counters["fed_rows_per_step"] = rows / steps;
    state.counters["time_per_step"] = benchmark::Counter(steps, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
    state.counters["time_per_fed_row"] = benchmark::Counter(rows, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
    state.counters["allocs_per_step"] = static_cast<double>(a1 - a0) / steps;
}

}  // namespace

int main(int argc, char** argv) {
    for (const char* spec : {"raster", "par:2x2", "par:4x4", "nar", "par:2x2+nar", "zipar:8"})
        for (int batch : {1, 8})
            for (bool cfg : {false, true})
                benchmark::RegisterBenchmark((std::string("BM_engine_overhead/") + spec + "/24x24/batch" + std::to_string(batch) + (cfg ? "/cfg" : "")).c_str(),
                                             BM_engine_overhead, spec, "24x24", batch, cfg)
                    ->Unit(benchmark::kMicrosecond)
                    ->MinTime(0.2);
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
}
