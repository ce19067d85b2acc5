// ordo/eigen/attention.hpp - the attention of a decode step, shared by every CPU model (gpt.hpp,
// lpd.hpp, arpg.hpp): softmax(q k^T / sqrt(head_dim)) v per head over the kv slots a fed row may see under
// the plan's mask, read from any ordo kv_cache. attend_row() is the per-row core (also used by
// one-pass training forwards that hold K/V in their own buffers).
//
// Threads (threads.hpp): a step's attention is split over (row, sequence, head) triples, each
// computed whole by one thread (scores, softmax, weighted sum of values) exactly as on one thread,
// so the result is bit-identical for any thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include <Eigen/Core>

#include "../engine/session.hpp"
#include "../mask.hpp"
#include "skinny.hpp"
#include "threads.hpp"

namespace ordo::eigen {

// Head layout of q (n_head heads of head_dim, head-major) and of a cached K/V row (n_kv_head heads;
// query head h reads kv head h / (n_head / n_kv_head)).
struct attention_heads {
    index_t n_head = 1;
    index_t n_kv_head = 1;
    index_t head_dim = 1;
};

// Scratch of a step's attention: each row's visible kv slots (`slots` apart) and the counts of
// visible written and unwritten slots, and one score row per head (attend_row) or per thread
// (attend_rows), `slots` floats apart. Sized once (reserve), so a step allocates nothing.
struct attention_scratch {
    std::vector<index_t> visible;
    std::vector<index_t> counts;  // per row: visible written slots, visible unwritten slots
    std::vector<float> scores;
    index_t slots = 0;
    void reserve(index_t kv_slots, index_t n_head, index_t rows = 1) {
        slots = std::max(slots, kv_slots);
        const std::size_t s = static_cast<std::size_t>(slots), r = static_cast<std::size_t>(std::max<index_t>(rows, 1));
        // a score row per head per thread: attend_rows gives each thread whole rows or single heads
        const std::size_t score_rows = static_cast<std::size_t>(n_head) * static_cast<std::size_t>(std::max(threads(), 1));
        if (visible.size() < r * s) visible.resize(r * s);
        if (counts.size() < 2 * r) counts.resize(2 * r);
        if (scores.size() < score_rows * s) scores.resize(score_rows * s);
    }
};

// softmax in place over n scores and `zeros` more scores of 0 (visible slots not written yet,
// whose values are 0 too, so they only add to the normaliser).
inline void softmax_with_zeros(float* scores, index_t n, index_t zeros) {
    float m = n > 0 ? *std::max_element(scores, scores + n) : 0.0f;
    if (zeros > 0) m = std::max(m, 0.0f);
    float sum = zeros > 0 ? static_cast<float>(zeros) * std::exp(-m) : 0.0f;
    for (index_t j = 0; j < n; ++j) sum += (scores[j] = std::exp(scores[j] - m));
    const float inv = 1.0f / sum;
    for (index_t j = 0; j < n; ++j) scores[j] *= inv;
}

// Head h of one query row against `n` visible kv rows (key(j) / value(j): the j-th one's K / V,
// all kv heads) and `zeros` visible slots read as K = V = 0 (a score of 0 and no value). q, out:
// the row's n_head * head_dim floats; out's head h is overwritten. scores: n floats.
template <class Key, class Value>
inline void attend_head(const attention_heads& a, index_t h, const float* q, index_t n, index_t zeros, Key&& key, Value&& value, float* scores, float* out) {
    using vec = Eigen::Map<Eigen::VectorXf>;
    using cvec = Eigen::Map<const Eigen::VectorXf>;
    const index_t hd = a.head_dim, group = a.n_head / a.n_kv_head;
    const std::size_t qo = static_cast<std::size_t>(h * hd), kvo = static_cast<std::size_t>(h / group * hd);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    for (index_t j = 0; j < n; ++j) scores[j] = detail::dot(q + qo, key(j) + kvo, static_cast<std::size_t>(hd)) * scale;
    softmax_with_zeros(scores, n, zeros);
    vec o(out + qo, hd);
    o.setZero();
    for (index_t j = 0; j < n; ++j) o += scores[j] * cvec(value(j) + kvo, hd);
}

// One query row against `n` visible kv rows (key(j) / value(j): the j-th one's K / V, all kv heads)
// and `zeros` visible slots read as K = V = 0 (a score of 0 and no value). scores: n_head rows of
// `score_stride` floats. out: n_head * head_dim floats, overwritten. Every head at once, so each
// visible slot's K and V are looked up once (not once per head: on small heads the lookups cost
// more than the arithmetic); per head the operations and their order are attend_head's, so the
// two give the same bits.
template <class Key, class Value>
inline void attend_row(const attention_heads& a, const float* q, index_t n, index_t zeros, Key&& key, Value&& value, float* scores, std::size_t score_stride,
                       float* out) {
    using vec = Eigen::Map<Eigen::VectorXf>;
    using cvec = Eigen::Map<const Eigen::VectorXf>;
    const index_t hd = a.head_dim, nh = a.n_head, group = nh / a.n_kv_head;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    for (index_t j = 0; j < n; ++j) {
        const float* k = key(j);
        for (index_t h = 0; h < nh; ++h)
            scores[static_cast<std::size_t>(h) * score_stride + static_cast<std::size_t>(j)] =
                detail::dot(q + static_cast<std::size_t>(h * hd), k + static_cast<std::size_t>(h / group * hd), static_cast<std::size_t>(hd)) * scale;
    }
    for (index_t h = 0; h < nh; ++h) {
        softmax_with_zeros(scores + static_cast<std::size_t>(h) * score_stride, n, zeros);
        vec(out + static_cast<std::size_t>(h * hd), hd).setZero();
    }
    for (index_t j = 0; j < n; ++j) {
        const float* v = value(j);
        for (index_t h = 0; h < nh; ++h)
            vec(out + static_cast<std::size_t>(h * hd), hd) +=
                scores[static_cast<std::size_t>(h) * score_stride + static_cast<std::size_t>(j)] * cvec(v + static_cast<std::size_t>(h / group * hd), hd);
    }
}

// Row r's rotation in sequence s: the batch's per-row one, or, when requests bring their own
// orders, the cell the row is at in that sequence (-1: a zero row).
inline rope_coord row_rope(const step_batch& b, index_t s, index_t r) {
    if (!b.per_request_positions) return b.rope[static_cast<std::size_t>(r)];
    const index_t cell = b.input(s, r).cell;
    return cell < 0 ? rope_coord{} : rope_coord{false, b.plan.grid().at(cell)};
}

// Attention of `count` rows of step batch `b` at `layer`: the i-th is batch row row_of(i); its q of
// sequence s is at q + (s * count + i) * q_stride. It attends to the kv slots
// k < min(num_slots, kv_limit) with mask(slots[row_of(i)], k); a visible slot not written yet
// (written(), mask.hpp) counts as K = V = 0. The result goes to out + (s * count + i) * out_stride.
// The caller has written this step's K/V.
template <class C, class Mask, class RowOf>
void attend_rows(const attention_heads& a, const float* q, std::size_t q_stride, C& cache, index_t layer, const step_batch& b, const Mask& mask, index_t count,
                 RowOf&& row_of, float* out, std::size_t out_stride, attention_scratch& scratch) {
    const index_t slots = b.plan.num_slots(), kv_end = std::min(slots, b.kv_limit);
    scratch.reserve(slots, a.n_head, count);  // no-op once sized
    const std::size_t stride = static_cast<std::size_t>(scratch.slots);
    // the slots each row sees (the same for every sequence)
    for (index_t i = 0; i < count; ++i) {
        const index_t qs = b.slots[static_cast<std::size_t>(row_of(i))];
        index_t* visible = scratch.visible.data() + static_cast<std::size_t>(i) * stride;
        index_t n = 0, zeros = 0;
        for (index_t kv = 0; kv < kv_end; ++kv)
            if (mask(qs, kv)) {
                if (written(b.plan.fed_step.data(), kv, b.written_through)) visible[n++] = kv;
                else ++zeros;
            }
        scratch.counts[2 * static_cast<std::size_t>(i)] = n;
        scratch.counts[2 * static_cast<std::size_t>(i) + 1] = zeros;
    }
    const double work = 2.0 * static_cast<double>(count) * static_cast<double>(b.num_sequences * a.n_head) * static_cast<double>(kv_end) *
                        static_cast<double>(a.head_dim);
    const index_t pairs = count * b.num_sequences;
    auto key = [&](index_t s, const index_t* visible) { return [&, s, visible](index_t j) { return cache.key(layer, s, visible[j]).data(); }; };
    auto value = [&](index_t s, const index_t* visible) { return [&, s, visible](index_t j) { return cache.value(layer, s, visible[j]).data(); }; };
    // (row, sequence) pairs, each with all its heads (one K/V lookup per visible slot for every
    // head), when there are enough to go round; else (row, sequence, head) triples. Either way an
    // output head is computed by attend_head's code in the same order: the choice, like the split,
    // never changes a bit.
    if (pairs >= 2 * static_cast<index_t>(threads())) {
        parallel_ranges(pairs, work, [&](index_t t0, index_t t1, int thread) {
            float* scores = scratch.scores.data() + static_cast<std::size_t>(thread) * static_cast<std::size_t>(a.n_head) * stride;
            for (index_t t = t0; t < t1; ++t) {
                const index_t i = t / b.num_sequences, s = t % b.num_sequences;
                const index_t* visible = scratch.visible.data() + static_cast<std::size_t>(i) * stride;
                const std::size_t row = static_cast<std::size_t>(s) * static_cast<std::size_t>(count) + static_cast<std::size_t>(i);
                attend_row(a, q + row * q_stride, scratch.counts[2 * static_cast<std::size_t>(i)], scratch.counts[2 * static_cast<std::size_t>(i) + 1],
                           key(s, visible), value(s, visible), scores, stride, out + row * out_stride);
            }
        });
        return;
    }
    const index_t per_row = b.num_sequences * a.n_head;
    parallel_ranges(count * per_row, work, [&](index_t t0, index_t t1, int thread) {
        float* scores = scratch.scores.data() + static_cast<std::size_t>(thread) * static_cast<std::size_t>(a.n_head) * stride;
        for (index_t t = t0; t < t1; ++t) {
            const index_t i = t / per_row, s = t % per_row / a.n_head, h = t % a.n_head;
            const index_t* visible = scratch.visible.data() + static_cast<std::size_t>(i) * stride;
            const std::size_t row = static_cast<std::size_t>(s) * static_cast<std::size_t>(count) + static_cast<std::size_t>(i);
            attend_head(
                a, h, q + row * q_stride, scratch.counts[2 * static_cast<std::size_t>(i)], scratch.counts[2 * static_cast<std::size_t>(i) + 1],
                [&](index_t j) { return cache.key(layer, s, visible[j]).data(); }, [&](index_t j) { return cache.value(layer, s, visible[j]).data(); }, scores,
                out + row * out_stride);
        }
    });
}

// Attention of every row of step batch `b` at `layer`: row r of sequence s (q at
// q + (s * num_rows + r) * q_stride) attends to the kv slots k < min(num_slots, kv_limit) with
// mask(slots[r], k); a visible slot not written yet (written(), mask.hpp) counts as K = V = 0. The
// result goes to out + (s * num_rows + r) * out_stride. The caller has written this step's K/V.
template <class C, class Mask>
void attend(const attention_heads& a, const float* q, std::size_t q_stride, C& cache, index_t layer, const step_batch& b, const Mask& mask, float* out,
            std::size_t out_stride, attention_scratch& scratch) {
    attend_rows(a, q, q_stride, cache, layer, b, mask, b.num_rows, [](index_t r) { return r; }, out, out_stride, scratch);
}

}  // namespace ordo::eigen
