// ordo/policies/next_set_wavefront.hpp - ZipAR as the released code decodes: a row starts before
// the row above it is finished.
#pragma once

#include <algorithm>
#include <string>

#include "../plan.hpp"
#include "raster.hpp"

namespace ordo {

// Training-free, on a raster-trained model (ZipAR, ThisisBillhe/ZipAR; per-call rule in
// shared/conventions/zipar.md). Row 0 is decoded alone, one token per step, for W steps; row 1
// starts at step W and row r+1 the step after row r emitted its `window`-th token, so row r >= 1
// starts at a(r) = W + (r-1)*window and every active row emits one token per step:
// 2W + (H-2)*window steps. Slots stay raster and the mask is slot_causal: a row at slot s sees
// every slot up to s, written or not (unwritten slots count as zeros, stale stand-ins as what
// they hold). Each step feeds, in slot order:
//  - the last token of a row that finished the step before, at its own slot; its logits are
//    dropped (it overwrites that row's stand-in);
//  - per active row, its newest token; a starting row r >= 2 instead feeds a stand-in in the slot
//    of its raster predecessor (r-1, W-1): a copy of (0, W-1) for r = 2, of
//    (r-2, min(2*window-1, W-1)) for r >= 3 (the newest token of row r-2 when row r is started).
//    Row 1 starts from the real (0, W-1).
// The released code supports 2 <= window <= W-1 on square images; ordo also runs H x W grids and
// video (T x H x W as T*H rows of W), by the same rule.
struct next_set_wavefront {
    static constexpr mask_mode mask = mask_mode::slot_causal;

    index_t window = 8;

    constexpr index_t num_steps(grid_shape g) const {
        check(g);
        const index_t rows = g.frames() * g.rows(), width = g.cols();
        return rows == 1 ? width : 2 * width + (rows - 2) * window;
    }

    ORDO_DETAIL_FLATTEN constexpr void build(plan_builder& b) const {
        const grid_shape g = b.grid();
        check(g);
        const index_t width = g.cols(), rows = g.frames() * g.rows(), prefix = b.prefix(), win = window, steps = num_steps(g);
        auto slot = [&](index_t r, index_t c) { return prefix + r * width + c; };
        detail::raster_layout_and_prefill(b);
        for (index_t k = 1; k < std::min(width, steps); ++k) {  // row 0 alone
            b.begin_step();
            b.feed(slot(0, k - 1));
            b.emit(k, {{0, 0, 1.0f}});
        }
        for (index_t k = width; k < steps; ++k) {
            b.begin_step();
            // a row that emitted its last token in step k-1 (a(r) + W == k) feeds it now
            if (k >= 2 * width && (k - 2 * width) % win == 0) b.feed(slot((k - 2 * width) / win + 1, width - 1));
            const index_t first = k < 2 * width ? 1 : (k - 2 * width) / win + 2;  // a(r) + W > k
            const index_t last = std::min(rows - 1, (k - width) / win + 1);      // a(r) <= k
            for (index_t r = first; r <= last; ++r) {
                const index_t c = k - (width + (r - 1) * win);
                index_t row;
                if (c > 0) row = b.feed(slot(r, c - 1));
                else if (r == 1) row = b.feed(slot(0, width - 1));
                else row = b.feed_stand_in(slot(r - 1, width - 1), slot(r - 2, r == 2 ? width - 1 : std::min(2 * win - 1, width - 1)));
                b.emit(r * width + c, {{row, 0, 1.0f}});
            }
        }
    }

    constexpr std::string spec() const { return "zipar:" + detail::itos(window); }
    friend constexpr bool operator==(const next_set_wavefront&, const next_set_wavefront&) = default;

private:
    constexpr void check(grid_shape g) const {
        if (g.cols() < 3)
            throw error("zipar needs a grid at least 3 tokens wide (windows 2..W-1), got " + detail::itos(g.cols()));
        if (window < 2 || window > g.cols() - 1)
            throw error("zipar window must lie in 2.." + detail::itos(g.cols() - 1) + " on a grid " + detail::itos(g.cols()) +
                        " tokens wide (the released ZipAR supports no other window), got " + detail::itos(window));
    }
};

}  // namespace ordo
