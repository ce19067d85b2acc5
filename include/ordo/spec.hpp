// ordo/spec.hpp - policy and grid specs as strings ("par:2x2+nar", "4x16x16"), for tools and configs.
// The compile-time policy types stay the way to use ordo in code; this maps strings onto them.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "policies.hpp"

namespace ordo {

// Every built-in policy type a spec string can name.
using any_policy = std::variant<raster, region_parallel<raster>, region_parallel<neighbor_frontier>, neighbor_frontier, next_set_wavefront, query_groups,
                                interleaved_queries, cross_queries>;

namespace detail {
inline long long parse_count(std::string_view s, std::string_view what, std::string_view whole) {
    if (s.empty() || s.size() > 10) throw error("bad " + std::string(what) + " '" + std::string(whole) + "': expected a positive integer, got '" + std::string(s) + "'");
    long long v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') throw error("bad " + std::string(what) + " '" + std::string(whole) + "': '" + std::string(s) + "' is not a number");
        v = v * 10 + (c - '0');
    }
    if (v < 1) throw error("bad " + std::string(what) + " '" + std::string(whole) + "': extents must be >= 1");
    if (v > max_index) throw error("bad " + std::string(what) + " '" + std::string(whole) + "': " + std::string(s) + " overflows the 32-bit index type");
    return v;
}
inline std::vector<long long> parse_extents(std::string_view s, std::string_view what) {
    std::vector<long long> out;
    std::size_t start = 0;
    while (true) {
        std::size_t x = s.find('x', start);
        out.push_back(parse_count(s.substr(start, x == std::string_view::npos ? std::string_view::npos : x - start), what, s));
        if (x == std::string_view::npos) break;
        start = x + 1;
    }
    return out;
}
// Splits "[COUNT,]KEY=VALUE,...": count(text) for a leading bare count, then kv(key, value) for
// each item; `keys` lists the keys for the message of a malformed item.
template <class Count, class KeyValue>
inline void parse_keys(std::string_view body, const std::string& whole, const char* keys, Count&& count, KeyValue&& kv) {
    if (const std::string_view head = body.substr(0, body.find(',')); !head.empty() && head.find('=') == std::string_view::npos) {
        count(head);
        if (head.size() == body.size()) return;
        body = body.substr(head.size() + 1);
    }
    std::size_t start = 0;
    while (start <= body.size()) {
        const std::size_t comma = std::min(body.find(',', start), body.size());
        const std::string_view item = body.substr(start, comma - start);
        const std::size_t eq = item.find('=');
        if (eq == std::string_view::npos)
            throw error("bad policy '" + whole + "': expected KEY=VALUE (" + keys + "), got '" + std::string(item) + "'");
        kv(item.substr(0, eq), item.substr(eq + 1));
        start = comma + 1;
    }
}
// An order seed: 0..2^32-1, or "request" (-1: the plan is the schedule, each request brings its order).
inline std::int64_t parse_seed(std::string_view value, const std::string& whole) {
    if (value == "request") return -1;
    long long seed = value.empty() || value.size() > 10 ? -1 : 0;
    for (const char c : value) seed = c >= '0' && c <= '9' && seed >= 0 ? seed * 10 + (c - '0') : -1;
    if (seed < 0 || seed > 0xffffffffLL)
        throw error("bad policy '" + whole + "': the seed is an integer 0..2^32-1 or \"request\", got '" + std::string(value) + "'");
    return seed;
}
[[noreturn]] inline void fail_key(const std::string& whole, std::string_view key, const char* keys) {
    if (key == "order")
        throw error("bad policy '" + whole + "': an explicit order is given in code (the policy's order) or per request (request::order), not in a spec");
    throw error("bad policy '" + whole + "': unknown key '" + std::string(key) + "' (" + keys + ")");
}

// "lpd:20" | "lpd:[STEPS,]KEY=VALUE,..." with keys steps (a released schedule), sizes (1+2+4+...: any
// list), repulsion, proximity (numbers >= 0) and seed.
inline query_groups parse_lpd(std::string_view body, std::string_view whole_view) {
    query_groups p;
    const std::string whole(whole_view);
    const char* keys = "steps, sizes, repulsion, proximity, seed";
    bool steps = false, sizes = false;
    auto number = [&](std::string_view v, std::string_view key) {
        double x = 0;
        const auto r = std::from_chars(v.data(), v.data() + v.size(), x);
        if (v.empty() || r.ec != std::errc() || r.ptr != v.data() + v.size() || !(x >= 0) || x > 1e9)
            throw error("bad policy '" + whole + "': " + std::string(key) + " must be a number >= 0, got '" + std::string(v) + "'");
        return x;
    };
    auto step_count = [&](std::string_view v) {
        if (steps) throw error("bad policy '" + whole + "': the step count is given twice");
        p.steps = static_cast<index_t>(parse_count(v, "lpd step count", whole));
        steps = true;
    };
    parse_keys(body, whole, keys, step_count, [&](std::string_view key, std::string_view value) {
        if (key == "steps") {
            step_count(value);
        } else if (key == "sizes") {
            p.group_sizes.clear();
            std::size_t s0 = 0;
            while (true) {
                const std::size_t plus = std::min(value.find('+', s0), value.size());
                if (p.group_sizes.size() >= static_cast<std::size_t>(max_grid_positions))
                    throw error("bad policy '" + whole + "': more group sizes than a grid has positions");
                p.group_sizes.push_back(static_cast<index_t>(parse_count(value.substr(s0, plus - s0), "lpd group size", whole)));
                if (plus == value.size()) break;
                s0 = plus + 1;
            }
            sizes = true;
        } else if (key == "repulsion") {
            p.repulsion = number(value, key);
        } else if (key == "proximity") {
            p.proximity = number(value, key);
        } else if (key == "seed") {
            p.seed = parse_seed(value, whole);
        } else {
            fail_key(whole, key, keys);
        }
    });
    if (steps && sizes) throw error("bad policy '" + whole + "': give steps (a released schedule) or sizes (your own), not both");
    return p;
}

// "randar:88" | "randar:[STEPS,]KEY=VALUE,..." with keys steps and seed.
inline interleaved_queries parse_randar(std::string_view body, std::string_view whole_view) {
    interleaved_queries p;
    const std::string whole(whole_view);
    const char* keys = "steps, seed";
    bool steps = false;
    auto step_count = [&](std::string_view v) {
        if (steps) throw error("bad policy '" + whole + "': the step count is given twice");
        p.steps = static_cast<index_t>(parse_count(v, "randar step count", whole));
        steps = true;
    };
    parse_keys(body, whole, keys, step_count, [&](std::string_view key, std::string_view value) {
        if (key == "steps") step_count(value);
        else if (key == "seed") p.seed = parse_seed(value, whole);
        else fail_key(whole, key, keys);
    });
    return p;
}

// "arpg:64" | "arpg:[STEPS,]KEY=VALUE,..." with keys steps, schedule (arccos or cosine) and seed.
inline cross_queries parse_arpg(std::string_view body, std::string_view whole_view) {
    cross_queries p;
    const std::string whole(whole_view);
    const char* keys = "steps, schedule, seed";
    bool steps = false;
    auto step_count = [&](std::string_view v) {
        if (steps) throw error("bad policy '" + whole + "': the step count is given twice");
        p.steps = static_cast<index_t>(parse_count(v, "arpg step count", whole));
        steps = true;
    };
    parse_keys(body, whole, keys, step_count, [&](std::string_view key, std::string_view value) {
        if (key == "steps") step_count(value);
        else if (key == "seed") p.seed = parse_seed(value, whole);
        else if (key == "schedule") {
            if (value == "arccos") p.schedule = schedules::arpg_schedule::arccos;
            else if (value == "cosine") p.schedule = schedules::arpg_schedule::cosine;
            else throw error("bad policy '" + whole + "': the schedule is arccos or cosine, got '" + std::string(value) + "'");
        } else fail_key(whole, key, keys);
    });
    return p;
}
}  // namespace detail

// "24x24" (H x W) or "4x16x16" (T x H x W): at most max_grid_positions positions (config.hpp).
inline grid_shape parse_grid(std::string_view s) {
    auto e = detail::parse_extents(s, "grid spec");
    if (e.size() == 2) return grid_shape::make(e[0], e[1]);
    if (e.size() == 3) return grid_shape::make(e[0], e[1], e[2]);
    throw error("bad grid spec '" + std::string(s) + "': expected HxW or TxHxW");
}

// "raster" | "nar" | "zipar:W" | "par:HxW" | "par:TxHxW" | "par:...+raster" | "par:...+nar" | "lpd:..." |
// "randar:..." | "arpg:...".
// Counts are 1..INT32_MAX; par's regions at most max_grid_positions in all (config.hpp).
inline any_policy parse_policy(std::string_view s) {
    const std::string whole(s);
    if (s == "raster") return raster{};
    if (s == "nar") return neighbor_frontier{};
    if (s.starts_with("lpd:")) return detail::parse_lpd(s.substr(4), s);
    if (s.starts_with("randar:")) return detail::parse_randar(s.substr(7), s);
    if (s.starts_with("arpg:")) return detail::parse_arpg(s.substr(5), s);
    if (s.starts_with("zipar:")) {
        return next_set_wavefront{static_cast<index_t>(detail::parse_count(s.substr(6), "zipar window", s))};
    }
    if (s.starts_with("par:")) {
        std::string_view body = s.substr(4), inner = "raster";
        if (auto plus = body.find('+'); plus != std::string_view::npos) {
            inner = body.substr(plus + 1);
            body = body.substr(0, plus);
        }
        auto e = detail::parse_extents(body, "region spec");
        if (e.size() != 2 && e.size() != 3) throw error("bad policy '" + whole + "': regions are HxW or TxHxW");
        // each region holds a position at least, so no grid has more regions than positions
        long long regions = 1;
        for (long long x : e)
            if ((regions *= std::min<long long>(x, max_grid_positions + 1LL)) > max_grid_positions)
                throw error("bad policy '" + whole + "': more regions than the " + detail::itos(max_grid_positions) +
                            " positions a grid may have (ordo::max_grid_positions)");
        const index_t rt = e.size() == 3 ? static_cast<index_t>(e[0]) : 1;
        const index_t rh = static_cast<index_t>(e[e.size() - 2]), rw = static_cast<index_t>(e[e.size() - 1]);
        if (inner == "raster") return region_parallel<raster>{rt, rh, rw};
        if (inner == "nar") return region_parallel<neighbor_frontier>{rt, rh, rw};
        throw error("bad policy '" + whole + "': the inner order of par must be raster or nar, got '" + std::string(inner) + "'");
    }
    throw error("unknown policy '" + whole + "' (expected raster, par:HxW, par:HxW+nar, nar, zipar:W, lpd:STEPS, randar:STEPS or arpg:STEPS)");
}

inline std::string spec_of(const any_policy& p) {
    return std::visit([](const auto& q) { return q.spec(); }, p);
}

inline plan make_plan(const any_policy& p, grid_shape g, index_t prefix = 1) {
    return std::visit([&](const auto& q) { return make_plan(q, g, prefix); }, p);
}

inline index_t num_steps(const any_policy& p, grid_shape g) {
    return std::visit([&](const auto& q) { return num_steps(q, g); }, p);
}

// The built-in policies and hybrids worth comparing on a grid: those whose regions divide it.
inline std::vector<std::string> builtin_policies(grid_shape g) {
    std::vector<std::string> out{"raster"};
    for (index_t s : {2, 4})
        if (g.rows() % s == 0 && g.cols() % s == 0) out.push_back("par:" + detail::itos(s) + "x" + detail::itos(s));
    out.push_back("nar");
    if (g.rows() % 2 == 0 && g.cols() % 2 == 0) out.push_back("par:2x2+nar");
    if (g.cols() >= 3) out.push_back("zipar:" + detail::itos(std::max<index_t>(2, g.cols() / 3)));  // windows 2..W-1 (16: 5, 24: 8)
    // LPD's released flagship schedules (256 tokens: 20 steps; 1024: 48); other grids have none
    if (g.rank() == 2 && (g.size() == 256 || g.size() == 1024)) out.push_back(g.size() == 256 ? "lpd:20" : "lpd:steps=48,repulsion=4");
    // the random-order methods at their official step counts (256 tokens: RandAR 88, ARPG 64)
    if (g.rank() == 2 && g.size() >= 256) {
        out.push_back("randar:88");
        out.push_back("arpg:64");
    }
    return out;
}

}  // namespace ordo
