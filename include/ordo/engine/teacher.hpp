// ordo/engine/teacher.hpp - the teacher-forcing forward: the whole training sequence in one pass.
// It is the training call of the official code (and the cheapest way to check a backend against
// it): every slot of the training layout is fed at once under the same mask, and each position's
// logits are mixed from the rows and heads the plan names, exactly as a decode step would.
#pragma once

#include <algorithm>
#include <span>
#include <vector>

#include "../mask.hpp"
#include "generate.hpp"

namespace ordo {

// Logits [position][vocab] in raster order for the given token grid (raster order) and class
// label, without guidance. A replay plan (LPD) runs its steps on the given tokens instead. The cache needs one sequence of teacher_cache_len(plan) slots.
// Slots the teacher-forcing forward writes: the training layout, or the decode cache if longer
// (PAR's training layout holds its last group's inputs, which decoding never feeds).
constexpr index_t teacher_cache_len(const plan_view& p) { return std::max(kv_cache_len(p), p.header.train_slots); }

namespace detail {
// teacher_forcing::replay: the plan's own steps, each fed the given tokens where a decode would
// feed sampled ones (a session whose tokens are committed, not drawn), without guidance.
template <class M, class C>
std::vector<float> replay_logits(M& model, C& cache, const plan_view& p, std::span<const index_t> tokens, index_t label) {
    const index_t vocab = model.vocab_size();
    const request req{label, 0, {}, {}};
    session<sampler_chain<greedy>> s(p, std::span<const request>(&req, 1), make_sampler(greedy{}), vocab);
    check_fit(p, model, cache, 1);
    std::vector<float> out, logits(static_cast<std::size_t>(p.num_positions()) * static_cast<std::size_t>(vocab));
    std::vector<index_t> given(static_cast<std::size_t>(p.max_emitted_per_step()));
    while (!s.done()) {
        const step_batch& b = s.next();
        out.resize(b.logits_size());
        model.forward(b, cache, std::span<float>(out));
        const step_view st = p.step(b.step);
        for (index_t k = 0; k < st.num_emitted(); ++k) {
            const index_t q = st.emitted[k];
            s.final_logits(out, 0, k, std::span<float>(logits.data() + static_cast<std::size_t>(q) * static_cast<std::size_t>(vocab), static_cast<std::size_t>(vocab)));
            given[static_cast<std::size_t>(k)] = tokens[static_cast<std::size_t>(q)];
        }
        s.commit_tokens(given, st.num_emitted());
    }
    return logits;
}
}  // namespace detail

template <class M, class C>
std::vector<float> teacher_forcing_logits(M& model, C& cache, const plan_view& p, std::span<const index_t> tokens, index_t label) {
    detail::check_model_and_cache_types<M, C>();
    const index_t n = p.num_positions(), rows = p.header.train_slots, vocab = model.vocab_size(), heads = p.header.num_heads;
    if (static_cast<index_t>(tokens.size()) != n)
        throw error("teacher forcing: " + detail::itos(static_cast<long long>(tokens.size())) + " tokens given, the grid " + p.grid().str() + " has " + detail::itos(n));
    for (index_t t : tokens)
        if (t < 0 || t >= vocab) throw error("teacher forcing: token " + detail::itos(t) + " outside the vocabulary of " + detail::itos(vocab));
    if (p.header.forcing == teacher_forcing::replay) return detail::replay_logits(model, cache, p, tokens, label);
    check_fit(p, model, cache, 1);
    if (cache.capacity() < teacher_cache_len(p))
        throw error("teacher forcing: kv cache too small: " + detail::itos(cache.capacity()) + " slots, the training layout feeds " + detail::itos(rows));
    std::vector<index_t> slots(static_cast<std::size_t>(rows));
    std::vector<rope_coord> rope(slots.size());
    std::vector<fed_input> inputs(slots.size());
    for (index_t s = 0; s < rows; ++s) {
        const slot_entry& e = p.slots[static_cast<std::size_t>(s)];
        slots[static_cast<std::size_t>(s)] = s;
        rope[static_cast<std::size_t>(s)] = rope_of(p, s);
        index_t value = e.index;  // transition: its index
        if (e.kind == slot_kind::prefix) value = label;
        else if (e.kind == slot_kind::token) value = tokens[static_cast<std::size_t>(e.index)];
        else if (e.kind == slot_kind::query) value = -1;
        const bool placed = e.kind == slot_kind::token || e.kind == slot_kind::query;
        inputs[static_cast<std::size_t>(s)] = {e.kind, e.index, value, placed ? e.index : -1};
    }
    const request req{label, 0, {}};
    const step_batch b{p, 0, 1, rows, heads, vocab, slots, rope, inputs, std::span<const request>(&req, 1), rows};
    std::vector<float> out(b.logits_size());
    model.forward(b, cache, std::span<float>(out));

    std::vector<float> logits(static_cast<std::size_t>(n) * static_cast<std::size_t>(vocab), 0.0f);
    const std::vector<index_t> query_slot = query_slots(p);
    for (index_t q = 0; q < n; ++q) {
        const step_view st = p.step(p.step_of[static_cast<std::size_t>(q)]);
        float* dst = logits.data() + static_cast<std::size_t>(q) * static_cast<std::size_t>(vocab);
        for (const contribution& c : st.from(p.rank_of[static_cast<std::size_t>(q)] - st.first_rank)) {
            const index_t slot = train_slot_of(st, c.row, query_slot);
            if (slot >= rows)
                throw error("teacher forcing: position " + detail::itos(q) + " is predicted from slot " + detail::itos(slot) +
                            ", which the training layout does not feed");
            const float* src = out.data() + (static_cast<std::size_t>(slot) * static_cast<std::size_t>(heads) + c.head) * static_cast<std::size_t>(vocab);
            for (index_t v = 0; v < vocab; ++v) dst[v] += c.weight * src[v];
        }
    }
    return logits;
}

}  // namespace ordo
