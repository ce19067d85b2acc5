// ordo/models/lpd/checkpoint.hpp - LPD weights from a safetensors checkpoint with the official key
// names (models/lpd.py state_dict). The config is read off the tensor shapes (all but the head
// count, which no shape holds); loading is strict: every tensor of the config must be there with
// its exact shape and a float dtype, and nothing else may be. All checks run on the file's header
// before the weight arena is allocated; tensors are then read straight into the arena.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "../../io/safetensors.hpp"
#include "../../io/text_file.hpp"
#include "../checkpoint_io.hpp"
#include "lpd_weights.hpp"

namespace ordo::models::lpd {

namespace detail {
// What a foreign key says about the file, for the error message.
inline std::string hint_for(const std::string& key) {
    if (key.rfind("tok_embeddings", 0) == 0 || key.rfind("cls_embedding", 0) == 0 || key.rfind("layers.", 0) == 0 || key == "output.weight" ||
        key.rfind("spe_tok_embeddings", 0) == 0 || key.rfind("medusa_", 0) == 0)
        return " (a LlamaGen-style GPT checkpoint (LlamaGen / PAR / NAR / RandAR), not an LPD checkpoint)";
    if (key.rfind("blocks.", 0) == 0) return " (the checkpoint has more blocks than the config's depth)";
    if (key.find("kv_cache") != std::string::npos || key.find("k_cache") != std::string::npos || key.find("v_cache") != std::string::npos)
        return " (a runtime buffer saved with the weights: save the model's state_dict before enable_kv_cache)";
    if (key.rfind("vae.", 0) == 0 || key.rfind("vqgan", 0) == 0) return " (tokenizer weights: save only the LPD decoder)";
    return "";
}

inline constexpr model_names names{"an LPD", "LPD", "LPD"};

inline const io::tensor_info& need(const io::safetensors& f, const std::string& key, std::size_t rank) { return need_tensor(f, key, rank, names); }
}  // namespace detail

// The config of an LPD checkpoint, read off its tensor shapes: dim and vocab from token_emb, classes
// from class_emb, cells from pos_embed (rows - 1), depth from the blocks present, the MLP width from
// blocks.0.mlp.fc1. `num_heads` (decoder_num_heads) is in no shape: the caller gives it (e.g. from
// num_heads_from_weights_json); dim must be divisible by it. Throws saying so when the file is not an
// LPD checkpoint (a LlamaGen one, say). Shapes are checked in full by load_weights.
inline lpd_config config_from_checkpoint(const io::safetensors& f, index_t num_heads) {
    if (!f.find("token_emb.weight") || !f.find("pos_embed") || !f.find("mask_token")) {
        for (const io::tensor_info& t : f.tensors())
            if (const std::string h = detail::hint_for(t.name); !h.empty() && h.find("not an LPD") != std::string::npos)
                throw error("checkpoint " + f.source() + ": not an LPD checkpoint: it holds '" + t.name + "'" + h);
        const char* missing = !f.find("token_emb.weight") ? "token_emb.weight" : !f.find("pos_embed") ? "pos_embed" : "mask_token";
        throw error("checkpoint " + f.source() + ": not an LPD checkpoint: no tensor '" + missing + "'");
    }
    const io::tensor_info& tok = detail::need(f, "token_emb.weight", 2);
    const io::tensor_info& cls = detail::need(f, "class_emb.weight", 2);
    const io::tensor_info& pos = detail::need(f, "pos_embed", 3);
    lpd_config c;
    c.dim = static_cast<index_t>(tok.shape[1]);
    c.vocab_size = static_cast<index_t>(tok.shape[0]);
    c.num_classes = static_cast<index_t>(cls.shape[0]);
    if (pos.shape[0] != 1 || pos.shape[1] < 2 || pos.shape[2] != tok.shape[1])
        throw error("checkpoint " + f.source() + ": tensor 'pos_embed' has shape " + pos.shape_str() + ", an LPD with dim " + ordo::detail::itos(c.dim) +
                    " needs [1, cells + 1, " + ordo::detail::itos(c.dim) + "]");
    c.num_cells = static_cast<index_t>(pos.shape[1] - 1);
    c.depth = 0;
    while (c.depth < lpd_limits::depth && f.find("blocks." + ordo::detail::itos(c.depth) + ".attn.qkv.weight")) ++c.depth;
    if (c.depth == 0) throw error("checkpoint " + f.source() + ": missing tensor 'blocks.0.attn.qkv.weight' (an LPD has at least one block)");
    c.mlp_hidden = static_cast<index_t>(detail::need(f, "blocks.0.mlp.fc1.weight", 2).shape[0]);
    c.num_heads = num_heads;
    if (num_heads < 1) throw error("checkpoint " + f.source() + ": the head count must be >= 1, got " + ordo::detail::itos(num_heads) + " (decoder_num_heads)");
    if (c.dim % num_heads)
        throw error("checkpoint " + f.source() + ": dim " + ordo::detail::itos(c.dim) + " is not divisible by " + ordo::detail::itos(num_heads) +
                    " heads (decoder_num_heads: wrong head count for this checkpoint?)");
    c.validate();
    return c;
}

// Loads the weights of config `c` from `f`; throws naming the first key missing, unexpected,
// mis-shaped or of a non-float dtype. A file cut short is refused when it is opened (naming the
// tensor past its end) or, if it shrinks after that, when the tensor is read.
inline lpd_weights load_weights(const io::safetensors& f, const lpd_config& c) {
    return load_strict<lpd_weights>(f, c, detail::names, [](const std::string& key) { return detail::hint_for(key); }, /*check_dtypes=*/true);
}

// config_from_checkpoint + load_weights.
inline lpd_weights load_checkpoint(const io::safetensors& f, index_t num_heads) { return load_weights(f, config_from_checkpoint(f, num_heads)); }

// decoder_num_heads from JSON text: a bare object holding it, or one holding "constructor_args"
// with it (the golden .weights.json files). `source` names the text in errors.
inline index_t num_heads_from_json(std::string_view text, const std::string& source = "weights json") {
    return head_count_from_json(text, source, "decoder_num_heads", lpd_limits::heads);
}
inline index_t num_heads_from_weights_json(const std::string& path) {
    return num_heads_from_json(io::read_text_file(path, max_weights_json_bytes, "weights json"), path);
}

// Writes the weights as an F32 safetensors file with the official key names (what load_weights
// reads back), tensor by tensor from the arena.
inline void save_weights(const lpd_weights& w, const std::string& path) { save_f32(w, path); }

}  // namespace ordo::models::lpd
