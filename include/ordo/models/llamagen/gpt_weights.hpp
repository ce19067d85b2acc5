// ordo/models/llamagen/gpt_weights.hpp - the host weights of a LlamaGen GPT: one fp32 arena in checkpoint
// order, seeded random weights, and the config variant a plan needs. Standard library only, so the
// CUDA backend loads and uploads the same weights (checkpoint.hpp reads them) without Eigen.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "../../engine/session.hpp"
#include "../../plan.hpp"
#include "../weight_arena.hpp"
#include "gpt_config.hpp"

namespace ordo::models::llamagen {

// Does the plan feed query rows (RandAR's P slots, or queries written into other slots)?
inline bool has_query_rows(const plan_view& p) {
    if (p.header.num_queries > 0) return true;
    for (const slot_entry& e : p.slots)
        if (e.kind == slot_kind::query) return true;
    return false;
}

// A config of any size given the variant a plan needs: PAR's transition tokens M_1..M_n, NAR's
// extra block for the B head, RandAR's position-instruction vector for query rows (for random
// weights; a checkpoint's variant is read off the file).
inline gpt_config fit_variant(gpt_config c, const plan_view& p) {
    c.transition_tokens = p.header.num_transitions;
    c.extra_blocks = p.header.num_heads > 1 ? 1 : 0;
    c.position_instruction = has_query_rows(p);
    return c;
}

// Throws naming why a checkpoint of config `c` cannot run plan `p` (both backends check this in
// prepare()): absolute positions, a time axis, a prefix length, PAR transition tokens, NAR heads or
// RandAR's position-instruction vector the checkpoint lacks, or query rows that are not cached.
inline void check_plan_fit(const gpt_config& c, const plan_view& p) {
    if (p.header.encoding == position_encoding::cell_table)
        throw error("the plan reads positions from a learned table per cell (cell_table: an LPD order); the GPT uses 2D RoPE: an LPD order needs an LPD checkpoint");
    if (p.header.encoding != position_encoding::rope)
        throw error("the GPT backend uses 2D RoPE; this plan asks for absolute positions (a video order needs a model with learned positions)");
    if (has_query_rows(p)) {
        if (p.header.queries != query_mode::in_cache)
            throw error("the plan's query rows are not written to the cache (query_mode cross: ARPG's cross-decoder queries); the LlamaGen GPT "
                        "writes and attends every row like a token (an ARPG order needs an ARPG checkpoint)");
        if (!c.position_instruction)
            throw error("a RandAR plan needs the position-instruction vector (pos_instruct_embeddings [1, " + ordo::detail::itos(c.dim) +
                        "]) to embed its query rows; this checkpoint has none (it is not a RandAR checkpoint)");
    }
    if (p.grid().frames() != 1)
        throw error("the GPT backend's 2D RoPE takes image grids; grid " + p.grid().str() + " has a time axis");
    if (p.header.prefix != c.cls_token_num)
        throw error("the plan has " + ordo::detail::itos(p.header.prefix) + " prefix rows, the model " + ordo::detail::itos(c.cls_token_num));
    if (p.header.num_transitions > 0 && p.header.num_transitions != c.transition_tokens)
        throw error("the plan feeds " + ordo::detail::itos(p.header.num_transitions) + " PAR transition tokens (M_1..M_" +
            ordo::detail::itos(p.header.num_transitions) + "), the checkpoint has " + ordo::detail::itos(c.transition_tokens) +
            (c.transition_tokens ? " (its regions do not match this policy)" : " (it is not a PAR checkpoint)"));
    if (p.header.num_heads > c.num_output_heads())
        throw error("the plan reads " + ordo::detail::itos(p.header.num_heads) + " output heads, the checkpoint has " + ordo::detail::itos(c.num_output_heads()) +
            (c.num_output_heads() == 1 ? " (NAR needs the extra block and the B head: medusa_norm/medusa_output)" : ""));
}

// Where each tensor of a GPT lives in an arena of T laid out in checkpoint_tensors() order: the
// host weights (T = float) and the CUDA backend's device weights (float or bf16) bind the same way.
template <class T>
struct gpt_tensors {
    struct layer {
        const T* wqkv;      // [qkv_rows x dim]
        const T* wo;        // [dim x dim]
        const T* w13;       // w1 then w3: [2 * hidden x dim], one product for both
        const T* w2;        // [dim x hidden]
        const T* attn_norm;
        const T* ffn_norm;
    };
    const T* pos_instruct = nullptr;  // RandAR: the position-instruction vector [dim] (unrotated)
    const T* cls = nullptr;
    const T* tok = nullptr;
    const T* transition = nullptr;  // PAR: row i is M_{i+1}
    std::vector<layer> layers;
    const T* norm = nullptr;
    const T* output = nullptr;
    const T* medusa_norm = nullptr;
    const T* medusa_output = nullptr;

    // tensor i of checkpoint_tensors(c) starts at base + offsets[i]. w1 and w3 are adjacent in that
    // order, so their storage is one [2h x dim] block.
    void bind(const gpt_config& c, const T* base, const std::vector<std::size_t>& offsets) {
        layers.clear();
        std::size_t i = 0;
        auto next = [&] { return base + offsets[i++]; };
        pos_instruct = c.position_instruction ? next() : nullptr;
        cls = next();
        tok = next();
        transition = c.transition_tokens ? next() : nullptr;
        for (index_t l = 0; l < c.num_layers(); ++l) {
            layer L{};
            L.wqkv = next();
            L.wo = next();
            L.w13 = next();
            next();  // w3 follows w1
            L.w2 = next();
            L.attn_norm = next();
            L.ffn_norm = next();
            layers.push_back(L);
        }
        norm = next();
        output = next();
        medusa_norm = c.extra_blocks ? next() : nullptr;
        medusa_output = c.extra_blocks ? next() : nullptr;
    }
};

// The embedding row of what row r of sequence s carries (the class label, a token, M_i, what a
// ZipAR stand-in copies, or RandAR's position-instruction vector for a query row), checked against
// the tables: a bad id is an error naming it. A query row's embedding is this vector *rotated* per
// head by the 2D RoPE of the row's target cell: a backend copies it and rotates the copy (the Eigen
// GPT does; the CUDA GPT refuses query rows).
template <class T>
const T* embedding_row(const gpt_tensors<T>& w, const gpt_config& c, const step_batch& b, index_t s, index_t r) {
    const fed_input& in = b.input(s, r);
    const std::size_t d = static_cast<std::size_t>(c.dim);
    switch (in.kind) {
        case slot_kind::prefix:
            if (in.value < 0 || in.value >= c.label_rows())
                throw error("gpt forward: class label " + ordo::detail::itos(in.value) + " outside 0.." + ordo::detail::itos(c.num_classes) + " (" +
                            ordo::detail::itos(c.num_classes) + " is the null class)");
            return w.cls + static_cast<std::size_t>(in.value) * d;
        case slot_kind::token:
            if (in.value < 0 || in.value >= c.vocab_size)
                throw error("gpt forward: token " + ordo::detail::itos(in.value) + " outside the vocabulary of " + ordo::detail::itos(c.vocab_size));
            return w.tok + static_cast<std::size_t>(in.value) * d;
        case slot_kind::transition:
            if (in.value < 1 || in.value > c.transition_tokens)
                throw error("gpt forward: transition token M_" + ordo::detail::itos(in.value) + " but the model has " + ordo::detail::itos(c.transition_tokens));
            return w.transition + static_cast<std::size_t>(in.value - 1) * d;
        case slot_kind::query:
            if (!w.pos_instruct)
                throw error("gpt forward: row " + ordo::detail::itos(r) + " is a query row (RandAR's position instruction), but the model has no "
                            "position-instruction vector (pos_instruct_embeddings)");
            return w.pos_instruct;
    }
    throw error("gpt forward: fed row " + ordo::detail::itos(r) + " carries no known kind of content");
}

// The tensor offsets of one arena (weight_arena.hpp; the CUDA backend lays its arena out the same way).
using models::tensor_offsets;

// All weights in one fp32 arena, in checkpoint_tensors() order; tensors are views into it.
class gpt_weights : public arena_weights<gpt_config, gpt_tensors> {
public:
    gpt_weights() = default;
    explicit gpt_weights(const gpt_config& c) : arena_weights(c, "gpt weights", "a GPT") {}
};

// Seeded random weights with the official init's scales (linear and embedding N(0, 0.02) as
// uniform of the same variance, norms 1): for timing and for tests that need no checkpoint.
inline gpt_weights random_weights(const gpt_config& c, std::uint64_t seed) {
    gpt_weights w(c);
    fill_random(w, seed);
    return w;
}

}  // namespace ordo::models::llamagen
