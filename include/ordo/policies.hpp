// ordo/policies.hpp - the built-in decode policies and their named instances.
#pragma once

#include "policies/neighbor_frontier.hpp"
#include "policies/next_set_wavefront.hpp"
#include "policies/query_groups.hpp"
#include "policies/random_queries.hpp"
#include "policies/raster.hpp"
#include "policies/region_parallel.hpp"

namespace ordo {

// The official configurations, as values (usable as template arguments).
inline constexpr raster llamagen{};                       // LlamaGen raster
inline constexpr region_parallel<> par4{2, 2};            // PAR-4x  (ar-token-num 4)
inline constexpr region_parallel<> par16{4, 4};           // PAR-16x (ar-token-num 16)
inline constexpr neighbor_frontier nar{};                 // NAR, images and video
inline constexpr region_parallel<neighbor_frontier> par4_nar{2, 2};  // PAR x NAR hybrid
inline constexpr next_set_wavefront zipar8{8};            // ZipAR, window 8

}  // namespace ordo
