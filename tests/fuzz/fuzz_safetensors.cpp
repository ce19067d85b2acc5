// libFuzzer harness for the safetensors reader: any bytes either open as a file whose every tensor
// reads into a buffer of numel() values, or throw ordo::error; no crash, no out-of-bounds read, no
// hang and no allocation of what a header merely claims (a shape may say 2^60 elements).
// Build: clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/fuzz_safetensors.cpp -o fuzz_safetensors
// Run:   ./fuzz_safetensors -max_total_time=600 -rss_limit_mb=1024 -timeout=5 CORPUS_DIR tests/fuzz/corpus_safetensors
#include <cstdint>
#include <span>
#include <vector>

#include <ordo/io/safetensors.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace io = ordo::io;
    try {
        const auto st = io::safetensors::from_memory(std::as_bytes(std::span(data, size)));
        for (const io::tensor_info& t : st.tensors()) {
            if (st.find(t.name) != &t) __builtin_trap();  // names are unique, so find() gives this one
            // validated: the tensor's bytes lie inside the input, so numel() is bounded by its size
            const auto n = static_cast<std::size_t>(t.numel());
            if (n * io::dtype_size(t.type) > size) __builtin_trap();
            switch (t.type) {
                case io::dtype::f32: case io::dtype::f16: case io::dtype::bf16: case io::dtype::f64: {
                    std::vector<float> out(n);
                    st.read(t, out);
                    break;
                }
                default: {
                    std::vector<std::int64_t> out(n);
                    st.read(t, out);
                }
            }
        }
    } catch (const ordo::error&) {
    }
    return 0;
}
