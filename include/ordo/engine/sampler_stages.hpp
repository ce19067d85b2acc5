// ordo/engine/sampler_stages.hpp - the sampler's vocabulary: its stages (temperature, top-k, top-p,
// then the draw: greedy or multinomial), the compile-time checked chain, the checks of the stages'
// parameters and the key of the random stream. Shared by the host (sampler.hpp) and CUDA
// (cuda/sampler.cuh) samplers; the semantics are stated in sampler.hpp.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <tuple>
#include <type_traits>

#include "../config.hpp"

namespace ordo {

struct temperature { float value = 1.0f; };  // logits / max(value, 1e-5)
struct top_k { index_t k = 0; };             // 0: off
struct top_p { float p = 1.0f; };            // 1: off; must lie in (0, 1]
struct greedy {};                            // final draw: argmax
struct multinomial {};                       // final draw: one sample from the softmax

namespace detail {
template <class T> inline constexpr bool is_draw_stage = std::is_same_v<T, greedy> || std::is_same_v<T, multinomial>;
template <class T> inline constexpr bool is_filter_stage =
    std::is_same_v<T, temperature> || std::is_same_v<T, top_k> || std::is_same_v<T, top_p>;
template <class T, class... Ts> inline constexpr std::size_t count_of = (std::size_t{0} + ... + std::size_t{std::is_same_v<T, Ts>});
template <class... Ts> struct last_of { using type = void; };
template <class T> struct last_of<T> { using type = T; };
template <class T, class U, class... Ts> struct last_of<T, U, Ts...> : last_of<U, Ts...> {};
}  // namespace detail

// A chain of stages, checked at compile time: filters (each at most once) then exactly one draw.
template <class... Stages>
struct sampler_chain {
    static_assert(sizeof...(Stages) > 0,
                  "ordo::sampler_chain: empty chain; end it with a draw stage (ordo::greedy or ordo::multinomial)");
    static_assert((... && (detail::is_draw_stage<Stages> || detail::is_filter_stage<Stages>)),
                  "ordo::sampler_chain: unknown stage; stages are ordo::temperature, ordo::top_k, ordo::top_p, "
                  "ordo::greedy, ordo::multinomial");
    static_assert(detail::is_draw_stage<typename detail::last_of<Stages...>::type>,
                  "ordo::sampler_chain: the last stage must be the draw (ordo::greedy or ordo::multinomial)");
    static_assert((detail::count_of<greedy, Stages...> + detail::count_of<multinomial, Stages...>) == 1,
                  "ordo::sampler_chain: the draw (ordo::greedy or ordo::multinomial) must be the last stage "
                  "and appear once; filters go before it");
    static_assert(detail::count_of<temperature, Stages...> <= 1, "ordo::sampler_chain: ordo::temperature appears more than once");
    static_assert(detail::count_of<top_k, Stages...> <= 1, "ordo::sampler_chain: ordo::top_k appears more than once");
    static_assert(detail::count_of<top_p, Stages...> <= 1, "ordo::sampler_chain: ordo::top_p appears more than once");

    std::tuple<Stages...> stages;
};

template <class... Stages>
constexpr sampler_chain<Stages...> make_sampler(Stages... stages) {
    return sampler_chain<Stages...>{std::tuple<Stages...>{stages...}};
}

// What keys the random stream: the draw of (request, position) under `seed`.
struct draw_key {
    std::uint64_t seed = 0;
    std::uint64_t request = 0;
    index_t position = 0;
};

// The stages' parameters, checked before a sampler does any work (the host and CUDA samplers alike).
inline constexpr float min_temperature = 1e-5f;  // LlamaGen: logits / max(temperature, 1e-5)
inline void check_stage(const temperature& t) {
    if (std::isnan(t.value) || t.value == std::numeric_limits<float>::infinity())
        throw error("temperature: value " + detail::ftos(t.value) + " is not a number or infinite (<= 0 is clamped to 1e-5)");
}
inline void check_stage(const top_k& t) {
    if (t.k < 0) throw error("top_k: k = " + detail::itos(t.k) + " is negative (0 turns the stage off)");
}
inline void check_stage(const top_p& t) {
    if (!(t.p > 0.0f && t.p <= 1.0f)) throw error("top_p: p = " + detail::ftos(t.p) + " is outside (0, 1] (1 turns the stage off)");
}
inline void check_stage(const greedy&) {}
inline void check_stage(const multinomial&) {}

}  // namespace ordo
