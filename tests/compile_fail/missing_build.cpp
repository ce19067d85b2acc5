// must not compile: a type with a mask but no build() is not a decode_policy
#include <ordo/ordo.hpp>
struct no_build {
    static constexpr ordo::mask_mode mask = ordo::mask_mode::step_causal;
    std::string spec() const { return "x"; }
};
int main() { return ordo::num_steps(no_build{}, ordo::grid<4, 4>{}); }
