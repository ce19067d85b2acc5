// ordo/models/arpg/arpg_config.hpp - the shape of an ARPG transformer (hp-l33/ARPG, models/arpg.py): a
// two-pass "decoder-decoder" (YOCO-like) of LlamaGen-style self-decoder blocks, one shared K/V
// projection, and cross-decoder query blocks; the official presets, and the tensors a checkpoint of
// that shape holds (official state-dict key names). Standard library only.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../../config.hpp"
#include "../llamagen/gpt_config.hpp"  // tensor_spec, numel

namespace ordo::models::arpg {

using llamagen::numel;
using llamagen::tensor_spec;

// Upper bounds arpg_config::validate() enforces: generous for every published size (XXL: 24 + 24
// blocks, dim 1536, 24 heads, vocab 16384, 1000 classes), tight enough that a typo cannot overflow
// the size arithmetic.
struct arpg_limits {
    static constexpr index_t layers = 1024;  // self-decoder blocks (as many cross-decoder blocks)
    static constexpr index_t dim = 1 << 16;
    static constexpr index_t heads = 1024;
    static constexpr index_t ffn_hidden = 1 << 18;
    static constexpr index_t vocab = 1 << 22;
    static constexpr index_t classes = 1 << 22;
};

// What shapes the weights of an ARPG model (ModelArgs fields; dropouts and init do not). The
// official model has n_layer / 2 self-decoder and n_layer / 2 cross-decoder blocks.
struct arpg_config {
    index_t dim = 1024;
    index_t n_self = 12;         // layers.self_dec blocks (n_layer / 2)
    index_t n_cross = 12;        // layers.cross_dec blocks (n_layer / 2)
    index_t n_head = 16;         // not in the tensor shapes
    index_t ffn_hidden = 2816;   // find_multiple(int(8 dim / 3), multiple_of)
    index_t vocab_size = 16384;
    index_t num_classes = 1000;
    float norm_eps = 1e-5f;      // every RMSNorm
    float rope_base = 10000.0f;

    index_t head_dim() const { return dim / n_head; }
    // The embedding table: ids 0..V-1 tokens, V the [MASK] query, V+1+label the classes, V+C+1 the
    // null class (none_conds_id), V+C+2 the unused none_token_id.
    index_t embedding_rows() const { return vocab_size + num_classes + 3; }
    index_t mask_token_id() const { return vocab_size; }
    index_t none_conds_id() const { return vocab_size + num_classes + 1; }
    // the embedding id of class `label`; label == num_classes is the null class (none_conds_id)
    index_t class_id(index_t label) const { return vocab_size + 1 + label; }
    index_t null_label() const { return num_classes; }
    // kv cache: n_self layers of self-attention K/V, then one layer holding the shared K/V the
    // cross-decoder reads; every row is dim wide (no grouped-query attention)
    index_t cache_layers() const { return n_self + 1; }
    index_t shared_layer() const { return n_self; }
    index_t kv_width() const { return dim; }

    // Throws naming the first field that cannot describe a model.
    void validate() const {
        auto positive = [](long long v, const char* name) {
            if (v < 1) throw error(std::string("arpg config: ") + name + " must be >= 1, got " + ordo::detail::itos(v));
        };
        auto at_most = [](long long v, long long limit, const char* name) {
            if (v > limit)
                throw error(std::string("arpg config: ") + name + " " + ordo::detail::itos(v) + " is over the limit of " + ordo::detail::itos(limit) +
                            " (ordo::models::arpg::arpg_limits)");
        };
        positive(dim, "dim"); positive(n_self, "n_self"); positive(n_cross, "n_cross"); positive(n_head, "n_head");
        positive(ffn_hidden, "ffn_hidden"); positive(vocab_size, "vocab_size"); positive(num_classes, "num_classes");
        at_most(n_self, arpg_limits::layers, "n_self");
        at_most(n_cross, arpg_limits::layers, "n_cross");
        at_most(dim, arpg_limits::dim, "dim");
        at_most(n_head, arpg_limits::heads, "n_head");
        at_most(ffn_hidden, arpg_limits::ffn_hidden, "ffn_hidden");
        at_most(vocab_size, arpg_limits::vocab, "vocab_size");
        at_most(num_classes, arpg_limits::classes, "num_classes");
        if (dim % n_head) throw error("arpg config: dim " + ordo::detail::itos(dim) + " is not divisible by n_head " + ordo::detail::itos(n_head));
        if (head_dim() % 4)
            throw error("arpg config: head_dim " + ordo::detail::itos(head_dim()) + " must be a multiple of 4 (2D RoPE rotates head_dim/4 pairs per axis)");
        if (!(norm_eps > 0.0f) || !std::isfinite(norm_eps)) throw error("arpg config: norm_eps must be finite and > 0");
        if (!(rope_base > 1.0f) || !std::isfinite(rope_base)) throw error("arpg config: rope_base must be finite and > 1");
        ordo::detail::checked_mul(3 * static_cast<long long>(dim), dim, "arpg config: qkv size");
        ordo::detail::checked_mul(2 * static_cast<long long>(ffn_hidden), dim, "arpg config: feed-forward size");
        ordo::detail::checked_mul(vocab_size, dim, "arpg config: head size");
        ordo::detail::checked_mul(1LL * vocab_size + num_classes + 3, dim, "arpg config: embedding size");
    }

    std::string str() const {
        return "dim " + ordo::detail::itos(dim) + ", " + ordo::detail::itos(n_self) + " self + " + ordo::detail::itos(n_cross) + " cross blocks, heads " +
               ordo::detail::itos(n_head) + ", ffn " + ordo::detail::itos(ffn_hidden) + ", vocab " + ordo::detail::itos(vocab_size) + ", classes " +
               ordo::detail::itos(num_classes);
    }
};

// LlamaGen's FeedForward width: int(2 * 4 * dim / 3), rounded up to multiple_of.
inline index_t ffn_hidden_for(index_t dim, index_t multiple_of = 256) {
    const long long h = 2LL * 4 * dim / 3, m = multiple_of > 0 ? multiple_of : 1;
    return static_cast<index_t>((h + m - 1) / m * m);
}

// The official sizes (models/arpg.py ARPG_L / ARPG_XL / ARPG_XXL): n_layer (self + cross) / dim /
// heads, multiple_of 256.
struct arpg_preset {
    const char* name;
    index_t n_layer, dim, n_head;
};
inline constexpr arpg_preset arpg_presets[] = {{"L", 24, 1024, 16}, {"XL", 36, 1280, 20}, {"XXL", 48, 1536, 24}};

// A preset by name ("L", "ARPG-XL", "arpg_xxl", case-insensitive), with the ImageNet vocabulary
// (16384) and classes (1000).
inline arpg_config make_preset(std::string_view name) {
    std::string n;
    for (char c : name) n += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    if (n.rfind("ARPG-", 0) == 0 || n.rfind("ARPG_", 0) == 0) n = n.substr(5);
    for (const arpg_preset& p : arpg_presets)
        if (n == p.name) {
            arpg_config c;
            c.n_self = c.n_cross = p.n_layer / 2;
            c.dim = p.dim;
            c.n_head = p.n_head;
            c.ffn_hidden = ffn_hidden_for(p.dim);
            c.validate();
            return c;
        }
    std::string names;
    for (const arpg_preset& p : arpg_presets) names += std::string(names.empty() ? "" : ", ") + p.name;
    throw error("unknown ARPG preset '" + std::string(name) + "' (presets: " + names + ")");
}

// Every tensor a checkpoint of this config holds (official keys and shapes), in the order the
// weights are laid out: within a block to_q, to_k, to_v and w1, w3 are adjacent (one product each),
// and so are the shared layers.to_k, layers.to_v.
inline std::vector<tensor_spec> checkpoint_tensors(const arpg_config& c) {
    c.validate();
    using v = std::vector<std::int64_t>;
    const std::int64_t d = c.dim, h = c.ffn_hidden;
    std::vector<tensor_spec> t;
    t.push_back({"embeddings.weight", v{c.embedding_rows(), d}});
    auto ffn = [&](const std::string& p) {
        t.push_back({p + "ffn.w1.weight", v{h, d}});
        t.push_back({p + "ffn.w3.weight", v{h, d}});
        t.push_back({p + "ffn.w2.weight", v{d, h}});
        t.push_back({p + "attn_norm.weight", v{d}});
        t.push_back({p + "ffn_norm.weight", v{d}});
    };
    for (index_t l = 0; l < c.n_self; ++l) {
        const std::string p = "layers.self_dec." + ordo::detail::itos(l) + ".";
        t.push_back({p + "attn.to_q.weight", v{d, d}});
        t.push_back({p + "attn.to_k.weight", v{d, d}});
        t.push_back({p + "attn.to_v.weight", v{d, d}});
        t.push_back({p + "attn.proj.weight", v{d, d}});
        ffn(p);
    }
    t.push_back({"layers.norm.weight", v{d}});
    t.push_back({"layers.to_k.weight", v{d, d}});
    t.push_back({"layers.to_v.weight", v{d, d}});
    for (index_t l = 0; l < c.n_cross; ++l) {
        const std::string p = "layers.cross_dec." + ordo::detail::itos(l) + ".";
        t.push_back({p + "attn.to_q.weight", v{d, d}});
        t.push_back({p + "attn.proj.weight", v{d, d}});
        ffn(p);
    }
    t.push_back({"norm.weight", v{d}});
    t.push_back({"head.weight", v{c.vocab_size, d}});
    return t;
}

// Bytes of fp32 weights.
inline std::size_t weight_bytes(const arpg_config& c) {
    std::size_t n = 0;
    for (const tensor_spec& t : checkpoint_tensors(c)) n += numel(t);
    return n * sizeof(float);
}

}  // namespace ordo::models::arpg
