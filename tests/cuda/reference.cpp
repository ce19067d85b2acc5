// Host side of the CUDA tests (see reference.hpp): compiled by the C++ compiler, with Eigen.
#include "reference.hpp"

#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include <ordo/eigen/gpt.hpp>
#include <ordo/ordo.hpp>

namespace ordo_test {

golden_run read_golden_run(const std::string& json_path) {
    std::ifstream f(json_path);
    if (!f) throw std::runtime_error("cannot open " + json_path);
    const nlohmann::json j = nlohmann::json::parse(f);
    golden_run r;
    r.label = j["label"].get<int>();
    r.cfg_scale = j["cfg_scale"].get<float>();
    r.num_forward_calls = j["num_forward_calls"].get<int>();
    for (const auto& row : j["tokens_raster"])
        for (int t : row) r.tokens.push_back(t);
    return r;
}

cpu_decode eigen_greedy_decode(const ordo::eigen::gpt_weights& w, const ordo::plan_view& p, int label, float scale) {
    ordo::eigen::gpt_model model(w);
    const ordo::request req{label, 0, {}};
    ordo::session_options o;
    o.guidance.scale = scale;
    o.null_label = w.config().null_label();
    ordo::session s(p, std::span<const ordo::request>(&req, 1), ordo::make_sampler(ordo::greedy{}), model.vocab_size(), o);
    ordo::contiguous_kv_cache<float> cache(model.num_layers(), s.num_sequences(), ordo::kv_cache_len(p), model.cache_width());
    ordo::check_fit(p, model, cache, s.num_sequences());
    const std::size_t v = static_cast<std::size_t>(model.vocab_size());
    cpu_decode d;
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
