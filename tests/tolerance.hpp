// Float comparisons for tests, which must fail on NaN or inf. A running max(m, |a - b|) drops NaN
// (every comparison with NaN is false), so an all-NaN result would pass any tolerance; these
// report +inf instead. +inf rather than NaN: `d < tol` fails and a running std::max(worst, d)
// keeps it, whichever side it is on.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <span>

namespace tolerance {

inline constexpr float not_finite = std::numeric_limits<float>::infinity();

// max |a - b|; +inf when the sizes differ or an element of either side is NaN or inf.
inline float max_abs_diff(std::span<const float> a, std::span<const float> b) {
    if (a.size() != b.size()) return not_finite;
    float m = 0.0f;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return not_finite;
        const float d = std::abs(a[i] - b[i]);  // may round to inf (3e38 - -3e38): that fails too
        if (d > m) m = d;
    }
    return m;
}

// max |a|; +inf when an element is NaN or inf (a scale that no difference can be within).
inline float max_abs(std::span<const float> a) {
    float m = 0.0f;
    for (const float x : a) {
        if (!std::isfinite(x)) return not_finite;
        if (std::abs(x) > m) m = std::abs(x);
    }
    return m;
}

}  // namespace tolerance
