// ordo/schedules/random_order.hpp - a uniformly random generation order from a seed, for the
// random-order methods (RandAR, ARPG). Their official orders come from torch's RNG
// (torch.randperm, torch.rand(...).argsort()), which ordo does not reproduce: a seed here names
// ordo's own permutation, and the official orders are passed as data (the golden tests do).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "../config.hpp"

namespace ordo::schedules {

namespace detail {
// SplitMix64 (Steele, Lea, Flood 2014): a full-period 64-bit stream, enough for a shuffle.
struct splitmix64 {
    std::uint64_t state;
    constexpr std::uint64_t next() {
        std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    // uniform in [0, n), n >= 1, without modulo bias (draws past the last whole multiple of n are
    // rejected)
    constexpr std::uint64_t below(std::uint64_t n) {
        const std::uint64_t limit = ~std::uint64_t{0} - ~std::uint64_t{0} % n;
        std::uint64_t x = next();
        while (x >= limit) x = next();
        return x % n;
    }
};
}  // namespace detail

// A permutation of [0, n): the cell of each generation index, every permutation equally likely
// (Fisher-Yates over SplitMix64 seeded with `seed`). The same seed gives the same order everywhere.
constexpr std::vector<index_t> random_order(index_t n, std::uint64_t seed) {
    if (n < 1 || n > max_grid_positions)
        throw error("random_order: " + ordo::detail::itos(n) + " cells, expected 1.." + ordo::detail::itos(max_grid_positions));
    std::vector<index_t> order(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
    detail::splitmix64 rng{seed};
    for (index_t i = n - 1; i > 0; --i) {
        const auto j = static_cast<std::size_t>(rng.below(static_cast<std::uint64_t>(i) + 1));
        std::swap(order[static_cast<std::size_t>(i)], order[j]);
    }
    return order;
}

}  // namespace ordo::schedules
