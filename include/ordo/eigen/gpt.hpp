// ordo/eigen/gpt.hpp - the LlamaGen GPT on the CPU (fp32, Eigen), with PAR's transition tokens,
// NAR's extra block + B head and RandAR's position instruction: an ordo model (model_for) over any
// ordo kv_cache.
//
// One forward pass per step batch: embed every fed row (class label, token, M_i, the token a
// stand-in copies, or a query row's position-instruction vector rotated by its target's 2D RoPE), run the blocks x + attn(RMSNorm(x)), x + ffn(RMSNorm(x)) with 2D RoPE from the
// batch's rope coordinates (a zero coordinate makes q and k exactly zero, as in the official code),
// write K/V at each row's slot and attend to the slots the plan's mask lets it see. Head 0 (R, the
// only head of LlamaGen and PAR) is norm/output after layer n_layer-1; head 1 (NAR's B) is
// medusa_norm/medusa_output after the extra blocks.
//
// The multiplied matrices run in fp32 or bf16 (weight_dtype; bf16: half the bytes streamed per
// step, fp32 accumulation), on threads() threads (threads.hpp), with the same results for any
// thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/Core>

#include "../engine/generate.hpp"
#include "../mask.hpp"
#include "../models/llamagen/gpt_config.hpp"
#include "../models/llamagen/gpt_weights.hpp"
#include "attention.hpp"
#include "layers.hpp"
#include "skinny.hpp"
#include "threads.hpp"

namespace ordo::eigen {

// How the GPT's multiplied matrices are stored for its products: fp32 (the checkpoint's values) or
// bf16 (rounded to nearest even, half the bytes; docs/cpu-backend.md has its accuracy cost).
enum class weight_dtype { fp32, bf16 };

inline const char* dtype_name(weight_dtype t) { return t == weight_dtype::bf16 ? "bf16" : "fp32"; }

// "fp32" or "bf16"; anything else is an error naming the choices.
inline weight_dtype parse_weight_dtype(std::string_view s) {
    if (s == "fp32") return weight_dtype::fp32;
    if (s == "bf16") return weight_dtype::bf16;
    throw error("weight dtype must be \"fp32\" or \"bf16\", got \"" + std::string(s) + "\"");
}

// bf16 copies of the matrices a GPT step multiplies: every block's wqkv, wo, w1|w3 and w2, the
// output head and NAR's medusa_output (the embedding tables, only indexed, and the norm weights
// stay fp32 in gpt_weights). Made once from the fp32 weights; the models that use it borrow it.
class gpt_bf16_matrices {
public:
    struct layer {
        const bf16* wqkv;
        const bf16* wo;
        const bf16* w13;
        const bf16* w2;
    };

    explicit gpt_bf16_matrices(const models::llamagen::gpt_weights& w) {
        const models::llamagen::gpt_config& c = w.config();
        const std::size_t d = static_cast<std::size_t>(c.dim), h = static_cast<std::size_t>(c.ffn_hidden()), qkv = static_cast<std::size_t>(c.qkv_rows());
        const std::size_t v = static_cast<std::size_t>(c.vocab_size), per_layer = qkv * d + d * d + 2 * h * d + d * h;
        arena_.resize(per_layer * static_cast<std::size_t>(c.num_layers()) + v * d * (w.medusa_output ? 2 : 1));
        std::size_t at = 0;
        auto convert = [&](const float* src, std::size_t n) {
            bf16* dst = arena_.data() + at;
            at += n;
            parallel_ranges(static_cast<index_t>((n + 4095) / 4096), static_cast<double>(n), [&](index_t b, index_t e, int) {
                for (std::size_t i = static_cast<std::size_t>(b) * 4096; i < std::min(n, static_cast<std::size_t>(e) * 4096); ++i) dst[i] = to_bf16(src[i]);
            });
            return static_cast<const bf16*>(dst);
        };
        for (const auto& L : w.layers) layers_.push_back({convert(L.wqkv, qkv * d), convert(L.wo, d * d), convert(L.w13, 2 * h * d), convert(L.w2, d * h)});
        output_ = convert(w.output, v * d);
        if (w.medusa_output) medusa_output_ = convert(w.medusa_output, v * d);
        config_ = c;
    }
    gpt_bf16_matrices(const gpt_bf16_matrices&) = delete;
    gpt_bf16_matrices& operator=(const gpt_bf16_matrices&) = delete;

    const models::llamagen::gpt_config& config() const { return config_; }
    const layer& at(index_t l) const { return layers_[static_cast<std::size_t>(l)]; }
    const bf16* output() const { return output_; }
    const bf16* medusa_output() const { return medusa_output_; }
    std::size_t bytes() const { return arena_.size() * sizeof(bf16); }

private:
    models::llamagen::gpt_config config_;
    std::vector<bf16> arena_;
    std::vector<layer> layers_;
    const bf16* output_ = nullptr;
    const bf16* medusa_output_ = nullptr;
};

// The model. It borrows the weights (the caller owns them) and owns only per-step buffers, sized
// by prepare() (generate() calls it through check_fit) so that forward() allocates nothing, and
// with weight_dtype::bf16 the bf16 copy of the multiplied matrices (shared between models that
// are given the same one).
class gpt_model {
public:
    explicit gpt_model(const models::llamagen::gpt_weights& w, weight_dtype dtype = weight_dtype::fp32)
        : gpt_model(w, dtype == weight_dtype::bf16 ? std::make_shared<const gpt_bf16_matrices>(w) : nullptr) {}
    // Products in bf16 from `matrices` (made from these weights), or fp32 when it is null.
    gpt_model(const models::llamagen::gpt_weights& w, std::shared_ptr<const gpt_bf16_matrices> matrices) : w_(&w), c_(w.config()), bf16_(std::move(matrices)) {
        c_.validate();
        if (bf16_ && bf16_->config().str() != c_.str())
            throw error("gpt model: the bf16 matrices are of " + bf16_->config().str() + ", the weights of " + c_.str());
        rope_ = rope_2d(c_.head_dim(), c_.rope_base);
    }

    weight_dtype dtype() const { return bf16_ ? weight_dtype::bf16 : weight_dtype::fp32; }
    // The bf16 copy the products use (null: fp32); held besides the fp32 weights.
    const gpt_bf16_matrices* bf16_matrices() const { return bf16_.get(); }

    const models::llamagen::gpt_config& config() const { return c_; }
    index_t vocab_size() const { return c_.vocab_size; }
    index_t num_heads() const { return c_.num_output_heads(); }
    index_t num_layers() const { return c_.num_layers(); }
    index_t cache_width() const { return c_.kv_width(); }

    // Checks that this checkpoint can run the plan, and sizes the step buffers for `sequences`.
    void prepare(const plan_view& p, index_t sequences) {
        models::llamagen::check_plan_fit(c_, p);
        reserve(static_cast<std::size_t>(sequences) * static_cast<std::size_t>(std::max(p.max_rows_per_step(), p.header.train_slots)),
                p.num_slots());
    }

    // Sizes the buffers for `rows` rows per forward and `slots` kv slots (prepare() does this).
    void reserve(std::size_t rows, index_t slots) {
        const std::size_t d = static_cast<std::size_t>(c_.dim);
        if (rows > rows_) {
            rows_ = rows;
            x_.resize(rows * d);
            xn_.resize(rows * d);
            attn_.resize(rows * d);
            qkv_.resize(rows * static_cast<std::size_t>(c_.qkv_rows()));
            ffn_.resize(rows * 2 * static_cast<std::size_t>(c_.ffn_hidden()));
        }
        attn_scratch_.reserve(slots, c_.n_head, static_cast<index_t>(rows));
    }

    template <class C>
        requires kv_cache<C> && std::same_as<typename C::value_type, float>
    void forward(const step_batch& b, C& cache, std::span<float> logits) {
        check_batch(b, cache, logits);
        const std::size_t rows = static_cast<std::size_t>(b.num_sequences) * static_cast<std::size_t>(b.num_rows);
        reserve(rows, b.plan.num_slots());  // no-op after prepare()
        embed(b);
        const index_t trunk = c_.n_layer, layers = b.num_heads > 1 ? c_.num_layers() : trunk;  // no B head read: skip its blocks
        for (index_t l = 0; l < layers; ++l) {
            block(l, b, cache);
            if (l == trunk - 1) head(b, 0, w_->norm, w_->output, bf16_ ? bf16_->output() : nullptr, logits);
        }
        if (layers > trunk) head(b, 1, w_->medusa_norm, w_->medusa_output, bf16_ ? bf16_->medusa_output() : nullptr, logits);
    }

private:
    using vec = Eigen::Map<Eigen::VectorXf>;
    using cvec = Eigen::Map<const Eigen::VectorXf>;

    template <class C>
    void check_batch(const step_batch& b, C& cache, std::span<float> logits) const {
        if (b.vocab != c_.vocab_size) throw error("gpt forward: the batch has vocab " + ordo::detail::itos(b.vocab) + ", the model " + ordo::detail::itos(c_.vocab_size));
        if (b.num_heads > num_heads()) throw error("gpt forward: the batch reads " + ordo::detail::itos(b.num_heads) + " heads, the model has " + ordo::detail::itos(num_heads()));
        if (logits.size() != b.logits_size()) throw error("gpt forward: logits span has the wrong size for the batch");
        if (cache.num_layers() < c_.num_layers() || cache.width() != c_.kv_width())
            throw error("gpt forward: the kv cache has " + ordo::detail::itos(cache.num_layers()) + " layers of width " + ordo::detail::itos(cache.width()) +
                        ", the model needs " + ordo::detail::itos(c_.num_layers()) + " of width " + ordo::detail::itos(c_.kv_width()));
    }

    // Row (s, r) of x = the embedding of what the row carries. A query row (RandAR's P token): the
    // position-instruction vector viewed [n_head, head_dim], each head rotated by the RoPE of the
    // cell the row is at, which for a query is its target's (get_position_instruction_tokens).
    void embed(const step_batch& b) {
        const std::size_t d = static_cast<std::size_t>(c_.dim), hd = static_cast<std::size_t>(c_.head_dim());
        for (index_t s = 0; s < b.num_sequences; ++s)
            for (index_t r = 0; r < b.num_rows; ++r) {
                const float* src = models::llamagen::embedding_row(*w_, c_, b, s, r);
                float* dst = x_.data() + (static_cast<std::size_t>(s) * static_cast<std::size_t>(b.num_rows) + static_cast<std::size_t>(r)) * d;
                std::copy(src, src + d, dst);
                if (b.input(s, r).kind == slot_kind::query) {
                    const rope_coord rc = row_rope(b, s, r);
                    for (index_t h = 0; h < c_.n_head; ++h) rope_.rotate(dst + static_cast<std::size_t>(h) * hd, rc);
                }
            }
    }

    // out = x / rms(x) * weight, row by row (layers.hpp), rows split between the threads
    void rms_norm(const float* weight, std::size_t rows, std::span<float> out) const {
        const std::size_t d = static_cast<std::size_t>(c_.dim);
        parallel_ranges(static_cast<index_t>(rows), 2.0 * static_cast<double>(rows * d), [&](index_t b, index_t e, int) {
            const std::size_t at = static_cast<std::size_t>(b) * d;
            eigen::rms_norm(x_.data() + at, d, static_cast<std::size_t>(e - b), c_.dim, weight, c_.norm_eps, out.data() + at, d);
        });
    }

    // SwiGLU (layers.hpp) on pieces of 1024 hidden units of every row, split between the threads
    void swiglu_rows(std::size_t rows) {
        const std::size_t hidden = static_cast<std::size_t>(c_.ffn_hidden()), piece = 1024, pieces = (hidden + piece - 1) / piece;
        parallel_ranges(static_cast<index_t>(rows * pieces), 4.0 * static_cast<double>(rows * hidden), [&](index_t b, index_t e, int) {
            for (index_t t = b; t < e; ++t) {
                const std::size_t r = static_cast<std::size_t>(t) / pieces, j0 = static_cast<std::size_t>(t) % pieces * piece;
                swiglu_part(ffn_.data() + r * 2 * hidden, hidden, j0, std::min(hidden, j0 + piece));
            }
        });
    }

    // Y = X * W^T with W in the model's dtype: `f32` from the weights, or `b16`, its bf16 copy
    void product(const float* f32, const bf16* b16, index_t out, index_t in, const float* x, std::size_t rows, std::size_t x_stride, float* y,
                 std::size_t y_stride) const {
        if (bf16_) skinny_gemm(b16, out, in, x, static_cast<index_t>(rows), x_stride, y, y_stride);
        else skinny_gemm(f32, out, in, x, static_cast<index_t>(rows), x_stride, y, y_stride);
    }

    template <class C>
    void block(index_t l, const step_batch& b, C& cache) {
        const models::llamagen::gpt_weights::layer& L = w_->layers[static_cast<std::size_t>(l)];
        const std::size_t d = static_cast<std::size_t>(c_.dim), rows = static_cast<std::size_t>(b.num_sequences) * static_cast<std::size_t>(b.num_rows);
        const index_t hd = c_.head_dim(), nh = c_.n_head, nkv = c_.kv_heads();
        const std::size_t qkv_w = static_cast<std::size_t>(c_.qkv_rows());
        static constexpr gpt_bf16_matrices::layer fp32_only{};
        const gpt_bf16_matrices::layer& H = bf16_ ? bf16_->at(l) : fp32_only;
        // attention
        rms_norm(L.attn_norm, rows, xn_);
        product(L.wqkv, H.wqkv, c_.qkv_rows(), c_.dim, xn_.data(), rows, d, qkv_.data(), qkv_w);
        for (index_t s = 0; s < b.num_sequences; ++s)
            for (index_t r = 0; r < b.num_rows; ++r) {
                float* q = qkv_.data() + (static_cast<std::size_t>(s) * static_cast<std::size_t>(b.num_rows) + static_cast<std::size_t>(r)) * qkv_w;
                const rope_coord rc = row_rope(b, s, r);
                for (index_t h = 0; h < nh + nkv; ++h) rope_.rotate(q + static_cast<std::size_t>(h * hd), rc);
                const float* k = q + static_cast<std::size_t>(nh * hd);
                const float* v = k + static_cast<std::size_t>(nkv * hd);
                std::span<float> kc = cache.key(l, s, b.slots[static_cast<std::size_t>(r)]), vc = cache.value(l, s, b.slots[static_cast<std::size_t>(r)]);
                std::copy(k, k + nkv * hd, kc.begin());
                std::copy(v, v + nkv * hd, vc.begin());
            }
        visit_mask(b.plan, [&](auto mask) { attend({nh, nkv, hd}, qkv_.data(), qkv_w, cache, l, b, mask, attn_.data(), d, attn_scratch_); });
        product(L.wo, H.wo, c_.dim, c_.dim, attn_.data(), rows, d, xn_.data(), d);
        vec(x_.data(), static_cast<Eigen::Index>(rows * d)) += cvec(xn_.data(), static_cast<Eigen::Index>(rows * d));
        // feed-forward: w2(silu(w1 x) * w3 x)
        rms_norm(L.ffn_norm, rows, xn_);
        const std::size_t hidden = static_cast<std::size_t>(c_.ffn_hidden());
        product(L.w13, H.w13, 2 * c_.ffn_hidden(), c_.dim, xn_.data(), rows, d, ffn_.data(), 2 * hidden);
        swiglu_rows(rows);
        product(L.w2, H.w2, c_.dim, c_.ffn_hidden(), ffn_.data(), rows, 2 * hidden, xn_.data(), d);
        vec(x_.data(), static_cast<Eigen::Index>(rows * d)) += cvec(xn_.data(), static_cast<Eigen::Index>(rows * d));
    }

    // logits[s][r][head] = output(norm(x))
    void head(const step_batch& b, index_t which, const float* norm_w, const float* out_w, const bf16* out_b16, std::span<float> logits) {
        const std::size_t rows = static_cast<std::size_t>(b.num_sequences) * static_cast<std::size_t>(b.num_rows);
        rms_norm(norm_w, rows, xn_);
        const std::size_t v = static_cast<std::size_t>(c_.vocab_size), heads = static_cast<std::size_t>(b.num_heads);
        product(out_w, out_b16, c_.vocab_size, c_.dim, xn_.data(), rows, static_cast<std::size_t>(c_.dim), logits.data() + static_cast<std::size_t>(which) * v,
                heads * v);
    }

    const models::llamagen::gpt_weights* w_;
    models::llamagen::gpt_config c_;
    std::shared_ptr<const gpt_bf16_matrices> bf16_;  // null: fp32 products
    rope_2d rope_;
    std::size_t rows_ = 0;
    std::vector<float> x_, xn_, attn_, qkv_, ffn_;
    attention_scratch attn_scratch_;
};

}  // namespace ordo::eigen
