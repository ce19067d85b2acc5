// ordo/eigen/lpd.hpp - the LPD decoder (mit-han-lab/lpd, models/lpd.py) on the CPU (fp32, Eigen): an
// ordo model (model_for) over any ordo kv_cache, and the official one-pass training forward.
//
// One forward pass per step batch: each fed row's input is its content (class_emb[label], or
// fake_latent for the unconditional half; token_emb[token]; mask_token for a position query) plus
// its learned pos_embed row (0 for the class slot, 1 + cell for a token, 1 + target cell for a
// query), through z_proj_ln; then timm pre-LN ViT blocks x + proj(attn(norm1(x))),
// x + fc2(gelu(fc1(norm2(x)))) with a fused qkv (with bias) and no RoPE; K/V are written at each
// row's slot and every row attends to the slots the plan's mask lets it see (attention.hpp, the
// GPT's attention). Logits = head(norm(x)).
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "../engine/generate.hpp"
#include "../mask.hpp"
#include "../models/lpd/lpd_config.hpp"
#include "../models/lpd/lpd_weights.hpp"
#include "attention.hpp"
#include "layers.hpp"
#include "skinny.hpp"

namespace ordo::eigen {

// The model. It borrows the weights (the caller owns them) and owns only per-step buffers, sized by
// prepare() (generate() calls it through check_fit) so that forward() allocates nothing.
class lpd_model {
public:
    explicit lpd_model(const models::lpd::lpd_weights& w) : w_(&w), c_(w.config()) { c_.validate(); }

    const models::lpd::lpd_config& config() const { return c_; }
    const models::lpd::lpd_weights& weights() const { return *w_; }
    index_t vocab_size() const { return c_.vocab_size; }
    index_t num_heads() const { return 1; }
    index_t num_layers() const { return c_.depth; }
    index_t cache_width() const { return c_.kv_width(); }
    // the class label that selects fake_latent (session_options::null_label for CFG)
    index_t null_label() const { return c_.null_label(); }

    // Checks that this checkpoint can run the plan (cell_table positions, the model's cell count,
    // one prefix row, one head) and sizes the step buffers for `sequences`.
    void prepare(const plan_view& p, index_t sequences) {
        models::lpd::check_plan_fit(c_, p);
        reserve(static_cast<std::size_t>(sequences) * static_cast<std::size_t>(std::max(p.max_rows_per_step(), p.header.train_slots)), p.num_slots());
    }

    // Sizes the buffers for `rows` rows per forward and `slots` kv slots (prepare() does this).
    void reserve(std::size_t rows, index_t slots) {
        buf_.reserve(c_, rows);
        attn_scratch_.reserve(slots, c_.num_heads, static_cast<index_t>(rows));
    }

    template <class C>
        requires kv_cache<C> && std::same_as<typename C::value_type, float>
    void forward(const step_batch& b, C& cache, std::span<float> logits) {
        check_batch(b, cache, logits);
        const std::size_t rows = static_cast<std::size_t>(b.num_sequences) * static_cast<std::size_t>(b.num_rows);
        reserve(rows, b.plan.num_slots());  // no-op after prepare()
        const std::size_t d = static_cast<std::size_t>(c_.dim);
        for (index_t s = 0; s < b.num_sequences; ++s)
            for (index_t r = 0; r < b.num_rows; ++r) {
                const auto in = w_->input(c_, b, s, r);
                float* dst = buf_.xn.data() + (static_cast<std::size_t>(s) * static_cast<std::size_t>(b.num_rows) + static_cast<std::size_t>(r)) * d;
                for (std::size_t j = 0; j < d; ++j) dst[j] = in.content[j] + in.pos[j];
            }
        input_norm(buf_, rows);
        const std::size_t qkv_w = static_cast<std::size_t>(c_.qkv_rows());
        const attention_heads heads{c_.num_heads, c_.num_heads, c_.head_dim()};
        for (index_t l = 0; l < c_.depth; ++l) {
            const auto& L = w_->layers[static_cast<std::size_t>(l)];
            qkv(L, buf_, rows);
            for (index_t s = 0; s < b.num_sequences; ++s)
                for (index_t r = 0; r < b.num_rows; ++r) {
                    const float* k = buf_.qkv.data() + (static_cast<std::size_t>(s) * static_cast<std::size_t>(b.num_rows) + static_cast<std::size_t>(r)) * qkv_w + d;
                    const float* v = k + d;
                    const index_t slot = b.slots[static_cast<std::size_t>(r)];
                    std::span<float> kc = cache.key(l, s, slot), vc = cache.value(l, s, slot);
                    std::copy(k, k + d, kc.begin());
                    std::copy(v, v + d, vc.begin());
                }
            visit_mask(b.plan, [&](auto mask) { attend(heads, buf_.qkv.data(), qkv_w, cache, l, b, mask, buf_.attn.data(), d, attn_scratch_); });
            finish_block(L, buf_, rows);
        }
        head(buf_, rows, logits.data());
    }

    // The official training forward (LPD.forward without the loss, models/lpd.py L83-146) in one
    // pass: sequence [cls, T_0 .. T_{N-1-g_last}] ++ [Q_0 .. Q_{N-1}] under the official group mask
    // (context token groups bidirectional, each call's queries bidirectional among themselves and
    // blind to their own group's tokens). `order[t]` is the raster cell of generation index t,
    // `tokens` the token grid in raster order, `group_sizes` the schedule (sum N), `label` the class
    // (num_classes: fake_latent). Returns logits [N][vocab]; row t predicts cell order[t].
    // Allocates its own buffers (not a decode path).
    std::vector<float> training_logits(index_t label, std::span<const index_t> order, std::span<const index_t> tokens,
                                       std::span<const index_t> group_sizes) const {
        const index_t n = c_.num_cells;
        check_training_inputs(label, order, tokens, group_sizes);
        const index_t g_last = group_sizes.back(), ctx = 1 + n - g_last, len = ctx + n;
        // group ids (models/mask.py): cls 0, context tokens of group j 2(j+1), queries of call j 2j+1
        std::vector<index_t> group_of(static_cast<std::size_t>(n));
        for (index_t j = 0, t = 0; j < static_cast<index_t>(group_sizes.size()); ++j)
            for (index_t k = 0; k < group_sizes[static_cast<std::size_t>(j)]; ++k) group_of[static_cast<std::size_t>(t++)] = j;
        std::vector<index_t> gid(static_cast<std::size_t>(len));
        gid[0] = 0;
        for (index_t t = 0; t + 1 < ctx; ++t) gid[static_cast<std::size_t>(1 + t)] = 2 * (group_of[static_cast<std::size_t>(t)] + 1);
        for (index_t t = 0; t < n; ++t) gid[static_cast<std::size_t>(ctx + t)] = 2 * group_of[static_cast<std::size_t>(t)] + 1;
        // visible kv rows of each row: same group, or an earlier group of the context
        std::vector<std::size_t> vis_off(static_cast<std::size_t>(len) + 1, 0);
        std::vector<index_t> vis;
        for (index_t q = 0; q < len; ++q) {
            for (index_t kv = 0; kv < len; ++kv) {
                const index_t gq = gid[static_cast<std::size_t>(q)], gk = gid[static_cast<std::size_t>(kv)];
                if (gq == gk || (gk < gq && kv < ctx)) vis.push_back(kv);
            }
            vis_off[static_cast<std::size_t>(q) + 1] = vis.size();
        }

        buffers buf;
        const std::size_t rows = static_cast<std::size_t>(len), d = static_cast<std::size_t>(c_.dim);
        buf.reserve(c_, rows);
        auto put = [&](index_t row, const float* content, const float* pos) {
            float* dst = buf.xn.data() + static_cast<std::size_t>(row) * d;
            for (std::size_t j = 0; j < d; ++j) dst[j] = content[j] + pos[j];
        };
        put(0, w_->class_row(c_, label), w_->pos_row(c_, -1));
        for (index_t t = 0; t + 1 < ctx; ++t) {
            const index_t cell = order[static_cast<std::size_t>(t)];
            put(1 + t, w_->token_row(c_, tokens[static_cast<std::size_t>(cell)]), w_->pos_row(c_, cell));
        }
        for (index_t t = 0; t < n; ++t) put(ctx + t, w_->mask_token, w_->pos_row(c_, order[static_cast<std::size_t>(t)]));
        input_norm(buf, rows);

        const std::size_t qkv_w = static_cast<std::size_t>(c_.qkv_rows());
        const attention_heads heads{c_.num_heads, c_.num_heads, c_.head_dim()};
        std::vector<float> scores(rows * static_cast<std::size_t>(c_.num_heads));
        for (index_t l = 0; l < c_.depth; ++l) {
            const auto& L = w_->layers[static_cast<std::size_t>(l)];
            qkv(L, buf, rows);
            for (std::size_t q = 0; q < rows; ++q) {
                const index_t* v = vis.data() + vis_off[q];
                const index_t nv = static_cast<index_t>(vis_off[q + 1] - vis_off[q]);
                attend_row(
                    heads, buf.qkv.data() + q * qkv_w, nv, 0, [&](index_t j) { return buf.qkv.data() + static_cast<std::size_t>(v[j]) * qkv_w + d; },
                    [&](index_t j) { return buf.qkv.data() + static_cast<std::size_t>(v[j]) * qkv_w + 2 * d; }, scores.data(), rows, buf.attn.data() + q * d);
            }
            finish_block(L, buf, rows);
        }
        // keep the last N rows (the queries): row t predicts order[t]
        std::vector<float> logits(static_cast<std::size_t>(n) * static_cast<std::size_t>(c_.vocab_size));
        layer_norm(buf.x.data() + static_cast<std::size_t>(ctx) * d, d, static_cast<std::size_t>(n), c_.dim, w_->norm_w, w_->norm_b, c_.norm_eps, buf.xn.data(), d);
        skinny_gemm(w_->head, c_.vocab_size, c_.dim, buf.xn.data(), n, d, logits.data(), static_cast<std::size_t>(c_.vocab_size));
        return logits;
    }

private:
    // Activations of `rows` rows: x (the residual stream), xn (normed rows, block outputs), qkv,
    // attn (attention output), mlp (fc1 output).
    struct buffers {
        std::size_t rows = 0;
        std::vector<float> x, xn, qkv, attn, mlp;
        void reserve(const models::lpd::lpd_config& c, std::size_t n) {
            if (n <= rows) return;
            rows = n;
            const std::size_t d = static_cast<std::size_t>(c.dim);
            x.resize(n * d);
            xn.resize(n * d);
            attn.resize(n * d);
            qkv.resize(n * static_cast<std::size_t>(c.qkv_rows()));
            mlp.resize(n * static_cast<std::size_t>(c.mlp_hidden));
        }
    };

    template <class C>
    void check_batch(const step_batch& b, C& cache, std::span<float> logits) const {
        if (b.vocab != c_.vocab_size) throw error("lpd forward: the batch has vocab " + ordo::detail::itos(b.vocab) + ", the model " + ordo::detail::itos(c_.vocab_size));
        if (b.num_heads != 1) throw error("lpd forward: the batch reads " + ordo::detail::itos(b.num_heads) + " heads, an LPD model has 1");
        if (logits.size() != b.logits_size()) throw error("lpd forward: logits span has the wrong size for the batch");
        if (cache.num_layers() < c_.depth || cache.width() != c_.kv_width())
            throw error("lpd forward: the kv cache has " + ordo::detail::itos(cache.num_layers()) + " layers of width " + ordo::detail::itos(cache.width()) +
                        ", the model needs " + ordo::detail::itos(c_.depth) + " of width " + ordo::detail::itos(c_.kv_width()));
    }

    void check_training_inputs(index_t label, std::span<const index_t> order, std::span<const index_t> tokens, std::span<const index_t> group_sizes) const {
        const index_t n = c_.num_cells;
        auto count = [](std::size_t s) { return ordo::detail::itos(static_cast<long long>(s)); };
        if (static_cast<index_t>(order.size()) != n || static_cast<index_t>(tokens.size()) != n)
            throw error("lpd training forward: " + count(order.size()) + " order entries and " + count(tokens.size()) + " tokens given, the model has " +
                        ordo::detail::itos(n) + " cells");
        std::vector<char> seen(static_cast<std::size_t>(n), 0);
        for (index_t cell : order) {
            if (cell < 0 || cell >= n || seen[static_cast<std::size_t>(cell)])
                throw error("lpd training forward: the order is not a permutation of the " + ordo::detail::itos(n) + " cells (cell " + ordo::detail::itos(cell) + ")");
            seen[static_cast<std::size_t>(cell)] = 1;
        }
        for (index_t t : tokens)
            if (t < 0 || t >= c_.vocab_size) throw error("lpd training forward: token " + ordo::detail::itos(t) + " outside the vocabulary of " + ordo::detail::itos(c_.vocab_size));
        long long sum = 0;
        for (index_t g : group_sizes) {
            if (g < 1) throw error("lpd training forward: group sizes must be >= 1, got " + ordo::detail::itos(g));
            sum += g;
        }
        if (group_sizes.empty() || sum != n)
            throw error("lpd training forward: the group sizes sum to " + ordo::detail::itos(sum) + ", the model has " + ordo::detail::itos(n) + " cells");
        if (label < 0 || label > c_.num_classes)
            throw error("lpd training forward: class label " + ordo::detail::itos(label) + " outside 0.." + ordo::detail::itos(c_.num_classes) + " (" +
                        ordo::detail::itos(c_.num_classes) + ": fake_latent)");
    }

    // x = z_proj_ln(xn): the input rows (content + pos_embed) sit in xn.
    void input_norm(buffers& buf, std::size_t rows) const {
        const std::size_t d = static_cast<std::size_t>(c_.dim);
        layer_norm(buf.xn.data(), d, rows, c_.dim, w_->z_proj_ln_w, w_->z_proj_ln_b, c_.norm_eps, buf.x.data(), d);
    }

    // qkv = qkv(norm1(x)), with bias
    void qkv(const models::lpd::lpd_weights::layer& L, buffers& buf, std::size_t rows) const {
        const std::size_t d = static_cast<std::size_t>(c_.dim), qkv_w = static_cast<std::size_t>(c_.qkv_rows());
        layer_norm(buf.x.data(), d, rows, c_.dim, L.norm1_w, L.norm1_b, c_.norm_eps, buf.xn.data(), d);
        skinny_gemm(L.qkv_w, c_.qkv_rows(), c_.dim, buf.xn.data(), static_cast<index_t>(rows), d, buf.qkv.data(), qkv_w);
        add_bias(buf.qkv.data(), qkv_w, rows, qkv_w, L.qkv_b);
    }

    // x += proj(attn); x += fc2(gelu(fc1(norm2(x))))
    void finish_block(const models::lpd::lpd_weights::layer& L, buffers& buf, std::size_t rows) const {
        using vec = Eigen::Map<Eigen::VectorXf>;
        using cvec = Eigen::Map<const Eigen::VectorXf>;
        const std::size_t d = static_cast<std::size_t>(c_.dim), hidden = static_cast<std::size_t>(c_.mlp_hidden);
        const Eigen::Index all = static_cast<Eigen::Index>(rows * d);
        skinny_gemm(L.proj_w, c_.dim, c_.dim, buf.attn.data(), static_cast<index_t>(rows), d, buf.xn.data(), d);
        add_bias(buf.xn.data(), d, rows, d, L.proj_b);
        vec(buf.x.data(), all) += cvec(buf.xn.data(), all);
        layer_norm(buf.x.data(), d, rows, c_.dim, L.norm2_w, L.norm2_b, c_.norm_eps, buf.xn.data(), d);
        skinny_gemm(L.fc1_w, c_.mlp_hidden, c_.dim, buf.xn.data(), static_cast<index_t>(rows), d, buf.mlp.data(), hidden);
        add_bias(buf.mlp.data(), hidden, rows, hidden, L.fc1_b);
        gelu_erf(buf.mlp.data(), rows * hidden);
        skinny_gemm(L.fc2_w, c_.dim, c_.mlp_hidden, buf.mlp.data(), static_cast<index_t>(rows), hidden, buf.xn.data(), d);
        add_bias(buf.xn.data(), d, rows, d, L.fc2_b);
        vec(buf.x.data(), all) += cvec(buf.xn.data(), all);
    }

    // logits[row] = head(norm(x[row])) for every row
    void head(buffers& buf, std::size_t rows, float* logits) const {
        const std::size_t d = static_cast<std::size_t>(c_.dim);
        layer_norm(buf.x.data(), d, rows, c_.dim, w_->norm_w, w_->norm_b, c_.norm_eps, buf.xn.data(), d);
        skinny_gemm(w_->head, c_.vocab_size, c_.dim, buf.xn.data(), static_cast<index_t>(rows), d, logits, static_cast<std::size_t>(c_.vocab_size));
    }

    const models::lpd::lpd_weights* w_;
    models::lpd::lpd_config c_;
    buffers buf_;
    attention_scratch attn_scratch_;
};

}  // namespace ordo::eigen
