// ordo/mask.hpp - one mask meaning in four forms: a predicate, dense bytes, FlashInfer packed bits,
// and a block-sparse summary. The whole mask is the plan's fed_step array plus the mask mode
// (slot_causal needs only the slot order).
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "config.hpp"
#include "plan.hpp"

namespace ordo {

// visible(q, kv): may query slot q attend to kv slot kv? The prefix is causal among itself (a
// text prefix is a causal sequence; with one cls row this changes nothing); slots outside the
// layout (cache padding) are never visible. Trivially copyable, no virtuals: usable in host and
// device code when fed_step points to memory the caller can read there.
template <mask_mode Mode>
struct mask_predicate {
    static constexpr mask_mode mode = Mode;
    const index_t* fed_step = nullptr;
    index_t num_slots = 0;
    index_t prefix = 1;

    ORDO_HD constexpr bool operator()(index_t q, index_t kv) const {
        if (kv < 0 || kv >= num_slots) return false;
        if (Mode == mask_mode::slot_causal || q < prefix) return kv <= q;
        return fed_step[kv] <= fed_step[q];
    }
};

// Does kv slot `kv` hold what the plan wrote there, for a query of `step`? Not when the plan first
// writes it later: such a slot, visible under slot_causal, takes part in attention as K = V = 0
// (a zero score and no value), what the official zero-initialised cache holds, whatever the
// cache's memory holds now (a cache reused, or a session rewound). Under step_causal every visible
// slot is written. written_through: the last step whose writes the batch sees (step_batch).
ORDO_HD constexpr bool written(const index_t* fed_step, index_t kv, index_t written_through) { return fed_step[kv] <= written_through; }

// The predicate of a plan whose mode is known at compile time (policy P: mask_predicate<P::mask>).
template <mask_mode Mode>
constexpr mask_predicate<Mode> make_mask(const plan_view& p) {
    if (p.header.mask != Mode) throw error("make_mask: the plan's mask mode differs from the requested one");
    return {p.fed_step.data(), p.num_slots(), p.header.prefix};
}
template <mask_mode Mode, class P>
    requires temporary_plan<P>
constexpr mask_predicate<Mode> make_mask(P&&) {
    static_assert(detail::dangling_plan<P>,
                  "ordo::make_mask: a temporary plan would dangle (the predicate points into the plan's fed_step); keep the plan in a variable");
    return {};
}

// Runtime dispatch to the compile-time predicate: f(mask_predicate<M>).
template <class F>
constexpr decltype(auto) visit_mask(const plan_view& p, F&& f) {
    if (p.header.mask == mask_mode::slot_causal) return f(make_mask<mask_mode::slot_causal>(p));
    return f(make_mask<mask_mode::step_causal>(p));
}

constexpr bool visible(const plan_view& p, index_t q, index_t kv) {
    return visit_mask(p, [&](auto m) { return m(q, kv); });
}

// May row r of step `st` attend to kv slot kv? A cross query row (query_mode::cross, ARPG) sees
// every slot written through its step and is never itself written; every other row sees what
// its slot does (visible()). A cross query's slot only names its target, so slot-keyed masks
// (dense_mask, pack_mask, make_block_mask) do not describe it: use this, or dense_step_mask.
constexpr bool row_visible(const plan_view& p, const step_view& st, index_t r, index_t kv) {
    if (p.header.queries == query_mode::cross && st.query_target(r) >= 0)
        return kv >= 0 && kv < p.num_slots() && written(p.fed_step.data(), kv, st.index);
    return visible(p, st.fed[static_cast<std::size_t>(r)], kv);
}

namespace detail {
inline void check_rows(const plan_view& p, std::span<const index_t> q_slots, index_t kv_len, const char* what) {
    if (kv_len < 0) throw error(std::string(what) + ": negative kv length");
    for (index_t q : q_slots)
        if (q < 0 || q >= p.num_slots())
            throw error(std::string(what) + ": query slot " + itos(q) + " is outside the plan's " + itos(p.num_slots()) + " slots");
}
}  // namespace detail

// Dense form: out[i * kv_len + kv] = 1 if q_slots[i] sees kv, else 0.
inline void dense_mask(const plan_view& p, std::span<const index_t> q_slots, index_t kv_len, std::span<std::uint8_t> out) {
    detail::check_rows(p, q_slots, kv_len, "dense_mask");
    if (out.size() != q_slots.size() * static_cast<std::size_t>(kv_len))
        throw error("dense_mask: output holds " + detail::itos(static_cast<long long>(out.size())) + " bytes, needs " +
                    detail::itos(static_cast<long long>(q_slots.size()) * kv_len));
    visit_mask(p, [&](auto m) {
        std::uint8_t* o = out.data();
        for (index_t q : q_slots)
            for (index_t kv = 0; kv < kv_len; ++kv) *o++ = m(q, kv) ? 1 : 0;
    });
}

// Dense form of a whole step: out[r * kv_len + kv] = row_visible(p, step, r, kv) for every fed row
// of the step (what a backend masks a step's attention with, cross queries included).
inline void dense_step_mask(const plan_view& p, index_t step, index_t kv_len, std::span<std::uint8_t> out) {
    if (step < 0 || step >= p.num_steps()) throw error("dense_step_mask: step " + detail::itos(step) + " outside 0.." + detail::itos(p.num_steps() - 1));
    if (kv_len < 0) throw error("dense_step_mask: negative kv length");
    const step_view st = p.step(step);
    if (out.size() != static_cast<std::size_t>(st.num_rows()) * static_cast<std::size_t>(kv_len))
        throw error("dense_step_mask: output holds " + detail::itos(static_cast<long long>(out.size())) + " bytes, needs " +
                    detail::itos(static_cast<long long>(st.num_rows()) * kv_len));
    std::uint8_t* o = out.data();
    const bool cross = p.header.queries == query_mode::cross;
    for (index_t r = 0; r < st.num_rows(); ++r) {
        const bool cross_row = cross && st.query_target(r) >= 0;  // once per row
        for (index_t kv = 0; kv < kv_len; ++kv)
            *o++ = (cross_row ? kv < p.num_slots() && written(p.fed_step.data(), kv, step) : visible(p, st.fed[static_cast<std::size_t>(r)], kv)) ? 1 : 0;
    }
}

// FlashInfer packed layout: the q x kv bits of one request, row-major, flattened without row
// padding, eight bits a byte, little-endian bit order inside each byte.
constexpr std::size_t packed_mask_bytes(std::size_t q_rows, std::size_t kv_len) { return (q_rows * kv_len + 7) / 8; }

// Byte offsets of each request's packed mask in a batch (FlashInfer's mask_indptr); indptr has
// q_rows.size() + 1 entries.
inline void packed_mask_indptr(std::span<const index_t> q_rows, std::span<const index_t> kv_lens, std::span<std::int64_t> indptr) {
    if (q_rows.size() != kv_lens.size() || indptr.size() != q_rows.size() + 1)
        throw error("packed_mask_indptr: needs one kv length per request and requests + 1 offsets");
    indptr[0] = 0;
    for (std::size_t i = 0; i < q_rows.size(); ++i)
        indptr[i + 1] = indptr[i] + static_cast<std::int64_t>(packed_mask_bytes(static_cast<std::size_t>(q_rows[i]), static_cast<std::size_t>(kv_lens[i])));
}

// Packs the mask of rows q_slots against kv slots [0, kv_len) into out (packed_mask_bytes of them).
// The masks say what is visible; under slot_causal a kernel that takes them must also read the
// visible slots not written yet (written()) as zeros, e.g. from a zero-initialised cache.
// No allocation: bits go through a 64-bit accumulator.
inline void pack_mask(const plan_view& p, std::span<const index_t> q_slots, index_t kv_len, std::span<std::uint8_t> out) {
    detail::check_rows(p, q_slots, kv_len, "pack_mask");
    const std::size_t need = packed_mask_bytes(q_slots.size(), static_cast<std::size_t>(kv_len));
    if (out.size() != need)
        throw error("pack_mask: output holds " + detail::itos(static_cast<long long>(out.size())) + " bytes, needs " +
                    detail::itos(static_cast<long long>(need)));
    const index_t* fs = p.fed_step.data();
    const index_t live = std::min(kv_len, p.num_slots());  // slots past the layout are never visible
    const bool slot_causal = p.header.mask == mask_mode::slot_causal;
    std::uint8_t* o = out.data();
    std::uint64_t acc = 0;
    int nbits = 0;  // bits pending in acc (< 64 between chunks)
    auto put = [&](std::uint64_t word, int count) {  // append `count` low bits of word
        acc |= word << nbits;
        const int total = nbits + count;
        if (total >= 64) {
            for (int i = 0; i < 8; ++i) *o++ = static_cast<std::uint8_t>(acc >> (8 * i));
            acc = nbits ? word >> (64 - nbits) : 0;
            nbits = total - 64;
        } else {
            nbits = total;
        }
    };
    const index_t prefix = p.header.prefix;
    for (index_t q : q_slots) {
        const bool by_slot = slot_causal || q < prefix;  // kv <= q, else by step
        const index_t limit = fs[q];
        const index_t end = by_slot ? std::min(live, q + 1) : live;
        for (index_t base = 0; base < kv_len; base += 64) {
            const int count = static_cast<int>(std::min<index_t>(64, kv_len - base));
            std::uint64_t word = 0;
            const index_t stop = std::min(end, base + count);
            if (by_slot) {
                if (stop > base) word = stop - base == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << (stop - base)) - 1;
            } else {
                for (index_t kv = base; kv < stop; ++kv) word |= static_cast<std::uint64_t>(fs[kv] <= limit) << (kv - base);
            }
            put(word, count);
        }
    }
    while (nbits > 0) {
        *o++ = static_cast<std::uint8_t>(acc);
        acc >>= 8;
        nbits -= 8;
    }
}

// Block-sparse summary (FlexAttention's BlockMask idea): query rows tiled by block_q, kv slots by
// block_kv; per query block the kv blocks every pair of which is visible (full) and those with some
// visible pairs (partial). Blocks with none are absent. Exact: full means all, absent means none.
struct block_mask {
    index_t block_q = 0, block_kv = 0, q_len = 0, kv_len = 0;
    std::vector<index_t> full_offsets, full_blocks;        // CSR over query blocks
    std::vector<index_t> partial_offsets, partial_blocks;  // CSR over query blocks
    index_t num_q_blocks() const { return static_cast<index_t>(full_offsets.size()) - 1; }
    index_t num_kv_blocks() const { return kv_len == 0 ? 0 : (kv_len - 1) / block_kv + 1; }  // no overflow near INT32_MAX
    std::span<const index_t> full(index_t qb) const {
        return {full_blocks.data() + full_offsets[qb], static_cast<std::size_t>(full_offsets[qb + 1] - full_offsets[qb])};
    }
    std::span<const index_t> partial(index_t qb) const {
        return {partial_blocks.data() + partial_offsets[qb], static_cast<std::size_t>(partial_offsets[qb + 1] - partial_offsets[qb])};
    }
};

inline block_mask make_block_mask(const plan_view& p, std::span<const index_t> q_slots, index_t kv_len, index_t block_q, index_t block_kv) {
    detail::check_rows(p, q_slots, kv_len, "make_block_mask");
    if (block_q < 1 || block_kv < 1) throw error("make_block_mask: block sizes must be >= 1");
    if (q_slots.size() > static_cast<std::size_t>(max_index)) throw error("make_block_mask: more query rows than the 32-bit index type holds");
    block_mask bm;
    bm.block_q = block_q;
    bm.block_kv = block_kv;
    bm.q_len = static_cast<index_t>(q_slots.size());
    bm.kv_len = kv_len;
    const index_t nq = bm.q_len == 0 ? 0 : (bm.q_len - 1) / block_q + 1;
    const index_t* fs = p.fed_step.data();
    const index_t live = std::min(kv_len, p.num_slots());
    const bool slot_causal = p.header.mask == mask_mode::slot_causal;
    // a block's end, cut at `limit`, without leaving index_t near INT32_MAX
    auto end_of = [](index_t lo, index_t block, index_t limit) { return static_cast<index_t>(std::min<long long>(limit, 1LL * lo + block)); };
    // per kv block: min/max fed step and slot range over live slots. Blocks past the layout hold
    // no visible slot (absent from every list), so only the live ones are summarised: a huge
    // kv_len (a cache's capacity) costs nothing.
    const index_t nkv = live <= 0 ? 0 : (live - 1) / block_kv + 1;
    struct kv_summary { index_t lo_fs, hi_fs, lo, hi, live_count, size; };
    std::vector<kv_summary> kvs(static_cast<std::size_t>(nkv));
    for (index_t b = 0; b < nkv; ++b) {
        kv_summary s{max_index, -1, b * block_kv, end_of(b * block_kv, block_kv, kv_len) - 1, 0, 0};
        s.size = s.hi - s.lo + 1;
        for (index_t kv = s.lo; kv <= s.hi && kv < live; ++kv) {
            s.lo_fs = std::min(s.lo_fs, fs[kv]);
            s.hi_fs = std::max(s.hi_fs, fs[kv]);
            ++s.live_count;
        }
        kvs[static_cast<std::size_t>(b)] = s;
    }
    bm.full_offsets.push_back(0);
    bm.partial_offsets.push_back(0);
    for (index_t qb = 0; qb < nq; ++qb) {
        const index_t qlo = qb * block_q, qhi = end_of(qlo, block_q, bm.q_len);
        index_t qmin_fs = max_index, qmax_fs = -1, qmin = max_index, qmax = -1;
        for (index_t i = qlo; i < qhi; ++i) {
            const index_t q = q_slots[static_cast<std::size_t>(i)];
            qmin_fs = std::min(qmin_fs, fs[q]); qmax_fs = std::max(qmax_fs, fs[q]);
            qmin = std::min(qmin, q); qmax = std::max(qmax, q);
        }
        for (index_t b = 0; b < nkv; ++b) {
            const kv_summary& s = kvs[static_cast<std::size_t>(b)];
            if (s.live_count == 0) continue;
            // slot order matters in slot_causal mode and for prefix queries (causal prefix):
            // `ordered` when some query obeys kv <= q, `all_ordered` when every one does
            const bool ordered = slot_causal || qmin < p.header.prefix;
            const bool all_ordered = slot_causal || qmax < p.header.prefix;
            // slot_causal: by slot order alone; step_causal: by steps (and slot order for prefix queries)
            bool full = s.live_count == s.size && (slot_causal || s.hi_fs <= qmin_fs) && (!ordered || s.hi <= qmin);
            bool none = (!slot_causal && s.lo_fs > qmax_fs) || (all_ordered && s.lo > qmax);
            if (!full && !none && ordered) {  // min/max can't decide: scan the tile
                bool any = false, all = s.live_count == s.size;
                for (index_t i = qlo; i < qhi && (!any || all); ++i) {
                    const index_t q = q_slots[static_cast<std::size_t>(i)];
                    // slots past the layout are never visible (`all` already counts them): scan the live ones
                    for (index_t kv = s.lo; kv <= std::min(s.hi, live - 1); ++kv) {
                        const bool v = slot_causal || q < p.header.prefix ? kv <= q : fs[kv] <= fs[q];
                        any = any || v;
                        all = all && v;
                    }
                }
                full = all;
                none = !any;
            }
            if (full) bm.full_blocks.push_back(b);
            else if (!none) bm.partial_blocks.push_back(b);
        }
        bm.full_offsets.push_back(static_cast<index_t>(bm.full_blocks.size()));
        bm.partial_offsets.push_back(static_cast<index_t>(bm.partial_blocks.size()));
    }
    return bm;
}

// The structured fast path of a decode kernel (FlashInfer's structured masks): per kv block of
// `block` slots, the lowest and highest fed step of its live slots; a query classifies a block as
// none / full / partial from that alone, in O(1), and evaluates the predicate only on partial
// blocks. Exact: `none` means no slot of the block is visible, `full` that every slot is.
struct kv_block_steps {
    index_t lo_step = max_index;  // min fed_step over the block's slots inside the layout
    index_t hi_step = -1;         // max ...
    index_t live = 0;             // slots of the block inside the layout
};
enum class block_class : std::uint8_t { none, partial, full };

ORDO_HD constexpr index_t num_kv_blocks(index_t slots, index_t block) { return slots <= 0 ? 0 : (slots - 1) / block + 1; }  // no overflow near INT32_MAX

// out[b] for b < num_kv_blocks(num_slots, block).
inline void summarize_kv_blocks(const plan_view& p, index_t block, std::span<kv_block_steps> out) {
    if (block < 1) throw error("summarize_kv_blocks: block must be >= 1");
    const index_t n = p.num_slots(), nb = num_kv_blocks(n, block);
    if (out.size() != static_cast<std::size_t>(nb))
        throw error("summarize_kv_blocks: output holds " + detail::itos(static_cast<long long>(out.size())) + " blocks, needs " + detail::itos(nb));
    for (index_t b = 0; b < nb; ++b) {
        kv_block_steps s;
        const index_t end = static_cast<index_t>(std::min<long long>(n, (b + 1LL) * block));
        for (index_t kv = b * block; kv < end; ++kv) {
            s.lo_step = std::min(s.lo_step, p.fed_step[static_cast<std::size_t>(kv)]);
            s.hi_step = std::max(s.hi_step, p.fed_step[static_cast<std::size_t>(kv)]);
            ++s.live;
        }
        out[static_cast<std::size_t>(b)] = s;
    }
}

// Block b ([b*block, (b+1)*block) cut at kv_end) as seen by query slot q under mask m.
template <mask_mode Mode>
ORDO_HD constexpr block_class classify_kv_block(const mask_predicate<Mode>& m, const kv_block_steps& s, index_t q, index_t b, index_t block,
                                                index_t kv_end) {
    // The block's slots are [lo, lo + block). b < num_kv_blocks(num_slots, block), so lo fits index_t;
    // its last slot may not (block near INT32_MAX), hence comparisons as distances from lo.
    const index_t lo = b * block;
    if (s.live == 0 || lo >= kv_end) return block_class::none;
    const bool whole = s.live == block && block - 1 < kv_end - lo;  // last slot < kv_end
    if (Mode == mask_mode::slot_causal || q < m.prefix) {  // by slot order (the prefix is causal among itself)
        if (lo > q) return block_class::none;
        return whole && block - 1 <= q - lo ? block_class::full : block_class::partial;
    }
    const index_t fq = m.fed_step[q];
    if (s.lo_step > fq) return block_class::none;
    return whole && s.hi_step <= fq ? block_class::full : block_class::partial;
}

// The query rows of the teacher-forcing forward: slots [0, train_slots).
inline std::vector<index_t> train_rows(const plan_view& p) {
    std::vector<index_t> rows(static_cast<std::size_t>(p.header.train_slots));
    for (index_t i = 0; i < p.header.train_slots; ++i) rows[static_cast<std::size_t>(i)] = i;
    return rows;
}

// Cache rows a decode needs, rounded up to a multiple of 8 as the official code allocates
// (find_multiple(prefix + N, 8)).
constexpr index_t kv_cache_len(const plan_view& p) {
    index_t used = p.header.prefix + p.num_positions();
    for (index_t s = 0; s < p.num_slots(); ++s)
        if (p.fed_step[static_cast<std::size_t>(s)] < p.num_steps()) used = std::max(used, s + 1);
    return (used + 7) / 8 * 8;
}

}  // namespace ordo
