// ordo/models/arpg/checkpoint.hpp - ARPG weights from a safetensors checkpoint with the official key
// names (models/arpg.py Transformer.state_dict). The config is read off the tensor shapes (all but
// the head count, which no shape holds: give it, read it from a weights JSON, or take a preset's);
// loading is strict: every tensor of the config must be there with its exact shape and a float
// dtype, and nothing else may be. All checks run on the file's header before the weight arena is
// allocated; tensors are then read straight into the arena.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "../../io/safetensors.hpp"
#include "../../io/text_file.hpp"
#include "../checkpoint_io.hpp"
#include "arpg_weights.hpp"

namespace ordo::models::arpg {

namespace detail {
// What a foreign key says about the file, for the error message.
inline std::string hint_for(const std::string& key) {
    if (key.rfind("tok_embeddings", 0) == 0 || key.rfind("cls_embedding", 0) == 0 || key == "output.weight" || key.rfind("spe_tok_embeddings", 0) == 0 ||
        key.rfind("medusa_", 0) == 0 || (key.rfind("layers.", 0) == 0 && (key.find(".attention.") != std::string::npos || key.find(".feed_forward.") != std::string::npos)))
        return " (a LlamaGen-style GPT checkpoint (LlamaGen / PAR / NAR / RandAR), not an ARPG checkpoint)";
    if (key.rfind("token_emb", 0) == 0 || key.rfind("class_emb", 0) == 0 || key == "pos_embed" || key == "mask_token" || key == "fake_latent" ||
        key.rfind("blocks.", 0) == 0 || key.rfind("z_proj_ln", 0) == 0)
        return " (an LPD checkpoint, not an ARPG checkpoint)";
    if (key.rfind("layers.self_dec.", 0) == 0 || key.rfind("layers.cross_dec.", 0) == 0)
        return " (the checkpoint has more blocks than the config's)";
    if (key.find("k_cache") != std::string::npos || key.find("v_cache") != std::string::npos || key.find("freqs_cis") != std::string::npos)
        return " (a runtime buffer saved with the weights: save the model's state_dict without caches)";
    if (key.rfind("vae.", 0) == 0 || key.rfind("vq", 0) == 0) return " (tokenizer weights: save only the ARPG transformer)";
    return "";
}

inline constexpr model_names names{"an ARPG model", "ARPG model", "ARPG"};

inline const io::tensor_info& need(const io::safetensors& f, const std::string& key, std::size_t rank) { return need_tensor(f, key, rank, names); }

inline index_t count_blocks(const io::safetensors& f, const std::string& prefix) {
    index_t n = 0;
    while (n < arpg_limits::layers && f.find(prefix + ordo::detail::itos(n) + ".attn.to_q.weight")) ++n;
    return n;
}
}  // namespace detail

// The config of an ARPG checkpoint, read off its tensor shapes: dim from embeddings, vocab from
// head, classes from the embedding rows (V + C + 3), the block counts from the blocks present, the
// FFN width from layers.self_dec.0.ffn.w1. `n_head` is in no shape: the caller gives it (e.g. from
// n_head_from_weights_json or a preset); dim must be divisible by it. Throws saying so when the
// file is not an ARPG checkpoint (a LlamaGen or LPD one, say). Shapes are checked in full by
// load_weights.
inline arpg_config config_from_checkpoint(const io::safetensors& f, index_t n_head) {
    const char* markers[] = {"embeddings.weight", "layers.to_k.weight", "layers.self_dec.0.attn.to_q.weight", "head.weight"};
    for (const char* m : markers)
        if (!f.find(m)) {
            for (const io::tensor_info& t : f.tensors())
                if (const std::string h = detail::hint_for(t.name); h.find("not an ARPG") != std::string::npos)
                    throw error("checkpoint " + f.source() + ": not an ARPG checkpoint: it holds '" + t.name + "'" + h);
            throw error("checkpoint " + f.source() + ": not an ARPG checkpoint: no tensor '" + m + "'");
        }
    const io::tensor_info& emb = detail::need(f, "embeddings.weight", 2);
    const io::tensor_info& head = detail::need(f, "head.weight", 2);
    arpg_config c;
    c.dim = static_cast<index_t>(emb.shape[1]);
    c.vocab_size = static_cast<index_t>(head.shape[0]);
    if (emb.shape[0] < 1LL * c.vocab_size + 4)
        throw error("checkpoint " + f.source() + ": tensor 'embeddings.weight' has shape " + emb.shape_str() + ", an ARPG model with vocab " +
                    ordo::detail::itos(c.vocab_size) + " (head.weight) needs vocab + classes + 3 rows, at least " + ordo::detail::itos(c.vocab_size + 4));
    c.num_classes = static_cast<index_t>(emb.shape[0] - c.vocab_size - 3);
    c.n_self = detail::count_blocks(f, "layers.self_dec.");
    c.n_cross = detail::count_blocks(f, "layers.cross_dec.");
    if (c.n_cross == 0) throw error("checkpoint " + f.source() + ": missing tensor 'layers.cross_dec.0.attn.to_q.weight' (an ARPG model has at least one cross-decoder block)");
    if (c.n_self != c.n_cross)
        throw error("checkpoint " + f.source() + ": " + ordo::detail::itos(c.n_self) + " self-decoder and " + ordo::detail::itos(c.n_cross) +
                    " cross-decoder blocks; the official model has n_layer / 2 of each");
    c.ffn_hidden = static_cast<index_t>(detail::need(f, "layers.self_dec.0.ffn.w1.weight", 2).shape[0]);
    c.n_head = n_head;
    if (n_head < 1) throw error("checkpoint " + f.source() + ": the head count must be >= 1, got " + ordo::detail::itos(n_head) + " (n_head)");
    if (c.dim % n_head)
        throw error("checkpoint " + f.source() + ": dim " + ordo::detail::itos(c.dim) + " is not divisible by " + ordo::detail::itos(n_head) +
                    " heads (n_head: wrong head count for this checkpoint?)");
    c.validate();
    return c;
}

// The head count of the preset whose dim and block count the checkpoint has (L / XL / XXL); throws
// when none fits.
inline index_t n_head_from_preset(const io::safetensors& f) {
    const io::tensor_info* emb = f.find("embeddings.weight");
    const index_t blocks = detail::count_blocks(f, "layers.self_dec.") + detail::count_blocks(f, "layers.cross_dec.");
    for (const arpg_preset& p : arpg_presets)
        if (emb && emb->shape.size() == 2 && emb->shape[1] == p.dim && blocks == p.n_layer) return p.n_head;
    throw error("checkpoint " + f.source() + ": no ARPG preset (L, XL, XXL) has its dim and " + ordo::detail::itos(blocks) +
                " blocks; give the head count (n_head) instead");
}

// Loads the weights of config `c` from `f`; throws naming the first key missing, unexpected,
// mis-shaped or of a non-float dtype. A file cut short is refused when it is opened (naming the
// tensor past its end) or, if it shrinks after that, when the tensor is read.
inline arpg_weights load_weights(const io::safetensors& f, const arpg_config& c) {
    return load_strict<arpg_weights>(f, c, detail::names, [](const std::string& key) { return detail::hint_for(key); }, /*check_dtypes=*/true);
}

// config_from_checkpoint + load_weights.
inline arpg_weights load_checkpoint(const io::safetensors& f, index_t n_head) { return load_weights(f, config_from_checkpoint(f, n_head)); }

// n_head from JSON text: a bare object holding it, or one holding "constructor_args" with it (the
// golden .weights.json files, ModelArgs' field name). `source` names the text in errors.
inline index_t n_head_from_json(std::string_view text, const std::string& source = "weights json") {
    return head_count_from_json(text, source, "n_head", arpg_limits::heads);
}
inline index_t n_head_from_weights_json(const std::string& path) {
    return n_head_from_json(io::read_text_file(path, max_weights_json_bytes, "weights json"), path);
}

// Writes the weights as an F32 safetensors file with the official key names (what load_weights
// reads back), tensor by tensor from the arena.
inline void save_weights(const arpg_weights& w, const std::string& path) { save_f32(w, path); }

}  // namespace ordo::models::arpg
