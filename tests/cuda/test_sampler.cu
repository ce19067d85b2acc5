// The device sampler against the CPU sampler: the same tokens and the same processed logits, bit
// for bit, for every chain, on many rows (ties, -inf entries, flat rows, huge ranges); sample_step
// against a host session's commit on real plans with CFG; the errors.
#include <catch2/catch.hpp>

#include <array>
#include <bit>
#include <iterator>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <ordo/cuda/sampler.cuh>
#include <ordo/engine/session.hpp>
#include <ordo/ordo.hpp>

using Catch::Contains;

namespace {

constexpr float ninf = -std::numeric_limits<float>::infinity();

// Row r of a batch: a mix of the shapes that stress each stage.
std::vector<float> make_logits(int rows, int vocab, std::uint32_t seed) {
    std::mt19937 g(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_real_distribution<float> ud(0.0f, 1.0f);
    std::vector<float> l(static_cast<std::size_t>(rows) * static_cast<std::size_t>(vocab));
    for (int r = 0; r < rows; ++r) {
        float* x = l.data() + static_cast<std::size_t>(r) * static_cast<std::size_t>(vocab);
        const int shape = r % 9;
        for (int i = 0; i < vocab; ++i) {
            const float z = nd(g);
            switch (shape) {
                case 0: x[i] = 2.0f * z; break;                             // plain
                case 1: x[i] = std::round(z * 2.0f) / 2.0f; break;          // many ties
                case 2: x[i] = ud(g) < 0.2f ? ninf : 3.0f * z; break;       // -inf entries
                case 3: x[i] = 30.0f * z; break;                            // a huge range: masses underflow
                case 4: x[i] = 0.25f; break;                                // flat: one top-p bucket
                case 5: x[i] = (i % 3 == 0) ? -0.0f : (i % 3 == 1 ? 0.0f : z); break;  // signed zeros tie
                case 6: x[i] = i == vocab / 2 ? 1.0f : ninf; break;         // one finite logit
                case 7: x[i] = 1e-3f * z + (ud(g) < 0.01f ? 8.0f : 0.0f); break;  // a few peaks over a narrow band
                default: x[i] = (i % 4 == 0) ? -3e34f * (1.0f + std::abs(z)) : z; break;  // a small temperature sends these to -inf
            }
        }
        if (shape == 2) x[0] = 1.0f;  // never a row of -inf alone (the CPU reference would throw)
    }
    return l;
}

std::vector<ordo::draw_key> make_keys(int rows, std::uint64_t seed) {
    std::vector<ordo::draw_key> k(static_cast<std::size_t>(rows));
    for (int r = 0; r < rows; ++r) k[static_cast<std::size_t>(r)] = {seed, 1000u + static_cast<std::uint64_t>(r) * 7u, r * 3};
    return k;
}

struct run_result {
    std::vector<ordo::index_t> tokens;
    std::vector<float> processed;
};

template <class Chain>
run_result run_cpu(const Chain& chain, std::vector<float> logits, const std::vector<ordo::draw_key>& keys, int vocab) {
    ordo::sampler_workspace ws(vocab);
    run_result out{std::vector<ordo::index_t>(keys.size()), {}};
    for (std::size_t r = 0; r < keys.size(); ++r)
        out.tokens[r] = ordo::sample(chain, std::span<float>(logits.data() + r * static_cast<std::size_t>(vocab), static_cast<std::size_t>(vocab)), ws, keys[r]);
    out.processed = std::move(logits);
    return out;
}

template <class Chain>
run_result run_gpu(const Chain& chain, const std::vector<float>& logits, const std::vector<ordo::draw_key>& keys, ordo::cuda::sampler_workspace& ws) {
    ordo::cuda::device_buffer<float> dl{std::span<const float>(logits)};
    ordo::cuda::device_buffer<ordo::draw_key> dk{std::span<const ordo::draw_key>(keys)};
    ordo::cuda::device_buffer<ordo::index_t> dt(keys.size());
    ordo::cuda::sample_rows(chain, dl.span(), std::span<const ordo::draw_key>(dk.span()), dt.span(), ws);
    run_result out{std::vector<ordo::index_t>(keys.size()), std::vector<float>(logits.size())};
    dt.download(out.tokens);
    dl.download(out.processed);
    return out;
}

// Device and host agree on every token and every processed logit (bits: -0 and +0 told apart).
template <class Chain>
void check_chain(const Chain& chain, int rows, int vocab, std::uint32_t seed) {
    INFO("rows " << rows << ", vocab " << vocab << ", seed " << seed);
    const std::vector<float> logits = make_logits(rows, vocab, seed);
    const std::vector<ordo::draw_key> keys = make_keys(rows, seed);
    ordo::cuda::sampler_workspace ws(rows, vocab);
    const run_result cpu = run_cpu(chain, logits, keys, vocab);
    const run_result gpu = run_gpu(chain, logits, keys, ws);
    int token_mismatches = 0, logit_mismatches = 0;
    for (int r = 0; r < rows; ++r) {
        if (cpu.tokens[static_cast<std::size_t>(r)] != gpu.tokens[static_cast<std::size_t>(r)]) {
            if (++token_mismatches <= 5)
                FAIL_CHECK("row " << r << ": cpu token " << cpu.tokens[static_cast<std::size_t>(r)] << ", gpu token " << gpu.tokens[static_cast<std::size_t>(r)]);
        }
        for (int i = 0; i < vocab; ++i) {
            const std::size_t at = static_cast<std::size_t>(r) * static_cast<std::size_t>(vocab) + static_cast<std::size_t>(i);
            if (std::bit_cast<std::uint32_t>(cpu.processed[at]) != std::bit_cast<std::uint32_t>(gpu.processed[at]) && ++logit_mismatches <= 5)
                FAIL_CHECK("row " << r << ", logit " << i << ": cpu " << cpu.processed[at] << ", gpu " << gpu.processed[at]);
        }
    }
    CHECK(token_mismatches == 0);
    CHECK(logit_mismatches == 0);
    // and the workspace keeps nothing between calls: a second run over the same rows agrees
    CHECK(run_gpu(chain, logits, keys, ws).tokens == gpu.tokens);
}

template <class Chain>
void check_all_sizes(const Chain& chain) {
    check_chain(chain, 512, 16384, 1);
    check_chain(chain, 64, 1, 2);
    check_chain(chain, 64, 3, 3);
    check_chain(chain, 64, 100, 4);
    check_chain(chain, 32, 5000, 5);
}

}  // namespace

TEST_CASE("device sampler: greedy and multinomial match the CPU", "[cuda-sampler]") {
    check_all_sizes(ordo::make_sampler(ordo::greedy{}));
    check_all_sizes(ordo::make_sampler(ordo::multinomial{}));
}

TEST_CASE("device sampler: temperature matches the CPU (leading and after filters)", "[cuda-sampler]") {
    for (float t : {0.7f, 1.0f, 1.3f}) {
        INFO("temperature " << t);
        check_all_sizes(ordo::make_sampler(ordo::temperature{t}, ordo::multinomial{}));
        check_all_sizes(ordo::make_sampler(ordo::temperature{t}, ordo::greedy{}));
    }
    // not the first stage: the CPU divides its kept list, not in its first pass
    check_all_sizes(ordo::make_sampler(ordo::top_k{50}, ordo::temperature{0.7f}, ordo::multinomial{}));
    check_all_sizes(ordo::make_sampler(ordo::top_p{0.9f}, ordo::temperature{1.3f}, ordo::greedy{}));
    // a tiny temperature sends the huge negative logits of row shape 8 to -inf, leading (and 1e-5
    // clamps 0) and after a filter (the CPU's list path)
    check_all_sizes(ordo::make_sampler(ordo::temperature{0.0f}, ordo::multinomial{}));
    // (filters that keep everything, so the huge negatives reach the temperature)
    check_all_sizes(ordo::make_sampler(ordo::top_k{100000}, ordo::temperature{0.0f}, ordo::multinomial{}));
    check_all_sizes(ordo::make_sampler(ordo::top_p{1.0f}, ordo::temperature{1e-5f}, ordo::greedy{}));
}

TEST_CASE("device sampler: top_k matches the CPU", "[cuda-sampler]") {
    for (ordo::index_t k : {1, 50, 2000, 16384, 100000}) {
        INFO("k " << k);
        check_all_sizes(ordo::make_sampler(ordo::top_k{k}, ordo::multinomial{}));
    }
    check_all_sizes(ordo::make_sampler(ordo::top_k{0}, ordo::multinomial{}));
}

TEST_CASE("device sampler: top_p matches the CPU", "[cuda-sampler]") {
    for (float p : {0.5f, 0.9f, 1.0f, 1e-6f, 0.999f}) {
        INFO("p " << p);
        check_all_sizes(ordo::make_sampler(ordo::top_p{p}, ordo::multinomial{}));
    }
}

TEST_CASE("device sampler: LlamaGen's chains and other orders match the CPU", "[cuda-sampler]") {
    check_all_sizes(ordo::make_sampler(ordo::temperature{1.0f}, ordo::top_k{2000}, ordo::multinomial{}));
    check_all_sizes(ordo::make_sampler(ordo::temperature{1.0f}, ordo::top_k{2000}, ordo::top_p{0.9f}, ordo::multinomial{}));
    check_all_sizes(ordo::make_sampler(ordo::temperature{0.7f}, ordo::top_k{50}, ordo::top_p{0.5f}, ordo::multinomial{}));
    check_all_sizes(ordo::make_sampler(ordo::temperature{1.3f}, ordo::top_k{2000}, ordo::top_p{0.9f}, ordo::greedy{}));
    check_all_sizes(ordo::make_sampler(ordo::top_p{0.9f}, ordo::top_k{50}, ordo::temperature{0.7f}, ordo::multinomial{}));
}

TEST_CASE("device sampler: a boundary bucket larger than one sorted tile", "[cuda-sampler]") {
    // 70% of the tokens within a few ulp of the top (one bucket: ~8400 tokens, a few distinct values),
    // the rest spread below: top-p's boundary bucket spans several radix-selected sorted tiles
    const int rows = 8, vocab = 12000;
    std::vector<float> logits(static_cast<std::size_t>(rows * vocab));
    std::mt19937 g(9);
    std::uniform_int_distribution<int> small(0, 40);
    std::uniform_real_distribution<float> ud(0.0f, 1.0f);
    for (auto& x : logits) {
        const int j = small(g);
        x = ud(g) < 0.7f ? std::nextafter(1.0f, 2.0f) + static_cast<float>(j % 3) * 1.2e-7f : 1.0f - 1e-3f * static_cast<float>(j);
    }
    const auto keys = make_keys(rows, 9);
    for (float p : {0.1f, 0.5f, 0.69f, 0.97f}) {
        const auto chain = ordo::make_sampler(ordo::top_p{p}, ordo::multinomial{});
        ordo::cuda::sampler_workspace ws(rows, vocab);
        const run_result cpu = run_cpu(chain, logits, keys, vocab), gpu = run_gpu(chain, logits, keys, ws);
        CHECK(cpu.tokens == gpu.tokens);
        CHECK(std::memcmp(cpu.processed.data(), gpu.processed.data(), cpu.processed.size() * sizeof(float)) == 0);
    }
}

TEST_CASE("device sampler: errors name the row, the token and the problem", "[cuda-sampler]") {
    const int rows = 6, vocab = 100;
    const auto keys = make_keys(rows, 3);
    ordo::cuda::sampler_workspace ws(rows, vocab);
    const auto chain = ordo::make_sampler(ordo::temperature{1.0f}, ordo::top_k{10}, ordo::multinomial{});
    auto logits = [&] { return make_logits(rows, vocab, 3); };
    auto at = [&](std::vector<float>& l, int r, int i) -> float& { return l[static_cast<std::size_t>(r * vocab + i)]; };
    {
        auto l = logits();
        at(l, 4, 3) = std::nanf("");
        at(l, 3, 17) = std::nanf("");  // the lowest failing row is named
        at(l, 3, 40) = std::numeric_limits<float>::infinity();
        CHECK_THROWS_WITH(run_gpu(chain, l, keys, ws), Contains("row 3: logit 17 is NaN"));
    }
    {
        auto l = logits();
        at(l, 2, 5) = std::numeric_limits<float>::infinity();
        CHECK_THROWS_WITH(run_gpu(chain, l, keys, ws), Contains("row 2: logit 5 is +inf"));
    }
    {
        auto l = logits();
        for (int i = 0; i < vocab; ++i) at(l, 1, i) = ninf;
        CHECK_THROWS_WITH(run_gpu(chain, l, keys, ws), Contains("row 1: all 100 logits are -inf"));
    }
    {
        auto l = logits();
        at(l, 5, 9) = 3e38f;
        const auto hot = ordo::make_sampler(ordo::temperature{0.5f}, ordo::multinomial{});
        CHECK_THROWS_WITH(run_gpu(hot, l, keys, ws), Contains("row 5: logit 9 overflows to +inf at temperature 0.5"));
        // the CPU says the same of that row
        std::vector<float> row(l.begin() + 5 * vocab, l.begin() + 6 * vocab);
        ordo::sampler_workspace cws(vocab);
        CHECK_THROWS_WITH(ordo::sample(hot, row, cws, keys[5]), Contains("logit 9 overflows to +inf at temperature 0.5"));
    }
    {
        // every finite logit of row 0 underflows to -inf under a temperature after a filter
        auto l = logits();
        for (int i = 0; i < vocab; ++i) at(l, 0, i) = i < 3 ? -3e38f : ninf;
        const auto late = ordo::make_sampler(ordo::top_k{5}, ordo::temperature{1e-3f}, ordo::multinomial{});
        CHECK_THROWS_WITH(run_gpu(late, l, keys, ws), Contains("row 0: all logits are -inf after temperature 0.001"));
    }
    // sizes and parameters: errors before any launch
    {
        ordo::cuda::sampler_workspace other(rows, 2 * vocab);
        CHECK_THROWS_WITH(run_gpu(chain, logits(), keys, other), Contains("vocab 200"));
        ordo::cuda::sampler_workspace few(rows - 1, vocab);
        CHECK_THROWS_WITH(run_gpu(chain, logits(), keys, few), Contains("workspace was made for 5"));
        CHECK_THROWS_WITH(run_gpu(ordo::make_sampler(ordo::top_p{1.5f}, ordo::multinomial{}), logits(), keys, ws), Contains("top_p: p = 1.5 is outside (0, 1]"));
        CHECK_THROWS_WITH(run_gpu(ordo::make_sampler(ordo::top_k{-1}, ordo::greedy{}), logits(), keys, ws), Contains("top_k: k = -1 is negative"));
        CHECK_THROWS_WITH(run_gpu(ordo::make_sampler(ordo::temperature{NAN}, ordo::greedy{}), logits(), keys, ws), Contains("temperature: value nan"));
    }
    // and the workspace still samples correctly after the failures
    const run_result gpu = run_gpu(chain, logits(), keys, ws);
    CHECK(gpu.tokens == run_cpu(chain, logits(), keys, vocab).tokens);
}

namespace {

// Drives a host session and the device step sampler over the same model outputs, step by step:
// the device tokens equal commit()'s, and the device rows (mixed, guided, processed) equal the
// CPU sampler's processed final_logits().
template <class Chain>
void check_steps(const ordo::plan& p, const Chain& chain, ordo::cfg guidance, int num_requests, int vocab, std::uint64_t seed) {
    std::vector<ordo::request> reqs;
    std::vector<std::uint64_t> ids;
    for (int i = 0; i < num_requests; ++i) {
        reqs.push_back({i % 10, 500u + 3u * static_cast<std::uint64_t>(i)});
        ids.push_back(reqs.back().id);
    }
    ordo::session_options opts;
    opts.guidance = guidance;
    opts.seed = seed;
    ordo::session s(p.view(), std::span<const ordo::request>(reqs), chain, vocab, opts);
    const ordo::cuda::device_plan dplan(p.view());
    const ordo::index_t max_emitted = p.view().max_emitted_per_step();
    ordo::cuda::step_tokens out(num_requests, max_emitted);
    ordo::cuda::sampler_workspace ws(num_requests * max_emitted, vocab);
    ordo::sampler_workspace cws(vocab);
    const ordo::cuda::device_buffer<std::uint64_t> dids{std::span<const std::uint64_t>(ids)};
    std::mt19937 g(static_cast<std::uint32_t>(seed));
    std::normal_distribution<float> nd(0.0f, 2.0f);
    const bool halves = guidance.active();
    while (!s.done()) {
        const ordo::index_t step = s.step();
        INFO("step " << step);
        const ordo::step_batch& b = s.next();
        std::vector<float> logits(b.logits_size());
        // ties across heads and tokens on even steps; unrounded values on odd ones, where a fused
        // multiply-add in the head mix or CFG would round differently
        for (auto& x : logits) x = step % 2 == 0 ? std::round(nd(g) * 8.0f) / 8.0f : nd(g);
        const ordo::cuda::device_buffer<float> dl{std::span<const float>(logits)};
        const float scale = halves ? guidance.scale_at(step) : 1.0f;
        ordo::cuda::sample_step(chain, dplan, step, std::span<const float>(dl.span()), b.num_sequences, scale, seed, std::span<const std::uint64_t>(dids.span()),
                                out, ws);
        const std::vector<ordo::index_t> gpu = out.download();
        std::vector<float> rows(static_cast<std::size_t>(num_requests) * static_cast<std::size_t>(max_emitted) * static_cast<std::size_t>(vocab));
        ordo::cuda::check(cudaMemcpy(rows.data(), ws.mixed(), rows.size() * sizeof(float), cudaMemcpyDeviceToHost), "download the step's rows");
        // the processed rows, before commit() consumes the step
        const ordo::step_view st = p.view().step(step);
        std::vector<float> final_row(static_cast<std::size_t>(vocab));
        for (int i = 0; i < num_requests; ++i)
            for (ordo::index_t k = 0; k < st.num_emitted(); ++k) {
                s.final_logits(logits, i, k, final_row);
                (void)ordo::sample(chain, std::span<float>(final_row), cws, {seed, ids[static_cast<std::size_t>(i)], st.emitted[k]});
                const float* dev = rows.data() + (static_cast<std::size_t>(i) * static_cast<std::size_t>(max_emitted) + static_cast<std::size_t>(k)) * static_cast<std::size_t>(vocab);
                CHECK(std::memcmp(dev, final_row.data(), final_row.size() * sizeof(float)) == 0);
            }
        s.commit(logits);
        for (int i = 0; i < num_requests; ++i) {
            for (ordo::index_t k = 0; k < max_emitted; ++k) {
                const ordo::index_t tok = gpu[static_cast<std::size_t>(i) * static_cast<std::size_t>(max_emitted) + static_cast<std::size_t>(k)];
                if (k >= st.num_emitted()) {
                    CHECK(tok == -1);
                    continue;
                }
                CHECK(tok == s.tokens(i)[static_cast<std::size_t>(st.emitted[k])]);
            }
        }
    }
}

}  // namespace

TEST_CASE("device step sampler: equals a host session's commit (head mix, CFG, draw keys)", "[cuda-sampler]") {
    const auto llamagen = ordo::make_sampler(ordo::temperature{1.0f}, ordo::top_k{50}, ordo::top_p{0.9f}, ordo::multinomial{});
    const auto argmax = ordo::make_sampler(ordo::greedy{});
    // NAR mixes two heads per emitted position with weights; PAR emits several positions per step
    const ordo::plan nar = ordo::make_plan(ordo::neighbor_frontier{}, ordo::grid_shape::make(8, 8));
    const ordo::plan par = ordo::make_plan(ordo::par4, ordo::grid_shape::make(8, 8));
    const float schedule[] = {1.0f, 3.0f, 2.5f, 1.5f};
    for (const ordo::plan* p : {&nar, &par}) {
        check_steps(*p, llamagen, ordo::cfg{2.0f}, 3, 512, 11);                  // CFG every step
        check_steps(*p, llamagen, ordo::cfg{4.0f, 2}, 2, 300, 12);               // the interval: later steps cond only, uncond half present
        check_steps(*p, argmax, ordo::cfg{}, 4, 256, 13);                        // no CFG: cond sequences only
        check_steps(*p, llamagen, ordo::cfg{1.0f, -1, schedule}, 2, 128, 14);    // a schedule, some steps cond only
        check_steps(*p, llamagen, ordo::cfg{1.7f}, 2, 512, 15);                  // a scale that is not a power of two
    }
}

TEST_CASE("device step sampler: errors", "[cuda-sampler]") {
    const ordo::plan p = ordo::make_plan(ordo::neighbor_frontier{}, ordo::grid_shape::make(4, 4));
    const auto chain = ordo::make_sampler(ordo::top_k{5}, ordo::multinomial{});
    const int vocab = 64, nreq = 2;
    const std::uint64_t ids_host[] = {7, 8};
    const ordo::cuda::device_buffer<std::uint64_t> ids{std::span<const std::uint64_t>(ids_host)};
    const std::span<const std::uint64_t> dids(ids.span());
    const ordo::cuda::device_plan dplan(p.view());
    const ordo::index_t me = p.view().max_emitted_per_step();
    ordo::cuda::step_tokens out(nreq, me);
    ordo::cuda::sampler_workspace ws(nreq * me, vocab);
    // step 1 feeds rows_1 rows; 2 sequences (CFG)
    const ordo::step_view st = p.view().step(1);
    const std::size_t per_seq = static_cast<std::size_t>(st.num_rows()) * static_cast<std::size_t>(p.header().num_heads) * vocab;
    std::vector<float> host(2 * per_seq, 0.5f);
    ordo::cuda::device_buffer<float> dl{std::span<const float>(host)};
    const std::span<const float> logits(dl.span());
    CHECK_THROWS_WITH(ordo::cuda::sample_step(chain, dplan, p.num_steps(), logits, 2 * nreq, 2.0f, 1, dids, out, ws), Contains("step " + std::to_string(p.num_steps()) + " outside"));
    CHECK_THROWS_WITH(ordo::cuda::sample_step(chain, dplan, 1, logits, nreq, 2.0f, 1, dids, out, ws), Contains("needs the uncond half"));
    CHECK_THROWS_WITH(ordo::cuda::sample_step(chain, dplan, 1, logits, 3, 1.0f, 1, dids, out, ws), Contains("3 sequences for 2 requests"));
    ordo::cuda::sampler_workspace small(1, vocab);
    CHECK_THROWS_WITH(ordo::cuda::sample_step(chain, dplan, 1, logits, 2 * nreq, 2.0f, 1, dids, out, small), Contains("workspace was made for 1"));
    // logits shaped for another step's row count: found on the device, reported after the launch
    const ordo::index_t other = [&] {
        for (ordo::index_t s = 0; s < p.num_steps(); ++s)
            if (p.view().step(s).num_rows() != st.num_rows()) return s;
        return ordo::index_t{-1};
    }();
    if (other >= 0) CHECK_THROWS_WITH(ordo::cuda::sample_step(chain, dplan, other, logits, 2 * nreq, 2.0f, 1, dids, out, ws), Contains("rows per sequence"));
    // a NaN in request 1's cond logits: named with the request and the token
    host[per_seq * 1 + 3] = std::nanf("");  // sequence 1, row 0, head 0, token 3
    dl.upload(host);
    bool row0_used = false;
    for (ordo::index_t k = 0; k < st.num_emitted(); ++k)
        for (const auto& c : st.from(k)) row0_used |= c.row == 0 && c.head == 0;
    if (row0_used) CHECK_THROWS_WITH(ordo::cuda::sample_step(chain, dplan, 1, logits, 2 * nreq, 2.0f, 1, dids, out, ws), Contains("request 1") && Contains("logit 3 is NaN"));
}

namespace {
__global__ void exp_mass_kernel(const double* x, double* y, std::size_t n) {
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
        y[i] = ordo::contract::exp_mass(x[i]);
}
__global__ void top_p_bucket_kernel(const float* x, ordo::cuda::detail::top_p_consts c, int* bucket, float* fm, std::size_t n) {
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
        bucket[i] = ordo::cuda::detail::top_p_bucket(x[i], c, fm[i]);
}
}  // namespace

// End-to-end equality can miss a one-ulp change (it flips a token only when u * S lands within
// ~1e-16 of a running sum), so the contract's arithmetic is compared bit for bit on its own.
TEST_CASE("device sampler: exp_mass and the top-p bucket factors are bit-identical to the host", "[cuda-sampler]") {
    std::mt19937_64 g(5);
    std::uniform_real_distribution<double> ud(-1100.0, 0.0);
    std::vector<double> x(1 << 20);
    for (double& v : x) v = ud(g);
    const double special[] = {-0.0, 0.0, -708.4, -745.2, -1024.0, -1022.0 * 0.6931471805599453, -709.78, -1e-300, -std::numeric_limits<double>::infinity(),
                              -0.34657359027997264, -0.3465735902799727, -1e-17};
    for (std::size_t i = 0; i < std::size(special); ++i) x[i] = special[i];
    const ordo::cuda::device_buffer<double> dx{std::span<const double>(x)};
    ordo::cuda::device_buffer<double> dy(x.size());
    exp_mass_kernel<<<256, 256>>>(dx.data(), dy.data(), x.size());
    ordo::cuda::check_launch("exp_mass_kernel");
    std::vector<double> y(x.size());
    dy.download(y);
    int mismatches = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
        if (std::bit_cast<std::uint64_t>(y[i]) != std::bit_cast<std::uint64_t>(ordo::contract::exp_mass(x[i])) && ++mismatches <= 5)
            FAIL_CHECK("exp_mass(" << x[i] << "): device " << y[i] << ", host " << ordo::contract::exp_mass(x[i]));
    CHECK(mismatches == 0);

    // the top-p bucket of a logit and its in-bucket factor, as the CPU's top_p_select computes them
    for (const float span : {64.0f, 20.0f, 3.5f, 1e-3f}) {
        INFO("logit span " << span);
        const float mx = 7.25f, per = static_cast<float>(1023.0 / static_cast<double>(span));
        const double wd = 1.0 / static_cast<double>(per);
        const ordo::cuda::detail::top_p_consts c{mx, per, static_cast<float>(-wd), static_cast<float>(wd * wd / 2.0), static_cast<float>(-wd * wd * wd / 6.0),
                                                 static_cast<float>(wd * wd * wd * wd / 24.0), wd};
        std::uniform_real_distribution<float> lf(mx - 1.5f * span, mx);
        std::vector<float> l(1 << 18);
        for (float& v : l) v = lf(g);
        l[0] = mx;
        const ordo::cuda::device_buffer<float> dl{std::span<const float>(l)};
        ordo::cuda::device_buffer<int> db(l.size());
        ordo::cuda::device_buffer<float> dfm(l.size());
        top_p_bucket_kernel<<<256, 256>>>(dl.data(), c, db.data(), dfm.data(), l.size());
        ordo::cuda::check_launch("top_p_bucket_kernel");
        std::vector<int> b(l.size());
        std::vector<float> fm(l.size());
        db.download(b);
        dfm.download(fm);
        const std::int32_t last_bits = std::bit_cast<std::int32_t>(1023.0f);
        int bad = 0;
        for (std::size_t i = 0; i < l.size(); ++i) {
            // the CPU's sequence (engine/sampler.hpp, top_p_select), one rounded operation at a time
            const float d = mx - l[i];
            const float prod = d * per;
            const std::int32_t qb = std::bit_cast<std::int32_t>(prod);
            const float q = std::bit_cast<float>(qb < last_bits ? qb : last_bits);
            const int want_b = static_cast<int>(q);
            const float t = q - static_cast<float>(want_b);
            float h = t * c.c4;
            h = c.c3 + h;
            h = t * h;
            h = c.c2 + h;
            h = t * h;
            h = c.c1 + h;
            h = t * h;
            const float want_fm = 1.0f + h;
            if ((b[i] != want_b || std::bit_cast<std::uint32_t>(fm[i]) != std::bit_cast<std::uint32_t>(want_fm)) && ++bad <= 5)
                FAIL_CHECK("logit " << l[i] << ": device bucket " << b[i] << " fm " << fm[i] << ", host " << want_b << " " << want_fm);
        }
        CHECK(bad == 0);
    }
}

namespace {
__global__ void philox_kernel(const std::array<std::uint32_t, 4>* ctr, const std::array<std::uint32_t, 2>* key, std::array<std::uint32_t, 4>* out, int n) {
    const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
    if (i < n) out[i] = ordo::philox4x32(ctr[i], key[i]);
}
}  // namespace

// The device sampler draws from the same philox4x32 (random.hpp) compiled by nvcc: the Random123
// known-answer vectors (tests/test_random.cpp checks the host) on the device.
TEST_CASE("device sampler: philox4x32-10 reproduces the Random123 known-answer vectors on the device", "[cuda-sampler]") {
    const std::vector<std::array<std::uint32_t, 4>> ctr{{0x00000000, 0x00000000, 0x00000000, 0x00000000},
                                                        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
                                                        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}};
    const std::vector<std::array<std::uint32_t, 2>> key{{0x00000000, 0x00000000}, {0xffffffff, 0xffffffff}, {0xa4093822, 0x299f31d0}};
    const std::vector<std::array<std::uint32_t, 4>> want{{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
                                                         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
                                                         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}};
    const ordo::cuda::device_buffer<std::array<std::uint32_t, 4>> dctr{std::span<const std::array<std::uint32_t, 4>>(ctr)};
    const ordo::cuda::device_buffer<std::array<std::uint32_t, 2>> dkey{std::span<const std::array<std::uint32_t, 2>>(key)};
    ordo::cuda::device_buffer<std::array<std::uint32_t, 4>> dout(ctr.size());
    philox_kernel<<<1, 32>>>(dctr.data(), dkey.data(), dout.data(), static_cast<int>(ctr.size()));
    ordo::cuda::check_launch("philox_kernel");
    std::vector<std::array<std::uint32_t, 4>> got(ctr.size());
    dout.download(got);
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(got[i] == want[i]);
}
