// ordo/cuda/runtime.cuh - the CUDA backend's vocabulary: errors that name the call, device
// presence, and an owning device buffer. Every CUDA failure becomes an ordo::error
// ("ordo: cuda: <what>: <name> (<description>)"), never a silent bad result.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <span>
#include <string>
#include <utility>

#include "../config.hpp"

namespace ordo::cuda {

inline void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess)
        throw error(std::string("cuda: ") + what + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

// A kernel launch: the launch error now, an execution error at the next synchronising call.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

// Devices this process can use (0 without a driver or a GPU; never throws).
inline int device_count() noexcept {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();  // clear the sticky "no device" error
        return 0;
    }
    return n;
}

// Device memory of n elements of T, owned; moves, never copies. Contents start undefined.
template <class T>
class device_buffer {
public:
    device_buffer() = default;
    explicit device_buffer(std::size_t n) : n_(n) {
        if (n == 0) return;
        void* p = nullptr;
        check(cudaMalloc(&p, n * sizeof(T)), ("cudaMalloc of " + std::to_string(n * sizeof(T)) + " bytes").c_str());
        p_ = static_cast<T*>(p);
    }
    explicit device_buffer(std::span<const T> host, cudaStream_t stream = nullptr) : device_buffer(host.size()) { upload(host, stream); }
    device_buffer(const device_buffer&) = delete;
    device_buffer& operator=(const device_buffer&) = delete;
    device_buffer(device_buffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    device_buffer& operator=(device_buffer&& o) noexcept {
        if (this != &o) {
            release();
            p_ = std::exchange(o.p_, nullptr);
            n_ = std::exchange(o.n_, 0);
        }
        return *this;
    }
    ~device_buffer() { release(); }

    T* data() const noexcept { return p_; }
    std::size_t size() const noexcept { return n_; }
    std::size_t bytes() const noexcept { return n_ * sizeof(T); }
    // A view of device memory: pass it to kernels and ordo::cuda functions, never dereference on the host.
    std::span<T> span() const noexcept { return {p_, n_}; }

    // Host -> device into [offset, offset + host.size()); asynchronous on `stream` when host is pinned.
    void upload(std::span<const T> host, cudaStream_t stream = nullptr, std::size_t offset = 0) {
        if (offset + host.size() > n_)
            throw error("device_buffer: upload of " + std::to_string(host.size()) + " elements at " + std::to_string(offset) + " overflows its " +
                        std::to_string(n_));
        if (!host.empty()) check(cudaMemcpyAsync(p_ + offset, host.data(), host.size_bytes(), cudaMemcpyHostToDevice, stream), "upload (cudaMemcpyAsync)");
    }
    // Device -> host of the first host.size() elements; synchronises `stream`.
    void download(std::span<T> host, cudaStream_t stream = nullptr) const {
        if (host.size() > n_) throw error("device_buffer: download of " + std::to_string(host.size()) + " elements from a buffer of " + std::to_string(n_));
        if (host.empty()) return;
        check(cudaMemcpyAsync(host.data(), p_, host.size_bytes(), cudaMemcpyDeviceToHost, stream), "download (cudaMemcpyAsync)");
        check(cudaStreamSynchronize(stream), "download (cudaStreamSynchronize)");
    }

private:
    void release() noexcept {
        if (p_) cudaFree(p_);
        p_ = nullptr;
        n_ = 0;
    }
    T* p_ = nullptr;
    std::size_t n_ = 0;
};

// Pinned (page-locked) host memory: what asynchronous copies to and from the device need.
template <class T>
class pinned_buffer {
public:
    pinned_buffer() = default;
    explicit pinned_buffer(std::size_t n) : n_(n) {
        if (n) check(cudaMallocHost(reinterpret_cast<void**>(&p_), n * sizeof(T)), "cudaMallocHost");
    }
    pinned_buffer(const pinned_buffer&) = delete;
    pinned_buffer& operator=(const pinned_buffer&) = delete;
    pinned_buffer(pinned_buffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    pinned_buffer& operator=(pinned_buffer&& o) noexcept {
        if (this != &o) {
            if (p_) cudaFreeHost(p_);
            p_ = std::exchange(o.p_, nullptr);
            n_ = std::exchange(o.n_, 0);
        }
        return *this;
    }
    ~pinned_buffer() {
        if (p_) cudaFreeHost(p_);
    }
    T* data() const { return p_; }
    std::size_t size() const { return n_; }

private:
    T* p_ = nullptr;
    std::size_t n_ = 0;
};

inline constexpr int warp_size = 32;

}  // namespace ordo::cuda
