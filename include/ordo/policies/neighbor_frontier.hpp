// ordo/policies/neighbor_frontier.hpp - NAR: emit by Manhattan distance from the corner.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "../plan.hpp"

namespace ordo {

// Slots [prefix, tokens in raster order] (no permutation). Step d emits every position on the
// plane t+h+w = d in raster order; step d >= 1 feeds plane d-1. Each position is predicted by its
// already-known neighbours, one head per direction, averaged:
//   images: R (row w-1 -> w, head 0), B (h-1 -> h, head 1)
//   video:  R (w-1, head 0), B (t-1, head 1, "back" = next frame), D (h-1, head 2, "down")
// The prefill emits (0,0,0) from the average of all heads at the last prefix row.
// Images use 2D RoPE; video uses the learned absolute embedding indexed by slot (LARP_AR).
struct neighbor_frontier {
private:
    // (defined before build(): clang needs a constexpr function template defined before a constexpr use)
    // positions with t+h+w == d, raster order
    template <class F>
    static constexpr void for_plane(const grid_shape& g, index_t d, F&& f) {
        for (index_t t = 0; t < g.frames() && t <= d; ++t)
            for (index_t h = first_h(g, d, t); h < g.rows() && t + h <= d; ++h) f(coord{t, h, d - t - h});
    }
    // the first h of frame t on plane d: the smallest with w = d - t - h < cols
    static constexpr index_t first_h(const grid_shape& g, index_t d, index_t t) {
        return std::max<index_t>(0, d - t - (g.cols() - 1));
    }

public:
    static constexpr mask_mode mask = mask_mode::step_causal;

    constexpr index_t num_steps(grid_shape g) const { return g.frames() + g.rows() + g.cols() - 2; }

    ORDO_DETAIL_FLATTEN constexpr void build(plan_builder& b) const {
        const grid_shape g = b.grid();
        const bool video = g.rank() == 3;
        const index_t n = g.size(), prefix = b.prefix(), steps = num_steps(g);
        constexpr index_t R = 0, B = 1, D = 2;
        if (video) {
            b.set_heads({"R", "B", "D"});
            b.set_encoding(position_encoding::absolute);
        } else {
            b.set_heads({"R", "B"});
            b.set_encoding(position_encoding::rope);
        }
        b.set_forcing(teacher_forcing::full);
        for (index_t q = 0; q < n; ++q) b.add_token_slot(q);

        b.begin_step();
        for (index_t i = 0; i < prefix; ++i) b.feed(i);
        if (video) {
            const float w = 1.0f / 3.0f;
            b.emit(0, {{prefix - 1, R, w}, {prefix - 1, B, w}, {prefix - 1, D, w}});
        } else {
            b.emit(0, {{prefix - 1, R, 0.5f}, {prefix - 1, B, 0.5f}});
        }

        // Plane d-1 is fed t-major, then by h, so the row of its cell (t, h, .) is
        // start[t] + h: start[t] = (cells of the plane with smaller t) - (first h of frame t).
        std::vector<index_t> start(static_cast<std::size_t>(g.frames()), 0);
        for (index_t d = 1; d < steps; ++d) {
            b.begin_step();
            for (index_t t = 0, before = 0; t < g.frames() && t <= d - 1; ++t) {
                const index_t lo = first_h(g, d - 1, t), hi = std::min(g.rows() - 1, d - 1 - t);
                start[static_cast<std::size_t>(t)] = before - lo;
                before += std::max<index_t>(0, hi - lo + 1);
            }
            // token slots follow the prefix in raster order: the slot of q is prefix + q
            for_plane(g, d - 1, [&](coord c) { b.feed(prefix + g.index(c)); });
            for_plane(g, d, [&](coord c) {
                // parents in raster order (= row order): back, down/below, right
                const index_t at = start[static_cast<std::size_t>(c.t)] + c.h;
                source from[3];
                int k = 0;
                if (c.t > 0) from[k++] = {start[static_cast<std::size_t>(c.t - 1)] + c.h, B, 1.0f};
                if (c.h > 0) from[k++] = {at - 1, video ? D : B, 1.0f};
                if (c.w > 0) from[k++] = {at, R, 1.0f};
                for (int i = 0; i < k; ++i) from[i].weight = 1.0f / static_cast<float>(k);
                b.emit(g.index(c), from, from + k);
            });
        }
    }

    constexpr std::string spec() const { return "nar"; }
    friend constexpr bool operator==(const neighbor_frontier&, const neighbor_frontier&) = default;
};

}  // namespace ordo
