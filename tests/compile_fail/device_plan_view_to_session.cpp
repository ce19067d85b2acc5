// must not compile: a session (host decode loop) over a device plan's view
#include <ordo/engine/session.hpp>
#include <ordo/ordo.hpp>
int main() {
    const ordo::device_plan_view on_device{};  // what ordo::cuda::device_plan::view() returns
    const ordo::request r{};
    ordo::session s(on_device, std::span<const ordo::request>(&r, 1), ordo::make_sampler(ordo::greedy{}), 16);
    return s.done() ? 0 : 1;
}
