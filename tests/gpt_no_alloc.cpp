// The per-step hot path allocates nothing: after check_fit() (which sizes the model's buffers),
// every step of every order — next(), the GPT forward and commit() — runs without a heap
// allocation. A separate binary, because it replaces the global operator new.
#include <cstdio>

#include <ordo/eigen/gpt.hpp>
#include <ordo/ordo.hpp>

#include "no_alloc_helpers.hpp"

// RandAR's interleaved layout [cls, P_0, x_0, ...] (query slots: rows embedded as the rotated
// position-instruction vector) in a scrambled order, two queries a step after the first, each step
// feeding the previous step's tokens.
ordo::plan randar_layout(const ordo::grid_shape& g) {
    const ordo::index_t n = g.size();
    ordo::plan_builder b(g, 1, ordo::mask_mode::slot_causal);
    std::vector<ordo::index_t> order(static_cast<std::size_t>(n)), p(order.size()), x(order.size());
    for (ordo::index_t t = 0; t < n; ++t) order[static_cast<std::size_t>(t)] = (t * 13 + 5) % n;
    for (std::size_t t = 0; t < order.size(); ++t) {
        p[t] = b.add_query_slot(order[t]);
        x[t] = b.add_token_slot(order[t]);
    }
    b.begin_step();
    b.feed(0);
    b.emit(order[0], {ordo::source{b.feed(p[0]), 0, 1.0f}});
    for (std::size_t t = 1; t < order.size(); t += 2) {
        b.begin_step();
        b.feed(x[t - 1]);
        if (t > 1) b.feed(x[t - 2]);
        b.emit(order[t], {ordo::source{b.feed(p[t]), 0, 1.0f}});
        if (t + 1 < order.size()) b.emit(order[t + 1], {ordo::source{b.feed(p[t + 1]), 0, 1.0f}});
    }
    return std::move(b).finish();
}

int main(int argc, char** argv) {
    no_alloc::set_threads_from_args(argc, argv);
    int failures = 0;
    const ordo::grid_shape g = ordo::grid_shape::make(8, 8);
    std::vector<std::string> specs = ordo::builtin_policies(g);
    specs.push_back("(randar layout)");
    for (const std::string& spec : specs) {
        const ordo::plan p = spec == "(randar layout)" ? randar_layout(g) : ordo::make_plan(ordo::parse_policy(spec), g);
        ordo::models::llamagen::gpt_config c;
        c.dim = 32; c.n_layer = 2; c.n_head = 2; c.vocab_size = 64; c.num_classes = 4; c.multiple_of = 16;
        c = ordo::models::llamagen::fit_variant(c, p.view());
        const ordo::models::llamagen::gpt_weights w = ordo::models::llamagen::random_weights(c, 1);
        ordo::eigen::gpt_model m(w);
        const std::uint64_t n = no_alloc::step_allocations(p, m, {{1, 0, {}}, {2, 1, {}}}, c.null_label());
        std::printf("%-12s %3d steps, %llu allocations\n", spec.c_str(), p.num_steps(), static_cast<unsigned long long>(n));
        failures += n != 0;
    }
    return failures ? 1 : 0;
}
