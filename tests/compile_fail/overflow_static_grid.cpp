// must not compile: the static grid's size overflows the index type
#include <ordo/ordo.hpp>
int main() { return ordo::grid<65536, 65536>::size; }
