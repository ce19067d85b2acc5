// ordo/eigen/skinny.hpp - the product a decode step is made of: a few activation rows times a big
// weight matrix. Y[r][o] = sum_i W[o][i] * X[r][i], W row-major [out x in] (the PyTorch layout),
// W in fp32 or bf16 (converted to fp32 in registers; fp32 accumulation).
//
// Why not Eigen's `X * W.transpose()`: at 2..16 rows Eigen's matrix x matrix path re-reads W per
// panel and falls to a fraction of memory bandwidth (design.md §6), so every order that feeds
// several rows per step would look slower than it is. Here each weight row is read from memory
// once and applied to all rows while it sits in L1; a 4 (weights) x 4 (rows) register block (x 2
// without AVX-512) keeps the FMA units busy until the step turns compute-bound. The SIMD is
// Eigen's packet layer, so the kernel follows whatever instruction set the build targets.
//
// Threads (threads.hpp): the weight rows are split between threads in whole blocks of 4, the last
// out % 4 rows going to the last part. Each output element is computed by exactly one thread with
// the same instructions in the same order as on one thread (its summation order depends on the
// element's block, never on the partition), so Y is bit-identical for any thread count.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <Eigen/Core>

#include "../config.hpp"
#include "threads.hpp"

namespace ordo::eigen {

// A bfloat16 weight: the top 16 bits of an fp32 (8 exponent bits, 7 mantissa bits). Half the bytes
// of fp32 per weight, so half the bytes a memory-bound step streams.
struct bf16 {
    std::uint16_t bits = 0;
};

// fp32 -> bf16, rounding to nearest even; a NaN stays a (quiet) NaN.
inline bf16 to_bf16(float f) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return {static_cast<std::uint16_t>((u >> 16) | 0x40u)};
    return {static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16)};
}
// bf16 -> fp32 is exact: a 16-bit shift.
inline float to_float(bf16 b) { return std::bit_cast<float>(static_cast<std::uint32_t>(b.bits) << 16); }
inline float to_float(float f) { return f; }

namespace detail {
// Eigen's SIMD packets (AVX2/AVX-512/SSE/NEON, whatever the build targets)
using packet = Eigen::internal::packet_traits<float>::type;
inline constexpr int lanes = Eigen::internal::packet_traits<float>::size;

inline packet load(const float* p) { return Eigen::internal::ploadu<packet>(p); }
// `lanes` bf16 weights widened to fp32: zero-extend each 16-bit value to 32 bits and shift it up.
inline packet load(const bf16* p) {
#if defined(EIGEN_VECTORIZE_AVX512)
    static_assert(lanes == 16);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
#elif defined(EIGEN_VECTORIZE_AVX2)
    static_assert(lanes == 8);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
#elif defined(EIGEN_VECTORIZE_SSE2) && !defined(EIGEN_VECTORIZE_AVX)
    static_assert(lanes == 4);
    // interleaving zeros below each value puts it in the top half of a 32-bit lane
    return _mm_castsi128_ps(_mm_unpacklo_epi16(_mm_setzero_si128(), _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
#elif defined(EIGEN_VECTORIZE_NEON) && defined(__aarch64__)
    static_assert(lanes == 4);
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(reinterpret_cast<const std::uint16_t*>(p)), 16));
#else
    alignas(64) float f[lanes];
    for (int k = 0; k < lanes; ++k) f[k] = to_float(p[k]);
    return Eigen::internal::pload<packet>(f);
#endif
}
inline packet fma(const packet& a, const packet& b, const packet& c) { return Eigen::internal::pmadd(a, b, c); }
inline float sum(const packet& p) { return Eigen::internal::predux(p); }

// Compilers like to fold each use of a weight packet into its FMA as a memory operand, which loads
// it once per row; an empty asm that "changes" the register forces one load for all rows.
template <class P>
inline void pin([[maybe_unused]] P& p) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    asm("" : "+v"(p));
#endif
}


// Y[r0..r0+R)[o0..o0+4): 4 weight rows x R activation rows, 4R independent FMA chains. Each weight
// packet is loaded once for all R rows. R = 4 where the ISA has 32 vector registers (AVX-512),
// else 2 (16 registers: 8 accumulators + 4 weights + 2 inputs).
inline constexpr int block_rows = lanes >= 16 ? 4 : 2;

template <int R, class W>
inline void block(const W* w, std::size_t in, const float* const* x, float* const* y, bool prefetch_next) {
    const W* wr[4] = {w, w + in, w + 2 * in, w + 3 * in};
    packet acc[R][4];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) acc[r][j] = Eigen::internal::pset1<packet>(0.0f);
    std::size_t i = 0;
    for (; i + lanes <= in; i += lanes) {
        // the next block's four rows, one line each per iteration, so they arrive while this
        // block computes (the hardware prefetcher would only start on them after a miss)
        if (prefetch_next)
            for (int j = 0; j < 4; ++j) __builtin_prefetch(wr[j] + 4 * in + i);
        packet b[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
            b[j] = load(wr[j] + i);
            pin(b[j]);
        }
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
            packet u = load(x[r] + i);
            pin(u);
#pragma GCC unroll 4
            for (int j = 0; j < 4; ++j) acc[r][j] = fma(b[j], u, acc[r][j]);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
            float t = sum(acc[r][j]);
            for (std::size_t k = i; k < in; ++k) t += to_float(wr[j][k]) * x[r][k];
            y[r][j] = t;
        }
}

template <class W>
inline float dot(const W* a, const float* b, std::size_t n) {
    packet acc0 = Eigen::internal::pset1<packet>(0.0f), acc1 = acc0;
    std::size_t i = 0;
    for (; i + 2 * lanes <= n; i += 2 * lanes) {
        acc0 = fma(load(a + i), load(b + i), acc0);
        acc1 = fma(load(a + i + lanes), load(b + i + lanes), acc1);
    }
    for (; i + lanes <= n; i += lanes) acc0 = fma(load(a + i), load(b + i), acc0);
    float s = sum(Eigen::internal::padd(acc0, acc1));
    for (; i < n; ++i) s += to_float(a[i]) * b[i];
    return s;
}

// Y[., o0..o1) of Y = X * W^T: weight rows o0..o1 (o0 a multiple of 4; o1 too unless it is `out`,
// so only the matrix's last out % 4 rows take the dot() path). Weight rows are visited in order,
// in blocks of 4, each block once for a tile of up to 32 rows (a tile of activations stays in L2;
// a decode step is one tile, so W is streamed once).
template <class W>
void skinny_rows(const W* w, index_t o0, index_t o1, index_t in, const float* x, index_t rows, std::size_t x_stride, float* y, std::size_t y_stride) {
    constexpr index_t tile = 32;
    const std::size_t n = static_cast<std::size_t>(in);
    for (index_t r0 = 0; r0 < rows; r0 += tile) {
        const index_t r1 = rows - r0 < tile ? rows : r0 + tile;
        auto xr = [&](index_t r) { return x + static_cast<std::size_t>(r) * x_stride; };
        auto yr = [&](index_t r, index_t o) { return y + static_cast<std::size_t>(r) * y_stride + static_cast<std::size_t>(o); };
        index_t o = o0;
        for (; o + 4 <= o1; o += 4) {
            const W* wb = w + static_cast<std::size_t>(o) * n;
            index_t r = r0;
            constexpr int R = block_rows;
            for (; r + R <= r1; r += R) {
                const float* xs[R];
                float* ys[R];
                for (int k = 0; k < R; ++k) { xs[k] = xr(r + k); ys[k] = yr(r + k, o); }
                block<R>(wb, n, xs, ys, r == r0 && o + 8 <= o1);
            }
            if constexpr (R > 2)
                if (r + 2 <= r1) {
                    const float* xs[2] = {xr(r), xr(r + 1)};
                    float* ys[2] = {yr(r, o), yr(r + 1, o)};
                    block<2>(wb, n, xs, ys, r == r0 && o + 8 <= o1);
                    r += 2;
                }
            for (; r < r1; ++r) {
                const float* xs[1] = {xr(r)};
                float* ys[1] = {yr(r, o)};
                block<1>(wb, n, xs, ys, r == r0 && o + 8 <= o1);
            }
        }
        for (; o < o1; ++o)  // the last out % 4 weight rows
            for (index_t r = r0; r < r1; ++r) *yr(r, o) = dot(w + static_cast<std::size_t>(o) * n, xr(r), n);
    }
}
}  // namespace detail

// Y = X * W^T for `rows` rows, W [out x in] in fp32 or bf16. X rows are `x_stride` floats apart,
// Y rows `y_stride` apart. On threads() threads, split by weight rows (whole blocks of 4).
template <class W>
void skinny_gemm(const W* w, index_t out, index_t in, const float* x, index_t rows, std::size_t x_stride, float* y, std::size_t y_stride) {
    const index_t blocks = out / 4;
    if (blocks == 0) {
        detail::skinny_rows(w, 0, out, in, x, rows, x_stride, y, y_stride);
        return;
    }
    parallel_ranges(blocks, static_cast<double>(out) * static_cast<double>(in) * static_cast<double>(rows), [&](index_t b0, index_t b1, int) {
        detail::skinny_rows(w, 4 * b0, b1 == blocks ? out : 4 * b1, in, x, rows, x_stride, y, y_stride);
    });
}

}  // namespace ordo::eigen
