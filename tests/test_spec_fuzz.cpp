// A deterministic fuzz pass over the spec parsers that runs in every CI build (the coverage-guided
// harness is tests/fuzz/fuzz_specs.cpp): mutated specs give a plan or an ordo::error, nothing else.
#include <catch2/catch.hpp>
#include <random>
#include <ordo/ordo.hpp>

TEST_CASE("mutated policy and grid specs give a plan or a clear error", "[errors][fuzz]") {
    const std::vector<std::string> seeds{"raster",  "nar",           "par:2x2",        "par:4x4+nar", "par:2x2x2",
                                         "zipar:8", "par:1x1+raster", "lpd:sizes=1+3+4", "lpd:3,sizes=1+2+5,seed=7",
                                         "lpd:sizes=1+7,repulsion=0.5,proximity=2,seed=request", "randar:4", "randar:steps=6,seed=9",
                                         "arpg:3", "arpg:5,schedule=cosine,seed=request"};
    const std::vector<std::string> grids{"8x8", "4x16x16", "6x9", "1x1", "2x4x4", "2x4"};
    const std::string alphabet = "0123456789x:+parsteniz-| \t\n\xff=,.lpdqegco";
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
            REQUIRE(ordo::spec_of(ordo::parse_policy(ordo::spec_of(pol))) == ordo::spec_of(pol));  // a spec reads back as itself
            ++plans;
        } catch (const ordo::error& e) {
            REQUIRE(std::string(e.what()).rfind("ordo: ", 0) == 0);
            ++errors;
        }
    }
    CHECK(plans > 1000);
    CHECK(errors > 1000);
}

TEST_CASE("mutated plan files give a plan or a clear error", "[errors][fuzz][exchange]") {
    // the deterministic pass over plan_from_json (the coverage-guided harness is
    // tests/fuzz/fuzz_plan_json.cpp): byte edits, digit changes and spliced chunks of valid files
    std::vector<std::string> seeds;
    for (const auto& [policy, grid] : std::vector<std::pair<const char*, const char*>>{
             {"nar", "2x2"}, {"zipar:2", "3x3"}, {"par:2x2", "4x4"}, {"nar", "2x2x2"}, {"par:2x2+nar", "2x4"}, {"lpd:sizes=1+2+3", "2x3"}, {"randar:3", "2x2"}, {"arpg:2", "2x2"}})
        seeds.push_back(ordo::plan_to_json(ordo::make_plan(ordo::parse_policy(policy), ordo::parse_grid(grid)), policy));
    const std::string alphabet = "0123456789-.eE,:[]{}\" \\utrfanl\n\xff";
    std::mt19937 rng(4242);
    int plans = 0, errors = 0;
    for (int iter = 0; iter < 6000; ++iter) {
        std::string s = seeds[rng() % seeds.size()];
        for (int m = rng() % 4; m > 0; --m) {
            const std::size_t at = rng() % (s.size() + 1);
            switch (rng() % 5) {
                case 0: s.insert(s.begin() + static_cast<long>(at), alphabet[rng() % alphabet.size()]); break;
                case 1: if (at < s.size()) s.erase(at, 1 + rng() % 8); break;
                case 2: if (at < s.size()) s[at] = alphabet[rng() % alphabet.size()]; break;
                case 3: {  // change a digit: indices and counts move by one
                    const std::size_t d = s.find_first_of("0123456789", at);
                    if (d != std::string::npos) s[d] = static_cast<char>('0' + (s[d] - '0' + 1 + rng() % 9) % 10);
                    break;
                }
                default: {  // splice a chunk of another seed in
                    const std::string& o = seeds[rng() % seeds.size()];
                    const std::size_t from = rng() % o.size();
                    s.insert(std::min(at, s.size()), o.substr(from, 1 + rng() % 40));
                }
            }
        }
        try {
            const ordo::plan_document d = ordo::plan_from_json(s);
            // whatever was read is a plan that writes and reads back as itself
            const std::string again = ordo::plan_to_json(d.plan, d.policy);
            REQUIRE(ordo::plan_to_json(ordo::plan_from_json(again).plan, d.policy) == again);
            ++plans;
        } catch (const ordo::error& e) {
            REQUIRE(std::string(e.what()).rfind("ordo: plan JSON", 0) == 0);
            ++errors;
        }
    }
    CHECK(plans > 500);   // the unmutated seeds and harmless edits (whitespace)
    CHECK(errors > 3000);
}
