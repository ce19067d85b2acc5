// ordo/models/llamagen/checkpoint.hpp - GPT weights from a safetensors checkpoint with the official key
// names. Strict where the official loaders are not (they load with strict=False): every tensor
// of the config must be there with its exact shape, and nothing else may be. Tensors are read
// straight into the weight arena (F16/BF16 converted in chunks), so loading never holds a second
// copy of the weights.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <fstream>
#include <string>

#include "../../io/safetensors.hpp"
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
    const std::vector<tensor_spec> want = checkpoint_tensors(c);
    for (const io::tensor_info& t : f.tensors()) {
        const bool known = std::any_of(want.begin(), want.end(), [&](const tensor_spec& s) { return s.key == t.name; });
        if (!known)
            throw error("checkpoint " + f.source() + ": unexpected tensor '" + t.name + "' " + t.shape_str() + " for a GPT with " + c.str() +
                        detail::hint_for(t.name, c));
    }
    for (std::size_t i = 0; i < want.size(); ++i) {
        const io::tensor_info* t = f.find(want[i].key);
        if (!t) throw error("checkpoint " + f.source() + ": missing tensor '" + want[i].key + "' " + io::shape_str(want[i].shape) + " (GPT with " + c.str() + ")");
        if (t->shape != want[i].shape)
            throw error("checkpoint " + f.source() + ": tensor '" + want[i].key + "' has shape " + t->shape_str() + ", a GPT with " + c.str() +
                        " needs " + io::shape_str(want[i].shape));
    }
    gpt_weights w(c);
    for (std::size_t i = 0; i < want.size(); ++i) f.read(*f.find(want[i].key), w.storage(i));
    return w;
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
inline void save_weights(gpt_weights& w, const std::string& path) {
    static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");
    std::string header = "{\"__metadata__\":{\"format\":\"pt\",\"writer\":\"ordo\"}";
    std::uint64_t offset = 0;
    for (const tensor_spec& t : w.tensors()) {
        const std::uint64_t bytes = numel(t) * sizeof(float);
        header += ",\"" + ordo::detail::json_escape(t.key) + "\":{\"dtype\":\"F32\",\"shape\":" + io::shape_str(t.shape) + ",\"data_offsets\":[" +
                  ordo::detail::itos(static_cast<long long>(offset)) + "," + ordo::detail::itos(static_cast<long long>(offset + bytes)) + "]}";
        offset += bytes;
    }
    header += "}";
    while (header.size() % 8) header += ' ';  // the format pads the header to 8 bytes
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw error("cannot write " + path);
    const std::uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (std::size_t i = 0; i < w.tensors().size(); ++i) {
        const std::span<float> t = w.storage(i);
        out.write(reinterpret_cast<const char*>(t.data()), static_cast<std::streamsize>(t.size_bytes()));
    }
    if (!out.flush()) throw error("writing " + path + " failed (disk full?)");
}

}  // namespace ordo::models::llamagen
