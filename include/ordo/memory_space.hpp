// ordo/memory_space.hpp - where a plan view's arrays or a KV cache's rows live, as a type (in the
// spirit of CuTe's gmem_ptr): host code takes host things, kernels device things, and mixing the
// two is a compile error instead of a host read of device memory.
//
// A type says where it lives with a member `using memory_space = ordo::device_memory;`; types
// without one are host types (every host cache, model and user type keeps working unchanged).
// Standard library only: the tags are declared here for host code too, so that host APIs can
// refuse device types and tests can check it without nvcc.
#pragma once

#include <concepts>
#include <cstddef>
#include <type_traits>

namespace ordo {

// Host memory: what the host can read and write (the default).
struct host_memory {};
// Device (GPU) memory: pointers into it are for kernels and copies, never dereferenced on the host.
struct device_memory {};

namespace detail {
template <class T>
struct memory_space_of {
    using type = host_memory;
};
template <class T>
    requires requires { typename T::memory_space; }
struct memory_space_of<T> {
    using type = typename T::memory_space;
};
// a dependent false, for static_asserts that fire only when their template is instantiated
template <class...>
inline constexpr bool always_false = false;
}  // namespace detail

// The memory space of T: T::memory_space, host_memory when T names none.
template <class T>
using memory_space_t = typename detail::memory_space_of<std::remove_cvref_t<T>>::type;

template <class T>
concept in_host_memory = std::same_as<memory_space_t<T>, host_memory>;
template <class T>
concept in_device_memory = std::same_as<memory_space_t<T>, device_memory>;
template <class A, class B>
concept same_memory_space = std::same_as<memory_space_t<A>, memory_space_t<B>>;

// A contiguous range of device memory: its address and length, no element access (the host must
// not read it; hand data() to a kernel or a cudaMemcpy).
template <class T>
class device_span {
public:
    using element_type = T;
    using memory_space = device_memory;
    constexpr device_span() = default;
    constexpr device_span(T* data, std::size_t size) : data_(data), size_(size) {}
    constexpr T* data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr std::size_t size_bytes() const noexcept { return size_ * sizeof(T); }
    constexpr bool empty() const noexcept { return size_ == 0; }

private:
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace ordo
