// ordo/models/llamagen/checkpoint.hpp - GPT weights from a safetensors checkpoint with the official key
// names. Strict where the official loaders are not (they load with strict=False): every tensor
// of the config must be there with its exact shape, and nothing else may be. Tensors are read
// straight into the weight arena (F16/BF16 converted in chunks), so loading never holds a second
// copy of the weights.
#pragma once

#include <cstdint>
#include <string>

#include "../../io/safetensors.hpp"
#include "../checkpoint_io.hpp"
#include "gpt_weights.hpp"

namespace ordo::models::llamagen {

namespace detail {
// What an unexpected key most likely means, for the error message.
inline std::string hint_for(const std::string& key, const gpt_config& c) {
    if (key.rfind("spe_tok_embeddings", 0) == 0) return " (a PAR checkpoint: set spe_token_num)";
    if (key.rfind("medusa_", 0) == 0) return " (a NAR checkpoint: set medusa_attention_num)";
    if (key == "pos_instruct_embeddings") return " (a RandAR checkpoint: set position_instruction, or give RandAR's constructor args)";
    if (key.rfind("layers.", 0) == 0) return " (the checkpoint has more layers than the config's " + ordo::detail::itos(c.num_layers()) + ")";
    if (key.find("kv_cache") != std::string::npos || key.find("freqs_cis") != std::string::npos)
        return " (a runtime buffer saved with the weights: convert the checkpoint with examples/convert_checkpoint.py)";
    return "";
}
}  // namespace detail

// Loads the weights of config `c` from `f`; throws naming the first key missing, unexpected,
// mis-shaped, of a dtype other than F32/F16/BF16/F64, or truncated.
// Every check runs on the file's header before the weight arena is allocated.
inline gpt_weights load_weights(const io::safetensors& f, const gpt_config& c) {
    return load_strict<gpt_weights>(f, c, {"a GPT", "GPT", "GPT"}, [&](const std::string& key) { return detail::hint_for(key, c); },
                                    /*check_dtypes=*/false);
}

// The variant fields of a size preset (vocabulary, classes, PAR transition tokens, NAR extra
// blocks, RandAR's position-instruction vector) read off a checkpoint's tensors, so `--preset B`
// fits any B-sized checkpoint.
inline gpt_config infer_variant(gpt_config base, const io::safetensors& f) {
    const io::tensor_info& tok = f.at("tok_embeddings.weight");
    const io::tensor_info& cls = f.at("cls_embedding.embedding_table.weight");
    if (tok.shape.size() != 2 || cls.shape.size() != 2)
        throw error("checkpoint " + f.source() + ": the embedding tables must be 2-D, got " + tok.shape_str() + " and " + cls.shape_str());
    if (tok.shape[1] != base.dim)
        throw error("checkpoint " + f.source() + ": embedding width " + ordo::detail::itos(tok.shape[1]) + " does not match the preset's dim " +
                    ordo::detail::itos(base.dim) + " (wrong preset?)");
    if (tok.shape[0] < 1 || tok.shape[0] > max_index || cls.shape[0] < 2 || cls.shape[0] > max_index)
        throw error("checkpoint " + f.source() + ": embedding tables " + tok.shape_str() + " / " + cls.shape_str() + " out of range");
    base.vocab_size = static_cast<index_t>(tok.shape[0]);
    base.num_classes = static_cast<index_t>(cls.shape[0] - 1);
    base.transition_tokens = 0;
    if (const io::tensor_info* spe = f.find("spe_tok_embeddings.special_embeddings.weight")) {
        if (spe->shape.size() != 2 || spe->shape[0] > max_index) throw error("checkpoint " + f.source() + ": spe_tok_embeddings has shape " + spe->shape_str());
        base.transition_tokens = static_cast<index_t>(spe->shape[0]);
    }
    base.position_instruction = false;
    if (const io::tensor_info* pi = f.find("pos_instruct_embeddings")) {
        if (pi->shape != std::vector<std::int64_t>{1, base.dim})
            throw error("checkpoint " + f.source() + ": pos_instruct_embeddings has shape " + pi->shape_str() + ", a GPT with dim " +
                        ordo::detail::itos(base.dim) + " needs [1, " + ordo::detail::itos(base.dim) + "]");
        base.position_instruction = true;
    }
    base.extra_blocks = 0;
    if (f.find("medusa_norm.weight"))
        while (f.find("layers." + ordo::detail::itos(base.n_layer + base.extra_blocks) + ".attention.wqkv.weight")) ++base.extra_blocks;
    return base;
}

// Writes the weights as an F32 safetensors file with the official key names (what load_weights
// reads back). Streams tensor by tensor from the arena: no second copy.
inline void save_weights(gpt_weights& w, const std::string& path) { save_f32(w, path); }

}  // namespace ordo::models::llamagen
