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
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include <Eigen/Core>

#include "../engine/generate.hpp"
#include "../mask.hpp"
#include "../models/llamagen/gpt_config.hpp"
#include "../models/llamagen/gpt_weights.hpp"
#include "attention.hpp"
#include "layers.hpp"
#include "skinny.hpp"

namespace ordo::eigen {

// The model. It borrows the weights (the caller owns them) and owns only per-step buffers, sized
// by prepare() (generate() calls it through check_fit) so that forward() allocates nothing.
class gpt_model {
public:
    explicit gpt_model(const models::llamagen::gpt_weights& w) : w_(&w), c_(w.config()) {
        c_.validate();
        rope_ = rope_2d(c_.head_dim(), c_.rope_base);
    }

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
        attn_scratch_.reserve(slots, c_.n_head);
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
            if (l == trunk - 1) head(b, 0, w_->norm, w_->output, logits);
        }
        if (layers > trunk) head(b, 1, w_->medusa_norm, w_->medusa_output, logits);
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

    // out = x / rms(x) * weight, row by row (layers.hpp)
    void rms_norm(const float* weight, std::size_t rows, std::vector<float>& out) const {
        const std::size_t d = static_cast<std::size_t>(c_.dim);
        eigen::rms_norm(x_.data(), d, rows, c_.dim, weight, c_.norm_eps, out.data(), d);
    }

    template <class C>
    void block(index_t l, const step_batch& b, C& cache) {
        const models::llamagen::gpt_weights::layer& L = w_->layers[static_cast<std::size_t>(l)];
        const std::size_t d = static_cast<std::size_t>(c_.dim), rows = static_cast<std::size_t>(b.num_sequences) * static_cast<std::size_t>(b.num_rows);
        const index_t hd = c_.head_dim(), nh = c_.n_head, nkv = c_.kv_heads();
        const std::size_t qkv_w = static_cast<std::size_t>(c_.qkv_rows());
        // attention
        rms_norm(L.attn_norm, rows, xn_);
        skinny_gemm(L.wqkv, c_.qkv_rows(), c_.dim, xn_.data(), static_cast<index_t>(rows), d, qkv_.data(), qkv_w);
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
        skinny_gemm(L.wo, c_.dim, c_.dim, attn_.data(), static_cast<index_t>(rows), d, xn_.data(), d);
        vec(x_.data(), static_cast<Eigen::Index>(rows * d)) += cvec(xn_.data(), static_cast<Eigen::Index>(rows * d));
        // feed-forward: w2(silu(w1 x) * w3 x)
        rms_norm(L.ffn_norm, rows, xn_);
        const std::size_t hidden = static_cast<std::size_t>(c_.ffn_hidden());
        skinny_gemm(L.w13, 2 * c_.ffn_hidden(), c_.dim, xn_.data(), static_cast<index_t>(rows), d, ffn_.data(), 2 * hidden);
        swiglu(ffn_.data(), rows, hidden);
        skinny_gemm(L.w2, c_.dim, c_.ffn_hidden(), ffn_.data(), static_cast<index_t>(rows), 2 * hidden, xn_.data(), d);
        vec(x_.data(), static_cast<Eigen::Index>(rows * d)) += cvec(xn_.data(), static_cast<Eigen::Index>(rows * d));
    }

    // logits[s][r][head] = output(norm(x))
    void head(const step_batch& b, index_t which, const float* norm_w, const float* out_w, std::span<float> logits) {
        const std::size_t rows = static_cast<std::size_t>(b.num_sequences) * static_cast<std::size_t>(b.num_rows);
        rms_norm(norm_w, rows, xn_);
        const std::size_t v = static_cast<std::size_t>(c_.vocab_size), heads = static_cast<std::size_t>(b.num_heads);
        skinny_gemm(out_w, c_.vocab_size, c_.dim, xn_.data(), static_cast<index_t>(rows), static_cast<std::size_t>(c_.dim),
                    logits.data() + static_cast<std::size_t>(which) * v, heads * v);
    }

    const models::llamagen::gpt_weights* w_;
    models::llamagen::gpt_config c_;
    rope_2d rope_;
    std::size_t rows_ = 0;
    std::vector<float> x_, xn_, attn_, qkv_, ffn_;
    attention_scratch attn_scratch_;
};

}  // namespace ordo::eigen
