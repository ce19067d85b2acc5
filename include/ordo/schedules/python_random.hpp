// ordo/schedules/python_random.hpp - CPython's `random` and numpy's legacy global RNG, bit for bit,
// as far as order generators ported from Python need them.
//
// Orders published with Python code (LPD's locality-aware orders) are functions of the RNG stream,
// so reproducing one exactly needs the same MT19937 seeding and the same draw algorithms: CPython
// 3.x `random.Random` (Modules/_randommodule.c, Lib/random.py) and numpy's legacy `RandomState`
// (`np.random.seed(int)`, `np.random.randint(high)`). No allocation per draw.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace ordo::schedules {

// MT19937 (Matsumoto & Nishimura, 1998): the generator under both CPython and numpy's legacy RNG.
class mt19937 {
public:
    static constexpr int n = 624, m = 397;

    // The reference init_genrand: what numpy's RandomState.seed(int) and std::mt19937(s) do.
    constexpr void init_genrand(std::uint32_t s) {
        mt_[0] = s;
        for (int i = 1; i < n; ++i)
            mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<std::uint32_t>(i);
        next_ = n;
    }

    // The reference init_by_array: what CPython's random.seed(int) does with the int's 32-bit words.
    constexpr void init_by_array(std::span<const std::uint32_t> key) {
        init_genrand(19650218u);
        const std::size_t len = key.empty() ? 1 : key.size();  // CPython always passes at least one word
        const auto word = [&](std::size_t j) { return key.empty() ? 0u : key[j]; };
        int i = 1;
        std::size_t j = 0;
        for (std::size_t k = n > len ? n : len; k; --k) {
            mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525u)) + word(j) + static_cast<std::uint32_t>(j);
            ++i; ++j;
            if (i >= n) { mt_[0] = mt_[n - 1]; i = 1; }
            if (j >= len) j = 0;
        }
        for (int k = n - 1; k; --k) {
            mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941u)) - static_cast<std::uint32_t>(i);
            ++i;
            if (i >= n) { mt_[0] = mt_[n - 1]; i = 1; }
        }
        mt_[0] = 0x80000000u;  // the top bit set: the state is never all zero
        next_ = n;
    }

    // genrand_uint32: the next tempered 32-bit output.
    constexpr std::uint32_t next_u32() {
        if (next_ >= n) twist();
        std::uint32_t y = mt_[next_++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680u;
        y ^= (y << 15) & 0xefc60000u;
        y ^= y >> 18;
        return y;
    }

private:
    constexpr void twist() {
        constexpr std::uint32_t upper = 0x80000000u, lower = 0x7fffffffu, matrix_a = 0x9908b0dfu;
        for (int k = 0; k < n; ++k) {
            const std::uint32_t y = (mt_[k] & upper) | (mt_[(k + 1) % n] & lower);
            mt_[k] = mt_[(k + m) % n] ^ (y >> 1) ^ ((y & 1u) ? matrix_a : 0u);
        }
        next_ = 0;
    }

    std::array<std::uint32_t, n> mt_{};
    int next_ = n + 1;
};

// CPython's random.Random, seeded from a non-negative int.
class python_random {
public:
    constexpr explicit python_random(std::uint64_t seed) { this->seed(seed); }

    // random.seed(a) for an int a >= 0: init_by_array over the 32-bit words of a, least
    // significant first, as few as hold it (one word for 0). A negative a seeds as abs(a).
    constexpr void seed(std::uint64_t a) {
        const std::array<std::uint32_t, 2> key{static_cast<std::uint32_t>(a), static_cast<std::uint32_t>(a >> 32)};
        mt_.init_by_array(std::span<const std::uint32_t>(key.data(), (a >> 32) ? 2 : 1));
    }

    // getrandbits(k), 0 <= k <= 64: 32-bit words from the least significant up, the last one cut
    // to its top bits (genrand >> (32 - k)), exactly as CPython fills a long.
    constexpr std::uint64_t getrandbits(int k) {
        if (k <= 0) return 0;
        if (k <= 32) return mt_.next_u32() >> (32 - k);
        const std::uint64_t low = mt_.next_u32();
        const std::uint64_t high = mt_.next_u32() >> (64 - k);
        return low | (high << 32);
    }

    // random(): a 53-bit double in [0, 1), from two draws (27 + 26 bits).
    constexpr double random() {
        const std::uint32_t a = mt_.next_u32() >> 5, b = mt_.next_u32() >> 6;
        return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
    }

    // _randbelow(n), n >= 1: getrandbits(n.bit_length()) until below n. Note bit_length(n), not
    // of n - 1: a power of two wastes half its draws, and the stream depends on exactly that.
    constexpr std::uint64_t randbelow(std::uint64_t n) {
        if (n == 0) return 0;  // CPython would spin forever; callers never ask
        int k = 0;
        for (std::uint64_t v = n; v; v >>= 1) ++k;
        std::uint64_t r = getrandbits(k);
        while (r >= n) r = getrandbits(k);
        return r;
    }

    // choice(seq) is seq[choice_index(len(seq))]; len >= 1.
    constexpr std::size_t choice_index(std::size_t size) { return static_cast<std::size_t>(randbelow(size)); }

    // shuffle(x): Fisher-Yates from the back, j = _randbelow(i + 1).
    template <class T>
    constexpr void shuffle(std::span<T> x) {
        for (std::size_t i = x.size(); i-- > 1;) {
            const auto j = static_cast<std::size_t>(randbelow(i + 1));
            using std::swap;
            swap(x[i], x[j]);
        }
    }

    constexpr std::uint32_t next_u32() { return mt_.next_u32(); }

private:
    mt19937 mt_;
};

// numpy's legacy global RNG (np.random.seed / np.random.randint), i.e. RandomState over MT19937.
class numpy_random_state {
public:
    // np.random.seed(s) for an int 0 <= s < 2^32: init_genrand(s) (numpy rejects larger seeds).
    constexpr explicit numpy_random_state(std::uint32_t seed) { mt_.init_genrand(seed); }

    // np.random.randint(high) for 1 <= high <= 2^32 (default int64 dtype): values in [0, high)
    // by masked rejection, one 32-bit draw per try, none at all when high == 1.
    constexpr std::int64_t randint(std::int64_t high) {
        const std::uint64_t range = static_cast<std::uint64_t>(high) - 1;
        if (range == 0) return 0;
        std::uint64_t mask = range;
        for (int s = 1; s < 64; s <<= 1) mask |= mask >> s;
        std::uint64_t v = mt_.next_u32() & mask;
        while (v > range) v = mt_.next_u32() & mask;
        return static_cast<std::int64_t>(v);
    }

    constexpr std::uint32_t next_u32() { return mt_.next_u32(); }

private:
    mt19937 mt_;
};

}  // namespace ordo::schedules
