// The ARPG step forward allocates nothing: after check_fit() (which sizes the model's buffers), every
// step of a hand-built ARPG plan (query_mode::cross, a grouped schedule) — next(), the ARPG forward
// and commit() — runs without a heap allocation, with CFG (cond + none_conds halves) and with
// per-request orders. A separate binary, because it replaces the global operator new.
#include <cstdio>
#include <numeric>

#include <ordo/eigen/arpg.hpp>
#include <ordo/ordo.hpp>

#include "no_alloc_helpers.hpp"

namespace {
// slot 0 the class, slot 1 + t generation index t; call k feeds the previous call's tokens (call 0:
// the class), then a cross query per generation index of group k
ordo::plan arpg_layout(ordo::grid_shape g, const std::vector<ordo::index_t>& order, const std::vector<ordo::index_t>& groups) {
    ordo::plan_builder b(g, 1, ordo::mask_mode::step_causal);
    b.set_encoding(ordo::position_encoding::rope);
    b.set_query_mode(ordo::query_mode::cross);
    b.set_forcing(ordo::teacher_forcing::replay);
    b.set_heads({"main"});
    for (ordo::index_t cell : order) b.add_token_slot(cell);
    ordo::index_t c = 0, prev = 0;
    for (ordo::index_t gk : groups) {
        b.begin_step();
        if (c == 0) b.feed(0);
        for (ordo::index_t t = prev; t < c; ++t) b.feed(1 + t);
        for (ordo::index_t t = c; t < c + gk; ++t) b.emit(order[static_cast<std::size_t>(t)], {{b.feed_query(1 + t, order[static_cast<std::size_t>(t)]), 0, 1.0f}});
        prev = c;
        c += gk;
    }
    return std::move(b).finish();
}
}  // namespace

int main(int argc, char** argv) {
    no_alloc::set_threads_from_args(argc, argv);
    int failures = 0;
    const ordo::grid_shape g = ordo::grid_shape::make(16, 16);
    ordo::models::arpg::arpg_config c;
    c.dim = 32; c.n_self = 2; c.n_cross = 2; c.n_head = 2; c.ffn_hidden = 96; c.vocab_size = 64; c.num_classes = 4;
    const ordo::models::arpg::arpg_weights w = ordo::models::arpg::random_weights(c, 1);
    std::vector<ordo::index_t> order(static_cast<std::size_t>(g.size())), reversed(order.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<ordo::index_t>((i * 37) % order.size());
    std::iota(reversed.rbegin(), reversed.rend(), 0);
    const std::vector<ordo::index_t> groups{3, 3, 2, 8, 16, 32, 64, 128};
    for (const bool per_request : {false, true}) {
        const ordo::plan p = arpg_layout(g, order, groups);
        ordo::eigen::arpg_model m(w);
        std::vector<ordo::request> reqs{{1, 0, {}, {}}, {2, 1, {}, {}}};
        if (per_request) reqs[1].order = reversed;
        const std::uint64_t n = no_alloc::step_allocations(p, m, reqs, m.null_label());
        std::printf("arpg %-22s %3d steps, %llu allocations\n", per_request ? "(per-request orders)" : "(order in the plan)", p.num_steps(),
                    static_cast<unsigned long long>(n));
        failures += n != 0;
    }
    return failures ? 1 : 0;
}
