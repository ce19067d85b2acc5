// RandAR's and ARPG's query schedules against the official loops: the step-count tables
// (golden/structure/randar_schedules.json, arpg_schedules.json, re-typed around the official
// arithmetic and checked equal to the calls generate() made) and the calls actually recorded in
// the structure runs (randar_G16_s88_seed0.json, arpg_G16_s64_seed0.json).
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <ordo/schedules/query_schedules.hpp>

using nlohmann::json;
using Catch::Matchers::Contains;
namespace sch = ordo::schedules;
using ordo::index_t;

namespace {

json load(const std::string& name) {
    std::ifstream f(std::string(ORDO_TEST_DATA) + "/golden/structure/" + name);
    REQUIRE(f.good());
    return json::parse(f);
}

// "N256_steps88" or "N256_steps64_arccos" -> 256, 88 (and the schedule's name after the second '_')
struct case_key { index_t tokens, steps; std::string schedule; };
case_key parse_key(const std::string& key) {
    case_key k{};
    const auto steps_at = key.find("_steps");
    REQUIRE(key.rfind("N", 0) == 0);
    REQUIRE(steps_at != std::string::npos);
    k.tokens = static_cast<index_t>(std::stol(key.substr(1, steps_at - 1)));
    const std::string rest = key.substr(steps_at + 6);
    const auto us = rest.find('_');
    k.steps = static_cast<index_t>(std::stol(rest.substr(0, us)));
    if (us != std::string::npos) k.schedule = rest.substr(us + 1);
    return k;
}

sch::arpg_schedule arpg_kind(const std::string& name) {
    if (name == "arccos") return sch::arpg_schedule::arccos;
    REQUIRE(name == "cosine");
    return sch::arpg_schedule::cosine;
}

std::vector<index_t> ints(const json& a) { return a.get<std::vector<index_t>>(); }

long long total(const std::vector<index_t>& v) { return std::accumulate(v.begin(), v.end(), 0LL); }

const index_t sizes[] = {16, 64, 144, 256, 576, 1024};

}  // namespace

TEST_CASE("randar_queries_per_call reproduces every golden RandAR schedule", "[schedules]") {
    const json g = load("randar_schedules.json");
    int cases = 0;
    for (const auto& [key, c] : g["schedules"].items()) {
        INFO(key);
        const case_key k = parse_key(key);
        const auto got = sch::randar_queries_per_call(k.tokens, k.steps);
        CHECK(got == ints(c["queries_per_call"]));
        CHECK(got.size() == c["calls"].get<std::size_t>());
        ++cases;
    }
    CHECK(cases == 7);
    // the official default: 24 single-token calls, then 2..5 per call
    const auto d = sch::randar_queries_per_call(256, 88);
    CHECK(std::count(d.begin(), d.begin() + 24, 1) == 24);
    CHECK(d[24] == 2);
    CHECK(*std::max_element(d.begin(), d.end()) == 5);
}

TEST_CASE("arpg_queries_per_call reproduces every golden ARPG schedule", "[schedules]") {
    const json g = load("arpg_schedules.json");
    int cases = 0;
    for (const auto& [key, c] : g["schedules"].items()) {
        INFO(key);
        const case_key k = parse_key(key);
        const auto got = sch::arpg_queries_per_call(k.tokens, k.steps, arpg_kind(k.schedule));
        CHECK(got == ints(c["queries_per_call"]));
        CHECK(got.size() == c["calls"].get<std::size_t>());
        ++cases;
    }
    CHECK(cases == 12);
}

TEST_CASE("query schedules match the calls recorded in the RandAR and ARPG structure runs", "[schedules]") {
    SECTION("RandAR 16x16, 88 steps") {
        const json r = load("randar_G16_s88_seed0.json");
        const auto got = sch::randar_queries_per_call(r["params"]["N"].get<index_t>(), r["params"]["num_inference_steps"].get<index_t>());
        CHECK(got == ints(r["queries_per_call"]));
        const json& steps = r["plan"]["steps"];
        REQUIRE(got.size() == steps.size());
        CHECK(got.size() == r["plan"]["num_forward_calls"].get<std::size_t>());
        for (std::size_t k = 0; k < steps.size(); ++k) {
            INFO("call " << k);
            CHECK(got[k] == steps[k]["num_queries"].get<index_t>());
            CHECK(steps[k]["sampled"].size() == static_cast<std::size_t>(got[k]));
        }
    }
    SECTION("ARPG 16x16, 64 steps, arccos") {
        const json a = load("arpg_G16_s64_seed0.json");
        const auto got = sch::arpg_queries_per_call(a["params"]["N"].get<index_t>(), a["params"]["num_iter"].get<index_t>(),
                                                    arpg_kind(a["params"]["sample_schedule"].get<std::string>()));
        CHECK(got == ints(a["queries_per_call"]));
        const json& steps = a["plan"]["steps"];
        REQUIRE(got.size() == steps.size());
        CHECK(got.size() == a["plan"]["num_forward_calls"].get<std::size_t>());
        for (std::size_t k = 0; k < steps.size(); ++k) {
            INFO("call " << k);
            CHECK(got[k] == steps[k]["num_queries"].get<index_t>());
            CHECK(steps[k]["sampled"].size() == static_cast<std::size_t>(got[k]));
        }
    }
}

TEST_CASE("query schedules cover N with calls of at least one token, for every step count", "[schedules]") {
    for (const index_t n : sizes) {
        for (index_t steps = 1; steps <= n; ++steps) {
            INFO("N " << n << " steps " << steps);
            const auto r = sch::randar_queries_per_call(n, steps);
            CHECK(total(r) == n);
            CHECK(*std::min_element(r.begin(), r.end()) >= 1);
            CHECK(r.front() == 1);  // call 0 is always [cls, P_0]
            // the official loop makes `steps` calls, except 2 for steps = 1 (the target is N after call 0)
            CHECK(r.size() == static_cast<std::size_t>(steps == 1 ? 2 : steps));
            for (const auto kind : {sch::arpg_schedule::arccos, sch::arpg_schedule::cosine}) {
                const auto a = sch::arpg_queries_per_call(n, steps, kind);
                CHECK(total(a) == n);
                CHECK(*std::min_element(a.begin(), a.end()) >= 1);
                CHECK(a.size() == static_cast<std::size_t>(steps));
            }
        }
    }
    // steps = N is one token per call; one step decodes everything at once (ARPG) or 1 then N-1 (RandAR)
    CHECK(sch::randar_queries_per_call(256, 256) == std::vector<index_t>(256, 1));
    CHECK(sch::arpg_queries_per_call(256, 256, sch::arpg_schedule::arccos) == std::vector<index_t>(256, 1));
    CHECK(sch::arpg_queries_per_call(256, 1, sch::arpg_schedule::cosine) == std::vector<index_t>{256});
    CHECK(sch::randar_queries_per_call(256, 1) == std::vector<index_t>{1, 255});
    CHECK(sch::randar_queries_per_call(1, 1) == std::vector<index_t>{1});
    CHECK(sch::arpg_queries_per_call(1, 1, sch::arpg_schedule::arccos) == std::vector<index_t>{1});
}

TEST_CASE("query schedules refuse bad sizes by name", "[schedules]") {
    const auto arccos = sch::arpg_schedule::arccos;
    CHECK_THROWS_WITH(sch::randar_queries_per_call(0, 1), Contains("RandAR schedule needs at least 1 token, got 0"));
    CHECK_THROWS_WITH(sch::arpg_queries_per_call(-5, 1, arccos), Contains("ARPG schedule needs at least 1 token, got -5"));
    CHECK_THROWS_WITH(sch::randar_queries_per_call(256, 0), Contains("RandAR schedule needs at least 1 step, got 0"));
    // RandAR's -1 ("one token per call") is steps = tokens here
    CHECK_THROWS_WITH(sch::randar_queries_per_call(256, -1), Contains("at least 1 step, got -1"));
    CHECK_THROWS_WITH(sch::arpg_queries_per_call(256, 0, arccos), Contains("ARPG schedule needs at least 1 step, got 0"));
    CHECK_THROWS_WITH(sch::randar_queries_per_call(16, 17), Contains("17 steps for 16 tokens") && Contains("steps must be <= tokens"));
    CHECK_THROWS_WITH(sch::arpg_queries_per_call(16, 17, arccos), Contains("ARPG schedule of 17 steps for 16 tokens"));
    const index_t too_many = ordo::max_grid_positions + 1;
    CHECK_THROWS_WITH(sch::randar_queries_per_call(too_many, 88), Contains("4194305 tokens exceeds max_grid_positions (4194304)"));
    CHECK_THROWS_WITH(sch::arpg_queries_per_call(ordo::max_index, ordo::max_index, arccos), Contains("exceeds max_grid_positions"));
    // the largest grid is fine (and cheap: one pass over the calls)
    CHECK(total(sch::arpg_queries_per_call(ordo::max_grid_positions, 64, arccos)) == ordo::max_grid_positions);
    CHECK(total(sch::randar_queries_per_call(ordo::max_grid_positions, 88)) == ordo::max_grid_positions);
}
