// ordo/plan.hpp - a plan: everything a policy decides for one grid, as compact read-only arrays.
//
// Layout (CSR throughout, all index_t unless noted):
//   slots[num_slots]          what each slot holds (prefix row / token of a position / transition token)
//   fed_step[num_slots]       the step that first writes each slot (num_steps for slots only teacher
//                             forcing feeds); with the mask mode, the whole mask (see mask.hpp)
//   fed_offsets[steps+1], fed[...]          per step, the slots fed (row r of the step = fed[r])
//   emit_offsets[steps+1], order[N]         per step, the positions emitted (order = the permutation)
//   contrib_offsets[N+1], contribs[...]     per emitted position, the (row, head, weight) it is mixed from
//   rank_of[N], step_of[N], slot_of[N]      per position: emission rank, step, slot
//   stand_ins[...]                          fed rows that carry a copy of another slot's content
//   queries[...]                            fed rows that carry the query token of a target position
// Building is constexpr (transient std::vector); iterating a step allocates nothing.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "config.hpp"
#include "grid.hpp"
#include "memory_space.hpp"

// Error paths are kept out of line so the builder's per-token calls stay small and inlinable.
#if !defined(ORDO_DETAIL_COLD)
#if defined(__GNUC__) || defined(__clang__)
#define ORDO_DETAIL_COLD [[gnu::cold, gnu::noinline]]
#else
#define ORDO_DETAIL_COLD
#endif
#endif
// ...and the per-token builder calls are inlined into the policies' loops (the built-in
// policies' build() also inlines everything it calls, vector appends included). Not under
// AddressSanitizer: forced inlining of instrumented code makes each translation unit compile
// ~20x slower there (minutes per file) and buys nothing a sanitizer run measures.
#if !defined(ORDO_DETAIL_SANITIZED)
#if defined(__SANITIZE_ADDRESS__)
#define ORDO_DETAIL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define ORDO_DETAIL_SANITIZED 1
#endif
#endif
#endif
#if !defined(ORDO_DETAIL_HOT)
#if (defined(__GNUC__) || defined(__clang__)) && !defined(ORDO_DETAIL_SANITIZED)
#define ORDO_DETAIL_HOT [[gnu::always_inline]] inline
#else
#define ORDO_DETAIL_HOT inline
#endif
#endif
#if !defined(ORDO_DETAIL_FLATTEN)
#if (defined(__GNUC__) || defined(__clang__)) && !defined(ORDO_DETAIL_SANITIZED)
#define ORDO_DETAIL_FLATTEN [[gnu::flatten]]
#else
#define ORDO_DETAIL_FLATTEN
#endif
#endif

namespace ordo {

// What a slot (or a fed row) holds: prefix row `index`, the token of position `index`, transition
// token M_index (1-based), or the query token of position `index` (the model's learned query
// vector told the target position: LPD's mask token, RandAR's position instruction). A query is
// a fed row's content (query_entry) or, where the layout gives it a slot of its own (RandAR's
// interleaved [P_t, x_t]), a slot's.
enum class slot_kind : std::uint8_t { prefix, token, transition, query };

struct slot_entry {
    index_t index = 0;
    slot_kind kind = slot_kind::prefix;
    friend constexpr bool operator==(const slot_entry&, const slot_entry&) = default;
};

// How a query slot sees kv slots (compile-time per policy, stored for type-erased use):
//  step_causal: kv visible iff fed_step[kv] <= fed_step[q]  (causal by step, bidirectional in a step)
//  slot_causal: kv visible iff kv <= q, over the whole cache (the causal mask of a raster-trained
//               model run out of order: ZipAR). A visible slot not written yet takes part as
//               K = V = 0, what the official zero-initialised cache holds there (see written()).
enum class mask_mode : std::uint8_t { step_causal, slot_causal };

// How query rows take part (plans with query rows):
//  in_cache: a query row is written into its slot like any row and attended by the rules of the
//            mask mode (LPD, RandAR);
//  cross:    a query row is not written to the cache; it attends to every slot written through
//            its step (fed_step <= step), and nothing attends to it (ARPG's cross-decoder queries).
//            Its slot (its target's token slot) only names it; fed_step ignores it.
enum class query_mode : std::uint8_t { in_cache, cross };

// rope: token slots rotate with their own grid coordinates, prefix/transition slots get zero rows
// (cos = sin = 0, the LlamaGen quirk); absolute: learned absolute embedding indexed by slot (NAR video);
// cell_table: a learned table row per grid cell added to the input (LPD's pos_embed), read from each
// sequence's fed_input::cell, so requests in one batch may map positions to cells differently.
enum class position_encoding : std::uint8_t { rope, absolute, cell_table };

// shifted: teacher forcing feeds z[:-1] (the last slot is not fed; LlamaGen, PAR);
// full: it feeds every token (NAR); replay: the plan's own steps, run on the given tokens (a plan
// whose slots a query shares with a token has no one-pass layout of its own: LPD, whose decode
// equals its official training pass).
enum class teacher_forcing : std::uint8_t { shifted, full, replay };

inline constexpr int max_heads = 4;

// A fed row that carries a copy of slot `copy_of`'s content (a prefix row or a token) instead of
// its own slot's; it is written into its own slot and rotates at that slot's position. ZipAR
// starts a row this way in the slot of the row's raster predecessor, which is not decoded yet:
// the predecessor's own feed overwrites it later. `fed_row` indexes plan_view::fed.
struct stand_in_entry {
    index_t fed_row = 0;
    index_t copy_of = 0;
    friend constexpr bool operator==(const stand_in_entry&, const stand_in_entry&) = default;
};

// A fed row that carries the query token of position `target` (LPD's mask token plus the target's
// position embedding): the row predicts `target`, which its step emits. It is written into the
// token slot of a position not fed yet (LPD: the target's own slot, overwritten by the target's
// token next step), at most one stand-in or query per slot. A step-causal mask dates the slot by
// this write, so a step's queries see each other and what is decoded, and the rows that later feed
// the group's tokens see their whole group (LPD's bidirectional groups). `fed_row` indexes
// plan_view::fed.
struct query_entry {
    index_t fed_row = 0;
    index_t target = 0;
    friend constexpr bool operator==(const query_entry&, const query_entry&) = default;
};

// A head's name, stored in the plan (not a view into the policy's strings).
struct head_name {
    char text[8]{};
    constexpr head_name() = default;
    constexpr head_name(std::string_view s) {
        if (s.size() >= sizeof text) throw error("head names have at most 7 characters: '" + std::string(s) + "'");
        for (std::size_t i = 0; i < s.size(); ++i) text[i] = s[i];
    }
    constexpr std::string_view view() const {
        std::size_t n = 0;
        while (n < sizeof text && text[n]) ++n;
        return {text, n};
    }
    constexpr operator std::string_view() const { return view(); }
};

// One term of an emitted position's logits: weight * logits(row of this step, head).
struct contribution {
    std::uint16_t row = 0;
    std::uint8_t head = 0;
    std::uint8_t reserved_ = 0;
    float weight = 1.0f;
    friend constexpr bool operator==(const contribution&, const contribution&) = default;
};
static_assert(sizeof(contribution) == 8, "contribution is packed to 8 bytes");

// Builder-side (wide, checked) form of a contribution.
struct source {
    index_t row = 0;
    index_t head = 0;
    float weight = 1.0f;
};

// Scalars shared by every storage form.
struct plan_header {
    grid_shape grid{};
    index_t prefix = 1;
    index_t num_steps = 0;
    index_t num_slots = 0;
    index_t train_slots = 0;  // slots the teacher-forcing forward feeds (a prefix of the layout)
    index_t num_transitions = 0;
    index_t num_stand_ins = 0;
    index_t num_queries = 0;
    index_t num_heads = 1;
    mask_mode mask = mask_mode::step_causal;
    query_mode queries = query_mode::in_cache;
    position_encoding encoding = position_encoding::rope;
    teacher_forcing forcing = teacher_forcing::shifted;
    std::array<head_name, max_heads> head_names{head_name("main"), {}, {}, {}};
};

// One step of a plan, for iteration: spans into the plan, no allocation.
struct step_view {
    index_t index = 0;
    std::span<const index_t> fed;      // slot of each fed row
    std::span<const index_t> emitted;  // positions emitted by this step
    index_t first_rank = 0;            // emission rank of emitted[0]
    index_t first_row = 0;             // index of fed[0] in the plan's fed rows
    std::span<const stand_in_entry> stand_ins;  // the step's stand-in rows, ascending
    std::span<const query_entry> queries;       // the step's query rows, ascending
    const index_t* contrib_offsets = nullptr;
    const contribution* contribs = nullptr;

    constexpr index_t num_rows() const { return static_cast<index_t>(fed.size()); }
    constexpr index_t num_emitted() const { return static_cast<index_t>(emitted.size()); }
    // The slot whose content row r carries: its own slot, or what a stand-in copies.
    // (A query row carries no slot's content: see query_target.)
    constexpr index_t content_of(index_t r) const {
        for (const stand_in_entry& e : stand_ins)
            if (e.fed_row == first_row + r) return e.copy_of;
        return fed[static_cast<std::size_t>(r)];
    }
    // The position whose query token row r carries, or -1 if it is not a query row.
    constexpr index_t query_target(index_t r) const {
        for (const query_entry& e : queries)
            if (e.fed_row == first_row + r) return e.target;
        return -1;
    }
    // contributions of emitted[i]
    constexpr std::span<const contribution> from(index_t i) const {
        index_t b = contrib_offsets[first_rank + i], e = contrib_offsets[first_rank + i + 1];
        return {contribs + b, static_cast<std::size_t>(e - b)};
    }
};

// Read-only view of a plan's arrays, in the memory space Space: plan_view (host) is what every
// algorithm (masks, sessions, JSON, step maps, digest) takes; device_plan_view is what
// cuda::device_plan::view() gives kernels. The two are distinct types and do not convert, so a
// device view handed to a host algorithm is a compile error, not a host read of device memory.
template <class Space = host_memory>
struct basic_plan_view {
    using memory_space = Space;
    plan_header header{};
    std::span<const slot_entry> slots;
    std::span<const index_t> fed_step;
    std::span<const index_t> fed_offsets;
    std::span<const index_t> fed;
    std::span<const index_t> emit_offsets;
    std::span<const index_t> order;
    std::span<const index_t> contrib_offsets;
    std::span<const contribution> contribs;
    std::span<const index_t> rank_of;
    std::span<const index_t> step_of;
    std::span<const index_t> slot_of;
    std::span<const stand_in_entry> stand_ins;
    std::span<const query_entry> queries;

    constexpr const grid_shape& grid() const { return header.grid; }
    constexpr index_t num_steps() const { return header.num_steps; }
    constexpr index_t num_slots() const { return header.num_slots; }
    constexpr index_t num_positions() const { return header.grid.size(); }
    constexpr index_t num_fed_rows() const { return static_cast<index_t>(fed.size()); }
    constexpr step_view step(index_t s) const {
        step_view v;
        v.index = s;
        v.fed = fed.subspan(static_cast<std::size_t>(fed_offsets[s]),
                            static_cast<std::size_t>(fed_offsets[s + 1] - fed_offsets[s]));
        v.emitted = order.subspan(static_cast<std::size_t>(emit_offsets[s]),
                                  static_cast<std::size_t>(emit_offsets[s + 1] - emit_offsets[s]));
        v.first_rank = emit_offsets[s];
        v.first_row = fed_offsets[s];
        if (!stand_ins.empty()) {  // the step's stand-ins: sorted by fed row
            const auto below = [](const stand_in_entry& e, index_t row) { return e.fed_row < row; };
            const auto b = std::lower_bound(stand_ins.begin(), stand_ins.end(), fed_offsets[s], below);
            const auto e = std::lower_bound(b, stand_ins.end(), fed_offsets[s + 1], below);
            v.stand_ins = stand_ins.subspan(static_cast<std::size_t>(b - stand_ins.begin()), static_cast<std::size_t>(e - b));
        }
        if (!queries.empty()) {  // the step's queries: sorted by fed row
            const auto below = [](const query_entry& e, index_t row) { return e.fed_row < row; };
            const auto b = std::lower_bound(queries.begin(), queries.end(), fed_offsets[s], below);
            const auto e = std::lower_bound(b, queries.end(), fed_offsets[s + 1], below);
            v.queries = queries.subspan(static_cast<std::size_t>(b - queries.begin()), static_cast<std::size_t>(e - b));
        }
        v.contrib_offsets = contrib_offsets.data();
        v.contribs = contribs.data();
        return v;
    }
    // Most rows any step feeds (sizes a backend's per-step buffers).
    constexpr index_t max_rows_per_step() const {
        index_t m = 0;
        for (index_t s = 0; s < num_steps(); ++s) m = std::max(m, fed_offsets[s + 1] - fed_offsets[s]);
        return m;
    }
    constexpr index_t max_emitted_per_step() const {
        index_t m = 0;
        for (index_t s = 0; s < num_steps(); ++s) m = std::max(m, emit_offsets[s + 1] - emit_offsets[s]);
        return m;
    }

    // Declared only to say why a view does not cross memory spaces (chosen by overload resolution,
    // then refused when instantiated).
    template <class Other>
        requires(!std::same_as<Other, Space>)
    constexpr operator basic_plan_view<Other>() const {
        static_assert(detail::always_false<Other>,
                      "ordo: a plan view does not convert between memory spaces: a device plan's view (device_plan_view) is device "
                      "memory, which host algorithms (masks, sessions, JSON, digest) must not read; pass them the host plan");
        return {};
    }
};
using plan_view = basic_plan_view<host_memory>;
using device_plan_view = basic_plan_view<device_memory>;

// Rotary coordinates of a slot: the token's own grid cell, or zero rotation.
struct rope_coord {
    bool zero = true;
    coord at{};
};
constexpr rope_coord rope_of(const plan_view& p, index_t slot) {
    const slot_entry& e = p.slots[static_cast<std::size_t>(slot)];
    if (e.kind == slot_kind::token || e.kind == slot_kind::query) return {false, p.grid().at(e.index)};
    return {};
}

namespace detail {
// Every field of two plans, in one fixed order, as 64-bit words: f(a's words, b's words, word)
// once per field group, where word(x) maps an element to its word (floats by bit pattern, so a
// weight one ulp off differs). digest() and same_plan() both walk this one list, so they cannot
// disagree on what a plan's content is.
inline constexpr auto plan_word_of_index = [](index_t x) -> std::uint64_t { return static_cast<std::uint32_t>(x); };
inline constexpr auto plan_word_of_slot = [](const slot_entry& e) -> std::uint64_t {
    return static_cast<std::uint32_t>(e.index) | std::uint64_t{static_cast<std::uint8_t>(e.kind)} << 32;
};
inline constexpr auto plan_word_of_contribution = [](const contribution& c) -> std::uint64_t {
    return std::uint64_t{c.row} | std::uint64_t{c.head} << 16 | std::uint64_t{c.reserved_} << 24 |
           std::uint64_t{std::bit_cast<std::uint32_t>(c.weight)} << 32;
};
inline constexpr auto plan_word_of_stand_in = [](const stand_in_entry& e) -> std::uint64_t {
    return static_cast<std::uint32_t>(e.fed_row) | std::uint64_t{static_cast<std::uint32_t>(e.copy_of)} << 32;
};
inline constexpr auto plan_word_of_query = [](const query_entry& e) -> std::uint64_t {
    return static_cast<std::uint32_t>(e.fed_row) | std::uint64_t{static_cast<std::uint32_t>(e.target)} << 32;
};
inline constexpr auto plan_word = [](std::uint64_t w) { return w; };

// (the structured bindings name every member: a field added to plan_header or plan_view without
// being added here is a compile error)
inline constexpr std::size_t plan_header_words = 20;
constexpr std::array<std::uint64_t, plan_header_words> header_words(const plan_header& h) {
    const auto& [grid, prefix, num_steps, num_slots, train_slots, num_transitions, num_stand_ins, num_queries, num_heads, mask, queries, encoding,
                 forcing, head_names] = h;
    std::array<std::uint64_t, plan_header_words> w{
        static_cast<std::uint64_t>(grid.rank()),  plan_word_of_index(grid.frames()), plan_word_of_index(grid.rows()),
        plan_word_of_index(grid.cols()),          plan_word_of_index(prefix),        plan_word_of_index(num_steps),
        plan_word_of_index(num_slots),            plan_word_of_index(train_slots),   plan_word_of_index(num_transitions),
        plan_word_of_index(num_stand_ins),        plan_word_of_index(num_queries),   plan_word_of_index(num_heads),
        static_cast<std::uint64_t>(mask),         static_cast<std::uint64_t>(queries),
        static_cast<std::uint64_t>(encoding),     static_cast<std::uint64_t>(forcing)};
    std::size_t i = plan_header_words - max_heads;
    for (const head_name& n : head_names) {
        std::uint64_t packed = 0;
        for (std::size_t c = 0; c < sizeof n.text; ++c) packed |= std::uint64_t{static_cast<unsigned char>(n.text[c])} << (8 * c);
        w[i++] = packed;
    }
    return w;
}

template <class F>
constexpr void for_each_plan_field(const plan_view& a, const plan_view& b, F&& f) {
    const auto& [ah, a_slots, a_fed_step, a_fed_offsets, a_fed, a_emit_offsets, a_order, a_contrib_offsets, a_contribs, a_rank_of, a_step_of,
                 a_slot_of, a_stand_ins, a_queries] = a;
    const auto& [bh, b_slots, b_fed_step, b_fed_offsets, b_fed, b_emit_offsets, b_order, b_contrib_offsets, b_contribs, b_rank_of, b_step_of,
                 b_slot_of, b_stand_ins, b_queries] = b;
    const auto ha = header_words(ah), hb = header_words(bh);
    f(std::span<const std::uint64_t>(ha), std::span<const std::uint64_t>(hb), plan_word);
    f(a_slots, b_slots, plan_word_of_slot);
    f(a_fed_step, b_fed_step, plan_word_of_index);
    f(a_fed_offsets, b_fed_offsets, plan_word_of_index);
    f(a_fed, b_fed, plan_word_of_index);
    f(a_emit_offsets, b_emit_offsets, plan_word_of_index);
    f(a_order, b_order, plan_word_of_index);
    f(a_contrib_offsets, b_contrib_offsets, plan_word_of_index);
    f(a_contribs, b_contribs, plan_word_of_contribution);
    f(a_rank_of, b_rank_of, plan_word_of_index);
    f(a_step_of, b_step_of, plan_word_of_index);
    f(a_slot_of, b_slot_of, plan_word_of_index);
    f(a_stand_ins, b_stand_ins, plan_word_of_stand_in);
    f(a_queries, b_queries, plan_word_of_query);
}

// xxHash64's round and final mix over a stream of 64-bit words, four independent lanes (the
// hash runs at memory speed; no byte access, so it is constexpr).
class digest_stream {
public:
    constexpr void add(std::uint64_t v) {
        std::uint64_t& lane = lanes_[count_ & 3];
        lane = round(lane, v);
        ++count_;
    }
    constexpr std::uint64_t finish() const {
        std::uint64_t h = std::rotl(lanes_[0], 1) + std::rotl(lanes_[1], 7) + std::rotl(lanes_[2], 12) + std::rotl(lanes_[3], 18);
        for (std::uint64_t lane : lanes_) h = (h ^ round(0, lane)) * p1 + p4;
        h += count_ * 8;
        h ^= h >> 33;
        h *= p2;
        h ^= h >> 29;
        h *= p3;
        return h ^ (h >> 32);
    }

private:
    static constexpr std::uint64_t p1 = 0x9E3779B185EBCA87ull, p2 = 0xC2B2AE3D27D4EB4Full, p3 = 0x165667B19E3779F9ull,
                                   p4 = 0x85EBCA77C2B2AE63ull;
    static constexpr std::uint64_t round(std::uint64_t acc, std::uint64_t v) { return std::rotl(acc + v * p2, 31) * p1; }
    std::uint64_t lanes_[4] = {p1 + p2, p2, 0, 0 - p1};
    std::uint64_t count_ = 0;
};
}  // namespace detail

// A 64-bit identity of a plan's content: every header field (grid, prefix, counts, mask mode,
// encoding, forcing, head names) and every element of every array (weights by bit pattern), each
// array prefixed by its length. Plans built twice, or copied anywhere, have equal digests; plans
// that differ anywhere have different ones (but for 64-bit hash collisions: not cryptographic).
// What a backend derives from a plan (a device copy, captured graphs) is keyed on it.
constexpr std::uint64_t digest(const plan_view& p) {
    detail::digest_stream h;
    detail::for_each_plan_field(p, p, [&](auto field, auto, auto word) {
        h.add(field.size());
        for (const auto& x : field) h.add(word(x));
    });
    return h.finish();
}

// own[slot] = the step that feeds `slot` its own content (not a stand-in's or a query's),
// num_steps if none: what the slot holds from then on. (fed_step is a slot's first write.)
constexpr void own_feed_steps(const plan_view& p, std::span<index_t> own) {
    if (own.size() != static_cast<std::size_t>(p.num_slots())) throw error("own_feed_steps: the output needs one entry per slot");
    std::fill(own.begin(), own.end(), p.num_steps());
    auto si = p.stand_ins.begin();
    auto qi = p.queries.begin();
    for (index_t s = 0; s < p.num_steps(); ++s)
        for (index_t r = p.fed_offsets[static_cast<std::size_t>(s)]; r < p.fed_offsets[static_cast<std::size_t>(s) + 1]; ++r) {
            if (si != p.stand_ins.end() && si->fed_row == r) {
                ++si;
                continue;
            }
            if (qi != p.queries.end() && qi->fed_row == r) {
                ++qi;
                continue;
            }
            index_t& o = own[static_cast<std::size_t>(p.fed[static_cast<std::size_t>(r)])];
            if (o == p.num_steps()) o = s;
        }
}

// query_slot[pos] = the slot holding position pos's query as its own content (RandAR's P slot),
// -1 where the layout has none.
constexpr std::vector<index_t> query_slots(const plan_view& p) {
    std::vector<index_t> out(static_cast<std::size_t>(p.num_positions()), -1);
    for (index_t s = 0; s < p.num_slots(); ++s)
        if (const slot_entry& e = p.slots[static_cast<std::size_t>(s)]; e.kind == slot_kind::query) out[static_cast<std::size_t>(e.index)] = s;
    return out;
}
// The slot of the training layout whose output is row r of step st: a query row written into
// another slot in decoding (RandAR's later queries of a call) is, in training, its target's own
// query slot (query_slots); every other row is its fed slot.
constexpr index_t train_slot_of(const step_view& st, index_t r, std::span<const index_t> query_slot) {
    const index_t t = st.query_target(r);
    if (t >= 0 && query_slot[static_cast<std::size_t>(t)] >= 0) return query_slot[static_cast<std::size_t>(t)];
    return st.fed[static_cast<std::size_t>(r)];
}

// True iff a and b hold the same plan: every header field and every array element equal (weights
// bit for bit). Equal plans have equal digests.
constexpr bool same_plan(const plan_view& a, const plan_view& b) {
    bool same = true;
    detail::for_each_plan_field(a, b, [&](auto x, auto y, auto word) {
        if (!same || x.size() != y.size()) {
            same = false;
            return;
        }
        for (std::size_t i = 0; i < x.size() && same; ++i) same = word(x[i]) == word(y[i]);
    });
    return same;
}

// Owning plan (vectors). Built by make_plan (policy.hpp) through plan_builder.
class plan {
public:
    constexpr plan() = default;
    constexpr operator plan_view() const { return view(); }
    constexpr plan_view view() const {
        return {header_, slots_, fed_step_, fed_offsets_, fed_, emit_offsets_, order_,
                contrib_offsets_, contribs_, rank_of_, step_of_, slot_of_, stand_ins_, queries_};
    }
    constexpr const plan_header& header() const { return header_; }
    constexpr index_t num_steps() const { return header_.num_steps; }
    constexpr index_t num_slots() const { return header_.num_slots; }
    constexpr step_view step(index_t s) const { return view().step(s); }
    // Bytes held by the plan's arrays (what a plan costs to keep around).
    constexpr std::size_t bytes() const {
        return slots_.size() * sizeof(slot_entry) + contribs_.size() * sizeof(contribution) +
               stand_ins_.size() * sizeof(stand_in_entry) + queries_.size() * sizeof(query_entry) +
               (fed_step_.size() + fed_offsets_.size() + fed_.size() + emit_offsets_.size() + order_.size() +
                contrib_offsets_.size() + rank_of_.size() + step_of_.size() + slot_of_.size()) * sizeof(index_t);
    }

private:
    friend class plan_builder;
    template <index_t, index_t, index_t, index_t, index_t, index_t, index_t>
    friend class static_plan;
    plan_header header_{};
    std::vector<slot_entry> slots_;
    std::vector<index_t> fed_step_, fed_offsets_, fed_, emit_offsets_, order_, contrib_offsets_;
    std::vector<contribution> contribs_;
    std::vector<index_t> rank_of_, step_of_, slot_of_;
    std::vector<stand_in_entry> stand_ins_;
    std::vector<query_entry> queries_;
};

// What a policy's build() writes into. The prefix slots [0, prefix) are laid out on construction;
// the policy then adds token and transition slots in layout order and the steps in order.
// finish() checks every plan rule and throws ordo::error naming the first one broken.
class plan_builder {
public:
    constexpr plan_builder(grid_shape g, index_t prefix, mask_mode mask = mask_mode::step_causal) {
        if (prefix < 1) throw error("prefix must be >= 1 (the first token is predicted from the last prefix row), got " + detail::itos(prefix));
        if (prefix > max_prefix)
            throw error("prefix " + detail::itos(prefix) + " is longer than the " + detail::itos(max_prefix) + " rows a plan may have (ordo::max_prefix)");
        const index_t n = g.size();
        n_ = n;
        p_.header_.grid = g;
        p_.header_.prefix = prefix;
        p_.header_.mask = mask;
        // Sizes every valid plan stays within (each position emitted once, each slot fed at most
        // once, at most n steps), so the built-in policies never regrow these arrays; contribs_ is
        // sized by set_heads, which they all call. finish() gives back what a plan leaves unused.
        p_.slots_.reserve(static_cast<std::size_t>(n + prefix) + transition_room);
        // (+ one stand-in per row: ZipAR; a query-row plan regrows it once)
        p_.fed_.reserve(static_cast<std::size_t>(n + prefix) + transition_room + static_cast<std::size_t>(g.frames()) * static_cast<std::size_t>(g.rows()));
        p_.order_.reserve(static_cast<std::size_t>(n));
        p_.contrib_offsets_.reserve(static_cast<std::size_t>(n) + 1);
        p_.fed_offsets_.reserve(static_cast<std::size_t>(n) + 1);
        p_.emit_offsets_.reserve(static_cast<std::size_t>(n) + 1);
        p_.slot_of_.assign(static_cast<std::size_t>(n), -1);
        for (index_t i = 0; i < prefix; ++i) p_.slots_.push_back({i, slot_kind::prefix});
        p_.fed_offsets_.push_back(0);
        p_.emit_offsets_.push_back(0);
        p_.contrib_offsets_.push_back(0);
    }

    constexpr const grid_shape& grid() const { return p_.header_.grid; }
    constexpr index_t prefix() const { return p_.header_.prefix; }
    constexpr index_t num_slots() const { return static_cast<index_t>(p_.slots_.size()); }
    constexpr slot_entry slot_entry_at(index_t slot) const {
        if (slot < 0 || slot >= num_slots()) fail_fed_slot(slot);
        return p_.slots_[static_cast<std::size_t>(slot)];
    }

    // --- plan-wide settings (the policy's conventions; the mask mode is the policy type's) ---
    constexpr void set_encoding(position_encoding e) { p_.header_.encoding = e; }
    constexpr void set_query_mode(query_mode m) { p_.header_.queries = m; }
    constexpr void set_forcing(teacher_forcing f) { p_.header_.forcing = f; }
    constexpr void set_heads(std::initializer_list<std::string_view> names) { set_heads(std::span<const std::string_view>(names.begin(), names.size())); }
    constexpr void set_heads(std::span<const std::string_view> names) {
        if (names.size() < 1 || names.size() > static_cast<std::size_t>(max_heads))
            throw error("a plan has 1 to " + detail::itos(max_heads) + " heads");
        p_.header_.num_heads = static_cast<index_t>(names.size());
        // room for one term per head and position (what the built-in policies emit at most)
        p_.contribs_.reserve(static_cast<std::size_t>(n_) * names.size());
        std::size_t i = 0;
        for (auto n : names) p_.header_.head_names[i++] = head_name(n);
        for (; i < static_cast<std::size_t>(max_heads); ++i) p_.header_.head_names[i] = head_name();
    }

    // --- slot layout ---
    ORDO_DETAIL_HOT constexpr index_t add_token_slot(index_t pos) {
        check_pos(pos, "add_token_slot");
        index_t& so = p_.slot_of_[static_cast<std::size_t>(pos)];
        if (so != -1) [[unlikely]] fail_two_slots(pos);
        const index_t s = num_slots();
        p_.slots_.push_back({pos, slot_kind::token});
        so = s;
        return s;
    }
    // A slot holding the query token of position `pos` (RandAR's P slot): fed its own content in
    // any step, at most once; it rotates with pos.
    constexpr index_t add_query_slot(index_t pos) {
        check_pos(pos, "add_query_slot");
        check_slot_room("add_query_slot");
        const index_t s = num_slots();
        p_.slots_.push_back({pos, slot_kind::query});
        return s;
    }
    constexpr index_t add_transition_slot() {
        check_slot_room("add_transition_slot");
        index_t s = num_slots();
        p_.slots_.push_back({++p_.header_.num_transitions, slot_kind::transition});
        return s;
    }
    ORDO_DETAIL_HOT constexpr index_t slot_of(index_t pos) const {
        check_pos(pos, "slot_of");
        return p_.slot_of_[static_cast<std::size_t>(pos)];
    }

    // --- steps ---
    ORDO_DETAIL_HOT constexpr void begin_step() {
        if (open_) close_step();
        open_ = true;
        step_rows_ = 0;
    }
    // Feeds a slot in the open step; returns its row within the step.
    ORDO_DETAIL_HOT constexpr index_t feed(index_t slot) {
        require_open("feed");
        if (slot < 0 || slot >= num_slots()) [[unlikely]] fail_fed_slot(slot);
        p_.fed_.push_back(slot);
        return step_rows_++;
    }
    // Feeds token slot `slot` in the open step with a copy of slot `copy_of`'s content (a prefix
    // row or a token) instead of its own (see stand_in_entry); returns its row within the step.
    constexpr index_t feed_stand_in(index_t slot, index_t copy_of) {
        require_open("feed_stand_in");
        if (slot < 0 || slot >= num_slots() || p_.slots_[static_cast<std::size_t>(slot)].kind != slot_kind::token)
            throw error("feed_stand_in: a stand-in is written into a token slot; slot " + detail::itos(slot) + " is not one");
        if (copy_of < 0 || copy_of >= num_slots() || p_.slots_[static_cast<std::size_t>(copy_of)].kind == slot_kind::transition)
            throw error("feed_stand_in: a stand-in copies a prefix or token slot; slot " + detail::itos(copy_of) + " is neither");
        p_.stand_ins_.push_back({static_cast<index_t>(p_.fed_.size()), copy_of});
        ++p_.header_.num_stand_ins;
        return feed(slot);
    }
    // Feeds token slot `slot` in the open step with the query token of position `target` (see
    // query_entry); returns its row within the step.
    constexpr index_t feed_query(index_t slot, index_t target) {
        require_open("feed_query");
        if (slot < 0 || slot >= num_slots() ||
            (p_.slots_[static_cast<std::size_t>(slot)].kind != slot_kind::token && p_.slots_[static_cast<std::size_t>(slot)].kind != slot_kind::query))
            throw error("feed_query: a query is written into a token or query slot; slot " + detail::itos(slot) + " is neither");
        check_pos(target, "feed_query");
        if (p_.slots_[static_cast<std::size_t>(slot)] == slot_entry{target, slot_kind::query})
            throw error("feed_query: slot " + detail::itos(slot) + " is position " + detail::itos(target) + "'s own query slot: feed() it");
        p_.queries_.push_back({static_cast<index_t>(p_.fed_.size()), target});
        ++p_.header_.num_queries;
        return feed(slot);
    }
    // Emits a position in the open step, mixed from rows of this step.
    template <class It>
    ORDO_DETAIL_HOT constexpr void emit(index_t pos, It first, It last) {
        require_open("emit");
        check_pos(pos, "emit");
        p_.order_.push_back(pos);
        const index_t heads = p_.header_.num_heads;
        for (; first != last; ++first) {
            const source& f = *first;
            if (f.row < 0 || f.row > 0xFFFF) [[unlikely]] fail_row(f.row);
            if (f.head < 0 || f.head >= heads) [[unlikely]] fail_head(f.head, heads);
            p_.contribs_.push_back({static_cast<std::uint16_t>(f.row), static_cast<std::uint8_t>(f.head), 0, f.weight});
        }
        p_.contrib_offsets_.push_back(static_cast<index_t>(p_.contribs_.size()));
    }
    // (after the template: clang needs a constexpr function template defined before a constexpr use)
    ORDO_DETAIL_HOT constexpr void emit(index_t pos, std::initializer_list<source> from) { emit(pos, from.begin(), from.end()); }

    // Checks the plan rules and hands the plan over.
    constexpr plan finish() && {
        if (open_) close_step();
        plan_header& h = p_.header_;
        h.num_steps = static_cast<index_t>(p_.fed_offsets_.size()) - 1;
        h.num_slots = num_slots();
        validate();
        h.train_slots = h.num_slots - (h.forcing == teacher_forcing::shifted ? 1 : 0);
        // give back reserve a plan left unused (far fewer steps than positions, fewer terms than heads)
        if (p_.fed_offsets_.capacity() - p_.fed_offsets_.size() > unused_limit) {
            p_.fed_offsets_.shrink_to_fit();
            p_.emit_offsets_.shrink_to_fit();
        }
        if (p_.contribs_.capacity() - p_.contribs_.size() > unused_limit + p_.contribs_.size() / 2) p_.contribs_.shrink_to_fit();
        return static_cast<plan&&>(p_);
    }

private:
    // Every plan rule, stated once and checked in one pass; throws ordo::error naming the first
    // rule broken. Fills rank_of_, step_of_ and fed_step_. Messages are built only on failure.
    constexpr void validate() {
        plan_header& h = p_.header_;
        const index_t n = n_, steps = h.num_steps;
        if (steps < 1) [[unlikely]] fail_rule("policy produced no steps");
        for (index_t q = 0; q < n; ++q)
            if (p_.slot_of_[static_cast<std::size_t>(q)] < 0) [[unlikely]] fail_rule("policy gave position " + detail::itos(q) + " no slot");

        const index_t* const fed_off = p_.fed_offsets_.data();
        const index_t* const emit_off = p_.emit_offsets_.data();
        const index_t* const order = p_.order_.data();
        const index_t* const c_off = p_.contrib_offsets_.data();
        const contribution* const contribs = p_.contribs_.data();
        p_.rank_of_.assign(static_cast<std::size_t>(n), -1);
        p_.step_of_.assign(static_cast<std::size_t>(n), -1);
        index_t* const rank = p_.rank_of_.data();
        index_t* const step = p_.step_of_.data();

        // Each step feeds a row and emits a position; each position is emitted once, mixed from
        // rows of its step with weights in (0, 1] summing to 1.
        for (index_t s = 0; s < steps; ++s) {
            const index_t rows = fed_off[s + 1] - fed_off[s];
            if (rows < 1) [[unlikely]] fail_rule("step " + detail::itos(s) + " feeds no row");
            if (emit_off[s + 1] == emit_off[s]) [[unlikely]] fail_rule("step " + detail::itos(s) + " emits no position");
            for (index_t k = emit_off[s]; k < emit_off[s + 1]; ++k) {
                const index_t q = order[k];
                if (rank[q] != -1) [[unlikely]]
                    fail_rule("policy emitted position " + detail::itos(q) + " twice (steps " + detail::itos(step[q]) + " and " + detail::itos(s) + ")");
                rank[q] = k;
                step[q] = s;
                const index_t b = c_off[k], e = c_off[k + 1];
                if (e - b == 1 && contribs[b].weight == 1.0f && contribs[b].row < rows) continue;  // the common single full-weight term
                if (b == e) [[unlikely]] fail_rule("position " + detail::itos(q) + " is emitted from no row");
                double sum = 0;
                for (index_t c = b; c < e; ++c) {
                    const contribution cc = contribs[c];
                    if (cc.row >= rows) [[unlikely]]
                        fail_rule("position " + detail::itos(q) + " reads row " + detail::itos(cc.row) + " but step " + detail::itos(s) + " feeds " + detail::itos(rows));
                    if (!(cc.weight > 0.0f) || cc.weight > 1.0f) [[unlikely]]
                        fail_rule("position " + detail::itos(q) + " has a contribution weight outside (0, 1]");
                    sum += cc.weight;
                }
                if (sum < 1.0 - 1e-5 || sum > 1.0 + 1e-5) [[unlikely]] fail_rule("contribution weights of position " + detail::itos(q) + " do not sum to 1");
            }
        }
        // no position emitted twice (checked above), so n emissions cover every position
        if (static_cast<index_t>(p_.order_.size()) != n) [[unlikely]]
            for (index_t q = 0; q < n; ++q)
                if (rank[q] < 0) fail_rule("policy never emitted position " + detail::itos(q));

        // Each slot is fed its own content at most once, prefix rows in step 0 and tokens after
        // their emission; before that, a token slot may be written once with a stand-in
        // (slot_causal plans only: that mask reads the cache as written, where a step-causal one
        // would date the slot by its first write) or a query (either mask: dating the slot by the
        // query is the point). fed_step is a slot's first write.
        p_.fed_step_.assign(static_cast<std::size_t>(h.num_slots), steps);
        const index_t* const fed = p_.fed_.data();
        const slot_entry* const slots = p_.slots_.data();
        index_t* const fs = p_.fed_step_.data();
        if (!p_.stand_ins_.empty() && h.mask != mask_mode::slot_causal) [[unlikely]]
            fail_rule("stand-ins need the slot_causal mask (a step-causal mask dates a slot by its first write, which a stand-in would be)");
        std::vector<index_t> own_step;  // the step of each slot's own feed, once a stand-in was written (rare: sized then)
        const stand_in_entry* si = p_.stand_ins_.data();
        const stand_in_entry* const si_end = si + p_.stand_ins_.size();
        const query_entry* qi = p_.queries_.data();
        const query_entry* const qi_end = qi + p_.queries_.size();
        for (index_t s = 0; s < steps; ++s)
            for (index_t r = fed_off[s]; r < fed_off[s + 1]; ++r) {
                const index_t slot = fed[r];
                const bool stand_in = si != si_end && si->fed_row == r;
                if (qi != qi_end && qi->fed_row == r) {
                    if (stand_in) [[unlikely]] fail_rule("fed row " + detail::itos(r) + " is both a stand-in and a query");
                    if (step[qi->target] != s) [[unlikely]]
                        fail_rule("step " + detail::itos(s) + " feeds a query for position " + detail::itos(qi->target) + ", which step " +
                                  detail::itos(step[qi->target]) + " emits (a query predicts a position of its own step)");
                    if (h.queries == query_mode::cross) {  // not written: its slot only names its target's
                        ++qi;
                        continue;
                    }
                    const index_t target = slots[slot].index;
                    if (step[target] < s) [[unlikely]]
                        fail_rule("step " + detail::itos(s) + " writes a query into the slot of position " + detail::itos(target) + ", which step " +
                                  detail::itos(step[target]) + " emitted (the slot must not hold its token yet)");
                    if (fs[slot] != steps) [[unlikely]]
                        fail_rule("step " + detail::itos(s) + " writes a query into slot " + detail::itos(slot) + ", already written in step " +
                                  detail::itos(fs[slot]) + " (one stand-in or query a slot)");
                    ++qi;
                    if (own_step.empty()) own_step.assign(fs, fs + h.num_slots);
                    fs[slot] = s;
                    continue;
                }
                if (stand_in) {
                    const slot_entry c = slots[si->copy_of];
                    if (c.kind == slot_kind::token && step[c.index] >= s) [[unlikely]]
                        fail_rule("step " + detail::itos(s) + " feeds a stand-in that copies position " + detail::itos(c.index) + " before it is emitted (step " +
                                  detail::itos(step[c.index]) + ")");
                    // it stands in for a token not decoded yet (so its own feed, after that, comes later)
                    const index_t target = slots[slot].index;
                    if (step[target] < s) [[unlikely]]
                        fail_rule("step " + detail::itos(s) + " writes a stand-in into the slot of position " + detail::itos(target) +
                                  ", which step " + detail::itos(step[target]) + " emitted (a stand-in stands in for a token not decoded yet)");
                    // one stand-in a slot: a second one (in one step, two writes of one cache row) has no order
                    if (fs[slot] != steps) [[unlikely]]
                        fail_rule("step " + detail::itos(s) + " writes a second stand-in into slot " + detail::itos(slot) + " (the first in step " +
                                  detail::itos(fs[slot]) + "; one stand-in or query a slot)");
                    ++si;
                    if (own_step.empty()) own_step.assign(fs, fs + h.num_slots);  // so far every write was a slot's own feed
                    fs[slot] = s;
                    continue;
                }
                if (fs[slot] != steps) {
                    if (own_step.empty() || own_step[static_cast<std::size_t>(slot)] != steps) [[unlikely]]
                        fail_rule("slot " + detail::itos(slot) + " is fed twice (steps " + detail::itos(own_step.empty() ? fs[slot] : own_step[static_cast<std::size_t>(slot)]) +
                                  " and " + detail::itos(s) + ")");
                    // a stand-in or query written into this slot in this very step: two writes of one cache row in one step have no order
                    if (fs[slot] == s) [[unlikely]]
                        fail_rule("step " + detail::itos(s) + " writes slot " + detail::itos(slot) + " twice (a stand-in or query, then its own content)");
                } else {
                    fs[slot] = s;
                }
                if (!own_step.empty()) own_step[static_cast<std::size_t>(slot)] = s;
                const slot_entry e = slots[slot];
                if (!fed_in_time(e, s, step)) [[unlikely]] fail_fed_early(e, slot, s);
            }
        if (si != si_end) [[unlikely]] fail_rule("stand-in rows must be listed in fed-row order, each once");
        if (qi != qi_end) [[unlikely]] fail_rule("query rows must be listed in fed-row order, each once");
        for (index_t i = 0; i < h.prefix; ++i)
            if (fs[i] != 0) [[unlikely]] fail_rule("step 0 must feed every prefix row; row " + detail::itos(i) + " is missing");

        // teacher forcing: shifted drops the last slot, which must be a token the decode never feeds
        if (h.forcing == teacher_forcing::shifted) {
            const index_t last = h.num_slots - 1;
            if (p_.slots_[static_cast<std::size_t>(last)].kind != slot_kind::token || fs[last] != steps) [[unlikely]]
                fail_rule("shifted teacher forcing needs the last slot to hold a token that is never fed");
        }
    }
    template <int = 0>
    [[noreturn]] ORDO_DETAIL_COLD constexpr void fail_fed_early(const slot_entry& e, index_t slot, index_t s) const {
        if (e.kind == slot_kind::prefix)
            fail_rule("prefix slot " + detail::itos(slot) + " fed in step " + detail::itos(s) + " (prefix rows belong to step 0)");
        fail_rule("step " + detail::itos(s) + " feeds position " + detail::itos(e.index) + " before it is emitted (step " +
                  detail::itos(p_.step_of_[static_cast<std::size_t>(e.index)]) + ")");
    }

    // May slot entry e be fed its own content in step s? (step_of: the step of every position)
    static constexpr bool fed_in_time(const slot_entry& e, index_t s, const index_t* step_of) {
        switch (e.kind) {
            case slot_kind::token: return step_of[e.index] < s;
            case slot_kind::prefix: return s == 0;
            case slot_kind::transition: return true;
            case slot_kind::query: return true;  // a query needs nothing decoded
        }
        return false;
    }

    constexpr void check_slot_room(const char* what) const {
        if (num_slots() >= max_plan_slots)
            throw error(std::string(what) + ": the plan already has " + detail::itos(max_plan_slots) + " slots (ordo::max_plan_slots)");
    }
    ORDO_DETAIL_HOT constexpr void check_pos(index_t pos, const char* what) const {
        if (pos < 0 || pos >= n_) [[unlikely]] fail_pos(what, pos, n_);
    }
    ORDO_DETAIL_HOT constexpr void require_open(const char* what) const {
        if (!open_) [[unlikely]] fail_not_open(what);
    }
    ORDO_DETAIL_HOT constexpr void close_step() {
        p_.fed_offsets_.push_back(static_cast<index_t>(p_.fed_.size()));
        p_.emit_offsets_.push_back(static_cast<index_t>(p_.order_.size()));
        open_ = false;
    }

    // Cold throw helpers. Templates, because a non-template constexpr function that always throws
    // is ill-formed before C++23.
    template <int = 0>
    [[noreturn]] ORDO_DETAIL_COLD static constexpr void fail_rule(const std::string& what) {
        throw error(what);
    }
    template <int = 0>
    [[noreturn]] ORDO_DETAIL_COLD static constexpr void fail_pos(const char* what, index_t pos, index_t n) {
        throw error(std::string(what) + ": position " + detail::itos(pos) + " is outside the " + detail::itos(n) + "-token grid");
    }
    template <int = 0>
    [[noreturn]] ORDO_DETAIL_COLD static constexpr void fail_not_open(const char* what) {
        throw error(std::string(what) + " called before begin_step()");
    }
    template <int = 0>
    [[noreturn]] ORDO_DETAIL_COLD static constexpr void fail_two_slots(index_t pos) {
        throw error("policy gave position " + detail::itos(pos) + " two slots");
    }
    template <int = 0>
    [[noreturn]] ORDO_DETAIL_COLD static constexpr void fail_fed_slot(index_t slot) {
        throw error("policy fed slot " + detail::itos(slot) + " which is not in the layout");
    }
    template <int = 0>
    [[noreturn]] ORDO_DETAIL_COLD static constexpr void fail_row(index_t row) {
        throw error("contribution row " + detail::itos(row) + " is outside 0..65535");
    }
    template <int = 0>
    [[noreturn]] ORDO_DETAIL_COLD static constexpr void fail_head(index_t head, index_t heads) {
        throw error("contribution head " + detail::itos(head) + " is not one of the plan's " + detail::itos(heads) + " heads");
    }

    static constexpr std::size_t transition_room = 64;  // slots reserved beyond prefix + tokens
    static constexpr std::size_t unused_limit = 1024;   // spare entries finish() leaves in place
    plan p_{};
    bool open_ = false;
    index_t step_rows_ = 0;
    index_t n_ = 0;  // grid size
};

// A plan with fixed-size array storage, for a plan that is itself a constexpr value
// (see make_static_plan in policy.hpp). Same view, same algorithms.
template <index_t Slots, index_t Steps, index_t Fed, index_t Positions, index_t Contribs, index_t StandIns, index_t Queries>
class static_plan {
public:
    constexpr static_plan() = default;
    constexpr explicit static_plan(const plan& p) : header_(p.header_) {
        if (p.slots_.size() != Slots || static_cast<index_t>(p.fed_offsets_.size()) != Steps + 1 || p.fed_.size() != Fed ||
            p.order_.size() != Positions || p.contribs_.size() != Contribs || p.stand_ins_.size() != StandIns ||
            p.queries_.size() != Queries)
            throw error("static_plan sizes do not match the plan");
        std::copy(p.slots_.begin(), p.slots_.end(), slots_.begin());
        std::copy(p.fed_step_.begin(), p.fed_step_.end(), fed_step_.begin());
        std::copy(p.fed_offsets_.begin(), p.fed_offsets_.end(), fed_offsets_.begin());
        std::copy(p.fed_.begin(), p.fed_.end(), fed_.begin());
        std::copy(p.emit_offsets_.begin(), p.emit_offsets_.end(), emit_offsets_.begin());
        std::copy(p.order_.begin(), p.order_.end(), order_.begin());
        std::copy(p.contrib_offsets_.begin(), p.contrib_offsets_.end(), contrib_offsets_.begin());
        std::copy(p.contribs_.begin(), p.contribs_.end(), contribs_.begin());
        std::copy(p.rank_of_.begin(), p.rank_of_.end(), rank_of_.begin());
        std::copy(p.step_of_.begin(), p.step_of_.end(), step_of_.begin());
        std::copy(p.slot_of_.begin(), p.slot_of_.end(), slot_of_.begin());
        std::copy(p.stand_ins_.begin(), p.stand_ins_.end(), stand_ins_.begin());
        std::copy(p.queries_.begin(), p.queries_.end(), queries_.begin());
    }
    constexpr operator plan_view() const { return view(); }
    constexpr plan_view view() const {
        return {header_, slots_, fed_step_, fed_offsets_, fed_, emit_offsets_, order_,
                contrib_offsets_, contribs_, rank_of_, step_of_, slot_of_, stand_ins_, queries_};
    }
    constexpr index_t num_steps() const { return Steps; }
    constexpr index_t num_slots() const { return Slots; }
    constexpr step_view step(index_t s) const { return view().step(s); }

private:
    plan_header header_{};
    std::array<slot_entry, Slots> slots_{};
    std::array<index_t, Slots> fed_step_{};
    std::array<index_t, Steps + 1> fed_offsets_{};
    std::array<index_t, Fed> fed_{};
    std::array<index_t, Steps + 1> emit_offsets_{};
    std::array<index_t, Positions> order_{};
    std::array<index_t, Positions + 1> contrib_offsets_{};
    std::array<contribution, Contribs> contribs_{};
    std::array<index_t, Positions> rank_of_{}, step_of_{}, slot_of_{};
    std::array<stand_in_entry, StandIns> stand_ins_{};
    std::array<query_entry, Queries> queries_{};
};

// A temporary plan that owns its arrays (a plan or static_plan prvalue or xvalue): its plan_view
// dangles once the full expression ends. What keeps a view (session, make_mask's predicate) has
// an overload for these that fails to compile with the message below.
template <class P>
concept temporary_plan = !std::is_lvalue_reference_v<P> && !std::same_as<std::remove_cvref_t<P>, plan_view> &&
                         std::convertible_to<const std::remove_cvref_t<P>&, plan_view>;

namespace detail {
template <class>
inline constexpr bool dangling_plan = false;  // dependent false: the static_assert fires only if chosen
}  // namespace detail

}  // namespace ordo
