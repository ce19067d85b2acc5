// ordo/engine/kv_cache.hpp - slot-addressed KV storage a backend writes during a forward pass.
// A plan gives every row its slot once, so a cache is addressed by (layer, sequence, slot) and
// sized from the plan (kv_cache_len). Stale rows never need erasing: a query only sees slots fed
// at or before its own step, and a retried step writes its slots again before attending.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <new>
#include <span>
#include <vector>

#include "../config.hpp"
#include "../memory_space.hpp"

namespace ordo {

// A cache holds, per layer, sequence and slot, one key row and one value row of `width()` values
// (kv heads x head dim). Its extents, wherever the rows live (check_fit sizes a run with them):
template <class C>
concept kv_cache_extents = requires(const C& cc) {
    typename C::value_type;
    { cc.num_layers() } -> std::convertible_to<index_t>;
    { cc.num_sequences() } -> std::convertible_to<index_t>;
    { cc.capacity() } -> std::convertible_to<index_t>;  // slots per sequence
    { cc.width() } -> std::convertible_to<index_t>;
};

// A cache in host memory: its rows are spans the host reads and writes (what a host model takes).
// A device cache (memory_space = device_memory, ordo/cuda/kv_cache.cuh) is not one.
template <class C>
concept kv_cache = kv_cache_extents<C> && in_host_memory<C> && requires(C& c, index_t layer, index_t seq, index_t slot) {
    { c.key(layer, seq, slot) } -> std::same_as<std::span<typename C::value_type>>;
    { c.value(layer, seq, slot) } -> std::same_as<std::span<typename C::value_type>>;
};

namespace detail {
inline void check_cache_index(index_t layer, index_t seq, index_t slot, index_t layers, index_t seqs, index_t cap) {
    if (layer < 0 || layer >= layers) throw error("kv cache: layer " + itos(layer) + " out of " + itos(layers));
    if (seq < 0 || seq >= seqs) throw error("kv cache: sequence " + itos(seq) + " out of " + itos(seqs));
    if (slot < 0 || slot >= cap) throw error("kv cache: slot " + itos(slot) + " is past the cache's " + itos(cap) + " slots (cache full)");
}
}  // namespace detail

// One contiguous block: [layer][k|v][sequence][slot][width]. Owns its memory, or uses the caller's.
template <class T>
class contiguous_kv_cache {
public:
    using value_type = T;
    using memory_space = host_memory;
    // Elements of layers x 2 x seqs x slots x width; throws if that many T overflow a byte count.
    static std::size_t required_size(index_t layers, index_t seqs, index_t slots, index_t width) {
        if (layers < 1 || seqs < 1 || slots < 1 || width < 1) throw error("kv cache: every extent must be >= 1");
        const char* what = "kv cache size (layers x 2 x sequences x slots x width)";
        std::size_t n = detail::checked_size_mul(2u * static_cast<std::size_t>(layers), static_cast<std::size_t>(seqs), what);
        n = detail::checked_size_mul(n, static_cast<std::size_t>(slots), what);
        n = detail::checked_size_mul(n, static_cast<std::size_t>(width), what);
        detail::checked_size_mul(n, sizeof(T), what);
        return n;
    }
    contiguous_kv_cache(index_t layers, index_t seqs, index_t slots, index_t width)
        : owned_(allocate(required_size(layers, seqs, slots, width), layers, seqs, slots, width)), data_(owned_), layers_(layers), seqs_(seqs),
          slots_(slots), width_(width) {}
    contiguous_kv_cache(std::span<T> memory, index_t layers, index_t seqs, index_t slots, index_t width)
        : data_(memory), layers_(layers), seqs_(seqs), slots_(slots), width_(width) {
        if (memory.size() < required_size(layers, seqs, slots, width)) throw error("kv cache: the memory given is smaller than layers x 2 x sequences x slots x width");
    }

    index_t num_layers() const { return layers_; }
    index_t num_sequences() const { return seqs_; }
    index_t capacity() const { return slots_; }
    index_t width() const { return width_; }
    std::span<T> key(index_t layer, index_t seq, index_t slot) { return row(layer, 0, seq, slot); }
    std::span<T> value(index_t layer, index_t seq, index_t slot) { return row(layer, 1, seq, slot); }

private:
    static std::vector<T> allocate(std::size_t n, index_t layers, index_t seqs, index_t slots, index_t width) {
        try {
            return std::vector<T>(n);
        } catch (const std::bad_alloc&) {
            throw error("kv cache: cannot allocate " + detail::bytes_str(n * sizeof(T)) + " for " + detail::itos(layers) + " layers x 2 x " +
                        detail::itos(seqs) + " sequences x " + detail::itos(slots) + " slots x width " + detail::itos(width));
        }
    }
    std::span<T> row(index_t layer, int kv, index_t seq, index_t slot) {
        detail::check_cache_index(layer, seq, slot, layers_, seqs_, slots_);
        const std::size_t i = (((static_cast<std::size_t>(layer) * 2 + static_cast<std::size_t>(kv)) * static_cast<std::size_t>(seqs_) + static_cast<std::size_t>(seq)) *
                                   static_cast<std::size_t>(slots_) + static_cast<std::size_t>(slot)) * static_cast<std::size_t>(width_);
        return data_.subspan(i, static_cast<std::size_t>(width_));
    }
    std::vector<T> owned_;
    std::span<T> data_;
    index_t layers_, seqs_, slots_, width_;
};

// Paged storage with FlashInfer's page table: pages of `page_size` slots, each page
// [layer][k|v][page_size][width] in caller-owned memory; sequence s owns pages
// indices[indptr[s] .. indptr[s+1]) in slot order (CSR). The cache never allocates.
template <class T>
class paged_kv_cache {
public:
    using value_type = T;
    using memory_space = host_memory;
    paged_kv_cache(std::span<T> pages, index_t layers, index_t page_size, index_t width, std::span<const index_t> indptr,
                   std::span<const index_t> indices)
        : pages_(pages), indptr_(indptr), indices_(indices), layers_(layers), page_size_(page_size), width_(width) {
        if (layers < 1 || page_size < 1 || width < 1) throw error("paged kv cache: layers, page size and width must be >= 1");
        if (indptr.size() < 2) throw error("paged kv cache: the page table needs at least one sequence (indptr of size >= 2)");
        if (indptr.size() - 1 > static_cast<std::size_t>(max_index) || indices.size() > static_cast<std::size_t>(max_index))
            throw error("paged kv cache: the page table has more entries than the 32-bit index type holds");
        const std::size_t page_elems = page_elems_ = page_elements();
        // pages past the index type's range cannot be named by the table
        const index_t num_pages = static_cast<index_t>(std::min<std::size_t>(pages.size() / page_elems, static_cast<std::size_t>(max_index)));
        if (indptr[0] != 0) throw error("paged kv cache: indptr must start at 0");
        cap_ = max_index;
        for (std::size_t s = 0; s + 1 < indptr.size(); ++s) {
            if (indptr[s + 1] < indptr[s] || indptr[s + 1] > static_cast<index_t>(indices.size()))
                throw error("paged kv cache: indptr is not a valid CSR offset array at sequence " + detail::itos(static_cast<long long>(s)));
            // slots a sequence holds: pages x page size, capped at what a slot index can address
            cap_ = static_cast<index_t>(std::min<long long>(cap_, 1LL * (indptr[s + 1] - indptr[s]) * page_size));
        }
        for (index_t p : indices)
            if (p < 0 || p >= num_pages) throw error("paged kv cache: page index " + detail::itos(p) + " is outside the " + detail::itos(num_pages) + " pages given");
    }

    index_t num_layers() const { return layers_; }
    index_t num_sequences() const { return static_cast<index_t>(indptr_.size()) - 1; }
    index_t capacity() const { return cap_; }  // slots every sequence can hold
    index_t width() const { return width_; }
    index_t page_size() const { return page_size_; }
    std::span<T> key(index_t layer, index_t seq, index_t slot) { return row(layer, 0, seq, slot); }
    std::span<T> value(index_t layer, index_t seq, index_t slot) { return row(layer, 1, seq, slot); }

private:
    std::size_t page_elements() const {
        const char* what = "paged kv cache: page size (layers x 2 x page size x width)";
        const std::size_t n = detail::checked_size_mul(detail::checked_size_mul(2u * static_cast<std::size_t>(layers_), static_cast<std::size_t>(page_size_), what),
                                                       static_cast<std::size_t>(width_), what);
        detail::checked_size_mul(n, sizeof(T), what);
        return n;
    }
    std::span<T> row(index_t layer, int kv, index_t seq, index_t slot) {
        detail::check_cache_index(layer, seq, slot, layers_, num_sequences(), cap_);
        const index_t page = indices_[static_cast<std::size_t>(indptr_[static_cast<std::size_t>(seq)] + slot / page_size_)];
        const std::size_t i = static_cast<std::size_t>(page) * page_elems_ +
                              ((static_cast<std::size_t>(layer) * 2 + static_cast<std::size_t>(kv)) * static_cast<std::size_t>(page_size_) +
                               static_cast<std::size_t>(slot % page_size_)) * static_cast<std::size_t>(width_);
        return pages_.subspan(i, static_cast<std::size_t>(width_));
    }
    std::span<T> pages_;
    std::span<const index_t> indptr_, indices_;
    index_t layers_, page_size_, width_, cap_ = 0;
    std::size_t page_elems_ = 0;  // elements of one page
};

}  // namespace ordo
