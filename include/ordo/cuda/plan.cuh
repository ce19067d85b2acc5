// ordo/cuda/plan.cuh - a plan on the device: uploaded once (host, at plan time), read by every
// kernel of every step (FlashInfer's plan/run split). device_plan owns one device allocation with
// the plan's arrays, the rotary coordinates of every slot and the kv-block summary of the
// structured mask; plan_ref is the trivially copyable handle a kernel takes by value.
#pragma once

#include <cstddef>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "../mask.hpp"
#include "../plan.hpp"
#include "runtime.cuh"

namespace ordo::cuda {

// Slots per kv block of the structured fast path: one warp's worth.
inline constexpr index_t kv_block = 32;

// What a kernel reads of a plan (device pointers).
struct plan_ref {
    const index_t* fed_step = nullptr;      // [num_slots]
    const rope_coord* rope = nullptr;       // [num_slots]: rope_of(plan, slot)
    const kv_block_steps* kv_blocks = nullptr;  // [num_kv_blocks(num_slots, kv_block)]
    index_t num_slots = 0;
    index_t prefix = 1;
    mask_mode mask = mask_mode::step_causal;

    template <mask_mode Mode>
    ORDO_HD constexpr mask_predicate<Mode> predicate() const { return {fed_step, num_slots, prefix}; }
};

class device_plan {
public:
    device_plan() = default;
    explicit device_plan(const plan_view& p, cudaStream_t stream = nullptr) : header_(p.header) {
        // one staging image of every array, each at an offset aligned for its type
        std::vector<std::byte> image;
        auto put = [&](auto span) -> std::size_t {
            using T = typename decltype(span)::element_type;
            static_assert(std::is_trivially_copyable_v<T>);
            const std::size_t at = (image.size() + 15) / 16 * 16;
            image.resize(at + span.size_bytes());
            if (!span.empty()) std::memcpy(image.data() + at, span.data(), span.size_bytes());
            return at;
        };
        std::vector<rope_coord> rope(static_cast<std::size_t>(p.num_slots()));
        for (index_t s = 0; s < p.num_slots(); ++s) rope[static_cast<std::size_t>(s)] = rope_of(p, s);
        std::vector<kv_block_steps> blocks(static_cast<std::size_t>(num_kv_blocks(p.num_slots(), kv_block)));
        summarize_kv_blocks(p, kv_block, blocks);
        const std::size_t o_slots = put(p.slots), o_fed_step = put(p.fed_step), o_fed_offsets = put(p.fed_offsets), o_fed = put(p.fed),
                          o_emit_offsets = put(p.emit_offsets), o_order = put(p.order), o_contrib_offsets = put(p.contrib_offsets),
                          o_contribs = put(p.contribs), o_rank_of = put(p.rank_of), o_step_of = put(p.step_of), o_slot_of = put(p.slot_of),
                          o_stand_ins = put(p.stand_ins), o_rope = put(std::span<const rope_coord>(rope)),
                          o_blocks = put(std::span<const kv_block_steps>(blocks));
        memory_ = device_buffer<std::byte>(image.size());
        memory_.upload(image, stream);
        check(cudaStreamSynchronize(stream), "device_plan upload");  // the staging image dies here
        const std::byte* base = memory_.data();
        auto at = [&]<class T>(std::size_t off, std::span<const T> like) { return std::span<const T>(reinterpret_cast<const T*>(base + off), like.size()); };
        view_ = plan_view{p.header,
                          at(o_slots, p.slots),
                          at(o_fed_step, p.fed_step),
                          at(o_fed_offsets, p.fed_offsets),
                          at(o_fed, p.fed),
                          at(o_emit_offsets, p.emit_offsets),
                          at(o_order, p.order),
                          at(o_contrib_offsets, p.contrib_offsets),
                          at(o_contribs, p.contribs),
                          at(o_rank_of, p.rank_of),
                          at(o_step_of, p.step_of),
                          at(o_slot_of, p.slot_of),
                          at(o_stand_ins, p.stand_ins)};
        ref_ = plan_ref{view_.fed_step.data(), reinterpret_cast<const rope_coord*>(base + o_rope),
                        reinterpret_cast<const kv_block_steps*>(base + o_blocks), p.num_slots(), p.header.prefix, p.header.mask};
    }

    const plan_header& header() const { return header_; }
    // The plan with every span over device memory: for kernels (with --expt-relaxed-constexpr,
    // plan_view's constexpr members run on the device), never dereferenced on the host.
    const plan_view& view() const { return view_; }
    const plan_ref& ref() const { return ref_; }
    template <mask_mode Mode>
    mask_predicate<Mode> predicate() const {
        if (header_.mask != Mode) throw error("device_plan: the plan's mask mode differs from the requested one");
        return ref_.predicate<Mode>();
    }
    std::size_t bytes() const { return memory_.bytes(); }

private:
    plan_header header_{};
    device_buffer<std::byte> memory_;
    plan_view view_{};
    plan_ref ref_{};
};

}  // namespace ordo::cuda
