// bench/bench_core.cpp - plan construction, step iteration and mask materialisation, per token.
//
// Targets (from the issue):
//   plan construction      <= 20 ns per position            (counter time_per_pos)
//   plan size              <= 64 bytes per position         (counter plan_bytes_per_pos)
//   packed masks           >= 1 G mask bits/s on one core   (counter bits_per_s)
//   iterating steps        zero heap allocations            (counter allocs_per_iter)
//
// Grids: 16x16, 24x24, 64x64 and 16x64x64 (video). Policies: raster, par:2x2, par:4x4, nar,
// par:2x2+nar, zipar:8 (a combination the grid cannot take is skipped). The teacher-forcing mask
// of 16x64x64 (65536^2 bits = 512 MiB) and its per-step decode masks (as many bits) are skipped.
//
// Run: ./build/bench/bench_core  (or with --benchmark_filter=BM_plan_build etc.)

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <ordo/ordo.hpp>

#include "alloc_counter.hpp"

namespace {

using bench::allocs;

// Time per position: a rate counter (positions/s) inverted, i.e. seconds per position; the console
// prints it with an SI prefix ("12.3ns"), JSON holds seconds.
benchmark::Counter time_per(double items_per_iter) {
    return benchmark::Counter(items_per_iter, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

const char* const kPolicies[] = {"raster", "par:2x2", "par:4x4", "nar", "par:2x2+nar", "zipar:8"};
const char* const kGrids[] = {"16x16", "24x24", "64x64", "16x64x64"};
const char* const kMaskGrids[] = {"16x16", "24x24", "64x64"};
const char* const kCompareGrids[] = {"24x24", "64x64"};

// Whether the policy takes the grid (regions divide it, ...).
bool takes(const char* policy, const char* grid) {
    try {
        (void)ordo::make_plan(ordo::parse_policy(policy), ordo::parse_grid(grid));
        return true;
    } catch (const ordo::error&) {
        return false;
    }
}

// ---------------------------------------------------------------------------------------------
// 1. plan construction
void BM_plan_build(benchmark::State& state, std::string spec, std::string grid) {
    const ordo::any_policy pol = ordo::parse_policy(spec);
    const ordo::grid_shape g = ordo::parse_grid(grid);
    const double n = g.size();
    std::size_t bytes = 0;
    const std::uint64_t a0 = allocs();
    for (auto _ : state) {
        ordo::plan p = ordo::make_plan(pol, g);
        bytes = p.bytes();
        benchmark::DoNotOptimize(p);
    }
    const std::uint64_t a1 = allocs();
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
    state.counters["time_per_pos"] = time_per(n);
    state.counters["plan_bytes_per_pos"] = static_cast<double>(bytes) / n;
    state.counters["allocs_per_iter"] = static_cast<double>(a1 - a0) / static_cast<double>(state.iterations());
    state.counters["steps"] = ordo::num_steps(pol, g);
}

// ---------------------------------------------------------------------------------------------
// 2. step iteration: touch every fed slot, emitted position and contribution of every step
void BM_step_iterate(benchmark::State& state, std::string spec, std::string grid) {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), ordo::parse_grid(grid));
    const double n = p.view().num_positions();
    const std::uint64_t a0 = allocs();
    for (auto _ : state) {
        std::uint64_t sum = 0;
        float wsum = 0.0f;
        for (ordo::index_t s = 0; s < p.num_steps(); ++s) {
            const ordo::step_view v = p.step(s);
            for (ordo::index_t slot : v.fed) sum += static_cast<std::uint64_t>(slot);
            for (ordo::index_t i = 0; i < v.num_emitted(); ++i) {
                sum += static_cast<std::uint64_t>(v.emitted[static_cast<std::size_t>(i)]);
                for (const ordo::contribution& c : v.from(i)) {
                    sum += c.row + c.head;
                    wsum += c.weight;
                }
            }
        }
        benchmark::DoNotOptimize(sum);
        benchmark::DoNotOptimize(wsum);
    }
    const std::uint64_t a1 = allocs();
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
    state.counters["time_per_pos"] = time_per(n);
    state.counters["allocs_per_iter"] = static_cast<double>(a1 - a0) / static_cast<double>(state.iterations());
}

// ---------------------------------------------------------------------------------------------
// 3. packed (FlashInfer) masks
//    train: the teacher-forcing rows against train_slots kv slots, one call per iteration;
//    decode: every step's fed rows against kv_cache_len, one call per step (an iteration = all steps).

// Counters of a packed-mask benchmark: mask bits per second, and heap allocations per iteration.
void mask_counters(benchmark::State& state, double bits, std::uint64_t allocations) {
    state.counters["bits_per_s"] = benchmark::Counter(bits, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["bits"] = bits;
    state.counters["allocs_per_iter"] = static_cast<double>(allocations) / static_cast<double>(state.iterations());
}

void BM_pack_mask_train(benchmark::State& state, std::string spec, std::string grid) {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), ordo::parse_grid(grid));
    const std::vector<ordo::index_t> rows = ordo::train_rows(p);
    const ordo::index_t kv = p.header().train_slots;
    std::vector<std::uint8_t> out(ordo::packed_mask_bytes(rows.size(), static_cast<std::size_t>(kv)));
    const double bits = static_cast<double>(rows.size()) * kv;
    const std::uint64_t a0 = allocs();
    for (auto _ : state) {
        ordo::pack_mask(p, rows, kv, out);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    mask_counters(state, bits, allocs() - a0);
}

void BM_pack_mask_decode(benchmark::State& state, std::string spec, std::string grid) {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), ordo::parse_grid(grid));
    const ordo::plan_view v = p.view();
    const ordo::index_t kv = ordo::kv_cache_len(v);
    std::vector<std::uint8_t> out(ordo::packed_mask_bytes(static_cast<std::size_t>(v.max_rows_per_step()), static_cast<std::size_t>(kv)));
    const double bits = static_cast<double>(v.num_fed_rows()) * kv;
    const std::uint64_t a0 = allocs();
    for (auto _ : state) {
        for (ordo::index_t s = 0; s < v.num_steps(); ++s) {
            const ordo::step_view st = v.step(s);
            const std::span<std::uint8_t> o(out.data(), ordo::packed_mask_bytes(st.fed.size(), static_cast<std::size_t>(kv)));
            ordo::pack_mask(v, st.fed, kv, o);
        }
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    mask_counters(state, bits, allocs() - a0);
}

// ---------------------------------------------------------------------------------------------
// 4. for comparison: dense byte mask and 64x64 block-sparse summary of the teacher-forcing mask
void BM_dense_mask(benchmark::State& state, std::string spec, std::string grid) {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), ordo::parse_grid(grid));
    const std::vector<ordo::index_t> rows = ordo::train_rows(p);
    const ordo::index_t kv = p.header().train_slots;
    std::vector<std::uint8_t> out(rows.size() * static_cast<std::size_t>(kv));
    const double bits = static_cast<double>(rows.size()) * kv;
    for (auto _ : state) {
        ordo::dense_mask(p, rows, kv, out);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.counters["bits_per_s"] = benchmark::Counter(bits, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["bytes"] = static_cast<double>(out.size());
}

void BM_block_mask(benchmark::State& state, std::string spec, std::string grid) {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), ordo::parse_grid(grid));
    const std::vector<ordo::index_t> rows = ordo::train_rows(p);
    const ordo::index_t kv = p.header().train_slots;
    const double bits = static_cast<double>(rows.size()) * kv;
    std::size_t full = 0, partial = 0;
    for (auto _ : state) {
        ordo::block_mask bm = ordo::make_block_mask(p, rows, kv, 64, 64);
        full = bm.full_blocks.size();
        partial = bm.partial_blocks.size();
        benchmark::DoNotOptimize(bm);
    }
    state.counters["bits_per_s"] = benchmark::Counter(bits, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["full_blocks"] = static_cast<double>(full);
    state.counters["partial_blocks"] = static_cast<double>(partial);
}

template <class F, std::size_t G>
void register_all(const char* name, F fn, const char* const (&grids)[G], double min_time) {
    for (const char* grid : grids)
        for (const char* spec : kPolicies) {
            if (!takes(spec, grid)) continue;
            benchmark::RegisterBenchmark((std::string(name) + "/" + spec + "/" + grid).c_str(), fn, std::string(spec), std::string(grid))
                ->Unit(benchmark::kMicrosecond)
                ->MinTime(min_time);
        }
}

}  // namespace

int main(int argc, char** argv) {
#if defined(__GLIBC__)
    // A warm heap: glibc returns freed blocks above its (adaptive) mmap/trim thresholds to the OS,
    // so a loop that builds and drops a multi-MiB plan (16x64x64) would time page faults of fresh
    // memory rather than the library. Set ORDO_BENCH_COLD_HEAP=1 to measure with the defaults.
    if (!std::getenv("ORDO_BENCH_COLD_HEAP")) {
        mallopt(M_MMAP_THRESHOLD, 1 << 30);
        mallopt(M_TRIM_THRESHOLD, 1 << 30);
    }
#endif
    register_all("BM_plan_build", BM_plan_build, kGrids, 0.3);
    register_all("BM_step_iterate", BM_step_iterate, kGrids, 0.2);
    register_all("BM_pack_mask_train", BM_pack_mask_train, kMaskGrids, 0.2);
    register_all("BM_pack_mask_decode", BM_pack_mask_decode, kMaskGrids, 0.2);
    register_all("BM_dense_mask", BM_dense_mask, kCompareGrids, 0.2);
    register_all("BM_block_mask", BM_block_mask, kCompareGrids, 0.2);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
