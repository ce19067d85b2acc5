// ordo/eigen/attention.hpp - the attention of a decode step, shared by every CPU model (gpt.hpp,
// lpd.hpp, arpg.hpp): softmax(q k^T / sqrt(head_dim)) v per head over the kv slots a fed row may see under
// the plan's mask, read from any ordo kv_cache. attend_row() is the per-row core (also used by
// one-pass training forwards that hold K/V in their own buffers).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include <Eigen/Core>

#include "../engine/session.hpp"
#include "../mask.hpp"
#include "skinny.hpp"

namespace ordo::eigen {

// Head layout of q (n_head heads of head_dim, head-major) and of a cached K/V row (n_kv_head heads;
// query head h reads kv head h / (n_head / n_kv_head)).
struct attention_heads {
    index_t n_head = 1;
    index_t n_kv_head = 1;
    index_t head_dim = 1;
};

// Per-row scratch: the visible kv slots and one score row per head. Sized once (reserve), so a
// step allocates nothing.
struct attention_scratch {
    std::vector<index_t> visible;
    std::vector<float> scores;
    index_t slots = 0;  // score rows are `slots` floats apart
    void reserve(index_t kv_slots, index_t n_head) {
        if (kv_slots > slots) {
            slots = kv_slots;
            visible.resize(static_cast<std::size_t>(kv_slots));
            scores.resize(static_cast<std::size_t>(kv_slots) * static_cast<std::size_t>(n_head));
        } else if (scores.size() < static_cast<std::size_t>(slots) * static_cast<std::size_t>(n_head)) {
            scores.resize(static_cast<std::size_t>(slots) * static_cast<std::size_t>(n_head));
        }
    }
};

// One query row against `n` visible kv rows (key(j) / value(j): the j-th one's K / V, all kv heads)
// and `zeros` visible slots read as K = V = 0 (a score of 0 and no value). scores: n_head rows of
// `score_stride` floats. out: n_head * head_dim floats, overwritten.
template <class Key, class Value>
inline void attend_row(const attention_heads& a, const float* q, index_t n, index_t zeros, Key&& key, Value&& value, float* scores, std::size_t score_stride,
                       float* out) {
    using vec = Eigen::Map<Eigen::VectorXf>;
    using cvec = Eigen::Map<const Eigen::VectorXf>;
    const index_t hd = a.head_dim, nh = a.n_head, group = nh / a.n_kv_head;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    std::fill(out, out + static_cast<std::size_t>(nh * hd), 0.0f);
    for (index_t j = 0; j < n; ++j) {
        const float* k = key(j);
        for (index_t h = 0; h < nh; ++h)
            scores[static_cast<std::size_t>(h) * score_stride + static_cast<std::size_t>(j)] =
                detail::dot(q + static_cast<std::size_t>(h * hd), k + static_cast<std::size_t>(h / group * hd), static_cast<std::size_t>(hd)) * scale;
    }
    for (index_t h = 0; h < nh; ++h) {
        float* sc = scores + static_cast<std::size_t>(h) * score_stride;
        float m = n > 0 ? *std::max_element(sc, sc + n) : 0.0f;
        if (zeros > 0) m = std::max(m, 0.0f);
        float sum = zeros > 0 ? static_cast<float>(zeros) * std::exp(-m) : 0.0f;
        for (index_t j = 0; j < n; ++j) sum += (sc[j] = std::exp(sc[j] - m));
        const float inv = 1.0f / sum;
        for (index_t j = 0; j < n; ++j) sc[j] *= inv;
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
    scratch.reserve(slots, a.n_head);  // no-op once sized
    index_t* visible = scratch.visible.data();
    const std::size_t score_stride = static_cast<std::size_t>(scratch.slots);
    for (index_t i = 0; i < count; ++i) {
        const index_t qs = b.slots[static_cast<std::size_t>(row_of(i))];
        index_t n = 0, zeros = 0;
        for (index_t kv = 0; kv < kv_end; ++kv)
            if (mask(qs, kv)) {
                if (written(b.plan.fed_step.data(), kv, b.written_through)) visible[n++] = kv;
                else ++zeros;
            }
        for (index_t s = 0; s < b.num_sequences; ++s) {
            const std::size_t row = static_cast<std::size_t>(s) * static_cast<std::size_t>(count) + static_cast<std::size_t>(i);
            attend_row(
                a, q + row * q_stride, n, zeros, [&](index_t j) { return cache.key(layer, s, visible[j]).data(); },
                [&](index_t j) { return cache.value(layer, s, visible[j]).data(); }, scratch.scores.data(), score_stride, out + row * out_stride);
        }
    }
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
