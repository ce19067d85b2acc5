// A deterministic fuzz pass over the spec parsers that runs in every CI build (the coverage-guided
// harness is tests/fuzz/fuzz_specs.cpp): mutated specs give a plan or an ordo::error, nothing else.
#include <catch2/catch.hpp>
#include <random>
#include <ordo/ordo.hpp>

TEST_CASE("mutated policy and grid specs give a plan or a clear error", "[errors][fuzz]") {
    const std::vector<std::string> seeds{"raster", "nar", "par:2x2", "par:4x4+nar", "par:2x2x2", "zipar:8", "par:1x1+raster"};
    const std::vector<std::string> grids{"8x8", "4x16x16", "6x9", "1x1", "2x4x4"};
    const std::string alphabet = "0123456789x:+parsteniz-| \t\n\xff";
    std::mt19937 rng(12345);
    int plans = 0, errors = 0;
    for (int iter = 0; iter < 20000; ++iter) {
        std::string p = seeds[rng() % seeds.size()], g = grids[rng() % grids.size()];
        for (int m = rng() % 4; m > 0; --m) {
            std::string& s = rng() % 2 ? p : g;
            const std::size_t at = s.empty() ? 0 : rng() % (s.size() + 1);
            switch (rng() % 3) {
                case 0: s.insert(s.begin() + static_cast<long>(at), alphabet[rng() % alphabet.size()]); break;
                case 1: if (at < s.size()) s.erase(at, 1); break;
                default: if (at < s.size()) s[at] = alphabet[rng() % alphabet.size()]; break;
            }
        }
        try {
            const auto pol = ordo::parse_policy(p);
            const auto grid = ordo::parse_grid(g);
            if (grid.size() > 20000) continue;
            const ordo::plan pl = ordo::make_plan(pol, grid);
            REQUIRE(pl.num_steps() == ordo::num_steps(pol, grid));
            ++plans;
        } catch (const ordo::error& e) {
            REQUIRE(std::string(e.what()).rfind("ordo: ", 0) == 0);
            ++errors;
        }
    }
    CHECK(plans > 1000);
    CHECK(errors > 1000);
}
