// ordo/policies/region_parallel.hpp - PAR: regions decoded in parallel, any inner order per region.
#pragma once

#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "../policy.hpp"
#include "raster.hpp"

namespace ordo {

// The grid is cut into regions_t x regions_h x regions_w regions (n in all), each decoded with the
// `Inner` policy on the region's sub-grid, all regions in lockstep:
//   steps 0..n-1   the inner first token of region 0, 1, ..., n-1, one per step (step 0 from the
//                  prefix; step i from region i-1's token), read with the inner step-0 heads;
//   step n         feeds [region n-1's first token, M_1..M_{n-1}] (learned transition tokens):
//                  region j's inner step-1 tokens are read from row j;
//   step n+s-1     inner step s in every region at once, rows region-major.
// Slots: [prefix, first tokens of regions 0..n-1, M_1..M_{n-1}, then tokens in emission order].
// Mask: causal by step (bidirectional inside a fed group). RoPE: tokens rotate with their own grid
// cell, prefix and M slots get zero rows. With Inner = raster this is exactly official PAR
// (steps = n + N/n - 1); with Inner = neighbor_frontier it is the PAR x NAR hybrid.
template <class Inner = raster>
struct region_parallel {
    static_assert(decode_policy<Inner>, "region_parallel<Inner>: Inner must be a decode_policy");
    static_assert(Inner::mask == mask_mode::step_causal,
                  "region_parallel<Inner>: Inner must have a step-causal mask (the regions share one causal-by-step mask)");
    static constexpr mask_mode mask = mask_mode::step_causal;

    index_t regions_t = 1, regions_h = 2, regions_w = 2;
    Inner inner{};

    constexpr region_parallel() = default;
    constexpr region_parallel(index_t rh, index_t rw, Inner in = {}) : regions_h(rh), regions_w(rw), inner(in) {}
    constexpr region_parallel(index_t rt, index_t rh, index_t rw, Inner in = {})
        : regions_t(rt), regions_h(rh), regions_w(rw), inner(in) {}

    constexpr index_t num_regions() const {
        return detail::checked_mul(detail::checked_mul(regions_t, regions_h, "region count"), regions_w, "region count");
    }

    // The sub-grid one region covers; throws when the regions don't divide the grid.
    constexpr grid_shape region_grid(grid_shape g) const {
        if (regions_t < 1 || regions_h < 1 || regions_w < 1) fail_region_counts();
        if (g.rank() == 2 && regions_t != 1) fail_temporal(g);
        if (g.frames() % regions_t || g.rows() % regions_h || g.cols() % regions_w) fail_indivisible(g);
        return g.rank() == 3 ? grid_shape::make(g.frames() / regions_t, g.rows() / regions_h, g.cols() / regions_w)
                             : grid_shape::make(g.rows() / regions_h, g.cols() / regions_w);
    }

    constexpr index_t num_steps(grid_shape g) const {
        const grid_shape rg = region_grid(g);  // first: it rejects region counts the grid cannot hold
        return num_regions() + ordo::num_steps(inner, rg) - 1;
    }

    ORDO_DETAIL_FLATTEN constexpr void build(plan_builder& b) const {
        const grid_shape g = b.grid(), rg = region_grid(g);
        const index_t n = num_regions(), prefix = b.prefix();
        const plan ip = make_plan(inner, rg, 1);
        const plan_view iv = ip.view();
        const index_t inner_steps = iv.num_steps();
        const plan_header& ih = iv.header;

        switch (ih.num_heads) {  // the inner policy's heads are the model's heads
            case 1: b.set_heads({ih.head_names[0]}); break;
            case 2: b.set_heads({ih.head_names[0], ih.head_names[1]}); break;
            case 3: b.set_heads({ih.head_names[0], ih.head_names[1], ih.head_names[2]}); break;
            default: b.set_heads({ih.head_names[0], ih.head_names[1], ih.head_names[2], ih.head_names[3]}); break;
        }
        b.set_encoding(position_encoding::rope);
        b.set_forcing(teacher_forcing::shifted);

        const step_view first = iv.step(0);
        if (first.num_emitted() != 1)
            fail_inner_first(first.num_emitted());
        const index_t first_pos = first.emitted[0];
        // position in the full grid of inner position q in region j. The grid index is linear in the
        // coordinates, so it is the region's origin plus the inner cell's offset (both tabulated once).
        std::vector<index_t> table(static_cast<std::size_t>(n) + static_cast<std::size_t>(rg.size()), 0);
        index_t* const origin = table.data();   // [n]: grid index of region j's first cell
        index_t* const offset = origin + n;     // [region size]: grid offset of inner cell q
        for (index_t j = 0; j < n; ++j) {
            const index_t jt = j / (regions_h * regions_w), jh = (j / regions_w) % regions_h, jw = j % regions_w;
            origin[j] = g.index({jt * rg.frames(), jh * rg.rows(), jw * rg.cols()});
        }
        for (index_t t = 0, q = 0; t < rg.frames(); ++t)
            for (index_t h = 0; h < rg.rows(); ++h)
                for (index_t w = 0; w < rg.cols(); ++w) offset[q++] = g.index({t, h, w});
        auto to_grid = [&](index_t j, index_t q) { return origin[j] + offset[q]; };
        // emit inner position q of region j, mapping inner rows through row_base
        auto emit_mapped = [&](index_t j, const step_view& is, index_t k, index_t row_base, bool single_row) {
            const std::span<const contribution> cs = is.from(k);
            if (cs.size() > static_cast<std::size_t>(max_heads * 8)) throw error("region_parallel: inner token mixed from too many rows");
            const index_t pos = to_grid(j, is.emitted[static_cast<std::size_t>(k)]);
            b.emit(pos, mapped_source{cs.data(), row_base, single_row}, mapped_source{cs.data() + cs.size(), row_base, single_row});
            b.add_token_slot(pos);
        };

        // sequential phase: the first token of every region
        for (index_t j = 0; j < n; ++j) {
            b.begin_step();
            if (j == 0)
                for (index_t i = 0; i < prefix; ++i) b.feed(i);
            else
                b.feed(b.slot_of(to_grid(j - 1, first_pos)));
            emit_mapped(j, first, 0, j == 0 ? prefix - 1 : 0, true);
        }
        if (inner_steps == 1) return;

        // transition step: [last first-token, M_1..M_{n-1}] -> inner step 1 of every region
        index_t m_slots_begin = b.num_slots();
        for (index_t i = 1; i < n; ++i) b.add_transition_slot();
        const step_view s1 = iv.step(1);
        if (s1.num_rows() != 1)
            fail_inner_second();
        b.begin_step();
        b.feed(b.slot_of(to_grid(n - 1, first_pos)));
        for (index_t i = 1; i < n; ++i) b.feed(m_slots_begin + i - 1);
        for (index_t j = 0; j < n; ++j)
            for (index_t k = 0; k < s1.num_emitted(); ++k) emit_mapped(j, s1, k, j, true);

        // lockstep phase
        for (index_t s = 2; s < inner_steps; ++s) {
            const step_view is = iv.step(s);
            b.begin_step();
            for (index_t j = 0; j < n; ++j)
                for (index_t slot : is.fed) {
                    const slot_entry& e = iv.slots[static_cast<std::size_t>(slot)];
                    if (e.kind != slot_kind::token)
                        fail_inner_feeds_non_token();
                    b.feed(b.slot_of(to_grid(j, e.index)));
                }
            for (index_t j = 0; j < n; ++j)
                for (index_t k = 0; k < is.num_emitted(); ++k) emit_mapped(j, is, k, j * is.num_rows(), false);
        }
    }

    constexpr std::string spec() const {
        // appends only: GCC 12 misreports "literal" + std::string&& as overlapping (-Wrestrict) once inlined
        std::string s = "par:";
        s += region_str();
        if constexpr (!std::is_same_v<Inner, raster>) {
            s += "+";
            s += inner.spec();
        }
        return s;
    }
    friend constexpr bool operator==(const region_parallel&, const region_parallel&) = default;

private:
    // Iterator over an inner token's contributions, as sources with the rows mapped to the full step.
    struct mapped_source {
        const contribution* c;
        index_t row_base;
        bool single_row;
        constexpr source operator*() const { return {single_row ? row_base : row_base + c->row, c->head, c->weight}; }
        constexpr mapped_source& operator++() {
            ++c;
            return *this;
        }
        constexpr bool operator!=(const mapped_source& o) const { return c != o.c; }
    };

    // Error paths, out of line (build() inlines everything else it calls).
    [[noreturn]] ORDO_DETAIL_COLD constexpr void fail_region_counts() const {
        throw error("region counts must be >= 1 (" + spec() + ")");
    }
    [[noreturn]] ORDO_DETAIL_COLD constexpr void fail_temporal(grid_shape g) const {
        throw error("temporal regions (" + spec() + ") need a T x H x W grid, got " + g.str());
    }
    [[noreturn]] ORDO_DETAIL_COLD constexpr void fail_indivisible(grid_shape g) const {
        throw error("grid " + g.str() + " is not divisible into " + region_str() + " regions");
    }
    [[noreturn]] ORDO_DETAIL_COLD constexpr void fail_inner_first(index_t emitted) const {
        throw error("region_parallel: the inner policy's first step must emit exactly one token (" + inner.spec() + " emits " +
                    detail::itos(emitted) + ")");
    }
    [[noreturn]] ORDO_DETAIL_COLD constexpr void fail_inner_second() const {
        throw error("region_parallel: the inner policy's second step must feed one row (" + inner.spec() + ")");
    }
    [[noreturn]] ORDO_DETAIL_COLD constexpr void fail_inner_feeds_non_token() const {
        throw error("region_parallel: the inner policy feeds a non-token slot after its second step (" + inner.spec() + ")");
    }

    constexpr std::string region_str() const {
        return (regions_t != 1 ? detail::itos(regions_t) + "x" : std::string()) + detail::itos(regions_h) + "x" +
               detail::itos(regions_w);
    }
};

}  // namespace ordo
