// ordo/engine/generate.hpp - the model concept and generate(): a whole plan, end to end.
#pragma once

#include <algorithm>
#include <concepts>
#include <functional>
#include <span>
#include <vector>

#include "../policy.hpp"
#include "jacobi.hpp"
#include "kv_cache.hpp"
#include "session.hpp"

namespace ordo {

// A model runs one forward pass for a step batch: it writes each fed row's K/V into the cache at
// (layer, sequence, slot), attends under the plan's mask, and writes
// logits[seq][row][head][vocab] for every head it has (the plan reads heads 0..num_heads-1).
// Model and cache live in the same memory space: a model declares `using memory_space =
// ordo::device_memory;` when it computes on the device (host when it declares none).
template <class M, class C>
concept model_for = kv_cache_extents<C> && same_memory_space<M, C> &&
                    requires(M& m, const M& cm, const step_batch& b, C& cache, std::span<float> logits) {
                        { cm.vocab_size() } -> std::convertible_to<index_t>;
                        { cm.num_heads() } -> std::convertible_to<index_t>;
                        { m.forward(b, cache, logits) };
                    };

namespace detail {
// The entry points' compile-time checks, as messages (a constraint would only say "no match").
template <class M, class C>
constexpr void check_model_and_cache_types() {
    static_assert(same_memory_space<M, C>,
                  "ordo: the model and the kv cache live in different memory spaces: a host model needs a host kv cache "
                  "(contiguous_kv_cache, paged_kv_cache), a device model (ordo::cuda::gpt_model) a device one (ordo::cuda::device_kv_cache)");
    static_assert(!same_memory_space<M, C> || model_for<M, C>,
                  "ordo: the model is not a model_for this kv cache (it needs vocab_size(), num_heads() and forward(step_batch, cache, logits))");
}
}  // namespace detail

// What a generate() run cost, filled when generate_options::stats points to one (caller-owned).
struct generate_stats {
    index_t forward_passes = 0;       // model forwards run for the batch (plan steps, or speculative windows)
    std::vector<index_t> iterations;  // per request: the forwards that advanced it (== forward_passes step by step)
};

struct generate_options {
    session_options session{};
    // speculative Jacobi decoding (jacobi.hpp) when jacobi.window > 0: a raster plan, windows of
    // that many steps; progress then reports the least frontier (positions done) after each window
    jacobi_options jacobi{};
    // called after every step with (steps done, steps in all); not on the hot path of a step
    std::function<void(index_t, index_t)> progress{};
    generate_stats* stats = nullptr;
};

// Checks that model and cache can run the plan; throws naming what does not fit. A model with
// prepare(plan, sequences) checks its own fit there (a checkpoint's heads and extra tokens) and
// sizes its step buffers, so that forward() allocates nothing.
template <class M, class C>
void check_fit(const plan_view& p, M& model, const C& cache, index_t sequences) {
    static_assert(same_memory_space<M, C>,
                  "ordo::check_fit: the model and the kv cache live in different memory spaces (a host model needs a host kv cache, a "
                  "device model a device one)");
    if constexpr (requires { model.prepare(p, sequences); }) model.prepare(p, sequences);
    if (model.num_heads() < p.header.num_heads)
        throw error("the model has " + detail::itos(model.num_heads()) + " output head(s) but the plan reads " +
                    detail::itos(p.header.num_heads) + " (a NAR order needs the model's extra heads)");
    if (cache.capacity() < kv_cache_len(p))
        throw error("kv cache too small: " + detail::itos(cache.capacity()) + " slots per sequence, the plan needs " + detail::itos(kv_cache_len(p)));
    if (cache.num_sequences() < sequences)
        throw error("kv cache too small: " + detail::itos(cache.num_sequences()) + " sequences, the batch needs " + detail::itos(sequences));
}

namespace detail {
// generate() with options.jacobi.window > 0: the speculative loop around the model.
template <class M, class C, class Sampler>
std::vector<std::vector<index_t>> generate_jacobi(M& model, C& cache, const plan_view& plan, const Sampler& sampler, std::span<const request> requests,
                                                  const generate_options& options) {
    jacobi_session<Sampler> s(plan, requests, sampler, model.vocab_size(), options.session, options.jacobi);
    check_fit(plan, model, cache, s.num_sequences());
    const std::size_t rows = static_cast<std::size_t>(s.num_sequences()) * static_cast<std::size_t>(s.max_rows());
    // a model sized by prepare() for the plan's one row per step takes the window's rows now
    if constexpr (requires { model.reserve(rows, plan.num_slots()); }) model.reserve(rows, plan.num_slots());
    std::vector<float> logits;
    logits.reserve(rows * static_cast<std::size_t>(plan.header.num_heads) * static_cast<std::size_t>(model.vocab_size()));
    while (!s.done()) {
        const step_batch& b = s.next();
        logits.resize(b.logits_size());  // within the reserve: no allocation
        model.forward(b, cache, std::span<float>(logits));
        s.commit(logits);
        if (options.progress) {
            index_t least = plan.num_positions();
            for (index_t i = 0; i < s.num_requests(); ++i) least = std::min(least, s.frontier(i));
            options.progress(least, plan.num_positions());
        }
    }
    if (options.stats) {
        options.stats->forward_passes = s.forward_passes();
        options.stats->iterations.clear();
        for (index_t i = 0; i < s.num_requests(); ++i) options.stats->iterations.push_back(s.iterations(i));
    }
    std::vector<std::vector<index_t>> out;
    for (index_t i = 0; i < s.num_requests(); ++i) out.emplace_back(s.tokens(i).begin(), s.tokens(i).end());
    return out;
}
}  // namespace detail

// Runs `plan` for every request and returns each one's token grid in raster order.
// (the model and cache are checked by static_asserts, which say what is wrong)
template <class M, class C, class Sampler>
std::vector<std::vector<index_t>> generate(M& model, C& cache, const plan_view& plan, Sampler sampler, std::span<const request> requests,
                                           const generate_options& options = {}) {
    detail::check_model_and_cache_types<M, C>();
    if (options.jacobi.window > 0) {
        if constexpr (detail::is_sampler_chain<Sampler>) return detail::generate_jacobi(model, cache, plan, sampler, requests, options);
        else throw error("generate: speculative Jacobi decoding needs an ordo::sampler_chain");
    }
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
    if (options.stats) {
        options.stats->forward_passes = plan.num_steps();
        options.stats->iterations.assign(static_cast<std::size_t>(s.num_requests()), plan.num_steps());
    }
    std::vector<std::vector<index_t>> out;
    for (index_t i = 0; i < s.num_requests(); ++i) out.emplace_back(s.tokens(i).begin(), s.tokens(i).end());
    return out;
}

// The same for a policy: builds the plan of `grid` first.
template <class M, class C, class P, class Sampler>
    requires decode_policy<P>
std::vector<std::vector<index_t>> generate(M& model, C& cache, const P& policy, grid_shape grid, Sampler sampler,
                                           std::span<const request> requests, const generate_options& options = {}) {
    detail::check_model_and_cache_types<M, C>();
    const plan p = make_plan(policy, grid);
    return generate(model, cache, p.view(), sampler, requests, options);
}

}  // namespace ordo
