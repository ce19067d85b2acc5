// The random stream's generator against the reference: Philox4x32-10 known-answer vectors from
// Random123 (D. E. Shaw Research, tests/kat_vectors, the three "philox4x32 10" lines: counter,
// key -> output). Host and device samplers draw from this one function (random.hpp), so a wrong
// round or key schedule would change every sampled token without any other test noticing.
#include <catch2/catch.hpp>

#include <array>
#include <cstdint>

#include <ordo/engine/random.hpp>

namespace {

struct known_answer {
    std::array<std::uint32_t, 4> ctr;
    std::array<std::uint32_t, 2> key;
    std::array<std::uint32_t, 4> out;
};
constexpr known_answer kPhilox4x32_10[] = {
    {{0x00000000, 0x00000000, 0x00000000, 0x00000000}, {0x00000000, 0x00000000}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}, {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}, {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
};

}  // namespace

TEST_CASE("philox4x32-10 reproduces the Random123 known-answer vectors", "[random]") {
    for (const known_answer& k : kPhilox4x32_10) CHECK(ordo::philox4x32(k.ctr, k.key) == k.out);
    // and during constant evaluation
    STATIC_REQUIRE(ordo::philox4x32(kPhilox4x32_10[2].ctr, kPhilox4x32_10[2].key) == kPhilox4x32_10[2].out);
}

TEST_CASE("uniform_draw is the top 24 bits of Philox word 0 for counter (position, draw, request) and key seed", "[random]") {
    // all-zero counter and key: 0x6627e8d5 >> 8 = 0x6627e8
    CHECK(ordo::uniform_draw(0, 0, 0, 0) == static_cast<float>(0x6627e8) / 16777216.0f);
    // all ones: position -1 is the 32-bit counter word 0xffffffff; 0x408f276d >> 8 = 0x408f27
    CHECK(ordo::uniform_draw(~0ull, ~0ull, -1, ~0u) == static_cast<float>(0x408f27) / 16777216.0f);
    // the digits of pi: counter words (position, draw, request low, request high), key (seed low, seed high)
    CHECK(ordo::uniform_draw(0x299f31d0a4093822ull, 0x0370734413198a2eull, static_cast<ordo::index_t>(0x243f6a88), 0x85a308d3u) ==
          static_cast<float>(0xd16cfe) / 16777216.0f);
}
