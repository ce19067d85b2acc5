// Bad input gets a clear error naming the problem: never a crash, a hang or a silent wrong plan.
#include <catch2/catch.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <ordo/engine/kv_cache.hpp>
#include <ordo/engine/session.hpp>
#include <ordo/ordo.hpp>

using Catch::Contains;

// AddressSanitizer aborts on an allocation it cannot make instead of throwing std::bad_alloc, so
// the checks that need a failing allocation are left out under it.
#if defined(__SANITIZE_ADDRESS__)
#define ORDO_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ORDO_TEST_ASAN 1
#endif
#endif

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
    CHECK_THROWS_WITH(ordo::parse_grid("100000x100000"), Contains("more than 4194304 positions"));
    CHECK_THROWS_WITH(ordo::parse_grid("2000x2000x2000"), Contains("more than 4194304 positions"));
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

TEST_CASE("grids, prefixes and region specs past the documented caps are refused before any allocation", "[errors][limits]") {
    // 30000x30000 fits the index type (9e8 positions) but its plan would need ~60 GB
    CHECK_THROWS_WITH(ordo::parse_grid("30000x30000"), Contains("grid 30000x30000 has more than 4194304 positions") && Contains("max_grid_positions"));
    CHECK_THROWS_WITH(ordo::grid_shape::make(2049, 2048), Contains("more than 4194304 positions"));
    CHECK_THROWS_WITH(ordo::grid_shape::make(2, 2048, 2048), Contains("grid 2x2048x2048 has more than"));
    CHECK_THROWS_WITH(ordo::grid_shape::make(ordo::max_index, ordo::max_index, ordo::max_index), Contains("more than"));
    CHECK(ordo::grid_shape::make(2048, 2048).size() == ordo::max_grid_positions);
    CHECK(ordo::grid_shape::make(64, 256, 256).size() == ordo::max_grid_positions);

    CHECK_THROWS_WITH(ordo::make_plan(ordo::raster{}, ordo::grid_shape::make(2, 2), ordo::max_prefix + 1),
                      Contains("prefix 65537 is longer than the 65536 rows") && Contains("max_prefix"));
    CHECK_THROWS_WITH(ordo::make_plan(ordo::raster{}, ordo::grid_shape::make(2, 2), ordo::max_index), Contains("max_prefix"));
    CHECK(ordo::make_plan(ordo::raster{}, ordo::grid_shape::make(1, 2), ordo::max_prefix).num_slots() == ordo::max_prefix + 2);

    // region counts: more regions than any grid's positions, and products past the index type
    CHECK_THROWS_WITH(ordo::parse_policy("par:65536x65536"), Contains("more regions than the 4194304 positions"));
    CHECK_THROWS_WITH(ordo::parse_policy("par:2147483647x2147483647x2147483647"), Contains("more regions"));
    CHECK(ordo::spec_of(ordo::parse_policy("par:2048x2048")) == "par:2048x2048");
    CHECK_THROWS_WITH((ordo::region_parallel<>{65536, 65536}.num_regions()), Contains("region count overflows"));
    CHECK_THROWS_WITH(ordo::num_steps(ordo::region_parallel<>{65536, 65536}, ordo::grid_shape::make(8, 8)), Contains("not divisible into 65536x65536"));
}

TEST_CASE("mask block ends and cache sizes near INT32_MAX neither wrap nor allocate for padding", "[errors][limits][mask]") {
    const ordo::plan p = ordo::make_plan(ordo::nar, ordo::grid_shape::make(4, 4));
    const std::vector<ordo::index_t> rows = ordo::train_rows(p);
    // a kv length far past the layout (a cache's capacity): the padding is never visible, so the
    // summary equals one cut right after the last block holding a slot, and is made without an
    // entry per padding block (2^31 of them with blocks of 1)
    const ordo::block_mask want = ordo::make_block_mask(p, rows, p.num_slots(), 4, 1);
    for (const ordo::index_t block_kv : {1, 1 << 30, ordo::max_index}) {
        const ordo::block_mask huge = ordo::make_block_mask(p, rows, ordo::max_index, 4, block_kv);
        const ordo::block_mask small = ordo::make_block_mask(p, rows, block_kv == 1 ? p.num_slots() : block_kv, 4, block_kv);
        CHECK(huge.full_offsets == small.full_offsets);
        CHECK(huge.full_blocks == small.full_blocks);
        CHECK(huge.partial_offsets == small.partial_offsets);
        CHECK(huge.partial_blocks == small.partial_blocks);
    }
    CHECK(want.full_blocks.size() + want.partial_blocks.size() > 0);
    CHECK(ordo::make_block_mask(p, rows, 5, ordo::max_index, ordo::max_index).num_q_blocks() == 1);

    // a block whose last slot is past INT32_MAX is not whole: partial, not full
    const std::vector<ordo::index_t> fed_step{0, 0};
    const ordo::mask_predicate<ordo::mask_mode::step_causal> m{fed_step.data(), 2, 1};
    const ordo::index_t block = (1 << 30) + 1;
    const ordo::kv_block_steps s{0, 0, block};
    CHECK(ordo::classify_kv_block(m, s, 1, 1, block, ordo::max_index) == ordo::block_class::partial);
    CHECK(ordo::classify_kv_block(m, s, 1, 0, block, ordo::max_index) == ordo::block_class::full);

    // cache sizes: a product past 64 bits is an error, not a wrapped small buffer
    CHECK_THROWS_WITH(ordo::contiguous_kv_cache<float>::required_size(ordo::max_index, ordo::max_index, ordo::max_index, ordo::max_index),
                      Contains("kv cache size") && Contains("overflows the 64-bit size type"));
    CHECK_THROWS_WITH(ordo::contiguous_kv_cache<float>::required_size(1, 1 << 30, 1 << 30, 1 << 30), Contains("overflows"));
#ifndef ORDO_TEST_ASAN
    // a size that fits but cannot be had: named, not a bare std::bad_alloc
    CHECK_THROWS_WITH(ordo::contiguous_kv_cache<float>(1024, 4096, 1 << 20, 1 << 16), Contains("kv cache: cannot allocate 2.0 EiB"));
#endif
    std::vector<float> pages(64);
    const std::vector<ordo::index_t> indptr{0, 1}, indices{0};
    CHECK_THROWS_WITH(ordo::paged_kv_cache<float>(pages, 1 << 30, 1 << 30, 1 << 30, indptr, indices), Contains("page size") && Contains("overflows"));
}

TEST_CASE("session: sizes and strides that leave the index type are refused", "[errors][limits][engine]") {
    const auto sampler = ordo::make_sampler(ordo::greedy{});
    // commit_tokens: 4 x 2^30 + 1 wraps to 1 in 32 bits, which a 1-token span would pass
    const ordo::plan p = ordo::make_plan(ordo::raster{}, ordo::grid_shape::make(2, 2));
    const std::vector<ordo::request> reqs(5);
    ordo::session s(p.view(), std::span<const ordo::request>(reqs), sampler, 8);
    s.next();
    const std::vector<ordo::index_t> one{3};
    CHECK_THROWS_WITH(s.commit_tokens(one, 1 << 30), Contains("got 1 tokens with stride 1073741824"));
    CHECK(s.step() == 0);
    // (sequences x rows per step) indexes the inputs: 65538 sequences x 40000 prefix rows is past INT32_MAX
    const ordo::plan wide = ordo::make_plan(ordo::raster{}, ordo::grid_shape::make(1, 1), 40000);
    const std::vector<ordo::request> many(32769);
    ordo::session_options o;
    o.guidance.scale = 2.0f;
    CHECK_THROWS_WITH(ordo::session(wide.view(), std::span<const ordo::request>(many), sampler, 8, o),
                      Contains("sequences x rows per step overflows the 32-bit index type"));
}

TEST_CASE("strings written to JSON are escaped by one shared helper", "[errors][json]") {
    using ordo::detail::json_escape;
    CHECK(json_escape("par:2x2") == "par:2x2");
    CHECK(json_escape("a\"b\\c") == "a\\\"b\\\\c");
    CHECK(json_escape("\n\t\r\b\f") == "\\n\\t\\r\\b\\f");
    CHECK(json_escape(std::string_view("\x01\x1f\0", 3)) == "\\u0001\\u001f\\u0000");
    CHECK(json_escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");  // UTF-8 kept
    // bytes that are not UTF-8 (a lone continuation, an overlong, a surrogate, a cut sequence) become U+FFFD
    CHECK(json_escape("\x80") == "\\ufffd");
    CHECK(json_escape("\xc0\xaf") == "\\ufffd\\ufffd");
    CHECK(json_escape("\xed\xa0\x80") == "\\ufffd\\ufffd\\ufffd");
    CHECK(json_escape("x\xe2\x82") == "x\\ufffd\\ufffd");
    static_assert(ordo::detail::json_escape("\"") == "\\\"");  // usable in constant evaluation
    // every byte string becomes a valid JSON string, and a valid UTF-8 one reads back unchanged
    std::string all;
    for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
    for (const std::string& text : {all, std::string("policy \"quoted\" \\ back\nslash"), std::string("\xe2\x82\xac\x7f")}) {
        const nlohmann::json j = nlohmann::json::parse("{\"policy\": \"" + json_escape(text) + "\"}");
        if (text != all) CHECK(j["policy"].get<std::string>() == text);
    }
}

TEST_CASE("plan rules for stand-ins: one per slot, before the position, copying what is decoded", "[errors]") {
    // 2x3; step 1 writes a stand-in into the slot of position 4, step 2 (optionally) a second one
    auto build = [](bool second, ordo::mask_mode mode, ordo::index_t copy) {
        ordo::plan_builder b(ordo::grid_shape::make(2, 3), 1, mode);
        for (ordo::index_t q = 0; q < 6; ++q) b.add_token_slot(q);
        b.begin_step();
        b.feed(0);
        b.emit(0, {{0, 0, 1.0f}});
        b.begin_step();
        b.feed(b.slot_of(0));
        b.feed_stand_in(b.slot_of(4), copy);
        b.emit(1, {{0, 0, 1.0f}});
        b.emit(3, {{1, 0, 1.0f}});
        b.begin_step();
        b.feed(b.slot_of(1));
        if (second) b.feed_stand_in(b.slot_of(4), b.slot_of(1));
        else b.feed(b.slot_of(3));
        b.emit(2, {{0, 0, 1.0f}});
        b.emit(4, {{1, 0, 1.0f}});
        b.begin_step();
        b.feed(b.slot_of(2));
        b.emit(5, {{0, 0, 1.0f}});
        return std::move(b).finish();
    };
    CHECK(build(false, ordo::mask_mode::slot_causal, 1).view().header.num_stand_ins == 1);
    CHECK_THROWS_WITH(build(true, ordo::mask_mode::slot_causal, 1), Contains("step 2 writes a second stand-in into slot 5 (the first in step 1;"));
    CHECK_THROWS_WITH(build(false, ordo::mask_mode::step_causal, 1), Contains("stand-ins need the slot_causal mask"));
    CHECK_THROWS_WITH(build(false, ordo::mask_mode::slot_causal, 2), Contains("step 1 feeds a stand-in that copies position 1 before it is emitted (step 1)"));
    CHECK_NOTHROW(build(false, ordo::mask_mode::slot_causal, 0));  // a copy of the prefix row
    ordo::plan_builder b(ordo::grid_shape::make(2, 3), 1, ordo::mask_mode::slot_causal);
    for (ordo::index_t q = 0; q < 6; ++q) b.add_token_slot(q);
    CHECK_THROWS_WITH(b.feed_stand_in(1, 0), Contains("feed_stand_in called before begin_step()"));
    b.begin_step();
    CHECK_THROWS_WITH(b.feed_stand_in(0, 0), Contains("a stand-in is written into a token slot; slot 0 is not one"));
    CHECK_THROWS_WITH(b.feed_stand_in(2, 9), Contains("a stand-in copies a prefix or token slot; slot 9 is neither"));
}


TEST_CASE("a plan may not write one slot twice in one step (a query, then its own content)", "[errors]") {
    ordo::plan_builder b(ordo::grid_shape::make(1, 3), 1, ordo::mask_mode::slot_causal);
    b.set_forcing(ordo::teacher_forcing::full);
    ordo::index_t p[3], x[3];
    for (ordo::index_t c = 0; c < 3; ++c) {
        p[c] = b.add_query_slot(c);
        x[c] = b.add_token_slot(c);
    }
    b.begin_step();
    b.feed(0);
    b.emit(0, {{b.feed(p[0]), 0, 1.0f}});
    b.emit(1, {{b.feed_query(p[2], 1), 0, 1.0f}});  // P_1's query, written into P_2's slot...
    b.feed(p[2]);                                    // ...which the same step then feeds its own content
    b.begin_step();
    b.feed(x[0]);
    b.emit(2, {{b.feed_query(x[2], 2), 0, 1.0f}});
    CHECK_THROWS_WITH(std::move(b).finish(), Catch::Contains("step 0 writes slot 5 twice"));
}
