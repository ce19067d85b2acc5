// What the no-allocation binaries share (tests/{gpt,lpd,arpg}_no_alloc.cpp): one CFG session of a
// plan decoded to the end with a model, counting the heap allocations of its steps, on the thread
// count given as the binary's argument. Each binary includes this header (and through it
// bench/alloc_counter.hpp, which replaces the global operator new) exactly once.
//
// malloc is counted too (glibc, no sanitizer: the sanitizers intercept malloc themselves): the
// OpenMP runtime allocates with malloc, never operator new, so only this sees whether a parallel
// region allocates.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include <ordo/eigen/threads.hpp>
#include <ordo/ordo.hpp>

#include "../bench/alloc_counter.hpp"

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define NO_ALLOC_COUNTS_MALLOC 1
namespace no_alloc {
inline std::atomic<std::uint64_t> g_mallocs{0};
}
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void* malloc(std::size_t n) noexcept {
    no_alloc::g_mallocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_malloc(n);
}
void* calloc(std::size_t k, std::size_t n) noexcept {
    no_alloc::g_mallocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_calloc(k, n);
}
void* realloc(void* p, std::size_t n) noexcept {
    no_alloc::g_mallocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_realloc(p, n);
}
void* aligned_alloc(std::size_t a, std::size_t n) noexcept {
    no_alloc::g_mallocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_memalign(a, n);
}
void* memalign(std::size_t a, std::size_t n) noexcept {
    no_alloc::g_mallocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_memalign(a, n);
}
int posix_memalign(void** p, std::size_t a, std::size_t n) noexcept {
    no_alloc::g_mallocs.fetch_add(1, std::memory_order_relaxed);
    *p = __libc_memalign(a, n);
    return *p ? 0 : ENOMEM;
}
}
#endif

namespace no_alloc {

// Heap allocations so far: operator new, plus malloc where it is counted.
inline std::uint64_t allocations() {
#ifdef NO_ALLOC_COUNTS_MALLOC
    return bench::allocs() + g_mallocs.load(std::memory_order_relaxed);
#else
    return bench::allocs();
#endif
}

// The thread count of argv[1] (default 1), set for the CPU backend (which creates the thread pool
// then: its first use, the only one that allocates).
inline int set_threads_from_args(int argc, char** argv) {
    const int n = argc > 1 ? std::stoi(argv[1]) : 1;
    ordo::eigen::set_threads(n);
    ordo::eigen::set_parallel_min_work(0);  // split every call: the test models are small
    std::printf("%d thread%s%s, counting operator new%s\n", n, n == 1 ? "" : "s", ordo::eigen::threads_enabled() ? "" : " (no OpenMP: one runs)",
#ifdef NO_ALLOC_COUNTS_MALLOC
                " and malloc"
#else
                ""
#endif
    );
    return n;
}

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
    const std::uint64_t a0 = allocations();
    while (!s.done()) {
        const ordo::step_batch& b = s.next();
        const std::span<float> out(logits.data(), b.logits_size());
        m.forward(b, cache, out);
        s.commit(out);
    }
    return allocations() - a0;
}

}  // namespace no_alloc
