// The four mask forms carry one meaning: predicate == dense == packed bits == block summary.
#include <catch2/catch.hpp>
#include <ordo/ordo.hpp>

namespace {

bool packed_bit(const std::vector<std::uint8_t>& bits, std::size_t i) { return (bits[i / 8] >> (i % 8)) & 1; }

void check_forms(const ordo::plan_view& p, std::span<const ordo::index_t> rows, ordo::index_t kv_len) {
    const std::size_t q = rows.size();
    std::vector<std::uint8_t> dense(q * static_cast<std::size_t>(kv_len));
    ordo::dense_mask(p, rows, kv_len, dense);
    std::vector<std::uint8_t> packed(ordo::packed_mask_bytes(q, static_cast<std::size_t>(kv_len)), 0xAB);
    ordo::pack_mask(p, rows, kv_len, packed);
    for (std::size_t i = 0; i < q; ++i)
        for (ordo::index_t kv = 0; kv < kv_len; ++kv) {
            const bool v = ordo::visible(p, rows[i], kv);
            const std::size_t bit = i * static_cast<std::size_t>(kv_len) + static_cast<std::size_t>(kv);
            REQUIRE(dense[bit] == (v ? 1 : 0));
            REQUIRE(packed_bit(packed, bit) == v);
        }
    // padding bits of the last byte are zero
    const std::size_t total = q * static_cast<std::size_t>(kv_len);
    for (std::size_t b = total; b < packed.size() * 8; ++b) REQUIRE_FALSE(packed_bit(packed, b));

    for (auto [bq, bkv] : std::vector<std::pair<int, int>>{{1, 1}, {4, 8}, {16, 16}, {64, 32}, {7, 5}}) {
        const ordo::block_mask bm = ordo::make_block_mask(p, rows, kv_len, bq, bkv);
        REQUIRE(bm.num_q_blocks() == static_cast<ordo::index_t>((q + bq - 1) / bq));
        for (ordo::index_t qb = 0; qb < bm.num_q_blocks(); ++qb)
            for (ordo::index_t kb = 0; kb < bm.num_kv_blocks(); ++kb) {
                bool any = false, all = true;
                for (std::size_t i = static_cast<std::size_t>(qb * bq); i < std::min(q, static_cast<std::size_t>((qb + 1) * bq)); ++i)
                    for (ordo::index_t kv = kb * bkv; kv < std::min(kv_len, (kb + 1) * bkv); ++kv) {
                        const bool v = dense[i * static_cast<std::size_t>(kv_len) + static_cast<std::size_t>(kv)] != 0;
                        any = any || v;
                        all = all && v;
                    }
                const auto full = bm.full(qb), partial = bm.partial(qb);
                const bool in_full = std::find(full.begin(), full.end(), kb) != full.end();
                const bool in_partial = std::find(partial.begin(), partial.end(), kb) != partial.end();
                INFO("block " << qb << "," << kb << " of " << bq << "x" << bkv);
                REQUIRE(in_full == all);
                REQUIRE(in_partial == (any && !all));
            }
    }
}

}  // namespace

TEST_CASE("mask forms agree on training rows and on every decode step", "[mask]") {
    for (const auto& [spec, grid] : std::vector<std::pair<std::string, std::string>>{
             {"raster", "5x7"}, {"par:2x2", "8x8"}, {"par:4x4", "8x8"}, {"nar", "6x5"}, {"nar", "3x4x4"},
             {"par:2x2+nar", "8x8"}, {"zipar:2", "6x6"}, {"zipar:3", "2x4x6"}, {"par:2x1x2", "4x4x4"}}) {
        INFO(spec << " on " << grid);
        for (int prefix : {1, 3}) {
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), ordo::parse_grid(grid), prefix);
        const auto rows = ordo::train_rows(p);
        check_forms(p, rows, p.header().train_slots);
        const ordo::index_t kv = ordo::kv_cache_len(p);
        for (ordo::index_t s = 0; s < p.num_steps(); ++s) check_forms(p, p.step(s).fed, kv);
        }
    }
}

TEST_CASE("the typed predicate matches the runtime one and refuses the wrong mode", "[mask]") {
    const ordo::plan p = ordo::make_plan(ordo::par4, ordo::grid_shape::make(8, 8));
    const auto m = ordo::make_mask<ordo::region_parallel<>::mask>(p);
    for (ordo::index_t q = 0; q < p.num_slots(); ++q)
        for (ordo::index_t kv = 0; kv < p.num_slots() + 3; ++kv) REQUIRE(m(q, kv) == ordo::visible(p, q, kv));
    CHECK_THROWS_WITH(ordo::make_mask<ordo::mask_mode::slot_causal>(p), Catch::Contains("mask mode"));
    // PAR: the first parallel group [t3, M1, M2, M3] sees itself bidirectionally
    CHECK(ordo::visible(p, 4, 7));
    CHECK(ordo::visible(p, 7, 4));
    CHECK_FALSE(ordo::visible(p, 7, 8));
}

TEST_CASE("a long prefix is causal among itself and fully visible to the image tokens", "[mask]") {
    const ordo::plan p = ordo::make_plan(ordo::nar, ordo::grid_shape::make(4, 4), 3);
    CHECK(ordo::visible(p, 1, 0));
    CHECK_FALSE(ordo::visible(p, 0, 1));
    CHECK_FALSE(ordo::visible(p, 1, 2));
    CHECK(ordo::visible(p, 2, 2));
    for (ordo::index_t q = 3; q < p.num_slots(); ++q)
        for (ordo::index_t kv = 0; kv < 3; ++kv) CHECK(ordo::visible(p, q, kv));
}

TEST_CASE("batched packed masks: FlashInfer mask_indptr offsets", "[mask]") {
    const std::vector<ordo::index_t> q{1, 4, 3}, kv{9, 10, 17};
    std::vector<std::int64_t> indptr(4);
    ordo::packed_mask_indptr(q, kv, indptr);
    CHECK(indptr == std::vector<std::int64_t>{0, 2, 7, 14});
    std::vector<std::int64_t> small(3);
    CHECK_THROWS_WITH(ordo::packed_mask_indptr(q, kv, small), Catch::Contains("offsets"));
}

TEST_CASE("mask functions reject bad shapes and slots", "[mask][errors]") {
    const ordo::plan p = ordo::make_plan(ordo::raster{}, ordo::grid_shape::make(4, 4));
    std::vector<ordo::index_t> rows{0, 1, 2};
    std::vector<std::uint8_t> out(5);
    CHECK_THROWS_WITH(ordo::dense_mask(p, rows, 4, out), Catch::Contains("needs 12"));
    CHECK_THROWS_WITH(ordo::pack_mask(p, rows, 4, out), Catch::Contains("needs 2"));
    std::vector<ordo::index_t> bad{0, 99};
    std::vector<std::uint8_t> out2(8);
    CHECK_THROWS_WITH(ordo::dense_mask(p, bad, 4, out2), Catch::Contains("query slot 99"));
    CHECK_THROWS_WITH(ordo::make_block_mask(p, rows, 4, 0, 4), Catch::Contains("block sizes"));
}

TEST_CASE("classify_kv_block agrees with the predicate on every block, query slot and cut", "[mask]") {
    for (const char* grid : {"4x4", "5x7", "8x8", "12x12", "2x4x4"}) {
        const ordo::grid_shape g = ordo::parse_grid(grid);
        std::vector<std::string> specs = ordo::builtin_policies(g);
        specs.push_back("zipar:2");  // a narrow window: many stand-ins and partial blocks
        for (const auto& spec : specs)
            for (int prefix : {1, 3}) {
                const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), g, prefix);
                const ordo::index_t n = p.num_slots();
                for (ordo::index_t block : {1, 7, 32}) {
                    std::vector<ordo::kv_block_steps> steps(static_cast<std::size_t>(ordo::num_kv_blocks(n, block)));
                    ordo::summarize_kv_blocks(p, block, steps);
                    // cuts: empty, inside the prefix, mid-block, the layout's end, cache padding past it
                    for (ordo::index_t kv_end : {ordo::index_t{0}, ordo::index_t{2}, n / 2 + 3, n - 1, n, ordo::kv_cache_len(p) + 9}) {
                        // count mismatches and name the first, instead of one assertion per block
                        long long wrong = 0;
                        std::string first;
                        ordo::visit_mask(p, [&](auto m) {
                            for (ordo::index_t q = 0; q < n; ++q)
                                for (ordo::index_t b = 0; b < static_cast<ordo::index_t>(steps.size()); ++b) {
                                    bool any = false, all = true;
                                    for (ordo::index_t kv = b * block; kv < (b + 1) * block; ++kv) {
                                        const bool v = kv < kv_end && m(q, kv);
                                        any = any || v;
                                        all = all && v;
                                    }
                                    const ordo::block_class c = ordo::classify_kv_block(m, steps[static_cast<std::size_t>(b)], q, b, block, kv_end);
                                    const bool ok = c == ordo::block_class::none ? !any : c == ordo::block_class::full ? all : true;
                                    if (!ok && wrong++ == 0)
                                        first = "q " + std::to_string(q) + " block " + std::to_string(b) + " says " +
                                                (c == ordo::block_class::none ? "none" : "full") + " but any=" + std::to_string(any) + " all=" + std::to_string(all);
                                }
                        });
                        INFO(spec << " on " << grid << ", prefix " << prefix << ", block " << block << ", kv_end " << kv_end << ": " << first);
                        REQUIRE(wrong == 0);
                    }
                    // exactness where it is cheap to state: a block of one slot is never partial
                    if (block == 1) {
                        ordo::visit_mask(p, [&](auto m) {
                            for (ordo::index_t q = 0; q < n; ++q)
                                for (ordo::index_t b = 0; b < n; ++b) {
                                    const auto c = ordo::classify_kv_block(m, steps[static_cast<std::size_t>(b)], q, b, 1, n);
                                    if (c == ordo::block_class::partial) FAIL(spec << ": a one-slot block (" << b << ") is partial for query slot " << q);
                                }
                        });
                    }
                }
            }
    }
}

TEST_CASE("dense_step_mask: ARPG's cross queries see what is written through their step, the rest as their slot", "[masks]") {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy("arpg:steps=4,seed=3"), ordo::grid_shape::make(3, 3));
    const ordo::plan_view v = p;
    const ordo::index_t kv = ordo::kv_cache_len(p);
    int queries = 0;
    for (ordo::index_t s = 0; s < v.num_steps(); ++s) {
        const ordo::step_view st = v.step(s);
        std::vector<std::uint8_t> m(static_cast<std::size_t>(st.num_rows() * kv));
        ordo::dense_step_mask(v, s, kv, m);
        std::vector<std::uint8_t> by_slot(m.size());
        ordo::dense_mask(v, st.fed, kv, by_slot);
        for (ordo::index_t r = 0; r < st.num_rows(); ++r)
            for (ordo::index_t k = 0; k < kv; ++k) {
                const std::uint8_t got = m[static_cast<std::size_t>(r * kv + k)];
                if (st.query_target(r) >= 0) {
                    ++queries;
                    CHECK(got == (k < v.num_slots() && v.fed_step[static_cast<std::size_t>(k)] <= s ? 1 : 0));
                } else {
                    CHECK(got == by_slot[static_cast<std::size_t>(r * kv + k)]);
                }
            }
    }
    CHECK(queries == 9 * kv);
    // an LPD step's mask is its slots' (its queries are written)
    const ordo::plan l = ordo::make_plan(ordo::parse_policy("lpd:sizes=1+3+5"), ordo::grid_shape::make(3, 3));
    const ordo::step_view st = l.view().step(1);
    std::vector<std::uint8_t> a(static_cast<std::size_t>(st.num_rows() * 16)), b(a.size());
    ordo::dense_step_mask(l, 1, 16, a);
    ordo::dense_mask(l, st.fed, 16, b);
    CHECK(a == b);
    CHECK_THROWS_WITH(ordo::dense_step_mask(l, 3, 16, a), Catch::Contains("step 3 outside 0..2"));
}
