// ordo/eigen/skinny.hpp - the product a decode step is made of: a few activation rows times a big
// weight matrix. Y[r][o] = sum_i W[o][i] * X[r][i], W row-major [out x in] (the PyTorch layout).
//
// Why not Eigen's `X * W.transpose()`: at 2..16 rows Eigen's matrix x matrix path re-reads W per
// panel and falls to a fraction of memory bandwidth (design.md §6), so every order that feeds
// several rows per step would look slower than it is. Here each weight row is read from memory
// once and applied to all rows while it sits in L1; a 4 (weights) x 4 (rows) register block (x 2
// without AVX-512) keeps the FMA units busy until the step turns compute-bound. The SIMD is
// Eigen's packet layer, so the kernel follows whatever instruction set the build targets.
#pragma once

#include <cstddef>

#include <Eigen/Core>

#include "../config.hpp"

namespace ordo::eigen {

namespace detail {
// Eigen's SIMD packets (AVX2/AVX-512/SSE/NEON, whatever the build targets)
using packet = Eigen::internal::packet_traits<float>::type;
inline constexpr int lanes = Eigen::internal::packet_traits<float>::size;

inline packet load(const float* p) { return Eigen::internal::ploadu<packet>(p); }
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

template <int R>
inline void block(const float* w, std::size_t in, const float* const* x, float* const* y, bool prefetch_next) {
    const float* wr[4] = {w, w + in, w + 2 * in, w + 3 * in};
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
            for (std::size_t k = i; k < in; ++k) t += wr[j][k] * x[r][k];
            y[r][j] = t;
        }
}

inline float dot(const float* a, const float* b, std::size_t n) {
    packet acc0 = Eigen::internal::pset1<packet>(0.0f), acc1 = acc0;
    std::size_t i = 0;
    for (; i + 2 * lanes <= n; i += 2 * lanes) {
        acc0 = fma(load(a + i), load(b + i), acc0);
        acc1 = fma(load(a + i + lanes), load(b + i + lanes), acc1);
    }
    for (; i + lanes <= n; i += lanes) acc0 = fma(load(a + i), load(b + i), acc0);
    float s = sum(Eigen::internal::padd(acc0, acc1));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}
}  // namespace detail

// Y = X * W^T for `rows` rows. X rows are `x_stride` floats apart, Y rows `y_stride` apart.
// Weight rows are visited in order, in blocks of 4, each block once for a tile of up to 32 rows
// (a tile of activations stays in L2; a decode step is one tile, so W is streamed once).
inline void skinny_gemm(const float* w, index_t out, index_t in, const float* x, index_t rows, std::size_t x_stride, float* y,
                        std::size_t y_stride) {
    constexpr index_t tile = 32;
    const std::size_t n = static_cast<std::size_t>(in);
    for (index_t r0 = 0; r0 < rows; r0 += tile) {
        const index_t r1 = rows - r0 < tile ? rows : r0 + tile;
        auto xr = [&](index_t r) { return x + static_cast<std::size_t>(r) * x_stride; };
        auto yr = [&](index_t r, index_t o) { return y + static_cast<std::size_t>(r) * y_stride + static_cast<std::size_t>(o); };
        index_t o = 0;
        for (; o + 4 <= out; o += 4) {
            const float* wb = w + static_cast<std::size_t>(o) * n;
            index_t r = r0;
            constexpr int R = detail::block_rows;
            for (; r + R <= r1; r += R) {
                const float* xs[R];
                float* ys[R];
                for (int k = 0; k < R; ++k) { xs[k] = xr(r + k); ys[k] = yr(r + k, o); }
                detail::block<R>(wb, n, xs, ys, r == r0);
            }
            if constexpr (R > 2)
                if (r + 2 <= r1) {
                    const float* xs[2] = {xr(r), xr(r + 1)};
                    float* ys[2] = {yr(r, o), yr(r + 1, o)};
                    detail::block<2>(wb, n, xs, ys, r == r0);
                    r += 2;
                }
            for (; r < r1; ++r) {
                const float* xs[1] = {xr(r)};
                float* ys[1] = {yr(r, o)};
                detail::block<1>(wb, n, xs, ys, r == r0);
            }
        }
        for (; o < out; ++o)  // the last out % 4 weight rows
            for (index_t r = r0; r < r1; ++r) *yr(r, o) = detail::dot(w + static_cast<std::size_t>(o) * n, xr(r), n);
    }
}

}  // namespace ordo::eigen
