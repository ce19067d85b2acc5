// What the GPT tests of both backends share (tests/test_gpt*.cpp, tests/cuda/test_gpt.cu): a tiny
// config, weights spread out for distinct greedy choices, and reading and comparing logits.
#pragma once

#include <span>
#include <string>
#include <vector>

#include <ordo/models/llamagen/gpt_weights.hpp>
#include <ordo/io/safetensors.hpp>

#include "tolerance.hpp"

namespace gpt_helpers {

inline ordo::models::llamagen::gpt_config tiny(ordo::index_t transitions = 0, ordo::index_t extra = 0) {
    ordo::models::llamagen::gpt_config c;
    c.dim = 32;
    c.n_layer = 2;
    c.n_head = 2;
    c.vocab_size = 40;
    c.num_classes = 5;
    c.multiple_of = 16;
    c.transition_tokens = transitions;
    c.extra_blocks = extra;
    return c;
}

// Random weights scaled up so that logits are spread out (distinct greedy choices).
inline ordo::models::llamagen::gpt_weights spread_weights(const ordo::models::llamagen::gpt_config& c, std::uint64_t seed) {
    ordo::models::llamagen::gpt_weights w = ordo::models::llamagen::random_weights(c, seed);
    for (std::size_t i = 0; i < w.tensors().size(); ++i)
        if (w.tensors()[i].shape.size() == 2)
            for (float& x : w.storage(i)) x *= 40.0f;
    return w;
}

// +inf on NaN, inf or a size mismatch (tolerance.hpp)
using tolerance::max_abs;
using tolerance::max_abs_diff;

inline std::vector<float> read_f32(const ordo::io::safetensors& f, const std::string& key) {
    const ordo::io::tensor_info& t = f.at(key);
    std::vector<float> v(static_cast<std::size_t>(t.numel()));
    f.read(t, v);
    return v;
}

}  // namespace gpt_helpers
