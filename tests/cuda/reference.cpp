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

decoded eigen_greedy_decode(const ordo::models::llamagen::gpt_weights& w, const ordo::plan_view& p, int label, float scale) {
    ordo::eigen::gpt_model model(w);
    ordo::contiguous_kv_cache<float> cache(model.num_layers(), scale > 1.0f ? 2 : 1, ordo::kv_cache_len(p), model.cache_width());
    return greedy_decode(model, cache, p, label, scale, w.config().null_label());
}

}  // namespace ordo_test
