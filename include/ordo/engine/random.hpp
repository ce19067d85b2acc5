// ordo/engine/random.hpp - the counter-based random stream (Philox4x32-10).
// A draw is a pure function of (seed, request, position, draw index): a request's tokens do not
// depend on which other requests share its batch or on the order that emitted them, and a host
// and a device sampler given the same logits draw the same token.
#pragma once

#include <array>
#include <cstdint>

#include "../config.hpp"

namespace ordo {

// Philox4x32 with 10 rounds (Salmon et al., SC'11), the generator of cuRAND and of
// numpy's Philox: counter (4 x 32 bit) and key (2 x 32 bit) in, 4 x 32 random bits out.
ORDO_HD constexpr std::array<std::uint32_t, 4> philox4x32(std::array<std::uint32_t, 4> ctr, std::array<std::uint32_t, 2> key) {
    constexpr std::uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u, w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
    for (int round = 0; round < 10; ++round) {
        const std::uint64_t p0 = static_cast<std::uint64_t>(m0) * ctr[0];
        const std::uint64_t p1 = static_cast<std::uint64_t>(m1) * ctr[2];
        ctr = {static_cast<std::uint32_t>(p1 >> 32) ^ ctr[1] ^ key[0], static_cast<std::uint32_t>(p1),
               static_cast<std::uint32_t>(p0 >> 32) ^ ctr[3] ^ key[1], static_cast<std::uint32_t>(p0)};
        key = {key[0] + w0, key[1] + w1};
    }
    return ctr;
}

// The uniform in [0, 1) used to draw the token of `position` for `request` (24 random bits, so
// it is exact in float and double alike).
ORDO_HD constexpr float uniform_draw(std::uint64_t seed, std::uint64_t request, index_t position, std::uint32_t draw = 0) {
    const auto r = philox4x32({static_cast<std::uint32_t>(position), draw, static_cast<std::uint32_t>(request),
                               static_cast<std::uint32_t>(request >> 32)},
                              {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
    return static_cast<float>(r[0] >> 8) * (1.0f / 16777216.0f);
}

}  // namespace ordo
