// Mock models for engine tests: no transformer, but real use of the step batch, the mask and the
// KV cache, so a test can check what the engine asked for and that a sequence's tokens depend on
// its own context only.
#pragma once

#include <cstdint>
#include <vector>

#include <ordo/engine/generate.hpp>
#include <ordo/ordo.hpp>

namespace mock {

// Logits from a hash of what the row can see: its own input and slot, and the cache rows of every
// kv slot the mask lets it attend to (written by earlier steps or by this one). Deterministic, and
// a function of the sequence's own context only.
struct context_model {
    ordo::index_t vocab = 32;
    ordo::index_t heads = 2;
    ordo::index_t vocab_size() const { return vocab; }
    ordo::index_t num_heads() const { return heads; }

    static std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
        h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
        return h * 0xBF58476D1CE4E5B9ull;
    }

    template <class C>
    void forward(const ordo::step_batch& b, C& cache, std::span<float> logits) {
        for (ordo::index_t s = 0; s < b.num_sequences; ++s)  // write this step's rows first
            for (ordo::index_t r = 0; r < b.num_rows; ++r) {
                auto k = cache.key(0, s, b.slots[r]);
                k[0] = static_cast<float>(b.input(s, r).value);
                k[1] = static_cast<float>(static_cast<int>(b.input(s, r).kind) + 8 * (b.input(s, r).cell + 1));  // what, and where
            }
        for (ordo::index_t s = 0; s < b.num_sequences; ++s)
            for (ordo::index_t r = 0; r < b.num_rows; ++r) {
                std::uint64_t h = mix(0, static_cast<std::uint64_t>(b.slots[r]));
                for (ordo::index_t kv = 0; kv < cache.capacity(); ++kv)
                    if (ordo::visible(b.plan, b.slots[r], kv)) {
                        // a slot not written yet reads as zeros, whatever the memory holds (ZipAR)
                        const bool written = ordo::written(b.plan.fed_step.data(), kv, b.written_through);
                        auto k = cache.key(0, s, kv);
                        h = mix(mix(h, static_cast<std::uint64_t>(kv)), written ? static_cast<std::uint64_t>(k[0] * 131 + k[1]) : 0);
                    }
                for (ordo::index_t hd = 0; hd < b.num_heads; ++hd) {
                    std::uint64_t x = mix(h, static_cast<std::uint64_t>(hd));
                    float* out = logits.data() + ((s * b.num_rows + r) * b.num_heads + hd) * vocab;
                    for (ordo::index_t v = 0; v < vocab; ++v) {
                        x = mix(x, static_cast<std::uint64_t>(v));
                        out[v] = static_cast<float>(x >> 40) / static_cast<float>(1 << 24) * 8.0f;
                    }
                }
            }
    }
};

// Records every step it is asked to run, then answers like context_model.
struct recording_model : context_model {
    struct record {
        ordo::index_t step;
        std::vector<ordo::index_t> slots;
        std::vector<ordo::rope_coord> rope;
        std::vector<ordo::fed_input> inputs;
        ordo::index_t sequences;
    };
    std::vector<record> steps;

    template <class C>
    void forward(const ordo::step_batch& b, C& cache, std::span<float> logits) {
        steps.push_back({b.step, {b.slots.begin(), b.slots.end()}, {b.rope.begin(), b.rope.end()}, {b.inputs.begin(), b.inputs.end()}, b.num_sequences});
        context_model::forward(b, cache, logits);
    }
};

}  // namespace mock
