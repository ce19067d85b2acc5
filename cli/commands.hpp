// The `ordo` subcommands that run models or the oracle (they need Eigen): their options and
// entry points. Each lives in its own .cpp (compare.cpp, generate.cpp); main.cpp wires them in.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <ordo/oracle/oracle.hpp>

namespace cli {

// --threads N of the commands that run a model on the CPU backend (N >= 1; default: all cores).
void add_threads_option(CLI::App* cmd, int& threads);
// Sets the CPU backend's thread count from --threads (0: not given, all cores).
void apply_threads(int threads);

// `ordo compare` (compare.cpp)
struct compare_args {
    std::vector<std::string> grids{"16x16", "24x24"}, policies;
    std::vector<double> ells{2.0};
    std::string kernel = "exp", out = "ordo-compare", time_preset;
    double nugget = 1e-4;
    std::uint64_t max_memory = ordo::oracle::oracle_default_max_bytes;  // bytes the oracle may use per grid
    int order_seeds = 10;  // a random-order policy (lpd) is measured over this many order seeds
    int threads = 0;       // CPU threads of the timing (0: not given, all cores)
    // --weights/--config: one image per order from this LlamaGen-family checkpoint on the first grid,
    // same class and seed; --vq decodes them (without it: the token grids in false colour)
    std::string weights, config, vq;
    int label = 0, top_k = 0;
    float cfg = 4.0f, top_p = 1.0f, temperature = 1.0f;
    std::uint64_t seed = 0;
};
void add_compare(CLI::App& app, compare_args& a, CLI::App*& cmd);
int run_compare(const compare_args& a);

// `ordo generate` (generate.cpp)
struct generate_args {
    std::string weights, config, preset, policy = "raster", grid = "16x16", out, save_weights;
    std::string cfg_schedule;
    std::string vq, png;  // --vq VQ.safetensors --png out.png: the images (without --vq, false colour)
    std::string order;  // a random-order policy's order, a JSON file (cli/order_file.hpp)  // LPD's: "linear" (its default) or "constant"; empty: the family's default
    int label = 0, top_k = 0, batch = 1, cfg_interval = -1;
    int jacobi_window = 0;  // speculative Jacobi decoding (SJD / SCD) on a raster plan: window length; 0: off
    std::string draft_init = "uniform", coupling = "none";
    float cfg = 4.0f, top_p = 1.0f, temperature = 1.0f;
    std::uint64_t seed = 0, weights_seed = 0;
    bool random_weights = false, quiet = false;
    int threads = 0;                      // CPU threads (0: not given, all cores)
    std::string weight_dtype = "fp32";    // the GPT's multiplied matrices: fp32 or bf16
};
void add_generate(CLI::App& app, generate_args& a, CLI::App*& cmd);
int run_generate(const generate_args& a);

// `ordo decode` (token_pictures.cpp)
struct decode_args {
    std::string vq, tokens, png;
    int eval_size = 0;  // > 0: bicubic resize to eval_size x eval_size before the uint8 step
    int threads = 0;    // 0: all cores
};
void add_decode(CLI::App& app, decode_args& a, CLI::App*& cmd);
int run_decode(const decode_args& a);

}  // namespace cli
