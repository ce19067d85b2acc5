#include <ordo/ordo.hpp>
static_assert(ordo::num_steps(ordo::par4, ordo::grid<24, 24>{}) == 147);
int main() { return ordo::make_plan(ordo::nar, ordo::grid_shape::make(8, 8)).num_steps() == 15 ? 0 : 1; }
