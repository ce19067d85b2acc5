// ordo/config.hpp - index type, host/device annotation and the one error type.
#pragma once

#include <charconv>
#include <cstdint>
#include <stdexcept>
#include <string>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define ORDO_HD __host__ __device__
#else
#define ORDO_HD
#endif

namespace ordo {

// Positions, slots, steps and rows all fit a signed 32-bit index: kernels want 32-bit
// arithmetic, and every builder checks that its products fit (no silent wrap).
using index_t = std::int32_t;
inline constexpr index_t max_index = INT32_MAX;

// Every bad input (a grid regions don't divide, an overflowing extent, a malformed spec,
// a policy that breaks the plan rules) throws ordo::error with a message naming the problem.
// Thrown during constant evaluation it becomes a compile error, which is what a static grid wants.
class error : public std::invalid_argument {
public:
    explicit error(const std::string& what) : std::invalid_argument("ordo: " + what) {}
};

namespace detail {
// constexpr-friendly integer to string (std::to_string is not constexpr in C++20).
constexpr std::string itos(long long v) {
    if (v == 0) return "0";
    bool neg = v < 0;
    unsigned long long u = neg ? 0ull - static_cast<unsigned long long>(v) : static_cast<unsigned long long>(v);
    std::string s;
    while (u) { s.insert(s.begin(), static_cast<char>('0' + u % 10)); u /= 10; }
    if (neg) s.insert(s.begin(), '-');
    return s;
}

// A double for a message, as printf's %g would write it but in every locale ('.' decimal point).
inline std::string ftos(double v) {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 6);
    return std::string(buf, r.ptr);
}

// a*b, throwing if it leaves index_t.
constexpr index_t checked_mul(long long a, long long b, const char* what) {
    long long r = a * b;  // operands are index_t-sized, so the product fits long long
    if (r > max_index || r < 0) throw error(std::string(what) + " overflows the 32-bit index type");
    return static_cast<index_t>(r);
}
constexpr index_t checked_add(long long a, long long b, const char* what) {
    long long r = a + b;
    if (r > max_index || r < 0) throw error(std::string(what) + " overflows the 32-bit index type");
    return static_cast<index_t>(r);
}
}  // namespace detail
}  // namespace ordo
