// must not compile: a step count asked of a constant grid the regions don't divide
#include <ordo/ordo.hpp>
static_assert(ordo::num_steps(ordo::par4, ordo::grid<15, 16>{}) > 0);
int main() {}
