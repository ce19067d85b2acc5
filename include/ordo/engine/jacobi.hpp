// ordo/engine/jacobi.hpp - speculative Jacobi decoding (SJD) and its coupled variants (SCD-GS,
// SCD-MC) on a raster plan: a runtime loop, not a plan. Training-free: any raster checkpoint.
//
// Each iteration feeds a window of the plan's steps [f, f + L): the last accepted token (or the
// prefix, at f = 0) and L-1 drafts for positions f .. f+L-2, at their own slots, under the plan's
// causal mask. Every window row gives the model's distribution p_k for position k (the plan's head,
// CFG, then the sampler chain's filters), conditioned on the tokens fed before it. Left to right,
// the draft x ~ q_k of position k is accepted with probability min(1, p_k(x) / q_k(x)); at the first
// rejection position k takes a sample of normalise(max(0, p_k - q_k)) and the iteration stops; if
// every draft passes, the last row's p gives one more token for free. So 1 .. L tokens per forward.
// The window's outputs past the accepted prefix (a token drawn from p_k, and p_k itself) become the
// next iteration's drafts; new positions at the window's end get initial drafts (uniform, or the
// left neighbour's token).
//
// Lossless: each accepted token follows p_k given the accepted prefix, whatever q_k, because the
// draft is drawn from q_k with randomness that nothing before position k has seen, and the accept
// and residual draws are fresh (the standard speculative-sampling argument). p is the FILTERED
// distribution: with top-k / top-p the output follows what raster decoding with the same chain
// samples from, exactly; the residual is not filtered again (the official code re-applies its
// processors to it, which breaks exactness). A greedy chain makes p one-hot: Jacobi decoding.
//
// Couplings (SCD; they change only how drafts are produced, so the test above still holds):
//   gumbel  : every window row is drawn by Gumbel-max, argmax(log p_k + g_k), with noise g_k fixed
//             per absolute position (the same at k in every iteration): successive iterates at k
//             coincide wherever their distributions are close. The residual draw is NOT Gumbel:
//             reusing g_k would correlate it with the draft it replaces.
//   maximal : past the accepted prefix, each row's new draft is the maximal coupling of its old
//             draft and p_k (keep it with probability min(1, p/q), else a residual draw), so drafts
//             stay put where possible.
//
// The cache. ordo's caches are slot-addressed and nothing is deleted: a window writes the slots of
// tokens f-1 .. f+L-2; after it, slots past the accepted prefix hold K/V of drafts (some rejected).
// The next window starts at the new frontier f' and feeds token f'-1 and every later draft at their
// slots, so each of those slots is rewritten by the window that next reads it, before it is read
// (the model writes a step's K/V before attending). No rollback is needed; the cache needs the
// plan's kv_cache_len slots, as for plain decoding.
//
// Requests. Each request accepts its own number of tokens per iteration, and a step batch shares
// its slots across sequences, so a batch runs the window at the least frontier f: requests at f
// take part, requests ahead of it are paused (fed their own accepted tokens and drafts, outputs
// ignored: their slots are rewritten with the same content, or with drafts rewritten before being
// read). An active request's window, drafts and random numbers are exactly what they would be
// alone: its tokens do not depend on its batch. Every random number is
// uniform_draw(seed, request id, position, purpose << 28 | index): index is the request's own
// iteration count (its windows), or the vocabulary entry for Gumbel noise.
//
// Window length: the option L must be in [1, positions]; near the end of the image the window is
// clamped to the tokens left (min(L, N - f), the official rule), since every image ends there.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "../mask.hpp"
#include "../plan.hpp"
#include "sampler.hpp"
#include "session.hpp"

namespace ordo {

enum class draft_init : std::uint8_t {
    uniform,         // a uniform token, q = uniform over the vocabulary
    left_neighbour,  // the token (accepted or drafted) left of the position, q = one-hot; uniform in column 0
};
enum class draft_coupling : std::uint8_t {
    none,     // SJD: every row sampled independently per iteration
    gumbel,   // SCD-GS: Gumbel-max with noise fixed per absolute position
    maximal,  // SCD-MC: maximal coupling of each old draft with its new distribution
};

namespace detail {
// Deliberately wrong rules, for tests only: they show the lossless test detects them.
enum class jacobi_fault : std::uint8_t {
    none,
    no_residual,  // on rejection, draw from p instead of normalise(max(0, p - q))
    accept_by_p,  // accept with probability p(x), ignoring q
};
}  // namespace detail

struct jacobi_options {
    index_t window = 0;  // L; 0 turns speculative decoding off (generate() decodes step by step)
    draft_init init = draft_init::uniform;
    draft_coupling coupling = draft_coupling::none;
    detail::jacobi_fault fault = detail::jacobi_fault::none;  // tests only
};

// What keys a speculative draw (the high 4 bits of uniform_draw's draw index; 0 is the session's).
enum class jacobi_purpose : std::uint32_t { init = 1, draft = 2, accept = 3, residual = 4, gumbel = 5 };

inline double jacobi_uniform(std::uint64_t seed, std::uint64_t request, index_t position, jacobi_purpose what, std::uint32_t index) {
    return static_cast<double>(uniform_draw(seed, request, position, (static_cast<std::uint32_t>(what) << 28) | (index & 0x0fffffffu)));
}

namespace detail {
template <class S> inline constexpr bool is_sampler_chain = false;
template <class... S> inline constexpr bool is_sampler_chain<sampler_chain<S...>> = true;

// The chain's filters with a greedy draw: the processed logits, and their argmax, without a draw.
template <class... Stages>
constexpr auto filters_of(const sampler_chain<Stages...>& c) {
    return [&]<std::size_t... I>(std::index_sequence<I...>) { return make_sampler(std::get<I>(c.stages)..., greedy{}); }(
        std::make_index_sequence<sizeof...(Stages) - 1>{});
}
template <class... Stages>
constexpr bool draws_greedy(const sampler_chain<Stages...>&) {
    return std::is_same_v<typename last_of<Stages...>::type, greedy>;
}

// The first index whose running sum of w exceeds u * sum(w) (w >= 0, sum > 0); rounding past the
// end gives the last index with w > 0.
inline index_t inverse_cdf(const double* w, index_t n, double u) {
    double total = 0.0;
    for (index_t v = 0; v < n; ++v) total += w[v];
    const double target = u * total;
    double acc = 0.0;
    index_t last = 0;
    for (index_t v = 0; v < n; ++v) {
        if (w[v] <= 0.0) continue;
        acc += w[v];
        last = v;
        if (acc > target) return v;
    }
    return last;
}

// Checks that the plan is raster-like, which a window needs: one position per step, step t emitting
// position t from one head row with weight 1, step 0 feeding only the prefix, step t >= 1 feeding
// exactly token t-1 at a slot after the previous step's (so the mask is causal over the window).
inline void check_jacobi_plan(const plan_view& p) {
    const char* why = nullptr;
    if (p.header.num_transitions || p.header.num_stand_ins || p.header.num_queries) why = "it has transitions, stand-ins or query rows";
    index_t bad = -1;
    for (index_t t = 0; t < p.num_steps() && !why; ++t) {
        const step_view st = p.step(t);
        const bool one = st.num_emitted() == 1 && st.emitted[0] == t && st.from(0).size() == 1 && st.from(0)[0].weight == 1.0f;
        bool fed = true;
        if (t == 0) {
            for (index_t r = 0; r < st.num_rows(); ++r) fed = fed && p.slots[static_cast<std::size_t>(st.fed[r])].kind == slot_kind::prefix;
            fed = fed && st.num_rows() >= 1;
        } else {
            const slot_entry& e = st.num_rows() == 1 ? p.slots[static_cast<std::size_t>(st.fed[0])] : slot_entry{};
            const step_view prev = p.step(t - 1);
            fed = st.num_rows() == 1 && e.kind == slot_kind::token && e.index == t - 1 && st.fed[0] > prev.fed[prev.num_rows() - 1];
        }
        if (!one || !fed) {
            bad = t;
            why = !one ? "it does not emit one position per step in raster order" : "it does not feed the previous token, alone, at each step";
        }
    }
    if (p.num_steps() != p.num_positions() && !why) why = "its step count differs from its position count";
    if (why)
        throw error(std::string("jacobi: the plan is not raster-like (") + why + (bad >= 0 ? " at step " + itos(bad) : std::string()) +
                    "); speculative Jacobi decoding runs on raster plans only");
}
}  // namespace detail

// The loop, step by step, for a host engine: next() gives the window's batch (num_rows rows at
// consecutive slots, steps [step, step + window_steps)), commit(logits) runs the speculative test.
// Every buffer is allocated here; next() and commit() allocate nothing.
template <class Sampler>
class jacobi_session {
    static_assert(detail::is_sampler_chain<Sampler>, "ordo::jacobi_session: the sampler must be an ordo::sampler_chain (make_sampler(...))");
    using filter_chain = decltype(detail::filters_of(std::declval<const Sampler&>()));

public:
    jacobi_session(plan_view plan, std::span<const request> requests, Sampler sampler, index_t vocab, session_options options, jacobi_options jacobi)
        : plan_(plan), requests_(requests.begin(), requests.end()), filters_(detail::filters_of(sampler)), greedy_(detail::draws_greedy(sampler)),
          options_(options), jopt_(jacobi), vocab_(vocab), workspace_(vocab > 0 ? vocab : 1) {
        if (requests.empty()) throw error("jacobi: no requests");
        if (vocab < 1) throw error("jacobi: vocab must be >= 1");
        detail::check_jacobi_plan(plan);
        n_ = plan.num_positions();
        if (jacobi.window < 1 || jacobi.window > n_)
            throw error("jacobi: window " + detail::itos(jacobi.window) + " is outside 1.." + detail::itos(n_) + " (the positions of grid " + plan.grid().str() +
                        "); near the end the window is clamped to the tokens left");
        for (std::size_t i = 0; i < requests_.size(); ++i)
            if (!requests_[i].order.empty())
                throw error("jacobi: request " + detail::itos(static_cast<long long>(i)) + " has its own order; speculative Jacobi decoding is raster only");
        std::apply([](const auto&... st) { (check_stage(st), ...); }, sampler.stages);
        halves_ = options.guidance.active() ? 2 : 1;
        L_ = jacobi.window;
        const std::size_t nreq = requests_.size(), L = static_cast<std::size_t>(L_), V = static_cast<std::size_t>(vocab);
        max_rows_ = plan.step(0).num_rows() + L_ - 1;
        detail::checked_mul(detail::checked_mul(halves_, static_cast<long long>(std::min<std::size_t>(nreq, max_index)), "jacobi: sequences"), max_rows_,
                            "jacobi: sequences x window rows");
        detail::checked_size_mul(detail::checked_size_mul(2 * nreq, L, "jacobi: draft store"), V, "jacobi: draft store");
        tokens_.assign(nreq * static_cast<std::size_t>(n_), -1);
        frontier_.assign(nreq, 0);
        iterations_.assign(nreq, 0);
        drafted_end_.assign(nreq, 0);
        draft_tok_.assign(nreq * L, 0);
        draft_q_.assign(nreq * L * V, 0.0);
        probs_.assign(nreq * L * V, 0.0);
        slots_.resize(static_cast<std::size_t>(max_rows_));
        rope_.resize(static_cast<std::size_t>(max_rows_));
        emit_row_.resize(L);
        emit_head_.resize(L);
        inputs_.resize(static_cast<std::size_t>(max_rows_) * static_cast<std::size_t>(num_sequences()));
        cond_.resize(V);
        uncond_.resize(V);
        residual_.resize(V);
        for (index_t i = 0; i < num_requests(); ++i) top_up(i);
    }
    template <class P>
        requires temporary_plan<P>
    jacobi_session(P&& plan, std::span<const request> requests, Sampler sampler, index_t vocab, session_options options, jacobi_options jacobi)
        : jacobi_session(plan_view(plan), requests, sampler, vocab, options, jacobi) {
        static_assert(detail::dangling_plan<P>, "ordo::jacobi_session: a temporary plan would dangle (the session keeps a view of it); keep the plan in a variable");
    }

    index_t num_sequences() const { return halves_ * static_cast<index_t>(requests_.size()); }
    index_t num_requests() const { return static_cast<index_t>(requests_.size()); }
    const plan_view& plan() const { return plan_; }
    index_t window() const { return L_; }
    // The most rows a window feeds (the prefix rows and L-1 drafts): what a model sizes for.
    index_t max_rows() const { return max_rows_; }
    bool done() const { return std::all_of(frontier_.begin(), frontier_.end(), [&](index_t f) { return f == n_; }); }
    bool pending() const { return pending_; }
    // Forward passes run (windows committed), and the windows request i took part in.
    index_t forward_passes() const { return passes_; }
    index_t iterations(index_t i) const { return iterations_[static_cast<std::size_t>(i)]; }
    // Positions [0, frontier(i)) of request i are accepted.
    index_t frontier(index_t i) const { return frontier_[static_cast<std::size_t>(i)]; }

    // The batch of the next window: the rows of steps [step, step + window_steps), at their slots.
    const step_batch& next() {
        if (done()) throw error("jacobi: next() after the last token (the session is finished)");
        if (pending_) throw error("jacobi: next() called twice without commit(); cancel() drops the window in flight");
        start_ = *std::min_element(frontier_.begin(), frontier_.end());
        steps_ = std::min(L_, n_ - start_);
        const index_t nreq = num_requests();
        index_t rows = 0;
        for (index_t t = start_; t < start_ + steps_; ++t) {
            const step_view st = plan_.step(t);
            emit_row_[static_cast<std::size_t>(t - start_)] = rows + st.from(0)[0].row;
            emit_head_[static_cast<std::size_t>(t - start_)] = st.from(0)[0].head;
            for (index_t r = 0; r < st.num_rows(); ++r, ++rows) {
                const index_t slot = st.fed[r];
                slots_[static_cast<std::size_t>(rows)] = slot;
                rope_[static_cast<std::size_t>(rows)] = rope_of(plan_, slot);
            }
        }
        for (index_t r = 0; r < rows; ++r) {
            const slot_entry& e = plan_.slots[static_cast<std::size_t>(slots_[static_cast<std::size_t>(r)])];
            for (index_t h = 0; h < halves_; ++h)
                for (index_t i = 0; i < nreq; ++i) {
                    fed_input& in = inputs_[static_cast<std::size_t>((h * nreq + i) * rows + r)];
                    if (e.kind == slot_kind::prefix) in = {e.kind, e.index, h == 1 ? options_.null_label : requests_[static_cast<std::size_t>(i)].label, -1};
                    else in = {e.kind, e.index, token_or_draft(i, e.index), e.index};
                }
        }
        batch_ = step_batch{plan_, start_, num_sequences(), rows, plan_.header.num_heads, vocab_,
                            std::span<const index_t>(slots_.data(), static_cast<std::size_t>(rows)),
                            std::span<const rope_coord>(rope_.data(), static_cast<std::size_t>(rows)),
                            std::span<const fed_input>(inputs_.data(), static_cast<std::size_t>(rows * num_sequences())),
                            std::span<const request>(requests_), max_index, start_ + steps_ - 1, false, steps_};
        pending_ = true;
        return batch_;
    }

    // Runs the speculative test on the window's logits for every request at the window's start.
    // On bad logits (wrong size, NaN, inf, or a filter leaving nothing) it throws and changes
    // nothing: the window can be committed again or cancelled.
    void commit(std::span<const float> logits) {
        if (!pending_) throw error(done() ? "jacobi: commit() after the last token (the session is finished)" : "jacobi: commit() without next()");
        if (logits.size() != batch_.logits_size())
            throw error("jacobi: commit() got " + detail::itos(static_cast<long long>(logits.size())) + " logits, the window at position " +
                        detail::itos(start_) + " needs " + detail::itos(static_cast<long long>(batch_.logits_size())) + " (sequences x rows x heads x vocab)");
        std::uint32_t bad = 0;
        for (const float x : logits) bad |= static_cast<std::uint32_t>((std::bit_cast<std::uint32_t>(x) & 0x7f800000u) == 0x7f800000u);
        if (bad) report_bad_logits(logits);
        const index_t nreq = num_requests();
        // every distribution first (the filters may still throw), then the decisions
        for (index_t i = 0; i < nreq; ++i)
            if (frontier_[static_cast<std::size_t>(i)] == start_)
                for (index_t k = 0; k < steps_; ++k) distribution(logits, i, k);
        for (index_t i = 0; i < nreq; ++i)
            if (frontier_[static_cast<std::size_t>(i)] == start_) decide(i);
        ++passes_;
        pending_ = false;
    }

    // Drops the window in flight; next() then returns it again.
    void cancel() { pending_ = false; }

    // Request i's tokens in raster order (-1 where not accepted yet).
    std::span<const index_t> tokens(index_t i) const {
        return {tokens_.data() + static_cast<std::size_t>(i) * static_cast<std::size_t>(n_), static_cast<std::size_t>(n_)};
    }

private:
    std::size_t lane(index_t i, index_t pos) const { return static_cast<std::size_t>(i) * static_cast<std::size_t>(L_) + static_cast<std::size_t>(pos % L_); }
    double* q_of(index_t i, index_t pos) { return draft_q_.data() + lane(i, pos) * static_cast<std::size_t>(vocab_); }
    double* p_of(index_t i, index_t pos) { return probs_.data() + lane(i, pos) * static_cast<std::size_t>(vocab_); }
    index_t& tok(index_t i, index_t pos) { return tokens_[static_cast<std::size_t>(i) * static_cast<std::size_t>(n_) + static_cast<std::size_t>(pos)]; }
    index_t token_or_draft(index_t i, index_t pos) {
        return pos < frontier_[static_cast<std::size_t>(i)] ? tok(i, pos) : draft_tok_[lane(i, pos)];
    }
    double u(index_t i, index_t pos, jacobi_purpose what, std::uint32_t index) const {
        return jacobi_uniform(options_.seed, requests_[static_cast<std::size_t>(i)].id, pos, what, index);
    }

    // p of window row k (position start_ + k) for request i: the head's logits, CFG, the filters.
    void distribution(std::span<const float> logits, index_t i, index_t k) {
        const std::size_t V = static_cast<std::size_t>(vocab_), heads = static_cast<std::size_t>(batch_.num_heads);
        auto row = [&](index_t seq) {
            return logits.data() + ((static_cast<std::size_t>(seq) * static_cast<std::size_t>(batch_.num_rows) + static_cast<std::size_t>(emit_row_[static_cast<std::size_t>(k)])) * heads +
                                    static_cast<std::size_t>(emit_head_[static_cast<std::size_t>(k)])) * V;
        };
        const float* c = row(i);
        std::copy(c, c + V, cond_.begin());
        const index_t pos = start_ + k;
        if (halves_ == 2) {
            const step_view st = plan_.step(pos);
            const float scale = options_.guidance.scale_at(emission_at{pos, st.first_rank, st.first_rank, st.first_rank + 1, n_});
            if (scale != 1.0f) {
                const float* uc = row(num_requests() + i);
                std::copy(uc, uc + V, uncond_.begin());
                cfg_combine(cond_, uncond_, scale, cond_);
            }
        }
        const index_t arg = sample(filters_, std::span<float>(cond_), workspace_, draw_key{options_.seed, requests_[static_cast<std::size_t>(i)].id, pos});
        double* p = p_of(i, pos);
        if (greedy_) {
            std::fill(p, p + V, 0.0);
            p[arg] = 1.0;
            return;
        }
        const double m = cond_[static_cast<std::size_t>(arg)];
        double s = 0.0;
        for (std::size_t v = 0; v < V; ++v) s += p[v] = contract::exp_mass(static_cast<double>(cond_[v]) - m);  // -inf: 0
        for (std::size_t v = 0; v < V; ++v) p[v] /= s;
    }

    // A token drawn from p at position pos: Gumbel-max with the position's noise (SCD-GS), or by
    // inverse CDF with a draft uniform of this iteration.
    index_t draw_from(index_t i, index_t pos, const double* p, std::uint32_t it) {
        if (jopt_.coupling == draft_coupling::gumbel) {
            index_t best = 0;
            double best_v = -INFINITY;
            for (index_t v = 0; v < vocab_; ++v) {
                if (p[v] <= 0.0) continue;
                const double g = -std::log(-std::log(u(i, pos, jacobi_purpose::gumbel, static_cast<std::uint32_t>(v)) + 0x1p-25));
                const double x = std::log(p[v]) + g;
                if (x > best_v) best_v = x, best = v;
            }
            return best;
        }
        return detail::inverse_cdf(p, vocab_, u(i, pos, jacobi_purpose::draft, it));
    }
    // A draw from normalise(max(0, p - q)) with a fresh uniform.
    index_t draw_residual(index_t i, index_t pos, const double* p, const double* q, std::uint32_t it) {
        const double r = u(i, pos, jacobi_purpose::residual, it);
        if (jopt_.fault == detail::jacobi_fault::no_residual) return detail::inverse_cdf(p, vocab_, r);
        double* w = residual_.data();
        double s = 0.0;
        for (index_t v = 0; v < vocab_; ++v) s += w[v] = std::max(0.0, p[v] - q[v]);
        return s > 0.0 ? detail::inverse_cdf(w, vocab_, r) : detail::inverse_cdf(p, vocab_, r);  // p == q never rejects
    }
    // accept x ~ q for target p: u < p(x) / q(x), as u q(x) < p(x)
    bool accepts(index_t i, index_t pos, index_t x, const double* p, const double* q, std::uint32_t it) const {
        const double a = u(i, pos, jacobi_purpose::accept, it);
        if (jopt_.fault == detail::jacobi_fault::accept_by_p) return a < p[x];
        return a * q[x] < p[x];
    }

    // The speculative test of request i's window, then its next drafts.
    void decide(index_t i) {
        const index_t f = start_, end = start_ + steps_;
        const std::uint32_t it = static_cast<std::uint32_t>(iterations_[static_cast<std::size_t>(i)]);
        index_t accepted_end = end;  // the new frontier
        for (index_t k = f; k + 1 < end; ++k) {
            const index_t x = draft_tok_[lane(i, k)];
            const double *p = p_of(i, k), *q = q_of(i, k);
            if (accepts(i, k, x, p, q, it)) {
                tok(i, k) = x;
                continue;
            }
            tok(i, k) = draw_residual(i, k, p, q, it);
            accepted_end = k + 1;
            break;
        }
        if (accepted_end == end) tok(i, end - 1) = draw_from(i, end - 1, p_of(i, end - 1), it);  // the free token
        // the rows past the accepted prefix become the next drafts, their p the draft distribution
        const std::size_t V = static_cast<std::size_t>(vocab_);
        for (index_t k = accepted_end; k < end; ++k) {
            const double* p = p_of(i, k);
            double* q = q_of(i, k);
            index_t& d = draft_tok_[lane(i, k)];
            if (jopt_.coupling == draft_coupling::maximal && k + 1 < end) {  // row k had a draft: couple it with p
                if (!accepts(i, k, d, p, q, it)) d = draw_residual(i, k, p, q, it);
            } else {
                d = draw_from(i, k, p, it);
            }
            std::copy(p, p + V, q);
        }
        frontier_[static_cast<std::size_t>(i)] = accepted_end;
        drafted_end_[static_cast<std::size_t>(i)] = end;
        ++iterations_[static_cast<std::size_t>(i)];
        top_up(i);
    }

    // Initial drafts for the positions a full window at request i's frontier feeds.
    void top_up(index_t i) {
        const index_t f = frontier_[static_cast<std::size_t>(i)], want = std::min(f + L_ - 1, n_ - 1);
        index_t& have = drafted_end_[static_cast<std::size_t>(i)];
        have = std::max(have, f);
        const std::uint32_t it = static_cast<std::uint32_t>(iterations_[static_cast<std::size_t>(i)]);
        const std::size_t V = static_cast<std::size_t>(vocab_);
        const index_t cols = plan_.grid().cols();
        for (index_t k = have; k < want; ++k) {
            double* q = q_of(i, k);
            index_t& d = draft_tok_[lane(i, k)];
            if (jopt_.init == draft_init::left_neighbour && k % cols != 0) {
                d = token_or_draft(i, k - 1);
                std::fill(q, q + V, 0.0);
                q[d] = 1.0;
            } else {
                d = std::min(static_cast<index_t>(u(i, k, jacobi_purpose::init, it) * vocab_), vocab_ - 1);
                std::fill(q, q + V, 1.0 / static_cast<double>(vocab_));
            }
        }
        have = std::max(have, want);
    }

    [[noreturn]] void report_bad_logits(std::span<const float> logits) const {
        for (std::size_t i = 0; i < logits.size(); ++i) {
            if (std::isfinite(logits[i])) continue;
            const std::size_t per_row = static_cast<std::size_t>(batch_.num_heads) * static_cast<std::size_t>(vocab_);
            const std::size_t per_seq = static_cast<std::size_t>(batch_.num_rows) * per_row;
            throw error("jacobi: logits of sequence " + detail::itos(static_cast<long long>(i / per_seq)) + ", window row " +
                        detail::itos(static_cast<long long>(i % per_seq / per_row)) + " are " + (std::isnan(logits[i]) ? "NaN" : "infinite") +
                        " in the window at position " + detail::itos(start_) + " (nothing was accepted)");
        }
        throw error("jacobi: non-finite logits in the window at position " + detail::itos(start_));
    }

    plan_view plan_;
    std::vector<request> requests_;
    filter_chain filters_;
    bool greedy_ = false;
    session_options options_;
    jacobi_options jopt_;
    index_t vocab_ = 0, halves_ = 1, n_ = 0, L_ = 1, max_rows_ = 1;
    index_t start_ = 0, steps_ = 0, passes_ = 0;
    bool pending_ = false;
    sampler_workspace workspace_;
    std::vector<index_t> tokens_, frontier_, iterations_, drafted_end_;
    std::vector<index_t> draft_tok_;  // [request][position % L]
    std::vector<double> draft_q_;     // [request][position % L][vocab]: each draft's distribution
    std::vector<double> probs_;       // [request][position % L][vocab]: the window's p
    std::vector<index_t> slots_, emit_row_, emit_head_;
    std::vector<rope_coord> rope_;
    std::vector<fed_input> inputs_;
    std::vector<float> cond_, uncond_;
    std::vector<double> residual_;
    step_batch batch_{};
};

}  // namespace ordo
