// ordo/models/weight_arena.hpp - what the host weights of every model family (LlamaGen GPT, LPD,
// ARPG) share: one fp32 arena laid out in checkpoint_tensors() order with the family's tensor views
// bound into it, and seeded random contents. Standard library only, so a device backend can upload
// the same arena without Eigen.
#pragma once

#include <algorithm>
#include <cstdint>
#include <new>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "llamagen/gpt_config.hpp"  // tensor_spec, numel

namespace ordo::models {

// Offsets of the tensors of `specs` in one arena, and its total size.
inline std::vector<std::size_t> tensor_offsets(const std::vector<llamagen::tensor_spec>& specs, std::size_t& total) {
    std::vector<std::size_t> offsets;
    total = 0;
    for (const llamagen::tensor_spec& t : specs) {
        offsets.push_back(total);
        total += llamagen::numel(t);
    }
    return offsets;
}

// All weights of a model of config `Config` in one fp32 arena, in checkpoint_tensors(Config) order;
// `Tensors<float>` (a family's views: a struct with bind(config, base, offsets)) points into it.
// Move-only: a second copy of the weights is never wanted.
template <class Config, template <class> class Tensors>
class arena_weights : public Tensors<float> {
public:
    arena_weights() = default;
    arena_weights(const arena_weights&) = delete;
    arena_weights& operator=(const arena_weights&) = delete;
    arena_weights(arena_weights&& o) noexcept { *this = std::move(o); }
    arena_weights& operator=(arena_weights&& o) noexcept {
        config_ = o.config_;
        keys_ = std::move(o.keys_);
        offsets_ = std::move(o.offsets_);
        arena_ = std::move(o.arena_);
        if (arena_.empty()) static_cast<Tensors<float>&>(*this) = Tensors<float>{};
        else this->bind(config_, arena_.data(), offsets_);
        return *this;
    }

    const Config& config() const { return config_; }
    const std::vector<llamagen::tensor_spec>& tensors() const { return keys_; }
    // The storage of tensor i of tensors() (loaders write it in place).
    std::span<float> storage(std::size_t i) { return {arena_.data() + offsets_[i], llamagen::numel(keys_[i])}; }
    std::span<const float> storage(std::size_t i) const { return {arena_.data() + offsets_[i], llamagen::numel(keys_[i])}; }
    std::size_t bytes() const { return arena_.size() * sizeof(float); }

protected:
    // Allocates the arena of config `c`; `what` names the weights in the error ("gpt weights"),
    // `a_model` the model ("a GPT").
    arena_weights(const Config& c, const char* what, const char* a_model) : config_(c), keys_(checkpoint_tensors(c)) {
        std::size_t total = 0;
        offsets_ = tensor_offsets(keys_, total);
        try {
            arena_.resize(total);
        } catch (const std::bad_alloc&) {
            throw error(std::string(what) + ": cannot allocate " + ordo::detail::bytes_str(total * sizeof(float)) + " for " + a_model + " with " + c.str());
        }
        this->bind(config_, arena_.data(), offsets_);
    }

private:
    Config config_{};
    std::vector<llamagen::tensor_spec> keys_;
    std::vector<std::size_t> offsets_;
    std::vector<float> arena_;
};

// Fills weights `w` (an arena_weights) with seeded random values for timing and for tests that need
// no checkpoint, at the official inits' scales: tensors whose key ends in ".bias" 0, other 1-D
// tensors (norm weights) 1, everything else (linear and embedding weights, N(0, 0.02) officially)
// uniform with the same standard deviation 0.02, from one splitmix64 stream per seed.
template <class W>
void fill_random(W& w, std::uint64_t seed) {
    std::uint64_t s = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    for (std::size_t i = 0; i < w.tensors().size(); ++i) {
        std::span<float> t = w.storage(i);
        const std::string& key = w.tensors()[i].key;
        const bool bias = key.size() >= 5 && key.compare(key.size() - 5, 5, ".bias") == 0;
        if (bias || w.tensors()[i].shape.size() == 1) {
            std::fill(t.begin(), t.end(), bias ? 0.0f : 1.0f);
            continue;
        }
        const float a = 0.02f * 1.7320508f;  // uniform(-a, a) has standard deviation 0.02
        for (float& x : t) {
            s += 0x9E3779B97F4A7C15ull;  // splitmix64
            std::uint64_t z = s;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            z ^= z >> 31;
            x = a * (static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f);
        }
    }
}

}  // namespace ordo::models
