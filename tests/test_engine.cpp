// The engine: every policy through generate() and the session API with mock models; the recorded
// steps equal the plans; sampling is reproducible by seed and independent of batch composition.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>

#include "mock_models.hpp"

namespace {

using grids_t = std::vector<std::vector<ordo::index_t>>;
const auto kSampler = ordo::make_sampler(ordo::temperature{1.0f}, ordo::top_k{8}, ordo::multinomial{});

std::vector<ordo::request> make_requests(int n) {
    std::vector<ordo::request> r;
    for (int i = 0; i < n; ++i) r.push_back({i % 10, static_cast<std::uint64_t>(100 + i)});
    return r;
}

ordo::generate_options opts(float scale, std::uint64_t seed = 7) {
    ordo::generate_options o;
    o.session.guidance.scale = scale;
    o.session.seed = seed;
    o.session.null_label = 10;
    return o;
}

template <class M>
grids_t run(M& model, const ordo::plan& p, const std::vector<ordo::request>& reqs, const ordo::generate_options& o) {
    const ordo::index_t seqs = static_cast<ordo::index_t>(reqs.size()) * (o.session.guidance.active() ? 2 : 1);
    ordo::contiguous_kv_cache<float> cache(1, seqs, ordo::kv_cache_len(p), 2);
    return ordo::generate(model, cache, p.view(), kSampler, std::span<const ordo::request>(reqs), o);
}

// What a row whose content is slot `content`'s (its own, or what a stand-in copies) should carry
// for sequence seq, from the plan and the final token grids.
// (A query row, content -1 - target, carries the query of its target.) `at`: the cell the row is
// at (its slot's position, or a query's target; -1 for prefix and transition rows).
ordo::fed_input expected_input(const ordo::plan_view& p, ordo::index_t content, ordo::index_t at, const grids_t& out,
                               const std::vector<ordo::request>& reqs, ordo::index_t seq) {
    const ordo::index_t nreq = static_cast<ordo::index_t>(reqs.size());
    const ordo::index_t req = seq % nreq;
    const bool uncond = seq >= nreq;
    if (content < 0) return {ordo::slot_kind::query, -1 - content, -1, at};
    const ordo::slot_entry& e = p.slots[static_cast<std::size_t>(content)];
    const ordo::index_t label = uncond ? 10 : reqs[static_cast<std::size_t>(req)].label;
    switch (e.kind) {
        case ordo::slot_kind::prefix: return {e.kind, e.index, label, at};
        case ordo::slot_kind::token: return {e.kind, e.index, out[static_cast<std::size_t>(req)][static_cast<std::size_t>(e.index)], at};
        case ordo::slot_kind::transition: return {e.kind, e.index, e.index, at};
        case ordo::slot_kind::query: return {e.kind, e.index, -1, at};
    }
    return {};
}

const std::vector<std::pair<std::string, std::string>> kCases{
    {"raster", "6x6"}, {"par:2x2", "8x8"}, {"par:4x4", "8x8"}, {"nar", "8x8"}, {"nar", "3x4x4"},
    {"par:2x2+nar", "8x8"}, {"zipar:3", "6x8"}, {"par:1x2x2", "2x4x4"}, {"lpd:sizes=1+3+8+12+12", "6x6"}};

}  // namespace

TEST_CASE("generate: the recorded steps equal the plan, for every policy, with and without CFG", "[engine]") {
    for (const auto& [spec, grid] : kCases)
        for (float scale : {1.0f, 3.0f})
            for (int batch : {1, 3, 8}) {
                INFO(spec << " " << grid << " cfg " << scale << " batch " << batch);
                const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), ordo::parse_grid(grid));
                const ordo::plan_view v = p;
                mock::recording_model m;
                m.heads = 3;
                const auto reqs = make_requests(batch);
                const grids_t out = run(m, p, reqs, opts(scale));
                REQUIRE(static_cast<ordo::index_t>(m.steps.size()) == v.num_steps());
                for (const auto& g : out)
                    for (ordo::index_t t : g) REQUIRE((t >= 0 && t < m.vocab));
                for (const auto& rec : m.steps) {
                    const ordo::step_view st = v.step(rec.step);
                    REQUIRE(rec.sequences == batch * (scale > 1 ? 2 : 1));
                    REQUIRE(std::equal(rec.slots.begin(), rec.slots.end(), st.fed.begin(), st.fed.end()));
                    for (ordo::index_t r = 0; r < st.num_rows(); ++r) {
                        const ordo::index_t target = st.query_target(r);
                        const ordo::rope_coord want = target < 0 ? ordo::rope_of(v, st.fed[r]) : ordo::rope_coord{false, v.grid().at(target)};
                        REQUIRE(rec.rope[static_cast<std::size_t>(r)].zero == want.zero);
                        REQUIRE(rec.rope[static_cast<std::size_t>(r)].at == want.at);
                        const ordo::index_t content = target < 0 ? st.content_of(r) : -1 - target;
                        const ordo::slot_entry own = v.slots[static_cast<std::size_t>(st.fed[r])];
                        const ordo::index_t at = target >= 0 ? target
                                                 : own.kind == ordo::slot_kind::token || own.kind == ordo::slot_kind::query ? own.index
                                                                                                                        : -1;
                        for (ordo::index_t s = 0; s < rec.sequences; ++s)
                            REQUIRE(rec.inputs[static_cast<std::size_t>(s * st.num_rows() + r)] == expected_input(v, content, at, out, reqs, s));
                    }
                }
            }
}

TEST_CASE("generate: a request's tokens do not depend on the batch around it or the cache kind", "[engine]") {
    for (const auto& [spec, grid] : kCases) {
        INFO(spec << " " << grid);
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), ordo::parse_grid(grid));
        mock::context_model m;
        m.heads = 3;
        const auto all = make_requests(5);
        const grids_t together = run(m, p, all, opts(2.0f));
        // alone, and in another order
        for (std::size_t i = 0; i < all.size(); ++i) {
            const grids_t alone = run(m, p, {all[i]}, opts(2.0f));
            REQUIRE(alone[0] == together[i]);
        }
        std::vector<ordo::request> shuffled{all[3], all[0], all[4]};
        const grids_t other = run(m, p, shuffled, opts(2.0f));
        CHECK(other[0] == together[3]);
        CHECK(other[1] == together[0]);
        CHECK(other[2] == together[4]);

        // a paged cache (pages out of order) gives the same tokens
        const ordo::index_t seqs = 10, page = 8, len = ordo::kv_cache_len(p), per = (len + page - 1) / page;
        std::vector<float> pages(static_cast<std::size_t>(seqs * per) * 2 * page * 2);
        std::vector<ordo::index_t> indptr{0}, indices;
        for (ordo::index_t s = 0; s < seqs; ++s) {
            for (ordo::index_t k = 0; k < per; ++k) indices.push_back((k * seqs + (seqs - 1 - s)));
            indptr.push_back(static_cast<ordo::index_t>(indices.size()));
        }
        ordo::paged_kv_cache<float> paged(pages, 1, page, 2, indptr, indices);
        const grids_t from_paged = ordo::generate(m, paged, p.view(), kSampler, std::span<const ordo::request>(all), opts(2.0f));
        CHECK(from_paged == together);
    }
}

TEST_CASE("generate: reproducible by seed, different across seeds, CFG changes the tokens", "[engine]") {
    const ordo::plan p = ordo::make_plan(ordo::par4, ordo::grid_shape::make(8, 8));
    mock::context_model m;
    const auto reqs = make_requests(2);
    const grids_t a = run(m, p, reqs, opts(2.0f, 1)), b = run(m, p, reqs, opts(2.0f, 1)), c = run(m, p, reqs, opts(2.0f, 2));
    CHECK(a == b);
    CHECK(a != c);
    CHECK(a[0] != a[1]);  // different request ids and labels
    CHECK(run(m, p, reqs, opts(1.0f, 1)) != a);
    // the policy overload builds the same plan
    ordo::contiguous_kv_cache<float> cache(1, 4, ordo::kv_cache_len(p), 2);
    CHECK(ordo::generate(m, cache, ordo::par4, ordo::grid_shape::make(8, 8), kSampler, std::span<const ordo::request>(reqs), opts(2.0f, 1)) == a);
}

TEST_CASE("session: heads are mixed by the plan's weights and CFG is applied after mixing", "[engine]") {
    // NAR on 2x2: step 2 emits (1,1) from (B of (0,1) + R of (1,0)) / 2
    const ordo::plan p = ordo::make_plan(ordo::nar, ordo::grid_shape::make(2, 2));
    const std::vector<ordo::request> reqs{{1, 5}};
    ordo::session_options so;
    so.guidance.scale = 3.0f;
    so.null_label = 10;
    const ordo::index_t V = 4;
    ordo::session s(p.view(), std::span<const ordo::request>(reqs), ordo::make_sampler(ordo::greedy{}), V, so);
    while (s.step() < 2) {
        const auto& b = s.next();
        std::vector<float> l(b.logits_size(), 0.0f);
        for (std::size_t i = 0; i < l.size(); ++i) l[i] = static_cast<float>(i % 3);
        s.commit(l);
    }
    const auto& b = s.next();
    REQUIRE(b.num_rows == 2);
    REQUIRE(b.num_sequences == 2);
    // logits[seq][row][head][v]
    std::vector<float> l(b.logits_size(), 0.0f);
    auto at = [&](int seq, int row, int head, int v) -> float& { return l[static_cast<std::size_t>(((seq * 2 + row) * 2 + head) * V + v)]; };
    // cond: B of row 0 favours token 1, R of row 1 favours token 2, equally: mixed tie -> token 1 (lowest index)
    at(0, 0, 1, 1) = 4.0f; at(0, 1, 0, 2) = 4.0f;
    // uncond pushes token 1 up, so guidance pushes it down: uncond + 3 (cond - uncond)
    at(1, 0, 1, 1) = 4.0f; at(1, 1, 0, 1) = 2.0f;
    s.commit(l);
    REQUIRE(s.done());
    CHECK(s.tokens(0)[3] == 2);
}

TEST_CASE("session: misuse is a clear error and corrupts nothing", "[engine][errors]") {
    const ordo::plan p = ordo::make_plan(ordo::par4, ordo::grid_shape::make(4, 4));
    const std::vector<ordo::request> reqs{{1, 1}, {2, 2}};
    ordo::session s(p.view(), std::span<const ordo::request>(reqs), kSampler, 8);
    CHECK_THROWS_WITH(s.commit(std::vector<float>(16)), Catch::Contains("commit() without next()"));
    const auto& b = s.next();
    CHECK_THROWS_WITH(s.next(), Catch::Contains("next() called twice"));
    CHECK_THROWS_WITH(s.commit(std::vector<float>(3)), Catch::Contains("needs 16"));
    std::vector<float> bad(b.logits_size(), 0.5f);
    bad[9] = std::nanf("");
    CHECK_THROWS_WITH(s.commit(bad), Catch::Contains("sequence 1, row 0, head 0, token 1 are NaN at step 0"));
    bad[9] = INFINITY;
    CHECK_THROWS_WITH(s.commit(bad), Catch::Contains("infinite"));
    CHECK(s.step() == 0);
    CHECK(s.tokens(0)[0] == -1);
    bad[9] = 0.5f;
    s.commit(bad);  // the same step, now good
    CHECK(s.step() == 1);
    CHECK(s.tokens(0)[0] >= 0);
    // cancel and retry, rewind
    s.next();
    s.cancel();
    while (!s.done()) {
        const auto& bb = s.next();
        s.commit(std::vector<float>(bb.logits_size(), 0.25f));
    }
    const std::vector<ordo::index_t> first(s.tokens(1).begin(), s.tokens(1).end());
    CHECK_THROWS_WITH(s.next(), Catch::Contains("finished"));
    CHECK_THROWS_WITH(s.commit(std::vector<float>(16)), Catch::Contains("finished"));
    CHECK_THROWS_WITH(s.rewind(99), Catch::Contains("rewind(99)"));
    s.rewind(4);
    CHECK(s.tokens(1)[p.view().order[4]] == -1);
    CHECK(s.tokens(1)[p.view().order[3]] == first[static_cast<std::size_t>(p.view().order[3])]);
    while (!s.done()) {
        const auto& bb = s.next();
        s.commit(std::vector<float>(bb.logits_size(), 0.25f));
    }
    CHECK(std::equal(first.begin(), first.end(), s.tokens(1).begin()));  // same seed and logits: same tokens
    CHECK_THROWS_WITH(ordo::session(p.view(), std::span<const ordo::request>(), kSampler, 8), Catch::Contains("no requests"));
}

TEST_CASE("generate: slots a slot-causal plan shows before writing them read as zeros, whatever the cache holds", "[engine]") {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy("zipar:3"), ordo::parse_grid("6x8"));
    mock::context_model m;
    const auto reqs = make_requests(2);
    const grids_t fresh = run(m, p, reqs, opts(2.0f));
    std::vector<float> memory(ordo::contiguous_kv_cache<float>::required_size(1, 4, ordo::kv_cache_len(p), 2), 7.0f);  // a used cache
    ordo::contiguous_kv_cache<float> used(std::span<float>(memory), 1, 4, ordo::kv_cache_len(p), 2);
    CHECK(ordo::generate(m, used, p.view(), kSampler, std::span<const ordo::request>(reqs), opts(2.0f)) == fresh);
}

// zipar:2 on 4x5: step 7 writes row 2's stand-in into the slot of (1, 4), which step 10 overwrites
// with (1, 4) itself. Once step 10 has run, the cache no longer holds what steps 8..10 saw there.
TEST_CASE("session: a rewind that needs an overwritten stand-in is refused; the others work", "[engine][errors]") {
    const ordo::plan p = ordo::make_plan(ordo::next_set_wavefront{2}, ordo::grid_shape::make(4, 5));
    const std::vector<ordo::request> reqs{{1, 1}};
    ordo::session s(p.view(), std::span<const ordo::request>(reqs), kSampler, 8);
    auto run_to = [&](ordo::index_t step) {
        while (s.step() < step) {
            const auto& b = s.next();
            REQUIRE(b.written_through == b.step);
            s.commit(std::vector<float>(b.logits_size(), 0.25f));
        }
    };
    run_to(10);
    s.rewind(9);  // step 10 has not run: the stand-in is still in its slot
    s.rewind(8);
    run_to(10);
    s.next();  // step 10 in flight: its forward may have overwritten the slot
    CHECK_THROWS_WITH(s.rewind(9), Catch::Contains("rewind(9): slot 10 held a stand-in (written at step 7) that step 10 has overwritten"));
    s.rewind(10);  // a cancel
    run_to(12);
    for (ordo::index_t bad : {8, 9}) CHECK_THROWS_WITH(s.rewind(bad), Catch::Contains("rewind to step 7 or earlier, or to step 10 or later"));
    CHECK(s.step() == 12);
    s.rewind(10);  // step 10 runs again and rewrites the slot itself first
    s.rewind(7);   // the stand-in is written again
    CHECK(s.step() == 7);
    run_to(p.num_steps());
}

TEST_CASE("session: commit() that throws for a later request records no request's token", "[engine][errors]") {
    // Literal NaN/inf logits are refused before any sampling (above). These logits are finite but the
    // sampler refuses request 1's: its temperature or its CFG combine overflows to +inf. Request 0 is
    // sampled first; it must not keep its token when the step fails.
    const ordo::plan p = ordo::make_plan(ordo::par4, ordo::grid_shape::make(4, 4));
    const std::vector<ordo::request> reqs{{1, 1}, {2, 2}};
    SECTION("temperature") {
        ordo::session s(p.view(), std::span<const ordo::request>(reqs), ordo::make_sampler(ordo::temperature{0.5f}, ordo::greedy{}), 8);
        const auto& b = s.next();
        std::vector<float> l(b.logits_size(), 0.25f);
        l[8 + 3] = 3e38f;  // sequence 1 (request 1), token 3: / 0.5 is +inf
        CHECK_THROWS_WITH(s.commit(l), Catch::Contains("overflows to +inf"));
        CHECK(s.tokens(0)[0] == -1);
        CHECK(s.tokens(1)[0] == -1);
        CHECK(s.step() == 0);
        CHECK(s.pending());
        l[8 + 3] = 1.0f;
        s.commit(l);  // the same step, now good
        CHECK(s.tokens(0)[0] == 0);
        CHECK(s.tokens(1)[0] == 3);
    }
    SECTION("guidance") {
        ordo::session_options so;
        so.guidance.scale = 2.0f;
        so.null_label = 10;
        ordo::session s(p.view(), std::span<const ordo::request>(reqs), ordo::make_sampler(ordo::greedy{}), 8, so);
        const auto& b = s.next();
        REQUIRE(b.num_sequences == 4);
        std::vector<float> l(b.logits_size(), 0.25f);
        l[8 + 5] = 3e38f;        // cond of request 1 ...
        l[3 * 8 + 5] = -3e38f;   // ... minus its uncond is +inf
        CHECK_THROWS_WITH(s.commit(l), Catch::Contains("+inf"));
        CHECK(s.tokens(0)[0] == -1);
        CHECK(s.step() == 0);
    }
}

TEST_CASE("session: commit_tokens() records tokens sampled elsewhere as commit() would", "[engine]") {
    // a second session commits, step by step, the tokens the first one sampled: same grids, same
    // inputs fed at every step
    const ordo::plan p = ordo::make_plan(ordo::nar, ordo::grid_shape::make(4, 5));
    const std::vector<ordo::request> reqs{{1, 3}, {4, 9}};
    ordo::session_options so;
    so.guidance.scale = 2.0f;
    so.guidance.interval = 2;
    so.null_label = 10;
    ordo::session a(p.view(), std::span<const ordo::request>(reqs), kSampler, 8, so), b(p.view(), std::span<const ordo::request>(reqs), kSampler, 8, so);
    while (!a.done()) {
        const ordo::step_batch& ba = a.next();
        const ordo::step_batch& bb = b.next();
        CHECK(std::equal(ba.inputs.begin(), ba.inputs.end(), bb.inputs.begin(), bb.inputs.end()));
        CHECK(a.guidance_scale() == (a.step() <= 3 ? 2.0f : 1.0f));
        std::vector<float> l(ba.logits_size());
        for (std::size_t i = 0; i < l.size(); ++i) l[i] = static_cast<float>((i * 7919 + static_cast<std::size_t>(ba.step)) % 13);
        const ordo::step_view st = p.step(ba.step);
        a.commit(l);
        const ordo::index_t stride = st.num_emitted() + 1;  // a padded layout, as a device sampler writes
        std::vector<ordo::index_t> t(static_cast<std::size_t>(2 * stride), -1);
        for (ordo::index_t i = 0; i < 2; ++i)
            for (ordo::index_t k = 0; k < st.num_emitted(); ++k) t[static_cast<std::size_t>(i * stride + k)] = a.tokens(i)[st.emitted[k]];
        b.commit_tokens(t, stride);
    }
    REQUIRE(b.done());
    for (ordo::index_t i = 0; i < 2; ++i) CHECK(std::equal(a.tokens(i).begin(), a.tokens(i).end(), b.tokens(i).begin()));
}

TEST_CASE("session: commit_tokens() misuse is a clear error and changes nothing", "[engine][errors]") {
    const ordo::plan p = ordo::make_plan(ordo::par4, ordo::grid_shape::make(4, 4));
    const std::vector<ordo::request> reqs{{1, 1}, {2, 2}};
    ordo::session s(p.view(), std::span<const ordo::request>(reqs), kSampler, 8);
    const std::vector<ordo::index_t> one{3, 4};
    CHECK_THROWS_WITH(s.commit_tokens(one, 1), Catch::Contains("commit_tokens() without next()"));
    s.next();
    CHECK_THROWS_WITH(s.commit_tokens(std::vector<ordo::index_t>{3}, 1), Catch::Contains("emits 1 positions for each of 2 requests"));
    CHECK_THROWS_WITH(s.commit_tokens(std::vector<ordo::index_t>{3, 8}, 1), Catch::Contains("token 8 for request 1"));
    CHECK(s.step() == 0);
    CHECK(s.tokens(0)[0] == -1);
    s.commit_tokens(one, 1);
    CHECK(s.step() == 1);
    CHECK(s.tokens(1)[0] == 4);
}

TEST_CASE("generate: a cache or model that cannot run the plan is named", "[engine][errors]") {
    const ordo::plan p = ordo::make_plan(ordo::nar, ordo::grid_shape::make(4, 4));
    const std::vector<ordo::request> reqs{{1, 1}};
    mock::context_model one_head;
    one_head.heads = 1;
    ordo::contiguous_kv_cache<float> cache(1, 2, ordo::kv_cache_len(p), 2);
    CHECK_THROWS_WITH(ordo::generate(one_head, cache, p.view(), kSampler, std::span<const ordo::request>(reqs)), Catch::Contains("1 output head(s) but the plan reads 2"));
    mock::context_model m;
    ordo::contiguous_kv_cache<float> small(1, 2, 8, 2);
    CHECK_THROWS_WITH(ordo::generate(m, small, p.view(), kSampler, std::span<const ordo::request>(reqs)), Catch::Contains("kv cache too small"));
    ordo::contiguous_kv_cache<float> one_seq(1, 1, ordo::kv_cache_len(p), 2);
    CHECK_THROWS_WITH(ordo::generate(m, one_seq, p.view(), kSampler, std::span<const ordo::request>(reqs), opts(2.0f)), Catch::Contains("sequences"));
    CHECK_THROWS_WITH(cache.key(0, 0, 999), Catch::Contains("cache full"));
    CHECK_THROWS_WITH(cache.key(1, 0, 0), Catch::Contains("layer 1"));
    std::vector<float> pages(64);
    std::vector<ordo::index_t> indptr{0, 2}, bad_indices{0, 9};
    CHECK_THROWS_WITH(ordo::paged_kv_cache<float>(pages, 1, 4, 2, indptr, bad_indices), Catch::Contains("page index 9"));
}

TEST_CASE("session: text prefixes reach the model through the step batch", "[engine]") {
    // a 3-row prefix of 2-dim embeddings per request
    const ordo::plan p = ordo::make_plan(ordo::raster{}, ordo::grid_shape::make(2, 2), 3);
    const std::vector<float> emb_a{1, 2, 3, 4, 5, 6}, emb_b{7, 8, 9, 10, 11, 12};
    const std::vector<ordo::request> reqs{{0, 1, emb_a}, {0, 2, emb_b}};
    ordo::session s(p.view(), std::span<const ordo::request>(reqs), kSampler, 4);
    const ordo::step_batch& b = s.next();
    REQUIRE(b.num_rows == 3);
    for (ordo::index_t seq = 0; seq < b.num_sequences; ++seq)
        for (ordo::index_t r = 0; r < 3; ++r) {
            const ordo::fed_input& in = b.input(seq, r);
            REQUIRE(in.kind == ordo::slot_kind::prefix);
            REQUIRE(in.index == r);
            const auto& e = b.requests[static_cast<std::size_t>(seq) % b.requests.size()].prefix_embeddings;
            CHECK(e[static_cast<std::size_t>(in.index * 2)] == (seq == 0 ? 1.0f : 7.0f) + 2.0f * static_cast<float>(r));
        }
}

TEST_CASE("kv caches satisfy the concept; a model type is checked against it", "[engine][compile-time]") {
    STATIC_REQUIRE(ordo::kv_cache<ordo::contiguous_kv_cache<float>>);
    STATIC_REQUIRE(ordo::kv_cache<ordo::paged_kv_cache<float>>);
    STATIC_REQUIRE_FALSE(ordo::kv_cache<std::vector<float>>);
    STATIC_REQUIRE(ordo::model_for<mock::context_model, ordo::contiguous_kv_cache<float>>);
    STATIC_REQUIRE_FALSE(ordo::model_for<int, ordo::contiguous_kv_cache<float>>);
}

TEST_CASE("session: requests with their own orders over one LPD schedule get the tokens each gets alone", "[engine][lpd]") {
    // the schedule alone (seed=request) and three orders of the official generator
    const ordo::grid_shape g = ordo::grid_shape::make(6, 6);
    const std::string sizes = "sizes=1+3+8+12+12";
    const ordo::plan schedule = ordo::make_plan(ordo::parse_policy("lpd:" + sizes + ",seed=request"), g);
    mock::context_model m;
    m.heads = 1;
    auto reqs = make_requests(3);
    std::vector<std::vector<ordo::index_t>> orders;
    for (int seed : {0, 1, 2}) orders.push_back(std::get<ordo::query_groups>(ordo::parse_policy("lpd:" + sizes + ",seed=" + std::to_string(seed))).order(g));
    REQUIRE(orders[0] != orders[1]);
    for (std::size_t i = 0; i < reqs.size(); ++i) reqs[i].order = orders[i];
    for (float scale : {1.0f, 3.0f}) {
        INFO("cfg " << scale);
        const grids_t together = run(m, schedule, reqs, opts(scale));
        for (std::size_t i = 0; i < reqs.size(); ++i) {
            // alone with its order as a table, and alone with the order built into the plan
            CHECK(run(m, schedule, {reqs[i]}, opts(scale))[0] == together[i]);
            const ordo::plan baked = ordo::make_plan(ordo::parse_policy("lpd:" + sizes + ",seed=" + std::to_string(i)), g);
            ordo::request plain = reqs[i];
            plain.order = {};
            CHECK(run(m, baked, {plain}, opts(scale))[0] == together[i]);
        }
        // the order matters: the same request without its order decodes differently
        ordo::request plain = reqs[1];
        plain.order = {};
        CHECK(run(m, schedule, {plain}, opts(scale))[0] != together[1]);
    }
    // bad tables are refused by name
    auto bad = reqs;
    bad[1].order = std::span<const ordo::index_t>(orders[1]).first(35);
    CHECK_THROWS_WITH(run(m, schedule, bad, opts(1.0f)), Catch::Contains("request 1's order has 35 cells"));
    std::vector<ordo::index_t> twice = orders[2];
    twice[5] = twice[6];
    bad[1].order = twice;
    CHECK_THROWS_WITH(run(m, schedule, bad, opts(1.0f)), Catch::Contains("not a permutation"));
    // any plan takes position tables (a raster plan then decodes each request in its own order);
    // the batch says so, for backends that read one rope[r] for every sequence
    const ordo::plan raster = ordo::make_plan(ordo::raster{}, g);
    const grids_t raster_together = run(m, raster, reqs, opts(2.0f));
    for (std::size_t i = 0; i < reqs.size(); ++i) CHECK(run(m, raster, {reqs[i]}, opts(2.0f))[0] == raster_together[i]);
    ordo::request plain = reqs[0];
    plain.order = {};
    CHECK(run(m, raster, {plain}, opts(2.0f))[0] != raster_together[0]);
}

TEST_CASE("session: the guidance scale of a finished session is 1, a position past the step's is an error", "[engine]") {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy("lpd:sizes=1+3+5"), ordo::grid_shape::make(3, 3));
    mock::context_model m;
    m.heads = 1;
    ordo::session_options o;
    o.guidance = {4.0f, -1, {}, ordo::cfg_ramp::linear_in_rank};
    o.null_label = 10;
    const auto reqs = make_requests(1);
    ordo::session s(p.view(), std::span<const ordo::request>(reqs), kSampler, m.vocab, o);
    ordo::contiguous_kv_cache<float> cache(1, s.num_sequences(), ordo::kv_cache_len(p), 2);
    std::vector<float> logits;
    const ordo::step_batch& b0 = s.next();
    CHECK(s.guidance_scale(0) == 1.0f);  // generation index 0: unguided
    CHECK_THROWS_WITH(s.guidance_scale(1), Catch::Contains("step 0 emits 1 positions"));
    logits.resize(b0.logits_size());
    m.forward(b0, cache, logits);
    s.commit(logits);
    s.next();
    CHECK(s.guidance_scale(2) == 1.0f + 3.0f * 3.0f / 9.0f);
    s.cancel();
    while (!s.done()) {
        const ordo::step_batch& b = s.next();
        logits.resize(b.logits_size());
        m.forward(b, cache, logits);
        s.commit(logits);
    }
    CHECK(s.guidance_scale() == 1.0f);
}
