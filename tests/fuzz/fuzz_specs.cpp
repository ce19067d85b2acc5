// libFuzzer harness for the spec parsers and the plans they lead to: any input either yields a
// valid plan or throws ordo::error; no crash, no hang, no unbounded allocation.
// Build: clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/fuzz_specs.cpp -o fuzz_specs
// Run:   ./fuzz_specs -max_total_time=600 -max_len=64
#include <cstdint>
#include <string_view>

#include <ordo/ordo.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const auto bar = in.find('|');  // "POLICY|GRID"
    const std::string_view pol = in.substr(0, bar), grid = bar == std::string_view::npos ? std::string_view("8x8") : in.substr(bar + 1);
    try {
        const ordo::any_policy p = ordo::parse_policy(pol);
        const ordo::grid_shape g = ordo::parse_grid(grid);
        if (g.size() > 4096) return 0;  // keep each run fast; big grids are covered by the tests
        const ordo::plan pl = ordo::make_plan(p, g);
        if (pl.num_steps() != ordo::num_steps(p, g)) __builtin_trap();
        (void)ordo::plan_to_text(pl, ordo::spec_of(p));
    } catch (const ordo::error&) {
    }
    return 0;
}
