// must not compile: a host model run on a device KV cache (it would write device memory from the
// host). The cache is shaped and tagged as ordo::cuda::device_kv_cache, with std::span rows, so
// only the memory-space tag tells it apart from a host cache.
#include <span>
#include <vector>

#include <ordo/engine/generate.hpp>
#include <ordo/ordo.hpp>

struct device_cache {
    using value_type = float;
    using memory_space = ordo::device_memory;
    ordo::index_t num_layers() const { return 1; }
    ordo::index_t num_sequences() const { return 1; }
    ordo::index_t capacity() const { return 64; }
    ordo::index_t width() const { return 2; }
    std::span<float> key(ordo::index_t, ordo::index_t, ordo::index_t) { return {}; }
    std::span<float> value(ordo::index_t, ordo::index_t, ordo::index_t) { return {}; }
};

struct host_model {
    ordo::index_t vocab_size() const { return 8; }
    ordo::index_t num_heads() const { return 1; }
    template <class C>
    void forward(const ordo::step_batch& b, C& cache, std::span<float> logits) {
        cache.key(0, 0, b.slots[0])[0] = logits[0];
    }
};

int main() {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy("raster"), ordo::grid_shape::make(4, 4));
    host_model model;
    device_cache cache;
    const std::vector<ordo::request> reqs(1);
    return static_cast<int>(ordo::generate(model, cache, p.view(), ordo::make_sampler(ordo::greedy{}), reqs).size());
}
