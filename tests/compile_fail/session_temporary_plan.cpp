// must not compile: the session keeps a view of the plan, and this plan is destroyed at the end of
// the declaration (the session would read freed memory on its first next())
#include <ordo/engine/session.hpp>
#include <ordo/ordo.hpp>
int main() {
    const ordo::request req{};
    ordo::session s(ordo::make_plan(ordo::raster{}, ordo::grid_shape::make(4, 4)), std::span<const ordo::request>(&req, 1),
                    ordo::make_sampler(ordo::greedy{}), 16);
    return s.done() ? 0 : 1;
}
