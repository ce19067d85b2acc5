// ordo/oracle/oracle.hpp - the exact quality cost of a decode order on a Gaussian token field.
//
// Tokens emitted in one step are sampled independently given the earlier steps, so their joint
// dependence is lost. For a zero-mean Gaussian field with covariance Σ and an exact model of its
// conditionals, that loss has a closed form (design.md §5): with Σ in emission order factored by
// steps as Σ = U·B·Uᵀ (U unit block-lower-triangular, B_k the covariance of step k's tokens given
// every earlier step), an order generates N(0, U·diag(B)·Uᵀ), and
//
//   KL(generated ‖ true) = ½ Σ_k [ tr(B_k⁻¹ diag B_k) − |S_k| + ln det B_k − Σ_i ln (B_k)_ii ].
//
// One Cholesky factor L of the permuted Σ gives every B_k: B_k = L_kk L_kkᵀ (the Schur complement
// of the earlier steps), so a plan costs one N×N factorisation plus small per-step solves.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "../grid.hpp"
#include "../plan.hpp"

namespace ordo::oracle {

enum class kernel_shape : std::uint8_t {
    exponential,          // exp(-‖d‖ / ℓ): rough fields, long tails
    squared_exponential,  // exp(-‖d‖² / (2ℓ²)): smooth fields
};

// A stationary covariance over grid cells: variance · k(d) + nugget · [a == b]. ‖d‖ is the
// Euclidean distance in tokens after dividing each axis by its own length scale (anisotropic ℓ).
struct field_kernel {
    kernel_shape shape = kernel_shape::exponential;
    double ell_t = 2.0, ell_h = 2.0, ell_w = 2.0;  // dependency range per axis, in tokens
    double variance = 1.0;
    double nugget = 1e-4;  // independent noise: keeps Σ positive definite for any ℓ

    static field_kernel isotropic(kernel_shape s, double ell, double nugget = 1e-4) { return {s, ell, ell, ell, 1.0, nugget}; }

    void validate() const {
        if (!(ell_t > 0) || !(ell_h > 0) || !(ell_w > 0) || !std::isfinite(ell_t) || !std::isfinite(ell_h) || !std::isfinite(ell_w))
            throw error("field kernel: every length scale must be finite and > 0");
        if (!(variance > 0) || !std::isfinite(variance)) throw error("field kernel: variance must be finite and > 0");
        if (!(nugget >= 0) || !std::isfinite(nugget)) throw error("field kernel: nugget must be finite and >= 0");
    }
    double operator()(const coord& a, const coord& b) const {
        const double dt = (a.t - b.t) / ell_t, dh = (a.h - b.h) / ell_h, dw = (a.w - b.w) / ell_w;
        const double r2 = dt * dt + dh * dh + dw * dw;
        const double k = shape == kernel_shape::exponential ? std::exp(-std::sqrt(r2)) : std::exp(-0.5 * r2);
        return variance * k + (r2 == 0.0 ? nugget : 0.0);
    }
    std::string str() const {
        std::string s = shape == kernel_shape::exponential ? "exp" : "sqexp";
        auto num = [](double v) {
            std::string t = std::to_string(v);
            while (t.size() > 1 && t.back() == '0') t.pop_back();
            if (!t.empty() && t.back() == '.') t.pop_back();
            return t;
        };
        s += ", l=" + (ell_t == ell_h && ell_h == ell_w ? num(ell_h) : num(ell_t) + "/" + num(ell_h) + "/" + num(ell_w));
        return s + ", nugget=" + num(nugget);
    }
};

// The oracle's memory for an n-position grid at its peak: three n x n matrices of doubles (Σ, Σ in
// emission order and its Cholesky factor). Saturates instead of overflowing.
constexpr std::uint64_t oracle_bytes(index_t n) {
    if (n > (index_t{1} << 28)) return UINT64_MAX;
    return 3ull * sizeof(double) * static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(n);
}
// What field_covariance (and so exact_kl on a kernel, field_model, ordo compare) may use unless
// told otherwise: 2 GiB, about 9,400 positions (a 96x96 grid). ordo compare --max-memory raises it.
inline constexpr std::uint64_t oracle_default_max_bytes = 2ull << 30;

// Throws, naming the memory the oracle would need on grid g, when that is over max_bytes.
inline void check_oracle_memory(const grid_shape& g, std::uint64_t max_bytes = oracle_default_max_bytes) {
    const std::uint64_t need = oracle_bytes(g.size());
    if (need > max_bytes)
        throw error("oracle: the exact KL on grid " + g.str() + " (" + ordo::detail::itos(g.size()) + " positions) needs " + ordo::detail::bytes_str(need) +
                    " (three " + ordo::detail::itos(g.size()) + " x " + ordo::detail::itos(g.size()) + " matrices of doubles), over the limit of " +
                    ordo::detail::bytes_str(max_bytes) + " (ordo compare --max-memory)");
}

// Σ over the grid's positions, raster order. Refuses (check_oracle_memory) a grid whose oracle
// would need more than max_bytes.
inline Eigen::MatrixXd field_covariance(const grid_shape& g, const field_kernel& k, std::uint64_t max_bytes = oracle_default_max_bytes) {
    k.validate();
    check_oracle_memory(g, max_bytes);
    const index_t n = g.size();
    Eigen::MatrixXd s(n, n);
    for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j <= i; ++j) s(i, j) = s(j, i) = k(g.at(i), g.at(j));
    return s;
}

struct plan_kl {
    double total = 0;              // nats
    std::vector<double> per_step;  // nats, one per step
    double per_token(index_t n) const { return total / n; }
};

// Σ permuted into emission order: row r is position order[r].
inline Eigen::MatrixXd emission_covariance(std::span<const index_t> order, const Eigen::MatrixXd& sigma) {
    const index_t n = static_cast<index_t>(order.size());
    if (sigma.rows() != n || sigma.cols() != n)
        throw error("oracle: covariance is " + ordo::detail::itos(sigma.rows()) + "x" + ordo::detail::itos(sigma.cols()) + ", the order has " +
                    ordo::detail::itos(n) + " positions");
    std::vector<char> seen(static_cast<std::size_t>(n), 0);
    for (index_t q : order) {
        if (q < 0 || q >= n || seen[static_cast<std::size_t>(q)])
            throw error("oracle: the emission order is not a permutation of 0.." + ordo::detail::itos(n - 1));
        seen[static_cast<std::size_t>(q)] = 1;
    }
    Eigen::MatrixXd s(n, n);
    for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < n; ++j) s(i, j) = sigma(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
    return s;
}

// KL(generated ‖ true) of emitting positions `order` in steps [offsets[k], offsets[k+1]) on a
// field with covariance `sigma` (raster order). Only the emission sets matter, not what is fed.
namespace detail {
// The Cholesky factor of Σ in emission order, after checking the step partition.
inline Eigen::LLT<Eigen::MatrixXd> emission_cholesky(std::span<const index_t> order, std::span<const index_t> offsets, const Eigen::MatrixXd& sigma) {
    if (offsets.size() < 2 || offsets.front() != 0 || offsets.back() != static_cast<index_t>(order.size()))
        throw error("oracle: step offsets must run from 0 to the number of positions");
    for (std::size_t k = 0; k + 1 < offsets.size(); ++k)
        if (offsets[k + 1] < offsets[k]) throw error("oracle: step offsets must not decrease");
    Eigen::LLT<Eigen::MatrixXd> llt(emission_covariance(order, sigma));
    if (llt.info() != Eigen::Success) throw error("oracle: the covariance is not positive definite (raise the nugget)");
    return llt;
}
}  // namespace detail

inline plan_kl exact_kl(std::span<const index_t> order, std::span<const index_t> offsets, const Eigen::MatrixXd& sigma) {
    const Eigen::LLT<Eigen::MatrixXd> llt = detail::emission_cholesky(order, offsets, sigma);
    const Eigen::MatrixXd& l = llt.matrixLLT();  // lower triangle holds L
    plan_kl out;
    out.per_step.resize(offsets.size() - 1);
    for (std::size_t s = 0; s + 1 < offsets.size(); ++s) {
        const index_t b = offsets[s], m = offsets[s + 1] - b;
        double kl = 0;
        if (m > 1) {  // one token per step loses nothing
            const Eigen::MatrixXd lkk = l.block(b, b, m, m).triangularView<Eigen::Lower>();
            const Eigen::MatrixXd linv = lkk.triangularView<Eigen::Lower>().solve(Eigen::MatrixXd::Identity(m, m));
            // B = Lkk Lkkᵀ: (B)_ii = ‖row i of Lkk‖², (B⁻¹)_ii = ‖column i of Lkk⁻¹‖², ln det B = 2 Σ ln (Lkk)_ii
            for (index_t i = 0; i < m; ++i) {
                const double bii = lkk.row(i).squaredNorm(), binv_ii = linv.col(i).squaredNorm();
                kl += bii * binv_ii - 1.0 + 2.0 * std::log(lkk(i, i)) - std::log(bii);
            }
            kl *= 0.5;
        }
        out.per_step[s] = kl;
        out.total += kl;
    }
    return out;
}

inline plan_kl exact_kl(const plan_view& p, const Eigen::MatrixXd& sigma) { return exact_kl(p.order, p.emit_offsets, sigma); }
// A field as the order generates it, from standard normal noise z (one value per position, raster
// order: each position's own innovation): step k draws its tokens independently with their exact
// conditional variances,
// x = L · blockdiag(L_kk⁻¹) · (sqrt(diag B) ∘ z), so the result has covariance U·diag(B)·Uᵀ.
// Raster returns the true field L·z; the same z under every order shows what each one loses.
// Returned in raster order.
inline Eigen::VectorXd generated_sample(std::span<const index_t> order, std::span<const index_t> offsets, const Eigen::MatrixXd& sigma,
                                        const Eigen::VectorXd& z) {
    if (z.size() != static_cast<Eigen::Index>(order.size())) throw error("oracle: the noise must have one value per position");
    const Eigen::LLT<Eigen::MatrixXd> llt = detail::emission_cholesky(order, offsets, sigma);
    const Eigen::MatrixXd l = llt.matrixL();
    Eigen::VectorXd w(z.size());
    for (std::size_t s = 0; s + 1 < offsets.size(); ++s) {
        const index_t b = offsets[s], m = offsets[s + 1] - b;
        const Eigen::MatrixXd lkk = l.block(b, b, m, m);
        Eigen::VectorXd zk(m);
        for (index_t i = 0; i < m; ++i) zk(i) = z(order[static_cast<std::size_t>(b + i)]);
        const Eigen::VectorXd scaled = lkk.rowwise().norm().cwiseProduct(zk);  // sqrt((B_k)_ii) z_i
        w.segment(b, m) = lkk.triangularView<Eigen::Lower>().solve(scaled);
    }
    const Eigen::VectorXd x = l.triangularView<Eigen::Lower>() * w;
    Eigen::VectorXd out(x.size());
    for (std::size_t r = 0; r < order.size(); ++r) out(order[r]) = x(static_cast<Eigen::Index>(r));
    return out;
}

inline plan_kl exact_kl(const plan_view& p, const field_kernel& k) { return exact_kl(p, field_covariance(p.grid(), k)); }

}  // namespace ordo::oracle
