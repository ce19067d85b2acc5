// Host references for the CUDA tests, compiled by the host compiler (reference.cpp): the golden
// runs' JSON (nlohmann) and the Eigen backend's logits and tokens for the same weights and plans.
#pragma once

#include <string>
#include <vector>

#include <ordo/models/llamagen/gpt_weights.hpp>
#include <ordo/plan.hpp>

#include "greedy_decode.hpp"

namespace ordo_test {

struct golden_run {
    int label = 0;
    float cfg_scale = 1.0f;
    int num_forward_calls = 0;
    std::vector<int> tokens;  // greedy grid, raster order
};
golden_run read_golden_run(const std::string& json_path);

// What the Eigen backend decodes with greedy sampling (CFG `scale`, null label from the config).
decoded eigen_greedy_decode(const ordo::models::llamagen::gpt_weights& w, const ordo::plan_view& p, int label, float scale);

}  // namespace ordo_test
