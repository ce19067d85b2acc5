// The LPD step forward allocates nothing: after check_fit() (which sizes the model's buffers), every
// step of the lpd policy — next(), the LPD forward and commit() — runs without a heap allocation,
// with CFG (cond + fake_latent halves) and with per-request orders. A separate binary, because it
// replaces the global operator new.
#include <cstdio>
#include <numeric>

#include <ordo/eigen/lpd.hpp>
#include <ordo/ordo.hpp>

#include "../bench/alloc_counter.hpp"

int main() {
    int failures = 0;
    const ordo::grid_shape g = ordo::grid_shape::make(16, 16);
    ordo::models::lpd::lpd_config c;
    c.dim = 32; c.depth = 2; c.num_heads = 2; c.mlp_hidden = 128; c.vocab_size = 64; c.num_classes = 4; c.num_cells = g.size();
    const ordo::models::lpd::lpd_weights w = ordo::models::lpd::random_weights(c, 1);
    std::vector<ordo::index_t> reversed(static_cast<std::size_t>(g.size()));
    std::iota(reversed.rbegin(), reversed.rend(), 0);
    for (const std::string spec : {"lpd:20", "lpd:steps=32,seed=request"}) {
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), g);
        ordo::eigen::lpd_model m(w);
        const bool per_request = spec.find("request") != std::string::npos;
        std::vector<ordo::request> reqs{{1, 0, {}, {}}, {2, 1, {}, {}}};
        if (per_request) reqs[1].order = reversed;
        ordo::session_options o;
        o.guidance.scale = 2.0f;
        o.null_label = m.null_label();
        ordo::session s(p.view(), std::span<const ordo::request>(reqs), ordo::make_sampler(ordo::top_k{8}, ordo::top_p{0.9f}, ordo::multinomial{}),
                        m.vocab_size(), o);
        ordo::contiguous_kv_cache<float> cache(m.num_layers(), s.num_sequences(), ordo::kv_cache_len(p), m.cache_width());
        ordo::check_fit(p.view(), m, cache, s.num_sequences());
        std::vector<float> logits(static_cast<std::size_t>(s.num_sequences()) * static_cast<std::size_t>(p.view().max_rows_per_step()) *
                                  static_cast<std::size_t>(m.vocab_size()));
        const std::uint64_t a0 = bench::allocs();
        while (!s.done()) {
            const ordo::step_batch& b = s.next();
            const std::span<float> out(logits.data(), b.logits_size());
            m.forward(b, cache, out);
            s.commit(out);
        }
        const std::uint64_t n = bench::allocs() - a0;
        std::printf("%-28s %3d steps, %llu allocations\n", spec.c_str(), p.num_steps(), static_cast<unsigned long long>(n));
        failures += n != 0;
    }
    return failures ? 1 : 0;
}
