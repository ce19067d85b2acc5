// The LPD step forward allocates nothing: after check_fit() (which sizes the model's buffers), every
// step of the lpd policy — next(), the LPD forward and commit() — runs without a heap allocation,
// with CFG (cond + fake_latent halves) and with per-request orders. A separate binary, because it
// replaces the global operator new.
#include <cstdio>
#include <numeric>

#include <ordo/eigen/lpd.hpp>
#include <ordo/ordo.hpp>

#include "no_alloc_helpers.hpp"

int main(int argc, char** argv) {
    no_alloc::set_threads_from_args(argc, argv);
    int failures = 0;
    const ordo::grid_shape g = ordo::grid_shape::make(16, 16);
    ordo::models::lpd::lpd_config c;
    c.dim = 32; c.depth = 2; c.num_heads = 2; c.mlp_hidden = 128; c.vocab_size = 64; c.num_classes = 4; c.num_cells = g.size();
    const ordo::models::lpd::lpd_weights w = ordo::models::lpd::random_weights(c, 1);
    std::vector<ordo::index_t> reversed(static_cast<std::size_t>(g.size()));
    std::iota(reversed.rbegin(), reversed.rend(), 0);
    for (const std::string spec : {"lpd:20", "lpd:steps=32,seed=request"}) {
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), g);
        ordo::eigen::lpd_model m(w);
        const bool per_request = spec.find("request") != std::string::npos;
        std::vector<ordo::request> reqs{{1, 0, {}, {}}, {2, 1, {}, {}}};
        if (per_request) reqs[1].order = reversed;
        const std::uint64_t n = no_alloc::step_allocations(p, m, reqs, m.null_label());
        std::printf("%-28s %3d steps, %llu allocations\n", spec.c_str(), p.num_steps(), static_cast<unsigned long long>(n));
        failures += n != 0;
    }
    return failures ? 1 : 0;
}
