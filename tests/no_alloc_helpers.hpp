// What the no-allocation binaries share (tests/{gpt,lpd,arpg}_no_alloc.cpp): one CFG session of a
// plan decoded to the end with a model, counting the heap allocations of its steps. Each binary
// includes bench/alloc_counter.hpp (which replaces the global operator new) exactly once.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include <ordo/ordo.hpp>

#include "../bench/alloc_counter.hpp"

namespace no_alloc {

// Heap allocations of every step — next(), `m.forward` and commit() — of plan `p` run for `reqs`
// with CFG (scale 2, `null_label` the unconditional half) and a top-k/top-p sampler, after
// check_fit() has sized the model's buffers (the session, the cache and the logits buffer are
// allocated before counting starts).
template <class Model>
std::uint64_t step_allocations(const ordo::plan& p, Model& m, const std::vector<ordo::request>& reqs, ordo::index_t null_label) {
    ordo::session_options o;
    o.guidance.scale = 2.0f;
    o.null_label = null_label;
    ordo::session s(p.view(), std::span<const ordo::request>(reqs), ordo::make_sampler(ordo::top_k{8}, ordo::top_p{0.9f}, ordo::multinomial{}),
                    m.vocab_size(), o);
    ordo::contiguous_kv_cache<float> cache(m.num_layers(), s.num_sequences(), ordo::kv_cache_len(p), m.cache_width());
    ordo::check_fit(p.view(), m, cache, s.num_sequences());
    std::vector<float> logits(static_cast<std::size_t>(s.num_sequences()) * static_cast<std::size_t>(p.view().max_rows_per_step()) *
                              static_cast<std::size_t>(p.header().num_heads) * static_cast<std::size_t>(m.vocab_size()));
    const std::uint64_t a0 = bench::allocs();
    while (!s.done()) {
        const ordo::step_batch& b = s.next();
        const std::span<float> out(logits.data(), b.logits_size());
        m.forward(b, cache, out);
        s.commit(out);
    }
    return bench::allocs() - a0;
}

}  // namespace no_alloc
