// ordo/eigen/skinny.hpp - the product a decode step is made of: a few activation rows times a big
// weight matrix. Y[r][o] = sum_i W[o][i] * X[r][i], W row-major [out x in] (the PyTorch layout).
//
// Why not Eigen's `X * W.transpose()`: at 2..16 rows Eigen's matrix x matrix path re-reads W per
// panel and falls to a fraction of memory bandwidth (design.md §6), so every order that feeds
// several rows per step would look slower than it is. Here each weight row is read from memory
// once and applied to all rows while it sits in L1; a 4 (weights) x 2 (rows) register block keeps
// the FMA units busy until the step turns compute-bound. The SIMD is Eigen's packet layer, so the
// kernel follows whatever instruction set the build targets.
#pragma once

#include <cstddef>

#include <Eigen/Core>

#include "../config.hpp"

namespace ordo::eigen {

namespace detail {
// Eigen's SIMD packets (AVX2/AVX-512/SSE/NEON, whatever the build targets)
using packet = Eigen::internal::packet_traits<float>::type;
inline constexpr int lanes = Eigen::internal::unpacket_traits<packet>::size;

inline packet load(const float* p) { return Eigen::internal::ploadu<packet>(p); }
inline packet fma(const packet& a, const packet& b, const packet& c) { return Eigen::internal::pmadd(a, b, c); }
inline float sum(const packet& p) { return Eigen::internal::predux(p); }

// Y[r][o0..o0+3] for rows r0, r0+1 (or one row when `two` is false): 8 independent FMA chains.
template <bool two>
inline void block_4x2(const float* w, std::size_t in, const float* x0, const float* x1, float* y0, float* y1) {
    const float *w0 = w, *w1 = w + in, *w2 = w + 2 * in, *w3 = w + 3 * in;
    const packet z = Eigen::internal::pset1<packet>(0.0f);
    packet a00 = z, a01 = z, a02 = z, a03 = z, a10 = z, a11 = z, a12 = z, a13 = z;
    std::size_t i = 0;
    for (; i + lanes <= in; i += lanes) {
        const packet u = load(x0 + i);
        const packet b0 = load(w0 + i), b1 = load(w1 + i), b2 = load(w2 + i), b3 = load(w3 + i);
        a00 = fma(b0, u, a00); a01 = fma(b1, u, a01); a02 = fma(b2, u, a02); a03 = fma(b3, u, a03);
        if constexpr (two) {
            const packet v = load(x1 + i);
            a10 = fma(b0, v, a10); a11 = fma(b1, v, a11); a12 = fma(b2, v, a12); a13 = fma(b3, v, a13);
        }
    }
    float t00 = sum(a00), t01 = sum(a01), t02 = sum(a02), t03 = sum(a03);
    float t10 = 0, t11 = 0, t12 = 0, t13 = 0;
    if constexpr (two) { t10 = sum(a10); t11 = sum(a11); t12 = sum(a12); t13 = sum(a13); }
    for (; i < in; ++i) {
        t00 += w0[i] * x0[i]; t01 += w1[i] * x0[i]; t02 += w2[i] * x0[i]; t03 += w3[i] * x0[i];
        if constexpr (two) { t10 += w0[i] * x1[i]; t11 += w1[i] * x1[i]; t12 += w2[i] * x1[i]; t13 += w3[i] * x1[i]; }
    }
    y0[0] = t00; y0[1] = t01; y0[2] = t02; y0[3] = t03;
    if constexpr (two) { y1[0] = t10; y1[1] = t11; y1[2] = t12; y1[3] = t13; }
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
            for (; r + 2 <= r1; r += 2) detail::block_4x2<true>(wb, n, xr(r), xr(r + 1), yr(r, o), yr(r + 1, o));
            if (r < r1) detail::block_4x2<false>(wb, n, xr(r), nullptr, yr(r, o), nullptr);
        }
        for (; o < out; ++o)  // the last out % 4 weight rows
            for (index_t r = r0; r < r1; ++r) *yr(r, o) = detail::dot(w + static_cast<std::size_t>(o) * n, xr(r), n);
    }
}

}  // namespace ordo::eigen
