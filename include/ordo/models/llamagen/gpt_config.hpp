// ordo/models/llamagen/gpt_config.hpp - the shape of a LlamaGen GPT and its PAR / NAR / RandAR variants, the
// official presets, and the tensors a checkpoint of that shape holds (official state-dict key names).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../../config.hpp"

namespace ordo::models::llamagen {

// Upper bounds gpt_config::validate() enforces (docs/cpu-backend.md, "Limits"). Generous for
// every published size (3B: 24 layers, dim 3200, 32 heads, vocab 16384, 1000 classes), tight
// enough that a typo in a config cannot overflow the size arithmetic or ask for terabytes.
struct gpt_limits {
    static constexpr index_t layers = 1024;        // n_layer + medusa_attention_num
    static constexpr index_t dim = 1 << 16;
    static constexpr index_t heads = 1024;         // n_head (n_kv_head divides it)
    static constexpr index_t vocab = 1 << 22;
    static constexpr index_t classes = 1 << 22;
    static constexpr index_t multiple_of = 1 << 16;
    static constexpr float ffn_dim_multiplier = 64.0f;
    // transition tokens: at most max_grid_positions (PAR has one per region but the first)
};

// The official ModelArgs fields that shape the weights (dropouts and init ranges do not).
struct gpt_config {
    index_t dim = 768;
    index_t n_layer = 12;
    index_t n_head = 12;
    index_t n_kv_head = 0;             // 0: n_head (no grouped-query attention)
    index_t vocab_size = 16384;
    index_t num_classes = 1000;        // the label table has num_classes + 1 rows; the last is the null class
    index_t cls_token_num = 1;         // prefix rows (class-conditional: 1)
    index_t multiple_of = 256;         // FFN hidden rounding
    float ffn_dim_multiplier = 0.0f;   // 0: none
    float norm_eps = 1e-5f;
    float rope_base = 10000.0f;
    index_t transition_tokens = 0;     // PAR: spe_token_num (regions - 1), rows of the M_i table
    index_t extra_blocks = 0;          // NAR: medusa_attention_num, blocks between the R and the B head
    // RandAR: the learned position-instruction vector pos_instruct_embeddings [1, dim]. A query row
    // (slot_kind::query) embeds as it, viewed [n_head, head_dim] and rotated per head by the 2D RoPE
    // of its target cell (then its q/k are rotated again inside attention, like every row).
    bool position_instruction = false;

    index_t head_dim() const { return dim / n_head; }
    index_t kv_heads() const { return n_kv_head > 0 ? n_kv_head : n_head; }
    index_t num_layers() const { return n_layer + extra_blocks; }
    index_t num_output_heads() const { return extra_blocks > 0 ? 2 : 1; }  // R (main) and B
    index_t label_rows() const { return num_classes + 1; }
    index_t null_label() const { return num_classes; }
    // LlamaGen FeedForward: int(2 * 4 * dim / 3), times the multiplier, rounded up to multiple_of
    index_t ffn_hidden() const {
        long long h = 2LL * 4 * dim / 3;
        if (ffn_dim_multiplier > 0.0f) h = static_cast<long long>(static_cast<double>(ffn_dim_multiplier) * static_cast<double>(h));
        const long long m = multiple_of > 0 ? multiple_of : 1;
        return static_cast<index_t>((h + m - 1) / m * m);
    }
    index_t qkv_rows() const { return (n_head + 2 * kv_heads()) * head_dim(); }
    index_t kv_width() const { return kv_heads() * head_dim(); }

    // Throws naming the first field that cannot describe a model.
    void validate() const {
        auto positive = [](index_t v, const char* name) {
            if (v < 1) throw error(std::string("gpt config: ") + name + " must be >= 1, got " + ordo::detail::itos(v));
        };
        positive(dim, "dim"); positive(n_layer, "n_layer"); positive(n_head, "n_head"); positive(vocab_size, "vocab_size");
        positive(num_classes, "num_classes"); positive(cls_token_num, "cls_token_num"); positive(multiple_of, "multiple_of");
        if (n_kv_head < 0) throw error("gpt config: n_kv_head must be >= 0 (0: same as n_head)");
        if (transition_tokens < 0) throw error("gpt config: spe_token_num must be >= 0");
        if (extra_blocks < 0) throw error("gpt config: medusa_attention_num must be >= 0");
        auto at_most = [](long long v, long long limit, const char* name) {
            if (v > limit)
                throw error(std::string("gpt config: ") + name + " " + ordo::detail::itos(v) + " is over the limit of " + ordo::detail::itos(limit) +
                            " (ordo::models::llamagen::gpt_limits)");
        };
        at_most(1LL * n_layer + extra_blocks, gpt_limits::layers, "n_layer + medusa_attention_num");
        at_most(dim, gpt_limits::dim, "dim");
        at_most(n_head, gpt_limits::heads, "n_head");
        at_most(vocab_size, gpt_limits::vocab, "vocab_size");
        at_most(num_classes, gpt_limits::classes, "num_classes");
        at_most(multiple_of, gpt_limits::multiple_of, "multiple_of");
        at_most(transition_tokens, max_grid_positions, "spe_token_num");
        if (!(ffn_dim_multiplier >= 0.0f) || ffn_dim_multiplier > gpt_limits::ffn_dim_multiplier)
            throw error("gpt config: ffn_dim_multiplier must be in [0, " + ordo::detail::itos(static_cast<long long>(gpt_limits::ffn_dim_multiplier)) + "]");
        if (dim % n_head) throw error("gpt config: dim " + ordo::detail::itos(dim) + " is not divisible by n_head " + ordo::detail::itos(n_head));
        if (n_head % kv_heads()) throw error("gpt config: n_head " + ordo::detail::itos(n_head) + " is not divisible by n_kv_head " + ordo::detail::itos(kv_heads()));
        if (head_dim() % 4)
            throw error("gpt config: head_dim " + ordo::detail::itos(head_dim()) + " must be a multiple of 4 (2D RoPE rotates head_dim/4 pairs per axis)");
        if (!(norm_eps > 0.0f) || !std::isfinite(norm_eps)) throw error("gpt config: norm_eps must be finite and > 0");
        if (!(rope_base > 1.0f) || !std::isfinite(rope_base)) throw error("gpt config: rope_base must be finite and > 1");
        if (cls_token_num != 1)
            throw error("gpt config: cls_token_num " + ordo::detail::itos(cls_token_num) + " is a text-conditional model; this backend runs class-conditional (c2i) models, cls_token_num 1");
        // every weight must be addressable by a 32-bit row index and a 64-bit element count
        ordo::detail::checked_mul(qkv_rows(), dim, "gpt config: wqkv size");
        ordo::detail::checked_mul(vocab_size, dim, "gpt config: output size");
        ordo::detail::checked_mul(ffn_hidden(), dim, "gpt config: feed-forward size");
        ordo::detail::checked_mul(label_rows(), dim, "gpt config: class embedding size");
        ordo::detail::checked_mul(transition_tokens, dim, "gpt config: transition embedding size");
    }

    std::string str() const {
        std::string s = "dim " + ordo::detail::itos(dim) + ", n_layer " + ordo::detail::itos(n_layer) + ", n_head " + ordo::detail::itos(n_head);
        if (n_kv_head) s += ", n_kv_head " + ordo::detail::itos(n_kv_head);
        s += ", vocab " + ordo::detail::itos(vocab_size) + ", classes " + ordo::detail::itos(num_classes) + ", ffn " + ordo::detail::itos(ffn_hidden());
        if (transition_tokens) s += ", PAR transition tokens " + ordo::detail::itos(transition_tokens);
        if (extra_blocks) s += ", NAR extra blocks " + ordo::detail::itos(extra_blocks);
        if (position_instruction) s += ", RandAR position instruction";
        return s;
    }
};

// The official class-conditional sizes (LlamaGen gpt.py GPT_models): layers / dim / heads.
struct gpt_preset {
    const char* name;
    index_t n_layer, dim, n_head;
};
inline constexpr gpt_preset gpt_presets[] = {
    {"B", 12, 768, 12}, {"L", 24, 1024, 16}, {"XL", 36, 1280, 20}, {"XXL", 48, 1536, 24}, {"3B", 24, 3200, 32},
};

// A preset by name ("B", "GPT-B", case-insensitive), with the ImageNet defaults of ModelArgs.
inline gpt_config make_preset(std::string_view name) {
    std::string n;
    for (char c : name) n += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    if (n.rfind("GPT-", 0) == 0) n = n.substr(4);
    for (const gpt_preset& p : gpt_presets)
        if (n == p.name) {
            gpt_config c;
            c.n_layer = p.n_layer;
            c.dim = p.dim;
            c.n_head = p.n_head;
            return c;
        }
    std::string names;
    for (const gpt_preset& p : gpt_presets) names += std::string(names.empty() ? "" : ", ") + p.name;
    throw error("unknown GPT preset '" + std::string(name) + "' (presets: " + names + ")");
}

// One tensor of a checkpoint: official key and shape.
struct tensor_spec {
    std::string key;
    std::vector<std::int64_t> shape;
};

// Every tensor a checkpoint of this config holds, in the order the weights are laid out (the
// official state-dict order: RandAR's pos_instruct_embeddings is a parameter of the root module, so
// it comes first).
inline std::vector<tensor_spec> checkpoint_tensors(const gpt_config& c) {
    c.validate();
    using v = std::vector<std::int64_t>;
    std::vector<tensor_spec> t;
    if (c.position_instruction) t.push_back({"pos_instruct_embeddings", v{1, c.dim}});
    t.push_back({"cls_embedding.embedding_table.weight", v{c.label_rows(), c.dim}});
    t.push_back({"tok_embeddings.weight", v{c.vocab_size, c.dim}});
    if (c.transition_tokens) t.push_back({"spe_tok_embeddings.special_embeddings.weight", v{c.transition_tokens, c.dim}});
    for (index_t l = 0; l < c.num_layers(); ++l) {
        const std::string p = "layers." + ordo::detail::itos(l) + ".";
        t.push_back({p + "attention.wqkv.weight", v{c.qkv_rows(), c.dim}});
        t.push_back({p + "attention.wo.weight", v{c.dim, c.n_head * c.head_dim()}});
        t.push_back({p + "feed_forward.w1.weight", v{c.ffn_hidden(), c.dim}});
        t.push_back({p + "feed_forward.w3.weight", v{c.ffn_hidden(), c.dim}});
        t.push_back({p + "feed_forward.w2.weight", v{c.dim, c.ffn_hidden()}});
        t.push_back({p + "attention_norm.weight", v{c.dim}});
        t.push_back({p + "ffn_norm.weight", v{c.dim}});
    }
    t.push_back({"norm.weight", v{c.dim}});
    t.push_back({"output.weight", v{c.vocab_size, c.dim}});
    if (c.extra_blocks) {
        t.push_back({"medusa_norm.weight", v{c.dim}});
        t.push_back({"medusa_output.weight", v{c.vocab_size, c.dim}});
    }
    return t;
}

inline std::size_t numel(const tensor_spec& t) {
    std::size_t n = 1;
    for (std::int64_t d : t.shape) n *= static_cast<std::size_t>(d);
    return n;
}

// Bytes of fp32 weights (what a decode step streams, plus the embedding tables it only indexes).
inline std::size_t weight_bytes(const gpt_config& c) {
    std::size_t n = 0;
    for (const tensor_spec& t : checkpoint_tensors(c)) n += numel(t);
    return n * sizeof(float);
}

}  // namespace ordo::models::llamagen
