// checkpoint.hpp: what `ordo generate` and `ordo compare` share to run a checkpoint.
#include "checkpoint.hpp"

#include <ordo/models/llamagen/checkpoint.hpp>
#include <ordo/models/llamagen/model_args.hpp>

namespace cli {

using ordo::models::family;

family family_of(const ordo::any_policy& p) {
    if (std::holds_alternative<ordo::query_groups>(p)) return family::lpd;
    if (std::holds_alternative<ordo::cross_queries>(p)) return family::arpg;
    return family::llamagen;
}

void check_family(const ordo::io::safetensors& file, const std::string& weights_path, const std::string& policy_spec, const ordo::any_policy& p,
                  const std::string& command) {
    const family have = ordo::models::family_of(file), want = family_of(p);
    if (have != want)
        throw ordo::error(command + ": " + weights_path + " is " + ordo::models::family_name(have) + " checkpoint; " + policy_spec + " decodes with " +
                          ordo::models::family_name(want) +
                          " model (lpd:... needs LPD, arpg:... ARPG, randar:... a RandAR GPT, the other orders a LlamaGen / PAR / NAR GPT)");
}

ordo::models::llamagen::gpt_config read_gpt_config(const std::string& config_path, const std::string& preset) {
    return config_path.empty() ? ordo::models::llamagen::make_preset(preset) : ordo::models::llamagen::model_args_from_file(config_path);
}

ordo::models::llamagen::gpt_weights load_gpt_checkpoint(const ordo::io::safetensors& file, const ordo::models::llamagen::gpt_config& cfg, bool variant_from_file) {
    return ordo::models::llamagen::load_weights(file, variant_from_file ? ordo::models::llamagen::infer_variant(cfg, file) : cfg);
}

ordo::cfg_ramp ramp_of(const std::string& cfg_schedule, const ordo::any_policy& p) {
    const bool ramped = std::holds_alternative<ordo::query_groups>(p) || std::holds_alternative<ordo::interleaved_queries>(p) ||
                        std::holds_alternative<ordo::cross_queries>(p);
    if (!ramped) {
        if (cfg_schedule == "linear")
            throw ordo::error("generate: --cfg-schedule linear is LPD's, RandAR's and ARPG's; a LlamaGen-family order guides every step with one scale");
        return ordo::cfg_ramp::per_step;
    }
    if (cfg_schedule == "constant") return ordo::cfg_ramp::per_step;
    if (std::holds_alternative<ordo::query_groups>(p)) return ordo::cfg_ramp::linear_in_rank;
    return std::holds_alternative<ordo::interleaved_queries>(p) ? ordo::cfg_ramp::linear_in_step_start : ordo::cfg_ramp::linear_in_step_end;
}

std::vector<std::vector<ordo::index_t>> per_image_orders(const ordo::any_policy& p, const ordo::grid_shape& g, int batch) {
    std::vector<std::vector<ordo::index_t>> orders;
    // LPD's seed=request: image i decodes its own order (the generator's, seed i), as LPD evaluates
    if (const auto* q = std::get_if<ordo::query_groups>(&p); q && q->seed < 0)
        for (int i = 0; i < batch; ++i) {
            ordo::query_groups seeded = *q;
            seeded.seed = i;
            orders.push_back(seeded.order(g));
        }
    // (RandAR's and ARPG's from ordo's own generator, seed i; an order given with --order is the
    // plan's, shared by the batch)
    std::visit(
        [&](const auto& q) {
            if constexpr (requires { q.order.empty(); q.seed; })
                if (q.seed < 0 && q.order.empty())
                    for (int i = 0; i < batch; ++i) orders.push_back(ordo::schedules::random_order(g.size(), static_cast<std::uint64_t>(i)));
        },
        p);
    return orders;
}

}  // namespace cli
