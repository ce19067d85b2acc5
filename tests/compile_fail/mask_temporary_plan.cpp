// must not compile: the predicate points into the plan's fed_step array, and this plan is
// destroyed at the end of the declaration (m(3, 2) would read freed memory)
#include <ordo/ordo.hpp>
int main() {
    const auto m = ordo::make_mask<ordo::mask_mode::step_causal>(ordo::make_plan(ordo::raster{}, ordo::grid_shape::make(4, 4)));
    return m(3, 2) ? 0 : 1;
}
