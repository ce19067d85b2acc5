// Memory spaces as types: a plan view or KV cache in device memory is not a host one, so host
// models, sessions and masks cannot be handed device memory (the compile-fail tests check the
// messages; the CUDA tests check the real device types carry the tag). Device stand-ins here:
// host-compilable types tagged as the CUDA ones are.
#include <catch2/catch.hpp>

#include <span>
#include <type_traits>

#include <ordo/memory_space.hpp>

#include "mock_models.hpp"

namespace {

// Shaped as ordo::cuda::device_kv_cache: extents, device_span rows, tagged device memory.
struct device_tagged_cache {
    using value_type = float;
    using memory_space = ordo::device_memory;
    ordo::index_t num_layers() const { return 1; }
    ordo::index_t num_sequences() const { return 1; }
    ordo::index_t capacity() const { return 64; }
    ordo::index_t width() const { return 2; }
    ordo::device_span<float> key(ordo::index_t, ordo::index_t, ordo::index_t) { return {}; }
    ordo::device_span<float> value(ordo::index_t, ordo::index_t, ordo::index_t) { return {}; }
};

// The device cache before device_span: std::span rows, so only its tag says where they are.
struct device_tagged_span_cache : device_tagged_cache {
    std::span<float> key(ordo::index_t, ordo::index_t, ordo::index_t) { return {}; }
    std::span<float> value(ordo::index_t, ordo::index_t, ordo::index_t) { return {}; }
};

// Shaped as ordo::cuda::gpt_model: a device model that takes any device cache.
struct device_tagged_model {
    using memory_space = ordo::device_memory;
    ordo::index_t vocab_size() const { return 8; }
    ordo::index_t num_heads() const { return 1; }
    template <class C>
        requires ordo::in_device_memory<C>
    void forward(const ordo::step_batch&, C&, std::span<float>) {}
};

}  // namespace

TEST_CASE("memory spaces: types name where they live; untagged types are host types", "[memory-space]") {
    STATIC_REQUIRE(std::is_same_v<ordo::memory_space_t<ordo::contiguous_kv_cache<float>>, ordo::host_memory>);
    STATIC_REQUIRE(std::is_same_v<ordo::memory_space_t<ordo::paged_kv_cache<float>>, ordo::host_memory>);
    STATIC_REQUIRE(std::is_same_v<ordo::memory_space_t<mock::context_model>, ordo::host_memory>);
    STATIC_REQUIRE(std::is_same_v<ordo::memory_space_t<int>, ordo::host_memory>);
    STATIC_REQUIRE(std::is_same_v<ordo::memory_space_t<const device_tagged_cache&>, ordo::device_memory>);
    STATIC_REQUIRE(std::is_same_v<ordo::memory_space_t<ordo::plan_view>, ordo::host_memory>);
    STATIC_REQUIRE(std::is_same_v<ordo::memory_space_t<ordo::device_plan_view>, ordo::device_memory>);
}

TEST_CASE("memory spaces: a device cache is not a host kv_cache, and a host model is not a model for it", "[memory-space]") {
    STATIC_REQUIRE(ordo::kv_cache<ordo::contiguous_kv_cache<float>>);
    STATIC_REQUIRE(ordo::kv_cache<ordo::paged_kv_cache<float>>);
    STATIC_REQUIRE(ordo::kv_cache_extents<device_tagged_cache>);  // check_fit can size a run with it
    STATIC_REQUIRE_FALSE(ordo::kv_cache<device_tagged_cache>);
    STATIC_REQUIRE_FALSE(ordo::kv_cache<device_tagged_span_cache>);  // the tag alone decides
    STATIC_REQUIRE_FALSE(ordo::model_for<mock::context_model, device_tagged_span_cache>);
    STATIC_REQUIRE(ordo::model_for<mock::context_model, ordo::contiguous_kv_cache<float>>);
    STATIC_REQUIRE_FALSE(ordo::model_for<mock::context_model, device_tagged_cache>);  // would write device memory from the host
    STATIC_REQUIRE(ordo::model_for<device_tagged_model, device_tagged_cache>);
    STATIC_REQUIRE_FALSE(ordo::model_for<device_tagged_model, ordo::contiguous_kv_cache<float>>);
}

TEST_CASE("memory spaces: a device plan view is its own type, with the host view's fields", "[memory-space]") {
    STATIC_REQUIRE_FALSE(std::is_same_v<ordo::plan_view, ordo::device_plan_view>);
    // the same aggregate over other memory: kernels use its members as the host uses plan_view's
    const ordo::plan p = ordo::make_plan(ordo::parse_policy("par:2x2"), ordo::grid_shape::make(4, 4));
    const ordo::plan_view h = p.view();
    const ordo::device_plan_view d{h.header, h.slots,           h.fed_step, h.fed_offsets, h.fed,     h.emit_offsets, h.order,
                                   h.contrib_offsets, h.contribs, h.rank_of,  h.step_of,     h.slot_of, h.stand_ins};
    CHECK(d.num_steps() == h.num_steps());
    CHECK(d.max_rows_per_step() == h.max_rows_per_step());
    CHECK(d.step(2).emitted.data() == h.step(2).emitted.data());
}
