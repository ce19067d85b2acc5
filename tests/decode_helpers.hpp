// Decoding a golden model under a plan, step by step, for the e2e tests of the CPU models
// (LPD, RandAR, ARPG): contiguous or paged caches whose memory is full of NaN, a callback that sees
// each step's logits before they are committed.
#pragma once

#include <algorithm>
#include <cstdio>
#include <limits>
#include <span>
#include <vector>

#include <catch2/catch.hpp>

#include <ordo/engine/generate.hpp>
#include <ordo/io/safetensors.hpp>
#include <ordo/engine/kv_cache.hpp>
#include <ordo/ordo.hpp>

#include "tolerance.hpp"

namespace decode_helpers {

// Runs `p` on `shared` (a copy of it: models keep per-step buffers) for `reqs` with guidance
// `guidance` (the uncond half's class: null_label), with the cache memory full of NaN (a slot read
// before the plan writes it would poison the logits), contiguous or paged with pages out of order. f(session, step batch, logits) sees every step before it is committed.
template <class Model, class Sampler, class F>
std::vector<std::vector<ordo::index_t>> decode(const Model& shared, const ordo::plan& p, const std::vector<ordo::request>& reqs, ordo::cfg guidance,
                                               ordo::index_t null_label, bool paged, Sampler sampler, F&& f) {
    Model model = shared;
    ordo::session_options o;
    o.guidance = guidance;
    o.null_label = null_label;
    o.seed = 11;
    ordo::session s(p.view(), std::span<const ordo::request>(reqs), sampler, model.vocab_size(), o);
    const ordo::index_t len = ordo::kv_cache_len(p), layers = model.num_layers(), width = model.cache_width(), seqs = s.num_sequences();
    std::vector<float> logits;
    auto run = [&](auto& cache) {
        ordo::check_fit(p.view(), model, cache, seqs);
        while (!s.done()) {
            const ordo::step_batch& b = s.next();
            logits.resize(b.logits_size());
            model.forward(b, cache, logits);
            f(s, b, logits);
            s.commit(logits);
        }
    };
    if (!paged) {
        std::vector<float> memory(ordo::contiguous_kv_cache<float>::required_size(layers, seqs, len, width), std::numeric_limits<float>::quiet_NaN());
        ordo::contiguous_kv_cache<float> cache(std::span<float>(memory), layers, seqs, len, width);
        run(cache);
    } else {
        const ordo::index_t page = 16, per = (len + page - 1) / page;
        std::vector<float> pages(static_cast<std::size_t>(seqs * per) * 2 * static_cast<std::size_t>(layers * page * width),
                                 std::numeric_limits<float>::quiet_NaN());
        std::vector<ordo::index_t> indptr{0}, indices;
        for (ordo::index_t q = 0; q < seqs; ++q) {
            for (ordo::index_t k = 0; k < per; ++k) indices.push_back(k * seqs + (seqs - 1 - q));
            indptr.push_back(static_cast<ordo::index_t>(indices.size()));
        }
        ordo::paged_kv_cache<float> cache(pages, layers, page, width, indptr, indices);
        run(cache);
    }
    std::vector<std::vector<ordo::index_t>> out;
    for (ordo::index_t i = 0; i < s.num_requests(); ++i) out.emplace_back(s.tokens(i).begin(), s.tokens(i).end());
    return out;
}

// A callback for decode(): the largest |diff| between each emitted position's final logits (head
// mix, CFG) and the golden run's `step_XXX` rows (sampler order).
struct golden_steps {
    const ordo::io::safetensors& file;
    ordo::index_t vocab;
    float worst = 0.0f;
    std::vector<float> mixed{};
    template <class Session>
    void operator()(Session& s, const ordo::step_batch& b, std::span<const float> logits) {
        char key[16];
        std::snprintf(key, sizeof key, "step_%03d", b.step);
        const ordo::io::tensor_info& t = file.at(key);
        std::vector<float> ref(static_cast<std::size_t>(t.numel()));
        file.read(t, std::span<float>(ref));
        const ordo::index_t k = b.plan.step(b.step).num_emitted();
        REQUIRE(ref.size() == static_cast<std::size_t>(k) * static_cast<std::size_t>(vocab));
        mixed.resize(static_cast<std::size_t>(vocab));
        for (ordo::index_t e = 0; e < k; ++e) {
            s.final_logits(logits, 0, e, mixed);
            worst = std::max(worst, tolerance::max_abs_diff(mixed, std::span<const float>(ref).subspan(static_cast<std::size_t>(e) * mixed.size(), mixed.size())));
        }
    }
};

}  // namespace decode_helpers
