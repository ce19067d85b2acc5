// libFuzzer harness for the token-file reader of `ordo decode` (cli/token_file.hpp): any input
// either yields a batch whose ids fill batch x rows x cols exactly, or throws ordo::error; no
// crash, no hang, no unbounded allocation.
// Build: clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude -Icli tests/fuzz/fuzz_token_file.cpp -o fuzz_token_file
// Run:   ./fuzz_token_file -max_total_time=600 -max_len=8192 CORPUS_DIR tests/fuzz/corpus_token_file
#include <cstdint>
#include <string_view>

#include "token_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    try {
        const cli::token_batch b = cli::parse_token_file(in, "fuzz");
        if (b.batch < 1 || b.rows < 1 || b.cols < 1) __builtin_trap();
        if (b.ids.size() != static_cast<std::size_t>(b.batch) * static_cast<std::size_t>(b.rows) * static_cast<std::size_t>(b.cols)) __builtin_trap();
    } catch (const ordo::error&) {
    }
    return 0;
}
