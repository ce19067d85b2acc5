// ordo/engine/guidance.hpp - classifier-free guidance: the combine and the per-step schedule
// (LlamaGen's rules), shared by every backend.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "../config.hpp"

namespace ordo {

// out = uncond + (cond - uncond) * scale, elementwise in float (LlamaGen's formula). out may alias
// either input.
inline void cfg_combine(std::span<const float> cond, std::span<const float> uncond, float scale, std::span<float> out) {
    if (cond.size() != uncond.size() || cond.size() != out.size())
        throw error("cfg_combine: cond has " + detail::itos(static_cast<long long>(cond.size())) + " logits, uncond " +
                    detail::itos(static_cast<long long>(uncond.size())) + ", out " + detail::itos(static_cast<long long>(out.size())) +
                    " (all must match)");
    const std::size_t n = cond.size();
    for (std::size_t i = 0; i < n; ++i) out[i] = uncond[i] + (cond[i] - uncond[i]) * scale;
}

// The guidance of a request, per step. Rules (LlamaGen's generate.py):
//  * step 0 is the prefill (the first token); step s >= 1 is iteration i = s - 1 of the decode loop.
//  * guidance is on only for a scale > 1 (at scale <= 1 the official code never runs the uncond
//    branch): scale_at returns 1.0 for "cond logits only, no combine".
//  * interval k > -1 (the official cfg_interval): the loop clears its cfg flag once i > k, so steps
//    0 .. k+1 are guided and later steps take the cond logits only. -1: every step guided.
//  * a non-empty schedule gives the scale per step (schedule[step], its last value repeated past its
//    end) and overrides `scale`; the interval still applies, and a scheduled value <= 1 means cond only.
//  * ramp linear_in_rank (LPD's "linear" cfg_schedule): the scale of the token of generation index
//    t (its emission rank) out of N is 1 + (scale - 1) * t / N, per token, so the first token is
//    unguided; it replaces the per-step value (no schedule or interval with it).
// active(): whether any step is guided, i.e. the batch must carry the uncond half at all.
// The schedule is a view: its storage must outlive the cfg.
enum class cfg_ramp : std::uint8_t { per_step, linear_in_rank };

struct cfg {
    float scale = 1.0f;
    index_t interval = -1;
    std::span<const float> schedule{};
    cfg_ramp ramp = cfg_ramp::per_step;

    constexpr bool active() const {
        if (schedule.empty()) return scale > 1.0f;
        const std::size_t reach = interval < 0 ? schedule.size() : std::min(schedule.size(), static_cast<std::size_t>(interval) + 2);
        for (std::size_t s = 0; s < reach; ++s)
            if (schedule[s] > 1.0f) return true;
        return false;
    }

    // The scale of the token of emission rank `rank` (of n) at `step`.
    float scale_at(index_t step, index_t rank, index_t n) const {
        if (ramp == cfg_ramp::per_step) return scale_at(step);
        if (!schedule.empty() || interval != -1) throw error("cfg: the linear_in_rank ramp takes no per-step schedule or interval");
        if (rank < 0 || rank >= n) throw error("cfg: rank " + detail::itos(rank) + " outside 0.." + detail::itos(n - 1));
        const float s = static_cast<float>(1.0 + (static_cast<double>(scale) - 1.0) * static_cast<double>(rank) / static_cast<double>(n));
        return s > 1.0f ? s : 1.0f;
    }
    float scale_at(index_t step) const {
        if (step < 0) throw error("cfg: step " + detail::itos(step) + " is negative (0 is the prefill)");
        if (interval > -1 && step - 1 > interval) return 1.0f;
        float s = scale;
        if (!schedule.empty()) s = schedule[std::min(static_cast<std::size_t>(step), schedule.size() - 1)];
        return s > 1.0f ? s : 1.0f;
    }
};

}  // namespace ordo
