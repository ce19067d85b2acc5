// must not compile: static grid extents are checked at compile time
#include <ordo/ordo.hpp>
int main() { return ordo::grid<0, 16>::size; }
