// Compile-time use: step counts and whole plans of static grids are constants.
#include <catch2/catch.hpp>
#include <ordo/ordo.hpp>

using namespace ordo;

// design.md: 24x24 -> 147 steps for PAR-4x, 51 for PAR-16x; 16x16 -> 67 and 31; NAR 2n-1 and 2n+T-2
static_assert(num_steps(par4, grid<24, 24>{}) == 147);
static_assert(num_steps(par16, grid<24, 24>{}) == 51);
static_assert(num_steps(par4, grid<16, 16>{}) == 67);
static_assert(num_steps(par16, grid<16, 16>{}) == 31);
static_assert(num_steps(nar, grid<24, 24>{}) == 47);
static_assert(num_steps(nar, grid<4, 16, 16>{}) == 2 * 16 + 4 - 2);
static_assert(num_steps(llamagen, grid<16, 16>{}) == 256);
static_assert(num_steps(region_parallel<>{4, 4}, grid<5, 16, 16>{}) == 16 + 1280 / 16 - 1);
static_assert(num_steps(region_parallel<>{2, 2}, grid<5, 16, 16>{}) == 323);  // PAR video (paper)

// whole plans built during constant evaluation, closed forms checked against them
static_assert(make_plan(par4, grid<24, 24>{}).num_steps() == 147);
static_assert(make_plan(nar, grid<4, 8, 8>{}).num_steps() == 18);
static_assert(make_plan(par4_nar, grid<16, 16>{}).num_steps() == num_steps(par4_nar, grid<16, 16>{}));
static_assert(make_plan(zipar8, grid<16, 16>{}).num_steps() == num_steps(zipar8, grid<16, 16>{}));
static_assert([] {
    const plan p = make_plan(par4, grid<8, 8>{});
    // slot layout [cls, t0..t3, M1..M3, ...] and the transition step feeding [t3, M1..M3]
    const step_view s = p.step(4);
    return p.view().slots[5].kind == slot_kind::transition && s.num_rows() == 4 && s.fed[0] == 4 && s.fed[3] == 7 &&
           visible(p, 4, 7) && !visible(p, 3, 4);
}());

// a plan that is itself a constant, usable at run time without building anything
constexpr auto static_par = make_static_plan<par4, grid<16, 16>{}>();
static_assert(static_par.num_steps() == 67);
static_assert(static_par.step(66).num_emitted() == 4);
static_assert(visible(static_par, 5, 7));

TEST_CASE("a static plan equals the one built at run time", "[compile-time]") {
    const plan p = make_plan(par4, grid_shape::make(16, 16));
    const plan_view a = p, b = static_par;
    CHECK(std::equal(a.order.begin(), a.order.end(), b.order.begin(), b.order.end()));
    CHECK(std::equal(a.fed.begin(), a.fed.end(), b.fed.begin(), b.fed.end()));
    CHECK(std::equal(a.contribs.begin(), a.contribs.end(), b.contribs.begin(), b.contribs.end()));
    CHECK(std::equal(a.fed_step.begin(), a.fed_step.end(), b.fed_step.begin(), b.fed_step.end()));
    CHECK(plan_to_json(a, "par:2x2") == plan_to_json(b, "par:2x2"));
}

TEST_CASE("policies are concepts-checked value types", "[compile-time]") {
    STATIC_REQUIRE(decode_policy<raster>);
    STATIC_REQUIRE(decode_policy<region_parallel<neighbor_frontier>>);
    STATIC_REQUIRE(decode_policy<next_set_wavefront>);
    STATIC_REQUIRE_FALSE(decode_policy<int>);
    STATIC_REQUIRE(closed_form_steps<neighbor_frontier>);
    STATIC_REQUIRE(region_parallel<>::mask == mask_mode::step_causal);
    STATIC_REQUIRE(next_set_wavefront::mask == mask_mode::slot_causal);
}
