// ordo/policies/query_groups.hpp - LPD (locality-aware parallel decoding): groups of position
// queries over a generation order.
#pragma once

#include <charconv>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "../plan.hpp"
#include "../schedules/lpd_order.hpp"

namespace ordo {

namespace detail {
// Throws unless `s` is a list of group sizes >= 1 summing to the image grid `g` (`who` names the
// method in the message).
inline void check_group_sizes(const char* who, const grid_shape& g, std::span<const index_t> s) {
    if (g.rank() != 2) throw error(std::string(who) + ": the grid " + g.str() + " has a time axis; " + who + " decodes image grids");
    long long total = 0;
    for (std::size_t k = 0; k < s.size(); ++k) {
        if (s[k] < 1) throw error(std::string(who) + ": group " + itos(static_cast<long long>(k)) + " has size " + itos(s[k]) + "; every step emits a position");
        total += s[k];
    }
    if (s.empty() || total != g.size())
        throw error(std::string(who) + ": the group sizes sum to " + itos(total) + ", the grid " + g.str() + " has " + itos(g.size()) + " positions");
}
inline std::vector<index_t> identity_order(index_t n) {
    std::vector<index_t> id(static_cast<std::size_t>(n));
    for (index_t t = 0; t < n; ++t) id[static_cast<std::size_t>(t)] = t;
    return id;
}
// Throws unless `order` is a permutation of the grid's cells.
inline void check_order(const char* who, const grid_shape& g, std::span<const index_t> order) {
    if (static_cast<index_t>(order.size()) != g.size())
        throw error(std::string(who) + ": the order has " + itos(static_cast<long long>(order.size())) + " cells, the grid " + g.str() + " has " + itos(g.size()));
    std::vector<char> seen(order.size());
    for (const index_t c : order) {
        if (c < 0 || c >= g.size() || seen[static_cast<std::size_t>(c)]) throw error(std::string(who) + ": the order is not a permutation of the grid's cells");
        seen[static_cast<std::size_t>(c)] = 1;
    }
}
// The group-query layout (LPD, ARPG): slot 1 + t holds generation index t (cell order[t]); step k
// feeds the previous group's tokens (step 0: the class row), then one query row per position it
// emits, in the slot of the token it predicts.
inline void build_group_queries(plan_builder& b, std::span<const index_t> sizes, std::span<const index_t> order) {
    for (const index_t cell : order) b.add_token_slot(cell);
    index_t first = 0;  // c_k
    for (std::size_t k = 0; k < sizes.size(); ++k) {
        b.begin_step();
        if (k == 0) b.feed(0);
        else
            for (index_t t = first - sizes[k - 1]; t < first; ++t) b.feed(1 + t);
        for (index_t t = first; t < first + sizes[k]; ++t) {
            const index_t cell = order[static_cast<std::size_t>(t)];
            const index_t row = b.feed_query(1 + t, cell);
            b.emit(cell, {{row, 0, 1.0f}});
        }
        first += sizes[k];
    }
}
}  // namespace detail

// LPD (mit-han-lab/lpd; per-call rule in shared/conventions/lpd-randar-arpg-sjd-scd.md §1c). A
// schedule of group sizes g_0..g_{K-1} over a generation order: step k emits the g_k positions of
// generation indices [c_k, c_k + g_k) (c_k = g_0 + ... + g_{k-1}). Slots: the class row, then
// generation index t at slot 1 + t. Step k feeds, in this order:
//  - the previous group's tokens at their own slots (step 0: the class row);
//  - one query row per position it emits, written into that position's own slot (the model's
//    query token told the target's position); the target's token overwrites it next step.
// The mask is step-causal with each slot dated by its first write (the query), which is LPD's
// block-causal mask over [1, g_0, g_1, ...]: a query sees what is decoded and every query of its
// step, a token row sees what is decoded and its whole group. The last group is never fed.
// Decoding equals one training pass over the same tokens (teacher_forcing::replay).
//
// The order is the plan's when `seed` >= 0 (make_lpd_order: the official generator's order for
// that seed); with seed -1 the plan is the schedule alone (generation index t at position t), and
// each request brings its order as a position table (request::order), so a batch of requests
// with different orders runs one plan. Positions reach the model as grid cells (cell_table).
struct query_groups {
    static constexpr mask_mode mask = mask_mode::step_causal;

    std::vector<index_t> group_sizes{};  // empty: LPD's released schedule of `steps` steps
    index_t steps = 20;
    double proximity = schedules::lpd_default_proximity_threshold;
    double repulsion = 2.0;               // the released 256-token orders' (20 and 32 steps)
    std::int64_t seed = 0;                // -1: no order in the plan (per-request orders)

    // The group sizes this policy decodes `g` with.
    std::vector<index_t> sizes(const grid_shape& g) const {
        if (!group_sizes.empty()) return group_sizes;
        return schedules::lpd_group_sizes(g.size(), steps);
    }
    index_t num_steps(grid_shape g) const { return static_cast<index_t>(sizes(g).size()); }

    // The generation order of `g`: cell of each generation index.
    std::vector<index_t> order(const grid_shape& g) const {
        const std::vector<index_t> s = sizes(g);
        detail::check_group_sizes("lpd", g, s);
        if (seed < 0) return detail::identity_order(g.size());
        return schedules::make_lpd_order(g, s, proximity, repulsion, static_cast<std::uint64_t>(seed)).order;
    }

    void build(plan_builder& b) const {
        const grid_shape g = b.grid();
        if (b.prefix() != 1) throw error("lpd: the class row is the only prefix row (got " + detail::itos(b.prefix()) + ")");
        const std::vector<index_t> s = sizes(g), ord = order(g);
        b.set_heads({"main"});
        b.set_encoding(position_encoding::cell_table);
        b.set_forcing(teacher_forcing::replay);
        detail::build_group_queries(b, s, ord);
    }

    std::string spec() const {
        std::string out = "lpd:";
        if (group_sizes.empty()) out += "steps=" + detail::itos(steps);
        else {
            out += "sizes=";
            for (std::size_t k = 0; k < group_sizes.size(); ++k) out += (k ? "+" : "") + detail::itos(group_sizes[k]);
        }
        if (seed < 0) return out + ",seed=request";
        return out + ",repulsion=" + shortest(repulsion) + (proximity != schedules::lpd_default_proximity_threshold ? ",proximity=" + shortest(proximity) : "") +
               ",seed=" + std::to_string(seed);
    }
    friend bool operator==(const query_groups&, const query_groups&) = default;

private:
    static std::string shortest(double v) {  // reads back to the same double
        char buf[32];
        const auto r = std::to_chars(buf, buf + sizeof buf, v);
        return std::string(buf, r.ptr);
    }
};

}  // namespace ordo
