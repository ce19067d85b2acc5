// ordo/models/lpd/lpd_config.hpp - the shape of an LPD decoder (mit-han-lab/lpd, models/lpd.py): a
// MAR-style pre-LN ViT with a learned absolute position table, a position-query token and an
// unconditional class vector; the official presets, and the tensors a checkpoint of that shape
// holds (official state-dict key names). Standard library only.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../../config.hpp"
#include "../llamagen/gpt_config.hpp"  // tensor_spec, numel

namespace ordo::models::lpd {

using llamagen::numel;
using llamagen::tensor_spec;

// Upper bounds lpd_config::validate() enforces: generous for every published size (XXL: 48
// blocks, dim 1536, 24 heads, vocab 16384, 1000 classes, 1024 cells), tight enough that a typo
// cannot overflow the size arithmetic.
struct lpd_limits {
    static constexpr index_t depth = 1024;
    static constexpr index_t dim = 1 << 16;
    static constexpr index_t heads = 1024;
    static constexpr index_t mlp_hidden = 1 << 18;
    static constexpr index_t vocab = 1 << 22;
    static constexpr index_t classes = 1 << 22;
};

// What shapes the weights of an LPD (dropouts, label-drop probability and init do not).
struct lpd_config {
    index_t dim = 1024;          // decoder_embed_dim
    index_t depth = 24;          // decoder_depth (blocks)
    index_t num_heads = 16;      // decoder_num_heads (not in the tensor shapes)
    index_t mlp_hidden = 4096;   // int(dim * mlp_ratio)
    index_t vocab_size = 16384;  // vqgan_vocab_size
    index_t num_classes = 1000;  // class_num: class_emb has exactly this many rows (no null row)
    index_t num_cells = 256;     // seq_len = (img_size / vqgan_stride)^2; pos_embed has num_cells + 1 rows
    float norm_eps = 1e-6f;      // every LayerNorm (z_proj_ln, norm1/2, norm)

    index_t head_dim() const { return dim / num_heads; }
    index_t qkv_rows() const { return 3 * dim; }
    index_t kv_width() const { return dim; }
    index_t pos_rows() const { return num_cells + 1; }
    // the class label of the unconditional half: fake_latent stands in for class_emb[num_classes]
    index_t null_label() const { return num_classes; }

    // Throws naming the first field that cannot describe a model.
    void validate() const {
        auto positive = [](long long v, const char* name) {
            if (v < 1) throw error(std::string("lpd config: ") + name + " must be >= 1, got " + ordo::detail::itos(v));
        };
        auto at_most = [](long long v, long long limit, const char* name) {
            if (v > limit)
                throw error(std::string("lpd config: ") + name + " " + ordo::detail::itos(v) + " is over the limit of " + ordo::detail::itos(limit) +
                            " (ordo::models::lpd::lpd_limits)");
        };
        positive(dim, "dim"); positive(depth, "depth"); positive(num_heads, "num_heads"); positive(mlp_hidden, "mlp_hidden");
        positive(vocab_size, "vocab_size"); positive(num_classes, "num_classes"); positive(num_cells, "num_cells");
        at_most(depth, lpd_limits::depth, "depth");
        at_most(dim, lpd_limits::dim, "dim");
        at_most(num_heads, lpd_limits::heads, "num_heads");
        at_most(mlp_hidden, lpd_limits::mlp_hidden, "mlp_hidden");
        at_most(vocab_size, lpd_limits::vocab, "vocab_size");
        at_most(num_classes, lpd_limits::classes, "num_classes");
        at_most(num_cells, max_grid_positions, "num_cells");
        if (dim % num_heads)
            throw error("lpd config: dim " + ordo::detail::itos(dim) + " is not divisible by num_heads " + ordo::detail::itos(num_heads) +
                        " (decoder_num_heads)");
        if (!(norm_eps > 0.0f) || !std::isfinite(norm_eps)) throw error("lpd config: norm_eps must be finite and > 0");
        ordo::detail::checked_mul(qkv_rows(), dim, "lpd config: qkv size");
        ordo::detail::checked_mul(mlp_hidden, dim, "lpd config: mlp size");
        ordo::detail::checked_mul(vocab_size, dim, "lpd config: token embedding size");
        ordo::detail::checked_mul(num_classes, dim, "lpd config: class embedding size");
        ordo::detail::checked_mul(pos_rows(), dim, "lpd config: pos_embed size");
    }

    std::string str() const {
        return "dim " + ordo::detail::itos(dim) + ", depth " + ordo::detail::itos(depth) + ", heads " + ordo::detail::itos(num_heads) + ", mlp " +
               ordo::detail::itos(mlp_hidden) + ", vocab " + ordo::detail::itos(vocab_size) + ", classes " + ordo::detail::itos(num_classes) +
               ", cells " + ordo::detail::itos(num_cells);
    }
};

// The official sizes (models/lpd.py lpd_l / lpd_xl / lpd_xxl): blocks / dim / heads, mlp_ratio 4.
struct lpd_preset {
    const char* name;
    index_t depth, dim, num_heads;
};
inline constexpr lpd_preset lpd_presets[] = {{"L", 24, 1024, 16}, {"XL", 36, 1280, 20}, {"XXL", 48, 1536, 24}};

// A preset by name ("L", "lpd_xl", "LPD-XXL", case-insensitive) for `num_cells` cells (256 for
// 256 px, 1024 for 512 px), with the ImageNet vocabulary (16384) and classes (1000).
inline lpd_config make_preset(std::string_view name, index_t num_cells = 256) {
    std::string n;
    for (char c : name) n += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    if (n.rfind("LPD-", 0) == 0 || n.rfind("LPD_", 0) == 0) n = n.substr(4);
    for (const lpd_preset& p : lpd_presets)
        if (n == p.name) {
            lpd_config c;
            c.depth = p.depth;
            c.dim = p.dim;
            c.num_heads = p.num_heads;
            c.mlp_hidden = 4 * p.dim;
            c.num_cells = num_cells;
            c.validate();
            return c;
        }
    std::string names;
    for (const lpd_preset& p : lpd_presets) names += std::string(names.empty() ? "" : ", ") + p.name;
    throw error("unknown LPD preset '" + std::string(name) + "' (presets: " + names + ")");
}

// Every tensor a checkpoint of this config holds (official keys and shapes), in the order the
// weights are laid out.
inline std::vector<tensor_spec> checkpoint_tensors(const lpd_config& c) {
    c.validate();
    using v = std::vector<std::int64_t>;
    const std::int64_t d = c.dim;
    std::vector<tensor_spec> t;
    t.push_back({"class_emb.weight", v{c.num_classes, d}});
    t.push_back({"token_emb.weight", v{c.vocab_size, d}});
    t.push_back({"fake_latent", v{1, d}});
    t.push_back({"pos_embed", v{1, c.pos_rows(), d}});
    t.push_back({"z_proj_ln.weight", v{d}});
    t.push_back({"z_proj_ln.bias", v{d}});
    t.push_back({"mask_token", v{1, 1, d}});
    for (index_t l = 0; l < c.depth; ++l) {
        const std::string p = "blocks." + ordo::detail::itos(l) + ".";
        t.push_back({p + "norm1.weight", v{d}});
        t.push_back({p + "norm1.bias", v{d}});
        t.push_back({p + "attn.qkv.weight", v{c.qkv_rows(), d}});
        t.push_back({p + "attn.qkv.bias", v{c.qkv_rows()}});
        t.push_back({p + "attn.proj.weight", v{d, d}});
        t.push_back({p + "attn.proj.bias", v{d}});
        t.push_back({p + "norm2.weight", v{d}});
        t.push_back({p + "norm2.bias", v{d}});
        t.push_back({p + "mlp.fc1.weight", v{c.mlp_hidden, d}});
        t.push_back({p + "mlp.fc1.bias", v{c.mlp_hidden}});
        t.push_back({p + "mlp.fc2.weight", v{d, c.mlp_hidden}});
        t.push_back({p + "mlp.fc2.bias", v{d}});
    }
    t.push_back({"norm.weight", v{d}});
    t.push_back({"norm.bias", v{d}});
    t.push_back({"head.weight", v{c.vocab_size, d}});
    return t;
}

// Bytes of fp32 weights.
inline std::size_t weight_bytes(const lpd_config& c) {
    std::size_t n = 0;
    for (const tensor_spec& t : checkpoint_tensors(c)) n += numel(t);
    return n * sizeof(float);
}

}  // namespace ordo::models::lpd
