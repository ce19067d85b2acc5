// ordo/eigen/layers.hpp - the row-wise pieces of the CPU models' blocks (fp32): a ViT's LayerNorm with
// bias, exact-erf GELU and a bias added to every row (LPD); a LlamaGen block's RMSNorm, SwiGLU and 2D
// RoPE (the GPT, ARPG).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include <Eigen/Core>

#include "../config.hpp"
#include "../plan.hpp"
#include "skinny.hpp"

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

// out[i] = x[i] / rms(x[i]) * weight for each of `rows` rows of `dim` floats (LlamaGen's RMSNorm,
// in fp32): x rows `x_stride` apart, out rows `out_stride` apart. The sum of squares is
// detail::dot's fixed order: Eigen's squaredNorm() peels a head up to the first aligned packet, so
// its order (and last bit) would follow the buffer's address, which can change between processes.
inline void rms_norm(const float* x, std::size_t x_stride, std::size_t rows, index_t dim, const float* weight, float eps, float* out, std::size_t out_stride) {
    using vec = Eigen::Map<Eigen::VectorXf>;
    using cvec = Eigen::Map<const Eigen::VectorXf>;
    const cvec wv(weight, dim);
    for (std::size_t i = 0; i < rows; ++i) {
        const cvec xr(x + i * x_stride, dim);
        const float sq = detail::dot(x + i * x_stride, x + i * x_stride, static_cast<std::size_t>(dim));
        const float inv = 1.0f / std::sqrt(sq / static_cast<float>(dim) + eps);
        vec(out + i * out_stride, dim) = (xr * inv).cwiseProduct(wv);
    }
}

// SwiGLU of units [j0, j1) of one row holding w1 x (hidden floats) then w3 x (hidden floats): the
// first half becomes silu(w1 x) * w3 x.
inline void swiglu_part(float* g, std::size_t hidden, std::size_t j0, std::size_t j1) {
    const float* u = g + hidden;
    for (std::size_t j = j0; j < j1; ++j) g[j] = g[j] / (1.0f + std::exp(-g[j])) * u[j];
}

// SwiGLU in place on `rows` such rows.
inline void swiglu(float* gu, std::size_t rows, std::size_t hidden) {
    for (std::size_t i = 0; i < rows; ++i) swiglu_part(gu + i * 2 * hidden, hidden, 0, hidden);
}

// LlamaGen's 2D RoPE (precompute_freqs_cis_2d + apply_rotary_emb) for one head of `head_dim`: the
// interleaved pairs (x[2j], x[2j+1]), the first head_dim/4 rotated by row * f_j, the rest by
// col * f_(j - head_dim/4), f_k = 1 / base^(2k / (head_dim/2)) in fp32 as the official table. A zero
// coordinate (the class row's zero table row) zeroes the head.
class rope_2d {
public:
    rope_2d() = default;
    rope_2d(index_t head_dim, float base) : head_dim_(head_dim) {
        const index_t hd2 = head_dim / 4;  // rotation pairs per axis
        freqs_.resize(static_cast<std::size_t>(hd2));
        for (index_t k = 0; k < hd2; ++k)
            freqs_[static_cast<std::size_t>(k)] = 1.0f / std::pow(base, static_cast<float>(2 * k) / static_cast<float>(head_dim / 2));
    }
    void rotate(float* x, const rope_coord& rc) const {
        const index_t hd = head_dim_, q = hd / 4;
        if (rc.zero) {
            std::fill(x, x + hd, 0.0f);
            return;
        }
        for (index_t j = 0; j < hd / 2; ++j) {
            const float pos = static_cast<float>(j < q ? rc.at.h : rc.at.w);
            const float angle = pos * freqs_[static_cast<std::size_t>(j < q ? j : j - q)];
            const float c = std::cos(angle), s = std::sin(angle);
            const float a = x[2 * j], bb = x[2 * j + 1];
            x[2 * j] = a * c - bb * s;
            x[2 * j + 1] = bb * c + a * s;
        }
    }

private:
    index_t head_dim_ = 0;
    std::vector<float> freqs_;
};

}  // namespace ordo::eigen
