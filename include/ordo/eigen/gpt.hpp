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
#include "skinny.hpp"

namespace ordo::eigen {

// The model. It borrows the weights (the caller owns them) and owns only per-step buffers, sized
// by prepare() (generate() calls it through check_fit) so that forward() allocates nothing.
class gpt_model {
public:
    explicit gpt_model(const models::llamagen::gpt_weights& w) : w_(&w), c_(w.config()) {
        c_.validate();
        const index_t hd2 = c_.head_dim() / 4;  // rotation pairs per axis
        freqs_.resize(static_cast<std::size_t>(hd2));
        for (index_t k = 0; k < hd2; ++k)  // fp32 as the official table: 1 / base^(2k / (head_dim/2))
            freqs_[static_cast<std::size_t>(k)] =
                1.0f / std::pow(c_.rope_base, static_cast<float>(2 * k) / static_cast<float>(c_.head_dim() / 2));
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
                    for (index_t h = 0; h < c_.n_head; ++h) rope(dst + static_cast<std::size_t>(h) * hd, rc);
                }
            }
    }

    // out = x / rms(x) * weight, row by row (the official RMSNorm, in fp32)
    void rms_norm(const float* weight, std::size_t rows, std::vector<float>& out) const {
        const std::size_t d = static_cast<std::size_t>(c_.dim);
        const cvec wv(weight, c_.dim);
        for (std::size_t i = 0; i < rows; ++i) {
            const cvec x(x_.data() + i * d, c_.dim);
            const float inv = 1.0f / std::sqrt(x.squaredNorm() / static_cast<float>(c_.dim) + c_.norm_eps);
            vec(out.data() + i * d, c_.dim) = (x * inv).cwiseProduct(wv);
        }
    }

    // Rotates the interleaved pairs (x[2j], x[2j+1]) of one head: the first head_dim/4 pairs by
    // row * f_j, the rest by col * f_(j - head_dim/4). A zero coordinate zeroes the head.
    void rope(float* x, const rope_coord& rc) const {
        const index_t hd = c_.head_dim(), q = hd / 4;
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

    // Row r's rotation in sequence s: the batch's per-row one, or, when requests bring their own
    // orders, the cell the row is at in that sequence (-1: a zero row).
    static rope_coord row_rope(const step_batch& b, index_t s, index_t r) {
        if (!b.per_request_positions) return b.rope[static_cast<std::size_t>(r)];
        const index_t cell = b.input(s, r).cell;
        return cell < 0 ? rope_coord{} : rope_coord{false, b.plan.grid().at(cell)};
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
                for (index_t h = 0; h < nh + nkv; ++h) rope(q + static_cast<std::size_t>(h * hd), rc);
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
        for (std::size_t i = 0; i < rows; ++i) {
            float* g = ffn_.data() + i * 2 * hidden;
            const float* u = g + hidden;
            for (std::size_t j = 0; j < hidden; ++j) g[j] = g[j] / (1.0f + std::exp(-g[j])) * u[j];
        }
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
    std::vector<float> freqs_;
    std::size_t rows_ = 0;
    std::vector<float> x_, xn_, attn_, qkv_, ffn_;
    attention_scratch attn_scratch_;
};

}  // namespace ordo::eigen
