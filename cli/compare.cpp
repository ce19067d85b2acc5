// `ordo compare`: what each decode order costs in quality (the exact KL of design.md §5 on a
// Gaussian token field) against what it saves in steps, for every built-in policy and hybrid.
//   ordo compare [--grid 16x16,24x24] [--kernel exp|sqexp] [--ell 2] [--nugget 1e-4]
//                [--policies raster,par:2x2,nar,...] [--out ordo-compare] [--time-preset B] [--max-memory 2GiB]
//                [--weights CKPT.safetensors --config CKPT.json [--vq VQ.safetensors] [--class 0] [--seed 0] [--cfg 4] [--top-k 0]]
// Prints a table per grid and length scale and writes compare.md, compare.json and pictures under
// --out: step maps, per-step KL, KL against steps, and sample fields from the same noise. With a
// checkpoint, also one image per order it can run (first grid, same class and seed): images.png.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <ordo/eigen/gpt.hpp>
#include <ordo/oracle/oracle.hpp>
#include <ordo/ordo.hpp>
#include <random>

#include "checkpoint.hpp"
#include "commands.hpp"
#include "pictures.hpp"
#include "token_pictures.hpp"

namespace cli {

void add_compare(CLI::App& app, compare_args& a, CLI::App*& cmd) {
    cmd = app.add_subcommand("compare", "quality (exact KL on a Gaussian token field) against steps for every decode order");
    cmd->add_option("--grid", a.grids, "token grids, HxW or TxHxW, comma-separated")->delimiter(',')->capture_default_str();
    cmd->add_option("--kernel", a.kernel, "exp: exp(-d/l); sqexp: exp(-d^2/(2 l^2))")->check(CLI::IsMember({"exp", "sqexp"}))->capture_default_str();
    cmd->add_option("--ell", a.ells, "dependency range(s) l in tokens")->delimiter(',')->capture_default_str();
    cmd->add_option("--nugget", a.nugget, "independent noise added to the diagonal")->capture_default_str();
    cmd->add_option("--policies", a.policies, "policy specs (default: every built-in policy and hybrid that fits the grid)")->delimiter(',');
    cmd->add_option("--out", a.out, "folder for compare.md and compare.json")->capture_default_str();
    cmd->add_option("--max-memory", a.max_memory, "memory the exact KL may use per grid (three N x N doubles), e.g. 8GiB; default 2GiB")
        ->transform(CLI::AsSizeValue(false));
    cmd->add_option("--order-seeds", a.order_seeds, "orders drawn per random-order policy (lpd: seeds s..s+n-1); its KL is their mean, with the spread")
        ->check(CLI::Range(1, 1000))->capture_default_str();
    add_threads_option(cmd, a.threads);
    cmd->add_option("--time-preset", a.time_preset, "also time one image per LlamaGen-family policy (RandAR included) on this GPT preset with random weights (CPU backend), e.g. B");
    cmd->add_option("--weights", a.weights, "a LlamaGen / PAR / NAR / RandAR checkpoint (safetensors): one image per order it can run, on the first grid (images.png)");
    cmd->add_option("--config", a.config, "the checkpoint's official ModelArgs as JSON (bare, or under \"model_args\")");
    cmd->add_option("--vq", a.vq, "VQ tokenizer checkpoint that decodes the images (without it: the token grids in false colour)");
    cmd->add_option("--class", a.label, "class label of the images")->capture_default_str();
    cmd->add_option("--seed", a.seed, "sampling seed of the images (the same for every order)")->capture_default_str();
    cmd->add_option("--cfg", a.cfg, "classifier-free guidance scale of the images (<= 1: off)")->capture_default_str();
    cmd->add_option("--top-k", a.top_k, "keep the k most likely tokens (0: off)")->check(CLI::NonNegativeNumber)->capture_default_str();
    cmd->add_option("--top-p", a.top_p, "nucleus mass in (0, 1] (1: off)")->capture_default_str();
    cmd->add_option("--temperature", a.temperature, "softmax temperature")->capture_default_str();
}

// Every built-in order that fits the grid, plus the PAR x NAR hybrids.
inline std::vector<std::string> compare_policies(const ordo::grid_shape& g) {
    std::vector<std::string> out = ordo::builtin_policies(g);
    if (g.frames() == 1 && g.rows() % 4 == 0 && g.cols() % 4 == 0) out.push_back("par:4x4+nar");
    return out;
}

struct compare_row {
    std::string policy;
    ordo::index_t steps = 0;
    ordo::oracle::plan_kl kl;  // of the policy's own plan (its seed's order)
    bool pareto = false;
    double seconds = -1;    // measured time per image, when timed
    double kl_mean = 0;     // over the order seeds (the plan's KL for a fixed order)
    double kl_sd = 0;       // sample standard deviation over the order seeds (0 for a fixed order)
    int seeds = 1;
};

// The KL of `spec`'s plan and, for a random-order policy, its mean and spread over `seeds` orders.
inline compare_row measure(const std::string& spec, const ordo::plan& p, const ordo::grid_shape& g, const Eigen::MatrixXd& sigma, int seeds) {
    const ordo::any_policy policy = ordo::parse_policy(spec);
    compare_row r{ordo::spec_of(policy), p.num_steps(), ordo::oracle::exact_kl(p.view(), sigma)};
    r.kl_mean = r.kl.total;
    // the orders of seeds s+1 .. s+seeds-1 of a policy that draws its order from a seed
    std::vector<double> kls{r.kl.total};
    std::visit(
        [&](const auto& q) {
            if constexpr (requires { q.seed; }) {
                bool fixed = q.seed < 0;  // the schedule alone, or an order given as data
                if constexpr (requires { q.order; }) fixed = fixed || !q.order.empty();
                for (int j = 1; j < seeds && !fixed; ++j) {
                    auto other = q;
                    other.seed = q.seed + j;
                    kls.push_back(ordo::oracle::exact_kl(ordo::make_plan(other, g).view(), sigma).total);
                }
            }
        },
        policy);
    if (kls.size() < 2) return r;
    double sum = 0, sq = 0;
    for (double k : kls) sum += k;
    seeds = static_cast<int>(kls.size());
    r.kl_mean = sum / seeds;
    for (double k : kls) sq += (k - r.kl_mean) * (k - r.kl_mean);
    r.kl_sd = std::sqrt(sq / (seeds - 1));
    r.seeds = seeds;
    return r;
}

// --policies is split at commas, but an LPD spec has commas of its own (lpd:steps=32,seed=0): a
// piece without ':' that holds '=' continues the policy before it.
inline std::vector<std::string> regroup_policies(const std::vector<std::string>& pieces) {
    std::vector<std::string> out;
    for (const std::string& p : pieces)
        if (!out.empty() && p.find(':') == std::string::npos && p.find('=') != std::string::npos) out.back() += "," + p;
        else out.push_back(p);
    return out;
}

// Seconds for one image of `p` on `preset` (random weights, batch 1, CFG 4).
inline double time_image(const ordo::plan& p, const std::string& preset) {
    const ordo::models::llamagen::gpt_config c = ordo::models::llamagen::fit_variant(ordo::models::llamagen::make_preset(preset), p.view());
    const ordo::models::llamagen::gpt_weights w = ordo::models::llamagen::random_weights(c, 1);
    ordo::eigen::gpt_model m(w);
    const std::vector<ordo::request> req{{1, 0, {}}};
    ordo::generate_options o;
    o.session.guidance.scale = 4.0f;
    o.session.null_label = c.null_label();
    ordo::contiguous_kv_cache<float> cache(m.num_layers(), 2, ordo::kv_cache_len(p), m.cache_width());
    const auto t0 = std::chrono::steady_clock::now();
    ordo::generate(m, cache, p.view(), ordo::make_sampler(ordo::top_k{2000}, ordo::multinomial{}), req, o);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A spec as a file-name part: "par:2x2+nar" -> "par-2x2_nar".
inline std::string file_part(std::string s) {
    for (char& c : s)
        if (c == ':') c = '-';
        else if (c == '+') c = '_';
    return s;
}
inline std::string ell_part(double ell) {
    char b[32];
    std::snprintf(b, sizeof b, "l%g", ell);
    return b;
}

// A checkpoint's images (--weights): loaded and checked against the tokenizer before any work.
struct image_source {
    ordo::models::llamagen::gpt_weights weights;
    token_pictures pictures;
    ordo::grid_shape grid;
};

inline std::unique_ptr<image_source> load_image_source(const compare_args& a) {
    if (a.weights.empty()) {
        if (!a.vq.empty()) throw ordo::error("compare: --vq decodes the images of a checkpoint: give --weights CKPT.safetensors --config CKPT.json too");
        if (!a.config.empty()) throw ordo::error("compare: --config is the checkpoint's: give --weights CKPT.safetensors too");
        return nullptr;
    }
    if (a.config.empty()) throw ordo::error("compare: --weights needs --config CKPT.json (the checkpoint's ModelArgs)");
    const ordo::grid_shape g = ordo::parse_grid(a.grids.front());
    if (g.frames() != 1) throw ordo::error("compare: the images are drawn on the first grid, " + g.str() + ", which has a time axis: give an image grid first");
    const ordo::models::llamagen::gpt_config cfg = read_gpt_config(a.config, "");
    const ordo::io::safetensors file = ordo::io::safetensors::open(a.weights);
    if (const ordo::models::family f = ordo::models::family_of(file); f != ordo::models::family::llamagen)
        throw ordo::error("compare: " + a.weights + " is " + ordo::models::family_name(f) +
                          " checkpoint; compare runs a LlamaGen-family GPT (LlamaGen / PAR / NAR / RandAR): run its order with ordo generate");
    auto src = std::make_unique<image_source>(image_source{load_gpt_checkpoint(file, cfg, false), token_pictures(a.vq), g});
    if (a.label < 0 || a.label >= cfg.num_classes)
        throw ordo::error("compare: --class " + std::to_string(a.label) + " outside 0.." + std::to_string(cfg.num_classes - 1));
    src->pictures.check(g.rows(), g.cols(), cfg.vocab_size);
    return src;
}

// Which orders have an image and in which column of images.png, and why the others have none.
struct image_columns {
    std::vector<std::string> drawn;                             // left to right
    std::vector<std::pair<std::string, std::string>> skipped;   // order, why the checkpoint cannot run it
    int width = 0, height = 0;                                  // of one image, px
};

// One image per order of `specs` that the checkpoint can run, with the settings of `ordo generate`
// (one image: stream 0, the same seed and class), side by side in images.png and, with the
// names above, images_labelled.png.
inline image_columns draw_images(const compare_args& a, image_source& src, const std::vector<std::string>& specs) {
    const ordo::models::llamagen::gpt_config& cfg = src.weights.config();
    ordo::eigen::gpt_model model(src.weights);
    image_columns out;
    out.width = static_cast<int>(src.pictures.image_width(src.grid.cols()));
    out.height = static_cast<int>(src.pictures.image_height(src.grid.rows()));
    std::vector<std::vector<std::uint8_t>> images;
    for (const std::string& spec : specs) {
        const ordo::any_policy policy = ordo::parse_policy(spec);
        const std::string name = ordo::spec_of(policy);
        const ordo::plan plan = ordo::make_plan(policy, src.grid);
        try {
            ordo::models::llamagen::check_plan_fit(cfg, plan.view());
        } catch (const ordo::error& e) {
            std::string why = e.what();
            if (why.rfind("ordo: ", 0) == 0) why.erase(0, 6);  // the library's prefix; compare.md names the order instead
            std::printf("image: %-14s skipped: %s\n", name.c_str(), why.c_str());
            out.skipped.emplace_back(name, why);
            continue;
        }
        const std::vector<std::vector<ordo::index_t>> orders = per_image_orders(policy, src.grid, 1);
        const std::vector<ordo::request> requests{{a.label, 0, {}, orders.empty() ? std::span<const ordo::index_t>{} : std::span<const ordo::index_t>(orders[0])}};
        ordo::generate_options o;
        o.session.guidance.scale = a.cfg;
        o.session.guidance.ramp = ramp_of("", policy);
        o.session.seed = a.seed;
        o.session.null_label = cfg.null_label();
        const ordo::index_t sequences = o.session.guidance.active() ? 2 : 1;
        ordo::contiguous_kv_cache<float> cache(model.num_layers(), sequences, ordo::kv_cache_len(plan), model.cache_width());
        const auto sampler = ordo::make_sampler(ordo::temperature{a.temperature}, ordo::top_k{a.top_k}, ordo::top_p{a.top_p}, ordo::multinomial{});
        const auto t0 = std::chrono::steady_clock::now();
        const auto tokens = ordo::generate(model, cache, plan.view(), sampler, requests, o);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        images.emplace_back();
        src.pictures.draw(tokens[0], src.grid.rows(), src.grid.cols(), images.back());
        out.drawn.push_back(name);
        std::printf("image: %-14s %d steps, %.2f s\n", name.c_str(), plan.num_steps(), seconds);
    }
    if (images.empty()) return out;
    // the bare strip: image i at x = i * width, so that each is the picture `ordo generate --png` writes
    const std::size_t row_bytes = static_cast<std::size_t>(out.width) * 3, strip_row = row_bytes * images.size();
    std::vector<std::uint8_t> strip(strip_row * static_cast<std::size_t>(out.height));
    for (std::size_t i = 0; i < images.size(); ++i)
        for (int y = 0; y < out.height; ++y)
            std::copy_n(images[i].data() + static_cast<std::size_t>(y) * row_bytes, row_bytes, strip.data() + static_cast<std::size_t>(y) * strip_row + i * row_bytes);
    pictures::write_png(a.out + "/images.png", static_cast<int>(images.size()) * out.width, out.height, strip.data());
    pictures::labelled_strip(out.drawn, images, out.width, out.height, a.out + "/images_labelled.png");
    return out;
}

int run_compare(const compare_args& a) {
    if (a.grids.empty() || a.ells.empty()) throw ordo::error("compare: give at least one grid and one length scale");
    apply_threads(a.threads);
    // refuse a grid the oracle cannot hold before any work
    for (const std::string& gs : a.grids) ordo::oracle::check_oracle_memory(ordo::parse_grid(gs), a.max_memory);
    // and a checkpoint or tokenizer that cannot draw the first grid
    const std::unique_ptr<image_source> source = load_image_source(a);
    auto specs_of = [&](const ordo::grid_shape& g) { return a.policies.empty() ? compare_policies(g) : regroup_policies(a.policies); };
    std::filesystem::create_directories(a.out);
    image_columns columns;
    if (source) columns = draw_images(a, *source, specs_of(source->grid));
    nlohmann::json all = nlohmann::json::array();
    std::ostringstream md;
    md << "# ordo compare\n\nExact KL(generated ‖ true) in nats of each decode order on a zero-mean Gaussian token field "
          "(design.md §5): tokens emitted in one step are sampled independently given the earlier steps. "
          "Pareto: no other order has at most as many steps and a lower KL.\n";
    for (const std::string& gs : a.grids) {
        const ordo::grid_shape g = ordo::parse_grid(gs);
        const std::vector<std::string> specs = specs_of(g);
        const bool with_images = source && &gs == &a.grids.front();
        std::vector<ordo::plan> plans;
        for (const std::string& s : specs) plans.push_back(ordo::make_plan(ordo::parse_policy(s), g));
        for (std::size_t i = 0; i < specs.size(); ++i) {
            const std::string name = ordo::spec_of(ordo::parse_policy(specs[i]));
            pictures::step_map(plans[i], name + " on " + g.str() + ": " + std::to_string(plans[i].num_steps()) + " steps (dark: early)",
                               a.out + "/stepmap_" + g.str() + "_" + file_part(name) + ".png");
        }
        std::vector<double> seconds(specs.size(), -1.0);
        if (!a.time_preset.empty())
            for (std::size_t i = 0; i < specs.size(); ++i) {
                // LPD and ARPG run their own models (bench_gpt times them); the GPT preset takes the rest
                const ordo::any_policy pol = ordo::parse_policy(specs[i]);
                if (std::holds_alternative<ordo::query_groups>(pol) || std::holds_alternative<ordo::cross_queries>(pol)) continue;
                seconds[i] = time_image(plans[i], a.time_preset);
            }
        const double raster_seconds = [&] {
            for (std::size_t i = 0; i < specs.size(); ++i)
                if (specs[i] == "raster") return seconds[i];
            return -1.0;
        }();
        for (double ell : a.ells) {
            const ordo::oracle::field_kernel k = ordo::oracle::field_kernel::isotropic(
                a.kernel == "exp" ? ordo::oracle::kernel_shape::exponential : ordo::oracle::kernel_shape::squared_exponential, ell, a.nugget);
            const Eigen::MatrixXd sigma = ordo::oracle::field_covariance(g, k, a.max_memory);
            std::vector<compare_row> rows;
            for (std::size_t i = 0; i < specs.size(); ++i) {
                rows.push_back(measure(specs[i], plans[i], g, sigma, a.order_seeds));
                rows.back().seconds = seconds[i];
            }
            for (compare_row& r : rows) {
                r.pareto = true;
                for (const compare_row& o : rows)
                    if (&o != &r && o.steps <= r.steps && o.kl_mean < r.kl_mean - 1e-12) r.pareto = false;
            }
            const std::string tag = g.str() + "_" + ell_part(ell), what = g.str() + ", " + k.str();
            std::vector<pictures::series_data> per_step, scatter;
            std::vector<std::pair<std::string, Eigen::VectorXd>> fields;
            std::mt19937_64 rng(20261122);
            std::normal_distribution<double> normal;
            Eigen::VectorXd z(g.size());
            for (Eigen::Index i = 0; i < z.size(); ++i) z(i) = normal(rng);
            for (std::size_t i = 0; i < rows.size(); ++i) {
                pictures::series_data d{rows[i].policy, {}, {}};
                for (std::size_t s = 0; s < rows[i].kl.per_step.size(); ++s) {
                    d.x.push_back(static_cast<double>(s + 1));
                    d.y.push_back(rows[i].kl.per_step[s]);
                }
                per_step.push_back(d);
                scatter.push_back({rows[i].policy, {static_cast<double>(rows[i].steps)}, {rows[i].kl.per_token(g.size())}});
                const auto v = plans[i].view();
                fields.emplace_back(rows[i].policy == "raster" ? "true (raster)" : rows[i].policy,
                                    ordo::oracle::generated_sample(v.order, v.emit_offsets, sigma, z));
            }
            pictures::plot(per_step, "KL per step, " + what, "step (log; 1 is the first)", "KL of the step (nats)", true, false, false,
                           a.out + "/kl_per_step_" + tag + ".png");
            pictures::plot(scatter, "quality against speed, " + what, "steps (log)", "KL per token (nats, log; 0 at the bottom)", true, true, true,
                           a.out + "/kl_vs_steps_" + tag + ".png");
            pictures::samples(g, fields, "one noise draw, generated by each order: " + what, a.out + "/samples_" + tag + ".png");

            const bool timed = !a.time_preset.empty();
            std::printf("\n%s grid, %s (%d tokens)\n", g.str().c_str(), k.str().c_str(), g.size());
            std::printf("%-14s %6s %7s %12s %12s %7s%s\n", "policy", "steps", "ratio", "KL nats", "KL/token", "pareto",
                        timed ? "   s/image  speedup" : "");
            md << "\n## " << g.str() << ", " << k.str() << "\n\n| policy | steps | step ratio | KL (nats) | KL per token | Pareto |"
               << (timed ? " s/image (GPT-" + a.time_preset + ") | speedup |" : "") << "\n|---|---:|---:|---:|---:|:-:|" << (timed ? "---:|---:|" : "") << "\n";
            for (const compare_row& r : rows) {
                const double ratio = static_cast<double>(g.size()) / r.steps;
                // a random-order policy: the mean over its order seeds, ± their standard deviation
                char kl[64];
                if (r.seeds > 1) std::snprintf(kl, sizeof kl, "%.4g ± %.2g (%d orders)", r.kl_mean, r.kl_sd, r.seeds);
                else std::snprintf(kl, sizeof kl, "%.4g", r.kl_mean);
                char line[384];
                std::snprintf(line, sizeof line, "%-14s %6d %6.2fx %12s %12.4g %7s", r.policy.c_str(), r.steps, ratio, kl,
                              r.kl_mean / g.size(), r.pareto ? "yes" : "");
                std::printf("%s", line);
                if (timed && r.seconds < 0) std::printf(" %9s %8s", "-", "-");  // not a GPT order
                else if (timed) std::printf(" %9.2f %7.2fx", r.seconds, raster_seconds > 0 ? raster_seconds / r.seconds : 0.0);
                std::printf("\n");
                char cells[384];
                std::snprintf(cells, sizeof cells, "| %s | %d | %.2fx | %s | %.4g | %s |", r.policy.c_str(), r.steps, ratio, kl,
                              r.kl_mean / g.size(), r.pareto ? "yes" : "");
                md << cells;
                if (timed) {
                    if (r.seconds < 0) std::snprintf(cells, sizeof cells, " - | - |");
                    else std::snprintf(cells, sizeof cells, " %.2f | %.2fx |", r.seconds, raster_seconds > 0 ? raster_seconds / r.seconds : 0.0);
                    md << cells;
                }
                md << "\n";
                nlohmann::json j{{"policy", r.policy},         {"grid", g.str()},      {"kernel", a.kernel},
                                 {"ell", ell},                 {"nugget", a.nugget},   {"steps", r.steps},
                                 {"step_ratio", ratio},        {"kl_nats", r.kl.total}, {"kl_per_token", r.kl.per_token(g.size())},
                                 {"kl_per_step", r.kl.per_step}, {"pareto", r.pareto}};
                if (r.seeds > 1) {  // kl_nats and kl_per_step are the policy's own order's
                    j["order_seeds"] = r.seeds;
                    j["kl_nats_mean"] = r.kl_mean;
                    j["kl_nats_sd"] = r.kl_sd;
                }
                if (timed && r.seconds >= 0) {
                    j["seconds_per_image"] = r.seconds;
                    j["model"] = "GPT-" + a.time_preset + " (random weights, batch 1, CFG 4)";
                }
                if (with_images) {
                    const auto drawn = std::find(columns.drawn.begin(), columns.drawn.end(), r.policy);
                    if (drawn != columns.drawn.end()) j["image"] = {{"path", "images.png"}, {"column", drawn - columns.drawn.begin()}};
                    for (const auto& [policy, why] : columns.skipped)
                        if (policy == r.policy) j["image_skipped"] = why;
                }
                all.push_back(j);
            }
        }
    }
    if (source) {
        md << "\n## Images\n\nOne image per order from " << a.weights << " (" << source->weights.config().str() << ") on " << source->grid.str()
           << ", class " << a.label << ", seed " << a.seed << ", CFG " << a.cfg << ", top-k " << a.top_k << ", "
           << (source->pictures.decodes() ? "decoded by " + a.vq : std::string("token ids in false colour (no --vq)")) << ".\n\n";
        if (columns.drawn.empty()) md << "The checkpoint runs none of the orders compared.\n";
        else {
            md << "`images.png`: " << columns.drawn.size() << " images of " << columns.width << "x" << columns.height
               << " px side by side (column i at x = i * " << columns.width << "); `images_labelled.png`: the same with the names.\n\n| column | policy |\n|---:|---|\n";
            for (std::size_t i = 0; i < columns.drawn.size(); ++i) md << "| " << i << " | " << columns.drawn[i] << " |\n";
        }
        if (!columns.skipped.empty()) {
            md << "\nSkipped (the checkpoint cannot run them):\n\n";
            for (const auto& [policy, why] : columns.skipped) md << "- " << policy << ": " << why << "\n";
        }
    }
    const std::string md_path = a.out + "/compare.md", json_path = a.out + "/compare.json";
    std::ofstream(md_path) << md.str();
    std::ofstream(json_path) << all.dump(1) << "\n";
    if (!std::ifstream(md_path) || !std::ifstream(json_path)) throw ordo::error("compare: cannot write under " + a.out);
    std::printf("\nwrote %s, %s and pictures (stepmap_*, kl_per_step_*, kl_vs_steps_*, samples_*%s) in %s\n", md_path.c_str(), json_path.c_str(), columns.drawn.empty() ? "" : ", images.png", a.out.c_str());
    return 0;
}

}  // namespace cli
