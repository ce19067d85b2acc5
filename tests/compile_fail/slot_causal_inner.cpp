// must not compile: region_parallel needs a step-causal inner policy (ZipAR is slot-causal)
#include <ordo/ordo.hpp>
int main() { return ordo::region_parallel<ordo::next_set_wavefront>{2, 2}.num_regions(); }
