// LPD's locality-aware orders against the reference (golden/structure/lpd_orders.json: 60 orders
// drawn by mit-han-lab/lpd's lpd_order_schedule after random.seed(s); np.random.seed(s)), and the
// CPython / numpy RNG ports they depend on.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <ordo/schedules/lpd_order.hpp>
#include <ordo/schedules/python_random.hpp>

using nlohmann::json;
using Catch::Matchers::Contains;
namespace sch = ordo::schedules;

namespace {

const json& golden() {
    static const json j = [] {
        std::ifstream f(std::string(ORDO_TEST_DATA) + "/golden/structure/lpd_orders.json");
        REQUIRE(f.good());
        return json::parse(f);
    }();
    return j;
}

std::string case_name(const json& c) {
    return "G" + std::to_string(c["G"].get<int>()) + " steps " + std::to_string(c["group_sizes"].size()) + " repulsion " +
           std::to_string(c["repulsion_threshold"].get<double>()) + " seed " + std::to_string(c["seed"].get<int>());
}

bool is_permutation_of_grid(const std::vector<ordo::index_t>& order, ordo::index_t n) {
    std::vector<ordo::index_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    std::vector<ordo::index_t> all(static_cast<std::size_t>(n));
    std::iota(all.begin(), all.end(), 0);
    return sorted == all;
}

}  // namespace

TEST_CASE("python_random: MT19937 seeded as random.seed(s) matches the golden getrandbits(32) outputs", "[lpd][random]") {
    int seeds = 0;
    for (const json& c : golden()["cases"]) {
        sch::python_random r(c["seed"].get<std::uint64_t>());
        for (const json& want : c["python_random_first_getrandbits32_after_seed"])
            CHECK(r.getrandbits(32) == want.get<std::uint64_t>());
        ++seeds;
    }
    CHECK(seeds == 60);
    // 3626764237 is CPython's first getrandbits(32) after random.seed(0), also at compile time
    STATIC_REQUIRE(sch::python_random(0).getrandbits(32) == 3626764237u);
}

TEST_CASE("python_random: seeds over 32 bits, getrandbits widths, random(), _randbelow, choice, shuffle", "[lpd][random]") {
    // values printed by CPython 3.11.7's random module
    {
        sch::python_random r(0);
        CHECK(r.random() == 0.8444218515250481);
        CHECK(r.random() == 0.7579544029403025);
    }
    {
        sch::python_random r((std::uint64_t{1} << 40) + 5);  // two key words
        CHECK(r.getrandbits(32) == 2166296868u);
        CHECK(r.getrandbits(32) == 2220160828u);
        CHECK(r.getrandbits(32) == 1153647273u);
    }
    {
        sch::python_random r(0xffffffffu);
        CHECK(r.getrandbits(32) == 2728839433u);
        CHECK(r.getrandbits(32) == 2661025012u);
        sch::python_random s(~std::uint64_t{0});
        CHECK(s.getrandbits(32) == 93740670u);
        CHECK(s.getrandbits(32) == 1068495656u);
    }
    {
        sch::python_random r(123);
        CHECK(r.getrandbits(7) == 6);
        CHECK(r.getrandbits(33) == 1149664691u);
        CHECK(r.getrandbits(64) == 7512284587286483836u);
    }
    {
        sch::python_random r(0);
        for (std::uint64_t want : {197, 215, 20, 132, 248}) CHECK(r.randbelow(256) == want);
        CHECK(r.randbelow(1) == 0);  // still draws (getrandbits(1) until 0), as CPython does
        CHECK(r.randbelow(1) == 0);
        CHECK(r.getrandbits(32) == 4156669319u);
    }
    {
        sch::python_random r(7);
        std::array<int, 10> x{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
        r.shuffle(std::span<int>(x));
        CHECK(x == std::array<int, 10>{8, 3, 1, 4, 7, 0, 9, 6, 2, 5});
        CHECK(r.choice_index(256) == 109);
        CHECK(r.choice_index(1000) == 38);
    }
}

TEST_CASE("numpy_random_state: np.random.seed(s) is init_genrand(s); randint is masked rejection", "[lpd][random]") {
    // init_genrand is also what std::mt19937(s) does
    for (std::uint32_t seed : {0u, 1u, 5489u, 4294967295u}) {
        sch::numpy_random_state r(seed);
        std::mt19937 ref(seed);
        for (int i = 0; i < 1500; ++i) REQUIRE(r.next_u32() == ref());
    }
    // np.random.seed(0); np.random.randint(0, 10, 10)
    sch::numpy_random_state r(0);
    std::vector<std::int64_t> got;
    for (int i = 0; i < 10; ++i) got.push_back(r.randint(10));
    CHECK(got == std::vector<std::int64_t>{5, 0, 3, 3, 7, 9, 3, 5, 2, 4});
    // high == 1 draws nothing
    sch::numpy_random_state a(3), b(3);
    CHECK(a.randint(1) == 0);
    CHECK(a.next_u32() == b.next_u32());
}

TEST_CASE("lpd_group_sizes: the released lookup tables", "[lpd]") {
    CHECK(sch::lpd_released_steps(256) == std::vector<ordo::index_t>{256, 128, 64, 32, 24, 20, 16, 12, 8});
    CHECK(sch::lpd_released_steps(1024) == std::vector<ordo::index_t>{1024, 512, 256, 224, 192, 160, 128, 96, 80, 64, 56, 48, 40, 32});
    CHECK(sch::lpd_released_steps(576).empty());
    for (ordo::index_t tokens : {256, 1024})
        for (ordo::index_t steps : sch::lpd_released_steps(tokens)) {
            INFO(tokens << " tokens, " << steps << " steps");
            const auto sizes = sch::lpd_group_sizes(tokens, steps);
            CHECK(sizes.size() == static_cast<std::size_t>(steps));
            CHECK(std::accumulate(sizes.begin(), sizes.end(), 0) == tokens);
            CHECK(sizes.front() == 1);
        }
    // the golden cases' lookup schedules are these tables
    for (const json& c : golden()["cases"]) {
        if (c["group_sizes_source"] != "lookup") continue;
        const int g = c["G"].get<int>();
        CHECK(sch::lpd_group_sizes(g * g, static_cast<ordo::index_t>(c["group_sizes"].size())) ==
              c["group_sizes"].get<std::vector<ordo::index_t>>());
    }
    STATIC_REQUIRE(sch::lpd_group_sizes(256, 20)[2] == 4);
    CHECK_THROWS_WITH(sch::lpd_group_sizes(576, 20), Contains("no group sizes for 576 tokens") && Contains("only for 256 and 1024"));
    CHECK_THROWS_WITH(sch::lpd_group_sizes(256, 10), Contains("256 128 64 32 24 20 16 12 8 steps"));
}

TEST_CASE("make_lpd_order reproduces every golden order of the reference generator", "[lpd][golden]") {
    int passed = 0;
    for (const json& c : golden()["cases"]) {
        const int g = c["G"].get<int>();
        const auto sizes = c["group_sizes"].get<std::vector<ordo::index_t>>();
        INFO(case_name(c));
        REQUIRE_FALSE(c["numpy_random_used"].get<bool>());
        const sch::lpd_order o = sch::make_lpd_order(ordo::grid_shape::make(g, g), sizes, c["proximity_threshold"].get<double>(),
                                                     c["repulsion_threshold"].get<double>(), c["seed"].get<std::uint64_t>());
        CHECK(o.group_sizes == sizes);
        const auto want = c["order"].get<std::vector<ordo::index_t>>();
        if (o.order == want) ++passed;
        else {
            std::size_t at = 0;
            while (at < want.size() && at < o.order.size() && o.order[at] == want[at]) ++at;
            FAIL_CHECK("first difference at generation index " << at);
        }
    }
    CHECK(passed == 60);
}

TEST_CASE("make_lpd_order: every order is a permutation and its groups sum to N", "[lpd][properties]") {
    struct setup { ordo::index_t h, w; std::vector<ordo::index_t> sizes; double proximity, repulsion; };
    const std::vector<setup> setups = {
        {16, 16, sch::lpd_group_sizes(256, 8), 1.0, 2.0},
        {16, 16, sch::lpd_group_sizes(256, 64), 0.0, 0.0},  // everything is "close", nothing repels
        {32, 32, sch::lpd_group_sizes(1024, 32), 1.0, 4.0},
        {5, 9, {1, 4, 8, 12, 20}, 1.0, 1.0},                  // not square
        {1, 7, {1, 3, 3}, 1.0, 1.0},                          // one row
        {1, 1, {1}, 1.0, 1.0},
        // a proximity threshold no score reaches: every group is filled by farthest-point
        // sampling from a numpy-chosen start, the path the golden runs never take
        {8, 8, {1, 3, 10, 20, 30}, 100.0, 2.0},
        {6, 6, {1, 35}, std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity()},
    };
    for (const setup& s : setups)
        for (std::uint64_t seed : {0u, 1u, 17u, 4294967295u}) {
            INFO(s.h << "x" << s.w << " in " << s.sizes.size() << " steps, seed " << seed);
            const auto o = sch::make_lpd_order(ordo::grid_shape::make(s.h, s.w), s.sizes, s.proximity, s.repulsion, seed);
            CHECK(is_permutation_of_grid(o.order, s.h * s.w));
            CHECK(o.group_sizes == s.sizes);
            CHECK(std::accumulate(o.group_sizes.begin(), o.group_sizes.end(), 0) == s.h * s.w);
            // the same seed gives the same order
            CHECK(sch::make_lpd_order(ordo::grid_shape::make(s.h, s.w), s.sizes, s.proximity, s.repulsion, seed).order == o.order);
        }
}

TEST_CASE("make_lpd_order: clear errors for bad input", "[lpd][errors]") {
    const auto g16 = ordo::grid_shape::make(16, 16);
    const auto s20 = sch::lpd_group_sizes(256, 20);
    std::vector<ordo::index_t> short_by_one = s20;
    short_by_one.back() -= 1;
    CHECK_THROWS_WITH(sch::make_lpd_order(g16, short_by_one, 1.0, 2.0, 0), Contains("sum to 255 but the grid 16x16 has 256 positions"));
    CHECK_THROWS_WITH(sch::make_lpd_order(g16, std::vector<ordo::index_t>{}, 1.0, 2.0, 0), Contains("group sizes are empty"));
    CHECK_THROWS_WITH(sch::make_lpd_order(ordo::grid_shape::make(2, 2), std::vector<ordo::index_t>{1, 0, 3}, 1.0, 2.0, 0),
                      Contains("group size 0 at step 1"));
    CHECK_THROWS_WITH(sch::make_lpd_order(ordo::grid_shape::make(2, 2), std::vector<ordo::index_t>{1, -1, 4}, 1.0, 2.0, 0),
                      Contains("group size -1 at step 1"));
    CHECK_THROWS_WITH(sch::make_lpd_order(ordo::grid_shape::make(2, 2), std::vector<ordo::index_t>{2, 2}, 1.0, 2.0, 0),
                      Contains("first group size must be 1, got 2"));
    CHECK_THROWS_WITH(sch::make_lpd_order(ordo::grid_shape::make(1, 4, 4), std::vector<ordo::index_t>{1, 15}, 1.0, 2.0, 0),
                      Contains("2-D image grids, got the 3-D grid 1x4x4"));
    CHECK_THROWS_WITH(sch::make_lpd_order(g16, s20, std::nan(""), 2.0, 0), Contains("proximity threshold must be a number >= 0, got nan"));
    CHECK_THROWS_WITH(sch::make_lpd_order(g16, s20, 1.0, -1.0, 0), Contains("repulsion threshold must be a number >= 0, got -1"));
    CHECK_THROWS_WITH(sch::make_lpd_order(g16, s20, 1.0, 2.0, std::uint64_t{1} << 32), Contains("not below 2^32"));
    CHECK_THROWS_AS(sch::make_lpd_order(g16, s20, 1.0, 2.0, std::uint64_t{1} << 32), ordo::error);
}
