// ordo/models/vq/checkpoint.hpp - a VQ tokenizer's decoder from a safetensors checkpoint with the
// official key names (LlamaGen's checkpoint["model"]). The shape is read off the tensors, so the
// official VQ-16 and any other width / depth load without a config. Strict: every decode-path
// tensor must be there with its exact shape, F32/F16/BF16/F64, and nothing else may be, except
// the parts of a full VQModel that decode_code never runs, which are skipped: the encoder
// (encoder.*), quant_conv.* and the usage buffer quantize.codebook_used. Every check runs on the
// file's header before the weight arena is allocated.
#pragma once

#include <algorithm>
#include <numeric>
#include <string>
#include <string_view>

#include "../../io/json.hpp"
#include "../../io/safetensors.hpp"
#include "../checkpoint_io.hpp"
#include "vq_config.hpp"

namespace ordo::models::vq {

inline const model_names names{"a VQ decoder", "VQ decoder", "VQ tokenizer"};

// A tensor of a full VQModel checkpoint that the decode path does not use (skipped on load).
inline bool encoder_side_key(std::string_view key) {
    return key.starts_with("encoder.") || key.starts_with("quant_conv.") || key == "quantize.codebook_used";
}

// The decoder's shape read off `f`'s tensors: codebook from quantize.embedding.weight, z_channels
// from post_quant_conv, the levels and their widths from decoder.conv_blocks.i.res.0.conv1,
// num_res_blocks from the res blocks of level 0, attention from the levels that have attn.0.
// l2 normalisation is not in the file; every LlamaGen VQ model uses it (codebook_l2_norm=True).
inline vq_config config_from_checkpoint(const io::safetensors& f, bool l2_norm = true) {
    using ordo::detail::itos;
    vq_config c;
    if (!f.find("quantize.embedding.weight") && !f.find("decoder.conv_in.weight"))
        throw error("checkpoint " + f.source() + ": not a VQ tokenizer (no quantize.embedding.weight, no decoder.*)" +
                    (f.find("tok_embeddings.weight") ? std::string(" but a GPT's tok_embeddings: the generator, not its tokenizer") : std::string()));
    const io::tensor_info& cb = need_tensor(f, "quantize.embedding.weight", 2, names);
    const io::tensor_info& pq = need_tensor(f, "post_quant_conv.weight", 4, names);
    const auto level_key = [](index_t i, const std::string& rest) { return "decoder.conv_blocks." + itos(i) + "." + rest; };
    index_t n = 0;
    while (n <= vq_limits::levels && f.find(level_key(n, "res.0.conv1.weight"))) ++n;
    if (n == 0) throw error("checkpoint " + f.source() + ": missing tensor '" + level_key(0, "res.0.conv1.weight") + "' (VQ tokenizer)");
    if (n > vq_limits::levels)
        throw error("checkpoint " + f.source() + ": more than " + itos(vq_limits::levels) + " decoder levels (decoder.conv_blocks.*)");
    index_t res = 0;
    while (res <= vq_limits::res_blocks && f.find(level_key(0, "res." + itos(res) + ".conv1.weight"))) ++res;
    index_t attn = 0;
    while (attn < n && f.find(level_key(attn, "attn.0.norm.weight"))) ++attn;
    std::vector<index_t> widths;
    index_t g = 0;
    for (index_t i = 0; i < n; ++i) {
        const index_t w = static_cast<index_t>(need_tensor(f, level_key(i, "res.0.conv1.weight"), 4, names).shape[0]);
        widths.push_back(w);
        g = std::gcd(g, w);
    }
    if (cb.shape[0] > vq_limits::codebook || cb.shape[1] > vq_limits::embed_dim || pq.shape[0] > vq_limits::channels || g > vq_limits::channels)
        throw error("checkpoint " + f.source() + ": codebook " + cb.shape_str() + " / post_quant_conv " + pq.shape_str() + " out of range");
    c.codebook_size = static_cast<index_t>(cb.shape[0]);
    c.embed_dim = static_cast<index_t>(cb.shape[1]);
    c.z_channels = static_cast<index_t>(pq.shape[0]);
    c.ch = g;  // widths = ch * ch_mult; only the products shape the weights
    c.ch_mult.assign(static_cast<std::size_t>(n), 0);
    for (index_t i = 0; i < n; ++i) c.ch_mult[static_cast<std::size_t>(n - 1 - i)] = widths[static_cast<std::size_t>(i)] / g;
    c.num_res_blocks = res - 1;
    c.attn_levels = attn;
    c.l2_norm = l2_norm;
    c.validate();
    return c;
}

// Loads the decoder of config `c` from `f`; throws naming the first key unexpected, missing,
// mis-shaped or of a non-float dtype (encoder-side keys are skipped, see above), or the file
// truncated.
inline vq_weights load_weights(const io::safetensors& f, const vq_config& c) {
    c.validate();
    const std::vector<llamagen::tensor_spec> want = checkpoint_tensors(c);
    for (const io::tensor_info& t : f.tensors()) {
        if (encoder_side_key(t.name)) continue;
        const bool known = std::any_of(want.begin(), want.end(), [&](const llamagen::tensor_spec& s) { return s.key == t.name; });
        if (!known)
            throw error("checkpoint " + f.source() + ": unexpected tensor '" + t.name + "' " + t.shape_str() + " for a VQ decoder with " + c.str() +
                        (t.name.starts_with("decoder.") || t.name.starts_with("quantize.") ? "" : " (not a LlamaGen VQ tokenizer?)"));
    }
    for (const llamagen::tensor_spec& s : want) {
        const io::tensor_info* t = f.find(s.key);
        if (!t) throw error("checkpoint " + f.source() + ": missing tensor '" + s.key + "' " + io::shape_str(s.shape) + " (VQ decoder with " + c.str() + ")");
        if (t->shape != s.shape)
            throw error("checkpoint " + f.source() + ": tensor '" + s.key + "' has shape " + t->shape_str() + ", a VQ decoder with " + c.str() + " needs " +
                        io::shape_str(s.shape));
        if (!float_dtype(t->type))
            throw error("checkpoint " + f.source() + ": tensor '" + s.key + "' has dtype " + std::string(io::dtype_name(t->type)) +
                        ", weights must be F32, F16, BF16 or F64");
    }
    vq_weights w(c);
    for (std::size_t i = 0; i < want.size(); ++i) f.read(*f.find(want[i].key), w.storage(i));
    return w;
}

// The decoder of `f` with its shape read off the tensors.
inline vq_weights load_checkpoint(const io::safetensors& f) { return load_weights(f, config_from_checkpoint(f)); }

// A config from JSON text: the official ModelArgs (bare, or under "model_args": codebook_size,
// codebook_embed_dim, codebook_l2_norm, z_channels, decoder_ch_mult) and optionally the Decoder's
// constructor arguments under "decoder_ctor" (ch, num_res_blocks), as the golden *.weights.json
// files hold them. Missing fields keep VQ-16's values.
inline vq_config config_from_json(std::string_view text, const std::string& source) {
    using doc_t = ordo::detail::json_document;
    using jt = doc_t::type;
    const doc_t doc(text, source, max_weights_json_bytes);
    if (doc.at(doc.root()).kind != jt::object) throw error(source + ": not a JSON object");
    std::uint32_t args = doc.root();
    if (const long long m = doc.find(doc.root(), "model_args"); m >= 0) args = static_cast<std::uint32_t>(m);
    if (doc.at(args).kind != jt::object) throw error(source + ": 'model_args' is not an object");
    const auto integer = [&](std::uint32_t obj, const char* key, index_t& out, long long lo, long long hi) {
        const long long id = doc.find(obj, key);
        if (id < 0) return;
        const auto& v = doc.at(static_cast<std::uint32_t>(id));
        if (v.kind != jt::number || !v.integral || v.number < static_cast<double>(lo) || v.number > static_cast<double>(hi))
            throw error(source + ": '" + key + "' must be an integer in " + ordo::detail::itos(lo) + ".." + ordo::detail::itos(hi));
        out = static_cast<index_t>(v.number);
    };
    vq_config c;
    integer(args, "codebook_size", c.codebook_size, 1, vq_limits::codebook);
    integer(args, "codebook_embed_dim", c.embed_dim, 1, vq_limits::embed_dim);
    integer(args, "z_channels", c.z_channels, 1, vq_limits::channels);
    if (const long long id = doc.find(args, "codebook_l2_norm"); id >= 0) {
        if (doc.at(static_cast<std::uint32_t>(id)).kind != jt::boolean) throw error(source + ": 'codebook_l2_norm' must be true or false");
        c.l2_norm = doc.at(static_cast<std::uint32_t>(id)).number != 0;
    }
    if (const long long id = doc.find(args, "decoder_ch_mult"); id >= 0) {
        const auto arr = static_cast<std::uint32_t>(id);
        if (doc.at(arr).kind != jt::array || doc.at(arr).count < 1 || doc.at(arr).count > static_cast<std::uint32_t>(vq_limits::levels))
            throw error(source + ": 'decoder_ch_mult' must be a list of 1.." + ordo::detail::itos(vq_limits::levels) + " integers");
        c.ch_mult.clear();
        for (std::uint32_t i = 0; i < doc.at(arr).count; ++i) {
            const auto& v = doc.at(doc.element(arr, i));
            if (v.kind != jt::number || !v.integral || v.number < 1 || v.number > vq_limits::channels)
                throw error(source + ": 'decoder_ch_mult' entries must be integers in 1.." + ordo::detail::itos(vq_limits::channels));
            c.ch_mult.push_back(static_cast<index_t>(v.number));
        }
    }
    if (const long long ctor = doc.find(doc.root(), "decoder_ctor"); ctor >= 0 && doc.at(static_cast<std::uint32_t>(ctor)).kind == jt::object) {
        integer(static_cast<std::uint32_t>(ctor), "ch", c.ch, 1, vq_limits::channels);
        integer(static_cast<std::uint32_t>(ctor), "num_res_blocks", c.num_res_blocks, 0, vq_limits::res_blocks);
    }
    c.validate();
    return c;
}

// Throws unless the tokenizer decodes the generator's tokens: its codebook must have exactly the
// generator's vocabulary (a token id indexes a codebook row).
inline void check_vocabulary(const vq_config& c, index_t vocab_size, const std::string& vq_source) {
    if (c.codebook_size != vocab_size)
        throw error("VQ tokenizer " + vq_source + " has a codebook of " + ordo::detail::itos(c.codebook_size) + " entries, the generator's vocabulary has " +
                    ordo::detail::itos(vocab_size) + " tokens: they must be the same tokenizer");
}

}  // namespace ordo::models::vq
