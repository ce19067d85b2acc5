// ordo/models/vq/procedural.hpp - VQ decoder weights defined by a formula instead of a file: the
// counter-based generator of the golden data (golden/vq/README.md, "Weight init"), which stands in
// for the 170 MB VQ-16-shaped checkpoint in the tests and gives the benchmarks a realistic decoder
// (activations stay well-conditioned at every width). Standard library only.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "vq_config.hpp"

namespace ordo::models::vq {

// FNV-1a 64 of a key's bytes.
inline std::uint64_t fnv1a64(std::string_view s) {
    std::uint64_t h = 0xCBF29CE484222325ull;
    for (const char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001B3ull;
    }
    return h;
}

// Element i of tensor `key`: splitmix64 of (fnv1a64(key) ^ seed) + i, its top 24 bits as
// t in [-1, 1), then (float)(t * amp), plus `offset` in float when it is not 0.
inline void procedural_fill(std::span<float> out, std::string_view key, std::uint64_t seed, double amp, double offset) {
    const std::uint64_t base = fnv1a64(key) ^ seed;
    for (std::size_t i = 0; i < out.size(); ++i) {
        std::uint64_t z = base + i + 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        const std::int64_t k = static_cast<std::int64_t>(z >> 40);
        const double t = static_cast<double>(2 * k - 16777216) / 16777216.0;
        float v = static_cast<float>(t * amp);
        if (offset != 0) v = static_cast<float>(offset) + v;
        out[i] = v;
    }
}

struct procedural_scale {
    double amp = 0, offset = 0;
};

// The golden recipe's scale of a tensor: conv weights uniform with std gain / sqrt(fan_in) (gain 1,
// `conv_out_gain` for decoder.conv_out), conv biases amp 0.1, GroupNorm weights 1 +- 0.2, GroupNorm
// biases +- 0.2, the codebook +- 1 (deliberately not unit-norm).
inline procedural_scale procedural_recipe(const llamagen::tensor_spec& t, double conv_out_gain) {
    if (t.key == "quantize.embedding.weight") return {1.0, 0.0};
    const std::size_t dot = t.key.rfind('.');
    const std::size_t prev = t.key.rfind('.', dot - 1);
    const std::string_view module = std::string_view(t.key).substr(prev + 1, dot - prev - 1);
    const bool weight = t.key.ends_with(".weight");
    if (module.starts_with("norm")) return weight ? procedural_scale{0.2, 1.0} : procedural_scale{0.2, 0.0};
    if (!weight) return {0.1, 0.0};
    const double fan_in = static_cast<double>(t.shape[1] * t.shape[2] * t.shape[3]);
    const double gain = t.key == "decoder.conv_out.weight" ? conv_out_gain : 1.0;
    return {gain * std::sqrt(3.0 / fan_in), 0.0};
}

// A decoder of config `c` with every tensor from the golden generator under `seed` (vq16_shapes:
// VQ-16, seed 1601, conv_out_gain 1; vq_tiny: seed 1101, conv_out_gain 0.7).
inline vq_weights procedural_weights(const vq_config& c, std::uint64_t seed, double conv_out_gain = 1.0) {
    vq_weights w(c);
    for (std::size_t i = 0; i < w.tensors().size(); ++i) {
        const procedural_scale s = procedural_recipe(w.tensors()[i], conv_out_gain);
        procedural_fill(w.storage(i), w.tensors()[i].key, seed, s.amp, s.offset);
    }
    return w;
}

}  // namespace ordo::models::vq
