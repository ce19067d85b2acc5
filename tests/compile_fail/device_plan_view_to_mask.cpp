// must not compile: a device plan's view (device memory) handed to a host mask algorithm
#include <ordo/ordo.hpp>
int main() {
    const ordo::device_plan_view on_device{};  // what ordo::cuda::device_plan::view() returns
    return ordo::visible(on_device, 0, 0) ? 1 : 0;
}
