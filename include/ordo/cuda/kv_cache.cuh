// ordo/cuda/kv_cache.cuh - KV caches in device memory, slot-addressed like the host caches
// (engine/kv_cache.hpp): a contiguous one and a paged one with FlashInfer's page table. Both are
// tagged memory_space = device_memory: they have the extents check_fit/generate size a run with
// (kv_cache_extents), but they are not host kv_caches, so a host model given one does not compile.
// key()/value() are device_spans (an address for kernels and copies, no host element access).
// Kernels address rows through kv_layout, a trivially copyable description of either form.
#pragma once

#include <algorithm>
#include <span>
#include <vector>

#include "../engine/kv_cache.hpp"
#include "../memory_space.hpp"
#include "runtime.cuh"

namespace ordo::cuda {

// Where row (layer, k|v, sequence, slot) lives. Contiguous: [layer][k|v][sequence][slot][width];
// paged: pages of [layer][k|v][page_size][width], sequence s owning pages indices[indptr[s]..).
template <class T>
struct kv_layout {
    T* base = nullptr;
    index_t layers = 0, width = 0;
    index_t sequences = 0, slots = 0;  // contiguous
    index_t page_size = 0;             // paged when > 0
    const index_t* indptr = nullptr;   // paged: device page table
    const index_t* indices = nullptr;

    ORDO_HD T* row(index_t layer, int kv, index_t seq, index_t slot) const {
        if (page_size == 0)
            return base + ((((static_cast<std::size_t>(layer) * 2 + static_cast<std::size_t>(kv)) * static_cast<std::size_t>(sequences) +
                             static_cast<std::size_t>(seq)) * static_cast<std::size_t>(slots) + static_cast<std::size_t>(slot)) *
                           static_cast<std::size_t>(width));
        const index_t page = indices[indptr[seq] + slot / page_size];
        const std::size_t page_elems = static_cast<std::size_t>(layers) * 2 * static_cast<std::size_t>(page_size) * static_cast<std::size_t>(width);
        return base + static_cast<std::size_t>(page) * page_elems +
               ((static_cast<std::size_t>(layer) * 2 + static_cast<std::size_t>(kv)) * static_cast<std::size_t>(page_size) +
                static_cast<std::size_t>(slot % page_size)) * static_cast<std::size_t>(width);
    }
};

// Everything a kernel captured into a CUDA graph bakes in of a cache: the element type and every
// field of its kv_layout (base, extents, page size, page-table addresses). A graph captured on a
// cache replays only on a cache with an equal key; a new cache at a reused address but with other
// extents has another key. (The page table's entries are read at replay, not baked in.)
struct kv_layout_key {
    const void* value_type = nullptr;  // one address per element type
    const void* base = nullptr;
    index_t layers = 0, width = 0, sequences = 0, slots = 0, page_size = 0;
    const void* indptr = nullptr;
    const void* indices = nullptr;
    friend bool operator==(const kv_layout_key&, const kv_layout_key&) = default;
};

namespace detail {
template <class T>
inline constexpr char value_type_tag = 0;
}  // namespace detail

template <class T>
kv_layout_key key_of(const kv_layout<T>& l) {
    // (the binding names every field: one added to kv_layout but not here is a compile error)
    const auto& [base, layers, width, sequences, slots, page_size, indptr, indices] = l;
    return {&detail::value_type_tag<T>, base, layers, width, sequences, slots, page_size, indptr, indices};
}

// One device block of layers x 2 x sequences x slots x width elements: owned, or the caller's.
template <class T>
class device_kv_cache {
public:
    using value_type = T;
    using memory_space = device_memory;
    device_kv_cache(index_t layers, index_t seqs, index_t slots, index_t width)
        : owned_(contiguous_kv_cache<T>::required_size(layers, seqs, slots, width)), layers_(layers), seqs_(seqs), slots_(slots), width_(width) {
        base_ = owned_.data();
    }
    // Caller-owned device memory (at least required_size elements).
    device_kv_cache(std::span<T> memory, index_t layers, index_t seqs, index_t slots, index_t width)
        : base_(memory.data()), layers_(layers), seqs_(seqs), slots_(slots), width_(width) {
        if (memory.size() < contiguous_kv_cache<T>::required_size(layers, seqs, slots, width))
            throw error("device kv cache: the memory given is smaller than layers x 2 x sequences x slots x width");
    }

    index_t num_layers() const { return layers_; }
    index_t num_sequences() const { return seqs_; }
    index_t capacity() const { return slots_; }
    index_t width() const { return width_; }
    std::size_t bytes() const { return contiguous_kv_cache<T>::required_size(layers_, seqs_, slots_, width_) * sizeof(T); }
    device_span<T> key(index_t layer, index_t seq, index_t slot) { return row(layer, 0, seq, slot); }
    device_span<T> value(index_t layer, index_t seq, index_t slot) { return row(layer, 1, seq, slot); }
    kv_layout<T> layout() const { return {base_, layers_, width_, seqs_, slots_, 0, nullptr, nullptr}; }

private:
    device_span<T> row(index_t layer, int kv, index_t seq, index_t slot) {
        ordo::detail::check_cache_index(layer, seq, slot, layers_, seqs_, slots_);
        return {layout().row(layer, kv, seq, slot), static_cast<std::size_t>(width_)};
    }
    device_buffer<T> owned_;
    T* base_ = nullptr;
    index_t layers_, seqs_, slots_, width_;
};

// Pages in caller-owned device memory; the page table (CSR indptr/indices) is given on the host,
// checked there exactly as the host paged cache checks it, and uploaded once.
template <class T>
class device_paged_kv_cache {
public:
    using value_type = T;
    using memory_space = device_memory;
    device_paged_kv_cache(std::span<T> device_pages, index_t layers, index_t page_size, index_t width, std::span<const index_t> indptr,
                          std::span<const index_t> indices)
        : pages_(device_pages), indptr_(indptr.begin(), indptr.end()), indices_(indices.begin(), indices.end()),
          host_check_(std::span<T>(static_cast<T*>(nullptr), device_pages.size()), layers, page_size, width, indptr_, indices_),
          d_indptr_(std::span<const index_t>(indptr_)), d_indices_(std::span<const index_t>(indices_)), layers_(layers), page_size_(page_size),
          width_(width) {
        check(cudaStreamSynchronize(nullptr), "device paged kv cache: page table upload");
    }

    index_t num_layers() const { return layers_; }
    index_t num_sequences() const { return host_check_.num_sequences(); }
    index_t capacity() const { return host_check_.capacity(); }
    index_t width() const { return width_; }
    index_t page_size() const { return page_size_; }
    device_span<T> key(index_t layer, index_t seq, index_t slot) { return row(layer, 0, seq, slot); }
    device_span<T> value(index_t layer, index_t seq, index_t slot) { return row(layer, 1, seq, slot); }
    kv_layout<T> layout() const { return {pages_.data(), layers_, width_, 0, 0, page_size_, d_indptr_.data(), d_indices_.data()}; }

private:
    device_span<T> row(index_t layer, int kv, index_t seq, index_t slot) {
        ordo::detail::check_cache_index(layer, seq, slot, layers_, num_sequences(), capacity());
        // the layout over the host copy of the table addresses the row; the pointer is into device memory
        const kv_layout<T> host_table{pages_.data(), layers_, width_, 0, 0, page_size_, indptr_.data(), indices_.data()};
        return {host_table.row(layer, kv, seq, slot), static_cast<std::size_t>(width_)};
    }
    std::span<T> pages_;
    std::vector<index_t> indptr_, indices_;
    paged_kv_cache<T> host_check_;  // validates the table; never touches the pages
    device_buffer<index_t> d_indptr_, d_indices_;
    index_t layers_, page_size_, width_;
};

}  // namespace ordo::cuda
