// The decode-step attention kernel against a host brute force: random K/V in the cache, random
// queries, every fed row of every step of several plans (step- and slot-causal masks), contiguous
// and paged caches, fp32 and bf16 caches, a kv_end cut (the teacher-forcing layout), and the head
// dims of the tests' tiny models (16) and of the official presets (64: B to XXL, 100: 3B). More kv
// slots than 48 KB of shared memory hold, from several threads at once and on every device.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <ordo/cuda/attention.cuh>
#include <ordo/ordo.hpp>

#include "../tolerance.hpp"

namespace oc = ordo::cuda;

namespace {

float bf16_round(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

// out[h][i] for one query row over kv slots [0, kv_end) visible under the plan's mask; a visible
// slot the plan has not written by step `written_through` counts as K = V = 0 (ZipAR).
std::vector<float> host_attention(const ordo::plan_view& p, ordo::index_t qslot, ordo::index_t kv_end, ordo::index_t written_through, const float* q,
                                  ordo::index_t n_head, ordo::index_t kv_heads, ordo::index_t hd, const std::vector<float>& k, const std::vector<float>& v) {
    std::vector<float> out(static_cast<std::size_t>(n_head * hd), 0.0f);
    const ordo::index_t width = kv_heads * hd;
    for (ordo::index_t h = 0; h < n_head; ++h) {
        const ordo::index_t kh = h / (n_head / kv_heads);
        std::vector<double> sc;
        std::vector<ordo::index_t> vis;
        for (ordo::index_t kv = 0; kv < kv_end; ++kv) {
            if (!ordo::visible(p, qslot, kv)) continue;
            const bool written = ordo::written(p.fed_step.data(), kv, written_through);
            double dot = 0;
            for (ordo::index_t i = 0; written && i < hd; ++i) dot += double(q[h * hd + i]) * k[static_cast<std::size_t>(kv * width + kh * hd + i)];
            sc.push_back(dot / std::sqrt(double(hd)));
            vis.push_back(written ? kv : -1);
        }
        double m = -1e300, sum = 0;
        for (double s : sc) m = std::max(m, s);
        for (double& s : sc) sum += (s = std::exp(s - m));
        for (std::size_t j = 0; j < vis.size(); ++j)
            for (ordo::index_t i = 0; vis[j] >= 0 && i < hd; ++i)
                out[static_cast<std::size_t>(h * hd + i)] += float(sc[j] / sum * v[static_cast<std::size_t>(vis[j] * width + kh * hd + i)]);
    }
    return out;
}

// The head dims every attention test runs: the tiny test models', and the official presets'.
constexpr ordo::index_t kHeadDims[] = {16, 64, 100};

template <class T>
void check_plan(const char* spec, const char* grid, bool paged, ordo::index_t kv_cut, ordo::index_t hd) {
    INFO(spec << " on " << grid << (paged ? " (paged)" : " (contiguous)") << " kv cut " << kv_cut << ", head_dim " << hd);
    const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), ordo::parse_grid(grid));
    const oc::device_plan dp(p.view());
    const ordo::index_t n_head = 4, kv_heads = 2, width = kv_heads * hd, slots = p.num_slots();
    const ordo::index_t kv_end = kv_cut > 0 ? std::min(kv_cut, slots) : slots;
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> k(static_cast<std::size_t>(slots * width)), v(k.size());
    for (float& x : k) x = nd(rng);
    for (float& x : v) x = nd(rng);
    if constexpr (!std::is_same_v<T, float>) {
        for (float& x : k) x = bf16_round(x);
        for (float& x : v) x = bf16_round(x);
    }
    // the cache: one sequence, K/V rows of every slot
    const ordo::index_t page = 8, npages = (slots + page - 1) / page;
    std::vector<T> kt(k.size()), vt(v.size());
    for (std::size_t i = 0; i < k.size(); ++i) kt[i] = oc::detail::from_float<T>(k[i]), vt[i] = oc::detail::from_float<T>(v[i]);
    oc::device_buffer<T> memory(static_cast<std::size_t>(npages) * 2 * page * static_cast<std::size_t>(width) + 2 * static_cast<std::size_t>(slots * width));
    std::vector<ordo::index_t> indptr{0, npages}, indices;
    for (ordo::index_t i = 0; i < npages; ++i) indices.push_back(npages - 1 - i);  // reversed pages
    oc::device_kv_cache<T> contiguous(memory.span(), 1, 1, slots, width);
    oc::device_paged_kv_cache<T> paged_cache(memory.span(), 1, page, width, indptr, indices);
    const oc::kv_layout<T> layout = paged ? paged_cache.layout() : contiguous.layout();
    for (ordo::index_t s = 0; s < slots; ++s) {
        T* kd = paged ? paged_cache.key(0, 0, s).data() : contiguous.key(0, 0, s).data();
        T* vd = paged ? paged_cache.value(0, 0, s).data() : contiguous.value(0, 0, s).data();
        oc::check(cudaMemcpy(kd, kt.data() + s * width, static_cast<std::size_t>(width) * sizeof(T), cudaMemcpyHostToDevice), "k");
        oc::check(cudaMemcpy(vd, vt.data() + s * width, static_cast<std::size_t>(width) * sizeof(T), cudaMemcpyHostToDevice), "v");
    }
    const ordo::index_t qkv_w = (n_head + 2 * kv_heads) * hd;
    for (ordo::index_t st = 0; st < p.num_steps(); ++st) {
        const ordo::step_view sv = p.step(st);
        std::vector<oc::row_info> rows;
        for (ordo::index_t slot : sv.fed)
            if (slot < kv_end) rows.push_back({slot, ordo::rope_of(p.view(), slot)});
        if (rows.empty()) continue;
        const ordo::index_t nr = static_cast<ordo::index_t>(rows.size());
        std::vector<float> qkv(static_cast<std::size_t>(nr * qkv_w));
        for (float& x : qkv) x = nd(rng);
        oc::device_buffer<float> d_qkv{std::span<const float>(qkv)};
        oc::device_buffer<oc::row_info> d_rows{std::span<const oc::row_info>(rows)};
        oc::device_buffer<float> d_out(static_cast<std::size_t>(nr * n_head * hd));
        oc::decode_attention(d_qkv.data(), d_rows.data(), 1, nr, n_head, kv_heads, hd, dp, kv_end, st, layout, 0, d_out.data(), nullptr);
        std::vector<float> out(d_out.size());
        d_out.download(out);
        float worst = 0;  // +inf once a row holds NaN or inf (tolerance.hpp)
        for (ordo::index_t r = 0; r < nr; ++r) {
            const std::vector<float> want = host_attention(p.view(), rows[static_cast<std::size_t>(r)].slot, kv_end, st, qkv.data() + r * qkv_w, n_head, kv_heads, hd, k, v);
            worst = std::max(worst, tolerance::max_abs_diff(want, std::span<const float>(out).subspan(static_cast<std::size_t>(r * n_head * hd), want.size())));
        }
        INFO("step " << st);
        REQUIRE(worst < 1e-4f);
    }
}

}  // namespace

TEST_CASE("cuda attention: every fed row of every step equals the host brute force, head_dim 16, 64 and 100", "[cuda-attention]") {
    for (const ordo::index_t hd : kHeadDims)
        for (bool paged : {false, true}) {
            check_plan<float>("raster", "6x6", paged, 0, hd);
            check_plan<float>("par:2x2", "8x8", paged, 0, hd);
            check_plan<float>("nar", "7x9", paged, 0, hd);
            check_plan<float>("par:2x2+nar", "8x8", paged, 0, hd);
            check_plan<float>("zipar:3", "6x8", paged, 0, hd);  // slot-causal
            check_plan<float>("par:4x4", "8x8", paged, 40, hd);  // kv_end inside the layout
            check_plan<__nv_bfloat16>("nar", "12x12", paged, 0, hd);
        }
}

namespace {

// The last step of raster on `side` x `side` (one query that sees every slot before it) with
// head_dim hd on the current device and its own stream, `repeats` times; the worst |difference|
// from the host brute force. kv slots: side^2 + 1, more than 48 KB of fp32 scores for side >= 110.
float big_last_step(ordo::index_t side, ordo::index_t hd, int repeats) {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy("raster"), ordo::grid_shape::make(side, side));
    const ordo::index_t n_head = 4, kv_heads = 2, width = kv_heads * hd, slots = p.num_slots();
    cudaStream_t stream = nullptr;
    oc::check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "test stream");
    const oc::device_plan dp(p.view(), stream);
    std::mt19937 rng(static_cast<unsigned>(hd));
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> k(static_cast<std::size_t>(slots) * static_cast<std::size_t>(width)), v(k.size());
    for (float& x : k) x = nd(rng);
    for (float& x : v) x = nd(rng);
    // contiguous cache of one layer and sequence: K rows of every slot, then V rows
    oc::device_kv_cache<float> cache(1, 1, slots, width);
    oc::check(cudaMemcpy(cache.key(0, 0, 0).data(), k.data(), k.size() * sizeof(float), cudaMemcpyHostToDevice), "k");
    oc::check(cudaMemcpy(cache.value(0, 0, 0).data(), v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice), "v");
    const ordo::step_view last = p.step(p.num_steps() - 1);
    const std::vector<oc::row_info> rows{{last.fed[0], ordo::rope_of(p.view(), last.fed[0])}};
    const ordo::index_t qkv_w = (n_head + 2 * kv_heads) * hd;
    std::vector<float> qkv(static_cast<std::size_t>(qkv_w));
    for (float& x : qkv) x = nd(rng);
    oc::device_buffer<float> d_qkv{std::span<const float>(qkv)};
    oc::device_buffer<oc::row_info> d_rows{std::span<const oc::row_info>(rows)};
    oc::device_buffer<float> d_out(static_cast<std::size_t>(n_head * hd));
    for (int i = 0; i < repeats; ++i)
        oc::decode_attention(d_qkv.data(), d_rows.data(), 1, 1, n_head, kv_heads, hd, dp, slots, ordo::max_index, cache.layout(), 0, d_out.data(), stream);
    std::vector<float> out(d_out.size());
    d_out.download(out, stream);
    oc::check(cudaStreamDestroy(stream), "test stream");
    const std::vector<float> want = host_attention(p.view(), rows[0].slot, slots, ordo::max_index, qkv.data(), n_head, kv_heads, hd, k, v);
    float worst = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
        const float d = std::abs(want[i] - out[i]);
        worst = std::isfinite(d) ? std::max(worst, d) : INFINITY;  // NaN fails
    }
    return worst;
}

}  // namespace

TEST_CASE("cuda attention: more kv slots than 48 KB of shared memory hold, from several threads at once", "[cuda-attention]") {
    // each thread launches with its own shared memory size (head_dim) while the others launch theirs:
    // no thread's launch may meet a limit another set for a smaller one
    const ordo::index_t side = 112;  // 12545 slots: 50 KB of scores
    std::vector<float> worst(6, -1.0f);
    std::vector<std::string> errors(worst.size());
    std::vector<std::thread> threads;
    int device = 0;
    oc::check(cudaGetDevice(&device), "cudaGetDevice");
    for (std::size_t t = 0; t < worst.size(); ++t)
        threads.emplace_back([&, t] {
            try {
                oc::check(cudaSetDevice(device), "cudaSetDevice");
                worst[t] = big_last_step(side, kHeadDims[t % 3], 20);
            } catch (const std::exception& e) {
                errors[t] = e.what();
            }
        });
    for (std::thread& th : threads) th.join();
    for (std::size_t t = 0; t < worst.size(); ++t) {
        INFO("thread " << t << ", head_dim " << kHeadDims[t % 3]);
        CHECK(errors[t] == "");
        CHECK((worst[t] >= 0.0f && worst[t] < 1e-4f));
    }
}

TEST_CASE("cuda attention: the shared-memory opt-in holds on every device", "[cuda-attention]") {
    const int devices = oc::device_count();
    if (devices < 2) {
        WARN("one CUDA device: the per-device opt-in is exercised on device 0 only");
    }
    int previous = 0;
    oc::check(cudaGetDevice(&previous), "cudaGetDevice");
    for (int d = 0; d < devices; ++d) {
        INFO("device " << d);
        oc::check(cudaSetDevice(d), "cudaSetDevice");
        CHECK(big_last_step(112, 64, 1) < 1e-4f);
    }
    oc::check(cudaSetDevice(previous), "cudaSetDevice");
}

TEST_CASE("cuda attention: a kv range outside the plan is an error", "[cuda-attention]") {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy("raster"), ordo::grid_shape::make(4, 4));
    const oc::device_plan dp(p.view());
    oc::device_kv_cache<float> cache(1, 1, 24, 32);
    auto run = [&] { oc::decode_attention<float, float>(nullptr, nullptr, 1, 1, 2, 2, 16, dp, p.num_slots() + 1, ordo::max_index, cache.layout(), 0, nullptr, nullptr); };
    CHECK_THROWS_WITH(run(), Catch::Contains("kv_end"));
}
