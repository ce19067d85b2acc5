// must not compile: int is not a decode_policy
#include <ordo/ordo.hpp>
int main() { return ordo::make_plan(42, ordo::grid<4, 4>{}).num_steps(); }
