// ordo/models/vq/vq_config.hpp - the shape of LlamaGen's VQ tokenizer decoder (VQModel.decode_code:
// codebook, post_quant_conv and the Decoder), the tensors a checkpoint of that shape holds (official
// state-dict key names) and the host weights in one fp32 arena. Standard library only.
// The math is in /work/shared/conventions/vq16.md (docs/cpu-backend.md, "The VQ decoder").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../../config.hpp"
#include "../llamagen/gpt_config.hpp"  // tensor_spec, numel
#include "../weight_arena.hpp"

namespace ordo::models::vq {

// Upper bounds vq_config::validate() enforces: generous for every published tokenizer (VQ-16:
// codebook 16384 x 8, widths up to 512, 5 levels), tight enough that a hostile header cannot ask
// for terabytes or overflow the size arithmetic.
struct vq_limits {
    static constexpr index_t codebook = 1 << 22;
    static constexpr index_t embed_dim = 1 << 12;
    static constexpr index_t channels = 1 << 14;  // z_channels and every level's width
    static constexpr index_t levels = 8;          // len(ch_mult): downsample up to 128
    static constexpr index_t res_blocks = 16;
    static constexpr index_t image_side = 1 << 14;  // pixels along either side of a decoded image
    static constexpr std::uint64_t workspace_bytes = std::uint64_t{64} << 30;
};

inline constexpr index_t group_norm_groups = 32;  // Normalize(): nn.GroupNorm(32, C, eps=1e-6)
inline constexpr float group_norm_eps = 1e-6f;

// The decoder's shape. VQModel fixes ch = 128 and num_res_blocks = 2 for every VQ_models entry; the
// golden tiny case sets ch 32 through the Decoder's constructor, so both are fields here.
struct vq_config {
    index_t codebook_size = 16384;
    index_t embed_dim = 8;         // codebook_embed_dim
    index_t z_channels = 256;
    index_t ch = 128;
    std::vector<index_t> ch_mult{1, 1, 2, 2, 4};  // decoder_ch_mult, by resolution level (0: full resolution)
    index_t num_res_blocks = 2;    // each up level runs num_res_blocks + 1 ResnetBlocks
    // conv_blocks.0 .. conv_blocks.(attn_levels - 1) interleave an AttnBlock after each ResnetBlock;
    // LlamaGen: 1 (attention at the lowest resolution only).
    index_t attn_levels = 1;
    bool l2_norm = true;           // codebook_l2_norm: F.normalize the codebook rows on lookup
    static constexpr index_t out_channels = 3;  // R, G, B

    index_t levels() const { return static_cast<index_t>(ch_mult.size()); }
    // Pixels per token along each side: 2^(levels - 1).
    index_t downsample() const { return index_t{1} << (levels() - 1); }
    // Width of conv_blocks.i (i = 0: the lowest resolution, the most channels).
    index_t block_width(index_t i) const { return ch * ch_mult[static_cast<std::size_t>(levels() - 1 - i)]; }
    // Width of what enters conv_blocks.i: conv_in's output for i = 0, else the level before.
    index_t block_input(index_t i) const { return i == 0 ? block_width(0) : block_width(i - 1); }
    bool has_attention(index_t i) const { return i < attn_levels; }

    // Throws naming the first field that cannot describe a decoder, before anything is allocated:
    // GroupNorm(32) needs every normalised width divisible by 32.
    void validate() const {
        auto in_range = [](long long v, long long lo, long long hi, const char* name) {
            if (v < lo || v > hi)
                throw error(std::string("vq config: ") + name + " " + ordo::detail::itos(v) + " is outside " + ordo::detail::itos(lo) + ".." + ordo::detail::itos(hi));
        };
        in_range(codebook_size, 1, vq_limits::codebook, "codebook_size");
        in_range(embed_dim, 1, vq_limits::embed_dim, "codebook_embed_dim");
        in_range(z_channels, 1, vq_limits::channels, "z_channels");
        in_range(ch, 1, vq_limits::channels, "ch");
        in_range(levels(), 1, vq_limits::levels, "len(ch_mult)");
        in_range(num_res_blocks, 0, vq_limits::res_blocks, "num_res_blocks");
        in_range(attn_levels, 0, levels(), "attention levels");
        for (std::size_t i = 0; i < ch_mult.size(); ++i) {
            in_range(ch_mult[i], 1, vq_limits::channels, "ch_mult entry");
            const long long width = 1LL * ch * ch_mult[i];
            in_range(width, 1, vq_limits::channels, "ch * ch_mult entry");
            if (width % group_norm_groups)
                throw error("vq config: GroupNorm(32) needs every decoder width divisible by 32; ch " + ordo::detail::itos(ch) + " * ch_mult[" +
                            ordo::detail::itos(static_cast<long long>(i)) + "] = " + ordo::detail::itos(width) + " is not");
        }
        ordo::detail::checked_mul(codebook_size, embed_dim, "vq config: codebook size");
    }

    std::string str() const {
        std::string s = "codebook " + ordo::detail::itos(codebook_size) + "x" + ordo::detail::itos(embed_dim) + (l2_norm ? " (l2-normalised)" : "") +
                        ", z_channels " + ordo::detail::itos(z_channels) + ", ch " + ordo::detail::itos(ch) + ", ch_mult [";
        for (std::size_t i = 0; i < ch_mult.size(); ++i) s += (i ? "," : "") + ordo::detail::itos(ch_mult[i]);
        s += "], num_res_blocks " + ordo::detail::itos(num_res_blocks);
        if (attn_levels != 1) s += ", attention in the first " + ordo::detail::itos(attn_levels) + " levels";
        return s;
    }
};

// LlamaGen's VQ_16 (vq_model.py VQ_16: codebook 16384 x 8, z 256, ch 128, ch_mult [1,1,2,2,4]).
inline vq_config vq16() { return vq_config{}; }

// Where each tensor of the decoder lives in an arena of T laid out in checkpoint_tensors() order.
// shape() builds the module tree of a config (extents, null pointers); each() walks it in that
// order, which is the one place the key names and the layout are written down.
template <class T>
struct vq_tensors {
    struct conv_layer {
        const T* weight = nullptr;  // [out, in, k, k], PyTorch layout (a row-major out x in*k*k matrix)
        const T* bias = nullptr;
        index_t out = 0, in = 0, k = 1;
    };
    struct norm_layer {
        const T* weight = nullptr;  // GroupNorm gamma
        const T* bias = nullptr;    // beta
        index_t channels = 0;
    };
    struct res_block {
        norm_layer norm1;
        conv_layer conv1;
        norm_layer norm2;
        conv_layer conv2;
        conv_layer nin_shortcut;  // weight == nullptr: in == out, the shortcut is the identity
    };
    struct attn_block {
        norm_layer norm;
        conv_layer q, k, v, proj_out;
    };
    struct level {
        std::vector<res_block> res;
        std::vector<attn_block> attn;  // empty, or one after each res block
        conv_layer upsample;                 // weight == nullptr on the last (full-resolution) level
    };

    const T* codebook = nullptr;  // quantize.embedding.weight [codebook_size, embed_dim]
    index_t codebook_size = 0, embed_dim = 0;
    conv_layer post_quant_conv, conv_in;
    res_block mid_res0, mid_res1;  // decoder.mid.0 and .2
    attn_block mid_attn;           // decoder.mid.1
    std::vector<level> levels;     // decoder.conv_blocks.i
    norm_layer norm_out;
    conv_layer conv_out;

    void shape(const vq_config& c) {
        codebook_size = c.codebook_size;
        embed_dim = c.embed_dim;
        post_quant_conv = {nullptr, nullptr, c.z_channels, c.embed_dim, 1};
        const index_t w0 = c.block_width(0);
        conv_in = {nullptr, nullptr, w0, c.z_channels, 3};
        mid_res0 = make_res(w0, w0);
        mid_attn = make_attn(w0);
        mid_res1 = make_res(w0, w0);
        levels.assign(static_cast<std::size_t>(c.levels()), level{});
        for (index_t i = 0; i < c.levels(); ++i) {
            level& L = levels[static_cast<std::size_t>(i)];
            const index_t out = c.block_width(i);
            for (index_t j = 0; j <= c.num_res_blocks; ++j) {
                L.res.push_back(make_res(j == 0 ? c.block_input(i) : out, out));
                if (c.has_attention(i)) L.attn.push_back(make_attn(out));
            }
            if (i != c.levels() - 1) L.upsample = {nullptr, nullptr, out, out, 3};
        }
        norm_out = {nullptr, nullptr, c.block_width(c.levels() - 1)};
        conv_out = {nullptr, nullptr, vq_config::out_channels, c.block_width(c.levels() - 1), 3};
    }

    // f(key, pointer slot, shape) for every tensor, in checkpoint order.
    template <class F>
    void each(F&& f) {
        f(std::string("quantize.embedding.weight"), codebook, std::vector<std::int64_t>{codebook_size, embed_dim});
        each_conv(f, "post_quant_conv", post_quant_conv);
        each_conv(f, "decoder.conv_in", conv_in);
        each_res(f, "decoder.mid.0", mid_res0);
        each_attn(f, "decoder.mid.1", mid_attn);
        each_res(f, "decoder.mid.2", mid_res1);
        for (std::size_t i = 0; i < levels.size(); ++i) {
            const std::string p = "decoder.conv_blocks." + ordo::detail::itos(static_cast<long long>(i));
            level& L = levels[i];
            for (std::size_t j = 0; j < L.res.size(); ++j) {
                each_res(f, p + ".res." + ordo::detail::itos(static_cast<long long>(j)), L.res[j]);
                if (!L.attn.empty()) each_attn(f, p + ".attn." + ordo::detail::itos(static_cast<long long>(j)), L.attn[j]);
            }
            if (L.upsample.out) each_conv(f, p + ".upsample.conv", L.upsample);
        }
        each_norm(f, "decoder.norm_out", norm_out);
        each_conv(f, "decoder.conv_out", conv_out);
    }

    // tensor i of checkpoint_tensors(c) starts at base + offsets[i].
    void bind(const vq_config& c, const T* base, const std::vector<std::size_t>& offsets) {
        shape(c);
        std::size_t i = 0;
        each([&](const std::string&, const T*& slot, const std::vector<std::int64_t>&) { slot = base + offsets[i++]; });
    }

private:
    static res_block make_res(index_t in, index_t out) {
        res_block r;
        r.norm1 = {nullptr, nullptr, in};
        r.conv1 = {nullptr, nullptr, out, in, 3};
        r.norm2 = {nullptr, nullptr, out};
        r.conv2 = {nullptr, nullptr, out, out, 3};
        if (in != out) r.nin_shortcut = {nullptr, nullptr, out, in, 1};
        return r;
    }
    static attn_block make_attn(index_t c) {
        attn_block a;
        a.norm = {nullptr, nullptr, c};
        a.q = a.k = a.v = a.proj_out = {nullptr, nullptr, c, c, 1};
        return a;
    }
    template <class F>
    static void each_conv(F& f, const std::string& p, conv_layer& c) {
        f(p + ".weight", c.weight, std::vector<std::int64_t>{c.out, c.in, c.k, c.k});
        f(p + ".bias", c.bias, std::vector<std::int64_t>{c.out});
    }
    template <class F>
    static void each_norm(F& f, const std::string& p, norm_layer& n) {
        f(p + ".weight", n.weight, std::vector<std::int64_t>{n.channels});
        f(p + ".bias", n.bias, std::vector<std::int64_t>{n.channels});
    }
    template <class F>
    static void each_res(F& f, const std::string& p, res_block& r) {
        each_norm(f, p + ".norm1", r.norm1);
        each_conv(f, p + ".conv1", r.conv1);
        each_norm(f, p + ".norm2", r.norm2);
        each_conv(f, p + ".conv2", r.conv2);
        if (r.nin_shortcut.out) each_conv(f, p + ".nin_shortcut", r.nin_shortcut);
    }
    template <class F>
    static void each_attn(F& f, const std::string& p, attn_block& a) {
        each_norm(f, p + ".norm", a.norm);
        each_conv(f, p + ".q", a.q);
        each_conv(f, p + ".k", a.k);
        each_conv(f, p + ".v", a.v);
        each_conv(f, p + ".proj_out", a.proj_out);
    }
};

// Every tensor of VQModel's decode path (quantize.embedding, post_quant_conv, decoder.*) for a
// decoder of config `c`, in checkpoint (arena) order, with the official key names and shapes.
inline std::vector<llamagen::tensor_spec> checkpoint_tensors(const vq_config& c) {
    c.validate();
    vq_tensors<float> t;
    t.shape(c);
    std::vector<llamagen::tensor_spec> specs;
    t.each([&](const std::string& key, const float*&, const std::vector<std::int64_t>& shape) { specs.push_back({key, shape}); });
    return specs;
}

// Parameters of the decode path (VQ-16: 42,583,171).
inline std::size_t parameter_count(const vq_config& c) {
    std::size_t n = 0;
    for (const llamagen::tensor_spec& t : checkpoint_tensors(c)) n += llamagen::numel(t);
    return n;
}

// Multiply-accumulates of one decode of an h x w token grid (convolutions and attention products;
// VQ-16 at 16 x 16 tokens: about 126 G).
inline double decode_macs(const vq_config& c, index_t h, index_t w) {
    double macs = 0, px = static_cast<double>(h) * w;
    auto conv = [&](double out, double in, double k) { macs += out * in * k * k * px; };
    auto res = [&](double in, double out) {
        conv(out, in, 3);
        conv(out, out, 3);
        if (in != out) conv(out, in, 1);
    };
    auto attn = [&](double ch) {
        conv(ch, ch, 1), conv(ch, ch, 1), conv(ch, ch, 1), conv(ch, ch, 1);
        macs += 2 * ch * px * px;  // q^T k and v p^T
    };
    conv(c.z_channels, c.embed_dim, 1);
    const double w0 = c.block_width(0);
    conv(w0, c.z_channels, 3);
    res(w0, w0), attn(w0), res(w0, w0);
    for (index_t i = 0; i < c.levels(); ++i) {
        for (index_t j = 0; j <= c.num_res_blocks; ++j) {
            res(j == 0 ? c.block_input(i) : c.block_width(i), c.block_width(i));
            if (c.has_attention(i)) attn(c.block_width(i));
        }
        if (i != c.levels() - 1) {
            px *= 4;
            conv(c.block_width(i), c.block_width(i), 3);
        }
    }
    conv(vq_config::out_channels, c.block_width(c.levels() - 1), 3);
    return macs;
}

// All decoder weights in one fp32 arena, in checkpoint_tensors() order; vq_tensors views into it.
class vq_weights : public arena_weights<vq_config, vq_tensors> {
public:
    vq_weights() = default;
    explicit vq_weights(const vq_config& c) : arena_weights(c, "vq weights", "a VQ decoder") {}
};

}  // namespace ordo::models::vq
