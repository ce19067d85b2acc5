// ordo/cuda/sampler.cuh - the sampler on the device: the CPU sampler's stages (engine/sampler.hpp)
// batched over rows, one CUDA block per row, with the CPU's arithmetic so that CPU and GPU given the
// same logits choose the same token and write the same processed logits.
//
//   ordo::cuda::sampler_workspace ws(512, 16384);          // all device scratch, allocated once
//   ordo::cuda::sample_rows(chain, logits, keys, tokens, ws, stream);     // rows x vocab, in place
//   ordo::cuda::step_tokens out(num_requests, host_plan.max_emitted_per_step());
//   ordo::cuda::sample_step(chain, dplan, step, logits, num_sequences, cfg_scale, seed, ids, out, ws, stream);
//
// How each stage matches the CPU bit for bit:
//   temperature  __fdiv_rn, as the host's IEEE division (the host build is -ffp-contract=off).
//   top_k        the exact k-th largest by a radix select over the order-preserving keys (8 bits a
//                pass, shared-memory histograms); ties with it kept, as on the CPU.
//   top_p        the CPU's buckets and factors in unfused float, each bucket's factors summed as exact
//                integers (any order, atomics included), the 1024-bucket double sequence and the walk
//                over the sorted boundary bucket by one thread, in the CPU's order.
//   greedy       the lowest index of the largest key (a block reduction).
//   multinomial  the contract draw: exp_mass in double (contract::dadd/dmul are __dadd_rn/__dmul_rn
//                here), then ONE thread sums the masses sequentially in vocab order, since a parallel
//                scan would round differently; the masses live in shared memory when few are kept.
// Bad logits (NaN, +inf, all -inf, an overflow under the temperature) set a status per row; the host
// synchronises after the launch and throws ordo::error naming the row and the token.
#pragma once

#if defined(__USE_FAST_MATH__)
#error "ordo/cuda/sampler.cuh: --use_fast_math changes the sampler's rounding (and flushes subnormals), so the device would not draw the CPU's tokens; compile this translation unit without it"
#endif

#include <cub/cub.cuh>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "../engine/guidance.hpp"
#include "../engine/random.hpp"
#include "../engine/sampler_contract.hpp"
#include "../engine/sampler_stages.hpp"
#include "plan.cuh"
#include "runtime.cuh"

namespace ordo::cuda {

namespace detail {

// One block of 256 threads per row, four blocks resident per SM (<= 64 registers a thread): 528 rows
// at once on an H100, so a batch of 512 rows runs in one wave and the one-thread sequential parts of
// different rows overlap.
inline constexpr int sampler_threads = 256;
inline constexpr int sampler_blocks_per_sm = 4;
inline constexpr int sort_items = 8;
inline constexpr int sort_capacity = sampler_threads * sort_items;  // top-p's boundary bucket is walked in sorted tiles of this
inline constexpr int top_p_buckets = 1024;                          // as the CPU's sampler_workspace::mass_buckets
inline constexpr std::uint32_t ninf_bits = 0xff800000u;

// The chain as plain data (one kernel serves every chain): stages that do nothing are left out.
enum class stage_kind : int { temperature, top_k, top_p, greedy, multinomial };
struct stage_desc {
    stage_kind kind = stage_kind::greedy;
    float value = 0.0f;  // temperature: the divisor max(T, 1e-5); top_p: p
    index_t k = 0;       // top_k: min(k, vocab)
};
struct chain_desc {
    stage_desc stage[4]{};
    int count = 0;
    bool fused_temperature = false;  // a leading temperature (the CPU folds it into its first pass)
    float temperature = 1.0f;        // the divisor, for messages
};

inline void describe(chain_desc& d, const temperature& t, index_t, bool first) {
    const float divisor = std::max(t.value, ordo::min_temperature);
    if (divisor == 1.0f) return;
    d.stage[d.count++] = {stage_kind::temperature, divisor, 0};
    d.fused_temperature = first;
    d.temperature = divisor;
}
inline void describe(chain_desc& d, const top_k& t, index_t vocab, bool) {
    if (t.k == 0) return;
    d.stage[d.count++] = {stage_kind::top_k, 0.0f, std::min(t.k, vocab)};
}
inline void describe(chain_desc& d, const top_p& t, index_t, bool) {
    if (!(t.p < 1.0f)) return;
    d.stage[d.count++] = {stage_kind::top_p, t.p, 0};
}
inline void describe(chain_desc& d, const greedy&, index_t, bool) { d.stage[d.count++] = {stage_kind::greedy, 0.0f, 0}; }
inline void describe(chain_desc& d, const multinomial&, index_t, bool) { d.stage[d.count++] = {stage_kind::multinomial, 0.0f, 0}; }

// The stages' parameters checked as on the CPU (same errors), then flattened.
template <class... Stages>
chain_desc describe_chain(const sampler_chain<Stages...>& chain, index_t vocab) {
    std::apply([](const auto&... st) { (ordo::check_stage(st), ...); }, chain.stages);
    chain_desc d;
    bool first = true;
    std::apply([&](const auto&... st) { ((describe(d, st, vocab, first), first = false), ...); }, chain.stages);
    return d;
}

enum class row_error : int {
    none,
    nan_logit,
    inf_logit,
    temperature_overflow,
    all_ninf,
    all_ninf_after_temperature,
    step_rows_mismatch,   // sample_step: the logits hold another number of rows than the step feeds
    step_too_many_emits,  // sample_step: the step emits more positions than step_tokens holds
};
struct row_status {
    row_error code = row_error::none;
    index_t index = 0;     // the token (or the count that did not fit)
    index_t position = 0;  // sample_step: the emitted position of the row
};

// The running state of a row: largest kept key and its lowest index, smallest kept key, how many are
// kept, and the lowest index of a bad logit.
struct row_scan {
    std::int32_t max_key;
    index_t argmax;
    std::int32_t min_key;
    index_t kept;
    index_t first_bad;
};
__device__ inline row_scan empty_scan() { return {INT32_MIN, max_index, INT32_MAX, 0, max_index}; }
struct merge_scan {
    __device__ row_scan operator()(const row_scan& a, const row_scan& b) const {
        row_scan r;
        const bool a_wins = a.max_key > b.max_key || (a.max_key == b.max_key && a.argmax < b.argmax);
        r.max_key = a_wins ? a.max_key : b.max_key;
        r.argmax = a_wins ? a.argmax : b.argmax;
        r.min_key = a.min_key < b.min_key ? a.min_key : b.min_key;
        r.kept = a.kept + b.kept;
        r.first_bad = a.first_bad < b.first_bad ? a.first_bad : b.first_bad;
        return r;
    }
};
__device__ inline void note_kept(row_scan& s, float x, index_t i) {
    const std::int32_t k = ordo::contract::signed_key(x);
    if (k > s.max_key || (k == s.max_key && i < s.argmax)) {
        s.max_key = k;
        s.argmax = i;
    }
    s.min_key = k < s.min_key ? k : s.min_key;
    ++s.kept;
}

__device__ inline bool is_ninf(float x) { return __float_as_uint(x) == ninf_bits; }
__device__ inline bool is_nan(float x) { return (__float_as_uint(x) & 0x7fffffffu) > 0x7f800000u; }
__device__ inline bool is_pinf(float x) { return __float_as_uint(x) == 0x7f800000u; }
// Unsigned order-preserving key (larger float, larger key; -0 and +0 alike).
__device__ inline std::uint32_t ukey(float x) { return static_cast<std::uint32_t>(ordo::contract::signed_key(x)) ^ 0x80000000u; }

struct top_p_consts {
    float mx, per, c1, c2, c3, c4;
    double wd;
};

struct row_shared {
    using reduce_t = cub::BlockReduce<row_scan, sampler_threads>;
    using scan_t = cub::BlockScan<int, sampler_threads>;
    using sort_t = cub::BlockRadixSort<std::uint64_t, sampler_threads, sort_items>;
    typename reduce_t::TempStorage reduce;
    typename scan_t::TempStorage scan;
    union {
        typename sort_t::TempStorage sort;
        std::uint64_t sorted[sort_capacity];  // a sorted tile of top-p's boundary bucket
        double mass[sort_capacity];           // the draw's prefix sums when few tokens are kept
        struct {
            unsigned long long count[top_p_buckets];  // sum of fm * 2^24 per bucket
            double mass[top_p_buckets];
            double e[top_p_buckets];
        } top_p;
    } u;
    unsigned digit_hist[256];
    row_scan scan_result;
    unsigned sel_digit, sel_rank;
    top_p_consts tpc;
    int bucket;  // top-p's boundary bucket (top_p_buckets: none)
    double before, target, e_bucket, acc;
    unsigned cand_count, tile_count;
    std::uint64_t cut;
    int walk_done;
    index_t token;
};

__device__ inline row_scan reduce_scan(row_scan local, row_shared& sh) {
    const row_scan r = row_shared::reduce_t(sh.reduce).Reduce(local, merge_scan{});
    if (threadIdx.x == 0) sh.scan_result = r;
    __syncthreads();
    const row_scan out = sh.scan_result;
    __syncthreads();  // the temp storage and the result are free again
    return out;
}

// The rank-th smallest (1-based) of the keys key_of(j, key) yields for j < len, by 8-bit digits
// from the top: a shared histogram per digit, warp 0 finds the digit holding the rank.
template <class Key, class KeyOf>
__device__ Key select_smallest(index_t len, KeyOf key_of, unsigned rank, row_shared& sh) {
    Key prefix = 0, mask = 0;
    for (int shift = static_cast<int>(sizeof(Key)) * 8 - 8; shift >= 0; shift -= 8) {
        for (int b = threadIdx.x; b < 256; b += blockDim.x) sh.digit_hist[b] = 0;
        __syncthreads();
        for (index_t j = threadIdx.x; j < len; j += blockDim.x) {
            Key key;
            if (key_of(j, key) && (key & mask) == prefix) atomicAdd(&sh.digit_hist[(key >> shift) & 0xff], 1u);
        }
        __syncthreads();
        if (threadIdx.x < 32) {
            const unsigned lane = threadIdx.x;
            unsigned c[8], sum = 0;
            for (int d = 0; d < 8; ++d) sum += (c[d] = sh.digit_hist[lane * 8 + d]);
            unsigned incl = sum;
            for (int o = 1; o < 32; o <<= 1) {
                const unsigned v = __shfl_up_sync(0xffffffffu, incl, o);
                if (lane >= static_cast<unsigned>(o)) incl += v;
            }
            const unsigned excl = incl - sum;
            if (excl < rank && rank <= incl) {
                unsigned r = rank - excl;
                for (int d = 0; d < 8; ++d) {
                    if (r <= c[d]) {
                        sh.sel_digit = lane * 8 + static_cast<unsigned>(d);
                        sh.sel_rank = r;
                        break;
                    }
                    r -= c[d];
                }
            }
        }
        __syncthreads();
        prefix |= static_cast<Key>(sh.sel_digit) << shift;
        mask |= static_cast<Key>(0xff) << shift;
        rank = sh.sel_rank;
    }
    return prefix;
}

// -- stages -----------------------------------------------------------------------------------

// NaN and +inf are errors (the lowest index named); all -inf too.
__device__ inline bool validate(const float* row, index_t V, row_scan& st, row_shared& sh, row_status& status) {
    row_scan s = empty_scan();
    for (index_t i = threadIdx.x; i < V; i += blockDim.x) {
        const float x = row[i];
        if (is_nan(x) || is_pinf(x))
            s.first_bad = i < s.first_bad ? i : s.first_bad;
        else if (!is_ninf(x))
            note_kept(s, x, i);
    }
    s = reduce_scan(s, sh);
    if (s.first_bad != max_index) {
        status = {is_nan(row[s.first_bad]) ? row_error::nan_logit : row_error::inf_logit, s.first_bad, 0};
        return false;
    }
    if (s.kept == 0) {
        status = {row_error::all_ninf, V, 0};
        return false;
    }
    st = s;
    return true;
}

__device__ inline bool apply_temperature(float divisor, bool fused, float* row, index_t V, row_scan& st, row_shared& sh, row_status& status) {
    row_scan s = empty_scan();
    for (index_t i = threadIdx.x; i < V; i += blockDim.x) {
        const float x = row[i];
        if (is_ninf(x)) continue;
        const float y = __fdiv_rn(x, divisor);
        row[i] = y;  // a large negative logit may reach -inf: it drops out like a filtered one
        if (is_pinf(y))
            s.first_bad = i < s.first_bad ? i : s.first_bad;
        else if (!is_ninf(y))
            note_kept(s, y, i);
    }
    s = reduce_scan(s, sh);
    if (s.first_bad != max_index) {
        status = {row_error::temperature_overflow, s.first_bad, 0};
        return false;
    }
    if (s.kept == 0) {
        status = {fused ? row_error::all_ninf : row_error::all_ninf_after_temperature, V, 0};
        return false;
    }
    st = s;
    return true;
}

// Removes kept logits below the k-th largest (ties with it stay).
__device__ inline void apply_top_k(index_t k, float* row, index_t V, row_scan& st, row_shared& sh) {
    if (k >= st.kept) return;
    const std::uint32_t kth = select_smallest<std::uint32_t>(
        V,
        [row](index_t j, std::uint32_t& key) {
            const float x = row[j];
            key = ukey(x);
            return !is_ninf(x);
        },
        static_cast<unsigned>(st.kept - k + 1), sh);
    row_scan s = empty_scan();
    for (index_t i = threadIdx.x; i < V; i += blockDim.x) {
        const float x = row[i];
        if (is_ninf(x)) continue;
        if (ukey(x) < kth)
            row[i] = __uint_as_float(ninf_bits);
        else
            note_kept(s, x, i);
    }
    st = reduce_scan(s, sh);
}

// The CPU's top-p bucket of a kept logit and its in-bucket factor fm, unfused, as top_p_select.
__device__ inline int top_p_bucket(float x, const top_p_consts& c, float& fm) {
    const int last_bits = __float_as_int(static_cast<float>(top_p_buckets - 1));
    const int qb = __float_as_int(__fmul_rn(__fsub_rn(c.mx, x), c.per));
    const float q = __int_as_float(qb < last_bits ? qb : last_bits);
    const int b = static_cast<int>(q);
    const float t = __fsub_rn(q, static_cast<float>(b));
    fm = __fadd_rn(1.0f, __fmul_rn(t, __fadd_rn(c.c1, __fmul_rn(t, __fadd_rn(c.c2, __fmul_rn(t, __fadd_rn(c.c3, __fmul_rn(t, c.c4))))))));
    return b;
}

// Sorted order of the boundary bucket: value descending, then index ascending, as one 64-bit key.
__device__ inline std::uint64_t boundary_key(float x, index_t i) {
    return (static_cast<std::uint64_t>(~ukey(x)) << 32) | static_cast<std::uint32_t>(i);
}

__device__ inline void apply_top_p(float p, float* row, index_t V, row_scan& st, std::uint64_t* cand, row_shared& sh) {
    using ordo::contract::dadd;
    using ordo::contract::dmul;
    if (!(p < 1.0f) || st.kept == 1) return;
    constexpr int NB = top_p_buckets;
    auto& tp = sh.u.top_p;
    if (threadIdx.x == 0) {  // the CPU's per-row constants, op for op
        top_p_consts c;
        c.mx = ordo::contract::signed_key_float(st.max_key);
        const float lo = ordo::contract::signed_key_float(st.min_key);
        const double d = dadd(static_cast<double>(c.mx), -static_cast<double>(lo));
        const double span = d < 64.0 ? d : 64.0;
        double per_d = 0.0;
        if (span > 0.0) {
            per_d = __ddiv_rn(static_cast<double>(NB - 1), span);
            per_d = per_d < 1e30 ? per_d : 1e30;
        }
        c.per = __double2float_rn(per_d);
        const double wd = per_d > 0.0 ? __ddiv_rn(1.0, static_cast<double>(c.per)) : 0.0;
        c.wd = wd;
        c.c1 = __double2float_rn(-wd);
        c.c2 = __double2float_rn(__ddiv_rn(dmul(wd, wd), 2.0));
        c.c3 = __double2float_rn(__ddiv_rn(dmul(dmul(-wd, wd), wd), 6.0));
        c.c4 = __double2float_rn(__ddiv_rn(dmul(dmul(dmul(wd, wd), wd), wd), 24.0));
        sh.tpc = c;
        sh.cand_count = 0;
    }
    for (int b = threadIdx.x; b < NB; b += blockDim.x) tp.count[b] = 0;
    __syncthreads();
    const top_p_consts c = sh.tpc;
    for (index_t i = threadIdx.x; i < V; i += blockDim.x) {
        const float x = row[i];
        if (is_ninf(x)) continue;
        float fm;
        const int b = top_p_bucket(x, c, fm);
        atomicAdd(&tp.count[b], static_cast<unsigned long long>(static_cast<std::uint32_t>(__fmul_rn(fm, 16777216.0f))));
    }
    __syncthreads();
    if (threadIdx.x == 0) {  // the bucket masses, the total and the boundary: the CPU's double sequence
        const double rho = ordo::contract::exp_mass(-c.wd), rho2 = dmul(rho, rho), rho4 = dmul(rho2, rho2);
        double e0 = 1.0, e1 = rho, e2 = rho2, e3 = dmul(rho2, rho);
        double total = 0.0;
        for (int b = 0; b < NB; b += 4) {
            const double m0 = dmul(dmul(static_cast<double>(tp.count[b]), 0x1p-24), e0);
            const double m1 = dmul(dmul(static_cast<double>(tp.count[b + 1]), 0x1p-24), e1);
            const double m2 = dmul(dmul(static_cast<double>(tp.count[b + 2]), 0x1p-24), e2);
            const double m3 = dmul(dmul(static_cast<double>(tp.count[b + 3]), 0x1p-24), e3);
            tp.mass[b] = m0;
            tp.mass[b + 1] = m1;
            tp.mass[b + 2] = m2;
            tp.mass[b + 3] = m3;
            tp.e[b] = e0;
            tp.e[b + 1] = e1;
            tp.e[b + 2] = e2;
            tp.e[b + 3] = e3;
            total = dadd(total, dadd(dadd(m0, m1), dadd(m2, m3)));
            e0 = dmul(e0, rho4);
            e1 = dmul(e1, rho4);
            e2 = dmul(e2, rho4);
            e3 = dmul(e3, rho4);
        }
        const double target = dmul(static_cast<double>(p), total);
        double before = 0.0;
        int bb = NB;
        for (int b = 0; b < NB; ++b) {
            if (dadd(before, tp.mass[b]) > target) {
                bb = b;
                break;
            }
            before = dadd(before, tp.mass[b]);
        }
        sh.bucket = bb;
        sh.before = before;
        sh.target = target;
        sh.e_bucket = bb < NB ? tp.e[bb] : 0.0;
    }
    __syncthreads();
    const int bb = sh.bucket;
    if (bb == NB) return;  // rounding: everything fits under p
    for (index_t i = threadIdx.x; i < V; i += blockDim.x) {
        const float x = row[i];
        if (is_ninf(x)) continue;
        float fm;
        if (top_p_bucket(x, c, fm) == bb) cand[atomicAdd(&sh.cand_count, 1u)] = boundary_key(x, i);
    }
    __syncthreads();
    // Walk the boundary bucket in sorted order, a tile of sort_capacity keys at a time (the next tile
    // is the sort_capacity smallest keys above the last one, by a radix select): one thread keeps a
    // token while the mass sorted before it is <= target, summing as the CPU does.
    const index_t m = static_cast<index_t>(sh.cand_count);
    if (threadIdx.x == 0) sh.acc = sh.before;
    std::uint64_t after = 0;  // keys are > 0: ~ukey of a non-NaN value is never 0
    index_t done = 0;
    for (;;) {
        const index_t take = m - done < sort_capacity ? m - done : sort_capacity;
        const std::uint64_t upto =
            take == m - done ? ~std::uint64_t{0}
                             : select_smallest<std::uint64_t>(
                                   m,
                                   [cand, after](index_t j, std::uint64_t& key) {
                                       key = cand[j];
                                       return key > after;
                                   },
                                   static_cast<unsigned>(take), sh);
        if (threadIdx.x == 0) sh.tile_count = 0;
        __syncthreads();
        for (index_t j = threadIdx.x; j < m; j += blockDim.x) {
            const std::uint64_t key = cand[j];
            if (key > after && key <= upto) sh.u.sorted[atomicAdd(&sh.tile_count, 1u)] = key;
        }
        __syncthreads();
        std::uint64_t items[sort_items];
        for (int t = 0; t < sort_items; ++t) {
            const index_t q = static_cast<index_t>(threadIdx.x) * sort_items + t;
            items[t] = q < take ? sh.u.sorted[q] : ~std::uint64_t{0};
        }
        __syncthreads();  // the sort's storage overlays the tile
        row_shared::sort_t(sh.u.sort).Sort(items);
        __syncthreads();
        for (int t = 0; t < sort_items; ++t) {
            const index_t q = static_cast<index_t>(threadIdx.x) * sort_items + t;
            if (q < take) sh.u.sorted[q] = items[t];
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            double acc = sh.acc;
            const double target = sh.target, e_bb = sh.e_bucket;
            bool crossed = false;
            for (index_t q = 0; q < take; ++q) {
                if (acc > target) {
                    crossed = true;
                    break;
                }
                const std::uint64_t key = sh.u.sorted[q];
                sh.cut = key;
                float fm;
                (void)top_p_bucket(row[static_cast<std::uint32_t>(key)], c, fm);
                acc = dadd(acc, dmul(e_bb, static_cast<double>(fm)));
            }
            sh.acc = acc;
            sh.walk_done = crossed || acc > target || done + take == m;
        }
        __syncthreads();
        done += take;
        after = upto;
        if (sh.walk_done) break;
    }
    // Kept: above the cut's value, or equal to it at an index up to the cut's (ties sorted after go).
    const index_t ti = static_cast<index_t>(static_cast<std::uint32_t>(sh.cut));
    const float tv = row[ti];
    row_scan s = empty_scan();
    for (index_t i = threadIdx.x; i < V; i += blockDim.x) {
        const float x = row[i];
        if (is_ninf(x)) continue;
        if (x > tv || (x == tv && i <= ti))
            note_kept(s, x, i);
        else
            row[i] = __uint_as_float(ninf_bits);
    }
    st = reduce_scan(s, sh);
}

// The contract draw (engine/sampler.hpp): masses in double in parallel, the prefix sum by one thread
// in vocab order (the only order that gives the CPU's bits), the first prefix sum above u * total.
__device__ inline index_t draw_multinomial(const float* row, index_t V, const row_scan& st, const draw_key& key, double* gmass,
                                           index_t* gidx, row_shared& sh) {
    using ordo::contract::dadd;
    using ordo::contract::dmul;
    const index_t n = st.kept;
    double* w = n <= sort_capacity ? sh.u.mass : gmass;
    const double mx = static_cast<double>(ordo::contract::signed_key_float(st.max_key));
    index_t offset = 0;
    for (index_t base = 0; base < V; base += blockDim.x) {
        const index_t i = base + static_cast<index_t>(threadIdx.x);
        const float x = i < V ? row[i] : __uint_as_float(ninf_bits);
        const int flag = is_ninf(x) ? 0 : 1;
        int pos = 0, tile = 0;
        row_shared::scan_t(sh.scan).ExclusiveSum(flag, pos, tile);
        if (flag) {
            gidx[offset + pos] = i;
            w[offset + pos] = ordo::contract::exp_mass(dadd(static_cast<double>(x), -mx));
        }
        offset += tile;
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        double s = 0.0;
        index_t j = 0;
        for (; j + 8 <= n; j += 8) {  // loads ahead of the dependent adds
            double a[8];
            for (int t = 0; t < 8; ++t) a[t] = w[j + t];
            for (int t = 0; t < 8; ++t) w[j + t] = s = dadd(s, a[t]);
        }
        for (; j < n; ++j) w[j] = s = dadd(s, w[j]);
        const double target = dmul(static_cast<double>(uniform_draw(key.seed, key.request, key.position)), s);
        index_t lo = 0, hi = n;  // upper_bound: the first prefix sum > target
        while (lo < hi) {
            const index_t mid = lo + (hi - lo) / 2;
            if (w[mid] > target)
                hi = mid;
            else
                lo = mid + 1;
        }
        sh.token = gidx[lo == n ? n - 1 : lo];
    }
    __syncthreads();
    return sh.token;
}

struct row_scratch {
    std::uint64_t* cand;  // top-p: the boundary bucket's keys
    double* mass;         // the draw: masses, then prefix sums
    index_t* kept;        // the draw: kept token indices in vocab order
};

// One row through the chain; every thread of the block calls it and gets the same result.
__device__ inline bool sample_row(const chain_desc& chain, float* row, index_t V, const draw_key& key, const row_scratch& scratch,
                                  row_shared& sh, index_t& token, row_status& status) {
    row_scan st;
    if (!validate(row, V, st, sh, status)) return false;
    for (int s = 0; s + 1 < chain.count; ++s) {
        const stage_desc& d = chain.stage[s];
        switch (d.kind) {
            case stage_kind::temperature:
                if (!apply_temperature(d.value, chain.fused_temperature && s == 0, row, V, st, sh, status)) return false;
                break;
            case stage_kind::top_k: apply_top_k(d.k, row, V, st, sh); break;
            case stage_kind::top_p: apply_top_p(d.value, row, V, st, scratch.cand, sh); break;
            default: break;
        }
    }
    token = chain.stage[chain.count - 1].kind == stage_kind::greedy ? st.argmax
                                                                    : draw_multinomial(row, V, st, key, scratch.mass, scratch.kept, sh);
    return true;
}

struct workspace_ref {
    std::uint64_t* scratch;  // [rows][vocab]: top-p's candidates, or the draw's masses (bits of a double)
    index_t* kept;           // [rows][vocab]
    row_status* status;      // [rows]
    int* first_bad_row;      // lowest failing row (atomicMin), reset before each launch
    __device__ row_scratch row(index_t r, index_t V) const {
        const std::size_t at = static_cast<std::size_t>(r) * static_cast<std::size_t>(V);
        return {scratch + at, reinterpret_cast<double*>(scratch + at), kept + at};
    }
    __device__ void fail(index_t r, const row_status& s) const {
        status[r] = s;
        atomicMin(first_bad_row, r);
    }
};

// Kernels are templates so that every translation unit including this header may instantiate them.
template <int Threads>
__global__ void __launch_bounds__(Threads, sampler_blocks_per_sm)
    sample_rows_kernel(chain_desc chain, float* logits, index_t V, const draw_key* keys, index_t* tokens, workspace_ref ws) {
    __shared__ row_shared sh;
    const index_t r = static_cast<index_t>(blockIdx.x);
    index_t token = 0;
    row_status status;
    const bool ok = sample_row(chain, logits + static_cast<std::size_t>(r) * static_cast<std::size_t>(V), V, keys[r], ws.row(r, V), sh, token, status);
    if (threadIdx.x != 0) return;
    if (ok)
        tokens[r] = token;
    else
        ws.fail(r, status);
}

struct step_args {
    const float* logits;
    std::size_t logits_size;
    index_t num_sequences, num_requests, num_heads, vocab, step, max_emitted;
    float cfg_scale;  // > 1: guided
    std::uint64_t seed;
    const std::uint64_t* request_ids;
    const index_t* fed_offsets;
    const index_t* emit_offsets;
    const index_t* order;
    const index_t* contrib_offsets;
    const contribution* contribs;
};

// Block (request i, emitted k): the head mix (session.hpp's mix, unfused), CFG (cfg_combine,
// unfused) into the workspace row, then the sampler.
template <int Threads>
__global__ void __launch_bounds__(Threads, sampler_blocks_per_sm)
    sample_step_kernel(chain_desc chain, step_args a, float* mixed, index_t* tokens, workspace_ref ws) {
    __shared__ row_shared sh;
    const index_t r = static_cast<index_t>(blockIdx.x), i = r / a.max_emitted, k = r % a.max_emitted;
    const index_t V = a.vocab;
    const index_t e0 = a.emit_offsets[a.step], emitted = a.emit_offsets[a.step + 1] - e0;
    const index_t rows = a.fed_offsets[a.step + 1] - a.fed_offsets[a.step];
    const std::size_t per_row = static_cast<std::size_t>(a.num_heads) * static_cast<std::size_t>(V);
    if (static_cast<std::size_t>(rows) * static_cast<std::size_t>(a.num_sequences) * per_row != a.logits_size) {
        if (threadIdx.x == 0) ws.fail(r, {row_error::step_rows_mismatch, rows, 0});
        return;
    }
    if (emitted > a.max_emitted) {
        if (threadIdx.x == 0) ws.fail(r, {row_error::step_too_many_emits, emitted, 0});
        return;
    }
    if (k >= emitted) {
        if (threadIdx.x == 0) tokens[r] = -1;
        return;
    }
    const index_t position = a.order[e0 + k];
    const index_t c0 = a.contrib_offsets[e0 + k], nc = a.contrib_offsets[e0 + k + 1] - c0;
    const contribution* from = a.contribs + c0;
    const bool guided = a.cfg_scale > 1.0f;
    auto mix_at = [&](index_t seq, index_t t) {
        auto at = [&](const contribution& c) {
            return a.logits[((static_cast<std::size_t>(seq) * static_cast<std::size_t>(rows) + c.row) * static_cast<std::size_t>(a.num_heads) + c.head) *
                                static_cast<std::size_t>(V) +
                            static_cast<std::size_t>(t)];
        };
        if (nc == 1) return at(from[0]);  // weight 1: a copy
        float acc = __fmul_rn(from[0].weight, at(from[0]));
        for (index_t c = 1; c < nc; ++c) acc = __fadd_rn(acc, __fmul_rn(from[c].weight, at(from[c])));
        return acc;
    };
    float* row = mixed + static_cast<std::size_t>(r) * static_cast<std::size_t>(V);
    for (index_t t = threadIdx.x; t < V; t += blockDim.x) {
        float x = mix_at(i, t);
        if (guided) {
            const float u = mix_at(a.num_requests + i, t);
            x = __fadd_rn(u, __fmul_rn(__fsub_rn(x, u), a.cfg_scale));
        }
        row[t] = x;
    }
    __syncthreads();
    index_t token = 0;
    row_status status;
    const bool ok = sample_row(chain, row, V, draw_key{a.seed, a.request_ids[i], position}, ws.row(r, V), sh, token, status);
    if (threadIdx.x != 0) return;
    if (ok) {
        tokens[r] = token;
    } else {
        status.position = position;
        ws.fail(r, status);
    }
}

inline std::string row_error_text(const row_status& s, const chain_desc& chain) {
    using ordo::detail::ftos;
    using ordo::detail::itos;
    switch (s.code) {
        case row_error::nan_logit: return "logit " + itos(s.index) + " is NaN";
        case row_error::inf_logit: return "logit " + itos(s.index) + " is +inf";
        case row_error::temperature_overflow: return "logit " + itos(s.index) + " overflows to +inf at temperature " + ftos(chain.temperature);
        case row_error::all_ninf: return "all " + itos(s.index) + " logits are -inf (nothing to sample)";
        case row_error::all_ninf_after_temperature: return "all logits are -inf after temperature " + ftos(chain.temperature) + " (nothing to sample)";
        case row_error::step_rows_mismatch:
            return "the logits do not hold " + itos(s.index) + " rows per sequence, the rows the step feeds (sequences x rows x heads x vocab)";
        case row_error::step_too_many_emits: return "the step emits " + itos(s.index) + " positions, more than step_tokens holds per request";
        case row_error::none: break;
    }
    return "unknown failure";
}

}  // namespace detail

// All device scratch of the device sampler for up to max_rows rows of one vocabulary, allocated
// once: sample_rows and sample_step allocate nothing. One call at a time per workspace.
class sampler_workspace {
public:
    sampler_workspace(index_t max_rows, index_t vocab) : max_rows_(max_rows), vocab_(vocab) {
        if (max_rows < 1) throw error("cuda::sampler_workspace: max_rows " + ordo::detail::itos(max_rows) + " must be >= 1");
        if (vocab < 1) throw error("cuda::sampler_workspace: vocab " + ordo::detail::itos(vocab) + " must be >= 1");
        const std::size_t cells = static_cast<std::size_t>(max_rows) * static_cast<std::size_t>(vocab);
        mixed_ = device_buffer<float>(cells);
        scratch_ = device_buffer<std::uint64_t>(cells);
        kept_ = device_buffer<index_t>(cells);
        status_ = device_buffer<detail::row_status>(static_cast<std::size_t>(max_rows));
        first_bad_ = device_buffer<int>(1);
    }
    index_t max_rows() const noexcept { return max_rows_; }
    index_t vocab() const noexcept { return vocab_; }
    // Device bytes held.
    std::size_t bytes() const noexcept { return mixed_.bytes() + scratch_.bytes() + kept_.bytes() + status_.bytes() + first_bad_.bytes(); }

    // internal: the kernels' view; clears the failure flag on `stream`
    detail::workspace_ref prepare(cudaStream_t stream) {
        check(cudaMemsetAsync(first_bad_.data(), 0x7f, sizeof(int), stream), "sampler: reset the row status (cudaMemsetAsync)");
        return {scratch_.data(), kept_.data(), status_.data(), first_bad_.data()};
    }
    float* mixed() const noexcept { return mixed_.data(); }
    // internal: synchronises `stream`; the status of the lowest failing row, if any
    bool failed(cudaStream_t stream, index_t& row, detail::row_status& status) const {
        int first = 0;
        first_bad_.download(std::span<int>(&first, 1), stream);
        if (first == 0x7f7f7f7f) return false;
        row = first;
        check(cudaMemcpyAsync(&status, status_.data() + first, sizeof status, cudaMemcpyDeviceToHost, stream), "sampler: row status (cudaMemcpyAsync)");
        check(cudaStreamSynchronize(stream), "sampler: row status (cudaStreamSynchronize)");
        return true;
    }

private:
    index_t max_rows_, vocab_;
    device_buffer<float> mixed_;            // sample_step: each row's mixed (and guided) logits
    device_buffer<std::uint64_t> scratch_;  // top-p's boundary keys / the draw's masses, per row
    device_buffer<index_t> kept_;           // the draw's kept indices, per row
    device_buffer<detail::row_status> status_;
    device_buffer<int> first_bad_;
};

// Samples every row of `logits` (device, rows x vocab, rows = keys.size()) with draw key keys[r]
// (device) into tokens[r] (device), exactly as ordo::sample() would row by row: the logits are
// overwritten with the processed logits (the temperature applied, filtered tokens at -inf). Stage
// parameters and sizes are checked before any launch; bad logits (NaN, +inf, all -inf, an overflow
// under the temperature) throw ordo::error naming the row and the token after the kernel (the call
// synchronises `stream`; the logits are then partly processed).
template <class... Stages>
void sample_rows(const sampler_chain<Stages...>& chain, std::span<float> logits, std::span<const draw_key> keys, std::span<index_t> tokens,
                 sampler_workspace& ws, cudaStream_t stream = nullptr) {
    using ordo::detail::itos;
    const index_t V = ws.vocab();
    const detail::chain_desc desc = detail::describe_chain(chain, V);
    const std::size_t rows = keys.size();
    if (rows > static_cast<std::size_t>(ws.max_rows()))
        throw error("cuda::sample_rows: " + itos(static_cast<long long>(rows)) + " rows, but the workspace was made for " + itos(ws.max_rows()));
    if (logits.size() != rows * static_cast<std::size_t>(V))
        throw error("cuda::sample_rows: " + itos(static_cast<long long>(logits.size())) + " logits, but " + itos(static_cast<long long>(rows)) +
                    " rows of the workspace's vocab " + itos(V) + " need " + itos(static_cast<long long>(rows * static_cast<std::size_t>(V))));
    if (tokens.size() != rows)
        throw error("cuda::sample_rows: tokens holds " + itos(static_cast<long long>(tokens.size())) + " entries for " + itos(static_cast<long long>(rows)) +
                    " rows");
    if (rows == 0) return;
    const detail::workspace_ref ref = ws.prepare(stream);
    detail::sample_rows_kernel<detail::sampler_threads><<<static_cast<unsigned>(rows), detail::sampler_threads, 0, stream>>>(desc, logits.data(), V, keys.data(), tokens.data(), ref);
    check_launch("sample_rows_kernel");
    index_t row = 0;
    detail::row_status status;
    if (ws.failed(stream, row, status)) throw error("cuda::sample_rows: row " + itos(row) + ": " + detail::row_error_text(status, desc));
}

// The tokens of one step on the device: [request][k] for the step's k-th emitted position (-1 past
// the step's emitted count), sized by the plan's most emitted per step.
class step_tokens {
public:
    step_tokens(index_t num_requests, index_t max_emitted) : num_requests_(num_requests), max_emitted_(max_emitted) {
        if (num_requests < 1 || max_emitted < 1)
            throw error("cuda::step_tokens: " + ordo::detail::itos(num_requests) + " requests x " + ordo::detail::itos(max_emitted) +
                        " emitted positions (both must be >= 1)");
        tokens_ = device_buffer<index_t>(static_cast<std::size_t>(num_requests) * static_cast<std::size_t>(max_emitted));
    }
    index_t num_requests() const noexcept { return num_requests_; }
    index_t max_emitted() const noexcept { return max_emitted_; }
    std::span<index_t> span() const noexcept { return tokens_.span(); }
    // Host copy, [request][k] with max_emitted() per request (synchronises `stream`).
    std::vector<index_t> download(cudaStream_t stream = nullptr) const {
        std::vector<index_t> host(tokens_.size());
        tokens_.download(host, stream);
        return host;
    }

private:
    index_t num_requests_, max_emitted_;
    device_buffer<index_t> tokens_;
};

// One decode step on the device: for every request i and every position the step emits, the plan's
// head mix of the model's logits (device, [sequence][row][head][vocab], sequences = requests, or
// [cond of every request; uncond of every request] = 2 x requests), CFG when cfg_scale > 1
// (uncond + (cond - uncond) * scale), then the chain with draw_key{seed, request_ids[i], position},
// exactly as session::commit() on the host. request_ids is device memory. The step's rows, emitted
// positions and contributions come from the device plan; one launch. The logits are validated as
// the sampler sees them (after mixing and CFG), not as the model wrote them. Synchronises `stream`.
template <class... Stages>
void sample_step(const sampler_chain<Stages...>& chain, const device_plan& plan, index_t step, std::span<const float> logits, index_t num_sequences,
                 float cfg_scale, std::uint64_t seed, std::span<const std::uint64_t> request_ids, step_tokens& tokens, sampler_workspace& ws,
                 cudaStream_t stream = nullptr) {
    using ordo::detail::itos;
    const index_t V = ws.vocab();
    const detail::chain_desc desc = detail::describe_chain(chain, V);
    const plan_header& h = plan.header();
    const index_t nreq = static_cast<index_t>(request_ids.size());
    if (step < 0 || step >= h.num_steps) throw error("cuda::sample_step: step " + itos(step) + " outside the plan's steps 0.." + itos(h.num_steps - 1));
    if (nreq != tokens.num_requests())
        throw error("cuda::sample_step: " + itos(nreq) + " request ids, but step_tokens holds " + itos(tokens.num_requests()) + " requests");
    const bool guided = cfg_scale > 1.0f;
    if (num_sequences != nreq && num_sequences != 2 * nreq)
        throw error("cuda::sample_step: " + itos(num_sequences) + " sequences for " + itos(nreq) + " requests (requests, or twice as many with CFG's uncond half)");
    if (guided && num_sequences != 2 * nreq)
        throw error("cuda::sample_step: CFG scale " + ordo::detail::ftos(cfg_scale) + " needs the uncond half: " + itos(2 * nreq) + " sequences, got " +
                    itos(num_sequences));
    const long long rows = static_cast<long long>(nreq) * tokens.max_emitted();
    if (rows > ws.max_rows())
        throw error("cuda::sample_step: " + itos(nreq) + " requests x " + itos(tokens.max_emitted()) + " emitted positions need " + itos(rows) +
                    " rows, but the workspace was made for " + itos(ws.max_rows()));
    const std::size_t per_row = static_cast<std::size_t>(num_sequences) * static_cast<std::size_t>(h.num_heads) * static_cast<std::size_t>(V);
    if (logits.empty() || logits.size() % per_row != 0)
        throw error("cuda::sample_step: " + itos(static_cast<long long>(logits.size())) + " logits are not a whole number of rows of " +
                    itos(num_sequences) + " sequences x " + itos(h.num_heads) + " heads x vocab " + itos(V));
    const device_plan_view& pv = plan.view();
    const detail::step_args args{logits.data(),          logits.size(),       num_sequences,   nreq,
                                 h.num_heads,            V,                   step,            tokens.max_emitted(),
                                 cfg_scale,              seed,                request_ids.data(), pv.fed_offsets.data(),
                                 pv.emit_offsets.data(), pv.order.data(),     pv.contrib_offsets.data(), pv.contribs.data()};
    const detail::workspace_ref ref = ws.prepare(stream);
    detail::sample_step_kernel<detail::sampler_threads><<<static_cast<unsigned>(rows), detail::sampler_threads, 0, stream>>>(desc, args, ws.mixed(), tokens.span().data(), ref);
    check_launch("sample_step_kernel");
    index_t row = 0;
    detail::row_status status;
    if (ws.failed(stream, row, status)) {
        const index_t i = row / tokens.max_emitted();
        const bool at_position = status.code != detail::row_error::step_rows_mismatch && status.code != detail::row_error::step_too_many_emits;
        throw error("cuda::sample_step: step " + itos(step) + (at_position ? ", request " + itos(i) + ", position " + itos(status.position) : std::string()) +
                    ": " + detail::row_error_text(status, desc));
    }
}

}  // namespace ordo::cuda
