// The `ordo` command-line tool: plans, step maps and an overview of every built-in order.
//   ordo plan --policy par:2x2 --grid 24x24 [--prefix 1] [--format json|text]
//   ordo plan --plan saved.json [--format json|text]      (a plan saved by `ordo plan`, checked)
//   ordo plan --policy randar:88 --grid 16x16 --order order.json   (a random order given as data)
//   ordo show --policy nar --grid 16x16 [--color auto|always|never]
//   ordo show --plan saved.json
//   ordo overview [--grid 16x16]
//   ordo generate --weights W.safetensors --config W.json --policy par:2x2 --grid 24x24 --class 207 --out t.json
//   ordo generate ... --vq VQ.safetensors --png images.png      (the pictures too; without --vq, false colour)
//   ordo decode --vq VQ.safetensors --tokens t.json --png images.png [--eval-size 256]
//   ordo compare [--grid 16x16,24x24] [--ell 2] [--out ordo-compare]
//     (generate, decode and compare need Eigen: generate.cpp, token_pictures.cpp, compare.cpp)
#include <cstdio>
#include <iostream>
#include <new>
#include <string>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <ordo/io/text_file.hpp>
#include <ordo/ordo.hpp>
#include "order_file.hpp"
#ifdef ORDO_WITH_EIGEN
#include "commands.hpp"
#endif

namespace {

// A plan saved in the exchange format, read with the reader's size cap (so /dev/zero ends).
ordo::plan_document load_plan(const std::string& path) {
    return ordo::plan_from_json(ordo::io::read_text_file(path, ordo::max_plan_json_bytes, "plan file"));
}

// The plan the options name: --plan FILE, or --policy on --grid with --prefix (and --order FILE
// for a random-order policy).
ordo::plan_document named_plan(const std::string& file, const std::string& policy, const std::string& grid, int prefix,
                               const std::string& order_file = "") {
    if (!file.empty()) return load_plan(file);
    if (policy.empty()) throw ordo::error("give --policy SPEC (with --grid) or --plan FILE");
    ordo::any_policy p = ordo::parse_policy(policy);
    if (!order_file.empty()) cli::give_order(p, cli::load_order(order_file));
    return {ordo::spec_of(p), ordo::make_plan(p, ordo::parse_grid(grid), prefix)};
}

int run_plan(const ordo::plan_document& d, const std::string& format) {
    std::cout << (format == "json" ? ordo::plan_to_json(d.plan, d.policy) : ordo::plan_to_text(d.plan, d.policy));
    return 0;
}

bool want_color(const std::string& mode) { return mode == "always" || (mode == "auto" && isatty(STDOUT_FILENO)); }

int run_show(const ordo::plan_document& d, const std::string& color) {
    const ordo::grid_shape& g = d.plan.header().grid;
    std::cout << d.policy << " on " << g.str() << ": " << d.plan.num_steps() << " steps (raster: " << g.size()
              << ", ratio " << static_cast<double>(g.size()) / d.plan.num_steps() << "x)\n"
              << ordo::step_map(d.plan, want_color(color));
    return 0;
}

int run_overview(const std::string& grid, const std::string& color) {
    const ordo::grid_shape g = ordo::parse_grid(grid);
    const auto specs = ordo::builtin_policies(g);
    std::printf("ordo: decode orders on a %s grid (%d tokens)\n\n", g.str().c_str(), g.size());
    std::printf("%-14s %7s %8s %10s %12s\n", "policy", "steps", "ratio", "max rows", "plan bytes");
    for (const auto& s : specs) {
        const ordo::plan pl = ordo::make_plan(ordo::parse_policy(s), g);
        std::printf("%-14s %7d %7.2fx %10d %12zu\n", s.c_str(), pl.num_steps(), static_cast<double>(g.size()) / pl.num_steps(),
                    pl.view().max_rows_per_step(), pl.bytes());
    }
    for (const auto& s : specs) {
        std::printf("\n");
        run_show(named_plan("", s, grid, 1), color);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"ordo: decode orders for autoregressive visual generation"};
    app.require_subcommand(1);
    std::string policy, grid = "16x16", format = "json", color = "auto", plan_file, order_file;
    int prefix = 1;

    auto* plan = app.add_subcommand("plan", "print the plan of a policy on a grid, or of a saved plan");
    auto* plan_policy = plan->add_option("--policy", policy, "raster | par:HxW[+nar] | nar | zipar:W | lpd:... | randar:... | arpg:... (docs/orders.md)");
    auto* plan_grid = plan->add_option("--grid", grid, "HxW or TxHxW");
    plan_policy->needs(plan_grid);
    auto* plan_prefix = plan->add_option("--prefix", prefix, "conditioning rows before the image tokens")->capture_default_str();
    plan->add_option("--plan", plan_file, "a plan saved as JSON by `ordo plan` (read back and checked)")
        ->excludes(plan_policy)->excludes(plan_grid)->excludes(plan_prefix);
    auto* plan_order = plan->add_option("--order", order_file, "a random-order policy's order (randar, arpg) as a JSON list of raster cells");
    plan_order->needs(plan_policy);
    plan->add_option("--format", format, "json (the plan exchange format) or text")
        ->check(CLI::IsMember({"json", "text"}))->capture_default_str();

    auto* show = app.add_subcommand("show", "draw the step map of a policy on a grid, or of a saved plan");
    auto* show_policy = show->add_option("--policy", policy, "raster | par:HxW[+nar] | nar | zipar:W | lpd:... | randar:... | arpg:...");
    show->add_option("--order", order_file, "a random-order policy's order (randar, arpg) as a JSON list of raster cells")->needs(show_policy);
    auto* show_grid = show->add_option("--grid", grid, "HxW or TxHxW")->capture_default_str();
    show->add_option("--plan", plan_file, "a plan saved as JSON by `ordo plan`")->excludes(show_policy)->excludes(show_grid);
    show->add_option("--color", color, "auto, always or never")->check(CLI::IsMember({"auto", "always", "never"}))->capture_default_str();

    auto* overview = app.add_subcommand("overview", "steps and step maps of every built-in policy on a grid");
    overview->add_option("--grid", grid, "HxW or TxHxW")->capture_default_str();
    overview->add_option("--color", color, "auto, always or never")->check(CLI::IsMember({"auto", "always", "never"}))->capture_default_str();

#ifdef ORDO_WITH_EIGEN
    cli::generate_args gen_args;
    CLI::App* generate = nullptr;
    cli::add_generate(app, gen_args, generate);
    cli::compare_args cmp_args;
    CLI::App* compare = nullptr;
    cli::add_compare(app, cmp_args, compare);
    cli::decode_args dec_args;
    CLI::App* decode = nullptr;
    cli::add_decode(app, dec_args, decode);
#endif

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        if (*plan) return run_plan(named_plan(plan_file, policy, grid, prefix, order_file), format);
        if (*show) return run_show(named_plan(plan_file, policy, grid, 1, order_file), color);
        if (*overview) return run_overview(grid, color);
#ifdef ORDO_WITH_EIGEN
        if (*generate) return cli::run_generate(gen_args);
        if (*compare) return cli::run_compare(cmp_args);
        if (*decode) return cli::run_decode(dec_args);
#endif
    } catch (const std::bad_alloc&) {  // bad input is refused before large allocations; this is a real shortage
        std::fprintf(stderr, "ordo: out of memory (the machine cannot hold what was asked for)\n");
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 2;
    }
    return 1;
}
