// ordo/models/family.hpp - which model family a checkpoint holds, by the keys only that family has.
// Standard library only (reads the safetensors header).
#pragma once

#include "../io/safetensors.hpp"

namespace ordo::models {

// llamagen: the LlamaGen GPT and its variants (PAR, NAR, RandAR's position instruction);
// lpd: LPD's decoder (mask_token, fake_latent); arpg: ARPG's two-pass decoder (one embeddings
// table, layers.norm before the shared K/V).
enum class family { llamagen, lpd, arpg };

inline family family_of(const io::safetensors& f) {
    if (f.find("mask_token") != nullptr || f.find("fake_latent") != nullptr) return family::lpd;
    if (f.find("embeddings.weight") != nullptr || f.find("layers.norm.weight") != nullptr) return family::arpg;
    return family::llamagen;
}

inline const char* family_name(family m) { return m == family::lpd ? "an LPD" : m == family::arpg ? "an ARPG" : "a LlamaGen-family"; }

}  // namespace ordo::models
