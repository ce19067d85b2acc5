// ordo/schedules/query_schedules.hpp - how many query tokens each forward call of RandAR's and
// ARPG's generate() decodes, exactly as the official loops compute them.
//
// Both methods decode a random permutation of the grid in groups whose sizes follow a cosine-like
// schedule; a group's size is the number of query rows (RandAR's position-instruction tokens,
// ARPG's [MASK] queries) of one forward call. The functions below re-trace the official control
// flow in double precision, with Python's int() truncation and the same clamps, so the result is
// the exact list of calls (tests/test_query_schedules.cpp checks them against the golden tables):
//   RandAR  ziqipang/RandAR@d374a72, RandAR/model/utils.py L49-68 and randar_gpt.py generate() L552-644
//   ARPG    hp-l33/ARPG@1a1758c, models/arpg.py Transformer.generate L481-497
// The arithmetic is plain * and + on doubles, unfused (the ordo CMake target compiles consumers
// with -ffp-contract=off; an FMA in (1 - cos)·N + 1 could move a truncation), and std::cos /
// std::acos, which on glibc are the functions Python's math.cos and numpy's arccos call.
#pragma once

#include <cmath>
#include <cstddef>
#include <numbers>
#include <string>
#include <vector>

#include "../config.hpp"

namespace ordo::schedules {

namespace detail {

// Shared argument checks, before anything is allocated. `who` names the method in the message.
inline void check_query_schedule_args(const char* who, index_t tokens, index_t steps) {
    using ordo::detail::itos;
    const std::string w = who;
    if (tokens < 1) throw error(w + " schedule needs at least 1 token, got " + itos(tokens));
    if (tokens > max_grid_positions)
        throw error(w + " schedule for " + itos(tokens) + " tokens exceeds max_grid_positions (" +
                    itos(max_grid_positions) + ")");
    if (steps < 1) throw error(w + " schedule needs at least 1 step, got " + itos(steps));
    // Past N steps the official loops degenerate (RandAR stops early, ARPG makes empty calls).
    if (steps > tokens)
        throw error(w + " schedule of " + itos(steps) + " steps for " + itos(tokens) +
                    " tokens: a call decodes at least one token, so steps must be <= tokens");
}

}  // namespace detail

// RandAR: the number of query tokens (position instructions) of every forward call of
// RandARTransformer.generate for N = `tokens` image tokens and num_inference_steps = `steps`.
// The official num_inference_steps = -1 ("no parallel decoding") means steps = N here: pass N.
//
// The official loop: call 0 has 1 query. After call k (k+1 calls done, `cur` = k+1 in utils.py),
// with `decoded` tokens sampled so far, the next call gets
//   target = min(int((1 - cos(pi/2 * (cur+1) / steps)) * N + 1), N)
//   queries = min(max(target - decoded, 1), N - decoded)
// and the loop stops once all N are decoded. Note the (cur+1): the target is already one step
// ahead, so the last call is reached at cur = steps - 1. The number of calls is what this loop
// gives: `steps` for 2 <= steps <= N (every such steps for the sizes the tests cover), but 2 for
// steps = 1 (N >= 2): call 0 always has one query and the target after it is already N. Entries
// are >= 1 and sum to N.
inline std::vector<index_t> randar_queries_per_call(index_t tokens, index_t steps) {
    detail::check_query_schedule_args("RandAR", tokens, steps);
    const long long n = tokens;
    std::vector<index_t> calls;
    calls.reserve(static_cast<std::size_t>(steps < 2 ? 2 : steps));
    long long cur = 0;      // calls done (cur_inference_step)
    long long count = 1;    // queries of the current call (num_query_token_cur_step)
    long long first = 0;    // generation index of its first query (query_token_idx_cur_step)
    // The official condition; the second half only matters once count is 0 after the last call.
    while (first <= n - count && first <= n - 1) {
        calls.push_back(static_cast<index_t>(count));
        ++cur;
        // utils.py L52-57: Python floats are doubles; int() truncates (the value is >= 1 here)
        const double target_f = (1.0 - std::cos(std::numbers::pi / 2.0 * static_cast<double>(cur + 1) /
                                                static_cast<double>(steps))) *
                                    static_cast<double>(n) +
                                1.0;
        long long target = static_cast<long long>(target_f);
        if (target > n) target = n;
        // L60-67: at least one query, and never past the last token (0 once everything is decoded)
        long long next = target - first - count;
        if (next < 1) next = 1;
        if (next > n - first - count) next = n - first - count;
        first += count;
        count = next;
    }
    return calls;
}

// ARPG's two sampling schedules (sample_c2i_ddp.py --sample-schedule; arccos is the default).
enum class arpg_schedule { arccos, cosine };

// ARPG: num_pred, the number of [MASK] queries (tokens sampled) of every forward call of
// Transformer.generate for seq_len = `tokens` and num_iter = `steps`. Step s of `steps` keeps
//   mask_ratio = arccos((s+1)/steps) / (pi/2)     (arccos)   or   cos(pi/2 * (s+1)/steps)   (cosine)
//   mask_len = max(1, min(N - decoded - 1, int(N * mask_ratio)))
// tokens masked and decodes num_pred = N - decoded - mask_len; the last step takes the rest.
// Always exactly `steps` calls; every entry is >= 1 for 1 <= steps <= N and they sum to N.
// Unlike RandAR, the first call already decodes several tokens (256 tokens in 64 arccos steps:
// 3, 3, 2, ..., 10, 12, 28).
inline std::vector<index_t> arpg_queries_per_call(index_t tokens, index_t steps, arpg_schedule schedule) {
    detail::check_query_schedule_args("ARPG", tokens, steps);
    const long long n = tokens;
    std::vector<index_t> calls;
    calls.reserve(static_cast<std::size_t>(steps));
    long long decoded = 0;  // last_pos
    for (index_t step = 0; step < steps; ++step) {
        // arpg.py L482-485, in the same operation order (1. * (step+1) / num_iter; pi / 2. * (step+1) / num_iter)
        const double ratio =
            schedule == arpg_schedule::arccos
                ? std::acos(1.0 * static_cast<double>(step + 1) / static_cast<double>(steps)) / (std::numbers::pi * 0.5)
                : std::cos(std::numbers::pi / 2.0 * static_cast<double>(step + 1) / static_cast<double>(steps));
        // L489-490: int() truncates (ratio >= 0); the clamp keeps one token masked until the last step
        long long mask_len = static_cast<long long>(static_cast<double>(n) * ratio);
        if (mask_len > n - decoded - 1) mask_len = n - decoded - 1;
        if (mask_len < 1) mask_len = 1;
        // L492-494: the last call takes the rest, whatever the schedule says
        const long long num_pred = step == steps - 1 ? n - decoded : n - decoded - mask_len;
        calls.push_back(static_cast<index_t>(num_pred));
        decoded += num_pred;
    }
    return calls;
}

}  // namespace ordo::schedules
