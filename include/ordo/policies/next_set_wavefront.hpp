// ordo/policies/next_set_wavefront.hpp - ZipAR: rows start before the row above is finished.
#pragma once

#include <algorithm>
#include <string>

#include "../plan.hpp"
#include "raster.hpp"

namespace ordo {

// Training-free, on a raster-trained model (ZipAR). Rows (frames of rows for video) are decoded
// left to right; row r+1 starts once row r has `window` tokens, and every active row emits one
// token per step: token (r, c) is emitted at step r*window + c. Slots stay raster and a query sees
// the raster-earlier slots already fed (slot_causal mask).
// Token (r, c) is read from the head of its raster predecessor (r, c-1). A row's first token has
// no decoded predecessor yet, so, as in the official code, the step that starts row r also feeds a
// stand-in rotated at the predecessor (r-1, W-1): a copy of the newest token of row r-2 (the last
// prefix row when r = 1). ordo gives each stand-in its own slot after the raster slots, where the
// official code writes it into the predecessor's cache row and overwrites it once the real token
// is fed; so here no other query sees a stand-in. With window >= W this is exactly raster.
struct next_set_wavefront {
    static constexpr mask_mode mask = mask_mode::slot_causal;

    index_t window = 8;

    constexpr index_t num_steps(grid_shape g) const {
        check();
        const index_t rows = g.frames() * g.rows(), win = std::min(window, g.cols());
        return (rows - 1) * win + g.cols();
    }

    ORDO_DETAIL_FLATTEN constexpr void build(plan_builder& b) const {
        check();
        const grid_shape g = b.grid();
        const index_t width = g.cols(), rows = g.frames() * g.rows(), prefix = b.prefix();
        const index_t win = std::min(window, width), steps = num_steps(g);
        detail::raster_layout_and_prefill(b);
        for (index_t s = 1; s < steps; ++s) {
            b.begin_step();
            // fed: the one token of each row active at step s-1 (raster order), so row = r - first
            const index_t fed_first = first_row(s - 1, win, width);
            for (index_t r = fed_first; r <= std::min(rows - 1, (s - 1) / win); ++r)
                b.feed(prefix + r * width + (s - 1 - r * win));
            // a row starting now (before its predecessor is decoded) reads from a stand-in
            const index_t new_row = s % win == 0 ? s / win : 0;
            index_t stand_in_row = -1;
            if (win < width && new_row >= 1 && new_row < rows) {
                const index_t copy_of = new_row >= 2 ? prefix + (new_row - 2) * width + std::min(width - 1, 2 * win - 1) : prefix - 1;
                stand_in_row = b.feed(b.add_stand_in_slot(copy_of, new_row * width - 1));
            }
            for (index_t r = first_row(s, win, width); r <= std::min(rows - 1, s / win); ++r) {
                const index_t c = s - r * win;
                // predecessor (r, c-1); a row's first token: the stand-in, or (r-1, W-1) when win == W
                const index_t row = c > 0 ? r - fed_first : stand_in_row >= 0 ? stand_in_row : r - 1 - fed_first;
                b.emit(r * width + c, {{row, 0, 1.0f}});
            }
        }
    }

    constexpr std::string spec() const { return "zipar:" + detail::itos(window); }
    friend constexpr bool operator==(const next_set_wavefront&, const next_set_wavefront&) = default;

private:
    constexpr void check() const {
        if (window < 1) throw error("zipar window must be >= 1, got " + detail::itos(window));
    }
    // first grid row active at step s: the smallest r with s - r*win < width
    static constexpr index_t first_row(index_t s, index_t win, index_t width) {
        return s < width ? 0 : (s - width) / win + 1;
    }
};

}  // namespace ordo
