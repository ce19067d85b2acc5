// ordo/eigen/layers.hpp - the row-wise pieces of a ViT block on the CPU (fp32): LayerNorm with bias,
// exact-erf GELU, a bias added to every row. (The GPT's RMSNorm and SwiGLU live in gpt.hpp.)
#pragma once

#include <cmath>
#include <cstddef>

#include "../config.hpp"

namespace ordo::eigen {

// out[i] = (x[i] - mean) / sqrt(var + eps) * weight + bias for each of `rows` rows of `dim` floats
// (PyTorch's nn.LayerNorm: biased variance). x rows `x_stride` apart, out rows `out_stride` apart;
// out may be x. Mean and variance are summed in double (two passes), so the result is the exact one
// rounded to fp32 up to the last step.
inline void layer_norm(const float* x, std::size_t x_stride, std::size_t rows, index_t dim, const float* weight, const float* bias, float eps, float* out,
                       std::size_t out_stride) {
    const std::size_t d = static_cast<std::size_t>(dim);
    for (std::size_t i = 0; i < rows; ++i) {
        const float* xr = x + i * x_stride;
        float* o = out + i * out_stride;
        double sum = 0;
        for (std::size_t j = 0; j < d; ++j) sum += xr[j];
        const double mean = sum / static_cast<double>(d);
        double sq = 0;
        for (std::size_t j = 0; j < d; ++j) {
            const double c = xr[j] - mean;
            sq += c * c;
        }
        const float m = static_cast<float>(mean);
        const float inv = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(d) + static_cast<double>(eps)));
        for (std::size_t j = 0; j < d; ++j) o[j] = (xr[j] - m) * inv * weight[j] + bias[j];
    }
}

// x = 0.5 x (1 + erf(x / sqrt 2)) in place (nn.GELU(), approximate='none').
inline void gelu_erf(float* x, std::size_t n) {
    constexpr float inv_sqrt2 = 0.70710678118654752f;
    for (std::size_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * inv_sqrt2));
}

// y[r][j] += bias[j] for `rows` rows of `n` floats, `stride` apart.
inline void add_bias(float* y, std::size_t stride, std::size_t rows, std::size_t n, const float* bias) {
    for (std::size_t r = 0; r < rows; ++r) {
        float* yr = y + r * stride;
        for (std::size_t j = 0; j < n; ++j) yr[j] += bias[j];
    }
}

}  // namespace ordo::eigen
