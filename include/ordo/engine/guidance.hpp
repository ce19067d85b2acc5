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
//  * a ramp replaces the per-step value (no schedule or interval with it): the scale is
//    start + (scale - start) * x / N for N tokens, computed in double and rounded to float, any value
//    (the methods guide with every scale but 1; a ramp flat at 1 is no guidance), where x
//    is how many tokens count as decoded, each method by its own definition:
//      linear_in_rank        x = the token's generation index (its emission rank): LPD's "linear"
//                            cfg_schedule, per token (its first token is unguided);
//      linear_in_step_start  x = the generation index of the step's first token: RandAR's
//                            cfg_scales (start, scale), per call;
//      linear_in_step_end    x = the tokens decoded once the step is done, its own included:
//                            ARPG's "linear" cfg_schedule, per call (its first call is guided).
// active(): whether any step is guided, i.e. the batch must carry the uncond half at all.
// The schedule is a view: its storage must outlive the cfg.
enum class cfg_ramp : std::uint8_t { per_step, linear_in_rank, linear_in_step_start, linear_in_step_end };

// Where a token is emitted: its step, its emission rank, the ranks [first, end) its step emits,
// and the number of tokens in all.
struct emission_at {
    index_t step = 0, rank = 0, first = 0, end = 0, total = 1;
};

struct cfg {
    float scale = 1.0f;
    index_t interval = -1;
    std::span<const float> schedule{};
    cfg_ramp ramp = cfg_ramp::per_step;
    float start = 1.0f;  // a ramp's scale at x = 0

    constexpr bool active() const {
        if (ramp != cfg_ramp::per_step) return scale != 1.0f || start != 1.0f;  // LPD, RandAR, ARPG: guided unless the ramp is flat at 1
        if (schedule.empty()) return scale > 1.0f;
        const std::size_t reach = interval < 0 ? schedule.size() : std::min(schedule.size(), static_cast<std::size_t>(interval) + 2);
        for (std::size_t s = 0; s < reach; ++s)
            if (schedule[s] > 1.0f) return true;
        return false;
    }

    // The scale of the token emitted at e (1: cond logits only).
    float scale_at(const emission_at& e) const {
        if (ramp == cfg_ramp::per_step) return scale_at(e.step);
        if (!schedule.empty() || interval != -1) throw error("cfg: a ramp takes no per-step schedule or interval");
        if (e.total < 1 || e.first < 0 || e.first > e.rank || e.rank >= e.end || e.end > e.total)
            throw error("cfg: emission rank " + detail::itos(e.rank) + " of a step emitting [" + detail::itos(e.first) + ", " + detail::itos(e.end) +
                        ") is not within 0.." + detail::itos(e.total - 1));
        const index_t x = ramp == cfg_ramp::linear_in_rank ? e.rank : ramp == cfg_ramp::linear_in_step_start ? e.first : e.end;
        // (not clamped to 1: the methods guide with any scale but 1, a scale below 1 moving toward the uncond logits)
        return static_cast<float>(static_cast<double>(start) +
                                  (static_cast<double>(scale) - static_cast<double>(start)) * static_cast<double>(x) / static_cast<double>(e.total));
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
