// ordo/engine/sampler_contract.hpp - the arithmetic both samplers (host: sampler.hpp, CUDA:
// cuda/sampler.cuh) follow exactly, so that the same logits give the same token on either device.
//
// The draw:
//   u      = uniform_draw(seed, request, position)            (Philox4x32-10, 24 bits, random.hpp)
//   m      = the largest kept logit
//   w_i    = exp_mass(l_i - m) in double for each kept token  (0 for removed tokens; exp_mass below is
//            a fixed sequence of IEEE double adds and multiplies, no libm, so both devices get the
//            same bits as long as neither fuses a multiply-add: on the device dadd/dmul are
//            __dadd_rn/__dmul_rn; a host build with FMA enabled (-mfma, -march=native) needs
//            -ffp-contract=off, which the ordo CMake target adds (option ORDO_EXACT_SAMPLER))
//   S_i    = w_0 + w_1 + ... + w_i, summed sequentially in VOCAB INDEX order (not sorted order)
//   token  = the first i with S_i > u * S_{V-1}; if rounding ever runs past the end, the last kept
//            token (cannot happen: u <= 1 - 2^-24).
// The draw depends only on (seed, request, position) and the logits: not on the batch, on which
// order emitted the token, on what the workspace sampled before, nor on the device.
// Top-p decides its boundary with masses accurate to ~1e-7 relative (HuggingFace's softmax is
// float32), from a histogram over logit buckets (see apply(top_p) in sampler.hpp); a port must use the same buckets
// and arithmetic (float bucket ids and factors, each bucket's factors summed exactly as integers,
// then the same double sequence over the 1024 buckets and over the sorted boundary bucket) to agree
// on a token whose cumulative mass lies within ~1e-7 of p * total. ordo/cuda/sampler.cuh does.
#pragma once

#include <bit>
#include <cstdint>

#include "../config.hpp"

namespace ordo::contract {

// The double operations of the cross-device contract: plain * and + on the host (whose build keeps
// them unfused: -ffp-contract=off), the round-to-nearest intrinsics on the device, where nvcc would
// otherwise contract a*b+c into an FMA and change the bits.
ORDO_HD inline double dmul(double a, double b) {
#ifdef __CUDA_ARCH__
    return __dmul_rn(a, b);
#else
    return a * b;
#endif
}
ORDO_HD inline double dadd(double a, double b) {
#ifdef __CUDA_ARCH__
    return __dadd_rn(a, b);
#else
    return a + b;
#endif
}

// exp(x) for x <= 0 in double: the mass function of the cross-device contract. exp(x) = 2^k * e^r
// with k = trunc(x/ln2 - 0.5), r = x - k*ln2 (Cody-Waite, |r| <= ~0.35), e^r by its Taylor series to
// degree 13 in Estrin's form. Only IEEE adds and multiplies in a fixed order, each through dadd/dmul
// (so never fused on either device), error <= ~2 ulp, results below 2^-1022 flushed to 0.
// Branch-free, so loops over it vectorise.
ORDO_HD inline double exp_mass(double x) {
    constexpr double inv_ln2 = 0x1.71547652b82fep0;
    constexpr double ln2_hi = 0x1.62e42fee00000p-1, ln2_lo = 0x1.a39ef35793c76p-33;
    // |x| >= 1024 (or -inf) -> -1024, which flushes to 0 below; an integer test keeps the loop branch-free
    const std::uint32_t hi = static_cast<std::uint32_t>(std::bit_cast<std::uint64_t>(x) >> 32) & 0x7fffffffu;
    const std::uint64_t small = std::uint64_t{0} - static_cast<std::uint64_t>(hi < 0x40900000u);
    const double xc = std::bit_cast<double>((std::bit_cast<std::uint64_t>(x) & small) | (std::bit_cast<std::uint64_t>(-1024.0) & ~small));
    const std::int32_t k0 = static_cast<std::int32_t>(dadd(dmul(xc, inv_ln2), -0.5));
    const std::int32_t ok = k0 >= -1022;  // below: the result would be subnormal, count it as 0
    const std::int32_t k = ok ? k0 : -1022;
    const double kd = static_cast<double>(k);
    const double r = dadd(dadd(xc, -dmul(kd, ln2_hi)), -dmul(kd, ln2_lo));
    const double r2 = dmul(r, r), r4 = dmul(r2, r2), r8 = dmul(r4, r4);
    const double c01 = dadd(1.0, r), c23 = dadd(0.5, dmul(r, 1.0 / 6.0)), c45 = dadd(1.0 / 24.0, dmul(r, 1.0 / 120.0)),
                 c67 = dadd(1.0 / 720.0, dmul(r, 1.0 / 5040.0)), c89 = dadd(1.0 / 40320.0, dmul(r, 1.0 / 362880.0)),
                 cab = dadd(1.0 / 3628800.0, dmul(r, 1.0 / 39916800.0)), ccd = dadd(1.0 / 479001600.0, dmul(r, 1.0 / 6227020800.0));
    const double c03 = dadd(c01, dmul(r2, c23)), c47 = dadd(c45, dmul(r2, c67)), c8b = dadd(c89, dmul(r2, cab));
    const double p = dadd(dadd(c03, dmul(r4, c47)), dmul(r8, dadd(c8b, dmul(r4, ccd))));
    const std::uint64_t scale = static_cast<std::uint64_t>(static_cast<std::int64_t>(k) + 1023) << 52;
    const std::uint64_t mask = std::uint64_t{0} - static_cast<std::uint64_t>(ok);
    return std::bit_cast<double>(std::bit_cast<std::uint64_t>(dmul(p, std::bit_cast<double>(scale))) & mask);
}

// Order-preserving map float -> int32 (larger float, larger key; -0 and +0 share a key; +inf and
// +NaN above every finite value, -NaN below -inf).
ORDO_HD inline std::int32_t signed_key(float f) {
    const std::int32_t i = std::bit_cast<std::int32_t>(f + 0.0f);
    return i ^ ((i >> 31) & 0x7fffffff);
}
ORDO_HD inline float signed_key_float(std::int32_t k) { return std::bit_cast<float>(k ^ ((k >> 31) & 0x7fffffff)); }

inline constexpr std::uint32_t ninf_bits = 0xff800000u;

}  // namespace ordo::contract
