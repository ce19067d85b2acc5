// ordo/models/arpg/arpg_weights.hpp - the host weights of an ARPG transformer: one fp32 arena in
// checkpoint_tensors() order, seeded random weights, what a plan needs of the model, and the
// embedding row of a fed row. Standard library only (checkpoint.hpp reads them; a device backend
// could upload the same arena).
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "../../engine/session.hpp"
#include "../../plan.hpp"
#include "../weight_arena.hpp"
#include "arpg_config.hpp"

namespace ordo::models::arpg {

// Throws naming why an ARPG model of config `c` cannot run plan `p`: its query rows must be
// cross-decoder queries (query_mode::cross: not cached, reading the shared K/V), positions 2D RoPE
// on an image grid (any size: the rotation is computed, not a table), one prefix row (the class
// slot), one output head, teacher forcing by replaying the plan's steps.
inline void check_plan_fit(const arpg_config& c, const plan_view& p) {
    (void)c;
    if (p.header.queries != query_mode::cross)
        throw error("the ARPG backend runs query rows through its cross-decoder (not cached); this plan's queries are in_cache, not cross (use the arpg policy)");
    if (p.header.mask != mask_mode::step_causal)
        throw error("the ARPG backend's fed groups see the cache and themselves (the step-causal mask); this plan's mask is slot_causal (use the arpg policy)");
    for (const slot_entry& e : p.slots)
        if (e.kind == slot_kind::query)
            throw error("the plan lays out query slots (RandAR's P_t); an ARPG model's queries are never cached (use the arpg policy)");
    if (p.header.encoding != position_encoding::rope)
        throw error(std::string("the ARPG backend uses 2D RoPE; this plan's position encoding is ") +
                    (p.header.encoding == position_encoding::cell_table ? "cell_table (an LPD order needs an LPD checkpoint)" : "absolute"));
    if (p.grid().frames() != 1) throw error("the ARPG backend's 2D RoPE takes image grids; grid " + p.grid().str() + " has a time axis");
    if (p.header.prefix != 1) throw error("the plan has " + ordo::detail::itos(p.header.prefix) + " prefix rows, an ARPG model has 1 (the class slot)");
    if (p.header.num_transitions > 0) throw error("the plan feeds PAR transition tokens, which an ARPG model does not have");
    if (p.header.num_stand_ins > 0) throw error("the plan feeds stand-in rows (ZipAR), which the ARPG backend does not run");
    if (p.header.num_heads != 1) throw error("the plan reads " + ordo::detail::itos(p.header.num_heads) + " output heads, an ARPG model has 1");
    if (p.header.forcing != teacher_forcing::replay)
        throw error("an ARPG plan's teacher forcing must replay its steps (teacher_forcing::replay): its training layout feeds no cross-decoder queries");
}

// Where each tensor of an ARPG model lives in an arena of T laid out in checkpoint_tensors() order.
template <class T>
struct arpg_tensors {
    struct self_layer {
        const T* wqkv;  // to_q, to_k, to_v: [3 dim x dim], head-major within each
        const T* proj;  // [dim x dim]
        const T* w13;   // w1 then w3: [2 hidden x dim]
        const T* w2;    // [dim x hidden]
        const T* attn_norm;
        const T* ffn_norm;
    };
    struct cross_layer {
        const T* wq;    // to_q [dim x dim]
        const T* proj;
        const T* w13;
        const T* w2;
        const T* attn_norm;
        const T* ffn_norm;
    };
    const T* embeddings = nullptr;  // [V + C + 3 x dim]
    std::vector<self_layer> self_layers;
    const T* shared_norm = nullptr;  // layers.norm
    const T* shared_kv = nullptr;    // layers.to_k then layers.to_v: [2 dim x dim]
    std::vector<cross_layer> cross_layers;
    const T* norm = nullptr;
    const T* head = nullptr;  // [vocab x dim], no bias

    void bind(const arpg_config& c, const T* base, const std::vector<std::size_t>& offsets) {
        self_layers.clear();
        cross_layers.clear();
        std::size_t i = 0;
        auto next = [&] { return base + offsets[i++]; };
        embeddings = next();
        for (index_t l = 0; l < c.n_self; ++l) {
            self_layer L{};
            L.wqkv = next();
            next();  // to_k, to_v follow to_q
            next();
            L.proj = next();
            L.w13 = next();
            next();  // w3 follows w1
            L.w2 = next();
            L.attn_norm = next();
            L.ffn_norm = next();
            self_layers.push_back(L);
        }
        shared_norm = next();
        shared_kv = next();
        next();  // layers.to_v follows layers.to_k
        for (index_t l = 0; l < c.n_cross; ++l) {
            cross_layer L{};
            L.wq = next();
            L.proj = next();
            L.w13 = next();
            next();
            L.w2 = next();
            L.attn_norm = next();
            L.ffn_norm = next();
            cross_layers.push_back(L);
        }
        norm = next();
        head = next();
    }

    const T* embedding(const arpg_config& c, index_t id) const { return embeddings + static_cast<std::size_t>(id) * static_cast<std::size_t>(c.dim); }
    // embeddings[V + 1 + label]; label == num_classes is none_conds_id (the unconditional half)
    const T* class_row(const arpg_config& c, index_t label) const {
        if (label < 0 || label > c.num_classes)
            throw error("arpg forward: class label " + ordo::detail::itos(label) + " outside 0.." + ordo::detail::itos(c.num_classes) + " (" +
                        ordo::detail::itos(c.num_classes) + " is the null class, none_conds_id)");
        return embedding(c, c.class_id(label));
    }
    const T* token_row(const arpg_config& c, index_t token) const {
        if (token < 0 || token >= c.vocab_size)
            throw error("arpg forward: token " + ordo::detail::itos(token) + " outside the vocabulary of " + ordo::detail::itos(c.vocab_size));
        return embedding(c, token);
    }
    const T* mask_row(const arpg_config& c) const { return embedding(c, c.mask_token_id()); }

    // The embedding row of row r of sequence s: the class (or none_conds_id), a token, or the
    // [MASK] token of a cross-decoder query.
    const T* input_row(const arpg_config& c, const step_batch& b, index_t s, index_t r) const {
        const fed_input& in = b.input(s, r);
        switch (in.kind) {
            case slot_kind::prefix:
                if (in.index != 0) throw error("arpg forward: prefix row " + ordo::detail::itos(in.index) + ", an ARPG model has only the class slot");
                return class_row(c, in.value);
            case slot_kind::token: return token_row(c, in.value);
            case slot_kind::query: return mask_row(c);
            case slot_kind::transition: break;
        }
        throw error("arpg forward: fed row " + ordo::detail::itos(r) + " is a transition token (PAR), which an ARPG model does not have");
    }
};

// All weights in one fp32 arena, in checkpoint_tensors() order; tensors are views into it.
class arpg_weights : public arena_weights<arpg_config, arpg_tensors> {
public:
    arpg_weights() = default;
    explicit arpg_weights(const arpg_config& c) : arena_weights(c, "arpg weights", "an ARPG model") {}
};

// Seeded random weights of any config (benchmarks of the official sizes, tests without a
// checkpoint): RMSNorm weights 1, everything else uniform with standard deviation 0.02.
inline arpg_weights random_weights(const arpg_config& c, std::uint64_t seed) {
    arpg_weights w(c);
    fill_random(w, seed);
    return w;
}

}  // namespace ordo::models::arpg
