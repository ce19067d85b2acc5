// ordo/eigen/arpg.hpp - ARPG's two-pass decoder (hp-l33/ARPG, models/arpg.py) on the CPU (fp32, Eigen):
// an ordo model (model_for) over any ordo kv_cache, and the official one-pass training forward.
//
// One forward pass per step batch of a query_mode::cross plan. The token rows (the class row in
// step 0, then the previous call's tokens) run through the self-decoder: LlamaGen-style blocks
// x + proj(attn(RMSNorm(x))), x + w2(silu(w1 x) * w3 x) with 2D RoPE of the row's own cell, K/V
// written at each row's slot in cache layers 0..n_self-1, attention under the plan's mask (a fed
// group sees the cache and itself: ARPG's unmasked inference). Their normed output then gives the
// shared K/V (layers.norm, layers.to_k with RoPE, layers.to_v), written at the row's slot in cache
// layer n_self. The query rows ([MASK] embeddings) run through the cross-decoder: q = to_q with RoPE
// of the target cell, attending to the shared K/V of every slot written through the step, never
// written themselves. Logits = head(norm(x)) for query rows; token rows get zeros.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "../engine/generate.hpp"
#include "../mask.hpp"
#include "../models/arpg/arpg_config.hpp"
#include "../models/arpg/arpg_weights.hpp"
#include "attention.hpp"
#include "layers.hpp"
#include "skinny.hpp"

namespace ordo::eigen {

// The model. It borrows the weights (the caller owns them) and owns only per-step buffers, sized by
// prepare() (generate() calls it through check_fit) so that forward() allocates nothing.
//
// Cache layout: num_layers() = n_self + 1 layers of width dim: layer l < n_self holds self-decoder
// block l's K/V (k rotated), layer n_self the shared K/V the cross-decoder reads (k rotated). Only
// token and class slots are written; query rows write nothing.
class arpg_model {
public:
    explicit arpg_model(const models::arpg::arpg_weights& w) : w_(&w), c_(w.config()) {
        c_.validate();
        rope_ = rope_2d(c_.head_dim(), c_.rope_base);
    }

    const models::arpg::arpg_config& config() const { return c_; }
    const models::arpg::arpg_weights& weights() const { return *w_; }
    index_t vocab_size() const { return c_.vocab_size; }
    index_t num_heads() const { return 1; }
    index_t num_layers() const { return c_.cache_layers(); }
    index_t cache_width() const { return c_.kv_width(); }
    // the class label that selects none_conds_id (session_options::null_label for CFG)
    index_t null_label() const { return c_.null_label(); }

    // Checks that this checkpoint can run the plan (cross queries, 2D RoPE, one prefix row, one
    // head, replayed teacher forcing) and sizes the step buffers for `sequences`.
    void prepare(const plan_view& p, index_t sequences) {
        models::arpg::check_plan_fit(c_, p);
        reserve(static_cast<std::size_t>(sequences) * static_cast<std::size_t>(p.max_rows_per_step()), p.num_slots());
    }

    // Sizes the buffers for `rows` rows per forward and `slots` kv slots (prepare() does this).
    void reserve(std::size_t rows, index_t slots) {
        buf_.reserve(c_, rows);
        if (rows > row_list_.size()) {
            row_list_.resize(rows);
            head_out_.resize(rows * static_cast<std::size_t>(c_.vocab_size));
        }
        attn_scratch_.reserve(slots, c_.n_head, static_cast<index_t>(rows));
    }

    template <class C>
        requires kv_cache<C> && std::same_as<typename C::value_type, float>
    void forward(const step_batch& b, C& cache, std::span<float> logits) {
        check_batch(b, cache, logits);
        const std::size_t all = static_cast<std::size_t>(b.num_sequences) * static_cast<std::size_t>(b.num_rows);
        reserve(all, b.plan.num_slots());  // no-op after prepare()
        const std::size_t d = static_cast<std::size_t>(c_.dim), v = static_cast<std::size_t>(c_.vocab_size);
        // token rows first in row_list_, query rows after them
        index_t nt = 0, nq = 0;
        for (index_t r = 0; r < b.num_rows; ++r)
            if (b.input(0, r).kind != slot_kind::query) row_list_[static_cast<std::size_t>(nt++)] = r;
        for (index_t r = 0; r < b.num_rows; ++r)
            if (b.input(0, r).kind == slot_kind::query) row_list_[static_cast<std::size_t>(nt + nq++)] = r;
        for (index_t s = 1; s < b.num_sequences; ++s)
            for (index_t r = 0; r < b.num_rows; ++r)
                if ((b.input(s, r).kind == slot_kind::query) != (b.input(0, r).kind == slot_kind::query))
                    throw error("arpg forward: row " + ordo::detail::itos(r) + " is a query in one sequence and not in another");
        const index_t* tok = row_list_.data();
        const index_t* qry = row_list_.data() + nt;
        const attention_heads heads{c_.n_head, c_.n_head, c_.head_dim()};
        std::fill(logits.begin(), logits.end(), 0.0f);

        // self-decoder over the token rows, then the shared K/V
        if (nt > 0) {
            const std::size_t rows = static_cast<std::size_t>(b.num_sequences) * static_cast<std::size_t>(nt);
            for (index_t s = 0; s < b.num_sequences; ++s)
                for (index_t i = 0; i < nt; ++i) {
                    const float* src = w_->input_row(c_, b, s, tok[i]);
                    std::copy(src, src + d, buf_.x.data() + (static_cast<std::size_t>(s) * static_cast<std::size_t>(nt) + static_cast<std::size_t>(i)) * d);
                }
            const auto token_row = [tok](index_t i) { return tok[i]; };
            for (index_t l = 0; l < c_.n_self; ++l) {
                const auto& L = w_->self_layers[static_cast<std::size_t>(l)];
                project(buf_, rows, L.attn_norm, L.wqkv, 3 * c_.dim);
                write_self_kv(b, cache, l, nt, tok);
                visit_mask(b.plan, [&](auto mask) { attend_rows(heads, buf_.qkv.data(), 3 * d, cache, l, b, mask, nt, token_row, buf_.attn.data(), d, attn_scratch_); });
                finish(buf_, rows, L.proj, L.ffn_norm, L.w13, L.w2);
            }
            project(buf_, rows, w_->shared_norm, w_->shared_kv, 2 * c_.dim);
            write_shared_kv(b, cache, nt, tok);
        }

        // cross-decoder over the query rows, against the shared K/V written through this step
        if (nq > 0) {
            const std::size_t rows = static_cast<std::size_t>(b.num_sequences) * static_cast<std::size_t>(nq);
            const float* mask_row = w_->mask_row(c_);
            for (std::size_t i = 0; i < rows; ++i) std::copy(mask_row, mask_row + d, buf_.x.data() + i * d);
            const index_t* fs = b.plan.fed_step.data();
            const index_t step = b.step;
            const auto through_step = [fs, step](index_t, index_t kv) { return written(fs, kv, step); };
            const auto query_row = [qry](index_t i) { return qry[i]; };
            for (const auto& L : w_->cross_layers) {
                project(buf_, rows, L.attn_norm, L.wq, c_.dim);
                for (index_t s = 0; s < b.num_sequences; ++s)
                    for (index_t i = 0; i < nq; ++i)
                        rotate_heads(buf_.qkv.data() + (static_cast<std::size_t>(s) * static_cast<std::size_t>(nq) + static_cast<std::size_t>(i)) * d, c_.n_head,
                                     row_rope(b, s, qry[i]));
                attend_rows(heads, buf_.qkv.data(), d, cache, c_.shared_layer(), b, through_step, nq, query_row, buf_.attn.data(), d, attn_scratch_);
                finish(buf_, rows, L.proj, L.ffn_norm, L.w13, L.w2);
            }
            rms_norm(buf_.x.data(), d, rows, c_.dim, w_->norm, c_.norm_eps, buf_.xn.data(), d);
            skinny_gemm(w_->head, c_.vocab_size, c_.dim, buf_.xn.data(), static_cast<index_t>(rows), d, head_out_.data(), v);
            for (index_t s = 0; s < b.num_sequences; ++s)
                for (index_t i = 0; i < nq; ++i) {
                    const float* src = head_out_.data() + (static_cast<std::size_t>(s) * static_cast<std::size_t>(nq) + static_cast<std::size_t>(i)) * v;
                    std::copy(src, src + v, logits.data() + (static_cast<std::size_t>(s) * static_cast<std::size_t>(b.num_rows) + static_cast<std::size_t>(qry[i])) * v);
                }
        }
    }

    // The official training forward (Transformer.forward without label drop and loss,
    // models/arpg.py L430-451) in one pass, on grid `g` (the official model: square, G = sqrt(N)):
    // the self-decoder runs causally over [cls, t_0 .. t_{N-2}] (t_j the token of cell order[j],
    // RoPE of its cell; the class row's rotation is zero), the shared K/V is taken from its output,
    // and N [MASK] queries, query j rotated by RoPE(order[j]), each attend to shared rows [0, j] (the
    // class and t_0 .. t_{j-1}). `tokens` is the token grid in raster order, `label` the class
    // (num_classes: none_conds_id). Returns logits [N][vocab]; row j predicts cell order[j].
    // Allocates its own buffers (not a decode path).
    std::vector<float> training_logits(index_t label, std::span<const index_t> order, std::span<const index_t> tokens, grid_shape g) const {
        const index_t n = g.size();
        check_training_inputs(label, order, tokens, g);
        const std::size_t rows = static_cast<std::size_t>(n), d = static_cast<std::size_t>(c_.dim);
        buffers buf;
        buf.reserve(c_, rows);
        std::vector<float> shared(rows * 2 * d), scores(rows * static_cast<std::size_t>(c_.n_head));
        const attention_heads heads{c_.n_head, c_.n_head, c_.head_dim()};
        auto self_rope = [&](std::size_t i) { return i == 0 ? rope_coord{} : rope_coord{false, g.at(order[i - 1])}; };
        // self-decoder input: the class row, then the first N-1 tokens in generation order
        const float* cls = w_->class_row(c_, label);
        std::copy(cls, cls + d, buf.x.data());
        for (std::size_t i = 1; i < rows; ++i) {
            const float* src = w_->token_row(c_, tokens[static_cast<std::size_t>(order[i - 1])]);
            std::copy(src, src + d, buf.x.data() + i * d);
        }
        const std::size_t qkv_w = 3 * d;
        for (const auto& L : w_->self_layers) {
            project(buf, rows, L.attn_norm, L.wqkv, 3 * c_.dim);
            for (std::size_t i = 0; i < rows; ++i) rotate_heads(buf.qkv.data() + i * qkv_w, 2 * c_.n_head, self_rope(i));
            for (std::size_t i = 0; i < rows; ++i)  // causal
                attend_row(
                    heads, buf.qkv.data() + i * qkv_w, static_cast<index_t>(i + 1), 0, [&](index_t j) { return buf.qkv.data() + static_cast<std::size_t>(j) * qkv_w + d; },
                    [&](index_t j) { return buf.qkv.data() + static_cast<std::size_t>(j) * qkv_w + 2 * d; }, scores.data(), rows, buf.attn.data() + i * d);
            finish(buf, rows, L.proj, L.ffn_norm, L.w13, L.w2);
        }
        project(buf, rows, w_->shared_norm, w_->shared_kv, 2 * c_.dim);
        std::copy(buf.qkv.data(), buf.qkv.data() + rows * 2 * d, shared.data());
        for (std::size_t i = 0; i < rows; ++i) rotate_heads(shared.data() + i * 2 * d, c_.n_head, self_rope(i));
        // cross-decoder: query j sees shared rows [0, j]
        const float* mask_row = w_->mask_row(c_);
        for (std::size_t i = 0; i < rows; ++i) std::copy(mask_row, mask_row + d, buf.x.data() + i * d);
        for (const auto& L : w_->cross_layers) {
            project(buf, rows, L.attn_norm, L.wq, c_.dim);
            for (std::size_t j = 0; j < rows; ++j) rotate_heads(buf.qkv.data() + j * d, c_.n_head, rope_coord{false, g.at(order[j])});
            for (std::size_t j = 0; j < rows; ++j)
                attend_row(
                    heads, buf.qkv.data() + j * d, static_cast<index_t>(j + 1), 0, [&](index_t k) { return shared.data() + static_cast<std::size_t>(k) * 2 * d; },
                    [&](index_t k) { return shared.data() + static_cast<std::size_t>(k) * 2 * d + d; }, scores.data(), rows, buf.attn.data() + j * d);
            finish(buf, rows, L.proj, L.ffn_norm, L.w13, L.w2);
        }
        std::vector<float> logits(rows * static_cast<std::size_t>(c_.vocab_size));
        rms_norm(buf.x.data(), d, rows, c_.dim, w_->norm, c_.norm_eps, buf.xn.data(), d);
        skinny_gemm(w_->head, c_.vocab_size, c_.dim, buf.xn.data(), n, d, logits.data(), static_cast<std::size_t>(c_.vocab_size));
        return logits;
    }
    // The same on the official square grid: N = order.size() must be a square, G = sqrt(N).
    std::vector<float> training_logits(index_t label, std::span<const index_t> order, std::span<const index_t> tokens) const {
        index_t side = 0;
        while (static_cast<long long>(side + 1) * (side + 1) <= static_cast<long long>(order.size())) ++side;
        if (side < 1 || static_cast<std::size_t>(side) * static_cast<std::size_t>(side) != order.size())
            throw error("arpg training forward: " + ordo::detail::itos(static_cast<long long>(order.size())) +
                        " order entries is not a square grid (give the grid_shape)");
        return training_logits(label, order, tokens, grid_shape::make(side, side));
    }

private:
    // Activations of `rows` rows: x (the residual stream), xn (normed rows, block outputs), qkv
    // (projections: [q|k|v], [k|v] or q), attn (attention output), ffn (w1 x | w3 x).
    struct buffers {
        std::size_t rows = 0;
        std::vector<float> x, xn, qkv, attn, ffn;
        void reserve(const models::arpg::arpg_config& c, std::size_t n) {
            if (n <= rows) return;
            rows = n;
            const std::size_t d = static_cast<std::size_t>(c.dim);
            x.resize(n * d);
            xn.resize(n * d);
            attn.resize(n * d);
            qkv.resize(n * 3 * d);
            ffn.resize(n * 2 * static_cast<std::size_t>(c.ffn_hidden));
        }
    };

    template <class C>
    void check_batch(const step_batch& b, C& cache, std::span<float> logits) const {
        if (b.vocab != c_.vocab_size) throw error("arpg forward: the batch has vocab " + ordo::detail::itos(b.vocab) + ", the model " + ordo::detail::itos(c_.vocab_size));
        if (b.num_heads != 1) throw error("arpg forward: the batch reads " + ordo::detail::itos(b.num_heads) + " heads, an ARPG model has 1");
        if (logits.size() != b.logits_size()) throw error("arpg forward: logits span has the wrong size for the batch");
        if (b.plan.header.queries != query_mode::cross)
            throw error("arpg forward: the plan's query rows are in_cache; ARPG's cross-decoder queries need a query_mode::cross plan");
        if (cache.num_layers() < c_.cache_layers() || cache.width() != c_.kv_width())
            throw error("arpg forward: the kv cache has " + ordo::detail::itos(cache.num_layers()) + " layers of width " + ordo::detail::itos(cache.width()) +
                        ", the model needs " + ordo::detail::itos(c_.cache_layers()) + " (" + ordo::detail::itos(c_.n_self) + " self-decoder + 1 shared) of width " +
                        ordo::detail::itos(c_.kv_width()));
    }

    void check_training_inputs(index_t label, std::span<const index_t> order, std::span<const index_t> tokens, grid_shape g) const {
        const index_t n = g.size();
        auto count = [](std::size_t s) { return ordo::detail::itos(static_cast<long long>(s)); };
        if (g.frames() != 1) throw error("arpg training forward: grid " + g.str() + " has a time axis; 2D RoPE takes image grids");
        if (static_cast<index_t>(order.size()) != n || static_cast<index_t>(tokens.size()) != n)
            throw error("arpg training forward: " + count(order.size()) + " order entries and " + count(tokens.size()) + " tokens given, the grid " + g.str() + " has " +
                        ordo::detail::itos(n) + " cells");
        std::vector<char> seen(static_cast<std::size_t>(n), 0);
        for (index_t cell : order) {
            if (cell < 0 || cell >= n || seen[static_cast<std::size_t>(cell)])
                throw error("arpg training forward: the order is not a permutation of the " + ordo::detail::itos(n) + " cells (cell " + ordo::detail::itos(cell) + ")");
            seen[static_cast<std::size_t>(cell)] = 1;
        }
        for (index_t t : tokens)
            if (t < 0 || t >= c_.vocab_size) throw error("arpg training forward: token " + ordo::detail::itos(t) + " outside the vocabulary of " + ordo::detail::itos(c_.vocab_size));
        if (label < 0 || label > c_.num_classes)
            throw error("arpg training forward: class label " + ordo::detail::itos(label) + " outside 0.." + ordo::detail::itos(c_.num_classes) + " (" +
                        ordo::detail::itos(c_.num_classes) + ": none_conds_id)");
    }

    // Rotates `n` heads of head_dim at x by rc.
    void rotate_heads(float* x, index_t n, const rope_coord& rc) const {
        for (index_t h = 0; h < n; ++h) rope_.rotate(x + static_cast<std::size_t>(h) * static_cast<std::size_t>(c_.head_dim()), rc);
    }

    // qkv = W rms_norm(x) for `rows` rows; W is [out x dim], qkv rows `out` floats apart.
    void project(buffers& buf, std::size_t rows, const float* norm_w, const float* w, index_t out) const {
        const std::size_t d = static_cast<std::size_t>(c_.dim);
        rms_norm(buf.x.data(), d, rows, c_.dim, norm_w, c_.norm_eps, buf.xn.data(), d);
        skinny_gemm(w, out, c_.dim, buf.xn.data(), static_cast<index_t>(rows), d, buf.qkv.data(), static_cast<std::size_t>(out));
    }

    // x += proj(attn); x += w2(silu(w1 h) * w3 h), h = ffn_norm(x)
    void finish(buffers& buf, std::size_t rows, const float* proj, const float* ffn_norm, const float* w13, const float* w2) const {
        using vec = Eigen::Map<Eigen::VectorXf>;
        using cvec = Eigen::Map<const Eigen::VectorXf>;
        const std::size_t d = static_cast<std::size_t>(c_.dim), hidden = static_cast<std::size_t>(c_.ffn_hidden);
        const Eigen::Index all = static_cast<Eigen::Index>(rows * d);
        skinny_gemm(proj, c_.dim, c_.dim, buf.attn.data(), static_cast<index_t>(rows), d, buf.xn.data(), d);
        vec(buf.x.data(), all) += cvec(buf.xn.data(), all);
        rms_norm(buf.x.data(), d, rows, c_.dim, ffn_norm, c_.norm_eps, buf.xn.data(), d);
        skinny_gemm(w13, 2 * c_.ffn_hidden, c_.dim, buf.xn.data(), static_cast<index_t>(rows), d, buf.ffn.data(), 2 * hidden);
        swiglu(buf.ffn.data(), rows, hidden);
        skinny_gemm(w2, c_.dim, c_.ffn_hidden, buf.ffn.data(), static_cast<index_t>(rows), 2 * hidden, buf.xn.data(), d);
        vec(buf.x.data(), all) += cvec(buf.xn.data(), all);
    }

    // Self-decoder block l ([q | k | v] rows of 3 dim in qkv): q and k rotated by each token row's
    // own cell, k and v written to cache layer l at the row's slot.
    template <class C>
    void write_self_kv(const step_batch& b, C& cache, index_t l, index_t nt, const index_t* tok) {
        const std::size_t d = static_cast<std::size_t>(c_.dim);
        for (index_t s = 0; s < b.num_sequences; ++s)
            for (index_t i = 0; i < nt; ++i) {
                float* q = buf_.qkv.data() + (static_cast<std::size_t>(s) * static_cast<std::size_t>(nt) + static_cast<std::size_t>(i)) * 3 * d;
                rotate_heads(q, 2 * c_.n_head, row_rope(b, s, tok[i]));
                const float* k = q + d;
                const index_t slot = b.slots[static_cast<std::size_t>(tok[i])];
                std::span<float> kc = cache.key(l, s, slot), vc = cache.value(l, s, slot);
                std::copy(k, k + d, kc.begin());
                std::copy(k + d, k + 2 * d, vc.begin());
            }
    }

    // The shared K/V ([k | v] rows of 2 dim in qkv): k rotated by the row's own cell, both written
    // to the shared cache layer at the row's slot.
    template <class C>
    void write_shared_kv(const step_batch& b, C& cache, index_t nt, const index_t* tok) {
        const std::size_t d = static_cast<std::size_t>(c_.dim);
        for (index_t s = 0; s < b.num_sequences; ++s)
            for (index_t i = 0; i < nt; ++i) {
                float* k = buf_.qkv.data() + (static_cast<std::size_t>(s) * static_cast<std::size_t>(nt) + static_cast<std::size_t>(i)) * 2 * d;
                rotate_heads(k, c_.n_head, row_rope(b, s, tok[i]));
                const index_t slot = b.slots[static_cast<std::size_t>(tok[i])];
                std::span<float> kc = cache.key(c_.shared_layer(), s, slot), vc = cache.value(c_.shared_layer(), s, slot);
                std::copy(k, k + d, kc.begin());
                std::copy(k + d, k + 2 * d, vc.begin());
            }
    }

    const models::arpg::arpg_weights* w_;
    models::arpg::arpg_config c_;
    rope_2d rope_;
    buffers buf_;
    std::vector<index_t> row_list_;   // the batch's token rows, then its query rows
    std::vector<float> head_out_;     // query rows' logits before they go to their batch rows
    attention_scratch attn_scratch_;
};

}  // namespace ordo::eigen
