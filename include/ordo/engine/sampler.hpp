// ordo/engine/sampler.hpp - the token sampler of the engine: a compile-time chain of stages
// (temperature, top-k, top-p, then the draw: greedy or multinomial) and classifier-free guidance.
//
//   auto chain = ordo::make_sampler(ordo::temperature{1.0f}, ordo::top_k{2000}, ordo::top_p{0.9f},
//                                   ordo::multinomial{});
//   ordo::sampler_workspace ws(16384);                       // all scratch, allocated once
//   ordo::index_t tok = ordo::sample(chain, logits, ws, {seed, request, position});
//
// Semantics are those of the official LlamaGen code (autoregressive/models/generate.py, whose
// filtering is HuggingFace's top_k_top_p_filtering):
//   temperature  logits / max(T, 1e-5)                       (in float; T <= 0 is clamped, not an error)
//   top_k        remove logits < the k-th largest; ties with the k-th are KEPT (k = 0: off)
//   top_p        sort descending, softmax, cumulative sum; remove a token when the cumulative mass of
//                the tokens sorted BEFORE it exceeds p (the first token crossing p is kept, and so is
//                the top token: min_tokens_to_keep = 1)                       (p = 1: off)
//   greedy       argmax of the processed logits, lowest index on ties
//   multinomial  one draw from softmax(processed logits)
// Stages run in the order written; LlamaGen's order is temperature, top_k, top_p, draw.
// Equal logits are ordered by index (lowest first) wherever an order among them matters (top-p's
// sort, greedy), so every result is a function of the logits alone.
//
// The draw follows the cross-device arithmetic contract of sampler_contract.hpp, so a CUDA sampler
// given the same logits draws the same token.
//
// Cost (vocab V, n tokens kept): one validating pass over V (it finds the argmax too); top-k is
// O(n): a sampled threshold, one candidate pass, a bucket select over the candidates (no sort of
// the vocab); top-p is O(n): a histogram of mass over logit buckets, then only the boundary bucket
// is sorted; the draw computes exp once per kept token. No allocation per call: sampler_workspace
// owns all scratch.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "guidance.hpp"
#include "random.hpp"
#include "sampler_contract.hpp"
#include "sampler_stages.hpp"

namespace ordo {

namespace detail {
// The contract's operations, unqualified in the host algorithms below.
using contract::dadd;
using contract::dmul;
using contract::exp_mass;
using contract::ninf_bits;
using contract::signed_key;
using contract::signed_key_float;
struct sampler_ops;
}  // namespace detail

// ---------------------------------------------------------------------------------------------
// All scratch of one sampler for one vocabulary size, allocated once. A workspace serves one call at
// a time (one per thread); what it sampled before never affects a draw.
class sampler_workspace {
public:
    explicit sampler_workspace(index_t vocab) : vocab_(vocab) {
        if (vocab < 1) throw error("sampler_workspace: vocab " + detail::itos(vocab) + " must be >= 1");
        const auto v = static_cast<std::size_t>(vocab);
        vals_.resize(v);
        idx_.resize(v);
        mass_.resize(v);
        fmass_.resize(v);
        keys_.resize(v);
        cand_.resize(v);
        bucket_.resize(v);
        hist_.resize(2 * static_cast<std::size_t>(select_buckets));
        mass_count_.resize(4 * static_cast<std::size_t>(mass_buckets));
        mass_hist_.resize(2 * static_cast<std::size_t>(mass_buckets));
        cand_v_.resize(v);
        cand_i_.resize(v);
        block_max_.resize((v + scan_block - 1) / scan_block);
    }
    index_t vocab() const noexcept { return vocab_; }

private:
    friend struct detail::sampler_ops;
    static constexpr index_t select_buckets = 1024;     // top-k: histogram over the logit range
    static constexpr index_t mass_buckets = 1024;       // top-p: histogram over the logit range
    static constexpr index_t scan_block = 256;          // the first pass keeps a max per block

    struct entry {  // a token of top-p's boundary bucket
        float v;
        index_t i;
        float w;
    };

    index_t vocab_;
    std::vector<float> vals_;           // the kept tokens in vocab order: processed logit ...
    std::vector<index_t> idx_;          // ... and vocab index
    std::vector<double> mass_;          // the draw: exp_mass, then prefix sums
    std::vector<float> fmass_;          // top-p: the in-bucket mass factor P(t)
    std::vector<std::uint32_t> keys_;   // top-k and top-p: bucket ids
    std::vector<float> cand_;           // top-k: the values of the k-th's bucket
    std::vector<float> cand_v_;         // top-k: the logits past the sampled threshold ...
    std::vector<index_t> cand_i_;       // ... and their indices
    std::vector<entry> bucket_;         // top-p: the boundary bucket
    std::vector<std::uint32_t> hist_;   // top-k: counts per logit bucket (2 interleaved)
    std::vector<std::uint64_t> mass_count_;  // top-p: sum of fm * 2^24 per logit bucket (4 interleaved)
    std::vector<double> mass_hist_;     // top-p: mass per logit bucket, then E_b per bucket
    std::vector<std::int32_t> block_max_;  // the first pass: max key per block (finds the argmax)
};

namespace detail {

// One call of sample(): the stages as operations on the kept-token list. Stages compact the list
// (vals_/idx_, vocab order); finish() writes -inf into logits for every dropped token at the end.
struct sampler_ops {
    sampler_workspace& ws;
    std::span<float> logits;
    index_t n = 0;          // kept tokens
    index_t ninf = 0;       // -inf logits at load
    bool listed = false;    // vals_/idx_ hold the kept tokens (built on first need)
    bool dropped = false;   // a filter removed tokens: logits need their -inf written
    float max = 0.0f;       // the largest kept logit ...
    index_t argmax = 0;     // ... and its lowest index
    std::int32_t min_k = 0; // signed key of the smallest logit at load (valid when ninf == 0)

    static constexpr float inf = std::numeric_limits<float>::infinity();


    // -- helpers (plain loops over locals, so they vectorise) -------------------------------------
    static std::int32_t max_key(const float* v, index_t len) {
        std::int32_t m = INT32_MIN;
        for (index_t j = 0; j < len; ++j) m = std::max(m, signed_key(v[j]));
        return m;
    }
    static std::int32_t min_key(const float* v, index_t len) {
        std::int32_t m = INT32_MAX;
        for (index_t j = 0; j < len; ++j) m = std::min(m, signed_key(v[j]));
        return m;
    }
    static index_t first_with_key(const float* v, index_t len, std::int32_t key) {
        for (index_t j = 0; j < len; ++j)
            if (signed_key(v[j]) == key) return j;
        return len - 1;
    }
    struct scan_result {
        bool bad;  // a NaN or +inf somewhere
        index_t ninf;
        std::int32_t max, min;
    };
    // One pass over the logits: max and min keys (NaN and +inf show there), the -inf count, and the
    // max per block (which finds the argmax without a second pass).
    scan_result scan(const float* l, index_t V) const {
        constexpr index_t B = sampler_workspace::scan_block;
        const std::int32_t ninf_key = signed_key(-inf), inf_key = signed_key(inf);
        std::int32_t* bm = ws.block_max_.data();
        scan_result r{false, 0, INT32_MIN, INT32_MAX};
        for (index_t b0 = 0, blk = 0; b0 < V; b0 += B, ++blk) {
            const index_t e = std::min(V, b0 + B);
            index_t cnt = 0;
            std::int32_t mx = INT32_MIN, mn = INT32_MAX;
            for (index_t i = b0; i < e; ++i) {
                const std::int32_t k = signed_key(l[i]);
                cnt += static_cast<index_t>(k == ninf_key);
                mx = std::max(mx, k);
                mn = std::min(mn, k);
            }
            bm[blk] = mx;
            r.ninf += cnt;
            r.max = std::max(r.max, mx);
            r.min = std::min(r.min, mn);
        }
        r.bad = r.max >= inf_key || r.min < ninf_key;
        return r;
    }

    // -- the first pass: validate, optionally divide by the temperature, find the max -------------
    void load(float divisor, bool scale) {
        const index_t V = ws.vocab_;
        if (static_cast<std::size_t>(V) != logits.size())
            throw error("sample: " + itos(static_cast<long long>(logits.size())) + " logits, but the workspace was made for vocab " +
                        itos(V));
        float* l = logits.data();
        scan_result r = scan(l, V);
        if (r.bad) {
            for (index_t i = 0; i < V; ++i) {
                if (std::isnan(l[i])) throw error("sample: logit " + itos(i) + " is NaN");
                if (l[i] == inf) throw error("sample: logit " + itos(i) + " is +inf");
            }
        }
        if (scale) {
            for (index_t i = 0; i < V; ++i) l[i] = l[i] / divisor;
            r = scan(l, V);  // a large negative logit may reach -inf: it drops out like a filtered one
            if (r.bad) {
                for (index_t i = 0; i < V; ++i)
                    if (l[i] == inf) throw error("sample: logit " + itos(i) + " overflows to +inf at temperature " + ftos(divisor));
            }
        }
        if (r.ninf == V) throw error("sample: all " + itos(V) + " logits are -inf (nothing to sample)");
        ninf = r.ninf;
        n = V - r.ninf;
        min_k = r.min;
        max = signed_key_float(r.max);
        constexpr index_t B = sampler_workspace::scan_block;
        const std::int32_t* bm = ws.block_max_.data();
        index_t blk = 0;
        while (bm[blk] != r.max) ++blk;
        const index_t b0 = blk * B;
        argmax = b0 + first_with_key(l + b0, std::min(B, V - b0), r.max);
    }

    // Dense: the list is implicitly all of logits (no -inf, nothing dropped yet); a first filter
    // reads logits directly and writes the list as it compacts.
    bool dense() const { return !listed && ninf == 0; }

    // vals_/idx_ := the finite logits in vocab order.
    void ensure_list() {
        if (listed) return;
        listed = true;
        const float* l = logits.data();
        float* v = ws.vals_.data();
        index_t* idx = ws.idx_.data();
        const index_t V = ws.vocab_;
        if (ninf == 0) {
            std::memcpy(v, l, sizeof(float) * logits.size());
            for (index_t i = 0; i < V; ++i) idx[i] = i;
            return;
        }
        index_t out = 0;
        for (index_t i = 0; i < V; ++i) {
            v[out] = l[i];
            idx[out] = i;
            out += static_cast<index_t>(std::bit_cast<std::uint32_t>(l[i]) != ninf_bits);
        }
    }

    // Keep the list tokens for which keep(value, index) holds (a branch-free predicate).
    template <class Keep>
    void compact(Keep keep) {
        float* v = ws.vals_.data();
        index_t* idx = ws.idx_.data();
        const index_t cnt = n;
        index_t out = 0;
        for (index_t j = 0; j < cnt; ++j) {
            const float x = v[j];
            const index_t i = idx[j];
            v[out] = x;
            idx[out] = i;
            out += static_cast<index_t>(keep(x, i));
        }
        dropped |= out != cnt;
        n = out;
    }

    // The processed logits: -inf for every token a filter dropped.
    void finish() {
        if (!dropped) return;
        float* l = logits.data();
        const index_t V = ws.vocab_;
        for (index_t i = 0; i < V; ++i) l[i] = -inf;
        const float* v = ws.vals_.data();
        const index_t* idx = ws.idx_.data();
        for (index_t j = 0; j < n; ++j) l[idx[j]] = v[j];
    }

    // -- stages -----------------------------------------------------------------------------------
    void apply(const temperature& t) {  // when not the first stage (the first is fused into load)
        const float d = std::max(t.value, min_temperature);
        if (d == 1.0f) return;
        ensure_list();
        float* v = ws.vals_.data();
        const index_t* idx = ws.idx_.data();
        float* l = logits.data();
        const index_t cnt = n;
        for (index_t j = 0; j < cnt; ++j) {
            const float y = v[j] / d;
            if (y == inf) throw error("sample: logit " + itos(idx[j]) + " overflows to +inf at temperature " + ftos(d));
            v[j] = y;
            l[idx[j]] = y;
        }
        // a large negative logit may reach -inf: it drops out like an already-filtered one
        if (std::any_of(v, v + cnt, [](float x) { return x == -inf; }))
            compact([](float x, index_t) { return x != -inf; });
        if (n == 0) throw error("sample: all logits are -inf after temperature " + ftos(d) + " (nothing to sample)");
        const std::int32_t mk = max_key(v, n);
        max = signed_key_float(mk);
        argmax = idx[first_with_key(v, n, mk)];
    }

    // LlamaGen: logits < the k-th largest are removed (ties with it kept). The k-th largest without
    // sorting: a strided sample of 256 logits gives a threshold that a few more than k logits pass
    // (a 4-sigma margin); one pass keeps those as candidates, and a bucket select over the candidates
    // finds the exact k-th. Should the sample mislead (fewer than k pass), or for short lists and
    // large k, the bucket select runs over the whole list.
    void apply(const top_k& t) {
        if (t.k == 0) return;
        const index_t k = std::min(std::max(t.k, index_t{1}), ws.vocab_);
        if (k >= n) return;  // the k-th largest is the smallest kept logit (or -inf): nothing goes
        if (dense())
            top_k_select<true>(k);
        else {
            ensure_list();
            top_k_select<false>(k);
        }
        listed = true;
        dropped = true;
    }

    template <bool Dense>
    void top_k_select(index_t k) {
        const float* src = Dense ? logits.data() : ws.vals_.data();
        const index_t* src_idx = ws.idx_.data();
        const index_t cnt = n;
        float* cv = ws.cand_v_.data();
        index_t* ci = ws.cand_i_.data();
        constexpr index_t S = 256;
        if (cnt >= 16 * S && k <= cnt / 4) {
            std::array<float, S> sample;
            for (index_t s = 0; s < S; ++s)
                sample[static_cast<std::size_t>(s)] = src[static_cast<index_t>(static_cast<long long>(s) * cnt / S)];
            const double r = static_cast<double>(k) * S / cnt;
            const auto rank = static_cast<index_t>(std::min<double>(S, std::ceil(r + 4.0 * std::sqrt(r) + 8.0)));
            std::nth_element(sample.begin(), sample.begin() + (rank - 1), sample.end(), std::greater<float>());
            const float lo = sample[static_cast<std::size_t>(rank - 1)];
            index_t c = 0;
            for (index_t j = 0; j < cnt; ++j) {
                const float x = src[j];
                cv[c] = x;
                ci[c] = Dense ? j : src_idx[j];
                c += static_cast<index_t>(x >= lo);
            }
            if (c >= k) {
                keep_at_least(cv, ci, c, kth_largest(cv, c, k, lo, max));
                return;
            }
        }
        const float thr = kth_largest(src, cnt, k, signed_key_float(Dense ? min_k : min_key(src, cnt)), max);
        if constexpr (Dense) {
            float* v = ws.vals_.data();
            index_t* idx = ws.idx_.data();
            index_t out = 0;
            for (index_t j = 0; j < cnt; ++j) {
                v[out] = src[j];
                idx[out] = j;
                out += static_cast<index_t>(src[j] >= thr);
            }
            n = out;
        } else {
            compact([thr](float x, index_t) { return x >= thr; });
        }
    }

    // vals_/idx_ := the entries of (v, i)[0, len) with v >= thr.
    void keep_at_least(const float* v, const index_t* i, index_t len, float thr) {
        float* ov = ws.vals_.data();
        index_t* oi = ws.idx_.data();
        index_t out = 0;
        for (index_t j = 0; j < len; ++j) {
            ov[out] = v[j];
            oi[out] = i[j];
            out += static_cast<index_t>(v[j] >= thr);
        }
        n = out;
    }

    // The k-th largest of v[0, len) (1 <= k <= len), all of them in [lo, hi]: a count per bucket of
    // hi - x (1024 uniform buckets, monotone in x) finds the bucket holding the k-th, then
    // nth_element among that bucket's values alone.
    float kth_largest(const float* v, index_t len, index_t k, float lo, float hi) {
        std::uint32_t* h = ws.hist_.data();
        float* cand = ws.cand_.data();
        constexpr index_t NB = sampler_workspace::select_buckets;
        const double span = static_cast<double>(hi) - static_cast<double>(lo);
        const float per = span > 0.0 ? static_cast<float>(std::min(static_cast<double>(NB - 1) / span, 1e30)) : 0.0f;
        constexpr float last = static_cast<float>(NB - 1);
        const std::int32_t last_bits = std::bit_cast<std::int32_t>(last);
        std::uint32_t* bid = ws.keys_.data();
        for (index_t j = 0; j < len; ++j) {  // as in top-p: q >= 0, clamped by integer compare
            const std::int32_t qb = std::bit_cast<std::int32_t>((hi - v[j]) * per);
            bid[j] = static_cast<std::uint32_t>(static_cast<std::int32_t>(std::bit_cast<float>(qb < last_bits ? qb : last_bits)));
        }
        std::fill(h, h + 2 * NB, 0u);
        index_t j = 0;
        for (; j + 2 <= len; j += 2) {
            ++h[bid[j]];
            ++h[NB + bid[j + 1]];
        }
        for (; j < len; ++j) ++h[bid[j]];
        index_t kk = k;  // the rank wanted within the bucket
        std::uint32_t sel = 0;
        for (index_t b = 0; b < NB; ++b) {
            const index_t c = static_cast<index_t>(h[b] + h[NB + b]);
            if (c >= kk) {
                sel = static_cast<std::uint32_t>(b);
                break;
            }
            kk -= c;
        }
        index_t m = 0;
        for (j = 0; j < len; ++j) {
            cand[m] = v[j];
            m += static_cast<index_t>(bid[j] == sel);
        }
        std::nth_element(cand, cand + (kk - 1), cand + m, std::greater<float>());
        return cand[kk - 1];
    }

    // HuggingFace's top-p: sorted descending (ties: lower index first), a token goes when the mass
    // sorted before it exceeds p * total. No sort of the list: the logits fall into 1024 buckets of
    // d = max - logit, uniform over [0, min(range, 64)] (the last bucket takes the rest, at e^-64 of
    // the top token's mass: it never holds the boundary); a histogram of mass per bucket finds the
    // bucket where the running mass passes p * total; buckets before it are kept, those after it
    // dropped, and only it is sorted.
    // Masses are float32-softmax accurate (~1e-7 relative, HuggingFace's softmax is float32): a token
    // at d = (b + t) / per (bucket b, offset t in [0, 1)) weighs E_b * P(t), E_b = exp(-b / per) in
    // double and P(t) = exp(-t / per) to degree 4 in float. P(t) lies in [~0.93, 1], so P(t) * 2^24 is
    // an exact integer: a bucket sums those in 64-bit integers, exactly and in any order (a device
    // port may use atomics), and its mass is that sum * 2^-24 * E_b in double. So a token whose
    // cumulative mass lies within ~1e-7 (relative) of p * total may fall either side of the boundary.
    void apply(const top_p& t) {
        if (!(t.p < 1.0f) || n == 1) return;
        if (dense())
            top_p_select<true>(t.p);
        else {
            ensure_list();
            top_p_select<false>(t.p);
        }
    }

    template <bool Dense>
    void top_p_select(float p) {
        const float* src = Dense ? logits.data() : ws.vals_.data();
        float* v = ws.vals_.data();
        index_t* idx = ws.idx_.data();
        float* fm = ws.fmass_.data();
        std::uint32_t* bid = ws.keys_.data();
        const index_t cnt = n;
        const float mx = max;
        const float lo = signed_key_float(Dense ? min_k : min_key(src, cnt));
        constexpr index_t NB = sampler_workspace::mass_buckets;
        const double span = std::min(static_cast<double>(mx) - static_cast<double>(lo), 64.0);
        const double per_d = span > 0.0 ? std::min(static_cast<double>(NB - 1) / span, 1e30) : 0.0;  // the min at NB - 1
        const float per = static_cast<float>(per_d);
        const double wd = per_d > 0.0 ? 1.0 / static_cast<double>(per) : 0.0;  // bucket width
        const float c1 = static_cast<float>(-wd), c2 = static_cast<float>(wd * wd / 2.0),
                    c3 = static_cast<float>(-wd * wd * wd / 6.0), c4 = static_cast<float>(wd * wd * wd * wd / 24.0);
        constexpr float last = static_cast<float>(NB - 1);
        const std::int32_t last_bits = std::bit_cast<std::int32_t>(last);
        for (index_t j = 0; j < cnt; ++j) {  // monotone: a larger logit never gets a later bucket
            // q = min((max - x) * per, last); q >= 0, so its bits compare as integers (branch-free)
            const std::int32_t qb = std::bit_cast<std::int32_t>((mx - src[j]) * per);
            const float q = std::bit_cast<float>(qb < last_bits ? qb : last_bits);
            const std::int32_t b = static_cast<std::int32_t>(q);
            const float t = q - static_cast<float>(b);
            fm[j] = 1.0f + t * (c1 + t * (c2 + t * (c3 + t * c4)));
            bid[j] = static_cast<std::uint32_t>(b);
        }
        std::uint64_t* mc = ws.mass_count_.data();  // four interleaved histograms
        std::fill(mc, mc + 4 * NB, std::uint64_t{0});
        constexpr float fixed_one = 16777216.0f;  // 2^24: fm * 2^24 is an exact integer
        index_t j = 0;
        for (; j + 4 <= cnt; j += 4) {
            mc[bid[j]] += static_cast<std::uint32_t>(fm[j] * fixed_one);
            mc[NB + bid[j + 1]] += static_cast<std::uint32_t>(fm[j + 1] * fixed_one);
            mc[2 * NB + bid[j + 2]] += static_cast<std::uint32_t>(fm[j + 2] * fixed_one);
            mc[3 * NB + bid[j + 3]] += static_cast<std::uint32_t>(fm[j + 3] * fixed_one);
        }
        for (; j < cnt; ++j) mc[bid[j]] += static_cast<std::uint32_t>(fm[j] * fixed_one);
        // E_b = exp(-b * width) by four interleaved recurrences; mh[b] := the mass of bucket b
        double* mh = ws.mass_hist_.data();
        auto bucket_sum = [&](index_t b) {  // exact: < 2^53
            return static_cast<double>(mc[b] + mc[NB + b] + mc[2 * NB + b] + mc[3 * NB + b]) * 0x1p-24;
        };
        const double rho = exp_mass(-wd), rho2 = rho * rho, rho4 = rho2 * rho2;
        double e0 = 1.0, e1 = rho, e2 = rho2, e3 = rho2 * rho;
        double total = 0.0;
        for (index_t b = 0; b < NB; b += 4) {
            mh[b] = bucket_sum(b) * e0;
            mh[b + 1] = bucket_sum(b + 1) * e1;
            mh[b + 2] = bucket_sum(b + 2) * e2;
            mh[b + 3] = bucket_sum(b + 3) * e3;
            mh[NB + b] = e0;  // kept for the boundary bucket
            mh[NB + b + 1] = e1;
            mh[NB + b + 2] = e2;
            mh[NB + b + 3] = e3;
            total += ((mh[b] + mh[b + 1]) + (mh[b + 2] + mh[b + 3]));
            e0 *= rho4;
            e1 *= rho4;
            e2 *= rho4;
            e3 *= rho4;
        }
        const double target = static_cast<double>(p) * total;
        double before = 0.0;
        std::uint32_t bb = NB;
        for (index_t b = 0; b < NB; ++b) {
            if (before + mh[b] > target) {
                bb = static_cast<std::uint32_t>(b);
                break;
            }
            before += mh[b];
        }
        if (bb == static_cast<std::uint32_t>(NB)) return;  // rounding: everything fits under p
        // The boundary bucket's tokens (a branch-free test skips blocks of 32 without one), sorted.
        auto* e = ws.bucket_.data();
        index_t m = 0;
        constexpr index_t blk = 32;
        for (index_t b0 = 0; b0 < cnt; b0 += blk) {
            const index_t b1 = std::min(cnt, b0 + blk);
            std::uint32_t any = 0;
            for (index_t q = b0; q < b1; ++q) any |= static_cast<std::uint32_t>(bid[q] == bb);
            if (!any) continue;
            for (index_t q = b0; q < b1; ++q) {
                e[m] = {src[q], Dense ? q : idx[q], fm[q]};
                m += static_cast<index_t>(bid[q] == bb);
            }
        }
        std::sort(e, e + m, [](const auto& a, const auto& b) { return a.v > b.v || (a.v == b.v && a.i < b.i); });
        // keep a token while the mass sorted before it is <= target (so the first crossing is kept)
        const double e_bb = mh[NB + bb];
        index_t cut = 0;  // the last kept entry of e
        double acc = before;
        for (index_t q = 0; q < m && acc <= target; ++q) {
            cut = q;
            acc += e_bb * static_cast<double>(e[q].w);
        }
        const float tv = e[cut].v;
        // Kept: every logit at or above tv (earlier buckets, or earlier in bb) ... Blocks with nothing
        // at or above tv (an integer test on the order-preserving keys) are skipped.
        const std::int32_t tk = signed_key(tv);
        index_t out = 0;
        for (index_t b0 = 0; b0 < cnt; b0 += blk) {
            const index_t b1 = std::min(cnt, b0 + blk);
            std::uint32_t any = 0;
            for (index_t q = b0; q < b1; ++q) any |= static_cast<std::uint32_t>(signed_key(src[q]) >= tk);
            if (!any) continue;
            for (index_t q = b0; q < b1; ++q) {
                const float x = src[q];
                v[out] = x;
                idx[out] = Dense ? q : idx[q];
                out += static_cast<index_t>(x >= tv);
            }
        }
        n = out;
        listed = true;
        dropped |= out != cnt;
        // ... except the tokens equal to tv sorted after the cut (ties with a higher index)
        if (cut + 1 < m && e[cut + 1].v == tv) {
            const index_t ti = e[cut].i;
            compact([tv, ti](float x, index_t i) { return !(x == tv) || i <= ti; });
        }
    }

    // -- draws ------------------------------------------------------------------------------------
    index_t draw(const greedy&, draw_key) const { return argmax; }

    // The contract (see the top of this file): exp_mass in double, a sequential sum in vocab order,
    // the first prefix sum above u * total.
    index_t draw(const multinomial&, draw_key key) {
        ensure_list();
        const float* v = ws.vals_.data();
        double* w = ws.mass_.data();
        const double m = max;
        const index_t cnt = n;
        for (index_t j = 0; j < cnt; ++j) w[j] = exp_mass(static_cast<double>(v[j]) - m);
        double s = 0.0;
        for (index_t j = 0; j < cnt; ++j) {
            s += w[j];
            w[j] = s;
        }
        const double target = static_cast<double>(uniform_draw(key.seed, key.request, key.position)) * s;
        const double* pos = std::upper_bound(w, w + cnt, target);  // the first S_j > target
        const index_t j = pos == w + cnt ? cnt - 1 : static_cast<index_t>(pos - w);
        return ws.idx_[static_cast<std::size_t>(j)];
    }
};

}  // namespace detail

// The token for `key`: runs the chain over `logits` (overwritten with the processed logits: the
// temperature applied, filtered tokens at -inf). Throws ordo::error on a NaN or +inf logit, all
// logits -inf, a logits size other than the workspace's vocab, or a bad stage parameter (stage
// parameters and the input logits are checked before anything is written; a logit that overflows to
// +inf under the temperature is reported after the division). Never allocates.
template <class... Stages>
index_t sample(const sampler_chain<Stages...>& chain, std::span<float> logits, sampler_workspace& ws, draw_key key) {
    std::apply([](const auto&... st) { (check_stage(st), ...); }, chain.stages);
    detail::sampler_ops ops{ws, logits};
    using first = std::tuple_element_t<0, std::tuple<Stages...>>;
    constexpr bool fused = std::is_same_v<first, temperature>;  // a leading temperature joins the first pass
    if constexpr (fused) {
        const float d = std::max(std::get<0>(chain.stages).value, min_temperature);
        ops.load(d, d != 1.0f);
    } else {
        ops.load(1.0f, false);
    }
    constexpr std::size_t N = sizeof...(Stages);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        ((void)((fused && I == 0) ? void() : ops.apply(std::get<I>(chain.stages))), ...);
    }(std::make_index_sequence<N - 1>{});
    const index_t token = ops.draw(std::get<N - 1>(chain.stages), key);
    ops.finish();
    return token;
}

}  // namespace ordo
