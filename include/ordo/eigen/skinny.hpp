// ordo/eigen/skinny.hpp - the product a decode step is made of: a few activation rows times a big
// weight matrix. Y[r][o] = sum_i W[o][i] * X[r][i], W row-major [out x in] (the PyTorch layout).
//
// Why not Eigen's `X * W.transpose()`: at 2..16 rows Eigen's matrix x matrix path re-reads W per
// panel and falls to a fraction of memory bandwidth (design.md §6), so every order that feeds
// several rows per step would look slower than it is. Here each weight row is read from memory
// once and applied to all rows while it sits in L1; a 4 (weights) x 2 (rows) register block keeps
// the FMA units busy until the step turns compute-bound.
#pragma once

#include <cstddef>

#include "../config.hpp"

namespace ordo::eigen {

namespace detail {
inline constexpr int lanes = 8;  // one AVX register of floats; the compiler vectorises the lane loops

inline float reduce(const float (&a)[lanes]) {
    float s = 0.0f;
    for (int l = 0; l < lanes; ++l) s += a[l];
    return s;
}

// Y[r][o0..o0+3] for rows r0, r0+1 (or one row when `two` is false).
template <bool two>
inline void block_4x2(const float* w, std::size_t in, const float* x0, const float* x1, float* y0, float* y1) {
    const float *w0 = w, *w1 = w + in, *w2 = w + 2 * in, *w3 = w + 3 * in;
    float a00[lanes] = {}, a01[lanes] = {}, a02[lanes] = {}, a03[lanes] = {};
    float a10[lanes] = {}, a11[lanes] = {}, a12[lanes] = {}, a13[lanes] = {};
    std::size_t i = 0;
    for (; i + lanes <= in; i += lanes)
        for (int l = 0; l < lanes; ++l) {
            const float u = x0[i + l];
            a00[l] += w0[i + l] * u; a01[l] += w1[i + l] * u; a02[l] += w2[i + l] * u; a03[l] += w3[i + l] * u;
            if constexpr (two) {
                const float v = x1[i + l];
                a10[l] += w0[i + l] * v; a11[l] += w1[i + l] * v; a12[l] += w2[i + l] * v; a13[l] += w3[i + l] * v;
            }
        }
    float t00 = reduce(a00), t01 = reduce(a01), t02 = reduce(a02), t03 = reduce(a03);
    float t10 = reduce(a10), t11 = reduce(a11), t12 = reduce(a12), t13 = reduce(a13);
    for (; i < in; ++i) {
        t00 += w0[i] * x0[i]; t01 += w1[i] * x0[i]; t02 += w2[i] * x0[i]; t03 += w3[i] * x0[i];
        if constexpr (two) { t10 += w0[i] * x1[i]; t11 += w1[i] * x1[i]; t12 += w2[i] * x1[i]; t13 += w3[i] * x1[i]; }
    }
    y0[0] = t00; y0[1] = t01; y0[2] = t02; y0[3] = t03;
    if constexpr (two) { y1[0] = t10; y1[1] = t11; y1[2] = t12; y1[3] = t13; }
}

inline float dot(const float* a, const float* b, std::size_t n) {
    float acc[lanes] = {};
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes)
        for (int l = 0; l < lanes; ++l) acc[l] += a[i + l] * b[i + l];
    float s = reduce(acc);
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
