// ordo/cuda/mask.cuh - the mask forms of mask.hpp built on the device, equal to the host forms bit
// for bit: dense bytes, FlashInfer's packed bits (one request or a batch with mask_indptr), and the
// block-sparse summary (device_block_mask, with to_host() giving the host ordo::block_mask).
//
// Sizes, block sizes and shapes are checked on the host before any launch. Query slots live on the
// device, so they are checked there: every build runs a validation pass that records the first bad
// row in the workspace's status word, and the build ends by reading that word back (one
// cudaStreamSynchronize of `stream`) and throwing ordo::error naming the slot. A failed build may
// have written to its outputs; it never returns normally with them.
#pragma once

#include <cub/device/device_scan.cuh>
#include <thrust/execution_policy.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#include <thrust/system_error.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "../mask.hpp"
#include "plan.cuh"
#include "runtime.cuh"

namespace ordo::cuda {

namespace detail {

using ordo::detail::itos;

// Thrust reports launch failures as thrust::system_error; the backend speaks ordo::error.
template <class F>
void for_each_index(cudaStream_t stream, std::uint64_t n, F f, const char* what) {
    if (n == 0) return;
    try {
        // par_nosync: the build synchronises once, at its end, to read the status word
        thrust::for_each_n(thrust::cuda::par_nosync.on(stream), thrust::counting_iterator<std::uint64_t>(0), n, f);
    } catch (const thrust::system_error& e) {
        throw error(std::string("cuda: ") + what + ": " + e.what());
    }
}

// Status words (device): [0] the worst bad query row, ((row + 1) << 32) | slot; [1] the worst bad
// request of a batch, request + 1. Zero means none.
inline constexpr int status_words = 2;

struct find_bad_rows {
    const index_t* q_slots;
    index_t num_slots;
    unsigned long long* status;
    __device__ void operator()(std::uint64_t i) const {
        const index_t q = q_slots[i];
        // the largest word is the first bad row: (0xffffffff - row) above the slot
        if (q < 0 || q >= num_slots) atomicMax(status, ((0xffffffffull - i) << 32) | static_cast<std::uint32_t>(q));
    }
};

struct find_bad_requests {
    const index_t* q_rows;
    const index_t* kv_lens;
    unsigned long long* status;
    __device__ void operator()(std::uint64_t r) const {
        if (q_rows[r] < 0 || kv_lens[r] < 0) atomicMax(status + 1, ~0ull - r);  // the largest word is the first bad request
    }
};

template <mask_mode Mode>
__device__ bool visible_row(const mask_predicate<Mode>& m, index_t q, index_t kv) {
    return q >= 0 && q < m.num_slots && m(q, kv);  // a bad row (reported by the status word) reads nothing
}

// Bits [first_bit, first_bit + 8) of the flat q_rows x kv_len mask, little-endian in the byte.
// kv_len > 0 whenever a byte exists.
template <mask_mode Mode>
__device__ std::uint8_t pack8(const mask_predicate<Mode>& m, const index_t* q_slots, std::uint64_t q_rows, index_t kv_len, std::uint64_t first_bit) {
    const std::uint64_t total = q_rows * static_cast<std::uint64_t>(kv_len);
    std::uint64_t row = first_bit / static_cast<std::uint64_t>(kv_len);
    index_t kv = static_cast<index_t>(first_bit - row * static_cast<std::uint64_t>(kv_len));
    index_t q = row < q_rows ? q_slots[row] : -1;
    std::uint8_t byte = 0;
    for (int b = 0; b < 8 && first_bit + b < total; ++b) {
        if (visible_row(m, q, kv)) byte |= static_cast<std::uint8_t>(1u << b);
        if (++kv == kv_len) {  // the next row starts inside this byte (no row padding)
            kv = 0;
            ++row;
            q = row < q_rows ? q_slots[row] : -1;
        }
    }
    return byte;
}

template <mask_mode Mode>
struct dense_byte {
    mask_predicate<Mode> m;
    const index_t* q_slots;
    index_t kv_len;
    std::uint8_t* out;
    __device__ void operator()(std::uint64_t j) const {
        const std::uint64_t row = j / static_cast<std::uint64_t>(kv_len);
        const index_t kv = static_cast<index_t>(j - row * static_cast<std::uint64_t>(kv_len));
        out[j] = visible_row(m, q_slots[row], kv) ? 1 : 0;
    }
};

template <mask_mode Mode>
struct packed_byte {
    mask_predicate<Mode> m;
    const index_t* q_slots;
    std::uint64_t q_rows;
    index_t kv_len;
    std::uint8_t* out;
    __device__ void operator()(std::uint64_t j) const { out[j] = pack8(m, q_slots, q_rows, kv_len, 8 * j); }
};

// One byte of a batch: its request by binary search in mask_indptr, then that request's bits.
template <mask_mode Mode>
struct batch_packed_byte {
    mask_predicate<Mode> m;
    const index_t* q_slots;
    std::uint64_t total_rows;  // q_slots entries: a bad row count never reads past them
    const index_t* q_rows;
    const index_t* kv_lens;
    const index_t* row_offsets;
    const std::int64_t* indptr;
    index_t requests;
    std::uint8_t* out;
    __device__ void operator()(std::uint64_t j) const {
        const std::int64_t at = static_cast<std::int64_t>(j);
        if (at >= indptr[requests]) return;  // a size mismatch, reported after the launch
        index_t lo = 0, hi = requests - 1;   // the last request whose bytes start at or before j
        while (lo < hi) {
            const index_t mid = lo + (hi - lo + 1) / 2;
            if (indptr[mid] <= at) lo = mid;
            else hi = mid - 1;
        }
        const std::uint64_t first_row = static_cast<std::uint64_t>(row_offsets[lo]);
        if (first_row + static_cast<std::uint64_t>(q_rows[lo]) > total_rows) return;  // reported after the launch
        out[j] = pack8(m, q_slots + first_row, static_cast<std::uint64_t>(q_rows[lo]), kv_lens[lo], 8 * static_cast<std::uint64_t>(at - indptr[lo]));
    }
};

// Scan inputs: element r < count is f(r), element count is 0 (so the exclusive sum has count + 1
// entries, the last the total).
struct request_rows {
    const index_t* q_rows;
    index_t requests;
    __host__ __device__ index_t operator()(std::uint64_t r) const { return r < static_cast<std::uint64_t>(requests) && q_rows[r] > 0 ? q_rows[r] : 0; }
};
struct request_bytes {
    const index_t* q_rows;
    const index_t* kv_lens;
    index_t requests;
    __host__ __device__ std::int64_t operator()(std::uint64_t r) const {
        if (r >= static_cast<std::uint64_t>(requests) || q_rows[r] < 0 || kv_lens[r] < 0) return 0;
        return static_cast<std::int64_t>(packed_mask_bytes(static_cast<std::size_t>(q_rows[r]), static_cast<std::size_t>(kv_lens[r])));
    }
};

enum : std::uint8_t { tile_none = 0, tile_partial = 1, tile_full = 2 };

// Full tiles counted in the low 32 bits, partial ones in the high 32: one scan gives both CSRs.
struct tile_counts {
    const std::uint8_t* tile_class;
    std::uint64_t tiles;
    __host__ __device__ std::uint64_t operator()(std::uint64_t t) const {
        if (t >= tiles) return 0;
        return tile_class[t] == tile_full ? 1ull : tile_class[t] == tile_partial ? (1ull << 32) : 0ull;
    }
};

__device__ inline index_t warp_min(index_t v) {
    for (int d = warp_size / 2; d > 0; d /= 2) v = min(v, __shfl_xor_sync(0xffffffffu, v, d));
    return v;
}
__device__ inline index_t warp_max(index_t v) {
    for (int d = warp_size / 2; d > 0; d /= 2) v = max(v, __shfl_xor_sync(0xffffffffu, v, d));
    return v;
}

// One warp per (query block, kv block) tile, classified exactly as make_block_mask does: the
// min/max summaries decide most tiles; the rest (slot order involved) scan every pair, stopping
// as soon as the tile is known to be partial.
template <mask_mode Mode>
__global__ void classify_tiles(mask_predicate<Mode> m, const index_t* q_slots, index_t q_len, index_t kv_len, index_t block_q,
                               index_t block_kv, index_t nkv, std::uint64_t tiles, std::uint8_t* tile_class) {
    const std::uint64_t tile = (static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / warp_size;
    if (tile >= tiles) return;  // uniform across the warp: blockDim is a multiple of the warp size
    const int lane = static_cast<int>(threadIdx.x % warp_size);
    const index_t qb = static_cast<index_t>(tile / static_cast<std::uint64_t>(nkv)), kb = static_cast<index_t>(tile % static_cast<std::uint64_t>(nkv));
    // 64-bit ends: a block size near the index limit must not wrap
    const index_t qlo = qb * block_q, qhi = static_cast<index_t>(min(static_cast<long long>(q_len), static_cast<long long>(qlo) + block_q));
    const index_t lo = kb * block_kv, hi = static_cast<index_t>(min(static_cast<long long>(kv_len), static_cast<long long>(lo) + block_kv)) - 1;
    const index_t live = min(kv_len, m.num_slots);  // slots past the layout are never visible
    const index_t* fs = m.fed_step;

    index_t qmin_fs = max_index, qmax_fs = -1, qmin = max_index, qmax = -1;
    for (index_t i = qlo + lane; i < qhi; i += warp_size) {
        const index_t q = q_slots[i];
        if (q < 0 || q >= m.num_slots) continue;  // reported by the status word
        qmin_fs = min(qmin_fs, fs[q]);
        qmax_fs = max(qmax_fs, fs[q]);
        qmin = min(qmin, q);
        qmax = max(qmax, q);
    }
    index_t lo_fs = max_index, hi_fs = -1;
    const index_t live_hi = min(hi, live - 1);
    for (index_t kv = lo + lane; kv <= live_hi; kv += warp_size) {
        lo_fs = min(lo_fs, fs[kv]);
        hi_fs = max(hi_fs, fs[kv]);
    }
    qmin_fs = warp_min(qmin_fs);
    qmax_fs = warp_max(qmax_fs);
    qmin = warp_min(qmin);
    qmax = warp_max(qmax);
    lo_fs = warp_min(lo_fs);
    hi_fs = warp_max(hi_fs);

    const index_t live_count = live_hi >= lo ? live_hi - lo + 1 : 0, size = hi - lo + 1;
    std::uint8_t cls = tile_none;
    if (live_count > 0) {
        const bool slot_causal = Mode == mask_mode::slot_causal;
        const bool ordered = slot_causal || qmin < m.prefix;
        const bool all_ordered = slot_causal || qmax < m.prefix;
        // slot_causal: by slot order alone; step_causal: by steps (and slot order for prefix queries)
        bool full = live_count == size && (slot_causal || hi_fs <= qmin_fs) && (!ordered || hi <= qmin);
        bool none = (!slot_causal && lo_fs > qmax_fs) || (all_ordered && lo > qmax);
        if (!full && !none && ordered) {
            bool any = false, all = live_count == size;
            const std::uint64_t width = static_cast<std::uint64_t>(size), pairs = static_cast<std::uint64_t>(qhi - qlo) * width;
            for (std::uint64_t base = 0; base < pairs && (!any || all); base += warp_size) {
                const std::uint64_t p = base + static_cast<std::uint64_t>(lane);
                const bool active = p < pairs;
                bool v = false;
                // kv < kv_len inside the tile; the predicate hides slots past the layout
                if (active) v = visible_row(m, q_slots[qlo + static_cast<index_t>(p / width)], lo + static_cast<index_t>(p % width));
                any = any || __any_sync(0xffffffffu, active && v);
                all = all && __all_sync(0xffffffffu, !active || v);
            }
            full = all;
            none = !any;
        }
        cls = full ? tile_full : none ? tile_none : tile_partial;
    }
    if (lane == 0) tile_class[tile] = cls;
}

// Tile t writes its kv block into its CSR at the scanned position; the first tile of each query
// block (and the end, t == tiles) writes the offsets.
struct scatter_tiles {
    const std::uint8_t* tile_class;
    const std::uint64_t* positions;  // exclusive scan of tile_counts, tiles + 1 entries
    std::uint64_t tiles;
    index_t nkv;
    index_t* full_offsets;
    index_t* partial_offsets;
    index_t* full_blocks;
    index_t* partial_blocks;
    __device__ void operator()(std::uint64_t t) const {
        const std::uint64_t pos = positions[t];
        const index_t full_at = static_cast<index_t>(pos & 0xffffffffu), partial_at = static_cast<index_t>(pos >> 32);
        const index_t kb = static_cast<index_t>(t % static_cast<std::uint64_t>(nkv));
        if (t < tiles) {
            if (tile_class[t] == tile_full) full_blocks[full_at] = kb;
            else if (tile_class[t] == tile_partial) partial_blocks[partial_at] = kb;
        }
        if (kb == 0) {
            const std::uint64_t qb = t / static_cast<std::uint64_t>(nkv);
            full_offsets[qb] = full_at;
            partial_offsets[qb] = partial_at;
        }
    }
};

struct pinned_deleter {
    void operator()(void* p) const noexcept { cudaFreeHost(p); }
};

// What a build reads back at its end (pinned, so the copies are asynchronous).
struct host_status {
    unsigned long long words[status_words];
    std::int64_t batch_bytes;
    index_t batch_rows;
};

}  // namespace detail

class mask_workspace;
namespace detail {
class mask_build;
}

// The block-sparse summary on the device: CSR arrays over query blocks, as in ordo::block_mask.
// The block lists hold room for every tile (num_q_blocks * num_kv_blocks), so a rebuild of the
// same or a smaller shape reuses the buffers; only the offsets' last entries say how many are used.
class device_block_mask {
public:
    device_block_mask() = default;

    index_t block_q() const { return block_q_; }
    index_t block_kv() const { return block_kv_; }
    index_t q_len() const { return q_len_; }
    index_t kv_len() const { return kv_len_; }
    index_t num_q_blocks() const { return block_q_ ? ordo::num_kv_blocks(q_len_, block_q_) : 0; }
    index_t num_kv_blocks() const { return block_kv_ ? ordo::num_kv_blocks(kv_len_, block_kv_) : 0; }
    // Device memory: offsets have num_q_blocks() + 1 entries; the lists' used length is the last offset.
    std::span<const index_t> full_offsets() const { return {full_offsets_.data(), static_cast<std::size_t>(num_q_blocks()) + 1}; }
    std::span<const index_t> partial_offsets() const { return {partial_offsets_.data(), static_cast<std::size_t>(num_q_blocks()) + 1}; }
    const index_t* full_blocks() const { return full_blocks_.data(); }
    const index_t* partial_blocks() const { return partial_blocks_.data(); }

    // The host form, for comparison with ordo::make_block_mask (synchronises `stream`).
    block_mask to_host(cudaStream_t stream = nullptr) const {
        if (block_q_ < 1) throw error("device_block_mask: to_host of a mask that was never built");
        block_mask bm;
        bm.block_q = block_q_;
        bm.block_kv = block_kv_;
        bm.q_len = q_len_;
        bm.kv_len = kv_len_;
        const std::size_t offsets = static_cast<std::size_t>(num_q_blocks()) + 1;
        bm.full_offsets.resize(offsets);
        bm.partial_offsets.resize(offsets);
        full_offsets_.download(bm.full_offsets, stream);
        partial_offsets_.download(bm.partial_offsets, stream);
        bm.full_blocks.resize(static_cast<std::size_t>(bm.full_offsets.back()));
        bm.partial_blocks.resize(static_cast<std::size_t>(bm.partial_offsets.back()));
        full_blocks_.download(bm.full_blocks, stream);
        partial_blocks_.download(bm.partial_blocks, stream);
        return bm;
    }

private:
    friend void make_block_mask(const device_plan&, std::span<const index_t>, index_t, index_t, index_t, device_block_mask&, mask_workspace&,
                                cudaStream_t);
    // Grows (never shrinks) the buffers to the shape's worst case.
    void shape(index_t block_q, index_t block_kv, index_t q_len, index_t kv_len, std::size_t tiles) {
        block_q_ = block_q;
        block_kv_ = block_kv;
        q_len_ = q_len;
        kv_len_ = kv_len;
        const std::size_t offsets = static_cast<std::size_t>(num_q_blocks()) + 1;
        if (full_offsets_.size() < offsets) {
            full_offsets_ = device_buffer<index_t>(offsets);
            partial_offsets_ = device_buffer<index_t>(offsets);
        }
        if (full_blocks_.size() < tiles) {
            full_blocks_ = device_buffer<index_t>(tiles);
            partial_blocks_ = device_buffer<index_t>(tiles);
        }
    }

    index_t block_q_ = 0, block_kv_ = 0, q_len_ = 0, kv_len_ = 0;
    device_buffer<index_t> full_offsets_, partial_offsets_, full_blocks_, partial_blocks_;
};

// Scratch of the device mask builds: the status word, CUB's temporary storage, the tile classes
// and scan of a block mask, the row offsets of a batch. Builds grow it when a shape needs more
// than it holds (a cudaMalloc, then never again for that shape or smaller ones); reserve up front
// to keep every build free of allocation. One workspace serves one stream at a time.
class mask_workspace {
public:
    mask_workspace() : status_(detail::status_words) {
        void* h = nullptr;
        check(cudaMallocHost(&h, sizeof(detail::host_status)), "mask_workspace (cudaMallocHost)");
        host_.reset(static_cast<detail::host_status*>(h));
    }

    // Room for block masks of q_len x kv_len with blocks no smaller than block_q x block_kv.
    void reserve_block_mask(index_t q_len, index_t kv_len, index_t block_q, index_t block_kv) {
        if (q_len < 0 || kv_len < 0 || block_q < 1 || block_kv < 1) throw error("mask_workspace: reserve_block_mask needs sizes >= 0 and blocks >= 1");
        const std::uint64_t tiles = static_cast<std::uint64_t>(num_kv_blocks(q_len, block_q)) * static_cast<std::uint64_t>(num_kv_blocks(kv_len, block_kv));
        grow_tiles(tiles, "reserve_block_mask");
    }
    // Room for batches of up to `requests` requests.
    void reserve_batch(index_t requests) {
        if (requests < 0) throw error("mask_workspace: reserve_batch needs requests >= 0");
        grow_requests(static_cast<std::uint64_t>(requests), "reserve_batch");
    }
    // Device bytes held (what a reserve cost).
    std::size_t bytes() const { return status_.bytes() + temp_.bytes() + tile_class_.bytes() + tile_positions_.bytes() + row_offsets_.bytes(); }

private:
    friend void pack_mask_batch(const device_plan&, std::span<const index_t>, std::span<const index_t>, std::span<const index_t>,
                                std::span<std::uint8_t>, std::span<std::int64_t>, mask_workspace&, cudaStream_t);
    friend void make_block_mask(const device_plan&, std::span<const index_t>, index_t, index_t, index_t, device_block_mask&, mask_workspace&,
                                cudaStream_t);
    friend class detail::mask_build;

    using tile_input = thrust::transform_iterator<detail::tile_counts, thrust::counting_iterator<std::uint64_t>>;
    using rows_input = thrust::transform_iterator<detail::request_rows, thrust::counting_iterator<std::uint64_t>>;
    using bytes_input = thrust::transform_iterator<detail::request_bytes, thrust::counting_iterator<std::uint64_t>>;

    // CUB's storage for a scan of n items (a size query: no launch, no allocation).
    template <class In, class Out>
    static std::size_t scan_bytes(In in, Out out, std::uint64_t n, const char* what) {
        std::size_t bytes = 0;
        check(cub::DeviceScan::ExclusiveSum(nullptr, bytes, in, out, static_cast<std::int64_t>(n)), what);
        return bytes;
    }
    void grow_temp(std::size_t bytes) {
        if (temp_.size() < bytes) temp_ = device_buffer<std::byte>(bytes);
    }
    void grow_tiles(std::uint64_t tiles, const char* what) {
        grow_temp(scan_bytes(tile_input(thrust::counting_iterator<std::uint64_t>(0), detail::tile_counts{nullptr, tiles}),
                             static_cast<std::uint64_t*>(nullptr), tiles + 1, what));
        if (tile_class_.size() < tiles) tile_class_ = device_buffer<std::uint8_t>(tiles);
        if (tile_positions_.size() < tiles + 1) tile_positions_ = device_buffer<std::uint64_t>(tiles + 1);
    }
    void grow_requests(std::uint64_t requests, const char* what) {
        const thrust::counting_iterator<std::uint64_t> r0(0);
        grow_temp(scan_bytes(rows_input(r0, detail::request_rows{nullptr, 0}), static_cast<index_t*>(nullptr), requests + 1, what));
        grow_temp(scan_bytes(bytes_input(r0, detail::request_bytes{nullptr, nullptr, 0}), static_cast<std::int64_t*>(nullptr), requests + 1, what));
        if (row_offsets_.size() < requests + 1) row_offsets_ = device_buffer<index_t>(requests + 1);
    }

    device_buffer<unsigned long long> status_;
    std::unique_ptr<detail::host_status, detail::pinned_deleter> host_;
    device_buffer<std::byte> temp_;
    device_buffer<std::uint8_t> tile_class_;
    device_buffer<std::uint64_t> tile_positions_;
    device_buffer<index_t> row_offsets_;
};

namespace detail {
// One build's start (status cleared, query rows validated) and end (status read back, errors thrown).
class mask_build {
public:
    mask_build(const device_plan& p, std::span<const index_t> q_slots, mask_workspace& ws, cudaStream_t stream, const char* what)
        : ws_(ws), stream_(stream), what_(what), num_slots_(p.header().num_slots) {
        check(cudaMemsetAsync(ws.status_.data(), 0, ws.status_.bytes(), stream), what);
        detail::for_each_index(stream, q_slots.size(), detail::find_bad_rows{q_slots.data(), num_slots_, ws.status_.data()}, what);
    }
    // Also read back a batch's totals (the last entries of its scans).
    void read_totals(const index_t* rows_total, const std::int64_t* bytes_total) {
        check(cudaMemcpyAsync(&ws_.host_->batch_rows, rows_total, sizeof(index_t), cudaMemcpyDeviceToHost, stream_), what_);
        check(cudaMemcpyAsync(&ws_.host_->batch_bytes, bytes_total, sizeof(std::int64_t), cudaMemcpyDeviceToHost, stream_), what_);
    }
    // Waits for the build; throws if a query slot or request was bad.
    const detail::host_status& finish() {
        check(cudaMemcpyAsync(ws_.host_->words, ws_.status_.data(), ws_.status_.bytes(), cudaMemcpyDeviceToHost, stream_), what_);
        check(cudaStreamSynchronize(stream_), what_);
        const detail::host_status& s = *ws_.host_;
        if (s.words[0] != 0) {
            const long long row = static_cast<long long>(0xffffffffull - (s.words[0] >> 32));
            const index_t slot = static_cast<index_t>(static_cast<std::uint32_t>(s.words[0] & 0xffffffffu));
            throw error(std::string(what_) + ": query slot " + detail::itos(slot) + " (row " + detail::itos(row) + ") is outside the plan's " +
                        detail::itos(num_slots_) + " slots");
        }
        if (s.words[1] != 0)
            throw error(std::string(what_) + ": request " + detail::itos(static_cast<long long>(~0ull - s.words[1])) + " has a negative row count or kv length");
        return s;
    }

private:
    mask_workspace& ws_;
    cudaStream_t stream_;
    const char* what_;
    index_t num_slots_;
};

template <class F>
decltype(auto) visit_device_mask(const device_plan& p, F&& f) {
    if (p.header().mask == mask_mode::slot_causal) return f(p.predicate<mask_mode::slot_causal>());
    return f(p.predicate<mask_mode::step_causal>());
}
inline void check_kv_len(index_t kv_len, const char* what) {
    if (kv_len < 0) throw error(std::string(what) + ": negative kv length " + itos(kv_len));
}
inline std::uint64_t checked_cells(std::size_t rows, index_t kv_len, const char* what) {
    const unsigned __int128 cells = static_cast<unsigned __int128>(rows) * static_cast<unsigned __int128>(kv_len);
    if (cells > static_cast<unsigned __int128>(INT64_MAX)) throw error(std::string(what) + ": the mask's rows x kv length overflows 64 bits");
    return static_cast<std::uint64_t>(cells);
}
}  // namespace detail

// Dense bytes: out[i * kv_len + kv] = 1 if q_slots[i] sees kv, else 0. q_slots and out are device
// memory; out holds q_slots.size() * kv_len bytes. Synchronises `stream` (the status word).
inline void dense_mask(const device_plan& p, std::span<const index_t> q_slots, index_t kv_len, std::span<std::uint8_t> out, mask_workspace& ws,
                       cudaStream_t stream = nullptr) {
    const char* what = "cuda::dense_mask";
    detail::check_kv_len(kv_len, what);
    const std::uint64_t need = detail::checked_cells(q_slots.size(), kv_len, what);
    if (out.size() != need)
        throw error(std::string(what) + ": output holds " + detail::itos(static_cast<long long>(out.size())) + " bytes, needs " + detail::itos(static_cast<long long>(need)));
    detail::mask_build build(p, q_slots, ws, stream, what);
    detail::visit_device_mask(p, [&](auto m) {
        detail::for_each_index(stream, need, detail::dense_byte<decltype(m)::mode>{m, q_slots.data(), kv_len, out.data()}, what);
    });
    build.finish();
}

// FlashInfer packed bits of rows q_slots against kv slots [0, kv_len): packed_mask_bytes(rows,
// kv_len) bytes, one thread per byte. q_slots and out are device memory. Synchronises `stream`.
inline void pack_mask(const device_plan& p, std::span<const index_t> q_slots, index_t kv_len, std::span<std::uint8_t> out, mask_workspace& ws,
                      cudaStream_t stream = nullptr) {
    const char* what = "cuda::pack_mask";
    detail::check_kv_len(kv_len, what);
    detail::checked_cells(q_slots.size(), kv_len, what);
    const std::size_t need = packed_mask_bytes(q_slots.size(), static_cast<std::size_t>(kv_len));
    if (out.size() != need)
        throw error(std::string(what) + ": output holds " + detail::itos(static_cast<long long>(out.size())) + " bytes, needs " + detail::itos(static_cast<long long>(need)));
    detail::mask_build build(p, q_slots, ws, stream, what);
    detail::visit_device_mask(p, [&](auto m) {
        detail::for_each_index(stream, need, detail::packed_byte<decltype(m)::mode>{m, q_slots.data(), q_slots.size(), kv_len, out.data()}, what);
    });
    build.finish();
}

// A batch of requests over one plan (FlashInfer's batch prefill/decode mask): request r has
// q_rows[r] query rows, the next ones of q_slots, against kv slots [0, kv_lens[r]). mask_indptr
// (requests + 1 entries) receives the byte offset of each request's packed mask, computed on the
// device (cub::DeviceScan::ExclusiveSum); out receives the masks. Everything is device memory. The
// row and byte totals are known only on the device: the build checks sum(q_rows) ==
// q_slots.size() and mask_indptr[requests] == out.size() when it reads its status back
// (synchronises `stream`).
inline void pack_mask_batch(const device_plan& p, std::span<const index_t> q_slots, std::span<const index_t> q_rows,
                            std::span<const index_t> kv_lens, std::span<std::uint8_t> out, std::span<std::int64_t> mask_indptr, mask_workspace& ws,
                            cudaStream_t stream = nullptr) {
    const char* what = "cuda::pack_mask_batch";
    if (q_rows.size() != kv_lens.size()) throw error(std::string(what) + ": needs one kv length per request");
    if (mask_indptr.size() != q_rows.size() + 1) throw error(std::string(what) + ": mask_indptr needs requests + 1 entries");
    if (q_rows.size() >= static_cast<std::size_t>(max_index)) throw error(std::string(what) + ": the request count overflows the 32-bit index type");
    const index_t requests = static_cast<index_t>(q_rows.size());
    ws.grow_requests(static_cast<std::uint64_t>(requests), what);
    detail::mask_build build(p, q_slots, ws, stream, what);
    detail::for_each_index(stream, static_cast<std::uint64_t>(requests), detail::find_bad_requests{q_rows.data(), kv_lens.data(), ws.status_.data()}, what);
    const thrust::counting_iterator<std::uint64_t> r0(0);
    std::size_t bytes = ws.temp_.size();
    check(cub::DeviceScan::ExclusiveSum(ws.temp_.data(), bytes, mask_workspace::rows_input(r0, detail::request_rows{q_rows.data(), requests}),
                                        ws.row_offsets_.data(), static_cast<std::int64_t>(requests) + 1, stream),
          "cuda::pack_mask_batch (row offsets scan)");
    bytes = ws.temp_.size();
    check(cub::DeviceScan::ExclusiveSum(ws.temp_.data(), bytes,
                                        mask_workspace::bytes_input(r0, detail::request_bytes{q_rows.data(), kv_lens.data(), requests}),
                                        mask_indptr.data(), static_cast<std::int64_t>(requests) + 1, stream),
          "cuda::pack_mask_batch (mask_indptr scan)");
    if (requests > 0)
        detail::visit_device_mask(p, [&](auto m) {
            detail::for_each_index(stream, out.size(),
                                   detail::batch_packed_byte<decltype(m)::mode>{m, q_slots.data(), q_slots.size(), q_rows.data(), kv_lens.data(),
                                                                                ws.row_offsets_.data(), mask_indptr.data(), requests, out.data()},
                                   what);
        });
    build.read_totals(ws.row_offsets_.data() + requests, mask_indptr.data() + requests);
    const detail::host_status& s = build.finish();
    if (static_cast<std::size_t>(s.batch_rows) != q_slots.size())
        throw error(std::string(what) + ": the requests have " + detail::itos(s.batch_rows) + " query rows, q_slots holds " +
                    detail::itos(static_cast<long long>(q_slots.size())));
    if (static_cast<std::size_t>(s.batch_bytes) != out.size())
        throw error(std::string(what) + ": output holds " + detail::itos(static_cast<long long>(out.size())) + " bytes, the batch needs " +
                    detail::itos(s.batch_bytes));
}

// The block-sparse summary of rows q_slots (device memory) against kv slots [0, kv_len), into out
// (whose buffers grow to the shape's worst case and are reused). Equal to ordo::make_block_mask:
// out.to_host() == make_block_mask(host plan, same rows, ...). Synchronises `stream`.
inline void make_block_mask(const device_plan& p, std::span<const index_t> q_slots, index_t kv_len, index_t block_q, index_t block_kv,
                            device_block_mask& out, mask_workspace& ws, cudaStream_t stream = nullptr) {
    const char* what = "cuda::make_block_mask";
    detail::check_kv_len(kv_len, what);
    if (block_q < 1 || block_kv < 1) throw error(std::string(what) + ": block sizes must be >= 1, got " + detail::itos(block_q) + " x " + detail::itos(block_kv));
    if (q_slots.size() > static_cast<std::size_t>(max_index)) throw error(std::string(what) + ": the query row count overflows the 32-bit index type");
    const index_t q_len = static_cast<index_t>(q_slots.size());
    const index_t nq = num_kv_blocks(q_len, block_q), nkv = num_kv_blocks(kv_len, block_kv);  // (the same ceiling for query blocks)
    const std::uint64_t tiles = static_cast<std::uint64_t>(nq) * static_cast<std::uint64_t>(nkv);
    // block lists and CSR positions are index_t
    if (tiles >= static_cast<std::uint64_t>(max_index)) throw error(std::string(what) + ": " + detail::itos(static_cast<long long>(tiles)) + " tiles overflow the 32-bit index type");
    ws.grow_tiles(tiles, what);
    out.shape(block_q, block_kv, q_len, kv_len, static_cast<std::size_t>(tiles));
    detail::mask_build build(p, q_slots, ws, stream, what);
    if (nkv == 0) {  // no kv blocks: every query block's lists are empty
        check(cudaMemsetAsync(out.full_offsets_.data(), 0, sizeof(index_t) * (static_cast<std::size_t>(nq) + 1), stream), what);
        check(cudaMemsetAsync(out.partial_offsets_.data(), 0, sizeof(index_t) * (static_cast<std::size_t>(nq) + 1), stream), what);
        build.finish();
        return;
    }
    if (tiles > 0) {
        constexpr unsigned threads = 256;  // 8 warps, one tile each
        const std::uint64_t blocks = (tiles * warp_size + threads - 1) / threads;
        detail::visit_device_mask(p, [&](auto m) {
            detail::classify_tiles<decltype(m)::mode><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(m, q_slots.data(), q_len, kv_len, block_q, block_kv,
                                                                                                            nkv, tiles, ws.tile_class_.data());
        });
        check_launch("cuda::make_block_mask (classify_tiles)");
    }
    std::size_t bytes = ws.temp_.size();
    check(cub::DeviceScan::ExclusiveSum(ws.temp_.data(), bytes,
                                        mask_workspace::tile_input(thrust::counting_iterator<std::uint64_t>(0), detail::tile_counts{ws.tile_class_.data(), tiles}),
                                        ws.tile_positions_.data(), static_cast<std::int64_t>(tiles) + 1, stream),
          "cuda::make_block_mask (tile scan)");
    detail::for_each_index(stream, tiles + 1,
                           detail::scatter_tiles{ws.tile_class_.data(), ws.tile_positions_.data(), tiles, nkv, out.full_offsets_.data(),
                                                 out.partial_offsets_.data(), out.full_blocks_.data(), out.partial_blocks_.data()},
                           what);
    build.finish();
}

// The same, into a new device_block_mask (allocates it).
inline device_block_mask make_block_mask(const device_plan& p, std::span<const index_t> q_slots, index_t kv_len, index_t block_q, index_t block_kv,
                                         mask_workspace& ws, cudaStream_t stream = nullptr) {
    device_block_mask out;
    make_block_mask(p, q_slots, kv_len, block_q, block_kv, out, ws, stream);
    return out;
}

}  // namespace ordo::cuda
