// Host-side logic of the CUDA backend, no device needed ([cuda-host]): the key a captured step
// graph is replayed under covers the whole cache layout and the plan's content, and the device
// types carry the device memory-space tag, so host models and algorithms refuse them.
#include <catch2/catch.hpp>

#include <cuda_bf16.h>

#include <span>
#include <type_traits>
#include <vector>

#include <ordo/cuda/gpt.cuh>
#include <ordo/ordo.hpp>

#include "../mock_models.hpp"

namespace oc = ordo::cuda;
using ordo::index_t;

// The device types are device types: a host model or algorithm given one does not compile.
static_assert(ordo::in_device_memory<oc::device_kv_cache<float>> && ordo::in_device_memory<oc::device_paged_kv_cache<__nv_bfloat16>>);
static_assert(ordo::kv_cache_extents<oc::device_kv_cache<float>> && ordo::kv_cache_extents<oc::device_paged_kv_cache<float>>);
static_assert(!ordo::kv_cache<oc::device_kv_cache<float>> && !ordo::kv_cache<oc::device_paged_kv_cache<float>>);
static_assert(!ordo::model_for<mock::context_model, oc::device_kv_cache<float>>);
static_assert(ordo::model_for<oc::gpt_model<float>, oc::device_kv_cache<float>>);
static_assert(ordo::model_for<oc::gpt_model<__nv_bfloat16>, oc::device_paged_kv_cache<__nv_bfloat16>>);
static_assert(!ordo::model_for<oc::gpt_model<float>, ordo::contiguous_kv_cache<float>>);
static_assert(std::is_same_v<decltype(std::declval<const oc::device_plan&>().view()), const ordo::device_plan_view&>);
static_assert(std::is_same_v<decltype(std::declval<const oc::device_plan&>().source()), const ordo::plan_view&>);
static_assert(std::is_same_v<decltype(std::declval<oc::device_kv_cache<float>&>().key(0, 0, 0)), ordo::device_span<float>>);

TEST_CASE("cuda keys: a cache at a reused address but with other geometry has another layout key", "[cuda-host]") {
    // stands in for device memory: device_kv_cache over caller memory makes no CUDA call, and the
    // key reads only the layout
    std::vector<float> memory(1 << 20);
    const std::span<float> at(memory);
    auto key = [&](index_t layers, index_t seqs, index_t slots, index_t width) {
        return oc::key_of(oc::device_kv_cache<float>(at, layers, seqs, slots, width).layout());
    };
    const oc::kv_layout_key a = key(2, 2, 40, 32);
    CHECK(a == key(2, 2, 40, 32));  // the same cache again: the same key
    CHECK(a != key(2, 2, 48, 32));  // slots
    CHECK(a != key(2, 1, 40, 32));  // sequences
    CHECK(a != key(3, 2, 40, 32));  // layers
    CHECK(a != key(2, 2, 40, 16));  // width
    CHECK(a != oc::key_of(oc::device_kv_cache<float>(at.subspan(64), 2, 2, 40, 32).layout()));  // base
    // the element type (kernels are instantiated per type)
    std::vector<__nv_bfloat16> half_memory(1 << 20);
    const oc::kv_layout_key b = oc::key_of(oc::device_kv_cache<__nv_bfloat16>(std::span<__nv_bfloat16>(half_memory), 2, 2, 40, 32).layout());
    oc::kv_layout_key b_as_float = b;
    b_as_float.value_type = a.value_type;
    CHECK(b != b_as_float);

    // paged layouts: page size and both page-table addresses
    const index_t indptr[3] = {0, 5, 10}, indices[10] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}, other_indptr[3] = {0, 5, 10};
    const oc::kv_layout<float> paged{memory.data(), 2, 32, 0, 0, 8, indptr, indices};
    oc::kv_layout<float> p2 = paged;
    CHECK(oc::key_of(paged) == oc::key_of(p2));
    p2.page_size = 16;
    CHECK(oc::key_of(paged) != oc::key_of(p2));
    p2 = paged;
    p2.indptr = other_indptr;
    CHECK(oc::key_of(paged) != oc::key_of(p2));
    p2 = paged;
    p2.indices = indices + 1;
    CHECK(oc::key_of(paged) != oc::key_of(p2));
    CHECK(oc::key_of(paged) != a);  // a paged and a contiguous cache at one address
}

TEST_CASE("cuda keys: a step graph's key covers the plan's content and the whole cache layout", "[cuda-host]") {
    const ordo::plan p = ordo::make_plan(ordo::parse_policy("par:2x2"), ordo::grid_shape::make(8, 8));
    const ordo::plan q = ordo::make_plan(ordo::parse_policy("par:2x2+nar"), ordo::grid_shape::make(8, 8));
    ordo::step_batch b;
    b.plan = p.view();
    b.step = 3;
    b.num_sequences = 2;
    b.num_rows = 4;
    b.num_heads = 1;
    std::vector<float> memory(1 << 20);
    const oc::device_kv_cache<float> a(std::span<float>(memory), 2, 2, ordo::kv_cache_len(p), 32);
    const oc::device_kv_cache<float> longer(std::span<float>(memory), 2, 2, ordo::kv_cache_len(p) + 8, 32);  // same address and kv range
    const index_t kv_end = p.num_slots();
    const oc::step_graph_key k = oc::make_step_graph_key(1, ordo::digest(p), b, oc::key_of(a.layout()), kv_end);
    CHECK(k == oc::make_step_graph_key(1, ordo::digest(p), b, oc::key_of(a.layout()), kv_end));
    CHECK(k != oc::make_step_graph_key(1, ordo::digest(p), b, oc::key_of(longer.layout()), kv_end));
    CHECK(k != oc::make_step_graph_key(1, ordo::digest(q), b, oc::key_of(a.layout()), kv_end));
    CHECK(k != oc::make_step_graph_key(2, ordo::digest(p), b, oc::key_of(a.layout()), kv_end));
    CHECK(k != oc::make_step_graph_key(1, ordo::digest(p), b, oc::key_of(a.layout()), kv_end - 1));
    ordo::step_batch other = b;
    other.step = 4;
    CHECK(k != oc::make_step_graph_key(1, ordo::digest(p), other, oc::key_of(a.layout()), kv_end));
    other = b;
    other.num_sequences = 1;
    CHECK(k != oc::make_step_graph_key(1, ordo::digest(p), other, oc::key_of(a.layout()), kv_end));
    other = b;
    other.num_rows = 3;
    CHECK(k != oc::make_step_graph_key(1, ordo::digest(p), other, oc::key_of(a.layout()), kv_end));
    other = b;
    other.num_heads = 2;
    CHECK(k != oc::make_step_graph_key(1, ordo::digest(p), other, oc::key_of(a.layout()), kv_end));
    other = b;
    other.written_through = 2;  // baked into the attention launch (unwritten slots read as zeros)
    CHECK(k != oc::make_step_graph_key(1, ordo::digest(p), other, oc::key_of(a.layout()), kv_end));
}
