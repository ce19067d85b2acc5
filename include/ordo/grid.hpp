// ordo/grid.hpp - the token lattice: T x H x W (T = 1 and rank 2 for images).
#pragma once

#include <array>
#include <string>

#include "config.hpp"

namespace ordo {

// A position's coordinates; t = 0 for images.
struct coord {
    index_t t = 0, h = 0, w = 0;
    friend constexpr bool operator==(const coord&, const coord&) = default;
};

// Runtime grid: the one value type every algorithm takes. Static grids convert to it.
class grid_shape {
public:
    constexpr grid_shape() = default;

    // Validating factories: extents >= 1 and at most max_grid_positions (config.hpp) positions.
    static constexpr grid_shape make(long long h, long long w) { return grid_shape(2, 1, h, w); }
    static constexpr grid_shape make(long long t, long long h, long long w) { return grid_shape(3, t, h, w); }

    constexpr int rank() const { return rank_; }
    constexpr index_t frames() const { return t_; }
    constexpr index_t rows() const { return h_; }
    constexpr index_t cols() const { return w_; }
    constexpr index_t size() const { return t_ * h_ * w_; }

    // raster index t*H*W + h*W + w
    ORDO_HD constexpr index_t index(coord c) const { return (c.t * h_ + c.h) * w_ + c.w; }
    ORDO_HD constexpr coord at(index_t p) const { return {p / (h_ * w_), (p / w_) % h_, p % w_}; }

    constexpr std::string str() const {
        std::string s = rank_ == 3 ? detail::itos(t_) + "x" : std::string();
        return s + detail::itos(h_) + "x" + detail::itos(w_);
    }
    friend constexpr bool operator==(const grid_shape&, const grid_shape&) = default;

private:
    constexpr grid_shape(int rank, long long t, long long h, long long w) : rank_(rank) {
        if (t < 1 || h < 1 || w < 1)
            throw error("grid extents must be >= 1, got " + (rank == 3 ? detail::itos(t) + "x" : std::string()) +
                        detail::itos(h) + "x" + detail::itos(w));
        // the product of extents each <= max_grid_positions never leaves long long on the way
        const long long cap = max_grid_positions;
        if (t > cap || h > cap || w > cap || t * h > cap || t * h * w > cap)
            throw error("grid " + (rank == 3 ? detail::itos(t) + "x" : std::string()) + detail::itos(h) + "x" + detail::itos(w) +
                        " has more than " + detail::itos(cap) + " positions (ordo::max_grid_positions, which bounds a plan's memory)");
        rank_ = rank; t_ = static_cast<index_t>(t); h_ = static_cast<index_t>(h); w_ = static_cast<index_t>(w);
    }
    int rank_ = 2;
    index_t t_ = 1, h_ = 1, w_ = 1;
};

// Static grid: grid<H, W> for images, grid<T, H, W> for video. Extents are checked at compile time.
template <index_t... E>
struct grid {
    static_assert(sizeof...(E) == 2 || sizeof...(E) == 3, "ordo::grid takes <H, W> or <T, H, W>");
    static_assert(((E >= 1) && ...), "ordo::grid extents must be >= 1");
    static_assert((1LL * ... * E) <= max_index / 2, "ordo::grid size overflows the 32-bit index type");
    static_assert((1LL * ... * E) <= max_grid_positions, "ordo::grid has more positions than ordo::max_grid_positions");
    static constexpr int rank = sizeof...(E);
    static constexpr index_t size = (1 * ... * E);
    constexpr operator grid_shape() const {
        constexpr std::array<long long, sizeof...(E)> e{E...};
        if constexpr (sizeof...(E) == 2) return grid_shape::make(e[0], e[1]);
        else return grid_shape::make(e[0], e[1], e[2]);
    }
    constexpr grid_shape shape() const { return *this; }
};

// Anything convertible to grid_shape is a grid (static or dynamic).
template <class G>
concept grid_like = std::is_convertible_v<G, grid_shape>;

}  // namespace ordo
