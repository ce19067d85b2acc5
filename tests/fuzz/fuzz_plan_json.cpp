// libFuzzer harness for the plan exchange format's reader: any input either yields a plan that
// writes and reads back as itself, or throws ordo::error; no crash, no hang, no unbounded allocation.
// Build: clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/fuzz_plan_json.cpp -o fuzz_plan_json
// Run:   ./fuzz_plan_json -max_total_time=600 -max_len=8192 tests/fuzz/corpus_plan_json
#include <cstdint>
#include <string>
#include <string_view>

#include <ordo/ordo.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    try {
        const ordo::plan_document d = ordo::plan_from_json(in, 1 << 20);
        const std::string again = ordo::plan_to_json(d.plan, d.policy);
        if (ordo::plan_to_json(ordo::plan_from_json(again).plan, d.policy) != again) __builtin_trap();
    } catch (const ordo::error&) {
    }
    return 0;
}
