// ordo/plan.hpp - a plan: everything a policy decides for one grid, as compact read-only arrays.
//
// Layout (CSR throughout, all index_t unless noted):
//   slots[num_slots]          what each slot holds (prefix row / token of a position / transition token)
//   fed_step[num_slots]       the step that feeds each slot (num_steps for slots only teacher forcing feeds);
//                             this one array is the whole mask (see mask.hpp)
//   fed_offsets[steps+1], fed[...]          per step, the slots fed (row r of the step = fed[r])
//   emit_offsets[steps+1], order[N]         per step, the positions emitted (order = the permutation)
//   contrib_offsets[N+1], contribs[...]     per emitted position, the (row, head, weight) it is mixed from
//   rank_of[N], step_of[N], slot_of[N]      per position: emission rank, step, slot
// Building is constexpr (transient std::vector); iterating a step allocates nothing.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"
#include "grid.hpp"

// Error paths are kept out of line so the builder's per-token calls stay small and inlinable.
#if !defined(ORDO_DETAIL_COLD)
#if defined(__GNUC__) || defined(__clang__)
#define ORDO_DETAIL_COLD [[gnu::cold, gnu::noinline]]
#else
#define ORDO_DETAIL_COLD
#endif
#endif
// ...and the per-token builder calls are inlined into the policies' loops (the built-in
// policies' build() also inlines everything it calls, vector appends included).
#if !defined(ORDO_DETAIL_HOT)
#if defined(__GNUC__) || defined(__clang__)
#define ORDO_DETAIL_HOT [[gnu::always_inline]] inline
#else
#define ORDO_DETAIL_HOT inline
#endif
#endif
#if !defined(ORDO_DETAIL_FLATTEN)
#if defined(__GNUC__) || defined(__clang__)
#define ORDO_DETAIL_FLATTEN [[gnu::flatten]]
#else
#define ORDO_DETAIL_FLATTEN
#endif
#endif

namespace ordo {

// A stand-in carries a copy of another slot's content rotated at another position: ZipAR starts a
// row by feeding one at the slot of the row's raster predecessor, which is not decoded yet.
// Stand-ins are query rows only (no teacher forcing feeds them) and sit at the end of the layout.
enum class slot_kind : std::uint8_t { prefix, token, transition, stand_in };

// What a slot holds: prefix row `index`, the token of position `index`, transition token M_index
// (1-based), or stand-in number `index` (see plan_view::stand_ins).
struct slot_entry {
    index_t index = 0;
    slot_kind kind = slot_kind::prefix;
    friend constexpr bool operator==(const slot_entry&, const slot_entry&) = default;
};

// How a query slot sees kv slots (compile-time per policy, stored for type-erased use):
//  step_causal: kv visible iff fed_step[kv] <= fed_step[q]  (causal by step, bidirectional in a step)
//  slot_causal: additionally kv <= q                        (raster-trained models run out of order, ZipAR)
enum class mask_mode : std::uint8_t { step_causal, slot_causal };

// rope: token slots rotate with their own grid coordinates, prefix/transition slots get zero rows
// (cos = sin = 0, the LlamaGen quirk); absolute: learned absolute embedding indexed by slot (NAR video).
enum class position_encoding : std::uint8_t { rope, absolute };

// shifted: teacher forcing feeds z[:-1] (the last slot is not fed; LlamaGen, PAR);
// full: it feeds every token (NAR).
enum class teacher_forcing : std::uint8_t { shifted, full };

inline constexpr int max_heads = 4;

// Stand-in number i: a copy of slot `copy_of`'s content, rotated at grid position `at`.
struct stand_in_entry {
    index_t copy_of = 0;
    index_t at = 0;
    friend constexpr bool operator==(const stand_in_entry&, const stand_in_entry&) = default;
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
    index_t num_heads = 1;
    mask_mode mask = mask_mode::step_causal;
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
    const index_t* contrib_offsets = nullptr;
    const contribution* contribs = nullptr;

    constexpr index_t num_rows() const { return static_cast<index_t>(fed.size()); }
    constexpr index_t num_emitted() const { return static_cast<index_t>(emitted.size()); }
    // contributions of emitted[i]
    constexpr std::span<const contribution> from(index_t i) const {
        index_t b = contrib_offsets[first_rank + i], e = contrib_offsets[first_rank + i + 1];
        return {contribs + b, static_cast<std::size_t>(e - b)};
    }
};

// Read-only view of a plan's arrays. Every algorithm (masks, JSON, step maps) takes this.
struct plan_view {
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
};

// Rotary coordinates of a slot: the token's own grid cell, or zero rotation.
struct rope_coord {
    bool zero = true;
    coord at{};
};
constexpr rope_coord rope_of(const plan_view& p, index_t slot) {
    const slot_entry& e = p.slots[static_cast<std::size_t>(slot)];
    if (e.kind == slot_kind::token) return {false, p.grid().at(e.index)};
    if (e.kind == slot_kind::stand_in) return {false, p.grid().at(p.stand_ins[static_cast<std::size_t>(e.index)].at)};
    return {};
}

// Owning plan (vectors). Built by make_plan (policy.hpp) through plan_builder.
class plan {
public:
    constexpr plan() = default;
    constexpr operator plan_view() const { return view(); }
    constexpr plan_view view() const {
        return {header_, slots_, fed_step_, fed_offsets_, fed_, emit_offsets_, order_,
                contrib_offsets_, contribs_, rank_of_, step_of_, slot_of_, stand_ins_};
    }
    constexpr const plan_header& header() const { return header_; }
    constexpr index_t num_steps() const { return header_.num_steps; }
    constexpr index_t num_slots() const { return header_.num_slots; }
    constexpr step_view step(index_t s) const { return view().step(s); }
    // Bytes held by the plan's arrays (what a plan costs to keep around).
    constexpr std::size_t bytes() const {
        return slots_.size() * sizeof(slot_entry) + contribs_.size() * sizeof(contribution) +
               stand_ins_.size() * sizeof(stand_in_entry) +
               (fed_step_.size() + fed_offsets_.size() + fed_.size() + emit_offsets_.size() + order_.size() +
                contrib_offsets_.size() + rank_of_.size() + step_of_.size() + slot_of_.size()) * sizeof(index_t);
    }

private:
    friend class plan_builder;
    template <index_t, index_t, index_t, index_t, index_t, index_t>
    friend class static_plan;
    plan_header header_{};
    std::vector<slot_entry> slots_;
    std::vector<index_t> fed_step_, fed_offsets_, fed_, emit_offsets_, order_, contrib_offsets_;
    std::vector<contribution> contribs_;
    std::vector<index_t> rank_of_, step_of_, slot_of_;
    std::vector<stand_in_entry> stand_ins_;
};

// What a policy's build() writes into. The prefix slots [0, prefix) are laid out on construction;
// the policy then adds token and transition slots in layout order and the steps in order.
// finish() checks every plan rule and throws ordo::error naming the first one broken.
class plan_builder {
public:
    constexpr plan_builder(grid_shape g, index_t prefix, mask_mode mask = mask_mode::step_causal) {
        if (prefix < 1) throw error("prefix must be >= 1 (the first token is predicted from the last prefix row), got " + detail::itos(prefix));
        detail::checked_add(g.size(), prefix, "grid size + prefix");
        const index_t n = g.size();
        n_ = n;
        p_.header_.grid = g;
        p_.header_.prefix = prefix;
        p_.header_.mask = mask;
        // Sizes every valid plan stays within (each position emitted once, each slot fed at most
        // once, at most n steps), so the built-in policies never regrow these arrays; contribs_ is
        // sized by set_heads, which they all call. finish() gives back what a plan leaves unused.
        p_.slots_.reserve(static_cast<std::size_t>(n + prefix) + transition_room);
        p_.fed_.reserve(static_cast<std::size_t>(n + prefix) + transition_room);
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

    // --- plan-wide settings (the policy's conventions; the mask mode is the policy type's) ---
    constexpr void set_encoding(position_encoding e) { p_.header_.encoding = e; }
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
    constexpr index_t add_transition_slot() {
        index_t s = num_slots();
        p_.slots_.push_back({++p_.header_.num_transitions, slot_kind::transition});
        return s;
    }
    // A stand-in: slot `copy_of`'s content (a prefix row or a token) rotated at position `at`.
    // Stand-ins come after every other slot.
    constexpr index_t add_stand_in_slot(index_t copy_of, index_t at) {
        check_pos(at, "add_stand_in_slot");
        if (copy_of < 0 || copy_of >= num_slots() ||
            (p_.slots_[static_cast<std::size_t>(copy_of)].kind != slot_kind::prefix && p_.slots_[static_cast<std::size_t>(copy_of)].kind != slot_kind::token))
            throw error("a stand-in copies a prefix or token slot; slot " + detail::itos(copy_of) + " is neither");
        const index_t s = num_slots();
        p_.slots_.push_back({p_.header_.num_stand_ins++, slot_kind::stand_in});
        p_.stand_ins_.push_back({copy_of, at});
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
        // One pass that fills rank_of/step_of/fed_step and accepts only valid plans; on anything
        // else the full rule-by-rule check runs and throws the first broken rule.
        if (!validate_fast()) validate_rules();
        h.train_slots = h.num_slots - h.num_stand_ins - (h.forcing == teacher_forcing::shifted ? 1 : 0);
        // give back reserve a plan left unused (far fewer steps than positions, fewer terms than heads)
        if (p_.fed_offsets_.capacity() - p_.fed_offsets_.size() > unused_limit) {
            p_.fed_offsets_.shrink_to_fit();
            p_.emit_offsets_.shrink_to_fit();
        }
        if (p_.contribs_.capacity() - p_.contribs_.size() > unused_limit + p_.contribs_.size() / 2) p_.contribs_.shrink_to_fit();
        return static_cast<plan&&>(p_);
    }

private:
    // True iff every plan rule holds (then rank_of_, step_of_ and fed_step_ are filled exactly as
    // validate_rules() fills them). False says only that some rule is broken.
    constexpr bool validate_fast() {
        const plan_header& h = p_.header_;
        const index_t n = n_, steps = h.num_steps;
        if (steps < 1) return false;
        // with no position emitted twice (checked below), n emissions cover every position
        if (static_cast<index_t>(p_.order_.size()) != n) return false;
        index_t lowest = 0;
        for (index_t s : p_.slot_of_) lowest = std::min(lowest, s);
        if (lowest < 0) return false;

        const index_t* const fed_off = p_.fed_offsets_.data();
        const index_t* const emit_off = p_.emit_offsets_.data();
        const index_t* const order = p_.order_.data();
        const index_t* const c_off = p_.contrib_offsets_.data();
        const contribution* const contribs = p_.contribs_.data();
        p_.rank_of_.assign(static_cast<std::size_t>(n), -1);
        p_.step_of_.assign(static_cast<std::size_t>(n), -1);
        index_t* const rank = p_.rank_of_.data();
        index_t* const step = p_.step_of_.data();

        // Emissions in rank order (flat, with a step cursor): each position once, every step
        // non-empty and feeding a row; contributions read rows of their step, weights in (0, 1]
        // summing to 1.
        index_t s = 0, next = emit_off[1], rows = fed_off[1] - fed_off[0];
        if (next == 0 || rows < 1) return false;
        for (index_t k = 0; k < n; ++k) {
            if (k == next) {  // k opens the next step (k < n, so there is one)
                ++s;
                next = emit_off[s + 1];
                rows = fed_off[s + 1] - fed_off[s];
                if (next == k || rows < 1) return false;
            }
            const index_t q = order[k];
            if (rank[q] != -1) return false;
            rank[q] = k;
            step[q] = s;
            const index_t b = c_off[k], e = c_off[k + 1];
            if (e - b == 1 && contribs[b].weight == 1.0f) {  // the common single full-weight term
                if (contribs[b].row >= rows) return false;
                continue;
            }
            if (b == e) return false;
            double sum = 0;
            for (index_t c = b; c < e; ++c) {
                const contribution cc = contribs[c];
                if (cc.row >= rows || !(cc.weight > 0.0f) || cc.weight > 1.0f) return false;
                sum += cc.weight;
            }
            if (sum < 1.0 - 1e-5 || sum > 1.0 + 1e-5) return false;
        }
        if (s != steps - 1) return false;  // trailing steps emit nothing

        // Fed slots in row order (every step feeds >= 1 row, checked above): each at most once;
        // prefix only in step 0, tokens only after their emission.
        p_.fed_step_.assign(static_cast<std::size_t>(h.num_slots), steps);
        const index_t* const fed = p_.fed_.data();
        const slot_entry* const slots = p_.slots_.data();
        index_t* const fs = p_.fed_step_.data();
        const index_t num_fed = static_cast<index_t>(p_.fed_.size());
        s = 0;
        next = fed_off[1];
        for (index_t r = 0; r < num_fed; ++r) {
            if (r == next) next = fed_off[++s + 1];
            const index_t slot = fed[r];
            if (fs[slot] != steps) return false;
            fs[slot] = s;
            const slot_entry e = slots[slot];
            if (!fed_in_time(e, s, step)) return false;
        }
        for (index_t i = 0; i < h.prefix; ++i)
            if (fs[i] != 0) return false;
        if (!stand_ins_last()) return false;
        if (h.forcing == teacher_forcing::shifted) {
            const index_t last = h.num_slots - h.num_stand_ins - 1;
            if (p_.slots_[static_cast<std::size_t>(last)].kind != slot_kind::token || fs[last] != steps) return false;
        }
        return true;
    }

    // Every plan rule in turn; throws ordo::error naming the first one broken.
    ORDO_DETAIL_COLD constexpr void validate_rules() {
        plan_header& h = p_.header_;
        const index_t n = h.grid.size();
        if (h.num_steps < 1) throw error("policy produced no steps");
        for (index_t q = 0; q < n; ++q)
            if (p_.slot_of_[static_cast<std::size_t>(q)] < 0) throw error("policy gave position " + detail::itos(q) + " no slot");

        // each position emitted exactly once; record rank and step
        p_.rank_of_.assign(static_cast<std::size_t>(n), -1);
        p_.step_of_.assign(static_cast<std::size_t>(n), -1);
        for (index_t s = 0; s < h.num_steps; ++s)
            for (index_t k = p_.emit_offsets_[s]; k < p_.emit_offsets_[s + 1]; ++k) {
                index_t q = p_.order_[static_cast<std::size_t>(k)];
                if (p_.rank_of_[static_cast<std::size_t>(q)] != -1)
                    throw error("policy emitted position " + detail::itos(q) + " twice (steps " +
                                detail::itos(p_.step_of_[static_cast<std::size_t>(q)]) + " and " + detail::itos(s) + ")");
                p_.rank_of_[static_cast<std::size_t>(q)] = k;
                p_.step_of_[static_cast<std::size_t>(q)] = s;
            }
        for (index_t q = 0; q < n; ++q)
            if (p_.rank_of_[static_cast<std::size_t>(q)] < 0) throw error("policy never emitted position " + detail::itos(q));

        // each slot fed at most once; prefix only in step 0, tokens only after their emission
        p_.fed_step_.assign(static_cast<std::size_t>(h.num_slots), h.num_steps);
        for (index_t s = 0; s < h.num_steps; ++s) {
            index_t rows = p_.fed_offsets_[s + 1] - p_.fed_offsets_[s];
            if (rows < 1) throw error("step " + detail::itos(s) + " feeds no row");
            if (p_.emit_offsets_[s + 1] == p_.emit_offsets_[s]) throw error("step " + detail::itos(s) + " emits no position");
            for (index_t r = p_.fed_offsets_[s]; r < p_.fed_offsets_[s + 1]; ++r) {
                index_t slot = p_.fed_[static_cast<std::size_t>(r)];
                index_t& fs = p_.fed_step_[static_cast<std::size_t>(slot)];
                if (fs != h.num_steps) throw error("slot " + detail::itos(slot) + " is fed twice (steps " + detail::itos(fs) + " and " + detail::itos(s) + ")");
                fs = s;
                const slot_entry& e = p_.slots_[static_cast<std::size_t>(slot)];
                if (e.kind == slot_kind::prefix && s != 0) throw error("prefix slot " + detail::itos(slot) + " fed in step " + detail::itos(s) + " (prefix rows belong to step 0)");
                if (e.kind == slot_kind::token && p_.step_of_[static_cast<std::size_t>(e.index)] >= s)
                    throw error("step " + detail::itos(s) + " feeds position " + detail::itos(e.index) + " before it is emitted (step " +
                                detail::itos(p_.step_of_[static_cast<std::size_t>(e.index)]) + ")");
                if (e.kind == slot_kind::stand_in && !fed_in_time(e, s, p_.step_of_.data()))
                    throw error("step " + detail::itos(s) + " feeds stand-in slot " + detail::itos(slot) + " before the token it copies is emitted");
            }
            for (index_t k = p_.emit_offsets_[s]; k < p_.emit_offsets_[s + 1]; ++k) {
                index_t b = p_.contrib_offsets_[static_cast<std::size_t>(k)], e = p_.contrib_offsets_[static_cast<std::size_t>(k) + 1];
                index_t q = p_.order_[static_cast<std::size_t>(k)];
                if (b == e) throw error("position " + detail::itos(q) + " is emitted from no row");
                double sum = 0;
                for (index_t c = b; c < e; ++c) {
                    const contribution& cc = p_.contribs_[static_cast<std::size_t>(c)];
                    if (cc.row >= rows) throw error("position " + detail::itos(q) + " reads row " + detail::itos(cc.row) + " but step " + detail::itos(s) + " feeds " + detail::itos(rows));
                    if (!(cc.weight > 0.0f) || cc.weight > 1.0f) throw error("position " + detail::itos(q) + " has a contribution weight outside (0, 1]");
                    sum += cc.weight;
                }
                if (sum < 1.0 - 1e-5 || sum > 1.0 + 1e-5) throw error("contribution weights of position " + detail::itos(q) + " do not sum to 1");
            }
        }
        // prefix rows all belong to step 0
        for (index_t i = 0; i < h.prefix; ++i)
            if (p_.fed_step_[static_cast<std::size_t>(i)] != 0) throw error("step 0 must feed every prefix row; row " + detail::itos(i) + " is missing");

        if (!stand_ins_last()) throw error("stand-in slots must come after every other slot");
        // teacher forcing: shifted drops the last slot, which must be a token the decode never feeds
        if (h.forcing == teacher_forcing::shifted) {
            const index_t last = h.num_slots - h.num_stand_ins - 1;
            if (p_.slots_[static_cast<std::size_t>(last)].kind != slot_kind::token || p_.fed_step_[static_cast<std::size_t>(last)] != h.num_steps)
                throw error("shifted teacher forcing needs the last slot to hold a token that is never fed");
        }
    }

    // May slot entry e be fed in step s? (step_of: the step of every position)
    constexpr bool fed_in_time(const slot_entry& e, index_t s, const index_t* step_of) const {
        switch (e.kind) {
            case slot_kind::token: return step_of[e.index] < s;
            case slot_kind::prefix: return s == 0;
            case slot_kind::transition: return true;
            case slot_kind::stand_in: {
                const slot_entry& c = p_.slots_[static_cast<std::size_t>(p_.stand_ins_[static_cast<std::size_t>(e.index)].copy_of)];
                return c.kind == slot_kind::prefix || step_of[c.index] < s;
            }
        }
        return false;
    }
    constexpr bool stand_ins_last() const {
        const std::size_t first = p_.slots_.size() - static_cast<std::size_t>(p_.header_.num_stand_ins);
        for (std::size_t i = first; i < p_.slots_.size(); ++i)
            if (p_.slots_[i].kind != slot_kind::stand_in) return false;
        return true;
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
template <index_t Slots, index_t Steps, index_t Fed, index_t Positions, index_t Contribs, index_t StandIns>
class static_plan {
public:
    constexpr static_plan() = default;
    constexpr explicit static_plan(const plan& p) : header_(p.header_) {
        if (p.slots_.size() != Slots || static_cast<index_t>(p.fed_offsets_.size()) != Steps + 1 || p.fed_.size() != Fed ||
            p.order_.size() != Positions || p.contribs_.size() != Contribs || p.stand_ins_.size() != StandIns)
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
    }
    constexpr operator plan_view() const { return view(); }
    constexpr plan_view view() const {
        return {header_, slots_, fed_step_, fed_offsets_, fed_, emit_offsets_, order_,
                contrib_offsets_, contribs_, rank_of_, step_of_, slot_of_, stand_ins_};
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
};

}  // namespace ordo
