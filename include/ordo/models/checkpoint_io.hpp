// ordo/models/checkpoint_io.hpp - the safetensors side every model family (LlamaGen GPT, LPD, ARPG)
// shares: the strict load (every tensor of the config there with its exact shape, nothing else;
// all checked on the file's header before the arena is allocated, then read straight into it), the
// F32 save, the rank check of a tensor a config is read off, and the head count of a weights JSON.
// Each family's checkpoint.hpp names itself and adds its own hints.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "../io/json.hpp"
#include "../io/safetensors.hpp"
#include "llamagen/gpt_config.hpp"  // tensor_spec, numel

namespace ordo::models {

// How a family names itself in checkpoint errors: "an ARPG model" (…, an ARPG model with <config>
// needs …), "ARPG model" (missing tensor … (ARPG model with <config>)), "ARPG" (missing tensor …
// (ARPG), when reading a config off the shapes).
struct model_names {
    const char* a_model;
    const char* model;
    const char* family;
};

inline bool float_dtype(io::dtype t) { return t == io::dtype::f32 || t == io::dtype::f16 || t == io::dtype::bf16 || t == io::dtype::f64; }

// Tensor `key` of `f`, which a config is read off: it must be there, of rank `rank`, with extents in
// 1..max_index.
inline const io::tensor_info& need_tensor(const io::safetensors& f, const std::string& key, std::size_t rank, const model_names& n) {
    const io::tensor_info* t = f.find(key);
    if (!t) throw error("checkpoint " + f.source() + ": missing tensor '" + key + "' (" + n.family + ")");
    if (t->shape.size() != rank)
        throw error("checkpoint " + f.source() + ": tensor '" + key + "' has shape " + t->shape_str() + ", " + n.a_model + " needs " +
                    ordo::detail::itos(static_cast<long long>(rank)) + " dimensions");
    for (std::int64_t d : t->shape)
        if (d < 1 || d > max_index)
            throw error("checkpoint " + f.source() + ": tensor '" + key + "' has shape " + t->shape_str() + " (extents must be 1.." + ordo::detail::itos(max_index) + ")");
    return *t;
}

// Checks `f` against the tensors `want` of a config described by `config_str`, throwing naming the
// first key unexpected (with `hint(key)` appended: what a foreign key says about the file), missing,
// mis-shaped or, with `check_dtypes`, of a dtype other than F32/F16/BF16/F64 (without it, such a
// dtype is refused when the tensor is read).
template <class Hint>
void check_tensors(const io::safetensors& f, const std::vector<llamagen::tensor_spec>& want, const std::string& config_str, const model_names& n,
                   const Hint& hint, bool check_dtypes) {
    for (const io::tensor_info& t : f.tensors()) {
        const bool known = std::any_of(want.begin(), want.end(), [&](const llamagen::tensor_spec& s) { return s.key == t.name; });
        if (!known)
            throw error("checkpoint " + f.source() + ": unexpected tensor '" + t.name + "' " + t.shape_str() + " for " + n.a_model + " with " + config_str +
                        hint(t.name));
    }
    for (const llamagen::tensor_spec& s : want) {
        const io::tensor_info* t = f.find(s.key);
        if (!t) throw error("checkpoint " + f.source() + ": missing tensor '" + s.key + "' " + io::shape_str(s.shape) + " (" + n.model + " with " + config_str + ")");
        if (t->shape != s.shape)
            throw error("checkpoint " + f.source() + ": tensor '" + s.key + "' has shape " + t->shape_str() + ", " + n.a_model + " with " + config_str + " needs " +
                        io::shape_str(s.shape));
        if (check_dtypes && !float_dtype(t->type))
            throw error("checkpoint " + f.source() + ": tensor '" + s.key + "' has dtype " + std::string(io::dtype_name(t->type)) +
                        ", weights must be F32, F16, BF16 or F64");
    }
}

// The weights (an arena_weights of config `c`) of `f`: check_tensors, then each tensor read straight
// into the arena (F16/BF16/F64 converted in chunks), so loading never holds a second copy.
template <class Weights, class Config, class Hint>
Weights load_strict(const io::safetensors& f, const Config& c, const model_names& n, const Hint& hint, bool check_dtypes) {
    const std::vector<llamagen::tensor_spec> want = checkpoint_tensors(c);
    check_tensors(f, want, c.str(), n, hint, check_dtypes);
    Weights w(c);
    for (std::size_t i = 0; i < want.size(); ++i) f.read(*f.find(want[i].key), w.storage(i));
    return w;
}

// Writes weights `w` (an arena_weights) as an F32 safetensors file with the official key names
// (what load_strict reads back). Streams tensor by tensor from the arena: no second copy.
template <class Weights>
void save_f32(const Weights& w, const std::string& path) {
    static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");
    std::string header = "{\"__metadata__\":{\"format\":\"pt\",\"writer\":\"ordo\"}";
    std::uint64_t offset = 0;
    for (const llamagen::tensor_spec& t : w.tensors()) {
        const std::uint64_t bytes = llamagen::numel(t) * sizeof(float);
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
        const std::span<const float> t = w.storage(i);
        out.write(reinterpret_cast<const char*>(t.data()), static_cast<std::streamsize>(t.size_bytes()));
    }
    if (!out.flush()) throw error("writing " + path + " failed (disk full?)");
}

// The most text a weights.json may hold.
inline constexpr std::size_t max_weights_json_bytes = std::size_t{1} << 20;

// The integer `field` (a head count, 1..max) from JSON text: a bare object holding it, or one
// holding "constructor_args" with it (the golden .weights.json files). `source` names the text in
// errors.
inline index_t head_count_from_json(std::string_view text, const std::string& source, const std::string& field, index_t max) {
    const ordo::detail::json_document doc(text, source, max_weights_json_bytes);
    using jt = ordo::detail::json_document::type;
    if (doc.at(doc.root()).kind != jt::object) throw error(source + ": not a JSON object");
    long long n = doc.find(doc.root(), field);
    if (n < 0)
        if (const long long args = doc.find(doc.root(), "constructor_args"); args >= 0 && doc.at(static_cast<std::uint32_t>(args)).kind == jt::object)
            n = doc.find(static_cast<std::uint32_t>(args), field);
    if (n < 0) throw error(source + ": no '" + field + "' (at the top level or in 'constructor_args')");
    const auto& v = doc.at(static_cast<std::uint32_t>(n));
    if (v.kind != jt::number || !v.integral || v.number < 1 || v.number > max)
        throw error(source + ": '" + field + "' must be an integer in 1.." + ordo::detail::itos(max));
    return static_cast<index_t>(v.number);
}

}  // namespace ordo::models
