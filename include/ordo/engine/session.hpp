// ordo/engine/session.hpp - the decode loop, step by step: next() says what to run, commit(logits)
// consumes the result. generate() (generate.hpp) is this loop around a model; host engines that own
// the loop (continuous batching) drive sessions themselves, one per group of requests sharing a
// plan, side by side. Everything a step needs is allocated when the session is made.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "../mask.hpp"
#include "../plan.hpp"
#include "sampler.hpp"

namespace ordo {

// One request: its condition and the id that keys its random stream, so its tokens do not depend
// on which other requests share the batch. Class-conditional: `label` is the prefix row's content.
// Text-conditional: `prefix_embeddings` holds prefix x dim floats (caller-owned, alive while the
// request runs); the model embeds prefix row i of the cond half from row i of it.
// Position table: `order` (caller-owned, alive while the session is made) gives the grid cell of
// each plan position, so requests sharing one plan (a schedule: LPD's group sizes) decode their own
// orders; empty means position p is cell p. The batch then says so (per_request_positions): a model
// must read each sequence's cells (fed_input::cell), as the CPU backend's models do.
struct request {
    index_t label = 0;
    std::uint64_t id = 0;
    std::span<const float> prefix_embeddings{};
    std::span<const index_t> order{};
};

// What one fed row carries for one sequence. kind/index name the content (prefix row, position,
// transition M_index or the query of a position: the slot's own, what a stand-in row copies, or a
// query row's target); value is the id to embed: the class label (the null class in the uncond
// half) for a prefix row, the token id for a token, the transition index for M_i, -1 for a query;
// cell is the grid cell the row is at in this sequence's request (its position table): a token's
// own, a query's target's, a stand-in's slot's (where it rotates), -1 for prefix and transition
// rows (a zero rotation). It is what a model reads positions from (rope[r] is the same for every
// sequence while no request has its own order).
struct fed_input {
    slot_kind kind = slot_kind::prefix;
    index_t index = 0;
    index_t value = 0;
    index_t cell = -1;
    friend constexpr bool operator==(const fed_input&, const fed_input&) = default;
};

// Everything the model needs for one step. Sequences are [cond of every request; uncond of every
// request] (the official CFG batch); without CFG only the cond half. Sequence s serves
// requests[s % requests.size()]. Row r of every sequence goes
// to slot slots[r] with rotary coordinates rope[r] (a query row: its target's); it may attend to kv slot k iff
// visible(plan, slots[r], k) and k < kv_limit, and reads k as K = V = 0 unless
// written(plan.fed_step, k, written_through). The model writes logits[seq][row][head][vocab] (logits_size()).
struct step_batch {
    plan_view plan;
    index_t step = 0;
    index_t num_sequences = 0;
    index_t num_rows = 0;
    index_t num_heads = 0;
    index_t vocab = 0;
    std::span<const index_t> slots;
    std::span<const rope_coord> rope;
    std::span<const fed_input> inputs;  // [num_sequences * num_rows]
    std::span<const request> requests;  // the session's requests (prefix embeddings live here)
    // Only kv slots below this exist for the batch: a decode step may see every slot of the plan;
    // the teacher-forcing forward (teacher.hpp) feeds the training layout, a prefix of the slots.
    index_t kv_limit = max_index;
    // The last step whose writes the batch sees: a decode step's own (slots the plan writes later
    // read as zeros, see mask.hpp written()); the teacher-forcing forward writes its whole layout.
    index_t written_through = max_index;
    // Some request has its own order (request::order): rows sit at different cells in different
    // sequences, so rope[r] does not hold for every sequence; read each input's cell instead. A
    // backend that reads rope[r] refuses such a batch.
    bool per_request_positions = false;
    // A speculative window (jacobi.hpp) runs steps [step, step + window_steps) of a raster-like plan
    // in one batch: the fed rows of those steps in order, under the plan's (causal) mask, each step's
    // rows emitting its position as the plan says; written_through is the window's last step. A
    // model that reads only slots, rope, inputs and the mask (the GPT) needs nothing more; one that
    // reads the plan's step structure (the oracle's field model) runs every step of the window.
    index_t window_steps = 1;
    constexpr const fed_input& input(index_t seq, index_t row) const { return inputs[static_cast<std::size_t>(seq * num_rows + row)]; }
    constexpr std::size_t logits_size() const {
        return static_cast<std::size_t>(num_sequences) * static_cast<std::size_t>(num_rows) * static_cast<std::size_t>(num_heads) * static_cast<std::size_t>(vocab);
    }
};

struct session_options {
    cfg guidance{};             // classifier-free guidance (off unless scale > 1)
    std::uint64_t seed = 0;     // keys the random stream with each request's id and position
    index_t null_label = 0;     // the class label of the uncond half (LlamaGen: num_classes)
};

template <class Sampler>
class session {
public:
    session(plan_view plan, std::span<const request> requests, Sampler sampler, index_t vocab, session_options options = {})
        : plan_(plan), requests_(requests.begin(), requests.end()), sampler_(sampler), options_(options), vocab_(vocab),
          workspace_(vocab > 0 ? vocab : 1) {
        if (requests.empty()) throw error("session: no requests");
        if (vocab < 1) throw error("session: vocab must be >= 1");
        halves_ = options.guidance.active() ? 2 : 1;
        const index_t rows = plan.max_rows_per_step();
        // inputs are indexed (sequence, row) in index_t: check the product before allocating it
        detail::checked_mul(detail::checked_mul(halves_, static_cast<long long>(std::min<std::size_t>(requests.size(), max_index)), "session: sequences"),
                            rows, "session: sequences x rows per step");
        tokens_.assign(requests.size() * static_cast<std::size_t>(plan.num_positions()), -1);
        set_cells();
        slots_.resize(static_cast<std::size_t>(rows));
        rope_.resize(static_cast<std::size_t>(rows));
        inputs_.resize(static_cast<std::size_t>(rows) * static_cast<std::size_t>(num_sequences()));
        cond_.resize(static_cast<std::size_t>(vocab));
        uncond_.resize(static_cast<std::size_t>(vocab));
        sampled_.resize(requests.size() * static_cast<std::size_t>(plan.max_emitted_per_step()));
    }
    // The session keeps a view of the plan: a temporary one would be gone after this statement.
    template <class P>
        requires temporary_plan<P>
    session(P&& plan, std::span<const request> requests, Sampler sampler, index_t vocab, session_options options = {})
        : session(plan_view(plan), requests, sampler, vocab, options) {
        static_assert(detail::dangling_plan<P>, "ordo::session: a temporary plan would dangle (the session keeps a view of it); keep the plan in a variable");
    }

    index_t num_sequences() const { return halves_ * static_cast<index_t>(requests_.size()); }
    index_t num_requests() const { return static_cast<index_t>(requests_.size()); }
    index_t step() const { return step_; }
    bool done() const { return step_ == plan_.num_steps(); }
    bool pending() const { return pending_; }
    const plan_view& plan() const { return plan_; }

    // The batch of the current step. Calling it again before commit() is an error (use cancel()).
    const step_batch& next() {
        if (done()) throw error("session: next() after the last step (the session is finished)");
        if (pending_) throw error("session: next() called twice without commit(); cancel() drops the step in flight");
        const step_view st = plan_.step(step_);
        const index_t rows = st.num_rows(), nreq = num_requests();
        auto query = st.queries.begin();  // the step's query rows, in fed-row order: one pass
        for (index_t r = 0; r < rows; ++r) {
            index_t target = -1;
            if (query != st.queries.end() && query->fed_row == st.first_row + r) target = (query++)->target;
            const index_t slot = st.fed[r];
            slots_[static_cast<std::size_t>(r)] = slot;
            rope_[static_cast<std::size_t>(r)] = target < 0 ? rope_of(plan_, slot) : rope_coord{false, plan_.grid().at(target)};
            const slot_entry content = target < 0 ? plan_.slots[static_cast<std::size_t>(st.content_of(r))] : slot_entry{target, slot_kind::query};
            const index_t at = target >= 0 ? target : position_of(plan_.slots[static_cast<std::size_t>(slot)]);  // where the row is
            for (index_t h = 0; h < halves_; ++h)
                for (index_t i = 0; i < nreq; ++i) {
                    fed_input& in = inputs_[static_cast<std::size_t>((h * nreq + i) * rows + r)];
                    in = input_of(content, i, h == 1);
                    in.cell = at >= 0 ? cell_of(i, at) : -1;
                }
        }
        batch_ = step_batch{plan_, step_, num_sequences(), rows, plan_.header.num_heads, vocab_,
                            std::span<const index_t>(slots_.data(), static_cast<std::size_t>(rows)),
                            std::span<const rope_coord>(rope_.data(), static_cast<std::size_t>(rows)),
                            std::span<const fed_input>(inputs_.data(), static_cast<std::size_t>(rows * num_sequences())),
                            std::span<const request>(requests_), max_index, step_, per_request_positions_};
        pending_ = true;
        return batch_;
    }

    // Consumes the model's logits for the pending step: mixes each emitted position's heads by the
    // plan's weights, applies CFG, samples and records the tokens. On bad logits (wrong size, NaN,
    // inf, or finite logits the mix, CFG or temperature overflow) it throws and changes nothing: the
    // step can be committed again or cancelled.
    void commit(std::span<const float> logits) {
        if (!pending_) throw error(done() ? "session: commit() after the last step (the session is finished)" : "session: commit() without next()");
        if (logits.size() != batch_.logits_size())
            throw error("session: commit() got " + detail::itos(static_cast<long long>(logits.size())) + " logits, step " + detail::itos(step_) +
                        " needs " + detail::itos(static_cast<long long>(batch_.logits_size())) + " (sequences x rows x heads x vocab)");
        // NaN and +-inf have an all-ones exponent: one vectorisable pass, the search only on failure
        std::uint32_t bad = 0;
        for (const float x : logits) bad |= static_cast<std::uint32_t>((std::bit_cast<std::uint32_t>(x) & 0x7f800000u) == 0x7f800000u);
        if (bad) report_bad_logits(logits);
        const step_view st = plan_.step(step_);
        const index_t nreq = num_requests();
        const index_t per_request = st.num_emitted();
        // every token is drawn (the sampler may still throw) before any is recorded
        for (index_t i = 0; i < nreq; ++i)
            for (index_t k = 0; k < per_request; ++k) {
                mix_guided(logits, i, st.from(k), guidance_scale(k), cond_);
                sampled_[static_cast<std::size_t>(i) * static_cast<std::size_t>(per_request) + static_cast<std::size_t>(k)] =
                    sample(sampler_, std::span<float>(cond_), workspace_, draw_key{options_.seed, requests_[static_cast<std::size_t>(i)].id, cell_of(i, st.emitted[k])});
            }
        record(st, sampled_, per_request);
    }

    // Records tokens sampled elsewhere (a device sampler: ordo::cuda::sample_step) for the pending
    // step: tokens[i * stride + k] is request i's token for the k-th position the step emits.
    // Checks every token against the vocabulary before recording any; on error nothing changes.
    void commit_tokens(std::span<const index_t> tokens, index_t stride) {
        if (!pending_) throw error(done() ? "session: commit_tokens() after the last step (the session is finished)" : "session: commit_tokens() without next()");
        const step_view st = plan_.step(step_);
        const index_t nreq = num_requests(), k = st.num_emitted();
        // 64-bit: a stride near INT32_MAX must not wrap the size it asks for
        if (stride < k || tokens.size() < static_cast<std::size_t>(1LL * (nreq - 1) * stride + k))
            throw error("session: commit_tokens() got " + detail::itos(static_cast<long long>(tokens.size())) + " tokens with stride " + detail::itos(stride) +
                        "; step " + detail::itos(step_) + " emits " + detail::itos(k) + " positions for each of " + detail::itos(nreq) + " requests");
        for (index_t i = 0; i < nreq; ++i)
            for (index_t e = 0; e < k; ++e) {
                const index_t t = tokens[static_cast<std::size_t>(1LL * i * stride + e)];
                if (t < 0 || t >= vocab_)
                    throw error("session: commit_tokens(): token " + detail::itos(t) + " for request " + detail::itos(i) + ", position " +
                                detail::itos(st.emitted[e]) + " is outside the vocabulary of " + detail::itos(vocab_));
            }
        record(st, tokens, stride);
    }

    // The CFG scale of the k-th position the current step emits (1: cond logits only), as commit()
    // applies it.
    float guidance_scale(index_t k = 0) const {
        if (halves_ != 2 || done()) return 1.0f;
        if (k < 0 || k >= plan_.emit_offsets[static_cast<std::size_t>(step_) + 1] - plan_.emit_offsets[static_cast<std::size_t>(step_)])
            throw error("session: guidance_scale(" + detail::itos(k) + "): step " + detail::itos(step_) + " emits " +
                        detail::itos(plan_.emit_offsets[static_cast<std::size_t>(step_) + 1] - plan_.emit_offsets[static_cast<std::size_t>(step_)]) +
                        " positions");
        const index_t first = plan_.emit_offsets[static_cast<std::size_t>(step_)], end = plan_.emit_offsets[static_cast<std::size_t>(step_) + 1];
        return options_.guidance.scale_at(emission_at{step_, first + k, first, end, plan_.num_positions()});
    }

    // The logits the sampler sees for the k-th position the pending step emits, for request i:
    // the plan's head mix, then CFG. commit() samples from exactly these; a caller may read them
    // first (log-probs, checks against a reference) from the same model output.
    void final_logits(std::span<const float> logits, index_t i, index_t k, std::span<float> out) {
        if (!pending_) throw error("session: final_logits() without a pending step (call next() first)");
        const step_view st = plan_.step(step_);
        if (i < 0 || i >= num_requests() || k < 0 || k >= st.num_emitted() || out.size() != static_cast<std::size_t>(vocab_) ||
            logits.size() != batch_.logits_size())
            throw error("session: final_logits(): request, emitted index or buffer sizes do not fit step " + detail::itos(step_));
        mix_guided(logits, i, st.from(k), guidance_scale(k), out);
    }

    // Drops the step in flight (next() without commit()); next() then returns it again.
    void cancel() { pending_ = false; }

    // Goes back to `step`: tokens emitted at that step or later are forgotten, and decoding resumes
    // there. The cache needs no erasing (see kv_cache.hpp), except where a slot held a stand-in or
    // a query at `step` that a later step, already run, overwrote: that content is gone, and the
    // rewind refused. (LPD's queries are read only in their own step: its rewinds all work.)
    void rewind(index_t step) {
        if (step < 0 || step > step_) throw error("session: rewind(" + detail::itos(step) + ") outside steps 0.." + detail::itos(step_));
        if (!plan_.stand_ins.empty() || !plan_.queries.empty()) {  // (not a hot path: allocates)
            const index_t ran = step_ + (pending_ ? 1 : 0);  // steps that may have written the cache
            std::vector<index_t> own(static_cast<std::size_t>(plan_.num_slots()));
            own_feed_steps(plan_, own);
            auto check = [&](index_t fed_row, const char* what) {
                const index_t slot = plan_.fed[static_cast<std::size_t>(fed_row)], written = plan_.fed_step[static_cast<std::size_t>(slot)];
                const index_t over = own[static_cast<std::size_t>(slot)];  // a rerun of step `over` rewrites the slot itself
                if (written < step && step < over && over < ran)
                    throw error("session: rewind(" + detail::itos(step) + "): slot " + detail::itos(slot) + " held a " + what + " (written at step " +
                                detail::itos(written) + ") that step " + detail::itos(over) + " has overwritten; rewind to step " + detail::itos(written) +
                                " or earlier, or to step " + detail::itos(over) + " or later");
            };
            for (const stand_in_entry& e : plan_.stand_ins) check(e.fed_row, "stand-in");
            for (const query_entry& e : plan_.queries) check(e.fed_row, "query");
        }
        const index_t n = plan_.num_positions();
        for (index_t i = 0; i < num_requests(); ++i)
            for (index_t q = 0; q < n; ++q)
                if (plan_.step_of[static_cast<std::size_t>(q)] >= step) tokens_[token_index(i, q)] = -1;
        step_ = step;
        pending_ = false;
    }

    // Request i's tokens in raster order of its grid cells (-1 where not decoded yet).
    std::span<const index_t> tokens(index_t i) const {
        const std::size_t n = static_cast<std::size_t>(plan_.num_positions());
        return {tokens_.data() + static_cast<std::size_t>(i) * n, n};
    }

private:
    // cells_[i][p] = request i's grid cell of plan position p (its position table, or p).
    void set_cells() {
        const index_t n = plan_.num_positions();
        const bool any = std::any_of(requests_.begin(), requests_.end(), [](const request& r) { return !r.order.empty(); });
        if (!any) return;  // every request: position p is cell p
        cells_.resize(requests_.size() * static_cast<std::size_t>(n));
        std::vector<char> seen(static_cast<std::size_t>(n));
        for (std::size_t i = 0; i < requests_.size(); ++i) {
            const std::span<const index_t> order = requests_[i].order;
            index_t* cell = cells_.data() + i * static_cast<std::size_t>(n);
            if (order.empty()) {
                for (index_t p = 0; p < n; ++p) cell[p] = p;
            } else {
                if (static_cast<index_t>(order.size()) != n)
                    throw error("session: request " + detail::itos(static_cast<long long>(i)) + "'s order has " + detail::itos(static_cast<long long>(order.size())) +
                                " cells, the grid " + plan_.grid().str() + " has " + detail::itos(n));
                std::fill(seen.begin(), seen.end(), 0);
                for (index_t p = 0; p < n; ++p) {
                    const index_t c = order[static_cast<std::size_t>(p)];
                    if (c < 0 || c >= n || seen[static_cast<std::size_t>(c)])
                        throw error("session: request " + detail::itos(static_cast<long long>(i)) + "'s order is not a permutation of the grid's cells (cell " +
                                    detail::itos(c) + " at position " + detail::itos(p) + " is outside the grid or repeated)");
                    seen[static_cast<std::size_t>(c)] = 1;
                    cell[p] = c;
                }
            }
            for (index_t p = 0; p < n && !per_request_positions_; ++p) per_request_positions_ = cell[p] != p;
        }
    }
    index_t cell_of(index_t req, index_t pos) const {
        return cells_.empty() ? pos : cells_[static_cast<std::size_t>(req) * static_cast<std::size_t>(plan_.num_positions()) + static_cast<std::size_t>(pos)];
    }
    std::size_t token_index(index_t req, index_t pos) const {
        return static_cast<std::size_t>(req) * static_cast<std::size_t>(plan_.num_positions()) + static_cast<std::size_t>(cell_of(req, pos));
    }
    // Records step st's checked tokens (request i's k-th at tokens[i * stride + k]) and closes the step.
    void record(const step_view& st, std::span<const index_t> tokens, index_t stride) {
        const index_t nreq = num_requests();
        for (index_t i = 0; i < nreq; ++i)
            for (index_t k = 0; k < st.num_emitted(); ++k) tokens_[token_index(i, st.emitted[k])] = tokens[static_cast<std::size_t>(1LL * i * stride + k)];
        pending_ = false;
        ++step_;
    }
    [[noreturn]] void report_bad_logits(std::span<const float> logits) const {
        for (std::size_t i = 0; i < logits.size(); ++i) {
            if (std::isfinite(logits[i])) continue;
            const std::size_t per_row = static_cast<std::size_t>(batch_.num_heads) * static_cast<std::size_t>(vocab_);
            const std::size_t per_seq = static_cast<std::size_t>(batch_.num_rows) * per_row;
            const std::size_t rem = i % per_seq;
            throw error("session: logits of sequence " + detail::itos(static_cast<long long>(i / per_seq)) + ", row " +
                        detail::itos(static_cast<long long>(rem / per_row)) + ", head " +
                        detail::itos(static_cast<long long>(rem / static_cast<std::size_t>(vocab_) % static_cast<std::size_t>(batch_.num_heads))) +
                        ", token " + detail::itos(static_cast<long long>(rem % static_cast<std::size_t>(vocab_))) + " are " +
                        (std::isnan(logits[i]) ? "NaN" : "infinite") + " at step " + detail::itos(step_));
        }
        throw error("session: non-finite logits at step " + detail::itos(step_));
    }
    // the position a slot of this kind is at (-1: none, a zero rotation)
    static index_t position_of(const slot_entry& e) { return e.kind == slot_kind::token || e.kind == slot_kind::query ? e.index : -1; }
    // what content e (a slot's, what a stand-in copies, or a query) is for request req (its cell is
    // set by the caller: where the row is)
    fed_input input_of(const slot_entry& e, index_t req, bool uncond) const {
        const index_t label = uncond ? options_.null_label : requests_[static_cast<std::size_t>(req)].label;
        switch (e.kind) {
            case slot_kind::prefix: return {e.kind, e.index, label};
            case slot_kind::token: return {e.kind, e.index, tokens_[token_index(req, e.index)]};
            case slot_kind::transition: return {e.kind, e.index, e.index};
            case slot_kind::query: return {e.kind, e.index, -1};
        }
        return {};
    }

    // out = the head mix of request i's cond sequence, combined with its uncond mix when guided
    void mix_guided(std::span<const float> logits, index_t i, std::span<const contribution> from, float scale, std::span<float> out) {
        mix(logits, i, from, out);
        if (scale != 1.0f) {  // (per-step guidance gives 1 for "cond only"; a ramp may go below 1)
            mix(logits, num_requests() + i, from, uncond_);
            cfg_combine(out, uncond_, scale, out);
        }
    }
    // out = sum of weight * logits[seq][row][head]
    void mix(std::span<const float> logits, index_t seq, std::span<const contribution> from, std::span<float> out) const {
        const std::size_t v = static_cast<std::size_t>(vocab_), heads = static_cast<std::size_t>(batch_.num_heads);
        auto row = [&](const contribution& c) {
            return logits.data() + ((static_cast<std::size_t>(seq) * static_cast<std::size_t>(batch_.num_rows) + c.row) * heads + c.head) * v;
        };
        const float* first = row(from[0]);
        if (from.size() == 1) {  // weight 1: a copy
            std::copy(first, first + v, out.begin());
            return;
        }
        for (std::size_t t = 0; t < v; ++t) out[t] = from[0].weight * first[t];
        for (std::size_t c = 1; c < from.size(); ++c) {
            const float* src = row(from[c]);
            const float w = from[c].weight;
            for (std::size_t t = 0; t < v; ++t) out[t] += w * src[t];
        }
    }

    plan_view plan_;
    std::vector<request> requests_;
    Sampler sampler_;
    session_options options_;
    index_t vocab_ = 0, halves_ = 1, step_ = 0;
    bool pending_ = false;
    sampler_workspace workspace_;
    std::vector<index_t> tokens_, slots_;
    std::vector<index_t> cells_;  // [request][position] grid cells; empty when every request uses the identity
    bool per_request_positions_ = false;  // some request's table is not the identity
    std::vector<index_t> sampled_;  // commit()'s tokens of the step, [request][emitted], recorded once all are drawn
    std::vector<rope_coord> rope_;
    std::vector<fed_input> inputs_;
    std::vector<float> cond_, uncond_;
    step_batch batch_{};
};

}  // namespace ordo
