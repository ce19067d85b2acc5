// The CUDA test runner: exits 77 (ctest's skip code here) when no CUDA device is present, so the
// suite builds and "passes as skipped" on machines without a GPU; runs every test otherwise.
// Tests tagged [cuda-host] check host-side logic of the CUDA backend (keys, memory-space tags) and
// make no CUDA call: asked for by that tag alone, they run without a device too.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <string_view>

#include <ordo/cuda/runtime.cuh>

int main(int argc, char** argv) {
    const bool host_only = argc == 2 && std::string_view(argv[1]) == "[cuda-host]";
    if (!host_only && ordo::cuda::device_count() == 0) {
        std::puts("ordo_cuda_tests: no CUDA device present, skipping (exit 77)");
        return 77;
    }
    cudaDeviceProp prop{};
    if (!host_only && cudaGetDeviceProperties(&prop, 0) == cudaSuccess) std::printf("ordo_cuda_tests: %s, sm_%d%d\n", prop.name, prop.major, prop.minor);
    return Catch::Session().run(argc, argv);
}
