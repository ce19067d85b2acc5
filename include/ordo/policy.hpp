// ordo/policy.hpp - the decode_policy concept and the free functions that turn a policy into a plan.
#pragma once

#include <concepts>
#include <string>
#include <utility>

#include "grid.hpp"
#include "plan.hpp"

namespace ordo {

// A decode policy is a (usually empty or tiny) value type that
//   - names its mask mode at compile time:      static constexpr mask_mode mask = ...;
//   - builds a plan for any grid and prefix:    void build(plan_builder&) const;
//   - can say what it is as a spec string:      std::string spec() const;   ("raster", "par:2x2", ...)
// Optionally it gives its step count in closed form: index_t num_steps(grid_shape) const.
template <class P>
concept decode_policy = std::copy_constructible<P> && requires(const P& p, plan_builder& b) {
    { P::mask } -> std::convertible_to<mask_mode>;
    { p.build(b) } -> std::same_as<void>;
    { p.spec() } -> std::convertible_to<std::string>;
};

template <class P>
concept closed_form_steps = decode_policy<P> && requires(const P& p, grid_shape g) {
    { p.num_steps(g) } -> std::same_as<index_t>;
};

// Builds the plan of `policy` for `grid` with `prefix` conditioning rows. constexpr: a plan for a
// static grid can be built (and inspected) during constant evaluation.
template <class P>
constexpr plan make_plan(const P& policy, grid_shape grid, index_t prefix = 1) {
    static_assert(decode_policy<P>,
                  "ordo::make_plan: the type is not a decode_policy (it needs `static constexpr ordo::mask_mode mask`, "
                  "`void build(ordo::plan_builder&) const` and `std::string spec() const`)");
    plan_builder b(grid, prefix, P::mask);
    policy.build(b);
    return std::move(b).finish();
}

// Number of forward passes: the closed form when the policy has one, else counted from its plan.
template <class P>
constexpr index_t num_steps(const P& policy, grid_shape grid) {
    static_assert(decode_policy<P>, "ordo::num_steps: the type is not a decode_policy");
    if constexpr (closed_form_steps<P>) return policy.num_steps(grid);
    else return make_plan(policy, grid).num_steps();
}

// A plan that is itself a constant: `constexpr auto p = make_static_plan<raster{}, grid<16, 16>{}>();`
// Sizes are found by building the plan once during constant evaluation.
template <auto Policy, auto Grid, index_t Prefix = 1>
    requires decode_policy<decltype(Policy)> && grid_like<decltype(Grid)>
constexpr auto make_static_plan() {
    constexpr auto sizes = [] {
        plan p = make_plan(Policy, Grid, Prefix);
        plan_view v = p.view();
        return std::array<index_t, 7>{v.num_slots(), v.num_steps(), v.num_fed_rows(), v.num_positions(),
                                      static_cast<index_t>(v.contribs.size()), static_cast<index_t>(v.stand_ins.size()),
                                      static_cast<index_t>(v.queries.size())};
    }();
    return static_plan<sizes[0], sizes[1], sizes[2], sizes[3], sizes[4], sizes[5], sizes[6]>(make_plan(Policy, Grid, Prefix));
}

}  // namespace ordo
