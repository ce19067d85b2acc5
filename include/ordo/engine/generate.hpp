// ordo/engine/generate.hpp - the model concept and generate(): a whole plan, end to end.
#pragma once

#include <concepts>
#include <functional>
#include <span>
#include <vector>

#include "../policy.hpp"
#include "kv_cache.hpp"
#include "session.hpp"

namespace ordo {

// A model runs one forward pass for a step batch: it writes each fed row's K/V into the cache at
// (layer, sequence, slot), attends under the plan's mask, and writes
// logits[seq][row][head][vocab] for every head it has (the plan reads heads 0..num_heads-1).
template <class M, class C>
concept model_for = kv_cache<C> && requires(M& m, const M& cm, const step_batch& b, C& cache, std::span<float> logits) {
    { cm.vocab_size() } -> std::convertible_to<index_t>;
    { cm.num_heads() } -> std::convertible_to<index_t>;
    { m.forward(b, cache, logits) };
};

struct generate_options {
    session_options session{};
    // called after every step with (steps done, steps in all); not on the hot path of a step
    std::function<void(index_t, index_t)> progress{};
};

// Checks that model and cache can run the plan; throws naming what does not fit. A model with
// prepare(plan, sequences) checks its own fit there (a checkpoint's heads and extra tokens) and
// sizes its step buffers, so that forward() allocates nothing.
template <class M, class C>
void check_fit(const plan_view& p, M& model, const C& cache, index_t sequences) {
    if constexpr (requires { model.prepare(p, sequences); }) model.prepare(p, sequences);
    if (model.num_heads() < p.header.num_heads)
        throw error("the model has " + detail::itos(model.num_heads()) + " output head(s) but the plan reads " +
                    detail::itos(p.header.num_heads) + " (a NAR order needs the model's extra heads)");
    if (cache.capacity() < kv_cache_len(p))
        throw error("kv cache too small: " + detail::itos(cache.capacity()) + " slots per sequence, the plan needs " + detail::itos(kv_cache_len(p)));
    if (cache.num_sequences() < sequences)
        throw error("kv cache too small: " + detail::itos(cache.num_sequences()) + " sequences, the batch needs " + detail::itos(sequences));
}

// Runs `plan` for every request and returns each one's token grid in raster order.
template <class M, class C, class Sampler>
    requires model_for<M, C>
std::vector<std::vector<index_t>> generate(M& model, C& cache, const plan_view& plan, Sampler sampler, std::span<const request> requests,
                                           const generate_options& options = {}) {
    session<Sampler> s(plan, requests, sampler, model.vocab_size(), options.session);
    check_fit(plan, model, cache, s.num_sequences());
    std::vector<float> logits;
    logits.reserve(static_cast<std::size_t>(s.num_sequences()) * static_cast<std::size_t>(plan.max_rows_per_step()) *
                   static_cast<std::size_t>(plan.header.num_heads) * static_cast<std::size_t>(model.vocab_size()));
    while (!s.done()) {
        const step_batch& b = s.next();
        logits.resize(b.logits_size());  // within the reserve: no allocation
        model.forward(b, cache, std::span<float>(logits));
        s.commit(logits);
        if (options.progress) options.progress(s.step(), plan.num_steps());
    }
    std::vector<std::vector<index_t>> out;
    for (index_t i = 0; i < s.num_requests(); ++i) out.emplace_back(s.tokens(i).begin(), s.tokens(i).end());
    return out;
}

// The same for a policy: builds the plan of `grid` first.
template <class M, class C, class P, class Sampler>
    requires model_for<M, C> && decode_policy<P>
std::vector<std::vector<index_t>> generate(M& model, C& cache, const P& policy, grid_shape grid, Sampler sampler,
                                           std::span<const request> requests, const generate_options& options = {}) {
    const plan p = make_plan(policy, grid);
    return generate(model, cache, p.view(), sampler, requests, options);
}

}  // namespace ordo
