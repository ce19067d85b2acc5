// The plan exchange format read back (plan_from_json): for every built-in order, plan -> JSON -> plan
// is the same plan and JSON -> plan -> JSON the same bytes; malformed or inconsistent files are
// refused with an ordo::error naming the field; the text grows linearly with the grid.
#include <catch2/catch.hpp>
#include <algorithm>
#include <nlohmann/json.hpp>
#include <ordo/ordo.hpp>

using nlohmann::json;
using Catch::Contains;

namespace {

void check_same_plan(const ordo::plan_view& a, const ordo::plan_view& b) {
    const ordo::plan_header &x = a.header, &y = b.header;
    CHECK(x.grid == y.grid);
    CHECK(x.prefix == y.prefix);
    CHECK(x.num_steps == y.num_steps);
    CHECK(x.num_slots == y.num_slots);
    CHECK(x.train_slots == y.train_slots);
    CHECK(x.num_transitions == y.num_transitions);
    CHECK(x.num_stand_ins == y.num_stand_ins);
    CHECK(x.num_heads == y.num_heads);
    CHECK(x.mask == y.mask);
    CHECK(x.encoding == y.encoding);
    CHECK(x.forcing == y.forcing);
    for (int h = 0; h < ordo::max_heads; ++h) CHECK(x.head_names[static_cast<std::size_t>(h)].view() == y.head_names[static_cast<std::size_t>(h)].view());
    CHECK(std::ranges::equal(a.slots, b.slots));
    CHECK(std::ranges::equal(a.fed_step, b.fed_step));
    CHECK(std::ranges::equal(a.fed_offsets, b.fed_offsets));
    CHECK(std::ranges::equal(a.fed, b.fed));
    CHECK(std::ranges::equal(a.emit_offsets, b.emit_offsets));
    CHECK(std::ranges::equal(a.order, b.order));
    CHECK(std::ranges::equal(a.contrib_offsets, b.contrib_offsets));
    // weights bit for bit, not within a tolerance
    CHECK(std::ranges::equal(a.contribs, b.contribs, [](const ordo::contribution& c, const ordo::contribution& d) {
        return c.row == d.row && c.head == d.head && std::bit_cast<std::uint32_t>(c.weight) == std::bit_cast<std::uint32_t>(d.weight);
    }));
    CHECK(std::ranges::equal(a.rank_of, b.rank_of));
    CHECK(std::ranges::equal(a.step_of, b.step_of));
    CHECK(std::ranges::equal(a.slot_of, b.slot_of));
    CHECK(std::ranges::equal(a.stand_ins, b.stand_ins));
}

// Every built-in order the spec parser takes that fits grid g.
std::vector<std::string> orders_for(const ordo::grid_shape& g) {
    std::vector<std::string> out = ordo::builtin_policies(g);
    for (const char* s : {"par:4x4+nar", "par:1x1", "par:2x2x2", "par:2x2x2+nar", "par:2x4", "zipar:2", "zipar:3", "zipar:7"}) {
        try {
            (void)ordo::make_plan(ordo::parse_policy(s), g);
            if (std::find(out.begin(), out.end(), s) == out.end()) out.emplace_back(s);
        } catch (const ordo::error&) {  // regions that do not divide g, windows too wide
        }
    }
    return out;
}

std::string small_json(const char* policy = "nar", const char* grid = "2x2") {
    return ordo::plan_to_json(ordo::make_plan(ordo::parse_policy(policy), ordo::parse_grid(grid)), policy);
}

// The reader's verdict on a file edited by f (through nlohmann, which also writes it compactly).
template <class F>
std::string edited(F f, const char* policy = "nar", const char* grid = "2x2") {
    json j = json::parse(small_json(policy, grid));
    f(j);
    return j.dump();
}

}  // namespace

TEST_CASE("exchange: every built-in order survives plan -> JSON -> plan and JSON -> plan -> JSON", "[exchange]") {
    int checked = 0;
    for (const char* grid : {"1x1", "8x8", "6x9", "12x12", "2x4x4", "4x8x8"}) {
        const ordo::grid_shape g = ordo::parse_grid(grid);
        for (const std::string& spec : orders_for(g))
            for (const ordo::index_t prefix : {1, 3}) {
                INFO(spec << " on " << grid << ", prefix " << prefix);
                const ordo::plan p = ordo::make_plan(ordo::parse_policy(spec), g, prefix);
                const std::string text = ordo::plan_to_json(p, spec);
                const ordo::plan_document back = ordo::plan_from_json(text);
                CHECK(back.policy == spec);
                check_same_plan(p, back.plan);
                CHECK(ordo::plan_to_json(back.plan, back.policy) == text);
                // a reformatted file (another writer's spacing and key order) reads as the same plan
                const ordo::plan_document again = ordo::plan_from_json(json::parse(text).dump(2));
                CHECK(ordo::plan_to_json(again.plan, again.policy) == text);
                ++checked;
            }
    }
    CHECK(checked > 60);
}

TEST_CASE("exchange: the round trip covers transition tokens, stand-ins, three heads and absolute positions", "[exchange]") {
    // what the list above is meant to reach, so a change to builtin_policies cannot drop it silently
    const ordo::plan par = ordo::make_plan(ordo::par4, ordo::parse_grid("8x8"));
    const ordo::plan zipar = ordo::make_plan(ordo::next_set_wavefront{2}, ordo::parse_grid("6x9"));
    const ordo::plan video = ordo::make_plan(ordo::nar, ordo::parse_grid("4x8x8"));
    REQUIRE(par.header().num_transitions == 3);
    REQUIRE(zipar.header().num_stand_ins > 0);
    REQUIRE(video.header().num_heads == 3);
    REQUIRE(video.header().encoding == ordo::position_encoding::absolute);
    bool third = false;  // a weight 1/3, which no 6-decimal text reads back exactly
    for (const ordo::contribution& c : video.view().contribs) third |= c.weight == 1.0f / 3.0f;
    REQUIRE(third);
    for (const ordo::plan* p : {&par, &zipar, &video}) check_same_plan(*p, ordo::plan_from_json(ordo::plan_to_json(*p, "x")).plan);
}

TEST_CASE("exchange: the JSON grows linearly with the positions", "[exchange]") {
    // the mask is written as one step per slot; per-query ranges made NAR's file grow as N^1.5
    for (const char* spec : {"nar", "raster", "par:2x2+nar", "zipar:8"}) {
        const auto policy = ordo::parse_policy(spec);
        const double small = static_cast<double>(ordo::plan_to_json(ordo::make_plan(policy, ordo::grid_shape::make(32, 32)), spec).size());
        const double large = static_cast<double>(ordo::plan_to_json(ordo::make_plan(policy, ordo::grid_shape::make(64, 64)), spec).size());
        INFO(spec << ": " << small << " -> " << large << " bytes");
        CHECK(large / small < 4.6);  // 4x the positions, slightly longer numbers
        CHECK(large / small > 3.5);
    }
    const std::string nar128 = ordo::plan_to_json(ordo::make_plan(ordo::nar, ordo::grid_shape::make(128, 128)), "nar");
    CHECK(nar128.size() < 12u << 20);  // was 48 MB
}

TEST_CASE("exchange: a file cut at any byte is refused", "[exchange][errors]") {
    for (const auto& [policy, grid] : {std::pair{"nar", "2x2"}, std::pair{"zipar:2", "3x3"}, std::pair{"par:2x2", "4x4"}}) {
        const std::string text = small_json(policy, grid);
        INFO(policy << " on " << grid);
        for (std::size_t cut = 0; cut < text.size(); ++cut) {
            const std::string_view part(text.data(), cut);
            if (part.find_last_not_of(" \n") == text.find_last_not_of(" \n")) continue;  // only the trailing newline cut
            try {
                (void)ordo::plan_from_json(part);
                FAIL("a file cut at byte " << cut << " was read");
            } catch (const ordo::error& e) {
                CHECK(std::string(e.what()).rfind("ordo: plan JSON", 0) == 0);
            }
        }
    }
}

TEST_CASE("exchange: wrong types are refused by field", "[exchange][errors]") {
    const std::vector<std::pair<std::function<void(json&)>, std::string>> cases{
        {[](json& j) { j = json::array(); }, "the document: expected an object"},
        {[](json& j) { j["cls_token_num"] = "1"; }, "/cls_token_num: expected an integer in 1..1, got \"1\""},
        {[](json& j) { j["cls_token_num"] = 1.0; }, "/cls_token_num: expected an integer"},
        {[](json& j) { j["heads"] = "R"; }, "/heads: expected an array, got a string"},
        {[](json& j) { j["heads"][1] = 2; }, "/heads/1: expected a string, got a number"},
        {[](json& j) { j["grid"] = {2, 2, 2, 2}; }, "/grid: expected [H, W] or [T, H, W]"},
        {[](json& j) { j["mask_mode"] = "causal"; }, "/mask_mode: expected \"step_causal\" or \"slot_causal\", got \"causal\""},
        {[](json& j) { j["train"]["slots"] = json::object(); }, "/train/slots: expected an array, got an object"},
        {[](json& j) { j["train"]["slots"][1] = 1; }, "/train/slots/1: expected an object, got a number"},
        {[](json& j) { j["plan"]["steps"][1]["input_pos"][0] = 0.5; }, "/plan/steps/1/input_pos/0: expected an integer in 0..4, got 0.5"},
        {[](json& j) { j["plan"]["steps"][2]["sampled"][0]["from"][0]["weight"] = "0.5"; }, "/plan/steps/2/sampled/0/from/0/weight: expected a number"},
        {[](json& j) { j["plan"]["steps"][1]["sampled"][0]["grid"] = nullptr; }, "/plan/steps/1/sampled/0/grid: expected an array, got null"},
        {[](json& j) { j["train"]["rope_pos"][0] = json::array({0, 0}); }, "/train/rope_pos/0: the file has an array, the plan it describes has null"},
        {[](json& j) { j["policy"] = true; }, "/policy: expected a string, got a boolean"},
    };
    for (const auto& [edit, message] : cases) {
        INFO(message);
        CHECK_THROWS_WITH(ordo::plan_from_json(edited(edit)), Contains(message));
    }
}

TEST_CASE("exchange: out-of-range indices are refused before they are used", "[exchange][errors]") {
    const std::vector<std::pair<std::function<void(json&)>, std::string>> cases{
        {[](json& j) { j["plan"]["steps"][1]["input_pos"][0] = 99; }, "/plan/steps/1/input_pos/0: expected an integer in 0..4, got 99"},
        {[](json& j) { j["plan"]["steps"][1]["input_pos"][0] = -1; }, "in 0..4, got -1"},
        {[](json& j) { j["train"]["slots"][2]["raster_index"] = 4; }, "/train/slots/2/raster_index: expected an integer in 0..3, got 4"},
        {[](json& j) { j["train"]["slots"][2]["raster_index"] = 0; }, "the plan breaks a rule: policy gave position 0 two slots"},
        {[](json& j) { j["train"]["slots"][2]["slot"] = 7; }, "/train/slots/2/slot: expected an integer in 2..2, got 7"},
        {[](json& j) { j["plan"]["steps"][1]["sampled"][0]["grid"] = {2, 0}; }, "/plan/steps/1/sampled/0/grid/0: expected an integer in 0..1, got 2"},
        {[](json& j) { j["plan"]["steps"][1]["sampled"][0]["grid"] = {0, 0, 1}; }, "/plan/steps/1/sampled/0/grid: a grid cell of this 2x2 grid has 2 coordinates, got 3"},
        {[](json& j) { j["plan"]["steps"][1]["sampled"][0]["from"][0]["input_row"] = 5; }, "the plan breaks a rule: position 1 reads row 5 but step 1 feeds 1"},
        {[](json& j) { j["plan"]["steps"][1]["sampled"][0]["from"][0]["input_row"] = 70000; }, "input_row: expected an integer in 0..65535"},
        {[](json& j) { j["plan"]["steps"][1]["sampled"][0]["from"][0]["head"] = "X"; }, "/plan/steps/1/sampled/0/from/0/head: no head is named \"X\""},
        {[](json& j) { j["plan"]["steps"][1]["sampled"][0]["from"][0]["weight"] = 1.5; }, "weight: a weight lies in (0, 1], got 1.5"},
        {[](json& j) { j["plan"]["steps"][1]["sampled"][0]["from"][0]["weight"] = 1e300; }, "a weight lies in (0, 1]"},
        {[](json& j) { j["plan"]["steps"][1]["sampled"][0]["from"][0]["weight"] = 0.25; }, "contribution weights of position 1 do not sum to 1"},
        {[](json& j) { j["grid"] = {2, 0}; }, "/grid/1: expected an integer in 1..2147483647, got 0"},
        {[](json& j) { j["grid"] = {65536, 65536}; }, "grid 65536x65536 has more than 4194304 positions"},
        {[](json& j) { j["cls_token_num"] = 2000000000; }, "/cls_token_num: expected an integer in 1..1, got 2000000000"},
        {[](json& j) { j["heads"] = {"A", "B", "C", "D", "E"}; }, "/heads: a plan has 1 to 4 heads, got 5"},
        {[](json& j) { j["heads"] = {"R", "R"}; }, "/heads/1: head \"R\" is named twice"},
        {[](json& j) { j["heads"][0] = "eightchr"; }, "/heads/0: head names have at most 7 characters"},
    };
    for (const auto& [edit, message] : cases) {
        INFO(message);
        CHECK_THROWS_WITH(ordo::plan_from_json(edited(edit)), Contains(message));
    }
    // ZipAR's stand-in (zipar:2 on 3x3: step 5 starts row 2 with a copy of (0, 2), slot 3, written
    // into the slot of (1, 2), slot 6): what it copies, where it rotates, when and under which mask
    const std::vector<std::pair<std::function<void(json&)>, std::string>> stand_in_cases{
        {[](json& j) { j["plan"]["steps"][5]["fed"][1]["copy_of"]["slot"] = 99; }, "/plan/steps/5/fed/1/copy_of/slot: expected an integer in 0..9, got 99"},
        {[](json& j) { j["plan"]["steps"][5]["fed"][1]["copy_of"]["slot"] = 9; }, "step 5 feeds a stand-in that copies position 8 before it is emitted (step 7)"},
        {[](json& j) { j["plan"]["steps"][5]["fed"][1]["copy_of"]["slot"] = 2; }, "/plan/steps/5/fed/1/copy_of/grid/1: the file has 2, the plan it describes has 1"},
        {[](json& j) { j["plan"]["steps"][5]["fed"][1]["copy_of"]["grid"] = {0, 0}; }, "/plan/steps/5/fed/1/copy_of/grid/1: the file has 0, the plan it describes has 2"},
        {[](json& j) { j["plan"]["steps"][5]["fed"][1]["rope_grid"] = {0, 0}; }, "/plan/steps/5/fed/1/rope_grid/0: the file has 0, the plan it describes has 1"},
        {[](json& j) { j["plan"]["steps"][5]["fed"][1]["what"] = "token"; }, "step 5 feeds position 5 before it is emitted (step 5)"},
        {[](json& j) { j["plan"]["steps"][5]["fed"][0] = {{"slot", 5}, {"what", "stand_in"}, {"copy_of", {{"slot", 0}}}, {"rope_grid", {1, 1}}}; },
         "step 5 writes a stand-in into the slot of position 4, which step 4 emitted"},
        {[](json& j) { j["plan"]["steps"][7]["fed"][0] = {{"slot", 6}, {"what", "token"}, {"grid", {1, 2}}};
                       j["plan"]["steps"][7]["input_pos"][0] = 6; }, "slot 6 is fed twice (steps 6 and 7)"},
        {[](json& j) { j["plan"]["steps"][5]["fed"].erase(1); }, "/plan/steps/5/fed: the step feeds 2 slots (input_pos) but describes 1"},
        {[](json& j) { j["mask_mode"] = "step_causal"; }, "stand-ins need the slot_causal mask"},
    };
    for (const auto& [edit, message] : stand_in_cases) {
        INFO(message);
        CHECK_THROWS_WITH(ordo::plan_from_json(edited(edit, "zipar:2", "3x3")), Contains(message));
    }
}

TEST_CASE("exchange: inconsistent counts and fields are refused by field", "[exchange][errors]") {
    const std::vector<std::pair<std::function<void(json&)>, std::string>> cases{
        {[](json& j) { j["format"] = "ordo-plan/2"; }, "/format: this reader reads \"ordo-plan/3\" files, got \"ordo-plan/2\""},
        {[](json& j) { j["plan"]["num_forward_calls"] = 2; }, "/plan/num_forward_calls: the file has 2, the plan it describes has 3"},
        {[](json& j) { j["plan"]["kv_cache_len"] = 5; }, "/plan/kv_cache_len: the file has 5, the plan it describes has 8"},
        {[](json& j) { j["plan"]["num_slots"] = 4; }, "/plan/num_slots: the file has 4, the plan it describes has 5"},
        {[](json& j) { j["train"]["num_slots"] = 4; }, "/train/num_slots: the file has 4, the plan it describes has 5"},
        {[](json& j) { j["plan"]["slot_step"][3] = 1; }, "/plan/slot_step/3: the file has 1, the plan it describes has 2"},
        {[](json& j) { j["plan"]["slot_step"].push_back(3); }, "/plan/slot_step: the file has 6 entries, the plan it describes has 5"},
        {[](json& j) { j["params"]["N"] = 5; }, "/params/N: the file has 5, the plan it describes has 4"},
        {[](json& j) { j["train"]["logit_rows"].erase(3); }, "/train/logit_rows: the file has 3 entries, the plan it describes has 4"},
        {[](json& j) { j["train"]["logit_rows"][1]["from"][0]["slot"] = 2; }, "/train/logit_rows/1/from/0/slot: the file has 2, the plan it describes has 1"},
        {[](json& j) { j["train"]["rope_pos"][2] = {1, 1}; }, "/train/rope_pos/2/0: the file has 1, the plan it describes has 0"},
        {[](json& j) { j["plan"]["steps"][2]["fed"][0]["grid"] = {0, 0}; }, "/plan/steps/2/fed/0/grid/1: the file has 0, the plan it describes has 1"},
        {[](json& j) { j["plan"]["steps"][1]["call"] = 7; }, "/plan/steps/1/call: the file has 7, the plan it describes has 1"},
        {[](json& j) { j["plan"]["steps"][1]["sampled"][0]["from"][0]["slot"] = 0; }, "/plan/steps/1/sampled/0/from/0/slot: the file has 0, the plan it describes has 1"},
        {[](json& j) { j["plan"]["steps"][1]["sampled"][0]["from"][0]["weight"] = 0.99999999; }, ""},  // reads as 1.0f: the same plan
        {[](json& j) { j["grid"] = {2000, 2000}; }, "/grid: the 2000x2000 grid has 4000000 positions, but the file lays out 4 token slots"},
        {[](json& j) { j["plan"]["steps"] = json::array(); }, "the plan breaks a rule: policy produced no steps"},
        {[](json& j) { j["plan"]["steps"][2]["sampled"].push_back(j["plan"]["steps"][1]["sampled"][0]); }, "emitted position 1 twice"},
        {[](json& j) { j["plan"]["steps"].erase(2); }, "the plan breaks a rule: policy never emitted position 3"},
        {[](json& j) { j["plan"]["slots_after_train"].push_back({{"slot", 5}, {"what", "M"}, {"m_index", 1}}); }, "/params: missing field \"spe_token_num\""},
        {[](json& j) { j["extra"] = 1; }, "the document: field \"extra\" is not part of the format"},
        {[](json& j) { j.erase("position_encoding"); }, "the document: missing field \"position_encoding\""},
        {[](json& j) { j["train"].erase("rope_pos"); }, "/train: missing field \"rope_pos\""},
        {[](json& j) { j["position_encoding"] = "absolute"; }, "/train: field \"rope_pos\" is not part of the format"},
        {[](json& j) { j["teacher_forcing"] = "shifted"; }, "/train/num_slots: the file has 5, the plan it describes has 4"},
        {[](json& j) { j["teacher_forcing"] = "shifted";
                          j["plan"]["slots_after_train"].push_back({{"slot", 5}, {"what", "M"}, {"m_index", 1}}); }, "shifted teacher forcing needs the last slot to hold a token that is never fed"},
        {[](json& j) { j["mask_mode"] = "slot_causal"; }, ""},  // NAR's plan under the other mask mode is a valid plan too
    };
    for (const auto& [edit, message] : cases) {
        INFO(message);
        if (message.empty()) CHECK_NOTHROW(ordo::plan_from_json(edited(edit)));
        else CHECK_THROWS_WITH(ordo::plan_from_json(edited(edit)), Contains(message));
    }
    // a key twice (nlohmann cannot write that)
    std::string twice = small_json();
    twice.insert(1, "\"cls_token_num\": 1, ");
    CHECK_THROWS_WITH(ordo::plan_from_json(twice), Contains("the document: field \"cls_token_num\" appears twice"));
}

TEST_CASE("exchange: the reader's bounds: size, nesting, numbers, strings", "[exchange][errors]") {
    const std::string text = small_json();
    CHECK_THROWS_WITH(ordo::plan_from_json(text, 100), Contains("plan JSON: " + std::to_string(text.size()) + " bytes is more than the limit of 100 bytes"));
    CHECK_NOTHROW(ordo::plan_from_json(text, text.size()));
    // a deep value: refused at the depth limit, not by the stack
    std::string deep = text;
    deep.insert(1, "\"extra\": " + std::string(100000, '[') + std::string(100000, ']') + ", ");
    CHECK_THROWS_WITH(ordo::plan_from_json(deep), Contains("nesting deeper than 32 levels at line 1, column 42"));
    for (const auto& [bad, message] : std::vector<std::pair<std::string, std::string>>{
             {"{\"a\": 01}", "expected '}' or ',' in an object at line 1, column 8"},
             {"{\"a\": 1e999}", "number 1e999 is out of range"},
             {"{\"a\": -}", "a number needs digits"},
             {"{\"a\": 1.}", "a number needs digits after '.'"},
             {"{\"a\": nan}", "expected a value"},
             {"{\"a\": \"\\x\"}", "unknown escape '\\x' in a string"},
             {"{\"a\": \"\\ud800\"}", "a \\u escape holds a high surrogate without its low half"},
             {"{\"a\": \"\\udc00\"}", "a \\u escape holds a lone low surrogate"},
             {"{\"a\": \"\t\"}", "unescaped control character in a string"},
             {"{\"a\": 1} 2", "text after the document"},
             {"", "unexpected end, expected a value at line 1, column 1"},
             {"{\n\"a\": [1,\n", "unexpected end, expected a value at line 3, column 1"}}) {
        INFO(bad);
        CHECK_THROWS_WITH(ordo::plan_from_json(bad), Contains(message));
    }
}

TEST_CASE("exchange: strings are escaped on the way out and unescaped on the way in", "[exchange]") {
    const ordo::plan p = ordo::make_plan(ordo::nar, ordo::parse_grid("2x2"));
    const std::string spec = "my \"order\"\\\n\t\x01 \xc3\xa9";
    const std::string text = ordo::plan_to_json(p, spec);
    CHECK(json::parse(text)["policy"] == spec);  // valid JSON that another reader agrees with
    CHECK(ordo::plan_from_json(text).policy == spec);
    // \u escapes, surrogate pairs included, read as UTF-8
    json j = json::parse(text);
    std::string escaped = text;
    const std::size_t at = escaped.find("\"policy\": \"") + 11;
    escaped.replace(at, escaped.find("\", \"grid\"") - at, "\\u00e9\\ud83d\\ude00\\/");
    CHECK(ordo::plan_from_json(escaped).policy == "\xc3\xa9\xf0\x9f\x98\x80/");
}
