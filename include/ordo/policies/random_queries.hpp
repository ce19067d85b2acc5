// ordo/policies/random_queries.hpp - random-order parallel decoding with query tokens: RandAR's
// interleaved position instructions and ARPG's cross-attending [MASK] queries.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "../plan.hpp"
#include "../schedules/query_schedules.hpp"
#include "../schedules/random_order.hpp"
#include "query_groups.hpp"

namespace ordo {

namespace detail {
// The order a random-order policy decodes: given cells, ordo's own permutation of `seed`, or (seed
// -1) the identity, the schedule alone (each request then brings its order: request::order).
inline std::vector<index_t> random_policy_order(const char* who, const grid_shape& g, std::span<const index_t> given, std::int64_t seed) {
    if (!given.empty()) {
        check_order(who, g, given);
        return {given.begin(), given.end()};
    }
    if (seed < 0) return identity_order(g.size());
    return schedules::random_order(g.size(), static_cast<std::uint64_t>(seed));
}
inline std::string random_policy_spec(std::string head, bool given, std::int64_t seed) {
    if (given) return head + ",order=given";
    return head + ",seed=" + (seed < 0 ? std::string("request") : std::to_string(seed));
}
}  // namespace detail

// RandAR (ziqipang/RandAR; per-call rule in shared/conventions/lpd-randar-arpg-sjd-scd.md §2c).
// LlamaGen's GPT over the interleaved training layout [cls, P_0, x_0, P_1, x_1, ...]: generation
// index t has a query slot 1 + 2t (P_t, the position instruction of its cell) and a token slot
// 2 + 2t. Call k emits m_k queries (the official cosine schedule, schedules::randar_queries_per_call):
//  - call 0 feeds [cls, P_0, P_1, ...]: P_0 at its slot, later queries in the slots after it;
//  - call k >= 1, after the previous call's n queries from generation index q0, feeds from slot
//    2 + 2 q0 on: [x_q0, P_q0+1, x_q0+1, ..., x_q0+n-1] (the previous tokens, and the previous
//    call's queries but its first re-fed at their own slots), then P_c (c = q0 + n) at its own slot
//    and the call's later queries in the slots after it, which the next call overwrites.
// The mask is causal by slot (slot_causal): a query sees the earlier queries of its call but not
// their tokens. Teacher forcing is the official training forward: every slot, causal, each
// position read at its own P slot. The official order is torch.randperm per image,
// which ordo does not reproduce: give it (`order`, or a request's position table with
// seed = -1), or take ordo's own permutation of `seed`.
struct interleaved_queries {
    static constexpr mask_mode mask = mask_mode::slot_causal;

    index_t steps = 88;
    std::int64_t seed = 0;          // -1: the schedule alone (per-request orders)
    std::vector<index_t> order{};   // the cells in generation order; empty: by `seed`

    std::vector<index_t> sizes(const grid_shape& g) const { return schedules::randar_queries_per_call(g.size(), steps); }
    index_t num_steps(grid_shape g) const { return static_cast<index_t>(sizes(g).size()); }

    void build(plan_builder& b) const {
        const grid_shape g = b.grid();
        if (b.prefix() != 1) throw error("randar: the class row is the only prefix row (got " + detail::itos(b.prefix()) + ")");
        if (g.rank() != 2) throw error("randar: the grid " + g.str() + " has a time axis; RandAR decodes image grids");
        const std::vector<index_t> m = sizes(g), ord = detail::random_policy_order("randar", g, order, seed);
        b.set_heads({"main"});
        b.set_encoding(position_encoding::rope);
        b.set_forcing(teacher_forcing::full);  // the official training feeds x_{N-1} too (causal: it changes nothing)
        for (const index_t cell : ord) {
            b.add_query_slot(cell);
            b.add_token_slot(cell);
        }
        index_t q0 = 0, n = 0, c = 0;  // the previous call's first query and count; this call's first
        for (std::size_t k = 0; k < m.size(); ++k) {
            b.begin_step();
            if (k == 0) b.feed(0);
            for (index_t i = 0; i < n; ++i) {
                b.feed(2 + 2 * (q0 + i));                 // x_{q0+i}
                if (i + 1 < n) b.feed(3 + 2 * (q0 + i));  // P_{q0+i+1}, re-fed at its own slot
            }
            const index_t first = b.feed(1 + 2 * c);  // P_c at its own slot
            b.emit(ord[static_cast<std::size_t>(c)], {{first, 0, 1.0f}});
            for (index_t j = 1; j < m[k]; ++j) {
                const index_t cell = ord[static_cast<std::size_t>(c + j)];
                b.emit(cell, {{b.feed_query(1 + 2 * c + j, cell), 0, 1.0f}});
            }
            q0 = c;
            n = m[k];
            c += m[k];
        }
    }

    std::string spec() const { return detail::random_policy_spec("randar:steps=" + detail::itos(steps), !order.empty(), seed); }
    friend bool operator==(const interleaved_queries&, const interleaved_queries&) = default;
};

// ARPG (hp-l33/ARPG; per-call rule in shared/conventions/lpd-randar-arpg-sjd-scd.md §3c). A
// two-pass decoder: call k feeds the previous call's tokens (call 0: the class row) to the
// self-decoder, which appends them to the cache and sees all of it, its own group too (no mask at
// inference), then num_pred [MASK] queries with their targets' RoPE cross-attend to everything
// written so far; queries are not cached and do not see each other (query_mode::cross). Slot 1 + t
// holds generation index t, as the official append-only cache does. The schedule is the official
// arccos or cosine one (schedules::arpg_queries_per_call). One order for the whole batch, in the
// official code from torch.rand(N).argsort(), which ordo does not reproduce: give it or take
// ordo's own permutation of `seed`. Teacher forcing replays the steps (the official training
// forward is causal, unlike its inference; the model's training forward gives that one).
struct cross_queries {
    static constexpr mask_mode mask = mask_mode::step_causal;

    index_t steps = 64;
    schedules::arpg_schedule schedule = schedules::arpg_schedule::arccos;
    std::int64_t seed = 0;          // -1: the schedule alone (an order per request)
    std::vector<index_t> order{};   // the cells in generation order; empty: by `seed`

    std::vector<index_t> sizes(const grid_shape& g) const { return schedules::arpg_queries_per_call(g.size(), steps, schedule); }
    index_t num_steps(grid_shape g) const { return static_cast<index_t>(sizes(g).size()); }

    void build(plan_builder& b) const {
        const grid_shape g = b.grid();
        if (b.prefix() != 1) throw error("arpg: the class row is the only prefix row (got " + detail::itos(b.prefix()) + ")");
        if (g.rank() != 2) throw error("arpg: the grid " + g.str() + " has a time axis; ARPG decodes image grids");
        const std::vector<index_t> s = sizes(g), ord = detail::random_policy_order("arpg", g, order, seed);
        b.set_heads({"main"});
        b.set_encoding(position_encoding::rope);
        b.set_forcing(teacher_forcing::replay);
        b.set_query_mode(query_mode::cross);
        detail::build_group_queries(b, s, ord);
    }

    std::string spec() const {
        return detail::random_policy_spec("arpg:steps=" + detail::itos(steps) + (schedule == schedules::arpg_schedule::cosine ? ",schedule=cosine" : ""),
                                          !order.empty(), seed);
    }
    friend bool operator==(const cross_queries&, const cross_queries&) = default;
};

}  // namespace ordo
