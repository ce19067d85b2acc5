// ordo/policies/raster.hpp - LlamaGen's order: one token per step, raster order.
#pragma once

#include <string>

#include "../plan.hpp"

namespace ordo {

namespace detail {
// What every order of a raster-trained LlamaGen model starts with: one "main" head, 2D RoPE,
// shifted teacher forcing, slots [prefix, tokens in raster order], and step 0 feeding the prefix
// and emitting token 0 from the last prefix row.
ORDO_DETAIL_HOT constexpr void raster_layout_and_prefill(plan_builder& b) {
    const index_t n = b.grid().size(), prefix = b.prefix();
    b.set_heads({"main"});
    b.set_encoding(position_encoding::rope);
    b.set_forcing(teacher_forcing::shifted);
    for (index_t q = 0; q < n; ++q) b.add_token_slot(q);
    b.begin_step();
    for (index_t i = 0; i < prefix; ++i) b.feed(i);
    b.emit(0, {{prefix - 1, 0, 1.0f}});
}
}  // namespace detail

// Slots [prefix, tokens in raster order]. Step 0 feeds the prefix and emits token 0 from the last
// prefix row; step s >= 1 feeds token s-1 and emits token s. The last token is never fed.
struct raster {
    static constexpr mask_mode mask = mask_mode::step_causal;

    constexpr index_t num_steps(grid_shape g) const { return g.size(); }

    ORDO_DETAIL_FLATTEN constexpr void build(plan_builder& b) const {
        detail::raster_layout_and_prefill(b);
        for (index_t q = 1, n = b.grid().size(); q < n; ++q) {
            b.begin_step();
            b.feed(b.slot_of(q - 1));
            b.emit(q, {{0, 0, 1.0f}});
        }
    }

    constexpr std::string spec() const { return "raster"; }
    friend constexpr bool operator==(const raster&, const raster&) = default;
};

}  // namespace ordo
