// What `ordo generate` and `ordo compare` share to run a checkpoint: the family a policy decodes
// with, reading a LlamaGen-family GPT (config + weights), the guidance rule of a policy and the
// per-image orders of a random-order policy. Implemented in checkpoint.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ordo/io/safetensors.hpp>
#include <ordo/models/family.hpp>
#include <ordo/models/llamagen/gpt_weights.hpp>
#include <ordo/ordo.hpp>

namespace cli {

// The family a policy decodes with: lpd:... LPD, arpg:... ARPG, the others (RandAR included) a
// LlamaGen-family GPT.
ordo::models::family family_of(const ordo::any_policy& p);
// Throws unless the checkpoint `file` (read from `weights_path`) is of the family `policy_spec` decodes with.
void check_family(const ordo::io::safetensors& file, const std::string& weights_path, const std::string& policy_spec, const ordo::any_policy& p,
                  const std::string& command);

// A LlamaGen-family GPT's config: `config_path` (official ModelArgs JSON, bare or under
// "model_args") or, when empty, the size preset (B, L, XL, XXL, 3B).
ordo::models::llamagen::gpt_config read_gpt_config(const std::string& config_path, const std::string& preset);
// The weights of a LlamaGen-family GPT checkpoint of config `cfg`; `variant_from_file` (a preset):
// the vocabulary, classes, PAR transition tokens, NAR heads and RandAR vector read off the file.
ordo::models::llamagen::gpt_weights load_gpt_checkpoint(const ordo::io::safetensors& file, const ordo::models::llamagen::gpt_config& cfg, bool variant_from_file);

// The guidance rule of a policy's method: LPD's per token, RandAR's and ARPG's per call ("linear",
// their default), or one scale for every step ("constant", LlamaGen's). `cfg_schedule`: "linear",
// "constant" or empty (the method's default).
ordo::cfg_ramp ramp_of(const std::string& cfg_schedule, const ordo::any_policy& p);

// The order each of `batch` images decodes when the policy draws it per image (LPD's seed=request,
// RandAR's and ARPG's without a seed or an order: image i the generator's order of seed i); empty
// when the plan's order is shared by the batch.
std::vector<std::vector<ordo::index_t>> per_image_orders(const ordo::any_policy& p, const ordo::grid_shape& g, int batch);

}  // namespace cli
