// The device mask forms equal the host ones bit for bit (dense, packed, batched packed, block
// summary), for every built-in policy, and device_plan holds exactly the host plan.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <ordo/cuda/mask.cuh>
#include <ordo/cuda/plan.cuh>
#include <ordo/ordo.hpp>

namespace {

using ordo::index_t;

template <class T>
std::vector<T> download(const T* device, std::size_t n) {
    std::vector<T> host(n);
    if (n) ordo::cuda::check(cudaMemcpy(host.data(), device, n * sizeof(T), cudaMemcpyDeviceToHost), "test download");
    return host;
}
template <class T>
std::vector<T> download(std::span<const T> device) {
    return download(device.data(), device.size());
}

struct row_set {
    std::string name;
    std::vector<index_t> rows;
};

// All slots, the training rows, a few decode steps, random subsets (unsorted, with repeats), none.
std::vector<row_set> row_sets(const ordo::plan& p, std::mt19937& rng) {
    const index_t n = p.num_slots();
    std::vector<row_set> out;
    std::vector<index_t> all(static_cast<std::size_t>(n));
    std::iota(all.begin(), all.end(), 0);
    out.push_back({"all slots", all});
    out.push_back({"training rows", ordo::train_rows(p)});
    for (index_t s : {index_t{0}, p.num_steps() / 2, p.num_steps() - 1}) {
        const auto fed = p.step(s).fed;
        out.push_back({"step " + std::to_string(s), std::vector<index_t>(fed.begin(), fed.end())});
    }
    for (int k = 0; k < 2; ++k) {
        std::vector<index_t> sub = all;
        std::shuffle(sub.begin(), sub.end(), rng);
        sub.resize(static_cast<std::size_t>(std::uniform_int_distribution<index_t>(1, n)(rng)));
        sub.push_back(sub.front());  // a repeated row
        out.push_back({"random subset " + std::to_string(k), sub});
    }
    out.push_back({"no rows", {}});
    return out;
}

// kv lengths: shorter than the layout, exactly it, the cache's rounded length, longer, none.
std::vector<index_t> kv_lengths(const ordo::plan& p) {
    const index_t n = p.num_slots();
    return {n / 2 + 1, n, ordo::kv_cache_len(p), n + 37, 0};
}

void require_equal(const ordo::block_mask& got, const ordo::block_mask& want) {
    REQUIRE(got.block_q == want.block_q);
    REQUIRE(got.block_kv == want.block_kv);
    REQUIRE(got.q_len == want.q_len);
    REQUIRE(got.kv_len == want.kv_len);
    REQUIRE(got.full_offsets == want.full_offsets);
    REQUIRE(got.partial_offsets == want.partial_offsets);
    REQUIRE(got.full_blocks == want.full_blocks);
    REQUIRE(got.partial_blocks == want.partial_blocks);
}

const std::vector<std::pair<index_t, index_t>> block_shapes{{1, 1}, {1, 32}, {16, 32}, {16, 64}, {64, 32}, {64, 64}, {128, 32}, {128, 64}, {7, 5}};

}  // namespace

// Every built-in order on every grid, prefix 1 and 3, every row set and kv length:
// f(host plan, device plan, rows (host), rows (device), kv_len), with the case named for failures.
template <class F>
void for_each_mask_case(std::mt19937& rng, F f) {
    for (const char* grid : {"4x4", "8x8", "16x16", "24x24", "2x4x4"}) {
        const ordo::grid_shape g = ordo::parse_grid(grid);
        for (const auto& spec : ordo::builtin_policies(g))
            for (index_t prefix : {1, 3}) {
                const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), g, prefix);
                const ordo::cuda::device_plan dp(p);
                for (const row_set& rs : row_sets(p, rng)) {
                    const ordo::cuda::device_buffer<index_t> rows{std::span<const index_t>(rs.rows)};
                    for (index_t kv_len : kv_lengths(p)) {
                        INFO(spec << " on " << grid << ", prefix " << prefix << ", " << rs.name << " (" << rs.rows.size() << "), kv_len " << kv_len);
                        f(p, dp, rs.rows, rows.span(), kv_len);
                    }
                }
            }
    }
}

TEST_CASE("device dense and packed masks equal the host forms for every policy, row set and kv length", "[cuda-masks]") {
    std::mt19937 rng(20240611);
    ordo::cuda::mask_workspace ws;
    for_each_mask_case(rng, [&](const ordo::plan& p, const ordo::cuda::device_plan& dp, const std::vector<index_t>& rows, std::span<index_t> d_rows,
                                index_t kv_len) {
        const std::size_t cells = rows.size() * static_cast<std::size_t>(kv_len);
        std::vector<std::uint8_t> dense(cells);
        ordo::dense_mask(p, rows, kv_len, dense);
        ordo::cuda::device_buffer<std::uint8_t> d_dense(cells);
        ordo::cuda::dense_mask(dp, d_rows, kv_len, d_dense.span(), ws);
        REQUIRE(download<std::uint8_t>(d_dense.span()) == dense);

        std::vector<std::uint8_t> packed(ordo::packed_mask_bytes(rows.size(), static_cast<std::size_t>(kv_len)));
        ordo::pack_mask(p, rows, kv_len, packed);
        ordo::cuda::device_buffer<std::uint8_t> d_packed(packed.size());
        // stale bytes must not survive: every byte, padding bits included, is written
        if (!packed.empty()) ordo::cuda::check(cudaMemset(d_packed.data(), 0xAB, packed.size()), "test memset");
        ordo::cuda::pack_mask(dp, d_rows, kv_len, d_packed.span(), ws);
        REQUIRE(download<std::uint8_t>(d_packed.span()) == packed);
    });
}

TEST_CASE("device block masks equal make_block_mask for every policy, row set, kv length and block shape", "[cuda-masks]") {
    std::mt19937 rng(7);
    ordo::cuda::mask_workspace ws;
    ordo::cuda::device_block_mask reused;  // one mask rebuilt over every shape: stale contents never leak
    for_each_mask_case(rng, [&](const ordo::plan& p, const ordo::cuda::device_plan& dp, const std::vector<index_t>& rows, std::span<index_t> d_rows,
                                index_t kv_len) {
        for (auto [bq, bkv] : block_shapes) {
            INFO("blocks " << bq << "x" << bkv);
            const ordo::block_mask want = ordo::make_block_mask(p, rows, kv_len, bq, bkv);
            ordo::cuda::make_block_mask(dp, d_rows, kv_len, bq, bkv, reused, ws);
            REQUIRE(reused.num_q_blocks() == want.num_q_blocks());
            REQUIRE(reused.num_kv_blocks() == want.num_kv_blocks());
            require_equal(reused.to_host(), want);
        }
    });
    // the allocating overload gives the same
    const ordo::plan p = ordo::make_plan(ordo::par16, ordo::grid_shape::make(16, 16));
    const ordo::cuda::device_plan dp(p);
    const auto rows = ordo::train_rows(p);
    const ordo::cuda::device_buffer<index_t> d_rows{std::span<const index_t>(rows)};
    require_equal(ordo::cuda::make_block_mask(dp, d_rows.span(), ordo::kv_cache_len(p), 64, 32, ws).to_host(),
                  ordo::make_block_mask(p, rows, ordo::kv_cache_len(p), 64, 32));
}

TEST_CASE("a reserved workspace builds without growing", "[cuda-masks]") {
    const ordo::plan p = ordo::make_plan(ordo::par4, ordo::grid_shape::make(24, 24));
    const ordo::cuda::device_plan dp(p);
    const auto rows = ordo::train_rows(p);
    const ordo::cuda::device_buffer<index_t> d_rows{std::span<const index_t>(rows)};
    const index_t kv = ordo::kv_cache_len(p);
    ordo::cuda::mask_workspace ws;
    ws.reserve_block_mask(static_cast<index_t>(rows.size()), kv, 1, 1);
    ws.reserve_batch(16);
    const std::size_t held = ws.bytes();
    ordo::cuda::device_block_mask bm;
    for (auto [bq, bkv] : block_shapes) ordo::cuda::make_block_mask(dp, d_rows.span(), kv, bq, bkv, bm, ws);
    CHECK(ws.bytes() == held);
}

TEST_CASE("batched packed masks: device mask_indptr and bytes equal the host ones", "[cuda-masks]") {
    ordo::cuda::mask_workspace ws;
    for (const char* grid : {"8x8", "16x16"}) {
        const ordo::grid_shape g = ordo::parse_grid(grid);
        for (const auto& spec : ordo::builtin_policies(g)) {
            INFO(spec << " on " << grid);
            const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), g);
            const ordo::cuda::device_plan dp(p);
            // requests at different decode steps, with different cache lengths, one with no rows, one with no kv
            std::vector<index_t> slots, q_rows, kv_lens;
            for (index_t s = 0; s < p.num_steps(); s += std::max<index_t>(1, p.num_steps() / 7)) {
                const auto fed = p.step(s).fed;
                slots.insert(slots.end(), fed.begin(), fed.end());
                q_rows.push_back(static_cast<index_t>(fed.size()));
                kv_lens.push_back(ordo::kv_cache_len(p) - (s % 5));
            }
            q_rows.push_back(0);
            kv_lens.push_back(9);
            const auto last = p.step(p.num_steps() - 1).fed;
            slots.insert(slots.end(), last.begin(), last.end());
            q_rows.push_back(static_cast<index_t>(last.size()));
            kv_lens.push_back(0);

            std::vector<std::int64_t> indptr(q_rows.size() + 1);
            ordo::packed_mask_indptr(q_rows, kv_lens, indptr);
            std::vector<std::uint8_t> want(static_cast<std::size_t>(indptr.back()));
            for (std::size_t r = 0, row = 0; r < q_rows.size(); row += static_cast<std::size_t>(q_rows[r]), ++r)
                ordo::pack_mask(p, std::span<const index_t>(slots).subspan(row, static_cast<std::size_t>(q_rows[r])), kv_lens[r],
                                std::span<std::uint8_t>(want).subspan(static_cast<std::size_t>(indptr[r]), static_cast<std::size_t>(indptr[r + 1] - indptr[r])));

            const ordo::cuda::device_buffer<index_t> d_slots{std::span<const index_t>(slots)}, d_rows{std::span<const index_t>(q_rows)},
                d_kv{std::span<const index_t>(kv_lens)};
            ordo::cuda::device_buffer<std::uint8_t> d_out(want.size());
            ordo::cuda::device_buffer<std::int64_t> d_indptr(indptr.size());
            ordo::cuda::pack_mask_batch(dp, d_slots.span(), d_rows.span(), d_kv.span(), d_out.span(), d_indptr.span(), ws);
            CHECK(download<std::int64_t>(d_indptr.span()) == indptr);
            CHECK(download<std::uint8_t>(d_out.span()) == want);
        }
    }
}

TEST_CASE("device mask builds reject bad sizes, blocks, slots and batches, naming the problem", "[cuda-masks]") {
    const ordo::plan p = ordo::make_plan(ordo::raster{}, ordo::grid_shape::make(4, 4));
    const ordo::cuda::device_plan dp(p);
    ordo::cuda::mask_workspace ws;
    const std::vector<index_t> good{0, 1, 2}, bad{0, 99, 2}, negative{-1};
    const ordo::cuda::device_buffer<index_t> d_good{std::span<const index_t>(good)}, d_bad{std::span<const index_t>(bad)},
        d_negative{std::span<const index_t>(negative)};
    ordo::cuda::device_buffer<std::uint8_t> out5(5), out12(12), out2(2);

    // sizes and blocks: checked on the host, before any launch
    CHECK_THROWS_WITH(ordo::cuda::dense_mask(dp, d_good.span(), 4, out5.span(), ws), Catch::Contains("needs 12"));
    CHECK_THROWS_WITH(ordo::cuda::pack_mask(dp, d_good.span(), 4, out5.span(), ws), Catch::Contains("needs 2"));
    CHECK_THROWS_WITH(ordo::cuda::pack_mask(dp, d_good.span(), -1, out2.span(), ws), Catch::Contains("negative kv length"));
    ordo::cuda::device_block_mask bm;
    CHECK_THROWS_WITH(ordo::cuda::make_block_mask(dp, d_good.span(), 4, 0, 4, bm, ws), Catch::Contains("block sizes"));
    CHECK_THROWS_WITH(bm.to_host(), Catch::Contains("never built"));

    // query slots outside the plan: found on the device, reported with the slot and its row
    CHECK_THROWS_WITH(ordo::cuda::dense_mask(dp, d_bad.span(), 4, out12.span(), ws), Catch::Contains("query slot 99 (row 1)"));
    CHECK_THROWS_WITH(ordo::cuda::pack_mask(dp, d_bad.span(), 4, out2.span(), ws), Catch::Contains("query slot 99"));
    CHECK_THROWS_WITH(ordo::cuda::make_block_mask(dp, d_bad.span(), 4, 2, 2, bm, ws), Catch::Contains("query slot 99"));
    ordo::cuda::device_buffer<std::uint8_t> out1(1);
    CHECK_THROWS_WITH(ordo::cuda::pack_mask(dp, d_negative.span(), 4, out1.span(), ws), Catch::Contains("query slot -1 (row 0)"));
    // several bad rows: the first is named, as the host check names it
    const std::vector<index_t> two_bad{0, 1, 77, 3, 88, 99};
    const ordo::cuda::device_buffer<index_t> d_two_bad{std::span<const index_t>(two_bad)};
    ordo::cuda::device_buffer<std::uint8_t> out24(24);
    CHECK_THROWS_WITH(ordo::cuda::dense_mask(dp, d_two_bad.span(), 4, out24.span(), ws), Catch::Contains("query slot 77 (row 2)"));

    // the workspace is clean after an error: a good build passes and is right
    ordo::cuda::pack_mask(dp, d_good.span(), 4, out2.span(), ws);
    std::vector<std::uint8_t> want(2);
    ordo::pack_mask(p, good, 4, want);
    CHECK(download<std::uint8_t>(out2.span()) == want);

    // batches: shapes on the host, totals and requests on the device
    const std::vector<index_t> rows_ok{2, 1}, kv_ok{4, 4}, rows_short{1, 1}, kv_negative{4, -3};
    const ordo::cuda::device_buffer<index_t> d_rows_ok{std::span<const index_t>(rows_ok)}, d_kv_ok{std::span<const index_t>(kv_ok)},
        d_rows_short{std::span<const index_t>(rows_short)}, d_kv_negative{std::span<const index_t>(kv_negative)};
    ordo::cuda::device_buffer<std::int64_t> indptr3(3), indptr2(2);
    CHECK_THROWS_WITH(ordo::cuda::pack_mask_batch(dp, d_good.span(), d_rows_ok.span(), d_kv_ok.span(), out2.span(), indptr2.span(), ws),
                      Catch::Contains("requests + 1"));
    CHECK_THROWS_WITH(ordo::cuda::pack_mask_batch(dp, d_good.span(), d_rows_ok.span(), d_kv_ok.span().first(1), out2.span(), indptr3.span(), ws),
                      Catch::Contains("one kv length per request"));
    CHECK_THROWS_WITH(ordo::cuda::pack_mask_batch(dp, d_good.span(), d_rows_short.span(), d_kv_ok.span(), out2.span(), indptr3.span(), ws),
                      Catch::Contains("2 query rows, q_slots holds 3"));
    CHECK_THROWS_WITH(ordo::cuda::pack_mask_batch(dp, d_good.span(), d_rows_ok.span(), d_kv_ok.span(), out5.span(), indptr3.span(), ws),
                      Catch::Contains("output holds 5 bytes, the batch needs 2"));
    CHECK_THROWS_WITH(ordo::cuda::pack_mask_batch(dp, d_good.span(), d_rows_ok.span(), d_kv_negative.span(), out2.span(), indptr3.span(), ws),
                      Catch::Contains("request 1 has a negative"));
    CHECK_THROWS_WITH(ordo::cuda::pack_mask_batch(dp, d_bad.span(), d_rows_ok.span(), d_kv_ok.span(), out2.span(), indptr3.span(), ws),
                      Catch::Contains("query slot 99"));
    ordo::cuda::pack_mask_batch(dp, d_good.span(), d_rows_ok.span(), d_kv_ok.span(), out2.span(), indptr3.span(), ws);
    CHECK(download<std::uint8_t>(out2.span()) == want);  // 2 + 1 rows of 4 bits: the same bytes as the single request
}

TEST_CASE("device_plan holds every array of the host plan, its rotary coordinates and kv-block summary", "[cuda-plan]") {
    for (const char* grid : {"4x4", "8x8", "24x24", "2x4x4"}) {
        const ordo::grid_shape g = ordo::parse_grid(grid);
        for (const auto& spec : ordo::builtin_policies(g))
            for (index_t prefix : {1, 3}) {
                INFO(spec << " on " << grid << ", prefix " << prefix);
                const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), g, prefix);
                const ordo::plan_view h = p.view();
                const ordo::cuda::device_plan dp(p);
                const ordo::device_plan_view& d = dp.view();
                CHECK(dp.header().num_slots == h.header.num_slots);
                CHECK(d.header.num_steps == h.header.num_steps);
                CHECK(d.header.prefix == h.header.prefix);
                CHECK(d.header.mask == h.header.mask);
                CHECK(d.header.grid.size() == h.header.grid.size());
                auto same = [](auto device, auto host) {
                    using T = typename decltype(host)::element_type;
                    REQUIRE(device.size() == host.size());
                    const auto got = download<std::remove_const_t<T>>(device.data(), device.size());
                    REQUIRE(std::equal(got.begin(), got.end(), host.begin(), host.end()));
                };
                same(d.slots, h.slots);
                same(d.fed_step, h.fed_step);
                same(d.fed_offsets, h.fed_offsets);
                same(d.fed, h.fed);
                same(d.emit_offsets, h.emit_offsets);
                same(d.order, h.order);
                same(d.contrib_offsets, h.contrib_offsets);
                same(d.contribs, h.contribs);
                same(d.rank_of, h.rank_of);
                same(d.step_of, h.step_of);
                same(d.slot_of, h.slot_of);
                same(d.stand_ins, h.stand_ins);

                const ordo::cuda::plan_ref& r = dp.ref();
                CHECK(r.num_slots == h.num_slots());
                CHECK(r.prefix == h.header.prefix);
                CHECK(r.mask == h.header.mask);
                CHECK(r.fed_step == d.fed_step.data());
                const auto rope = download(r.rope, static_cast<std::size_t>(h.num_slots()));
                for (index_t s = 0; s < h.num_slots(); ++s) {
                    const ordo::rope_coord want = ordo::rope_of(h, s);
                    REQUIRE(rope[static_cast<std::size_t>(s)].zero == want.zero);
                    REQUIRE(rope[static_cast<std::size_t>(s)].at == want.at);
                }
                std::vector<ordo::kv_block_steps> want_blocks(static_cast<std::size_t>(ordo::num_kv_blocks(h.num_slots(), ordo::cuda::kv_block)));
                ordo::summarize_kv_blocks(h, ordo::cuda::kv_block, want_blocks);
                const auto blocks = download(r.kv_blocks, want_blocks.size());
                for (std::size_t b = 0; b < blocks.size(); ++b) {
                    REQUIRE(blocks[b].lo_step == want_blocks[b].lo_step);
                    REQUIRE(blocks[b].hi_step == want_blocks[b].hi_step);
                    REQUIRE(blocks[b].live == want_blocks[b].live);
                }
            }
    }
}
