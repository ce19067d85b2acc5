// ordo/ordo.hpp - everything in the core (C++20 standard library only).
#pragma once

#include "config.hpp"
#include "exchange.hpp"
#include "grid.hpp"
#include "mask.hpp"
#include "plan.hpp"
#include "policies.hpp"
#include "policy.hpp"
#include "show.hpp"
#include "spec.hpp"
