// must not compile: a static_plan owns its arrays too; a temporary one leaves the predicate dangling
#include <ordo/ordo.hpp>
int main() {
    const auto m = ordo::make_mask<ordo::mask_mode::step_causal>(ordo::make_static_plan<ordo::raster{}, ordo::grid<4, 4>{}>());
    return m(3, 2) ? 0 : 1;
}
