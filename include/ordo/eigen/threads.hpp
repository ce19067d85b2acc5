// ordo/eigen/threads.hpp - the CPU backend's one threading layer: OpenMP, one process-wide thread
// count, and parallel_ranges(), a fixed static partition of [0, n) into contiguous parts.
//
// Why OpenMP: Eigen parallelises under OpenMP too, so one runtime and one count serve ordo's loops
// and any Eigen product a caller runs (set_threads() sets both); every compiler has it; and a
// static partition is a fixed function of (n, threads), so which thread computes an output never
// changes how that output is summed. (ordo's own Eigen GEMMs, the VQ decoder's, run one
// sequential GEMM per fixed chunk inside parallel_ranges instead: Eigen's threaded GEMM sizes its
// depth blocks by the thread count, which would change the sums.)
// Without OpenMP (not found at configure time, or a consumer compiling without -fopenmp)
// everything runs on the calling thread and set_threads() records the count only.
//
// Determinism: callers split work by whole outputs (skinny.hpp: weight rows in blocks of 4;
// attention.hpp: (row, sequence, head) triples; layers: rows), each computed by one thread with the
// same instructions in the same order as on one thread, so results are bit-identical for any count.
//
// No allocation per step: a parallel region reuses libgomp's team when its size is the same as the
// last region's, so every region here asks for the full thread count (a part may be empty), and a
// count of 1 runs no region at all (a team of one is allocated per region). The first region of a
// thread count creates the pool (threads, team): warm_up_threads() does that up front.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "../config.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif
#include <Eigen/Core>

namespace ordo::eigen {

namespace detail {
inline std::atomic<int> g_threads{0};  // 0: not set, all cores
}  // namespace detail

// Threads available to one process: OpenMP's default (OMP_NUM_THREADS, else every core), 1
// without OpenMP.
inline int max_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

// Is OpenMP compiled in (can set_threads() above 1 use more than one core)?
inline constexpr bool threads_enabled() {
#ifdef _OPENMP
    return true;
#else
    return false;
#endif
}

// The thread count every forward pass uses (default: max_threads()).
inline int threads() {
    const int n = detail::g_threads.load(std::memory_order_relaxed);
    return n > 0 ? n : max_threads();
}

// Runs a region of the current thread count so that the pool exists before the steps are timed or
// counted (libgomp allocates it on first use only).
inline void warm_up_threads() {
#ifdef _OPENMP
    const int n = threads();
    if (n > 1 && !omp_in_parallel()) {
        std::atomic<int> ran{0};
#pragma omp parallel num_threads(n)
        ran.fetch_add(1, std::memory_order_relaxed);
    }
#endif
}

// Sets the thread count of the CPU backend's forward passes and of Eigen's own products
// (Eigen::setNbThreads), process-wide. n >= 1; more than the cores oversubscribes them.
inline void set_threads(int n) {
    if (n < 1) throw error("threads: the thread count must be >= 1, got " + std::to_string(n));
    detail::g_threads.store(n, std::memory_order_relaxed);
    Eigen::setNbThreads(n);
    warm_up_threads();
}

// Work below this many multiply-adds (or element operations) runs on the caller: a parallel region
// costs a few microseconds of wake-up and barrier, more than a small model's product takes, and
// each region is a point where one descheduled worker stalls the whole team (an oversubscribed
// machine: tests run side by side, PyTorch's threads). ~64k operations is ~10 us on one core.
namespace detail {
inline std::atomic<double> g_min_work{65536};
}  // namespace detail
inline double parallel_min_work() { return detail::g_min_work.load(std::memory_order_relaxed); }
// A tuning knob, process-wide: 0 splits every call (what the thread tests use to exercise the
// split on small models); results do not depend on it.
inline void set_parallel_min_work(double work) {
    if (!(work >= 0)) throw error("threads: the minimum parallel work must be >= 0");
    detail::g_min_work.store(work, std::memory_order_relaxed);
}

// f(begin, end, t) on the contiguous parts [n*t/T, n*(t+1)/T) of [0, n), t < T = the team's size,
// one part per thread (some may be empty: the team is always the full count, see above); t indexes
// per-thread scratch (t < threads()). `work` is the whole call's operation count: below
// parallel_min_work, on one thread, inside another parallel region (no nesting) or without
// OpenMP: f(0, n, 0) on the caller. Which thread runs a part never changes what it computes.
template <class F>
void parallel_ranges(index_t n, double work, F&& f) {
    if (n <= 0) return;
#ifdef _OPENMP
    const int want = threads();
    if (want > 1 && n > 1 && work >= parallel_min_work() && !omp_in_parallel()) {
#pragma omp parallel num_threads(want)
        {
            const std::int64_t t = omp_get_thread_num(), team = omp_get_num_threads();
            const index_t b = static_cast<index_t>(n * t / team), e = static_cast<index_t>(n * (t + 1) / team);
            if (b < e) f(b, e, static_cast<int>(t));
        }
        return;
    }
#endif
    f(index_t{0}, n, 0);
}

}  // namespace ordo::eigen
