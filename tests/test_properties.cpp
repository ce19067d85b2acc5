// Invariants every plan must hold, over many policies x grids (2D and 3D, square and not): step
// counts against the policies' closed forms, and visibility against a replay of the decode.
#include <catch2/catch.hpp>
#include <algorithm>
#include <numeric>
#include <ordo/ordo.hpp>

namespace {

std::vector<ordo::grid_shape> grids() {
    std::vector<ordo::grid_shape> g;
    for (auto [h, w] : std::vector<std::pair<int, int>>{{1, 1}, {1, 7}, {5, 1}, {2, 2}, {3, 5}, {4, 4}, {6, 9}, {8, 8},
                                                        {12, 8}, {16, 16}, {24, 24}, {20, 32}, {32, 32}, {64, 64}})
        g.push_back(ordo::grid_shape::make(h, w));
    for (auto [t, h, w] : std::vector<std::array<int, 3>>{{1, 1, 1}, {2, 3, 4}, {4, 8, 8}, {5, 4, 4}, {3, 6, 2}, {8, 32, 32}})
        g.push_back(ordo::grid_shape::make(t, h, w));
    return g;
}

std::vector<std::string> policies_for(const ordo::grid_shape& g) {
    std::vector<std::string> s{"raster", "nar"};
    for (int w : {2, 3, 8})  // the released ZipAR's windows: 2..W-1
        if (w <= g.cols() - 1) s.push_back("zipar:" + std::to_string(w));
    for (int rh : {1, 2, 3, 4})
        for (int rw : {1, 2, 4})
            if (g.rows() % rh == 0 && g.cols() % rw == 0) {
                s.push_back("par:" + std::to_string(rh) + "x" + std::to_string(rw));
                s.push_back("par:" + std::to_string(rh) + "x" + std::to_string(rw) + "+nar");
                if (g.rank() == 3 && g.frames() % 2 == 0) s.push_back("par:2x" + std::to_string(rh) + "x" + std::to_string(rw));
            }
    return s;
}

// the closed forms the policies promise (design.md section 2)
long long expected_steps(const std::string& spec, const ordo::grid_shape& g) {
    const long long T = g.frames(), H = g.rows(), W = g.cols(), N = g.size();
    if (spec == "raster") return N;
    if (spec == "nar") return T + H + W - 2;
    if (spec.rfind("zipar:", 0) == 0) {
        const long long win = std::stoll(spec.substr(6)), rows = T * H;  // 2W + (H-2)w (conventions/zipar.md)
        return rows == 1 ? W : 2 * W + (rows - 2) * win;
    }
    // par:[t x]h x w[+nar]
    auto body = spec.substr(4, spec.find('+') == std::string::npos ? std::string::npos : spec.find('+') - 4);
    std::vector<long long> e;
    for (std::size_t a = 0, b; a != std::string::npos; a = b == std::string::npos ? b : b + 1) {
        b = body.find('x', a);
        e.push_back(std::stoll(body.substr(a, b == std::string::npos ? std::string::npos : b - a)));
    }
    const long long rt = e.size() == 3 ? e[0] : 1, rh = e[e.size() - 2], rw = e.back(), n = rt * rh * rw;
    const long long gt = T / rt, gh = H / rh, gw = W / rw;
    const long long inner = spec.find("+nar") != std::string::npos ? (g.rank() == 3 ? gt + gh + gw - 2 : gh + gw - 1) : gt * gh * gw;
    return n + inner - 1;
}

// What each fed row may attend to, derived from the decode rather than from the mask's formula
// (fed_step comparisons): replay the steps' own lists (positions emitted, slots fed) and, for a
// row fed at step s, list the kv slots holding what the model knows when it runs step s:
//  - prefix slots: all of them (a prefix row: the prefix rows up to itself, a causal prefix);
//  - the token of position p: iff a step before s emitted p (nothing of this step or later leaks
//    in, nothing already decoded is left out);
//  - a transition token (PAR's M_i): once a step up to s has written it to the cache;
//  - slots past the layout (cache padding): never.
// A slot-causal (raster-trained, ZipAR) order instead shows every slot up to the row's own, as the
// official causal mask over the whole cache does; what such a slot holds at step s is then checked
// against the replay: written() iff some step up to s fed it.
// The predicate must say exactly this for every (row, kv) pair; big plans are sampled.
void check_visibility(const ordo::plan_view& p) {
    const ordo::index_t n = p.num_positions(), steps = p.num_steps(), slots = p.num_slots();
    const bool slot_causal = p.header.mask == ordo::mask_mode::slot_causal;
    std::vector<ordo::index_t> emitted_at(static_cast<std::size_t>(n), -1), written_at(static_cast<std::size_t>(slots), steps);
    for (ordo::index_t s = 0; s < steps; ++s) {
        for (ordo::index_t q : p.step(s).emitted) emitted_at[static_cast<std::size_t>(q)] = s;
        for (ordo::index_t slot : p.step(s).fed) written_at[static_cast<std::size_t>(slot)] = std::min(written_at[static_cast<std::size_t>(slot)], s);
    }
    const bool sample = slots > 600;  // all pairs of a big plan cost minutes at -O0
    ordo::visit_mask(p, [&](auto m) {
        for (ordo::index_t s = 0; s < steps; s += sample ? std::max<ordo::index_t>(1, steps / 17) : 1) {
            const ordo::step_view st = p.step(s);
            for (ordo::index_t r = 0; r < st.num_rows(); r += sample ? std::max<ordo::index_t>(1, st.num_rows() / 5) : 1) {
                const ordo::index_t q = st.fed[r];
                const ordo::slot_entry& row = p.slots[static_cast<std::size_t>(q)];
                if (slot_causal) REQUIRE((row.kind != ordo::slot_kind::transition));  // no raster position
                for (ordo::index_t kv = 0; kv < slots; ++kv) {
                    const ordo::slot_entry& e = p.slots[static_cast<std::size_t>(kv)];
                    const bool written = written_at[static_cast<std::size_t>(kv)] <= s;
                    REQUIRE(ordo::written(p.fed_step.data(), kv, s) == written);
                    bool expect = false;
                    if (slot_causal) expect = kv <= q;
                    else if (row.kind == ordo::slot_kind::prefix) expect = e.kind == ordo::slot_kind::prefix && e.index <= row.index;
                    else if (e.kind == ordo::slot_kind::prefix) expect = true;
                    else if (e.kind == ordo::slot_kind::token) expect = emitted_at[static_cast<std::size_t>(e.index)] < s;
                    else if (e.kind == ordo::slot_kind::transition) expect = written;
                    if (m(q, kv) != expect) {
                        INFO("step " << s << ", row slot " << q << ", kv slot " << kv << " (kind " << static_cast<int>(e.kind) << ", index " << e.index << ")");
                        REQUIRE(m(q, kv) == expect);
                    }
                }
                for (ordo::index_t pad = slots; pad < slots + 9; ++pad) REQUIRE_FALSE(m(q, pad));
            }
        }
    });
}

void check_plan(const ordo::plan_view& p, const std::string& spec) {
    const ordo::index_t n = p.num_positions(), steps = p.num_steps();
    INFO(spec << " on " << p.grid().str());
    REQUIRE(steps == expected_steps(spec, p.grid()));
    // every position emitted exactly once, order/rank_of/step_of consistent
    std::vector<int> seen(static_cast<std::size_t>(n), 0);
    for (ordo::index_t s = 0; s < steps; ++s) {
        const ordo::step_view st = p.step(s);
        REQUIRE(st.num_rows() >= 1);
        REQUIRE(st.num_emitted() >= 1);
        for (ordo::index_t k = 0; k < st.num_emitted(); ++k) {
            const ordo::index_t q = st.emitted[k];
            ++seen[static_cast<std::size_t>(q)];
            REQUIRE(p.step_of[static_cast<std::size_t>(q)] == s);
            REQUIRE(p.order[static_cast<std::size_t>(p.rank_of[static_cast<std::size_t>(q)])] == q);
            float sum = 0;
            for (const ordo::contribution& c : st.from(k)) {
                REQUIRE(c.row < st.num_rows());
                REQUIRE(static_cast<ordo::index_t>(c.head) < p.header.num_heads);
                sum += c.weight;
            }
            REQUIRE(sum == Approx(1.0f));
        }
        // every fed token (or copy of one) was emitted in an earlier step; fed_step records the
        // slot's first write: this step, or (a slot a stand-in held first) an earlier one
        for (ordo::index_t r = 0; r < st.num_rows(); ++r) {
            const ordo::index_t slot = st.fed[r], content = st.content_of(r);
            if (content == slot) {
                REQUIRE(p.fed_step[static_cast<std::size_t>(slot)] <= s);
            } else {  // a stand-in: into a token slot not decoded yet, in a slot_causal plan
                REQUIRE(p.header.mask == ordo::mask_mode::slot_causal);
                REQUIRE(p.slots[static_cast<std::size_t>(slot)].kind == ordo::slot_kind::token);
                REQUIRE(p.step_of[static_cast<std::size_t>(p.slots[static_cast<std::size_t>(slot)].index)] >= s);
            }
            const ordo::slot_entry& e = p.slots[static_cast<std::size_t>(content)];
            if (e.kind == ordo::slot_kind::token) REQUIRE(p.step_of[static_cast<std::size_t>(e.index)] < s);
            if (e.kind == ordo::slot_kind::prefix) REQUIRE((s == 0 || content != slot));
        }
        // no two positions of a step are read from the very same logits
        for (ordo::index_t a = 0; a < st.num_emitted(); ++a)
            for (ordo::index_t b = a + 1; b < st.num_emitted() && b < a + 8; ++b) {
                const auto x = st.from(a), y = st.from(b);
                REQUIRE_FALSE(std::equal(x.begin(), x.end(), y.begin(), y.end()));
            }
    }
    REQUIRE(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
    // every position has one token slot
    for (ordo::index_t q = 0; q < n; ++q) {
        const ordo::slot_entry& e = p.slots[static_cast<std::size_t>(p.slot_of[static_cast<std::size_t>(q)])];
        REQUIRE((e.kind == ordo::slot_kind::token && e.index == q));
    }
    // a token is fed only after the step that emits it (the last ones never: they are not read),
    // once; only a stand-in writes its slot before that
    std::vector<ordo::index_t> own(static_cast<std::size_t>(p.num_slots()), steps);
    for (ordo::index_t s = 0; s < steps; ++s) {
        const ordo::step_view st = p.step(s);
        for (ordo::index_t r = 0; r < st.num_rows(); ++r)
            if (st.content_of(r) == st.fed[r]) {
                REQUIRE(own[static_cast<std::size_t>(st.fed[r])] == steps);
                own[static_cast<std::size_t>(st.fed[r])] = s;
            }
    }
    for (ordo::index_t q = 0; q < n; ++q) {
        const ordo::index_t slot = p.slot_of[static_cast<std::size_t>(q)];
        REQUIRE(own[static_cast<std::size_t>(slot)] > p.step_of[static_cast<std::size_t>(q)]);
        if (p.fed_step[static_cast<std::size_t>(slot)] <= p.step_of[static_cast<std::size_t>(q)]) REQUIRE(p.header.num_stand_ins > 0);
    }
    check_visibility(p);
}

}  // namespace

TEST_CASE("every plan emits each position once, feeds only emitted tokens, and each row sees exactly what is decoded before its step", "[properties]") {
    int plans = 0;
    for (const auto& g : grids())
        for (const auto& spec : policies_for(g)) {
            const ordo::any_policy pol = ordo::parse_policy(spec);
            const ordo::plan p = ordo::make_plan(pol, g);
            check_plan(p, spec);
            CHECK(ordo::num_steps(pol, g) == p.num_steps());
            CHECK(ordo::spec_of(pol) == (spec.size() > 7 && spec.ends_with("+raster") ? spec.substr(0, spec.size() - 7) : spec));
            ++plans;
        }
    CHECK(plans > 200);
}

TEST_CASE("longer prefixes shift slots and keep every rule", "[properties]") {
    for (int prefix : {1, 2, 7})
        for (const std::string spec : {"raster", "par:2x2", "nar", "par:2x2+nar", "zipar:3"}) {
            const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), ordo::grid_shape::make(8, 8), prefix);
            check_plan(p, spec);
            const ordo::step_view s0 = p.step(0);
            REQUIRE(s0.num_rows() == prefix);
            for (const ordo::contribution& c : s0.from(0)) CHECK(c.row == prefix - 1);
        }
}

TEST_CASE("a raster-equivalent order: par:1x1 emits in raster order", "[properties]") {
    const auto g = ordo::grid_shape::make(6, 7);
    const ordo::plan r = ordo::make_plan(ordo::raster{}, g);
    const ordo::plan p = ordo::make_plan(ordo::parse_policy("par:1x1"), g);
    CHECK(std::equal(p.view().order.begin(), p.view().order.end(), r.view().order.begin()));
    CHECK(p.num_steps() == r.num_steps());
}

// The released ZipAR's per-call rule (shared/conventions/zipar.md section 5), on a 4x5 grid with
// window 2: row 0 alone in steps 0..4; row r >= 1 starts at a(r) = 5 + 2(r - 1).
TEST_CASE("zipar follows the released code: schedule, stand-ins in the predecessor's slot, dropped rows", "[properties]") {
    const auto g = ordo::grid_shape::make(4, 5);
    const ordo::plan p = ordo::make_plan(ordo::next_set_wavefront{2}, g);
    const ordo::plan_view v = p;
    REQUIRE(v.num_steps() == 2 * 5 + 2 * 2);
    REQUIRE(v.num_slots() == 21);                  // prefix + raster tokens: no slots of their own for stand-ins
    REQUIRE(v.header.train_slots == 1 + 20 - 1);   // teacher forcing: raster
    REQUIRE(v.header.num_stand_ins == 2);          // rows 2 and 3
    auto slot = [&](ordo::index_t r, ordo::index_t c) { return v.slot_of[static_cast<std::size_t>(g.index({0, r, c}))]; };
    auto a = [](ordo::index_t r) { return 5 + (r - 1) * 2; };
    for (ordo::index_t r = 0; r < 4; ++r)
        for (ordo::index_t c = 0; c < 5; ++c) REQUIRE(v.step_of[static_cast<std::size_t>(g.index({0, r, c}))] == (r == 0 ? c : a(r) + c));
    for (ordo::index_t r = 1; r < 4; ++r) {
        const ordo::step_view st = v.step(a(r));
        const ordo::index_t q = g.index({0, r, 0});
        const ordo::index_t row = st.from(v.rank_of[static_cast<std::size_t>(q)] - st.first_rank)[0].row;
        // row r starts in the slot (and at the rotary position) of its raster predecessor (r-1, W-1)
        REQUIRE(st.fed[row] == slot(r - 1, 4));
        REQUIRE(ordo::rope_of(v, st.fed[row]).at == ordo::coord{0, r - 1, 4});
        // row 1 from the real (0, 4); row 2 from a copy of (0, 4); row 3 from a copy of (1, min(2w-1, W-1)) = (1, 3)
        const ordo::index_t want = r == 1 ? slot(0, 4) : r == 2 ? slot(0, 4) : slot(1, 3);
        REQUIRE(st.content_of(row) == want);
        REQUIRE((st.stand_ins.size() == 1) == (r >= 2));
    }
    // a finished row's last token is fed the step after it is emitted, read by no position: the
    // predecessor's own feed, which overwrites the stand-in
    for (ordo::index_t r = 1; r < 3; ++r) {
        const ordo::step_view st = v.step(a(r) + 5);
        REQUIRE(st.fed[0] == slot(r, 4));
        REQUIRE(st.content_of(0) == slot(r, 4));
        for (ordo::index_t k = 0; k < st.num_emitted(); ++k) REQUIRE(st.from(k)[0].row != 0);
    }
    // the stand-in slot is first written by the stand-in (step a(r)), then by (r-1, 4) itself
    REQUIRE(v.fed_step[static_cast<std::size_t>(slot(1, 4))] == a(2));
    // the mask: every slot up to the row's own, written or not
    const ordo::index_t s = a(2) + 1, q = slot(2, 0);
    for (ordo::index_t kv = 0; kv < 21; ++kv) {
        REQUIRE(ordo::visible(v, q, kv) == (kv <= q));
        REQUIRE(ordo::written(v.fed_step.data(), kv, s) == (kv <= slot(1, 2) || kv == slot(1, 4) || kv == slot(2, 0) || kv == 0));
    }
}

TEST_CASE("zipar takes the windows the released code supports: 2..W-1", "[properties][errors]") {
    const auto g = ordo::grid_shape::make(8, 8);
    for (ordo::index_t w : {0, 1, 8, 9, 1000}) {
        INFO("window " << w);
        CHECK_THROWS_WITH(ordo::make_plan(ordo::next_set_wavefront{w}, g), Catch::Contains("zipar window must lie in 2..7") && Catch::Contains("got " + std::to_string(w)));
        CHECK_THROWS_WITH(ordo::num_steps(ordo::next_set_wavefront{w}, g), Catch::Contains("2..7"));
    }
    for (ordo::index_t w = 2; w <= 7; ++w) CHECK(ordo::make_plan(ordo::next_set_wavefront{w}, g).num_steps() == 16 + 6 * w);
    CHECK_THROWS_WITH(ordo::make_plan(ordo::next_set_wavefront{2}, ordo::grid_shape::make(8, 2)), Catch::Contains("at least 3 tokens wide"));
}

TEST_CASE("plans stay compact: at most 64 bytes per position, 80 with a slot of its own per query", "[properties]") {
    // (RandAR's layout has two slots per position, P_t and x_t, and feeds most queries twice)
    for (const auto& g : {ordo::grid_shape::make(24, 24), ordo::grid_shape::make(64, 64), ordo::grid_shape::make(8, 32, 32)})
        for (const auto& spec : ordo::builtin_policies(g)) {
            const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), g);
            INFO(spec << " " << g.str() << ": " << p.bytes() << " bytes");
            const bool query_slots = std::ranges::any_of(p.view().slots, [](const ordo::slot_entry& e) { return e.kind == ordo::slot_kind::query; });
            CHECK(static_cast<double>(p.bytes()) / g.size() <= (query_slots ? 80.0 : 64.0));
        }
}
