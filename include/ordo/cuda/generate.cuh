// ordo/cuda/generate.cuh - generate() with the sampling on the device: the model's logits never
// leave the GPU. Per step the session (host) says what to feed, the model runs, sample_step mixes
// heads, applies CFG and samples every emitted position on the device, and only the tokens (a few
// bytes per request) come back to the session (session::commit_tokens). Given the same logits the
// tokens are those of ordo::generate() with the host sampler (the sampler contract), so the two
// paths are interchangeable; this one is what an engine runs.
#pragma once

#include <span>
#include <vector>

#include "../engine/generate.hpp"
#include "gpt.cuh"
#include "sampler.cuh"

namespace ordo::cuda {

template <class W, class C, class... Stages>
    requires model_for<gpt_model<W>, C>
std::vector<std::vector<index_t>> generate(gpt_model<W>& model, C& cache, const plan_view& plan, const sampler_chain<Stages...>& chain,
                                           std::span<const request> requests, const generate_options& options = {}) {
    session<sampler_chain<Stages...>> s(plan, requests, chain, model.vocab_size(), options.session);
    check_fit(plan, model, cache, s.num_sequences());  // prepare(): the plan on the device, buffers sized
    const index_t nreq = s.num_requests(), max_emitted = plan.max_emitted_per_step();
    if (options.session.guidance.ramp != cfg_ramp::per_step)
        throw error("cuda generate: the device sampler takes one guidance scale per step; a ramp (cfg_ramp: LPD's, RandAR's, ARPG's) runs on the host sampler");
    sampler_workspace workspace(nreq * max_emitted, model.vocab_size());
    step_tokens tokens(nreq, max_emitted);
    std::vector<std::uint64_t> ids(static_cast<std::size_t>(nreq));
    for (index_t i = 0; i < nreq; ++i) ids[static_cast<std::size_t>(i)] = requests[static_cast<std::size_t>(i)].id;
    const device_buffer<std::uint64_t> device_ids{std::span<const std::uint64_t>(ids), model.stream()};
    pinned_buffer<index_t> host_tokens(static_cast<std::size_t>(nreq) * static_cast<std::size_t>(max_emitted));
    const std::span<const index_t> host_view(host_tokens.data(), host_tokens.size());
    while (!s.done()) {
        const step_batch& b = s.next();
        model.run(b, cache);
        sample_step(chain, model.plan(), b.step, model.logits(b), b.num_sequences, s.guidance_scale(), options.session.seed, device_ids.span(), tokens,
                    workspace, model.stream());
        check(cudaMemcpyAsync(host_tokens.data(), tokens.span().data(), host_tokens.size() * sizeof(index_t), cudaMemcpyDeviceToHost, model.stream()),
              "step tokens download");
        check(cudaStreamSynchronize(model.stream()), "step tokens download");
        s.commit_tokens(host_view, max_emitted);
        if (options.progress) options.progress(s.step(), plan.num_steps());
    }
    std::vector<std::vector<index_t>> out;
    for (index_t i = 0; i < nreq; ++i) out.emplace_back(s.tokens(i).begin(), s.tokens(i).end());
    return out;
}

// The same for a policy: builds the plan of `grid` first.
template <class W, class C, class P, class... Stages>
    requires model_for<gpt_model<W>, C> && decode_policy<P>
std::vector<std::vector<index_t>> generate(gpt_model<W>& model, C& cache, const P& policy, grid_shape grid, const sampler_chain<Stages...>& chain,
                                           std::span<const request> requests, const generate_options& options = {}) {
    const ordo::plan p = make_plan(policy, grid);
    return generate(model, cache, p.view(), chain, requests, options);
}

}  // namespace ordo::cuda
