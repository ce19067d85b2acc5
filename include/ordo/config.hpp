// ordo/config.hpp - index type, host/device annotation and the one error type.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

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

// Size caps (docs/concepts.md, "Limits"). A plan costs about 70 bytes per position (more with
// several heads), so the largest grid's plan stays near 300 MB; every size derived from these
// (slots, kv lengths, block ends) then fits index_t with room to spare.
inline constexpr index_t max_grid_positions = index_t{1} << 22;  // 4,194,304 tokens: 2048x2048, or 64 frames of 256x256
inline constexpr index_t max_prefix = index_t{1} << 16;          // conditioning rows before the image tokens
// Slots of a plan: prefix, one per position, and at most one transition token per position.
inline constexpr index_t max_plan_slots = index_t{1} << 24;
static_assert(static_cast<long long>(max_prefix) + 2LL * max_grid_positions <= max_plan_slots);

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
// a*b for sizes and byte counts, throwing if it leaves std::size_t.
constexpr std::size_t checked_size_mul(std::size_t a, std::size_t b, const char* what) {
    if (b != 0 && a > SIZE_MAX / b) throw error(std::string(what) + " overflows the 64-bit size type");
    return a * b;
}

// A byte count for messages: "512 bytes", "1.0 MiB", "32.0 GiB" (binary units, one decimal, rounded down).
constexpr std::string bytes_str(unsigned long long n) {
    if (n < 1024) return itos(static_cast<long long>(n)) + " bytes";
    const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    while (u < 5 && (n >> (10 * (u + 1))) >= 1024) ++u;
    const int shift = 10 * (u + 1);
    const unsigned long long whole = n >> shift, rest = n - (whole << shift);
    const unsigned long long tenths = (rest >> (shift - 10)) * 10 / 1024;
    return itos(static_cast<long long>(whole)) + "." + itos(static_cast<long long>(tenths)) + " " + units[u];
}

// Bytes of the well-formed UTF-8 sequence that starts at s[i] (1 for ASCII; no overlongs,
// surrogates or code points past U+10FFFF), or 0 if none does.
constexpr std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
    const auto at = [&](std::size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
    const unsigned c = at(0);
    if (i < s.size() && c < 0x80) return 1;
    std::size_t n = 0;
    unsigned lo = 0x80, hi = 0xbf;  // allowed range of the second byte
    if (c >= 0xc2 && c <= 0xdf) n = 2;
    else if (c >= 0xe0 && c <= 0xef) { n = 3; if (c == 0xe0) lo = 0xa0; if (c == 0xed) hi = 0x9f; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 4; if (c == 0xf0) lo = 0x90; if (c == 0xf4) hi = 0x8f; }
    else return 0;
    if (at(1) < lo || at(1) > hi) return 0;
    for (std::size_t k = 2; k < n; ++k)
        if (at(k) < 0x80 || at(k) > 0xbf) return 0;
    return n;
}

// `s` as the body of a JSON string (RFC 8259): quote, backslash and control characters escaped;
// well-formed UTF-8 kept as is, and each byte that is not part of it written as U+FFFD, so the
// result is always valid JSON. Every hand-written JSON writer in ordo goes through this.
constexpr std::string json_escape(std::string_view s) {
    std::string o;
    o.reserve(s.size());
    const char* hex = "0123456789abcdef";
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            switch (c) {
                case '"': o += "\\\""; break;
                case '\\': o += "\\\\"; break;
                case '\b': o += "\\b"; break;
                case '\f': o += "\\f"; break;
                case '\n': o += "\\n"; break;
                case '\r': o += "\\r"; break;
                case '\t': o += "\\t"; break;
                default:
                    if (c < 0x20) { o += "\\u00"; o += hex[c >> 4]; o += hex[c & 15]; }
                    else o += static_cast<char>(c);
            }
            ++i;
            continue;
        }
        const std::size_t n = utf8_sequence_length(s, i);
        if (n == 0) { o += "\\ufffd"; ++i; continue; }
        o.append(s.substr(i, n));
        i += n;
    }
    return o;
}
}  // namespace detail
}  // namespace ordo
