// `ordo generate`: run a LlamaGen / PAR / NAR, RandAR, LPD or ARPG checkpoint on the CPU backend under any decode order it fits.
//   ordo generate --weights lpd.safetensors --config lpd.json --policy lpd:20 --grid 16x16 --class 3 --cfg 4 --out t.json
//   (RandAR: a GPT checkpoint with pos_instruct_embeddings, randar:88; ARPG: arpg:64 with its checkpoint)
//   ordo generate --weights W.safetensors (--config W.json | --preset B) --policy par:2x2 --grid 24x24
//                 --class 207 [--cfg 4] [--top-k 0] [--top-p 1] [--temperature 1] [--seed 0] [--batch 1]
//                 --out tokens.json
//   ordo generate --random-weights --preset B --policy nar --grid 16x16 --out t.json   (timing)
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <ordo/models/llamagen/checkpoint.hpp>
#include <ordo/eigen/gpt.hpp>
#include <ordo/eigen/arpg.hpp>
#include <ordo/eigen/lpd.hpp>
#include <ordo/models/arpg/checkpoint.hpp>
#include <ordo/models/family.hpp>
#include <ordo/models/lpd/checkpoint.hpp>
#include <ordo/models/llamagen/model_args.hpp>
#include <ordo/ordo.hpp>

#include "checkpoint.hpp"
#include "commands.hpp"
#include "order_file.hpp"
#include "token_pictures.hpp"

namespace cli {

void add_threads_option(CLI::App* cmd, int& threads) {
    cmd->add_option("--threads", threads, "CPU threads of the forward passes (default: all cores, " + std::to_string(ordo::eigen::max_threads()) + " here)")
        ->check(CLI::Range(1, 4096));
}

void apply_threads(int threads) {
    if (threads != 0) ordo::eigen::set_threads(threads);
}

void add_generate(CLI::App& app, generate_args& a, CLI::App*& cmd) {
    cmd = app.add_subcommand("generate", "generate token grids with a GPT checkpoint on the CPU under a decode order");
    auto* w = cmd->add_option("--weights", a.weights, "safetensors checkpoint with the official key names");
    auto* r = cmd->add_flag("--random-weights", a.random_weights, "seeded random weights of the preset/config (timing)");
    w->excludes(r);
    auto* c = cmd->add_option("--config", a.config, "official ModelArgs as JSON (bare, or under \"model_args\"); LPD: a JSON with decoder_num_heads");
    auto* p = cmd->add_option("--preset", a.preset, "B, L, XL, XXL or 3B (vocab, classes, PAR/NAR extras read off the checkpoint); LPD: L, XL or XXL");
    c->excludes(p);
    cmd->add_option("--policy", a.policy, "raster | par:HxW[+nar] | nar | zipar:W | lpd:... | randar:... | arpg:... (docs/orders.md)")->capture_default_str();
    cmd->add_option("--grid", a.grid, "token grid HxW")->capture_default_str();
    cmd->add_option("--order", a.order, "a random-order policy's order (randar, arpg) as a JSON list of raster cells");
    cmd->add_option("--class", a.label, "class label")->capture_default_str();
    cmd->add_option("--cfg", a.cfg, "classifier-free guidance scale (<= 1: off)")->capture_default_str();
    cmd->add_option("--cfg-interval", a.cfg_interval, "guide only the first N+2 steps (-1: all)")->capture_default_str();
    cmd->add_option("--cfg-schedule", a.cfg_schedule,
                    "LPD, RandAR, ARPG: linear (the method's ramp to --cfg: LPD per token, RandAR and ARPG per call; the default) or constant")
        ->check(CLI::IsMember({"linear", "constant"}));
    cmd->add_option("--top-k", a.top_k, "keep the k most likely tokens (0: off)")->check(CLI::NonNegativeNumber)->capture_default_str();
    cmd->add_option("--top-p", a.top_p, "nucleus mass in (0, 1] (1: off)")->capture_default_str();
    cmd->add_option("--temperature", a.temperature, "softmax temperature")->capture_default_str();
    cmd->add_option("--seed", a.seed, "sampling seed")->capture_default_str();
    cmd->add_option("--jacobi-window", a.jacobi_window,
                    "speculative Jacobi decoding of a raster checkpoint (SJD, lossless): feed windows of L tokens (0: off; docs/engine.md)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--draft-init", a.draft_init, "SJD: a new position's first draft, uniform or left-neighbour")
        ->check(CLI::IsMember({"uniform", "left-neighbour"}))
        ->capture_default_str();
    cmd->add_option("--coupling", a.coupling, "SJD: none (SJD), gumbel (SCD-GS) or maximal (SCD-MC)")
        ->check(CLI::IsMember({"none", "gumbel", "maximal"}))
        ->capture_default_str();
    cmd->add_option("--weights-seed", a.weights_seed, "seed of --random-weights")->capture_default_str();
    cmd->add_option("--batch", a.batch, "images generated together (same class, own random streams)")->check(CLI::Range(1, 4096))->capture_default_str();
    cmd->add_option("--out", a.out, "where to write {\"tokens\": ...} as JSON")->required();
    cmd->add_option("--save-weights", a.save_weights, "also write the weights used as F32 safetensors");
    cmd->add_flag("--quiet", a.quiet, "no progress bar");
    auto* png = cmd->add_option("--png", a.png, "also write the images as one PNG (a batch tiled 4 per row); without --vq, the token grids in false colour");
    cmd->add_option("--vq", a.vq, "VQ tokenizer checkpoint (safetensors, official key names) that decodes the tokens for --png")->needs(png);
    add_threads_option(cmd, a.threads);
    cmd->add_option("--weight-dtype", a.weight_dtype, "the GPT's multiplied matrices in fp32 or bf16 (half the bytes per step; docs/cpu-backend.md)")
        ->check(CLI::IsMember({"fp32", "bf16"}))
        ->capture_default_str();
}

inline double peak_rss_bytes() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) * 1024.0;  // Linux: kilobytes
}

inline nlohmann::json grid_json(std::span<const ordo::index_t> tokens, const ordo::grid_shape& g) {
    nlohmann::json rows = nlohmann::json::array();
    for (ordo::index_t h = 0; h < g.rows(); ++h)
        rows.push_back(std::vector<ordo::index_t>(tokens.begin() + h * g.cols(), tokens.begin() + (h + 1) * g.cols()));
    return rows;
}

namespace {

// What a run needs of a model family besides the model itself.
struct family_info {
    std::string description;  // the config, for the report
    ordo::index_t num_classes = 0, null_label = 0;
    ordo::cfg_ramp ramp = ordo::cfg_ramp::per_step;
    double weight_bytes = 0;
    ordo::index_t vocab_size = 0;  // what --vq's codebook must match
};

// Generates with `model` and writes the report; the part of `ordo generate` shared by the families.
template <class Model>
int run_model(const generate_args& a, Model& model, const family_info& fam, const ordo::any_policy& policy, const ordo::grid_shape& grid,
              const ordo::plan& plan, double load_s) {
    using clock = std::chrono::steady_clock;
    const auto t1 = clock::now();
    if (a.label < 0 || a.label >= fam.num_classes)
        throw ordo::error("generate: --class " + std::to_string(a.label) + " outside 0.." + std::to_string(fam.num_classes - 1));
    // the tokenizer is loaded and checked against the vocabulary and the grid before generating
    std::unique_ptr<token_pictures> pictures;
    if (!a.png.empty()) {
        if (grid.frames() != 1) throw ordo::error("generate: --png draws image grids; " + grid.str() + " has a time axis");
        pictures = std::make_unique<token_pictures>(a.vq);
        pictures->check(grid.rows(), grid.cols(), fam.vocab_size);
    }
    const std::vector<std::vector<ordo::index_t>> orders = per_image_orders(policy, grid, a.batch);
    std::vector<ordo::request> requests;
    for (int i = 0; i < a.batch; ++i)
        requests.push_back({a.label, static_cast<std::uint64_t>(i), {}, orders.empty() ? std::span<const ordo::index_t>{} : std::span<const ordo::index_t>(orders[static_cast<std::size_t>(i)])});
    if (fam.ramp != ordo::cfg_ramp::per_step && a.cfg_interval != -1)
        throw ordo::error("generate: --cfg-interval guides the first steps of a constant scale; " + a.policy +
                          " ramps its scale (--cfg-schedule linear): give --cfg-schedule constant with --cfg-interval");
    ordo::generate_options o;
    o.session.guidance.scale = a.cfg;
    o.session.guidance.interval = a.cfg_interval;
    o.session.guidance.ramp = fam.ramp;
    o.session.seed = a.seed;
    o.session.null_label = fam.null_label;
    o.jacobi.window = a.jacobi_window;
    o.jacobi.init = a.draft_init == "left-neighbour" ? ordo::draft_init::left_neighbour : ordo::draft_init::uniform;
    o.jacobi.coupling = a.coupling == "gumbel" ? ordo::draft_coupling::gumbel : a.coupling == "maximal" ? ordo::draft_coupling::maximal : ordo::draft_coupling::none;
    if (a.jacobi_window == 0 && (a.draft_init != "uniform" || a.coupling != "none"))
        throw ordo::error("generate: --draft-init and --coupling are options of speculative decoding: give --jacobi-window L too");
    ordo::generate_stats stats;
    o.stats = &stats;
    const ordo::index_t sequences = a.batch * (o.session.guidance.active() ? 2 : 1);
    ordo::contiguous_kv_cache<float> cache(model.num_layers(), sequences, ordo::kv_cache_len(plan), model.cache_width());
    const bool bar = !a.quiet && isatty(STDERR_FILENO);
    if (bar)
        o.progress = [&](ordo::index_t done, ordo::index_t all) {
            const int width = 40, filled = static_cast<int>(static_cast<long long>(done) * width / all);
            std::fprintf(stderr, "\r%s [%s%s] %s %d/%d", a.policy.c_str(), std::string(static_cast<std::size_t>(filled), '#').c_str(),
                         std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), a.jacobi_window ? "position" : "step", done, all);
            if (done == all) std::fprintf(stderr, "\n");
            std::fflush(stderr);
        };
    const auto sampler = ordo::make_sampler(ordo::temperature{a.temperature}, ordo::top_k{a.top_k}, ordo::top_p{a.top_p}, ordo::multinomial{});
    const auto tokens = ordo::generate(model, cache, plan.view(), sampler, requests, o);
    const auto t2 = clock::now();

    const double run_s = std::chrono::duration<double>(t2 - t1).count();
    const double kv_bytes = static_cast<double>(ordo::contiguous_kv_cache<float>::required_size(model.num_layers(), sequences, ordo::kv_cache_len(plan),
                                                                                                   model.cache_width()) * sizeof(float));
    nlohmann::json j;
    if (a.batch == 1) j["tokens"] = grid_json(tokens[0], grid);
    else {
        j["tokens"] = nlohmann::json::array();
        for (const auto& t : tokens) j["tokens"].push_back(grid_json(t, grid));
    }
    j["policy"] = ordo::spec_of(policy);
    j["grid"] = grid.str();
    j["steps"] = plan.num_steps();
    j["forward_passes"] = stats.forward_passes;  // the plan's steps, or the speculative windows run
    if (a.jacobi_window) {
        j["jacobi"] = {{"window", a.jacobi_window}, {"draft_init", a.draft_init}, {"coupling", a.coupling}, {"iterations", stats.iterations}};
        double mean = 0;
        for (const ordo::index_t it : stats.iterations) mean += static_cast<double>(grid.size()) / static_cast<double>(it);
        j["jacobi"]["accepted_per_iteration"] = mean / static_cast<double>(stats.iterations.size());
    }
    j["class"] = a.label;
    j["cfg"] = a.cfg;
    j["cfg_schedule"] = fam.ramp == ordo::cfg_ramp::per_step ? "constant" : "linear";
    j["seed"] = a.seed;
    j["batch"] = a.batch;
    if (!orders.empty()) j["orders"] = orders;
    j["model"] = fam.description;
    j["threads"] = ordo::eigen::threads();
    j["weight_dtype"] = a.weight_dtype;
    j["seconds"] = {{"load", load_s}, {"generate", run_s}, {"per_step", run_s / static_cast<double>(stats.forward_passes)}};
    j["tokens_per_second"] = static_cast<double>(grid.size()) * a.batch / run_s;
    j["bytes"] = {{"weights", fam.weight_bytes}, {"kv_cache", kv_bytes}, {"peak_resident", peak_rss_bytes()}};
    double decode_s = 0;
    if (pictures) {
        token_batch batch{a.batch, grid.rows(), grid.cols(), {}};
        for (const auto& t : tokens) batch.ids.insert(batch.ids.end(), t.begin(), t.end());
        decode_s = pictures->write(batch, a.png);
        j["png"] = {{"path", a.png}, {"vq", a.vq}, {"seconds", decode_s}};
    }
    std::ofstream out(a.out);
    if (!out) throw ordo::error("cannot write " + a.out);
    out << j.dump(1) << "\n";
    if (!out.flush()) throw ordo::error("writing " + a.out + " failed");
    std::fprintf(stderr, "%s%s on %s: %d forward passes in %.2f s (%.1f ms each, %.0f tokens/s), load %.2f s, peak memory %.0f MB (weights %.0f MB + kv cache %.1f MB)\n",
                 j["policy"].get<std::string>().c_str(), a.jacobi_window ? (" + SJD window " + std::to_string(a.jacobi_window)).c_str() : "", grid.str().c_str(),
                 stats.forward_passes, run_s, 1e3 * run_s / stats.forward_passes,
                 j["tokens_per_second"].get<double>(), load_s, peak_rss_bytes() / 1e6, fam.weight_bytes / 1e6, kv_bytes / 1e6);
    return 0;
}

using ordo::models::family;
void check_family(const ordo::io::safetensors& f, const generate_args& a, const ordo::any_policy& p) { cli::check_family(f, a.weights, a.policy, p, "generate"); }
ordo::cfg_ramp ramp_of(const generate_args& a, const ordo::any_policy& p) { return cli::ramp_of(a.cfg_schedule, p); }

// bf16 products are the GPT's (LlamaGen / PAR / NAR / RandAR); LPD and ARPG run in fp32.
void check_fp32_only(const generate_args& a, const char* model) {
    if (a.weight_dtype != "fp32")
        throw ordo::error(std::string("generate: --weight-dtype ") + a.weight_dtype + " is for the LlamaGen-family GPT; " + model + " runs in fp32");
}

int run_lpd(const generate_args& a, const ordo::any_policy& policy, const ordo::grid_shape& grid, const ordo::plan& plan) {
    namespace lpd = ordo::models::lpd;
    check_fp32_only(a, "LPD");
    const auto t0 = std::chrono::steady_clock::now();
    lpd::lpd_weights weights;
    if (a.random_weights) {
        lpd::lpd_config c = lpd::make_preset(a.preset, grid.size());
        weights = lpd::random_weights(c, a.weights_seed);
    } else {
        const ordo::io::safetensors file = ordo::io::safetensors::open(a.weights);
        check_family(file, a, policy);
        const ordo::index_t heads = a.config.empty() ? lpd::make_preset(a.preset, grid.size()).num_heads : lpd::num_heads_from_weights_json(a.config);
        weights = lpd::load_checkpoint(file, heads);
    }
    if (!a.save_weights.empty()) lpd::save_weights(weights, a.save_weights);
    ordo::eigen::lpd_model model(weights);
    const family_info fam{"LPD " + weights.config().str(), weights.config().num_classes, model.null_label(), ramp_of(a, policy),
                          static_cast<double>(weights.bytes()), weights.config().vocab_size};
    return run_model(a, model, fam, policy, grid, plan, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

int run_arpg(const generate_args& a, const ordo::any_policy& policy, const ordo::grid_shape& grid, const ordo::plan& plan) {
    namespace arpg = ordo::models::arpg;
    check_fp32_only(a, "ARPG");
    const auto t0 = std::chrono::steady_clock::now();
    arpg::arpg_weights weights;
    if (a.random_weights) {
        weights = arpg::random_weights(arpg::make_preset(a.preset), a.weights_seed);
    } else {
        const ordo::io::safetensors file = ordo::io::safetensors::open(a.weights);
        check_family(file, a, policy);
        const ordo::index_t heads = a.config.empty() ? arpg::make_preset(a.preset).n_head : arpg::n_head_from_weights_json(a.config);
        weights = arpg::load_checkpoint(file, heads);
    }
    if (!a.save_weights.empty()) arpg::save_weights(weights, a.save_weights);
    ordo::eigen::arpg_model model(weights);
    const family_info fam{"ARPG " + weights.config().str(), weights.config().num_classes, model.null_label(), ramp_of(a, policy),
                          static_cast<double>(weights.bytes()), weights.config().vocab_size};
    return run_model(a, model, fam, policy, grid, plan, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

}  // namespace

int run_generate(const generate_args& a) {
    using clock = std::chrono::steady_clock;
    if (!a.random_weights && a.weights.empty()) throw ordo::error("generate: give --weights FILE.safetensors or --random-weights");
    if (a.config.empty() && a.preset.empty()) throw ordo::error("generate: give --config FILE.json or --preset NAME");
    apply_threads(a.threads);
    const auto t0 = clock::now();
    ordo::any_policy policy = ordo::parse_policy(a.policy);
    if (!a.order.empty()) give_order(policy, load_order(a.order));
    const ordo::grid_shape grid = ordo::parse_grid(a.grid);
    const ordo::plan plan = ordo::make_plan(policy, grid);
    if (family_of(policy) == family::lpd) return run_lpd(a, policy, grid, plan);
    if (family_of(policy) == family::arpg) return run_arpg(a, policy, grid, plan);
    const ordo::cfg_ramp ramp = ramp_of(a, policy);

    // the model: config, then weights straight into their arena
    ordo::models::llamagen::gpt_config cfg = read_gpt_config(a.config, a.preset);
    ordo::models::llamagen::gpt_weights weights;
    if (a.random_weights) {
        // a preset has no checkpoint to read its variant off: give it what the policy needs
        if (a.config.empty()) cfg = ordo::models::llamagen::fit_variant(cfg, plan.view());
        weights = ordo::models::llamagen::random_weights(cfg, a.weights_seed);
    } else {
        const ordo::io::safetensors file = ordo::io::safetensors::open(a.weights);
        check_family(file, a, policy);
        weights = load_gpt_checkpoint(file, cfg, a.config.empty());
        cfg = weights.config();
    }
    if (!a.save_weights.empty()) ordo::models::llamagen::save_weights(weights, a.save_weights);
    ordo::eigen::gpt_model model(weights, ordo::eigen::parse_weight_dtype(a.weight_dtype));
    const double bf16_bytes = model.bf16_matrices() ? static_cast<double>(model.bf16_matrices()->bytes()) : 0.0;
    const family_info fam{cfg.str(), cfg.num_classes, cfg.null_label(), ramp, static_cast<double>(weights.bytes()) + bf16_bytes, cfg.vocab_size};
    return run_model(a, model, fam, policy, grid, plan, std::chrono::duration<double>(clock::now() - t0).count());
}

}  // namespace cli
