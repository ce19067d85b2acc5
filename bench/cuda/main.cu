// The CUDA benchmarks' main: without a CUDA device there is nothing to measure (exit 77).
#include <benchmark/benchmark.h>

#include <cstdio>

#include <ordo/cuda/runtime.cuh>

int main(int argc, char** argv) {
    if (ordo::cuda::device_count() == 0) {
        std::puts("bench_cuda: no CUDA device present, nothing to measure (exit 77)");
        return 77;
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
