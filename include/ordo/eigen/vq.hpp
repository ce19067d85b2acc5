// ordo/eigen/vq.hpp - LlamaGen's VQ tokenizer decoder on the CPU (fp32, Eigen): token ids to
// pixels (VQModel.decode_code: l2-normalised codebook lookup, post_quant_conv, conv_in, mid (res,
// attn, res), the up levels, norm_out, swish, conv_out), the official uint8 post-processing and
// the bicubic eval resize. The math is conventions/vq16.md; docs/cpu-backend.md has the timing.
//
// Activations are NCHW per image: a C x (H*W) row-major matrix, so a GroupNorm group is one
// contiguous run and a 1x1 conv is one GEMM. A 3x3 conv is im2col (9*C rows) of a band of output
// rows, then one GEMM with the weight viewed as a row-major out x 9*C matrix (PyTorch's layout
// as it is); bands keep the im2col buffer near vq_decoder::col_budget floats. The GEMMs are Eigen's,
// each split in fixed column chunks between the CPU backend's threads (threads.hpp, product()),
// so the pixels are the same for any thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "../config.hpp"
#include "../models/vq/vq_config.hpp"
#include "threads.hpp"

namespace ordo::eigen {

// Called after each module with its output (C x H x W floats, NCHW of one image) and the name of
// the official module it mirrors ("quant", "post_quant_conv", "decoder.mid.1",
// "decoder.conv_blocks.0.attn.2", "decoder.norm_out" (before swish), "decoder.conv_out", ...).
using vq_observer = std::function<void(std::string_view name, const float* data, index_t channels, index_t height, index_t width)>;

namespace vq_detail {

using rmat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using mat_map = Eigen::Map<rmat>;
using const_mat_map = Eigen::Map<const rmat>;
using arr_map = Eigen::Map<Eigen::ArrayXf>;
using const_arr_map = Eigen::Map<const Eigen::ArrayXf>;
using tensors = models::vq::vq_tensors<float>;
// Buffers at Eigen's largest alignment: Eigen's vectorised loops (sums, exp) start with scalar
// steps up to the first aligned packet, so on a buffer whose address could fall anywhere the
// pixels' last bits would follow the allocator; aligned, every slice's alignment is fixed by sizes.
using aligned_floats = std::vector<float, Eigen::aligned_allocator<float>>;

// y = GroupNorm(32)(x), then swish if asked, for x [C, P] (PyTorch's CPU kernel: per channel
// y = x * a + b with a = rstd * gamma, b = beta - mean * a). Mean and biased variance in double,
// two passes over the group's contiguous run.
inline void group_norm(const float* x, index_t channels, std::size_t pixels, const tensors::norm_layer& n, float* y, bool swish) {
    const index_t per_group = channels / models::vq::group_norm_groups;
    const std::size_t run = static_cast<std::size_t>(per_group) * pixels;
    for (index_t g = 0; g < models::vq::group_norm_groups; ++g) {
        const std::size_t first = static_cast<std::size_t>(g) * run;
        const const_arr_map xs(x + first, static_cast<Eigen::Index>(run));
        const double mean = xs.cast<double>().sum() / static_cast<double>(run);
        const double var = (xs.cast<double>() - mean).square().sum() / static_cast<double>(run);
        const double rstd = 1.0 / std::sqrt(var + static_cast<double>(models::vq::group_norm_eps));
        for (index_t c = g * per_group; c < (g + 1) * per_group; ++c) {
            const float a = static_cast<float>(rstd * n.weight[c]);
            const float b = static_cast<float>(n.bias[c] - mean * rstd * n.weight[c]);
            const std::size_t at = static_cast<std::size_t>(c) * pixels;
            const const_arr_map xc(x + at, static_cast<Eigen::Index>(pixels));
            arr_map yc(y + at, static_cast<Eigen::Index>(pixels));
            yc = xc * a + b;
            if (swish) yc = yc / (1.0f + (-yc).exp());
        }
    }
}

// x * sigmoid(x) in place.
inline void swish(float* x, std::size_t n) {
    arr_map a(x, static_cast<Eigen::Index>(n));
    a = a / (1.0f + (-a).exp());
}

// dst = lhs * rhs in fixed chunks of product_chunk columns of dst, split between the threads
// (threads.hpp), each chunk one sequential Eigen GEMM. Eigen's own threaded GEMM is not used: it
// sizes its depth blocks by the thread count, which changes every sum's order, so pixels would
// depend on --threads; chunks of a fixed width make them the same for any count.
inline constexpr Eigen::Index product_chunk = 64;
template <class Dst, class Lhs, class Rhs>
void product(Dst dst, const Lhs& lhs, const Rhs& rhs) {
    const Eigen::Index n = dst.cols(), chunks = (n + product_chunk - 1) / product_chunk;
    const double work = static_cast<double>(lhs.rows()) * static_cast<double>(lhs.cols()) * static_cast<double>(n);
    parallel_ranges(static_cast<index_t>(chunks), work, [&](index_t c0, index_t c1, int) {
        for (index_t c = c0; c < c1; ++c) {
            const Eigen::Index first = c * product_chunk, cols = std::min(product_chunk, n - first);
            dst.middleCols(first, cols).noalias() = lhs * rhs.middleCols(first, cols);
        }
    });
}

// Eigen's thread count set to 1 for a scope (product() above runs Eigen sequentially).
struct sequential_eigen {
    int before = Eigen::nbThreads();
    sequential_eigen() { Eigen::setNbThreads(1); }
    ~sequential_eigen() { Eigen::setNbThreads(before); }
    sequential_eigen(const sequential_eigen&) = delete;
    sequential_eigen& operator=(const sequential_eigen&) = delete;
};

// out [O, P] = W in + b (a 1x1 conv).
inline void conv1x1(const tensors::conv_layer& k, const float* in, std::size_t pixels, float* out) {
    const auto P = static_cast<Eigen::Index>(pixels);
    mat_map o(out, k.out, P);
    product(o, const_mat_map(k.weight, k.out, k.in), const_mat_map(in, k.in, P));
    for (index_t r = 0; r < k.out; ++r) o.row(r).array() += k.bias[r];
}

// Rows of output computed per band so that the im2col buffer holds at most `col_floats` (at least
// one row).
inline index_t band_rows(index_t in_channels, index_t height, index_t width, std::size_t col_floats) {
    const std::size_t per_row = static_cast<std::size_t>(in_channels) * 9 * static_cast<std::size_t>(width);
    return static_cast<index_t>(std::clamp<std::size_t>(col_floats / per_row, 1, static_cast<std::size_t>(height)));
}

// out [O, H, W] = conv3x3(in [C, H, W]) + b (padding 1), plus `residual` [O, H, W] when given
// ((conv + b) + residual, the order of `x + h`). `col` holds col_floats floats.
inline void conv3x3(const tensors::conv_layer& k, const float* in, index_t height, index_t width, float* out, float* col, std::size_t col_floats,
                    const float* residual = nullptr) {
    const std::size_t H = static_cast<std::size_t>(height), W = static_cast<std::size_t>(width), P = H * W;
    const index_t K = k.in * 9;
    const index_t rows = band_rows(k.in, height, width, col_floats);
    const const_mat_map weight(k.weight, k.out, K);
    mat_map o(out, k.out, static_cast<Eigen::Index>(P));
    for (index_t y0 = 0; y0 < height; y0 += rows) {
        const std::size_t ny = static_cast<std::size_t>(std::min(rows, height - y0)), np = ny * W;
        // im2col: row (c, i, j) holds in[c, y + i - 1, x + j - 1] for the band's pixels (y, x)
        for (index_t c = 0; c < k.in; ++c)
            for (int i = 0; i < 3; ++i)
                for (int j = 0; j < 3; ++j) {
                    float* dst = col + (static_cast<std::size_t>(c) * 9 + static_cast<std::size_t>(i * 3 + j)) * np;
                    for (std::size_t yy = 0; yy < ny; ++yy) {
                        float* d = dst + yy * W;
                        const long sy = static_cast<long>(static_cast<std::size_t>(y0) + yy) + i - 1;
                        if (sy < 0 || sy >= static_cast<long>(H)) {
                            std::fill(d, d + W, 0.0f);
                            continue;
                        }
                        const float* s = in + static_cast<std::size_t>(c) * P + static_cast<std::size_t>(sy) * W;
                        if (j == 0) {
                            d[0] = 0.0f;
                            std::copy(s, s + W - 1, d + 1);
                        } else if (j == 1) {
                            std::copy(s, s + W, d);
                        } else {
                            std::copy(s + 1, s + W, d);
                            d[W - 1] = 0.0f;
                        }
                    }
                }
        const Eigen::Index first = static_cast<Eigen::Index>(static_cast<std::size_t>(y0) * W);
        product(o.middleCols(first, static_cast<Eigen::Index>(np)), weight, const_mat_map(col, K, static_cast<Eigen::Index>(np)));
        for (index_t r = 0; r < k.out; ++r) {
            arr_map band(out + static_cast<std::size_t>(r) * P + static_cast<std::size_t>(first), static_cast<Eigen::Index>(np));
            band += k.bias[r];
            if (residual) band += const_arr_map(residual + static_cast<std::size_t>(r) * P + static_cast<std::size_t>(first), static_cast<Eigen::Index>(np));
        }
    }
}

// out [C, 2H, 2W] = nearest x2 of in [C, H, W] (F.interpolate(scale_factor=2, mode="nearest")).
inline void upsample_nearest2(const float* in, index_t channels, index_t height, index_t width, float* out) {
    const std::size_t H = static_cast<std::size_t>(height), W = static_cast<std::size_t>(width);
    for (std::size_t c = 0; c < static_cast<std::size_t>(channels); ++c)
        for (std::size_t y = 0; y < H; ++y) {
            const float* s = in + (c * H + y) * W;
            float* d = out + (c * 2 * H + 2 * y) * 2 * W;
            for (std::size_t x = 0; x < W; ++x) d[2 * x] = d[2 * x + 1] = s[x];
            std::copy(d, d + 2 * W, d + 2 * W);
        }
}

}  // namespace vq_detail

// The decoder's scratch for one image of a token grid: activation buffers, the im2col band and
// attention's q, k, v, o and scores. reserve() allocates only when a grid needs more than is held,
// so decoding many images of one size allocates once.
struct vq_workspace {
    vq_detail::aligned_floats act[4];  // the residual stream, the next one, a normalised copy, a branch
    vq_detail::aligned_floats col;
    vq_detail::aligned_floats q, k, v, o, scores;

    struct sizes {
        std::size_t act = 0, col = 0, attn = 0, scores = 0;
        std::uint64_t bytes() const { return (4 * act + col + 4 * attn + scores) * sizeof(float); }
    };

    // What decoding an h x w grid with config c needs, the im2col band at most col_budget floats
    // (or one row).
    static sizes required(const models::vq::vq_config& c, index_t h, index_t w, std::size_t col_budget) {
        sizes s;
        auto conv3 = [&](index_t in, index_t height, index_t width) {
            s.col = std::max(s.col, static_cast<std::size_t>(in) * 9 * static_cast<std::size_t>(width) *
                                        static_cast<std::size_t>(vq_detail::band_rows(in, height, width, col_budget)));
        };
        auto attn = [&](index_t ch, std::size_t px) {
            s.attn = std::max(s.attn, static_cast<std::size_t>(ch) * px);
            s.scores = std::max(s.scores, px * px);
        };
        std::size_t hh = static_cast<std::size_t>(h), ww = static_cast<std::size_t>(w);
        const index_t w0 = c.block_width(0);
        s.act = static_cast<std::size_t>(std::max({c.embed_dim, c.z_channels, w0})) * hh * ww;
        conv3(c.z_channels, h, w);
        conv3(w0, h, w);
        attn(w0, hh * ww);
        for (index_t i = 0; i < c.levels(); ++i) {
            const index_t out = c.block_width(i), in = c.block_input(i);
            s.act = std::max(s.act, static_cast<std::size_t>(std::max(in, out)) * hh * ww);
            conv3(in, static_cast<index_t>(hh), static_cast<index_t>(ww));
            conv3(out, static_cast<index_t>(hh), static_cast<index_t>(ww));
            if (c.has_attention(i)) attn(out, hh * ww);
            if (i != c.levels() - 1) {
                hh *= 2, ww *= 2;
                s.act = std::max(s.act, static_cast<std::size_t>(out) * hh * ww);
                conv3(out, static_cast<index_t>(hh), static_cast<index_t>(ww));
            }
        }
        return s;
    }

    void reserve(const sizes& s) {
        for (auto& a : act)
            if (a.size() < s.act) a.resize(s.act);
        if (col.size() < s.col) col.resize(s.col);
        for (auto* b : {&q, &k, &v, &o})
            if (b->size() < s.attn) b->resize(s.attn);
        if (scores.size() < s.scores) scores.resize(s.scores);
    }

    std::size_t bytes() const {
        std::size_t n = col.size() + q.size() + k.size() + v.size() + o.size() + scores.size();
        for (const auto& a : act) n += a.size();
        return n * sizeof(float);
    }
};

// floor(clamp(127.5 x + 128, 0, 255)) in fp32 (sample_c2i_ddp.py: clamp, then the uint8 cast
// truncates), from an image [3, H, W] (NCHW) to [H, W, 3] (HWC, R G B). NaN becomes 0.
inline void to_uint8(std::span<const float> chw, index_t height, index_t width, std::span<std::uint8_t> hwc) {
    const std::size_t P = static_cast<std::size_t>(height) * static_cast<std::size_t>(width);
    if (chw.size() != 3 * P || hwc.size() != 3 * P)
        throw error("to_uint8: an image of " + ordo::detail::itos(height) + "x" + ordo::detail::itos(width) + " pixels needs 3 x " +
                    ordo::detail::itos(static_cast<long long>(P)) + " values in and out");
    for (std::size_t p = 0; p < P; ++p)
        for (std::size_t c = 0; c < 3; ++c) {
            float v = 127.5f * chw[c * P + p];
            v = v + 128.0f;
            v = v >= 0.0f ? std::min(v, 255.0f) : 0.0f;  // false for NaN too
            hwc[p * 3 + c] = static_cast<std::uint8_t>(v);
        }
}

// F.interpolate(x, size=(out_h, out_w), mode="bicubic", align_corners=False) of [C, H, W] (the
// eval resize of sample_c2i_ddp.py): source coordinate (d + 0.5) * in/out - 0.5, taps i0-1..i0+2
// clamped to the image, cubic convolution with A = -0.75, along x then y; no antialiasing.
inline void bicubic_resize(std::span<const float> in, index_t channels, index_t in_h, index_t in_w, std::span<float> out, index_t out_h, index_t out_w) {
    if (channels < 1 || in_h < 1 || in_w < 1 || out_h < 1 || out_w < 1)
        throw error("bicubic_resize: sizes must be >= 1, got " + ordo::detail::itos(in_h) + "x" + ordo::detail::itos(in_w) + " -> " +
                    ordo::detail::itos(out_h) + "x" + ordo::detail::itos(out_w));
    const std::size_t C = static_cast<std::size_t>(channels), IH = static_cast<std::size_t>(in_h), IW = static_cast<std::size_t>(in_w);
    const std::size_t OH = static_cast<std::size_t>(out_h), OW = static_cast<std::size_t>(out_w);
    if (in.size() != C * IH * IW || out.size() != C * OH * OW) throw error("bicubic_resize: buffer sizes do not match the shapes");
    struct taps {
        std::size_t at[4];
        float w[4];
    };
    constexpr float A = -0.75f;
    auto axis = [&](std::size_t n_in, std::size_t n_out) {
        std::vector<taps> t(n_out);
        const float scale = static_cast<float>(n_in) / static_cast<float>(n_out);
        for (std::size_t d = 0; d < n_out; ++d) {
            const float src = scale * (static_cast<float>(d) + 0.5f) - 0.5f;
            const float f = std::floor(src);
            const float s = src - f;
            const long i0 = static_cast<long>(f);
            const auto near = [&](float x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };           // |x| <= 1
            const auto far = [&](float x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };     // 1 < |x| < 2
            t[d].w[0] = far(s + 1), t[d].w[1] = near(s), t[d].w[2] = near(1 - s), t[d].w[3] = far(2 - s);
            for (int k = 0; k < 4; ++k) t[d].at[k] = static_cast<std::size_t>(std::clamp<long>(i0 - 1 + k, 0, static_cast<long>(n_in) - 1));
        }
        return t;
    };
    const std::vector<taps> ty = axis(IH, OH), tx = axis(IW, OW);
    for (std::size_t c = 0; c < C; ++c)
        for (std::size_t y = 0; y < OH; ++y)
            for (std::size_t x = 0; x < OW; ++x) {
                float acc = 0;
                for (int r = 0; r < 4; ++r) {
                    const float* row = in.data() + (c * IH + ty[y].at[r]) * IW;
                    const float along_x = row[tx[x].at[0]] * tx[x].w[0] + row[tx[x].at[1]] * tx[x].w[1] + row[tx[x].at[2]] * tx[x].w[2] + row[tx[x].at[3]] * tx[x].w[3];
                    acc += along_x * ty[y].w[r];
                }
                out[(c * OH + y) * OW + x] = acc;
            }
}

// The decoder of a VQ tokenizer's weights (which must outlive it). decode() turns one h x w grid
// of token ids (raster order, y * w + x) into a [3, h*ds, w*ds] image (ds = config().downsample()),
// values about [-1, 1]; decode_uint8() adds the official post-processing.
class vq_decoder {
public:
    static constexpr std::size_t col_budget = std::size_t{8} << 20;  // floats of an im2col band (32 MB)

    explicit vq_decoder(const models::vq::vq_weights& w) : w_(&w) {
        const models::vq::vq_config& c = w.config();
        const std::size_t D = static_cast<std::size_t>(c.embed_dim);
        codebook_.assign(w.codebook, w.codebook + static_cast<std::size_t>(c.codebook_size) * D);
        if (c.l2_norm)  // F.normalize(p=2, dim=-1): E[n] / max(||E[n]||, 1e-12), once rather than per lookup
            for (std::size_t n = 0; n < static_cast<std::size_t>(c.codebook_size); ++n) {
                double sq = 0;
                for (std::size_t d = 0; d < D; ++d) sq += static_cast<double>(codebook_[n * D + d]) * codebook_[n * D + d];
                const float norm = std::max(static_cast<float>(std::sqrt(sq)), 1e-12f);
                for (std::size_t d = 0; d < D; ++d) codebook_[n * D + d] /= norm;
            }
    }

    const models::vq::vq_config& config() const { return w_->config(); }
    index_t image_height(index_t h) const { return h * config().downsample(); }
    index_t image_width(index_t w) const { return w * config().downsample(); }
    std::size_t workspace_bytes() const { return ws_.bytes(); }

    // Throws unless the decoder can produce an h x w token grid: extents >= 1, the image at most
    // vq_limits::image_side pixels a side and its workspace within vq_limits::workspace_bytes.
    void check_grid(index_t h, index_t w) const {
        using ordo::detail::itos;
        const long long ds = config().downsample();
        if (h < 1 || w < 1) throw error("vq decoder: a token grid needs extents >= 1, got " + itos(h) + "x" + itos(w));
        if (h * ds > models::vq::vq_limits::image_side || w * ds > models::vq::vq_limits::image_side)
            throw error("vq decoder: a " + itos(h) + "x" + itos(w) + " token grid decodes to " + itos(h * ds) + "x" + itos(w * ds) + " pixels, over the " +
                        itos(models::vq::vq_limits::image_side) + "-pixel side this decoder takes");
        const std::uint64_t bytes = vq_workspace::required(config(), h, w, col_budget).bytes();
        if (bytes > models::vq::vq_limits::workspace_bytes)
            throw error("vq decoder: a " + itos(h) + "x" + itos(w) + " token grid needs " + ordo::detail::bytes_str(bytes) + " of workspace, over the limit of " +
                        ordo::detail::bytes_str(models::vq::vq_limits::workspace_bytes));
    }

    // Throws naming the first token id outside the codebook (`what` names the grid in the message).
    template <std::integral Id>
    void check_codes(std::span<const Id> codes, index_t w, const std::string& what = "token grid") const {
        for (std::size_t i = 0; i < codes.size(); ++i)
            if (codes[i] < 0 || static_cast<long long>(codes[i]) >= config().codebook_size)
                throw error("vq decoder: " + what + ": token " + ordo::detail::itos(static_cast<long long>(codes[i])) + " at row " +
                            ordo::detail::itos(static_cast<long long>(i / static_cast<std::size_t>(w))) + ", column " +
                            ordo::detail::itos(static_cast<long long>(i % static_cast<std::size_t>(w))) + " is outside the codebook of " +
                            ordo::detail::itos(config().codebook_size) + " entries");
    }

    // One image: codes [h * w] -> out [3, h*ds, w*ds]. `observe`, when set, sees every module's output.
    template <std::integral Id>
    void decode(std::span<const Id> codes, index_t h, index_t w, std::span<float> out, const vq_observer& observe = {}) {
        using namespace vq_detail;
        const sequential_eigen one_thread_per_gemm;
        const models::vq::vq_config& c = config();
        check_grid(h, w);
        const std::size_t P0 = static_cast<std::size_t>(h) * static_cast<std::size_t>(w);
        if (codes.size() != P0)
            throw error("vq decoder: " + ordo::detail::itos(static_cast<long long>(codes.size())) + " token ids for a " + ordo::detail::itos(h) + "x" +
                        ordo::detail::itos(w) + " grid");
        const std::size_t pixels = static_cast<std::size_t>(image_height(h)) * static_cast<std::size_t>(image_width(w));
        if (out.size() != 3 * pixels)
            throw error("vq decoder: the output holds " + ordo::detail::itos(static_cast<long long>(out.size())) + " floats, a " + ordo::detail::itos(image_height(h)) +
                        "x" + ordo::detail::itos(image_width(w)) + " image needs " + ordo::detail::itos(static_cast<long long>(3 * pixels)));
        check_codes(codes, w);
        ws_.reserve(vq_workspace::required(c, h, w, col_budget));
        float* x = ws_.act[0].data();   // the residual stream
        float* y = ws_.act[1].data();   // the next one
        float* t = ws_.act[2].data();   // a normalised copy (a block's branch input)
        float* u = ws_.act[3].data();   // a branch / shortcut
        index_t H = h, W = w;
        auto px = [&] { return static_cast<std::size_t>(H) * static_cast<std::size_t>(W); };
        auto seen = [&](const std::string& name, const float* data, index_t ch) {
            if (observe) observe(name, data, ch, H, W);
        };

        // quantize.get_codebook_entry: z[d, p] = E_hat[code[p]][d]
        const std::size_t D = static_cast<std::size_t>(c.embed_dim);
        for (std::size_t p = 0; p < P0; ++p)
            for (std::size_t d = 0; d < D; ++d) t[d * P0 + p] = codebook_[static_cast<std::size_t>(codes[p]) * D + d];
        seen("quant", t, c.embed_dim);
        conv1x1(w_->post_quant_conv, t, P0, x);
        seen("post_quant_conv", x, c.z_channels);
        conv3x3(w_->conv_in, x, H, W, y, ws_.col.data(), ws_.col.size());
        std::swap(x, y);
        seen("decoder.conv_in", x, w_->conv_in.out);

        // ResnetBlock: x + conv2(swish(GN(conv1(swish(GN(x)))))), the shortcut a 1x1 conv when widths differ
        auto res = [&](const tensors::res_block& r, const std::string& name) {
            group_norm(x, r.norm1.channels, px(), r.norm1, t, true);
            conv3x3(r.conv1, t, H, W, u, ws_.col.data(), ws_.col.size());
            group_norm(u, r.norm2.channels, px(), r.norm2, t, true);
            const float* shortcut = x;
            if (r.nin_shortcut.weight) {
                conv1x1(r.nin_shortcut, x, px(), u);
                shortcut = u;
            }
            conv3x3(r.conv2, t, H, W, y, ws_.col.data(), ws_.col.size(), shortcut);
            std::swap(x, y);
            seen(name, x, r.conv2.out);
        };
        // AttnBlock: one head over all pixels, head dim C
        auto attn = [&](const tensors::attn_block& a, const std::string& name) {
            const std::size_t P = px();
            const auto Pi = static_cast<Eigen::Index>(P);
            const index_t C = a.norm.channels;
            group_norm(x, C, P, a.norm, t, false);
            conv1x1(a.q, t, P, ws_.q.data());
            conv1x1(a.k, t, P, ws_.k.data());
            conv1x1(a.v, t, P, ws_.v.data());
            mat_map s(ws_.scores.data(), Pi, Pi);
            product(s, const_mat_map(ws_.q.data(), C, Pi).transpose(), const_mat_map(ws_.k.data(), C, Pi));
            s *= 1.0f / std::sqrt(static_cast<float>(C));
            for (Eigen::Index i = 0; i < Pi; ++i) {  // softmax over the keys
                auto row = s.row(i).array();
                row = (row - row.maxCoeff()).exp();
                row /= row.sum();
            }
            mat_map o(ws_.o.data(), C, Pi);
            product(o, const_mat_map(ws_.v.data(), C, Pi), s.transpose());
            conv1x1(a.proj_out, ws_.o.data(), P, u);
            arr_map(y, static_cast<Eigen::Index>(static_cast<std::size_t>(C) * P)) =
                const_arr_map(x, static_cast<Eigen::Index>(static_cast<std::size_t>(C) * P)) + const_arr_map(u, static_cast<Eigen::Index>(static_cast<std::size_t>(C) * P));
            std::swap(x, y);
            seen(name, x, C);
        };

        res(w_->mid_res0, "decoder.mid.0");
        attn(w_->mid_attn, "decoder.mid.1");
        res(w_->mid_res1, "decoder.mid.2");
        for (std::size_t i = 0; i < w_->levels.size(); ++i) {
            const auto& L = w_->levels[i];
            const std::string p = observe ? "decoder.conv_blocks." + ordo::detail::itos(static_cast<long long>(i)) : std::string();
            for (std::size_t j = 0; j < L.res.size(); ++j) {
                res(L.res[j], observe ? p + ".res." + ordo::detail::itos(static_cast<long long>(j)) : p);
                if (!L.attn.empty()) attn(L.attn[j], observe ? p + ".attn." + ordo::detail::itos(static_cast<long long>(j)) : p);
            }
            if (L.upsample.weight) {
                upsample_nearest2(x, L.upsample.in, H, W, t);
                H *= 2, W *= 2;
                conv3x3(L.upsample, t, H, W, y, ws_.col.data(), ws_.col.size());
                std::swap(x, y);
                seen(p + ".upsample", x, L.upsample.out);
            }
        }
        group_norm(x, w_->norm_out.channels, px(), w_->norm_out, t, false);
        seen("decoder.norm_out", t, w_->norm_out.channels);
        swish(t, static_cast<std::size_t>(w_->norm_out.channels) * px());
        conv3x3(w_->conv_out, t, H, W, out.data(), ws_.col.data(), ws_.col.size());
        seen("decoder.conv_out", out.data(), 3);
    }

    // A batch: codes [B * h * w] -> images [B, h*ds, w*ds, 3] uint8 (the official eval path).
    // Every id is checked before the first image is decoded.
    template <std::integral Id>
    void decode_uint8(std::span<const Id> codes, index_t batch, index_t h, index_t w, std::span<std::uint8_t> images) {
        check_grid(h, w);
        const std::size_t per_codes = static_cast<std::size_t>(h) * static_cast<std::size_t>(w);
        const std::size_t per_image = 3 * static_cast<std::size_t>(image_height(h)) * static_cast<std::size_t>(image_width(w));
        if (batch < 1 || codes.size() != per_codes * static_cast<std::size_t>(batch) || images.size() != per_image * static_cast<std::size_t>(batch))
            throw error("vq decoder: a batch of " + ordo::detail::itos(batch) + " " + ordo::detail::itos(h) + "x" + ordo::detail::itos(w) + " grids needs " +
                        ordo::detail::itos(static_cast<long long>(per_codes * static_cast<std::size_t>(std::max(batch, 1)))) + " token ids, got " +
                        ordo::detail::itos(static_cast<long long>(codes.size())));
        for (index_t b = 0; b < batch; ++b)
            check_codes(codes.subspan(static_cast<std::size_t>(b) * per_codes, per_codes), w, "image " + ordo::detail::itos(b));
        image_.resize(per_image);
        for (index_t b = 0; b < batch; ++b) {
            decode(codes.subspan(static_cast<std::size_t>(b) * per_codes, per_codes), h, w, std::span<float>(image_));
            to_uint8(image_, image_height(h), image_width(w), images.subspan(static_cast<std::size_t>(b) * per_image, per_image));
        }
    }

private:
    const models::vq::vq_weights* w_;
    vq_detail::aligned_floats codebook_;  // [codebook_size, embed_dim], rows l2-normalised when the config says so
    vq_workspace ws_;
    vq_detail::aligned_floats image_;
};

}  // namespace ordo::eigen
