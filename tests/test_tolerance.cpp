// The tests' float comparisons (tolerance.hpp; gpt_helpers.hpp re-exports them for the GPT tests
// of both backends) fail on NaN and inf: a running max(m, |a - b|) skips NaN, so an all-NaN
// result passed every tolerance before.
#include <catch2/catch.hpp>

#include <algorithm>
#include <limits>
#include <vector>

#include "tolerance.hpp"

using tolerance::max_abs;
using tolerance::max_abs_diff;

TEST_CASE("tolerance: max_abs_diff and max_abs fail on NaN and inf, on either side and at any index", "[tolerance]") {
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    const std::vector<float> ref{0.5f, -1.0f, 2.0f, 0.0f};
    CHECK(max_abs_diff(ref, std::vector<float>{0.5f, -1.0f, 2.0f + 1e-6f, 0.0f}) < 1e-4f);  // close: passes
    CHECK(max_abs_diff(ref, ref) == 0.0f);
    CHECK(max_abs(ref) == 2.0f);
    for (const float bad : {nan, -nan, inf, -inf})
        for (std::size_t i = 0; i < ref.size(); ++i) {
            INFO("value " << bad << " at index " << i);
            std::vector<float> x = ref;
            x[i] = bad;
            CHECK_FALSE(max_abs_diff(x, ref) < 1e-4f);
            CHECK_FALSE(max_abs_diff(ref, x) < 1e-4f);
            CHECK_FALSE(max_abs_diff(x, x) == 0.0f);  // equal infinities, identical NaNs: not a match
            CHECK_FALSE(max_abs(x) < 1e30f);
            // a relative tolerance, d < rel * max_abs(ref), fails whichever side is not finite
            CHECK_FALSE(max_abs_diff(x, ref) < 1e-3f * max_abs(ref));
            CHECK_FALSE(max_abs_diff(ref, x) < 1e-3f * max_abs(x));
        }
}

TEST_CASE("tolerance: an all-NaN result fails, also through a running worst case", "[tolerance]") {
    const std::vector<float> ref{0.5f, -1.0f, 2.0f}, all_nan(3, std::numeric_limits<float>::quiet_NaN());
    CHECK_FALSE(max_abs_diff(all_nan, ref) < 1e-4f);
    CHECK_FALSE(max_abs_diff(ref, all_nan) < 1e-4f);
    CHECK_FALSE(max_abs_diff(all_nan, all_nan) <= 0.0f);
    // the golden tests fold per-step differences with std::max: the failure must survive it
    float worst = 0.0f;
    worst = std::max(worst, max_abs_diff(all_nan, ref));
    worst = std::max(worst, max_abs_diff(ref, ref));
    CHECK_FALSE(worst < 1e-4f);
}

TEST_CASE("tolerance: a size mismatch or a difference that overflows fails", "[tolerance]") {
    CHECK_FALSE(max_abs_diff(std::vector<float>{1.0f, 2.0f}, std::vector<float>{1.0f}) < 1e30f);
    CHECK_FALSE(max_abs_diff(std::vector<float>{3e38f}, std::vector<float>{-3e38f}) < 1e38f);
}
