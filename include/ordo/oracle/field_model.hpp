// ordo/oracle/field_model.hpp - the oracle's Gaussian field as a token model: an ordo model_for
// whose logits are the exact conditional bin probabilities of each emitted position, so that
// generate() can run any policy on it and the samples can be looked at.
//
// Tokens are K equal-probability bins of each position's marginal N(0, Σ_qq). A token fed back is
// read as its bin's median (the dequantised value); the conditional of position q given every
// position emitted before this step is then Gaussian, N(μ, σ²), and token i gets probability
// Φ((e_{i+1} − μ)/σ) − Φ((e_i − μ)/σ). Exact for the dequantised field; the quantisation itself
// costs O(bin width). Conditioning uses every earlier token, not the plan's mask: this is the
// ideal model of the oracle, whose only loss is sampling a step's tokens independently.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "../engine/generate.hpp"
#include "oracle.hpp"

namespace ordo::oracle {

class field_model {
public:
    field_model(grid_shape g, const field_kernel& k, index_t bins) : grid_(g), sigma_(field_covariance(g, k)), bins_(bins) {
        if (bins < 2) throw error("field model: need at least 2 bins, got " + ordo::detail::itos(bins));
        // edges and medians of K equal-probability bins of N(0, 1)
        z_edges_.resize(static_cast<std::size_t>(bins) + 1);
        z_mid_.resize(static_cast<std::size_t>(bins));
        z_edges_.front() = -INFINITY;
        z_edges_.back() = INFINITY;
        for (index_t i = 1; i < bins; ++i) z_edges_[static_cast<std::size_t>(i)] = normal_quantile(static_cast<double>(i) / bins);
        for (index_t i = 0; i < bins; ++i) z_mid_[static_cast<std::size_t>(i)] = normal_quantile((i + 0.5) / bins);
    }

    index_t vocab_size() const { return bins_; }
    index_t num_heads() const { return max_heads; }  // any head of any plan: each gets its target's logits
    const Eigen::MatrixXd& covariance() const { return sigma_; }

    // The field value a token stands for at position q (its bin's median).
    double value(index_t q, index_t token) const { return z_mid_[static_cast<std::size_t>(token)] * std::sqrt(sigma_(q, q)); }
    // The token of field value x at position q.
    index_t token(index_t q, double x) const {
        const double z = x / std::sqrt(sigma_(q, q));
        return static_cast<index_t>(std::upper_bound(z_edges_.begin() + 1, z_edges_.end() - 1, z) - (z_edges_.begin() + 1));
    }

    template <class C>
        requires kv_cache<C>
    void forward(const step_batch& b, C& cache, std::span<float> logits) {
        const plan_view& p = b.plan;
        if (p.grid() != grid_) throw error("field model: the plan's grid " + p.grid().str() + " is not the field's " + grid_.str());
        if (b.vocab != bins_) throw error("field model: the batch has vocab " + ordo::detail::itos(b.vocab) + ", the field " + ordo::detail::itos(bins_) + " bins");
        if (cache.width() < 1) throw error("field model: the kv cache needs width >= 1");
        if (logits.size() != b.logits_size()) throw error("field model: logits span has the wrong size for the batch");
        // feed: a token slot stores its dequantised value
        for (index_t s = 0; s < b.num_sequences; ++s)
            for (index_t r = 0; r < b.num_rows; ++r) {
                const fed_input& in = b.input(s, r);
                if (in.kind == slot_kind::token) {
                    if (in.value < 0 || in.value >= bins_) throw error("field model: token " + ordo::detail::itos(in.value) + " outside the " + ordo::detail::itos(bins_) + " bins");
                    cache.key(0, s, b.slots[static_cast<std::size_t>(r)])[0] = static_cast<typename C::value_type>(value(in.index, in.value));
                }
            }
        if (b.window_steps > 1) return forward_window(b, cache, logits);
        // what each (row, head) predicts, from the plan's contributions
        const step_view st = p.step(b.step);
        target_.assign(static_cast<std::size_t>(b.num_rows * b.num_heads), -1);
        for (index_t k = 0; k < st.num_emitted(); ++k)
            for (const contribution& c : st.from(k)) target_[static_cast<std::size_t>(c.row * b.num_heads + c.head)] = st.emitted[k];
        // the positions emitted before this step whose slots hold them by now (a stand-in's copy
        // sits in a slot until its own feed)
        own_.resize(static_cast<std::size_t>(p.num_slots()));
        own_feed_steps(p, own_);
        known_.clear();
        for (index_t slot = 0; slot < p.num_slots(); ++slot) {
            const slot_entry& e = p.slots[static_cast<std::size_t>(slot)];
            if (e.kind == slot_kind::token && own_[static_cast<std::size_t>(slot)] <= b.step && p.step_of[static_cast<std::size_t>(e.index)] < b.step)
                known_.push_back({e.index, slot});
        }
        const Eigen::Index m = static_cast<Eigen::Index>(known_.size());
        const Eigen::LLT<Eigen::MatrixXd> llt = known_factor();
        // per target: the regression weights Σ_PP⁻¹ Σ_Pq and the conditional sd, shared by every sequence
        weights_.resize(m, b.num_rows * b.num_heads);
        sd_.assign(static_cast<std::size_t>(b.num_rows * b.num_heads), 0.0);
        for (index_t t = 0; t < b.num_rows * b.num_heads; ++t) {
            const index_t q = target_[static_cast<std::size_t>(t)];
            if (q < 0) continue;
            Eigen::VectorXd spq(m);
            for (Eigen::Index i = 0; i < m; ++i) spq(i) = sigma_(known_[static_cast<std::size_t>(i)].position, q);
            if (m > 0) weights_.col(t) = llt.solve(spq);
            const double var = sigma_(q, q) - (m > 0 ? spq.dot(weights_.col(t)) : 0.0);
            sd_[static_cast<std::size_t>(t)] = std::sqrt(std::max(var, 1e-300));
        }
        for (index_t s = 0; s < b.num_sequences; ++s) {
            Eigen::VectorXd x(m);
            for (Eigen::Index i = 0; i < m; ++i) x(i) = cache.key(0, s, known_[static_cast<std::size_t>(i)].slot)[0];
            for (index_t t = 0; t < b.num_rows * b.num_heads; ++t) {
                float* out = logits.data() + (static_cast<std::size_t>(s) * static_cast<std::size_t>(b.num_rows * b.num_heads) + static_cast<std::size_t>(t)) *
                                                 static_cast<std::size_t>(bins_);
                const index_t q = target_[static_cast<std::size_t>(t)];
                if (q < 0) {  // a (row, head) this step does not read
                    std::fill(out, out + bins_, 0.0f);
                    continue;
                }
                const double mu = m > 0 ? x.dot(weights_.col(t)) : 0.0;
                bin_logits(mu, sd_[static_cast<std::size_t>(t)], std::sqrt(sigma_(q, q)), out);
            }
        }
    }

private:
    // A speculative window (jacobi.hpp): steps [step, step + window_steps) of a raster-like plan,
    // each conditioned on what was emitted before it, the window's earlier tokens (just fed) among
    // them. Those known sets are nested, so one Cholesky factor of the last step's serves every
    // step: the conditional of a target given the first m known positions uses the factor's
    // leading m x m block.
    template <class C>
    void forward_window(const step_batch& b, C& cache, std::span<float> logits) {
        const plan_view& p = b.plan;
        const index_t first = b.step, last = b.step + b.window_steps - 1;
        own_.resize(static_cast<std::size_t>(p.num_slots()));
        own_feed_steps(p, own_);
        known_.clear();
        for (index_t slot = 0; slot < p.num_slots(); ++slot) {
            const slot_entry& e = p.slots[static_cast<std::size_t>(slot)];
            if (e.kind == slot_kind::token && own_[static_cast<std::size_t>(slot)] <= first && p.step_of[static_cast<std::size_t>(e.index)] < first)
                known_.push_back({e.index, slot});
        }
        const std::size_t before = known_.size();
        for (index_t t = first; t < last; ++t) {  // the window's positions, in the order they are emitted
            const step_view st = p.step(t);
            for (index_t k = 0; k < st.num_emitted(); ++k) {
                const index_t q = st.emitted[k], slot = p.slot_of[static_cast<std::size_t>(q)];
                if (own_[static_cast<std::size_t>(slot)] > last)
                    throw error("field model: the window's position " + ordo::detail::itos(q) + " is not fed within the window");
                known_.push_back({q, slot});
            }
        }
        const Eigen::Index m = static_cast<Eigen::Index>(known_.size());
        const Eigen::LLT<Eigen::MatrixXd> llt = known_factor();
        const Eigen::MatrixXd lower = llt.matrixL();
        // z = L⁻¹ x per sequence; its first m entries are the leading block's solve
        Eigen::MatrixXd z(m, b.num_sequences);
        for (index_t s = 0; s < b.num_sequences; ++s)
            for (Eigen::Index i = 0; i < m; ++i) z(i, s) = cache.key(0, s, known_[static_cast<std::size_t>(i)].slot)[0];
        if (m > 0) lower.triangularView<Eigen::Lower>().solveInPlace(z);
        const std::size_t per_row = static_cast<std::size_t>(b.num_heads) * static_cast<std::size_t>(bins_);
        std::fill(logits.begin(), logits.end(), 0.0f);  // (row, head)s no step reads
        index_t row0 = 0, emitted_so_far = 0;
        for (index_t t = first; t <= last; ++t) {
            const step_view st = p.step(t);
            // what step t knows: the positions before the window and those the window emitted before t
            const Eigen::Index mt = static_cast<Eigen::Index>(before) + emitted_so_far;
            for (index_t k = 0; k < st.num_emitted(); ++k) {
                const index_t q = st.emitted[k];
                Eigen::VectorXd w(mt);
                for (Eigen::Index i = 0; i < mt; ++i) w(i) = sigma_(known_[static_cast<std::size_t>(i)].position, q);
                if (mt > 0) lower.topLeftCorner(mt, mt).triangularView<Eigen::Lower>().solveInPlace(w);
                const double sd = std::sqrt(std::max(sigma_(q, q) - w.squaredNorm(), 1e-300));
                for (const contribution& c : st.from(k))
                    for (index_t s = 0; s < b.num_sequences; ++s) {
                        const double mu = mt > 0 ? z.col(s).head(mt).dot(w) : 0.0;
                        float* out = logits.data() + (static_cast<std::size_t>(s) * static_cast<std::size_t>(b.num_rows) + static_cast<std::size_t>(row0 + c.row)) * per_row +
                                     static_cast<std::size_t>(c.head) * static_cast<std::size_t>(bins_);
                        bin_logits(mu, sd, std::sqrt(sigma_(q, q)), out);
                    }
            }
            row0 += st.num_rows();
            emitted_so_far += st.num_emitted();
        }
    }

    struct known_position {
        index_t position, slot;
    };

    // The Cholesky factor of the known positions' covariance (known_ in order).
    Eigen::LLT<Eigen::MatrixXd> known_factor() const {
        const Eigen::Index m = static_cast<Eigen::Index>(known_.size());
        Eigen::MatrixXd spp(m, m);
        for (Eigen::Index i = 0; i < m; ++i)
            for (Eigen::Index j = 0; j < m; ++j) spp(i, j) = sigma_(known_[static_cast<std::size_t>(i)].position, known_[static_cast<std::size_t>(j)].position);
        Eigen::LLT<Eigen::MatrixXd> llt(spp);
        if (m > 0 && llt.info() != Eigen::Success) throw error("field model: the covariance is not positive definite (raise the nugget)");
        return llt;
    }

    static double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }
    // Φ⁻¹ by bisection on erfc: slow but exact to double precision, and only run at construction
    static double normal_quantile(double p) {
        double lo = -40, hi = 40;
        for (int i = 0; i < 200 && hi - lo > 1e-15; ++i) {
            const double mid = 0.5 * (lo + hi);
            (normal_cdf(mid) < p ? lo : hi) = mid;
        }
        return 0.5 * (lo + hi);
    }
    // log P(bin i) under N(mu, sd²), bins of the marginal with standard deviation `scale`
    void bin_logits(double mu, double sd, double scale, float* out) const {
        double prev = 0.0;
        for (index_t i = 0; i < bins_; ++i) {
            const double e = z_edges_[static_cast<std::size_t>(i) + 1];
            const double c = std::isinf(e) ? 1.0 : normal_cdf((e * scale - mu) / sd);
            out[i] = static_cast<float>(std::log(std::max(c - prev, 1e-30)));
            prev = c;
        }
    }

    grid_shape grid_;
    Eigen::MatrixXd sigma_;
    index_t bins_;
    std::vector<double> z_edges_, z_mid_;
    std::vector<index_t> target_, own_;
    std::vector<known_position> known_;
    Eigen::MatrixXd weights_;  // [known positions x (row, head)]
    std::vector<double> sd_;
};

}  // namespace ordo::oracle
