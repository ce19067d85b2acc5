// Greedy decoding through a session, recording every position's final logits (as the sampler saw
// them): the one loop the CUDA tests run on the Eigen model (reference.cpp, host compiler) and on
// the GPU model (test_gpt.cu, nvcc).
#pragma once

#include <span>
#include <vector>

#include <ordo/engine/generate.hpp>

namespace ordo_test {

struct decoded {
    std::vector<float> logits;  // [position][vocab], raster order
    std::vector<int> tokens;
};

template <class Model, class Cache>
decoded greedy_decode(Model& model, Cache& cache, const ordo::plan_view& p, int label, float scale, ordo::index_t null_label) {
    const ordo::request req{label, 0, {}};
    ordo::session_options o;
    o.guidance.scale = scale;
    o.null_label = null_label;
    ordo::session s(p, std::span<const ordo::request>(&req, 1), ordo::make_sampler(ordo::greedy{}), model.vocab_size(), o);
    ordo::check_fit(p, model, cache, s.num_sequences());
    const std::size_t v = static_cast<std::size_t>(model.vocab_size());
    decoded d;
    d.logits.assign(static_cast<std::size_t>(p.num_positions()) * v, 0.0f);
    std::vector<float> logits;
    while (!s.done()) {
        const ordo::step_batch& b = s.next();
        logits.resize(b.logits_size());
        model.forward(b, cache, logits);
        const ordo::step_view st = p.step(b.step);
        for (ordo::index_t e = 0; e < st.num_emitted(); ++e)
            s.final_logits(logits, 0, e, std::span<float>(d.logits).subspan(static_cast<std::size_t>(st.emitted[e]) * v, v));
        s.commit(logits);
    }
    d.tokens.assign(s.tokens(0).begin(), s.tokens(0).end());
    return d;
}

}  // namespace ordo_test
