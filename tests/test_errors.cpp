// Bad input gets a clear error naming the problem: never a crash, a hang or a silent wrong plan.
#include <catch2/catch.hpp>
#include <functional>
#include <ordo/ordo.hpp>

using Catch::Contains;

TEST_CASE("grid specs and extents", "[errors]") {
    CHECK_THROWS_WITH(ordo::parse_grid("0x16"), Contains(">= 1"));
    CHECK_THROWS_WITH(ordo::parse_grid("16"), Contains("HxW or TxHxW"));
    CHECK_THROWS_WITH(ordo::parse_grid("2x2x2x2"), Contains("HxW or TxHxW"));
    CHECK_THROWS_WITH(ordo::parse_grid("16xa"), Contains("not a number"));
    CHECK_THROWS_WITH(ordo::parse_grid("x16"), Contains("positive integer"));
    CHECK_THROWS_WITH(ordo::parse_grid("16x"), Contains("positive integer"));
    CHECK_THROWS_WITH(ordo::parse_grid("-4x4"), Contains("not a number"));
    CHECK_THROWS_WITH(ordo::parse_grid("99999999999x2"), Contains("positive integer"));
    CHECK_THROWS_WITH(ordo::parse_grid("4294967296x1"), Contains("overflows"));
    CHECK_THROWS_WITH(ordo::parse_grid("100000x100000"), Contains("overflows"));
    CHECK_THROWS_WITH(ordo::parse_grid("2000x2000x2000"), Contains("overflows"));
    CHECK_THROWS_WITH(ordo::grid_shape::make(0, 3), Contains("0x3"));
    CHECK_THROWS_WITH(ordo::grid_shape::make(2, -1, 3), Contains(">= 1"));
    CHECK(ordo::parse_grid("4x16x16") == ordo::grid_shape::make(4, 16, 16));
}

TEST_CASE("policy specs", "[errors]") {
    CHECK_THROWS_WITH(ordo::parse_policy("spiral"), Contains("unknown policy 'spiral'"));
    CHECK_THROWS_WITH(ordo::parse_policy(""), Contains("unknown policy"));
    CHECK_THROWS_WITH(ordo::parse_policy("par:"), Contains("region spec"));
    CHECK_THROWS_WITH(ordo::parse_policy("par:2"), Contains("HxW or TxHxW"));
    CHECK_THROWS_WITH(ordo::parse_policy("par:0x2"), Contains(">= 1"));
    CHECK_THROWS_WITH(ordo::parse_policy("par:2x2+zipar:3"), Contains("inner order"));
    CHECK_THROWS_WITH(ordo::parse_policy("zipar:0"), Contains(">= 1"));
    CHECK_THROWS_WITH(ordo::parse_policy("zipar:"), Contains("zipar window"));
    CHECK(ordo::spec_of(ordo::parse_policy("par:2x2+raster")) == "par:2x2");
    CHECK(ordo::spec_of(ordo::parse_policy("par:2x4x4+nar")) == "par:2x4x4+nar");
}

TEST_CASE("grids the policy cannot take", "[errors]") {
    CHECK_THROWS_WITH(ordo::make_plan(ordo::par4, ordo::grid_shape::make(15, 16)), Contains("15x16 is not divisible into 2x2 regions"));
    CHECK_THROWS_WITH(ordo::make_plan(ordo::par16, ordo::grid_shape::make(4, 18, 16)), Contains("not divisible into 4x4"));
    CHECK_THROWS_WITH(ordo::make_plan(ordo::region_parallel<>{2, 2, 2}, ordo::grid_shape::make(8, 8)), Contains("temporal regions"));
    CHECK_THROWS_WITH(ordo::make_plan(ordo::region_parallel<>{0, 2}, ordo::grid_shape::make(8, 8)), Contains(">= 1"));
    CHECK_THROWS_WITH(ordo::make_plan(ordo::raster{}, ordo::grid_shape::make(8, 8), 0), Contains("prefix must be >= 1"));
    CHECK_THROWS_WITH(ordo::num_steps(ordo::next_set_wavefront{0}, ordo::grid_shape::make(8, 8)), Contains("window"));
}

// A policy whose build() is given by a function, to break each rule in turn.
struct broken {
    static constexpr ordo::mask_mode mask = ordo::mask_mode::step_causal;
    std::function<void(ordo::plan_builder&)> f;
    void build(ordo::plan_builder& b) const { f(b); }
    std::string spec() const { return "broken"; }
};

namespace {
// a 1x2 grid, raster-like, with hooks
void fine(ordo::plan_builder& b) {
    b.add_token_slot(0);
    b.add_token_slot(1);
    b.begin_step();
    b.feed(0);
    b.emit(0, {{0, 0, 1.0f}});
    b.begin_step();
    b.feed(1);
    b.emit(1, {{0, 0, 1.0f}});
}
ordo::plan run(std::function<void(ordo::plan_builder&)> f) { return ordo::make_plan(broken{std::move(f)}, ordo::grid_shape::make(1, 2)); }
}  // namespace

TEST_CASE("user policies that break the plan rules are named", "[errors]") {
    CHECK(run(fine).num_steps() == 2);
    CHECK_THROWS_WITH(run([](auto&) {}), Contains("no steps"));
    CHECK_THROWS_WITH(run([](auto& b) { b.add_token_slot(0); b.add_token_slot(0); }), Contains("two slots"));
    CHECK_THROWS_WITH(run([](auto& b) { b.add_token_slot(2); }), Contains("outside the 2-token grid"));
    CHECK_THROWS_WITH(run([](auto& b) { b.feed(0); }), Contains("before begin_step"));
    CHECK_THROWS_WITH(run([](auto& b) { b.add_token_slot(0); b.add_token_slot(1); b.begin_step(); b.feed(0);
                                         b.emit(0, {{0, 0, 1}}); b.emit(1, {{0, 0, 1}}); b.begin_step(); b.feed(5); }),
                      Contains("fed slot 5"));
    CHECK_THROWS_WITH(run([](auto& b) { b.add_token_slot(0); b.begin_step(); b.feed(0); b.emit(0, {{0, 0, 1}}); }),
                      Contains("position 1 no slot"));
    CHECK_THROWS_WITH(run([](auto& b) { b.add_token_slot(0); b.add_token_slot(1); b.begin_step(); b.feed(0);
                                         b.emit(0, {{0, 0, 1}}); b.emit(0, {{0, 0, 1}}); }),
                      Contains("emitted position 0 twice"));
    CHECK_THROWS_WITH(run([](auto& b) { b.add_token_slot(0); b.add_token_slot(1); b.begin_step(); b.feed(0); b.emit(0, {{0, 0, 1}}); }),
                      Contains("never emitted position 1"));
    CHECK_THROWS_WITH(run([](auto& b) { b.add_token_slot(0); b.add_token_slot(1); b.begin_step(); b.feed(0); b.feed(1);
                                         b.emit(0, {{0, 0, 1}}); b.emit(1, {{0, 0, 1}}); }),
                      Contains("feeds position 0 before it is emitted"));
    CHECK_THROWS_WITH(run([](auto& b) { b.add_token_slot(0); b.add_token_slot(1); b.begin_step(); b.feed(0);
                                         b.emit(0, {{1, 0, 1}}); b.emit(1, {{0, 0, 1}}); }),
                      Contains("reads row 1 but step 0 feeds 1"));
    CHECK_THROWS_WITH(run([](auto& b) { b.add_token_slot(0); b.add_token_slot(1); b.begin_step(); b.feed(0);
                                         b.emit(0, {{0, 1, 1}}); }),
                      Contains("head 1 is not one of the plan's 1 heads"));
    CHECK_THROWS_WITH(run([](auto& b) { b.add_token_slot(0); b.add_token_slot(1); b.begin_step(); b.feed(0);
                                         b.emit(0, {{0, 0, 0.5f}}); b.emit(1, {{0, 0, 1}}); }),
                      Contains("do not sum to 1"));
    CHECK_THROWS_WITH(run([](auto& b) { b.add_token_slot(0); b.add_token_slot(1); b.begin_step(); b.feed(0);
                                         b.emit(0, {{0, 0, std::numeric_limits<float>::quiet_NaN()}}); b.emit(1, {{0, 0, 1}}); }),
                      Contains("weight outside"));
    CHECK_THROWS_WITH(run([](auto& b) { b.add_token_slot(0); b.add_token_slot(1); b.begin_step(); b.feed(0);
                                         b.emit(0, {}); b.emit(1, {{0, 0, 1}}); }),
                      Contains("emitted from no row"));
    CHECK_THROWS_WITH(run([](auto& b) { b.add_token_slot(0); b.add_token_slot(1); b.begin_step(); b.feed(0); b.feed(0);
                                         b.emit(0, {{0, 0, 1}}); b.begin_step(); b.feed(1); b.emit(1, {{0, 0, 1}}); }),
                      Contains("slot 0 is fed twice"));
    CHECK_THROWS_WITH(run([](auto& b) { b.add_token_slot(0); b.add_token_slot(1); b.begin_step(); b.feed(0);
                                         b.emit(0, {{0, 0, 1}}); b.begin_step(); b.emit(1, {{0, 0, 1}}); }),
                      Contains("step 1 feeds no row"));
    CHECK_THROWS_WITH(run([](auto& b) { b.add_token_slot(0); b.add_token_slot(1); b.begin_step(); b.feed(0);
                                         b.emit(0, {{0, 0, 1}}); b.emit(1, {{0, 0, 1}}); b.begin_step(); b.feed(1); }),
                      Contains("emits no position"));
    CHECK_THROWS_WITH(run([](auto& b) { b.set_heads({}); }), Contains("1 to 4 heads"));
    // shifted teacher forcing needs an unfed last token slot
    CHECK_THROWS_WITH(run([](auto& b) { fine(b); b.add_transition_slot(); }), Contains("shifted teacher forcing"));
}

// an inner policy whose first step emits two tokens
struct two_first {
    static constexpr ordo::mask_mode mask = ordo::mask_mode::step_causal;
    void build(ordo::plan_builder& b) const {
        b.set_forcing(ordo::teacher_forcing::full);
        for (ordo::index_t q = 0; q < b.grid().size(); ++q) b.add_token_slot(q);
        b.begin_step();
        b.feed(0);
        for (ordo::index_t q = 0; q < b.grid().size(); ++q) b.emit(q, {{0, 0, 1}});
    }
    std::string spec() const { return "all-at-once"; }
};

TEST_CASE("region_parallel names inner policies it cannot compose", "[errors]") {
    CHECK_THROWS_WITH(ordo::make_plan(ordo::region_parallel<two_first>{2, 2}, ordo::grid_shape::make(4, 4)),
                      Contains("first step must emit exactly one token (all-at-once emits 4)"));
}
