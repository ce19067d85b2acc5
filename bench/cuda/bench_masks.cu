// Device mask builds (packed bits, block summary) for every row of a plan, timed with CUDA events,
// next to the host builds of the same mask in the same run: counters host_us, device_us and
// host/device (the speed-up of the device build; > 1 means the device is faster).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include <ordo/cuda/mask.cuh>
#include <ordo/cuda/plan.cuh>
#include <ordo/ordo.hpp>

namespace {

using ordo::index_t;

// A plan, its device copy and every slot as query rows, against the cache's length.
struct mask_case {
    ordo::plan host;
    ordo::cuda::device_plan device;
    std::vector<index_t> rows;
    ordo::cuda::device_buffer<index_t> d_rows;
    index_t kv_len;
    explicit mask_case(const std::string& spec, const std::string& grid)
        : host(ordo::make_plan(ordo::parse_policy(spec), ordo::parse_grid(grid))), device(host), rows(static_cast<std::size_t>(host.num_slots())) {
        std::iota(rows.begin(), rows.end(), 0);
        d_rows = ordo::cuda::device_buffer<index_t>(std::span<const index_t>(rows));
        kv_len = ordo::kv_cache_len(host);
    }
};

class event_timer {
public:
    event_timer() {
        ordo::cuda::check(cudaEventCreate(&start_), "cudaEventCreate");
        ordo::cuda::check(cudaEventCreate(&stop_), "cudaEventCreate");
    }
    ~event_timer() {
        cudaEventDestroy(start_);
        cudaEventDestroy(stop_);
    }
    event_timer(const event_timer&) = delete;
    event_timer& operator=(const event_timer&) = delete;
    template <class F>
    double seconds(F&& f) {  // the builds synchronise their stream, so the stop event is already due
        ordo::cuda::check(cudaEventRecord(start_), "cudaEventRecord");
        f();
        ordo::cuda::check(cudaEventRecord(stop_), "cudaEventRecord");
        ordo::cuda::check(cudaEventSynchronize(stop_), "cudaEventSynchronize");
        float ms = 0;
        ordo::cuda::check(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime");
        return ms * 1e-3;
    }

private:
    cudaEvent_t start_{}, stop_{};
};

// Device time per iteration (manual), host time of the same build measured alongside.
template <class Device, class Host>
void time_both(benchmark::State& state, Device&& device, Host&& host) {
    event_timer timer;
    device();  // warm-up: first launches, workspace growth
    host();
    double device_s = 0, host_s = 0;
    for (auto _ : state) {
        const double d = timer.seconds(device);
        state.SetIterationTime(d);
        device_s += d;
        const auto t0 = std::chrono::steady_clock::now();
        host();
        host_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    const double n = static_cast<double>(state.iterations());
    state.counters["device_us"] = device_s / n * 1e6;
    state.counters["host_us"] = host_s / n * 1e6;
    state.counters["host/device"] = device_s > 0 ? host_s / device_s : 0;
}

void packed_mask(benchmark::State& state, const std::string& spec, const std::string& grid) {
    const mask_case c(spec, grid);
    ordo::cuda::mask_workspace ws;
    const std::size_t bytes = ordo::packed_mask_bytes(c.rows.size(), static_cast<std::size_t>(c.kv_len));
    ordo::cuda::device_buffer<std::uint8_t> d_out(bytes);
    std::vector<std::uint8_t> out(bytes);
    time_both(
        state, [&] { ordo::cuda::pack_mask(c.device, c.d_rows.span(), c.kv_len, d_out.span(), ws); },
        [&] {
            ordo::pack_mask(c.host, c.rows, c.kv_len, out);
            benchmark::DoNotOptimize(out.data());
        });
    state.counters["rows"] = static_cast<double>(c.rows.size());
    state.counters["kv_len"] = c.kv_len;
}

void block_mask(benchmark::State& state, const std::string& spec, const std::string& grid, index_t block_q, index_t block_kv) {
    const mask_case c(spec, grid);
    ordo::cuda::mask_workspace ws;
    ws.reserve_block_mask(static_cast<index_t>(c.rows.size()), c.kv_len, block_q, block_kv);
    ordo::cuda::device_block_mask d_out;
    time_both(
        state, [&] { ordo::cuda::make_block_mask(c.device, c.d_rows.span(), c.kv_len, block_q, block_kv, d_out, ws); },
        [&] {
            ordo::block_mask bm = ordo::make_block_mask(c.host, c.rows, c.kv_len, block_q, block_kv);
            benchmark::DoNotOptimize(bm.full_blocks.data());
        });
    state.counters["tiles"] = static_cast<double>(d_out.num_q_blocks()) * d_out.num_kv_blocks();
}

const bool registered = [] {
    for (const char* grid : {"16x16", "24x24"})
        for (const char* spec : {"raster", "par:2x2", "par:4x4", "nar"}) {
            const std::string name = std::string(spec) + "/" + grid;
            benchmark::RegisterBenchmark(("masks/packed/" + name).c_str(), packed_mask, std::string(spec), std::string(grid))
                ->UseManualTime()
                ->Unit(benchmark::kMicrosecond);
            for (auto [bq, bkv] : {std::pair<index_t, index_t>{16, 32}, {128, 64}})
                benchmark::RegisterBenchmark(("masks/block/" + name + "/" + std::to_string(bq) + "x" + std::to_string(bkv)).c_str(), block_mask,
                                             std::string(spec), std::string(grid), bq, bkv)
                    ->UseManualTime()
                    ->Unit(benchmark::kMicrosecond);
        }
    return true;
}();

}  // namespace
