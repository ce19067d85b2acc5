// ordo/cuda/plan.cuh - a plan on the device: uploaded once (host, at plan time), read by every
// kernel of every step (FlashInfer's plan/run split). device_plan owns one device allocation with
// the plan's arrays, the rotary coordinates of every slot and the kv-block summary of the
// structured mask; plan_ref is the trivially copyable handle a kernel takes by value. It keeps the
// host image it uploaded and the plan's digest, so a user can tell whether it holds a given plan.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <utility>
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
                          o_stand_ins = put(p.stand_ins), o_queries = put(p.queries), o_rope = put(std::span<const rope_coord>(rope)),
                          o_blocks = put(std::span<const kv_block_steps>(blocks));
        memory_ = device_buffer<std::byte>(image.size());
        memory_.upload(image, stream);
        check(cudaStreamSynchronize(stream), "device_plan upload");  // the staging image is kept as the host copy
        image_ = std::move(image);
        // the same arrays at the same offsets, over the device allocation and over the host image
        auto views = [&]<class Space>(const std::byte* base, Space) {
            auto at = [&]<class T>(std::size_t off, std::span<const T> like) { return std::span<const T>(reinterpret_cast<const T*>(base + off), like.size()); };
            return basic_plan_view<Space>{p.header,
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
                                          at(o_stand_ins, p.stand_ins),
                                          at(o_queries, p.queries)};
        };
        view_ = views(memory_.data(), device_memory{});
        source_ = views(image_.data(), host_memory{});
        digest_ = ordo::digest(source_);
        const std::byte* base = memory_.data();
        ref_ = plan_ref{view_.fed_step.data(), reinterpret_cast<const rope_coord*>(base + o_rope),
                        reinterpret_cast<const kv_block_steps*>(base + o_blocks), p.num_slots(), p.header.prefix, p.header.mask};
    }
    // (the views point into memory_ and image_, whose buffers do not move with the object)
    device_plan(device_plan&&) = default;
    device_plan& operator=(device_plan&&) = default;
    device_plan(const device_plan&) = delete;
    device_plan& operator=(const device_plan&) = delete;

    const plan_header& header() const { return header_; }
    // The plan with every span over device memory: for kernels (with --expt-relaxed-constexpr,
    // the view's constexpr members run on the device). A device_plan_view: host algorithms do not
    // take it (they take source()).
    const device_plan_view& view() const { return view_; }
    const plan_ref& ref() const { return ref_; }
    // The host copy of the plan this was made from, and its digest.
    const plan_view& source() const { return source_; }
    std::uint64_t digest() const { return digest_; }
    // Whether this holds plan p: its content equal to source(), field by field (and so its digest
    // equal to digest()). Content, not addresses: a plan rebuilt where a freed one was is compared
    // like any other; content, not the 64-bit digest alone: no hash collision can pass. Host work
    // at memory speed, no allocation.
    bool holds(const plan_view& p) const { return same_plan(p, source_); }
    template <mask_mode Mode>
    mask_predicate<Mode> predicate() const {
        if (header_.mask != Mode) throw error("device_plan: the plan's mask mode differs from the requested one");
        return ref_.predicate<Mode>();
    }
    std::size_t bytes() const { return memory_.bytes(); }

private:
    plan_header header_{};
    device_buffer<std::byte> memory_;
    std::vector<std::byte> image_;  // the host copy: what memory_ holds
    device_plan_view view_{};
    plan_view source_{};
    std::uint64_t digest_ = 0;
    plan_ref ref_{};
};

}  // namespace ordo::cuda
