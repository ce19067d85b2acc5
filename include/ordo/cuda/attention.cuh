// ordo/cuda/attention.cuh - the attention of one decode step on the device: 2D RoPE and the K/V
// write of the fed rows, then every fed row's queries against the kv slots the plan's mask lets it
// see, for contiguous and paged caches.
//
// The structured fast path: kv slots are taken in blocks of kv_block (one warp); each block is
// classified for the query from the plan's kv-block summary (mask.hpp classify_kv_block, O(1)):
// `none` blocks are skipped outright (no K or V read), `full` blocks skip the predicate, and only
// `partial` blocks evaluate the predicate per slot. For a step-causal plan every block before the
// query's step is full and every block after it none, so the work is that of the visible slots.
// Under slot_causal a visible slot the plan has not written by the step (mask.hpp written()) is
// read as K = V = 0: a score of 0, no K or V read.
#pragma once

#include <cuda_bf16.h>

#include <cmath>
#include <cstddef>
#include <mutex>
#include <span>

#include "../mask.hpp"
#include "kv_cache.cuh"
#include "plan.cuh"

namespace ordo::cuda {

// What one fed row is in a step, for every sequence alike.
struct row_info {
    index_t slot = 0;
    rope_coord rope{};
};

namespace detail {
ORDO_HD inline float to_float(float x) { return x; }
ORDO_HD inline float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
template <class T> ORDO_HD inline T from_float(float x);
template <> ORDO_HD inline float from_float<float>(float x) { return x; }
template <> ORDO_HD inline __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
}  // namespace detail

// The official 2D RoPE on one head of `x` (fp32): pairs (x[2j], x[2j+1]), the first head_dim/4
// rotated by row * freqs[j], the rest by col * freqs[j - head_dim/4]; a zero coordinate zeroes the
// head (the LlamaGen quirk for cls and PAR's M slots). Thread j of the caller handles pair j.
ORDO_HD inline void rope_pair(float* head, index_t j, index_t head_dim, const rope_coord& rc, const float* freqs) {
    if (rc.zero) {
        head[2 * j] = 0.0f;
        head[2 * j + 1] = 0.0f;
        return;
    }
    const index_t quarter = head_dim / 4;
    const float pos = static_cast<float>(j < quarter ? rc.at.h : rc.at.w);
    const float angle = pos * freqs[j < quarter ? j : j - quarter];
    const float c = cosf(angle), s = sinf(angle);
    const float a = head[2 * j], b = head[2 * j + 1];
    head[2 * j] = a * c - b * s;
    head[2 * j + 1] = b * c + a * s;
}

// qkv: [sequences * rows][(n_head + 2 kv_heads) * head_dim] fp32, row (s, r) at s * rows + r.
// Rotates q and k in place and writes k, v into the cache at (layer, s, rows[r].slot).
// One block per (sequence, row); threads over rotation pairs and cache elements.
template <class T>
__global__ void rope_and_store_kernel(float* qkv, const row_info* rows, index_t num_rows, index_t n_head, index_t kv_heads, index_t head_dim,
                                      const float* freqs, kv_layout<T> cache, index_t layer) {
    const index_t s = static_cast<index_t>(blockIdx.x) / num_rows, r = static_cast<index_t>(blockIdx.x) % num_rows;
    const index_t width = (n_head + 2 * kv_heads) * head_dim;
    float* x = qkv + static_cast<std::size_t>(blockIdx.x) * static_cast<std::size_t>(width);
    const row_info ri = rows[r];
    const index_t pairs = (n_head + kv_heads) * head_dim / 2;  // q and k heads
    for (index_t p = static_cast<index_t>(threadIdx.x); p < pairs; p += static_cast<index_t>(blockDim.x)) {
        const index_t h = p / (head_dim / 2), j = p % (head_dim / 2);
        rope_pair(x + static_cast<std::size_t>(h) * static_cast<std::size_t>(head_dim), j, head_dim, ri.rope, freqs);
    }
    __syncthreads();
    const index_t kvw = kv_heads * head_dim;
    T* kd = cache.row(layer, 0, s, ri.slot);
    T* vd = cache.row(layer, 1, s, ri.slot);
    const float* k = x + static_cast<std::size_t>(n_head) * static_cast<std::size_t>(head_dim);
    for (index_t i = static_cast<index_t>(threadIdx.x); i < kvw; i += static_cast<index_t>(blockDim.x)) {
        kd[i] = detail::from_float<T>(k[i]);
        vd[i] = detail::from_float<T>(k[kvw + i]);
    }
}

inline constexpr int attention_threads = 128;
inline constexpr int max_dims_per_lane = 4;  // head_dim <= 4 x 32 (LlamaGen: 64, 3B: 100)
// Any head_dim from 1 to this runs (no power of two or multiple of 32 assumed: lanes past
// head_dim idle); RoPE needs a multiple of 4, which gpt_config::validate checks.
inline constexpr index_t max_head_dim = max_dims_per_lane * warp_size;

// softmax(q k^T / sqrt(head_dim)) v for one (sequence, row) and one query head: block (s*rows + r, h).
// Shared memory: the query (head_dim floats), one score per kv slot (kv_end floats), each warp's
// share of the output (warps x head_dim floats), one class per kv block.
// out: [sequences * rows][n_head * head_dim] in Out (fp32, or bf16 for a bf16 GEMM).
template <mask_mode Mode, class T, class Out>
__global__ void decode_attention_kernel(const float* qkv, const row_info* rows, index_t num_rows, index_t n_head, index_t kv_heads, index_t head_dim,
                                        plan_ref plan, index_t kv_end, index_t written_through, kv_layout<T> cache, index_t layer, Out* out) {
    extern __shared__ float smem[];
    const index_t s = static_cast<index_t>(blockIdx.x) / num_rows, r = static_cast<index_t>(blockIdx.x) % num_rows;
    const index_t h = static_cast<index_t>(blockIdx.y), kvh = h / (n_head / kv_heads);
    const index_t tid = static_cast<index_t>(threadIdx.x), nthreads = static_cast<index_t>(blockDim.x);
    const index_t nblocks = num_kv_blocks(kv_end, kv_block);
    constexpr index_t max_warps = attention_threads / warp_size;
    float* q = smem;
    float* score = q + head_dim;
    float* part = score + kv_end;  // [warp][head_dim]: each warp's share of the output
    block_class* cls = reinterpret_cast<block_class*>(part + max_warps * head_dim);
    __shared__ float red[attention_threads / warp_size];
    __shared__ float bcast;

    const index_t width = (n_head + 2 * kv_heads) * head_dim;
    const float scale = 1.0f / sqrtf(static_cast<float>(head_dim));
    const float* qsrc = qkv + static_cast<std::size_t>(blockIdx.x) * static_cast<std::size_t>(width) + static_cast<std::size_t>(h) * static_cast<std::size_t>(head_dim);
    for (index_t i = tid; i < head_dim; i += nthreads) q[i] = qsrc[i];
    const index_t qslot = rows[r].slot;
    const mask_predicate<Mode> mask = plan.predicate<Mode>();
    for (index_t b = tid; b < nblocks; b += nthreads) cls[b] = classify_kv_block(mask, plan.kv_blocks[b], qslot, b, kv_block, kv_end);
    __syncthreads();

    // scores: warp w takes blocks w, w + warps, ...; lane l takes slot b * kv_block + l
    const index_t warp = tid / warp_size, lane = tid % warp_size, warps = nthreads / warp_size;
    const float neg_inf = -INFINITY;
    float local_max = neg_inf;
    for (index_t b = warp; b < nblocks; b += warps) {
        const index_t kv = b * kv_block + lane;
        const block_class c = cls[b];
        if (kv >= kv_end) continue;
        float sc = neg_inf;
        if (c == block_class::full || (c == block_class::partial && mask(qslot, kv))) {
            sc = 0.0f;  // a slot not written yet: K = 0
            if (Mode == mask_mode::step_causal || written(plan.fed_step, kv, written_through)) {
                const T* k = cache.row(layer, 0, s, kv) + static_cast<std::size_t>(kvh) * static_cast<std::size_t>(head_dim);
                float dot = 0.0f;
                for (index_t i = 0; i < head_dim; ++i) dot += q[i] * detail::to_float(k[i]);
                sc = dot * scale;
            }
        }
        score[kv] = sc;
        local_max = fmaxf(local_max, sc);
    }
    // block max
    for (int o = warp_size / 2; o > 0; o /= 2) local_max = fmaxf(local_max, __shfl_xor_sync(0xffffffffu, local_max, o));
    if (lane == 0) red[warp] = local_max;
    __syncthreads();
    if (tid == 0) {
        float m = red[0];
        for (index_t w = 1; w < warps; ++w) m = fmaxf(m, red[w]);
        bcast = m;
    }
    __syncthreads();
    const float m = bcast;
    // weights and their sum (a row always sees its own slot, so m is finite)
    float local_sum = 0.0f;
    for (index_t b = warp; b < nblocks; b += warps) {
        const index_t kv = b * kv_block + lane;
        if (cls[b] == block_class::none || kv >= kv_end) continue;
        const float p = score[kv] == neg_inf ? 0.0f : expf(score[kv] - m);
        score[kv] = p;
        local_sum += p;
    }
    for (int o = warp_size / 2; o > 0; o /= 2) local_sum += __shfl_xor_sync(0xffffffffu, local_sum, o);
    __syncthreads();  // every warp has read red[] and bcast
    if (lane == 0) red[warp] = local_sum;
    __syncthreads();
    if (tid == 0) {
        float t = 0.0f;
        for (index_t w = 0; w < warps; ++w) t += red[w];
        bcast = 1.0f / t;
    }
    __syncthreads();
    const float inv = bcast;
    // out = sum_kv p_kv v_kv: each warp takes its kv blocks, lanes over the head's elements (a V row
    // read coalesced), then the warps' shares are added in shared memory
    float acc[max_dims_per_lane] = {};
    for (index_t b = warp; b < nblocks; b += warps) {
        if (cls[b] == block_class::none) continue;
        const index_t end = min(kv_end, (b + 1) * kv_block);
        for (index_t kv = b * kv_block; kv < end; ++kv) {
            const float p = score[kv];
            if (p == 0.0f) continue;  // the same kv for the whole warp: no divergence
            if (Mode == mask_mode::slot_causal && !written(plan.fed_step, kv, written_through)) continue;  // V = 0
            const T* vrow = cache.row(layer, 1, s, kv) + static_cast<std::size_t>(kvh) * static_cast<std::size_t>(head_dim);
#pragma unroll
            for (int j = 0; j < max_dims_per_lane; ++j) {
                const index_t i = lane + j * warp_size;
                if (i < head_dim) acc[j] += p * detail::to_float(vrow[i]);
            }
        }
    }
#pragma unroll
    for (int j = 0; j < max_dims_per_lane; ++j) {
        const index_t i = lane + j * warp_size;
        if (i < head_dim) part[warp * head_dim + i] = acc[j];
    }
    __syncthreads();
    Out* o = out + static_cast<std::size_t>(blockIdx.x) * static_cast<std::size_t>(n_head) * static_cast<std::size_t>(head_dim) +
             static_cast<std::size_t>(h) * static_cast<std::size_t>(head_dim);
    for (index_t i = tid; i < head_dim; i += nthreads) {
        float t = 0.0f;
        for (index_t w = 0; w < warps; ++w) t += part[w * head_dim + i];
        o[i] = detail::from_float<Out>(t * inv);
    }
}

// Shared memory of decode_attention_kernel.
inline std::size_t attention_shared_bytes(index_t head_dim, index_t kv_end) {
    return static_cast<std::size_t>(head_dim + kv_end + (attention_threads / warp_size) * head_dim) * sizeof(float) +
           static_cast<std::size_t>(num_kv_blocks(kv_end, kv_block));
}

namespace detail {
// What one device allows decode_attention_kernel<Mode, T, Out>: the kernel's static shared memory
// and the most dynamic shared memory a launch may ask for.
struct attention_smem_limits {
    std::size_t static_bytes = 0;
    std::size_t max_dynamic = 0;
};
inline constexpr int max_devices = 64;

// Queried, and the kernel's dynamic shared memory limit raised to the most the device allows
// (cudaFuncSetAttribute acts on the calling thread's current device), once per device and kernel,
// by whichever thread launches there first; every other caller waits for that and then reads.
// Raised once to the device's maximum and never lowered, so no caller's launch can meet a limit
// another caller set for a smaller launch.
template <mask_mode Mode, class T, class Out>
const attention_smem_limits& attention_limits(int device) {
    static std::once_flag once[max_devices];
    static attention_smem_limits limits[max_devices];
    if (device < 0 || device >= max_devices)
        throw error("decode attention: device " + ordo::detail::itos(device) + " is outside the " + ordo::detail::itos(max_devices) + " devices supported");
    std::call_once(once[device], [device] {
        const auto kernel = decode_attention_kernel<Mode, T, Out>;
        cudaFuncAttributes a{};
        check(cudaFuncGetAttributes(&a, kernel), "decode attention: cudaFuncGetAttributes");
        int optin = 0;
        check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), "decode attention: shared memory limit");
        const std::size_t max_dynamic = static_cast<std::size_t>(optin) > a.sharedSizeBytes ? static_cast<std::size_t>(optin) - a.sharedSizeBytes : 0;
        check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(max_dynamic)), "decode attention: shared memory opt-in");
        limits[device] = {a.sharedSizeBytes, max_dynamic};
    });
    return limits[device];
}
}  // namespace detail

// The shared memory limits of decode_attention<T, Out> on the current device, for the plan's mask
// mode (the first call per device sets the kernel's limit). decode_attention calls it; a caller
// about to capture a CUDA graph calls it first, so the attribute calls happen outside the capture.
template <class T, class Out>
const detail::attention_smem_limits& decode_attention_limits(mask_mode mode) {
    int device = 0;
    check(cudaGetDevice(&device), "decode attention: cudaGetDevice");
    if (mode == mask_mode::slot_causal) return detail::attention_limits<mask_mode::slot_causal, T, Out>(device);
    return detail::attention_limits<mask_mode::step_causal, T, Out>(device);
}

// Launches the step's attention: rows[num_rows] (device) for every one of `sequences`.
// written_through: the step_batch's (slots the plan first writes later read as zeros).
template <class T, class Out>
void decode_attention(const float* qkv, const row_info* rows, index_t sequences, index_t num_rows, index_t n_head, index_t kv_heads,
                      index_t head_dim, const device_plan& plan, index_t kv_end, index_t written_through, const kv_layout<T>& cache, index_t layer,
                      Out* out, cudaStream_t stream) {
    if (head_dim < 1 || head_dim > max_head_dim)
        throw error("decode attention: head_dim " + ordo::detail::itos(head_dim) + " outside 1.." + ordo::detail::itos(max_head_dim));
    if (n_head < 1 || kv_heads < 1 || n_head % kv_heads)
        throw error("decode attention: " + ordo::detail::itos(n_head) + " query heads do not group over " + ordo::detail::itos(kv_heads) + " kv heads");
    if (kv_end < 1 || kv_end > plan.header().num_slots) throw error("decode attention: kv_end " + ordo::detail::itos(kv_end) + " outside 1.." + ordo::detail::itos(plan.header().num_slots));
    const std::size_t shared = attention_shared_bytes(head_dim, kv_end);
    const dim3 grid(static_cast<unsigned>(sequences * num_rows), static_cast<unsigned>(n_head));
    // the kernel's own (static) shared memory counts against the same per-block limit
    const detail::attention_smem_limits& limits = decode_attention_limits<T, Out>(plan.header().mask);
    if (shared > limits.max_dynamic)
        throw error("decode attention: " + ordo::detail::itos(kv_end) + " kv slots need " + ordo::detail::itos(static_cast<long long>(shared + limits.static_bytes)) +
                    " bytes of shared memory, the device has " + ordo::detail::itos(static_cast<long long>(limits.max_dynamic + limits.static_bytes)) +
                    " per block");
    auto launch = [&]<mask_mode Mode>() {
        decode_attention_kernel<Mode, T, Out><<<grid, attention_threads, shared, stream>>>(qkv, rows, num_rows, n_head, kv_heads, head_dim, plan.ref(), kv_end, written_through, cache, layer, out);
        check_launch("decode_attention_kernel");
    };
    if (plan.header().mask == mask_mode::slot_causal) launch.template operator()<mask_mode::slot_causal>();
    else launch.template operator()<mask_mode::step_causal>();
}

template <class T>
void rope_and_store(float* qkv, const row_info* rows, index_t sequences, index_t num_rows, index_t n_head, index_t kv_heads, index_t head_dim,
                    const float* freqs, const kv_layout<T>& cache, index_t layer, cudaStream_t stream) {
    rope_and_store_kernel<T><<<static_cast<unsigned>(sequences * num_rows), 128, 0, stream>>>(qkv, rows, num_rows, n_head, kv_heads, head_dim, freqs, cache, layer);
    check_launch("rope_and_store_kernel");
}

}  // namespace ordo::cuda
