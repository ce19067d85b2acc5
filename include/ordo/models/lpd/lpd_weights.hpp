// ordo/models/lpd/lpd_weights.hpp - the host weights of an LPD decoder: one fp32 arena in checkpoint
// order, seeded random weights, what a plan needs of the model, and the input row of a fed row.
// Standard library only (checkpoint.hpp reads them; a device backend could upload the same arena).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "../../engine/session.hpp"
#include "../../plan.hpp"
#include "../weight_arena.hpp"
#include "lpd_config.hpp"

namespace ordo::models::lpd {

// Throws naming why an LPD of config `c` cannot run plan `p`: positions must come from a per-request
// cell table (the learned pos_embed is indexed by grid cell), the grid must have the model's cell
// count, one prefix row (the class slot), one output head.
inline void check_plan_fit(const lpd_config& c, const plan_view& p) {
    if (p.header.encoding != position_encoding::cell_table)
        throw error("the LPD backend adds the learned pos_embed row of each row's grid cell; this plan's position encoding is " +
                    std::string(p.header.encoding == position_encoding::rope ? "rope" : "absolute") +
                    ", not cell_table (use the lpd policy)");
    if (p.num_positions() != c.num_cells)
        throw error("the plan's grid " + p.grid().str() + " has " + ordo::detail::itos(p.num_positions()) + " cells, the LPD checkpoint's pos_embed has " +
                    ordo::detail::itos(c.pos_rows()) + " rows (" + ordo::detail::itos(c.num_cells) + " cells + the class row)");
    if (p.header.queries != query_mode::in_cache || p.header.mask != mask_mode::step_causal)
        throw error("the LPD backend writes its query rows into the cache under the step-causal mask (LPD's block-causal groups); this plan's queries "
                    "are " + std::string(p.header.queries == query_mode::cross ? "cross (an ARPG order)" : "in_cache") + " under the " +
                    (p.header.mask == mask_mode::slot_causal ? "slot_causal" : "step_causal") + " mask (use the lpd policy)");
    if (p.header.prefix != 1)
        throw error("the plan has " + ordo::detail::itos(p.header.prefix) + " prefix rows, an LPD model has 1 (the class slot)");
    if (p.header.num_heads != 1)
        throw error("the plan reads " + ordo::detail::itos(p.header.num_heads) + " output heads, an LPD model has 1");
}

// Where each tensor of an LPD lives in an arena of T laid out in checkpoint_tensors() order.
template <class T>
struct lpd_tensors {
    struct layer {
        const T* norm1_w; const T* norm1_b;
        const T* qkv_w;   // [3 dim x dim], rows [q; k; v], head-major within each
        const T* qkv_b;   // [3 dim]
        const T* proj_w; const T* proj_b;
        const T* norm2_w; const T* norm2_b;
        const T* fc1_w;  const T* fc1_b;   // [hidden x dim], [hidden]
        const T* fc2_w;  const T* fc2_b;   // [dim x hidden], [dim]
    };
    const T* class_emb = nullptr;    // [num_classes x dim]
    const T* token_emb = nullptr;    // [vocab x dim]
    const T* fake_latent = nullptr;  // [dim]: the unconditional class row
    const T* pos_embed = nullptr;    // [num_cells + 1 x dim]: row 0 the class slot, 1 + cell a cell
    const T* z_proj_ln_w = nullptr;
    const T* z_proj_ln_b = nullptr;
    const T* mask_token = nullptr;   // [dim]: the position-query row
    std::vector<layer> layers;
    const T* norm_w = nullptr;
    const T* norm_b = nullptr;
    const T* head = nullptr;         // [vocab x dim], no bias

    void bind(const lpd_config& c, const T* base, const std::vector<std::size_t>& offsets) {
        layers.clear();
        std::size_t i = 0;
        auto next = [&] { return base + offsets[i++]; };
        class_emb = next();
        token_emb = next();
        fake_latent = next();
        pos_embed = next();
        z_proj_ln_w = next();
        z_proj_ln_b = next();
        mask_token = next();
        for (index_t l = 0; l < c.depth; ++l) {
            layer L{};
            L.norm1_w = next(); L.norm1_b = next();
            L.qkv_w = next(); L.qkv_b = next();
            L.proj_w = next(); L.proj_b = next();
            L.norm2_w = next(); L.norm2_b = next();
            L.fc1_w = next(); L.fc1_b = next();
            L.fc2_w = next(); L.fc2_b = next();
            layers.push_back(L);
        }
        norm_w = next();
        norm_b = next();
        head = next();
    }

    // The content row (before pos_embed) of a class slot: class_emb[label], or fake_latent for
    // label == num_classes (the unconditional half; LPD has no null row). Throws on a bad label.
    const T* class_row(const lpd_config& c, index_t label) const {
        if (label == c.num_classes) return fake_latent;
        if (label < 0 || label > c.num_classes)
            throw error("lpd forward: class label " + ordo::detail::itos(label) + " outside 0.." + ordo::detail::itos(c.num_classes) + " (" +
                        ordo::detail::itos(c.num_classes) + " is the unconditional fake_latent)");
        return class_emb + static_cast<std::size_t>(label) * static_cast<std::size_t>(c.dim);
    }
    const T* token_row(const lpd_config& c, index_t token) const {
        if (token < 0 || token >= c.vocab_size)
            throw error("lpd forward: token " + ordo::detail::itos(token) + " outside the vocabulary of " + ordo::detail::itos(c.vocab_size));
        return token_emb + static_cast<std::size_t>(token) * static_cast<std::size_t>(c.dim);
    }
    // pos_embed row of a grid cell (1 + cell); -1: the class slot's row 0.
    const T* pos_row(const lpd_config& c, index_t cell) const {
        if (cell < -1 || cell >= c.num_cells)
            throw error("lpd forward: grid cell " + ordo::detail::itos(cell) + " outside the model's " + ordo::detail::itos(c.num_cells) + " cells");
        return pos_embed + static_cast<std::size_t>(cell + 1) * static_cast<std::size_t>(c.dim);
    }

    // The two rows whose sum is the input of row r of sequence s (before z_proj_ln): its content
    // (class / fake_latent, token, or mask_token for a position query) and its pos_embed row
    // (0 for the class slot, 1 + cell for a token and for a query, whose cell is its target).
    struct input_rows {
        const T* content;
        const T* pos;
    };
    input_rows input(const lpd_config& c, const step_batch& b, index_t s, index_t r) const {
        const fed_input& in = b.input(s, r);
        switch (in.kind) {
            case slot_kind::prefix:
                if (in.index != 0) throw error("lpd forward: prefix row " + ordo::detail::itos(in.index) + ", an LPD model has only the class slot");
                return {class_row(c, in.value), pos_embed};
            case slot_kind::token:
                if (in.cell < 0) throw error("lpd forward: token row " + ordo::detail::itos(r) + " carries no grid cell (the plan needs the cell_table encoding)");
                return {token_row(c, in.value), pos_row(c, in.cell)};
            case slot_kind::query:
                if (in.cell < 0) throw error("lpd forward: query row " + ordo::detail::itos(r) + " carries no target cell (the plan needs the cell_table encoding)");
                return {mask_token, pos_row(c, in.cell)};
            case slot_kind::transition: break;
        }
        throw error("lpd forward: fed row " + ordo::detail::itos(r) + " is a transition token (PAR), which an LPD model does not have");
    }
};

// All weights in one fp32 arena, in checkpoint_tensors() order; tensors are views into it.
class lpd_weights : public arena_weights<lpd_config, lpd_tensors> {
public:
    lpd_weights() = default;
    explicit lpd_weights(const lpd_config& c) : arena_weights(c, "lpd weights", "an LPD") {}
};

// Seeded random weights of any config (benchmarks of the official sizes, tests without a
// checkpoint): LayerNorm weights 1, biases 0, everything else uniform with standard deviation 0.02.
inline lpd_weights random_weights(const lpd_config& c, std::uint64_t seed) {
    lpd_weights w(c);
    fill_random(w, seed);
    return w;
}

}  // namespace ordo::models::lpd
