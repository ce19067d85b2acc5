// A plan's identity: digest() and same_plan() see every header field and every array element, so
// a backend that keys a device copy or captured graphs on them never reuses a stale plan. Plans
// that differ in one field each (built through plan_builder, or copied and edited array by array)
// differ; equal plans, built twice or copied, are equal.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <ordo/ordo.hpp>

namespace {

using ordo::index_t;

// One knob per field a policy decides; the defaults give the base plan.
struct knobs {
    ordo::grid_shape grid = ordo::grid_shape::make(2, 3);
    index_t prefix = 1;
    ordo::mask_mode mask = ordo::mask_mode::slot_causal;
    ordo::position_encoding encoding = ordo::position_encoding::rope;
    ordo::teacher_forcing forcing = ordo::teacher_forcing::shifted;
    const char* second_head = "B";
    bool third_head = false;
    bool swap_slots = false;     // token slots of positions 2 and 3 in the other layout order
    bool transition = false;     // a transition slot (after the prefix), fed in step 1
    bool stand_in = true;        // step 1 writes a stand-in into position 4's slot (slot_causal only)
    bool stand_in_copies_token = false;  // it copies token 0 (else the last prefix row)
    bool swap_fed = false;       // step 1 feeds its two token rows in the other order
    bool swap_emit = false;      // step 1 emits its two positions in the other order
    float weight = 0.5f;         // position 1 = weight * head 0 + (1 - weight) * head `head`
    index_t head = 1;
    index_t row = 0;             // the row of step 1 position 2 reads
};

// Six positions in three steps: step 0 feeds the prefix and emits 0, 1 (1 mixes two heads);
// step 1 feeds tokens 0, 1, a stand-in in position 4's slot (and a transition) and emits 2, 3;
// step 2 feeds 2, 3 and emits 4, 5. Tokens 4 and 5 are never fed their own content (shifted
// forcing needs the last slot unfed).
ordo::plan build(const knobs& k) {
    ordo::plan_builder b(k.grid, k.prefix, k.mask);
    if (k.third_head) b.set_heads({"A", k.second_head, "C"});
    else b.set_heads({"A", k.second_head});
    b.set_encoding(k.encoding);
    b.set_forcing(k.forcing);
    const index_t transition = k.transition ? b.add_transition_slot() : -1;
    for (index_t q : {0, 1, k.swap_slots ? 3 : 2, k.swap_slots ? 2 : 3, 4, 5}) b.add_token_slot(q);
    const index_t last = k.prefix - 1;

    b.begin_step();
    for (index_t i = 0; i < k.prefix; ++i) b.feed(i);
    b.emit(0, {{last, 0, 1.0f}});
    b.emit(1, {{last, 0, k.weight}, {last, k.head, 1.0f - k.weight}});

    b.begin_step();
    b.feed(b.slot_of(k.swap_fed ? 1 : 0));
    b.feed(b.slot_of(k.swap_fed ? 0 : 1));
    if (k.stand_in) b.feed_stand_in(b.slot_of(4), k.stand_in_copies_token ? b.slot_of(0) : k.prefix - 1);
    if (k.transition) b.feed(transition);
    if (k.swap_emit) {
        b.emit(3, {{1, 1, 1.0f}});
        b.emit(2, {{k.row, 0, 1.0f}});
    } else {
        b.emit(2, {{k.row, 0, 1.0f}});
        b.emit(3, {{1, 1, 1.0f}});
    }

    b.begin_step();
    b.feed(b.slot_of(2));
    b.feed(b.slot_of(3));
    b.emit(4, {{0, 0, 1.0f}});
    b.emit(5, {{1, 0, 1.0f}});
    return std::move(b).finish();
}

// A plan's arrays copied into vectors of its own, to be edited one element at a time.
struct plan_copy {
    ordo::plan_header header;
    std::vector<ordo::slot_entry> slots;
    std::vector<index_t> fed_step, fed_offsets, fed, emit_offsets, order, contrib_offsets;
    std::vector<ordo::contribution> contribs;
    std::vector<index_t> rank_of, step_of, slot_of;
    std::vector<ordo::stand_in_entry> stand_ins;
    std::vector<ordo::query_entry> queries;

    explicit plan_copy(const ordo::plan_view& p)
        : header(p.header), slots(p.slots.begin(), p.slots.end()), fed_step(p.fed_step.begin(), p.fed_step.end()),
          fed_offsets(p.fed_offsets.begin(), p.fed_offsets.end()), fed(p.fed.begin(), p.fed.end()),
          emit_offsets(p.emit_offsets.begin(), p.emit_offsets.end()), order(p.order.begin(), p.order.end()),
          contrib_offsets(p.contrib_offsets.begin(), p.contrib_offsets.end()), contribs(p.contribs.begin(), p.contribs.end()),
          rank_of(p.rank_of.begin(), p.rank_of.end()), step_of(p.step_of.begin(), p.step_of.end()), slot_of(p.slot_of.begin(), p.slot_of.end()),
          stand_ins(p.stand_ins.begin(), p.stand_ins.end()), queries(p.queries.begin(), p.queries.end()) {}
    ordo::plan_view view() const {
        return {header, slots, fed_step, fed_offsets, fed, emit_offsets, order, contrib_offsets, contribs, rank_of, step_of, slot_of, stand_ins, queries};
    }
};

}  // namespace

TEST_CASE("plan digest: a plan built twice, copied, or built at compile time has one digest", "[plan-digest]") {
    for (const char* grid : {"4x4", "8x8", "6x10", "2x4x4"}) {
        const ordo::grid_shape g = ordo::parse_grid(grid);
        for (const auto& spec : ordo::builtin_policies(g))
            for (index_t prefix : {1, 3}) {
                INFO(spec << " on " << grid << ", prefix " << prefix);
                const ordo::plan a = ordo::make_plan(ordo::parse_policy(spec), g, prefix);
                const ordo::plan b = ordo::make_plan(ordo::parse_policy(spec), g, prefix);
                const plan_copy c(a.view());
                CHECK(ordo::digest(a) == ordo::digest(b));
                CHECK(ordo::digest(c.view()) == ordo::digest(a));
                CHECK(ordo::same_plan(a, b));
                CHECK(ordo::same_plan(c.view(), a));
            }
    }
    constexpr auto fixed = ordo::make_static_plan<ordo::raster{}, ordo::grid<4, 4>{}>();
    constexpr std::uint64_t at_compile_time = ordo::digest(fixed.view());
    CHECK(at_compile_time == ordo::digest(ordo::make_plan(ordo::raster{}, ordo::grid_shape::make(4, 4))));
    STATIC_REQUIRE(ordo::same_plan(fixed.view(), fixed.view()));
}

TEST_CASE("plan digest: built-in plans have equal digests exactly when they are the same plan", "[plan-digest]") {
    std::vector<ordo::plan> plans;
    std::vector<std::string> names;
    for (const char* grid : {"4x4", "8x8", "4x8", "8x4", "2x4x4"}) {
        const ordo::grid_shape g = ordo::parse_grid(grid);
        for (const auto& spec : ordo::builtin_policies(g))
            for (index_t prefix : {1, 2}) {
                plans.push_back(ordo::make_plan(ordo::parse_policy(spec), g, prefix));
                names.push_back(spec + " on " + grid + " prefix " + std::to_string(prefix));
            }
    }
    // (some specs give one plan: par:4x4 on a 4x4 grid is raster)
    std::size_t same_pairs = 0, pairs = 0;
    for (std::size_t i = 0; i < plans.size(); ++i)
        for (std::size_t j = i + 1; j < plans.size(); ++j) {
            INFO(names[i] << " vs " << names[j]);
            const bool same = ordo::same_plan(plans[i], plans[j]);
            REQUIRE(same == (ordo::digest(plans[i]) == ordo::digest(plans[j])));
            same_pairs += same;
            ++pairs;
        }
    CHECK(same_pairs < pairs / 100);
}

TEST_CASE("plan digest: plans that differ in one decision each differ", "[plan-digest]") {
    const ordo::plan base = build({});
    CHECK(ordo::digest(build({})) == ordo::digest(base));
    CHECK(ordo::same_plan(build({}), base));

    const std::vector<std::pair<const char*, std::function<void(knobs&)>>> edits = {
        {"grid 3x2 instead of 2x3", [](knobs& k) { k.grid = ordo::grid_shape::make(3, 2); }},
        {"prefix", [](knobs& k) { k.prefix = 2; }},
        {"mask mode (and so no stand-in)", [](knobs& k) { k.mask = ordo::mask_mode::step_causal; k.stand_in = false; }},
        {"position encoding", [](knobs& k) { k.encoding = ordo::position_encoding::absolute; }},
        {"teacher forcing", [](knobs& k) { k.forcing = ordo::teacher_forcing::full; }},
        {"a head's name", [](knobs& k) { k.second_head = "B2"; }},
        {"one more head", [](knobs& k) { k.third_head = true; }},
        {"slot layout order", [](knobs& k) { k.swap_slots = true; }},
        {"a transition slot", [](knobs& k) { k.transition = true; }},
        {"what a stand-in copies", [](knobs& k) { k.stand_in_copies_token = true; }},
        {"fed row order", [](knobs& k) { k.swap_fed = true; }},
        {"emission order within a step", [](knobs& k) { k.swap_emit = true; }},
        {"a contribution weight", [](knobs& k) { k.weight = 0.25f; }},
        {"a contribution weight by one ulp", [](knobs& k) { k.weight = std::nextafter(0.5f, 1.0f); }},
        {"a contribution's head", [](knobs& k) { k.head = 0; }},
        {"a contribution's row", [](knobs& k) { k.row = 1; }},
    };
    std::set<std::uint64_t> digests{ordo::digest(base)};
    for (const auto& [what, edit] : edits) {
        INFO("differs in: " << what);
        knobs k;
        edit(k);
        const ordo::plan p = build(k);
        CHECK(ordo::digest(p) != ordo::digest(base));
        CHECK_FALSE(ordo::same_plan(p, base));
        CHECK_FALSE(ordo::same_plan(base, p));
        digests.insert(ordo::digest(p));
    }
    CHECK(digests.size() == edits.size() + 1);
}

TEST_CASE("plan digest: every header field and every element of every array counts", "[plan-digest]") {
    knobs k;
    k.transition = true;
    const ordo::plan base = build(k);
    const std::uint64_t d0 = ordo::digest(base);
    const plan_copy copy(base.view());
    REQUIRE(ordo::digest(copy.view()) == d0);

    using ordo::slot_kind;
    auto bump = [](std::vector<index_t>& v, std::size_t i) { v.at(i) += 1; };
    const std::vector<std::pair<const char*, std::function<void(plan_copy&)>>> edits = {
        {"header.grid", [](plan_copy& c) { c.header.grid = ordo::grid_shape::make(1, 2, 3); }},
        {"header.prefix", [](plan_copy& c) { c.header.prefix += 1; }},
        {"header.num_steps", [](plan_copy& c) { c.header.num_steps += 1; }},
        {"header.num_slots", [](plan_copy& c) { c.header.num_slots += 1; }},
        {"header.train_slots", [](plan_copy& c) { c.header.train_slots += 1; }},
        {"header.num_transitions", [](plan_copy& c) { c.header.num_transitions += 1; }},
        {"header.num_stand_ins", [](plan_copy& c) { c.header.num_stand_ins += 1; }},
        {"header.num_heads", [](plan_copy& c) { c.header.num_heads += 1; }},
        {"header.mask", [](plan_copy& c) { c.header.mask = ordo::mask_mode::step_causal; }},
        {"header.encoding", [](plan_copy& c) { c.header.encoding = ordo::position_encoding::absolute; }},
        {"header.forcing", [](plan_copy& c) { c.header.forcing = ordo::teacher_forcing::full; }},
        {"header.head_names[0]", [](plan_copy& c) { c.header.head_names[0] = ordo::head_name("Z"); }},
        {"header.head_names[1]", [](plan_copy& c) { c.header.head_names[1] = ordo::head_name("BB"); }},
        {"header.head_names[2]", [](plan_copy& c) { c.header.head_names[2] = ordo::head_name("x"); }},
        {"header.head_names[3]", [](plan_copy& c) { c.header.head_names[3] = ordo::head_name("x"); }},
        {"slots[].index", [](plan_copy& c) { c.slots.at(2).index += 1; }},
        {"slots[].kind", [](plan_copy& c) { c.slots.at(2).kind = slot_kind::prefix; }},
        {"fed_step", [&](plan_copy& c) { bump(c.fed_step, 3); }},
        {"fed_offsets", [&](plan_copy& c) { bump(c.fed_offsets, 1); }},
        {"fed", [&](plan_copy& c) { bump(c.fed, 2); }},
        {"emit_offsets", [&](plan_copy& c) { bump(c.emit_offsets, 1); }},
        {"order", [&](plan_copy& c) { std::swap(c.order.at(2), c.order.at(3)); }},
        {"contrib_offsets", [&](plan_copy& c) { bump(c.contrib_offsets, 2); }},
        {"contribs[].row", [](plan_copy& c) { c.contribs.at(3).row += 1; }},
        {"contribs[].head", [](plan_copy& c) { c.contribs.at(1).head += 1; }},
        {"contribs[].reserved_", [](plan_copy& c) { c.contribs.at(0).reserved_ = 1; }},
        {"contribs[].weight", [](plan_copy& c) { c.contribs.at(1).weight = std::nextafter(c.contribs.at(1).weight, 0.0f); }},
        {"rank_of", [&](plan_copy& c) { bump(c.rank_of, 4); }},
        {"step_of", [&](plan_copy& c) { bump(c.step_of, 4); }},
        {"slot_of", [&](plan_copy& c) { bump(c.slot_of, 4); }},
        {"stand_ins[].copy_of", [](plan_copy& c) { c.stand_ins.at(0).copy_of += 1; }},
        {"stand_ins[].fed_row", [](plan_copy& c) { c.stand_ins.at(0).fed_row += 1; }},
        // lengths count: the same elements split differently between two arrays
        {"rank_of / step_of boundary", [](plan_copy& c) { c.step_of.insert(c.step_of.begin(), c.rank_of.back()); c.rank_of.pop_back(); }},
        {"a stand-in dropped", [](plan_copy& c) { c.stand_ins.pop_back(); }},
    };
    std::set<std::uint64_t> digests{d0};
    for (const auto& [what, edit] : edits) {
        INFO("edited: " << what);
        plan_copy c = copy;
        edit(c);
        CHECK(ordo::digest(c.view()) != d0);
        CHECK_FALSE(ordo::same_plan(c.view(), base));
        digests.insert(ordo::digest(c.view()));
    }
    CHECK(digests.size() == edits.size() + 1);
}
