// ordo/schedules/lpd_order.hpp - LPD's locality-aware generation orders and released group sizes.
//
// LPD (Locality-aware Parallel Decoding, mit-han-lab/lpd) decodes a fixed permutation of the grid
// in groups: step k emits the next group_sizes[k] cells of the order. The order is drawn once per
// image by a greedy generator (orders/lpd_order.py, lpd_order_schedule at commit f447b83):
//   step 0   one random cell;
//   step s   score every undecided cell by sum(1 / distance) over its decided 8-neighbours,
//            visit them from the highest score down (equal scores in shuffled order), and take
//            those scoring >= the proximity threshold unless one taken in this step lies within
//            the repulsion threshold (Chebyshev); fill the rest of the group by farthest-point
//            sampling from the cells taken in this step.
// make_lpd_order reproduces the reference's orders exactly for the same seed (random.seed(seed) and
// np.random.seed(seed) before one call), tests/test_lpd_order.cpp checks 60 of them. That needs the
// reference's draw sequence and tie-breaks, so the steps below follow it where it matters, noted.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "../config.hpp"
#include "../grid.hpp"
#include "python_random.hpp"

namespace ordo::schedules {

// A generated order: the raster cells in decode order, and how many of them each step decodes.
struct lpd_order {
    std::vector<index_t> order;
    std::vector<index_t> group_sizes;  // sums to order.size(); group_sizes[0] == 1
};

// Thresholds of the released orders (orders/run_lpd_order.sh, scripts/eval/*.sh): proximity 1.0
// everywhere; repulsion 2.0 for 256 tokens in 20 and 32 steps, 3.0 for 256-20 (XXL), 4.0 for
// 1024 tokens in 48 steps.
inline constexpr double lpd_default_proximity_threshold = 1.0;

namespace detail {

struct lpd_run { index_t size, count; };  // `count` steps of `size` cells each

// orders/group_sizes_lookup.json (commit f447b83), run-length encoded. Only 256 tokens (16x16,
// "256 resolution") and 1024 tokens (32x32, "512 resolution") have released schedules.
inline constexpr lpd_run lpd_runs[] = {
    // 256 tokens, 256 steps
    {1, 256},
    // 256 tokens, 128 steps
    {1, 41}, {2, 46}, {3, 41},
    // 256 tokens, 64 steps
    {1, 10}, {2, 7}, {3, 7}, {4, 9}, {5, 11}, {6, 20},
    // 256 tokens, 32 steps
    {1, 2}, {2, 2}, {3, 2}, {4, 1}, {5, 2}, {6, 2}, {7, 2}, {8, 2}, {9, 2}, {10, 3}, {11, 4}, {12, 8},
    // 256 tokens, 24 steps
    {1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}, {6, 1}, {7, 1}, {8, 1}, {9, 1}, {10, 1}, {11, 2}, {12, 1}, {13, 1},
    {14, 3}, {15, 2}, {16, 3}, {17, 2},
    // 256 tokens, 20 steps
    {1, 1}, {2, 1}, {4, 1}, {5, 1}, {7, 1}, {8, 1}, {10, 1}, {11, 1}, {12, 1}, {14, 1}, {15, 1}, {16, 1}, {17, 1},
    {18, 2}, {19, 2}, {20, 3},
    // 256 tokens, 16 steps
    {1, 1}, {4, 1}, {6, 1}, {8, 1}, {11, 1}, {13, 1}, {15, 1}, {17, 1}, {19, 1}, {20, 1}, {22, 1}, {23, 1}, {24, 3},
    {25, 1},
    // 256 tokens, 12 steps
    {1, 1}, {7, 1}, {11, 1}, {15, 1}, {19, 1}, {22, 1}, {25, 1}, {28, 1}, {30, 1}, {32, 1}, {33, 2},
    // 256 tokens, 8 steps
    {1, 1}, {15, 1}, {24, 1}, {32, 1}, {40, 1}, {45, 1}, {49, 1}, {50, 1},
    // 1024 tokens, 1024 steps
    {1, 1024},
    // 1024 tokens, 512 steps
    {1, 162}, {2, 188}, {3, 162},
    // 1024 tokens, 256 steps
    {1, 39}, {2, 28}, {3, 31}, {4, 34}, {5, 44}, {6, 80},
    // 1024 tokens, 224 steps
    {1, 32}, {2, 21}, {3, 21}, {4, 24}, {5, 27}, {6, 37}, {7, 62},
    // 1024 tokens, 192 steps
    {1, 22}, {2, 15}, {3, 16}, {4, 16}, {5, 19}, {6, 21}, {7, 27}, {8, 55}, {10, 1},
    // 1024 tokens, 160 steps
    {1, 15}, {2, 11}, {3, 10}, {4, 12}, {5, 12}, {6, 13}, {7, 14}, {8, 17}, {9, 23}, {10, 33},
    // 1024 tokens, 128 steps
    {1, 10}, {2, 6}, {3, 7}, {4, 7}, {5, 7}, {6, 7}, {7, 8}, {8, 9}, {9, 9}, {10, 11}, {11, 14}, {12, 26}, {13, 7},
    // 1024 tokens, 96 steps
    {1, 5}, {2, 4}, {3, 4}, {4, 4}, {5, 3}, {6, 4}, {7, 4}, {8, 5}, {9, 4}, {10, 4}, {11, 6}, {12, 5}, {13, 6},
    {14, 7}, {15, 8}, {16, 13}, {17, 10},
    // 1024 tokens, 80 steps
    {1, 4}, {2, 2}, {3, 3}, {4, 2}, {5, 3}, {6, 3}, {7, 2}, {8, 3}, {9, 3}, {10, 3}, {11, 3}, {12, 3}, {13, 3},
    {14, 4}, {15, 4}, {16, 4}, {17, 6}, {18, 6}, {19, 7}, {20, 12},
    // 1024 tokens, 64 steps
    {1, 2}, {2, 2}, {3, 2}, {4, 1}, {5, 2}, {6, 2}, {7, 1}, {8, 2}, {9, 2}, {10, 2}, {11, 1}, {12, 2}, {13, 2},
    {14, 2}, {15, 2}, {16, 2}, {17, 2}, {18, 3}, {19, 2}, {20, 3}, {21, 3}, {22, 3}, {23, 5}, {24, 6}, {25, 8},
    // 1024 tokens, 56 steps
    {1, 2}, {2, 1}, {3, 1}, {4, 2}, {5, 1}, {6, 1}, {7, 1}, {8, 2}, {9, 1}, {10, 1}, {11, 2}, {12, 1}, {13, 1},
    {14, 2}, {15, 1}, {16, 2}, {17, 1}, {18, 2}, {19, 2}, {20, 1}, {21, 2}, {22, 2}, {23, 2}, {24, 2}, {25, 3},
    {26, 3}, {27, 5}, {28, 6}, {29, 3},
    // 1024 tokens, 48 steps
    {1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}, {6, 1}, {7, 1}, {8, 1}, {9, 1}, {10, 1}, {11, 1}, {12, 1}, {13, 1},
    {14, 1}, {15, 1}, {16, 1}, {17, 1}, {18, 1}, {19, 1}, {20, 1}, {21, 1}, {22, 1}, {23, 2}, {24, 1}, {25, 1},
    {26, 2}, {27, 1}, {28, 2}, {29, 2}, {30, 2}, {31, 2}, {32, 3}, {33, 7}, {34, 1},
    // 1024 tokens, 40 steps
    {1, 1}, {2, 1}, {4, 1}, {6, 1}, {7, 1}, {9, 1}, {10, 1}, {12, 1}, {13, 1}, {15, 1}, {16, 1}, {18, 1}, {19, 1},
    {20, 1}, {22, 1}, {23, 1}, {24, 1}, {26, 1}, {27, 1}, {28, 1}, {29, 1}, {30, 1}, {31, 1}, {32, 1}, {33, 1},
    {34, 1}, {35, 2}, {36, 1}, {37, 2}, {38, 2}, {39, 3}, {40, 4},
    // 1024 tokens, 32 steps
    {1, 1}, {4, 1}, {6, 1}, {9, 1}, {11, 1}, {13, 1}, {16, 1}, {18, 1}, {20, 1}, {23, 1}, {25, 1}, {27, 1}, {29, 1},
    {31, 1}, {33, 1}, {35, 1}, {36, 1}, {38, 1}, {40, 1}, {41, 1}, {42, 1}, {44, 1}, {45, 1}, {46, 1}, {47, 1},
    {48, 2}, {49, 2}, {50, 3},
};

struct lpd_table { index_t tokens, steps, first_run, runs; };
inline constexpr lpd_table lpd_tables[] = {
    {256, 256, 0, 1},
    {256, 128, 1, 3},
    {256, 64, 4, 6},
    {256, 32, 10, 12},
    {256, 24, 22, 17},
    {256, 20, 39, 16},
    {256, 16, 55, 14},
    {256, 12, 69, 11},
    {256, 8, 80, 8},
    {1024, 1024, 88, 1},
    {1024, 512, 89, 3},
    {1024, 256, 92, 6},
    {1024, 224, 98, 7},
    {1024, 192, 105, 9},
    {1024, 160, 114, 10},
    {1024, 128, 124, 13},
    {1024, 96, 137, 17},
    {1024, 80, 154, 20},
    {1024, 64, 174, 25},
    {1024, 56, 199, 29},
    {1024, 48, 228, 34},
    {1024, 40, 262, 32},
    {1024, 32, 294, 28},
};

}  // namespace detail

// The step counts with a released schedule for `tokens` positions (none for other sizes).
constexpr std::vector<index_t> lpd_released_steps(index_t tokens) {
    std::vector<index_t> steps;
    for (const detail::lpd_table& t : detail::lpd_tables)
        if (t.tokens == tokens) steps.push_back(t.steps);
    return steps;
}

// The released schedule for `tokens` positions in `steps` steps, e.g. lpd_group_sizes(256, 20) =
// {1, 2, 4, 5, 7, 8, 10, ...}. Throws when LPD released none (576 tokens has none, for one).
constexpr std::vector<index_t> lpd_group_sizes(index_t tokens, index_t steps) {
    for (const detail::lpd_table& t : detail::lpd_tables) {
        if (t.tokens != tokens || t.steps != steps) continue;
        std::vector<index_t> sizes;
        sizes.reserve(static_cast<std::size_t>(steps));
        for (index_t r = t.first_run; r < t.first_run + t.runs; ++r)
            sizes.insert(sizes.end(), static_cast<std::size_t>(detail::lpd_runs[r].count), detail::lpd_runs[r].size);
        return sizes;
    }
    using ordo::detail::itos;
    std::string released = "only for 256 and 1024 tokens";
    if (const auto have = lpd_released_steps(tokens); !have.empty()) {
        released = "for " + itos(tokens) + " tokens:";
        for (const index_t s : have) released += " " + itos(s);
        released += " steps";
    }
    throw error("LPD released no group sizes for " + itos(tokens) + " tokens in " + itos(steps) + " steps (" + released +
                "); pass your own list to make_lpd_order");
}

namespace detail {

inline void check_lpd_inputs(const grid_shape& grid, std::span<const index_t> group_sizes, double proximity_threshold,
                             double repulsion_threshold, std::uint64_t seed) {
    using ordo::detail::ftos;
    using ordo::detail::itos;
    if (grid.rank() != 2)
        throw error("LPD orders are for 2-D image grids, got the " + std::to_string(grid.rank()) + "-D grid " + grid.str());
    if (group_sizes.empty())
        throw error("LPD group sizes are empty; they must sum to the grid's " + itos(grid.size()) + " positions");
    long long total = 0;
    for (std::size_t k = 0; k < group_sizes.size(); ++k) {
        if (group_sizes[k] < 1)
            throw error("LPD group size " + itos(group_sizes[k]) + " at step " + itos(static_cast<long long>(k)) +
                        "; every step decodes at least one cell");
        total += group_sizes[k];
    }
    // the reference picks exactly one cell at step 0 whatever its group size says
    if (group_sizes[0] != 1)
        throw error("LPD orders start from one random cell, so the first group size must be 1, got " + itos(group_sizes[0]));
    if (total != grid.size())
        throw error("LPD group sizes sum to " + itos(total) + " but the grid " + grid.str() + " has " +
                    itos(grid.size()) + " positions");
    const auto check_threshold = [](double v, const char* name) {
        if (!(v >= 0.0)) throw error(std::string("LPD ") + name + " threshold must be a number >= 0, got " + ftos(v));
    };
    check_threshold(proximity_threshold, "proximity");
    check_threshold(repulsion_threshold, "repulsion");
    // the reference seeds numpy's legacy RNG with the same seed, and numpy takes only 32 bits
    if (seed > 0xffffffffull)
        throw error("LPD order seed " + std::to_string(seed) + " is not below 2^32 (np.random.seed, seeded alongside random.seed, rejects it)");
}

}  // namespace detail

// The locality-aware order of `grid` (H x W; the reference only draws square grids) decoded in
// groups of `group_sizes`, as the reference draws it after random.seed(seed); np.random.seed(seed).
// Costs O(N log N) per step.
inline lpd_order make_lpd_order(const grid_shape& grid, std::span<const index_t> group_sizes, double proximity_threshold,
                                double repulsion_threshold, std::uint64_t seed) {
    detail::check_lpd_inputs(grid, group_sizes, proximity_threshold, repulsion_threshold, seed);
    const index_t rows = grid.rows(), cols = grid.cols(), n = grid.size();
    python_random py(seed);
    numpy_random_state np(static_cast<std::uint32_t>(seed));

    lpd_order out{{}, std::vector<index_t>(group_sizes.begin(), group_sizes.end())};
    out.order.reserve(static_cast<std::size_t>(n));
    std::vector<index_t> rank(static_cast<std::size_t>(n), -1);  // a cell's place in the order, -1 while undecided
    const auto decide = [&](index_t cell) {
        rank[static_cast<std::size_t>(cell)] = static_cast<index_t>(out.order.size());
        out.order.push_back(cell);
    };

    // Sum of 1/distance over the decided 8-neighbours, added in decision order like the reference:
    // 1 + 1/sqrt2 + 1/sqrt2 and 1/sqrt2 + 1/sqrt2 + 1 can differ in the last bit, and equal
    // scores are broken by the shuffle, so the rounding decides the order.
    const double diagonal = 1.0 / std::sqrt(2.0);
    const auto proximity = [&](index_t cell) {
        struct neighbour { index_t rank; double weight; };
        std::array<neighbour, 8> near{};
        int count = 0;
        const index_t r = cell / cols, c = cell % cols;
        for (index_t dr = -1; dr <= 1; ++dr)
            for (index_t dc = -1; dc <= 1; ++dc) {
                if ((dr == 0 && dc == 0) || r + dr < 0 || r + dr >= rows || c + dc < 0 || c + dc >= cols) continue;
                const index_t k = rank[static_cast<std::size_t>((r + dr) * cols + c + dc)];
                if (k >= 0) near[static_cast<std::size_t>(count++)] = {k, dr != 0 && dc != 0 ? diagonal : 1.0};
            }
        std::sort(near.begin(), near.begin() + count, [](const neighbour& a, const neighbour& b) { return a.rank < b.rank; });
        double score = 0.0;
        for (int i = 0; i < count; ++i) score += near[static_cast<std::size_t>(i)].weight;
        return score;
    };
    const auto chebyshev_within = [&](index_t a, index_t b, double limit) {
        return std::abs(a / cols - b / cols) <= limit && std::abs(a % cols - b % cols) <= limit;
    };
    const auto distance2 = [&](index_t a, index_t b) {
        const std::int64_t dr = a / cols - b / cols, dc = a % cols - b % cols;
        return dr * dr + dc * dc;
    };

    // step 0: random.choice over the cells in raster order
    decide(static_cast<index_t>(py.choice_index(static_cast<std::size_t>(n))));

    struct candidate { double score; index_t cell; };
    std::vector<candidate> candidates;
    std::vector<index_t> proximate, rest, picked, rejected;  // the reference's candidates1, candidates2, step_selected, step_filtered
    std::vector<std::int64_t> nearest2;                  // squared distance from each of `rest` to the nearest pick
    for (std::size_t step = 1; step < group_sizes.size(); ++step) {
        const auto want = static_cast<std::size_t>(group_sizes[step]);
        candidates.clear();
        for (index_t cell = 0; cell < n; ++cell)
            if (rank[static_cast<std::size_t>(cell)] < 0) candidates.push_back({proximity(cell), cell});
        // shuffle, then a stable sort by descending score: ties keep the shuffled order
        py.shuffle(std::span<candidate>(candidates));
        std::stable_sort(candidates.begin(), candidates.end(), [](const candidate& a, const candidate& b) { return a.score > b.score; });

        proximate.clear(); rest.clear(); picked.clear(); rejected.clear();
        for (const candidate& c : candidates) (c.score >= proximity_threshold ? proximate : rest).push_back(c.cell);

        // proximity picks, skipping (not dropping) cells too close to one picked in this step
        std::size_t visited = 0;
        while (picked.size() < want && visited < proximate.size()) {
            const index_t cell = proximate[visited++];
            const bool too_close =
                std::any_of(picked.begin(), picked.end(), [&](index_t p) { return chebyshev_within(cell, p, repulsion_threshold); });
            (too_close ? rejected : picked).push_back(cell);
        }
        // the fallback pool, in the reference's order: low scores, then skipped, then unvisited
        rest.insert(rest.end(), rejected.begin(), rejected.end());
        rest.insert(rest.end(), proximate.begin() + static_cast<std::ptrdiff_t>(visited), proximate.end());

        // farthest-point fill, measured from this step's picks only; first index wins ties. Squared
        // integer distances order exactly as the reference's float ones (sqrt is monotone and
        // distinct integers this small have distinct roots).
        const std::size_t missing = want - picked.size();
        if (missing > 0 && rest.size() <= missing) {
            picked.insert(picked.end(), rest.begin(), rest.end());
        } else if (missing > 0) {
            nearest2.assign(rest.size(), std::numeric_limits<std::int64_t>::max());
            const auto include = [&](index_t from) {
                for (std::size_t i = 0; i < rest.size(); ++i) nearest2[i] = std::min(nearest2[i], distance2(rest[i], from));
            };
            for (const index_t p : picked) include(p);
            for (std::size_t k = 0; k < missing; ++k) {
                // with nothing picked yet the reference starts from np.random.randint(len(pool))
                const std::size_t best = picked.empty()
                    ? static_cast<std::size_t>(np.randint(static_cast<std::int64_t>(rest.size())))
                    : static_cast<std::size_t>(std::max_element(nearest2.begin(), nearest2.end()) - nearest2.begin());
                picked.push_back(rest[best]);
                include(rest[best]);  // its own distance becomes 0: never picked twice
            }
        }
        for (const index_t cell : picked) decide(cell);
    }
    return out;
}

}  // namespace ordo::schedules
