// The quality oracle: the exact KL of an order on a Gaussian field, against an independent
// brute-force computation and against cases whose answer is known.
#include <catch2/catch.hpp>

#include <chrono>
#include <numeric>

#include <Eigen/Dense>
#include <ordo/oracle/oracle.hpp>
#include <ordo/ordo.hpp>


namespace {

// Brute force, sharing nothing with exact_kl but the covariance: build the generated field's
// covariance step by step from the regression of each step on all earlier ones (x_S = A x_P + e,
// e ~ N(0, diag of the true conditional covariance)), then the dense Gaussian KL formula
// ½ [tr(Σ⁻¹ Σg) − n + ln det Σ − ln det Σg].
double brute_force_kl(const std::vector<ordo::index_t>& order, const std::vector<ordo::index_t>& offsets, const Eigen::MatrixXd& sigma,
                      Eigen::MatrixXd* generated = nullptr) {
    const Eigen::Index n = sigma.rows();
    Eigen::MatrixXd s(n, n), g = Eigen::MatrixXd::Zero(n, n);
    for (Eigen::Index i = 0; i < n; ++i)
        for (Eigen::Index j = 0; j < n; ++j) s(i, j) = sigma(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
    for (std::size_t k = 0; k + 1 < offsets.size(); ++k) {
        const Eigen::Index p = offsets[k], m = offsets[k + 1] - offsets[k];
        Eigen::MatrixXd cond = s.block(p, p, m, m);
        Eigen::MatrixXd a = Eigen::MatrixXd::Zero(m, p);
        if (p > 0) {
            a = s.block(0, 0, p, p).fullPivLu().solve(s.block(0, p, p, m)).transpose();  // A = Σ_SP Σ_PP⁻¹
            cond -= a * s.block(0, p, p, m);
            g.block(p, 0, m, p) = a * g.block(0, 0, p, p);
            g.block(0, p, p, m) = g.block(p, 0, m, p).transpose();
        }
        g.block(p, p, m, m) = a * g.block(0, 0, p, p) * a.transpose();
        g.block(p, p, m, m).diagonal() += cond.diagonal();
    }
    if (generated) *generated = g;
    const Eigen::FullPivLU<Eigen::MatrixXd> ls(s), lg(g);
    const double tr = ls.solve(g).trace();
    const double logdet_s = s.ldlt().vectorD().array().log().sum(), logdet_g = g.ldlt().vectorD().array().log().sum();
    return 0.5 * (tr - static_cast<double>(n) + logdet_s - logdet_g);
}

std::vector<ordo::index_t> vec(std::span<const ordo::index_t> s) { return {s.begin(), s.end()}; }

}  // namespace

TEST_CASE("exact KL equals an independent brute-force computation on small grids", "[oracle]") {
    const std::vector<ordo::grid_shape> grids{ordo::grid_shape::make(4, 4), ordo::grid_shape::make(6, 6), ordo::grid_shape::make(3, 4, 4)};
    for (const auto& g : grids)
        for (const std::string& spec : ordo::builtin_policies(g))
            for (const auto shape : {ordo::oracle::kernel_shape::exponential, ordo::oracle::kernel_shape::squared_exponential})
                for (double ell : {0.7, 2.0}) {
                    const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), g);
                    const ordo::oracle::field_kernel k = ordo::oracle::field_kernel::isotropic(shape, ell, 1e-2);
                    const Eigen::MatrixXd sigma = ordo::oracle::field_covariance(g, k);
                    const double exact = ordo::oracle::exact_kl(p.view(), sigma).total;
                    const double brute = brute_force_kl(vec(p.view().order), vec(p.view().emit_offsets), sigma);
                    INFO(g.str() << " " << spec << " " << k.str() << ": exact " << exact << ", brute force " << brute);
                    CHECK(std::abs(exact - brute) <= 1e-8 * std::max(1.0, std::abs(brute)));
                }
}

TEST_CASE("generated samples have the generated covariance; raster samples the true field", "[oracle]") {
    const ordo::grid_shape g = ordo::grid_shape::make(6, 6);
    const Eigen::MatrixXd sigma = ordo::oracle::field_covariance(g, ordo::oracle::field_kernel::isotropic(ordo::oracle::kernel_shape::exponential, 2.0, 1e-2));
    for (const std::string& spec : ordo::builtin_policies(g)) {
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), g);
        const std::vector<ordo::index_t> order = vec(p.view().order), offsets = vec(p.view().emit_offsets);
        Eigen::MatrixXd want;
        brute_force_kl(order, offsets, sigma, &want);  // emission order
        // the sampling map is linear in z: its columns give x = M z, so Cov = M Mᵀ
        Eigen::MatrixXd m(36, 36);
        for (int i = 0; i < 36; ++i) m.col(i) = ordo::oracle::generated_sample(order, offsets, sigma, Eigen::VectorXd::Unit(36, i));
        Eigen::MatrixXd got = m * m.transpose(), got_emission(36, 36);
        for (int i = 0; i < 36; ++i)
            for (int j = 0; j < 36; ++j) got_emission(i, j) = got(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
        INFO(spec);
        // PropagateNaN: Eigen's default maxCoeff() may skip a NaN entry and pass
        CHECK((got_emission - want).cwiseAbs().maxCoeff<Eigen::PropagateNaN>() < 1e-9);
        if (spec == "raster") CHECK((got - sigma).cwiseAbs().maxCoeff<Eigen::PropagateNaN>() < 1e-9);
    }
}

TEST_CASE("known cases: raster costs nothing; one step over independent tokens costs nothing", "[oracle]") {
    const ordo::grid_shape g = ordo::grid_shape::make(8, 8);
    const ordo::plan raster = ordo::make_plan(ordo::raster{}, g);
    for (const auto shape : {ordo::oracle::kernel_shape::exponential, ordo::oracle::kernel_shape::squared_exponential})
        for (double ell : {0.5, 1.0, 4.0, 16.0}) {
            const auto kl = ordo::oracle::exact_kl(raster.view(), ordo::oracle::field_kernel::isotropic(shape, ell));
            CHECK(kl.total == 0.0);
            CHECK(kl.per_step.size() == 64);
        }
    // all 64 positions in one step, tokens independent (ℓ so short the kernel vanishes off the diagonal)
    std::vector<ordo::index_t> order(64), one_step{0, 64};
    std::iota(order.begin(), order.end(), 0);
    const auto kl = ordo::oracle::exact_kl(order, one_step, ordo::oracle::field_covariance(g, ordo::oracle::field_kernel::isotropic(ordo::oracle::kernel_shape::squared_exponential, 0.01)));
    CHECK(std::abs(kl.total) < 1e-12);
    // correlated tokens in one step cost something
    CHECK(ordo::oracle::exact_kl(order, one_step, ordo::oracle::field_covariance(g, ordo::oracle::field_kernel::isotropic(ordo::oracle::kernel_shape::exponential, 2.0))).total > 1.0);
}

TEST_CASE("splitting steps finer never raises the KL", "[oracle]") {
    const ordo::grid_shape g = ordo::grid_shape::make(8, 8);
    const Eigen::MatrixXd sigma = ordo::oracle::field_covariance(g, ordo::oracle::field_kernel::isotropic(ordo::oracle::kernel_shape::exponential, 2.0));
    for (const std::string& spec : ordo::builtin_policies(g)) {
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), g);
        const std::vector<ordo::index_t> order = vec(p.view().order), offsets = vec(p.view().emit_offsets);
        // the same order, each step split in two halves; and everything in one step
        std::vector<ordo::index_t> finer{0};
        for (std::size_t k = 0; k + 1 < offsets.size(); ++k) {
            const ordo::index_t mid = (offsets[k] + offsets[k + 1]) / 2;
            if (mid > offsets[k]) finer.push_back(mid);
            finer.push_back(offsets[k + 1]);
        }
        const double kl = ordo::oracle::exact_kl(order, offsets, sigma).total;
        INFO(spec);
        CHECK(ordo::oracle::exact_kl(order, finer, sigma).total <= kl + 1e-9);
        CHECK(ordo::oracle::exact_kl(order, std::vector<ordo::index_t>{0, 64}, sigma).total >= kl - 1e-9);
        // per step it is a sum of non-negative terms
        for (double s : ordo::oracle::exact_kl(order, offsets, sigma).per_step) CHECK(s >= -1e-12);
    }
}

TEST_CASE("the oracle is fast enough for real grids", "[oracle]") {
    // Timing is reported, not asserted (machines are shared); the sizes must simply work.
    for (const auto& [g, spec] : {std::pair{ordo::grid_shape::make(24, 24), "par:2x2"}, std::pair{ordo::grid_shape::make(4, 16, 16), "nar"},
                                  std::pair{ordo::grid_shape::make(32, 32), "nar"}}) {
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), g);
        const auto t0 = std::chrono::steady_clock::now();
        const auto kl = ordo::oracle::exact_kl(p.view(), ordo::oracle::field_kernel::isotropic(ordo::oracle::kernel_shape::exponential, 2.0));
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        WARN(g.str() << " " << spec << ": KL " << kl.total << " nats in " << s << " s");
        CHECK(kl.total > 0);
    }
}

TEST_CASE("oracle inputs are checked", "[oracle][errors]") {
    using Catch::Contains;
    const ordo::grid_shape g = ordo::grid_shape::make(2, 2);
    const Eigen::MatrixXd sigma = ordo::oracle::field_covariance(g, ordo::oracle::field_kernel{});
    REQUIRE_THROWS_WITH(ordo::oracle::exact_kl(std::vector<ordo::index_t>{0, 1, 1, 3}, std::vector<ordo::index_t>{0, 4}, sigma), Contains("not a permutation"));
    REQUIRE_THROWS_WITH(ordo::oracle::exact_kl(std::vector<ordo::index_t>{0, 1, 2, 3}, std::vector<ordo::index_t>{0, 3}, sigma), Contains("step offsets"));
    REQUIRE_THROWS_WITH(ordo::oracle::exact_kl(std::vector<ordo::index_t>{0, 1, 2}, std::vector<ordo::index_t>{0, 3}, sigma), Contains("covariance is 4x4"));
    ordo::oracle::field_kernel bad;
    bad.ell_h = 0;
    REQUIRE_THROWS_WITH(ordo::oracle::field_covariance(g, bad), Contains("length scale"));
    bad = {};
    bad.nugget = -1;
    REQUIRE_THROWS_WITH(ordo::oracle::field_covariance(g, bad), Contains("nugget"));
    // a singular field: squared-exponential with a long range and no nugget
    const Eigen::MatrixXd flat = ordo::oracle::field_covariance(ordo::grid_shape::make(8, 8), ordo::oracle::field_kernel::isotropic(ordo::oracle::kernel_shape::squared_exponential, 50.0, 0.0));
    REQUIRE_THROWS_WITH(ordo::oracle::exact_kl(ordo::make_plan(ordo::raster{}, ordo::grid_shape::make(8, 8)).view(), flat), Contains("not positive definite"));
}

#include <ordo/oracle/field_model.hpp>

namespace {
// Mean of x_a·x_b over the given pairs and over every generated field (tokens dequantised).
double mean_product(const ordo::oracle::field_model& m, const std::vector<std::vector<ordo::index_t>>& fields,
                    const std::vector<std::pair<ordo::index_t, ordo::index_t>>& pairs) {
    double sum = 0;
    for (const auto& f : fields)
        for (const auto& [a, b] : pairs) sum += m.value(a, f[static_cast<std::size_t>(a)]) * m.value(b, f[static_cast<std::size_t>(b)]);
    return sum / static_cast<double>(fields.size() * pairs.size());
}
}  // namespace

TEST_CASE("the field as a token model: raster samples have the kernel's covariance, a parallel order's do not", "[oracle][field]") {
    const ordo::grid_shape g = ordo::grid_shape::make(5, 5);
    const ordo::oracle::field_kernel k = ordo::oracle::field_kernel::isotropic(ordo::oracle::kernel_shape::exponential, 2.0, 1e-2);
    ordo::oracle::field_model model(g, k, 64);
    // pairs of anti-diagonal neighbours: NAR emits them in the same step
    std::vector<std::pair<ordo::index_t, ordo::index_t>> pairs;
    for (ordo::index_t r = 0; r + 1 < 5; ++r)
        for (ordo::index_t c = 1; c < 5; ++c) pairs.push_back({r * 5 + c, (r + 1) * 5 + c - 1});
    auto average = [&](const Eigen::MatrixXd& cov) {
        double s = 0;
        for (const auto& [a, b] : pairs) s += cov(a, b);
        return s / static_cast<double>(pairs.size());
    };
    std::vector<ordo::request> reqs;
    for (int i = 0; i < 400; ++i) reqs.push_back({0, static_cast<std::uint64_t>(i), {}});
    ordo::generate_options o;
    o.session.seed = 7;
    for (const char* spec : {"raster", "nar"}) {
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), g);
        ordo::contiguous_kv_cache<float> cache(1, 400, ordo::kv_cache_len(p), 1);
        const auto fields = ordo::generate(model, cache, p.view(), ordo::make_sampler(ordo::multinomial{}), reqs, o);
        // the exact covariance the order generates, from the oracle's sampling map
        const auto v = p.view();
        Eigen::MatrixXd map(25, 25);
        for (int i = 0; i < 25; ++i) map.col(i) = ordo::oracle::generated_sample(v.order, v.emit_offsets, model.covariance(), Eigen::VectorXd::Unit(25, i));
        const double truth = average(model.covariance()), generated = average(map * map.transpose()), mc = mean_product(model, fields, pairs);
        INFO(spec << ": Monte-Carlo " << mc << ", generated " << generated << ", true " << truth);
        CHECK(std::abs(mc - generated) < 0.08);  // 400 fields x 16 pairs: standard error ~0.03
        if (std::string(spec) == "raster") CHECK(std::abs(generated - truth) < 1e-9);
        else CHECK(truth - generated > 0.1);  // NAR loses the dependence of tokens it emits together
        if (std::string(spec) == "nar") CHECK(std::abs(mc - truth) > 0.15);
    }
}
