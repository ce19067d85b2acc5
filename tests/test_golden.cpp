// The plans ordo builds equal, field for field, what the official LlamaGen / PAR / NAR / ZipAR
// code did (tests/data/golden/structure, produced by running the official code; see its READMEs).
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <ordo/ordo.hpp>
#include <ordo/engine/guidance.hpp>

using nlohmann::json;

namespace {

json load(const std::string& name) {
    std::ifstream f(std::string(ORDO_TEST_DATA) + "/golden/structure/" + name);
    REQUIRE(f.good());
    return json::parse(f);
}

// First difference between two JSON values, as a path (empty when equal).
std::string diff(const json& a, const json& b, const std::string& path = "") {
    if (a.type() != b.type() && !(a.is_number() && b.is_number())) return path + ": type " + a.type_name() + " vs " + b.type_name();
    if (a.is_object()) {
        for (auto it = b.begin(); it != b.end(); ++it)
            if (!a.contains(it.key())) return path + "/" + it.key() + ": missing in ordo's plan";
        for (auto it = a.begin(); it != a.end(); ++it) {
            if (!b.contains(it.key())) return path + "/" + it.key() + ": not in the reference";
            if (auto d = diff(it.value(), b[it.key()], path + "/" + it.key()); !d.empty()) return d;
        }
        return "";
    }
    if (a.is_array()) {
        if (a.size() != b.size()) return path + ": length " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
        for (std::size_t i = 0; i < a.size(); ++i)
            if (auto d = diff(a[i], b[i], path + "/" + std::to_string(i)); !d.empty()) return d;
        return "";
    }
    if (a.is_number_float() || b.is_number_float()) {  // weights: ordo writes floats exactly, the reference to 6 decimals
        const double d = std::fabs(a.get<double>() - b.get<double>());
        if (!(d <= 1e-6)) return path + ": " + a.dump() + " vs " + b.dump();
        return "";
    }
    if (a != b) return path + ": " + a.dump() + " vs " + b.dump();
    return "";
}

// ordo's file in the reference's form: the masks the reference lists as ranges (train.mask_ranges,
// steps[k].visible) expanded from the slot steps ordo writes instead, by the rule docs/plan-format.md
// states; the fields the reference does not have dropped.
json reference_form(json ours) {
    json& pl = ours["plan"];
    const std::vector<int> step = pl["slot_step"];
    const int slots = pl["num_slots"], prefix = ours["cls_token_num"];
    const bool slot_causal = ours["mask_mode"] == "slot_causal";
    auto visible = [&](int q, int kv) {
        if (kv >= slots) return false;
        if (q < prefix) return kv <= q;
        if (slot_causal) return kv <= q;
        return step[static_cast<std::size_t>(kv)] <= step[static_cast<std::size_t>(q)];
    };
    auto ranges = [&](int q, int len) {
        json out = json::array();
        for (int kv = 0; kv < len; ++kv) {
            if (!visible(q, kv)) continue;
            int end = kv + 1;
            while (end < len && visible(q, end)) ++end;
            out.push_back({kv, end});
            kv = end;
        }
        return out;
    };
    const int train_slots = ours["train"]["num_slots"], kv_len = pl["kv_cache_len"];
    json mask = json::array();
    for (int q = 0; q < train_slots; ++q) mask.push_back(ranges(q, train_slots));
    ours["train"]["mask_ranges"] = mask;
    for (json& st : pl["steps"]) {
        json vis = json::array();
        for (const int q : st["input_pos"]) vis.push_back(ranges(q, kv_len));
        st["visible"] = vis;
    }
    for (const char* k : {"num_slots", "slot_step", "slots_after_train"}) pl.erase(k);
    return ours;
}

// ZipAR's structure files also describe each call from the cache's side, all of it a function of
// the plan (README-zipar.md): per fed row its raster index, whether its logits are read, its RoPE
// row, the visible slots never written (K = V = 0) and those holding a stand-in, when a stand-in
// is overwritten; per call the slots written after it; per cell the call that emits it. Derived
// here from ordo's file (slot_step is the first write of each slot) by those definitions.
json zipar_reference_form(const json& written) {
    const std::vector<int> step = written["plan"]["slot_step"];
    const int kv_len = written["plan"]["kv_cache_len"], width = written["grid"][1];
    json ours = reference_form(written);
    json& pl = ours["plan"];
    std::map<int, int> own;                    // slot -> the call that feeds its own content
    std::map<int, std::vector<int>> stand_in;  // slot -> calls that write a stand-in there
    for (const json& st : pl["steps"])
        for (const json& f : st["fed"]) {
            if (f["what"] == "stand_in") stand_in[f["slot"]].push_back(st["call"]);
            else if (!own.contains(f["slot"])) own[f["slot"]] = st["call"];
        }
    auto ranges = [&](auto pred) {
        json out = json::array();
        for (int kv = 0; kv < kv_len; ++kv) {
            if (!pred(kv)) continue;
            int end = kv + 1;
            while (end < kv_len && pred(end)) ++end;
            out.push_back({kv, end});
            kv = end;
        }
        return out;
    };
    auto raster = [&](const json& cell) { return cell[0].get<int>() * width + cell[1].get<int>(); };
    json step_of_grid = json::array();
    for (int r = 0; r < written["grid"][0].get<int>(); ++r) step_of_grid.push_back(json::array());
    for (auto& row : step_of_grid) row = std::vector<int>(static_cast<std::size_t>(width), -1);
    for (json& st : pl["steps"]) {
        const int k = st["call"];
        std::set<int> used;
        for (json& smp : st["sampled"]) {
            for (const json& f : smp["from"]) used.insert(f["input_row"].get<int>());
            smp["raster_index"] = raster(smp["grid"]);
            step_of_grid[smp["grid"][0].get<int>()][smp["grid"][1].get<int>()] = k;
        }
        json rope = json::array(), unwritten = json::array(), held = json::array();
        for (std::size_t j = 0; j < st["fed"].size(); ++j) {
            json& f = st["fed"][j];
            const int q = f["slot"];
            f["logits_used"] = used.contains(static_cast<int>(j));
            if (f["what"] == "token") {
                f["raster_index"] = raster(f["grid"]);
                rope.push_back(f["grid"]);
            } else if (f["what"] == "stand_in") {
                f["copy_of"]["raster_index"] = raster(f["copy_of"]["grid"]);
                f["overwritten_at_call"] = own.at(q);
                rope.push_back(f["rope_grid"]);
            } else {
                rope.push_back(nullptr);
            }
            unwritten.push_back(ranges([&](int kv) { return kv <= q && step[static_cast<std::size_t>(kv)] > k; }));
            json slots = json::array();
            for (int kv = 0; kv <= q; ++kv) {
                const auto it = stand_in.find(kv);
                const bool written_before = it != stand_in.end() && std::any_of(it->second.begin(), it->second.end(), [&](int c) { return c <= k; });
                if (written_before && (!own.contains(kv) || own.at(kv) > k)) slots.push_back(kv);
            }
            held.push_back(slots);
        }
        st["rope_pos"] = rope;
        st["visible_unwritten"] = unwritten;
        st["visible_stand_in"] = held;
        st["kv_written_after"] = ranges([&](int kv) { return kv < static_cast<int>(step.size()) && step[static_cast<std::size_t>(kv)] <= k; });
    }
    pl["step_of_grid"] = step_of_grid;
    return ours;
}

// A ZipAR structure case: the official file without the fields that only describe the script
// (its phase names, the step-count formula as text; ZipAR trains as raster: no train section).
json load_zipar(const std::string& file) {
    json ref = load(file);
    ref["plan"].erase("num_forward_calls_formula");
    for (auto& st : ref["plan"]["steps"]) st.erase("phase");
    return ref;
}
void check_zipar_case(const std::string& file, const json& written) {
    INFO(file);
    const json ref = load_zipar(file);
    const json ours = zipar_reference_form(written);
    CHECK(ours["cls_token_num"] == ref["cls_token_num"]);
    CHECK(ours["heads"] == ref["heads"]);
    CHECK(ours["params"]["N"] == ref["params"]["N"]);
    CHECK(written["plan"]["num_forward_calls"] == ref["plan"]["num_forward_calls"]);
    CHECK(diff(ours["plan"], ref["plan"], "/plan") == "");
}
const std::array<std::array<std::string, 3>, 3> kZiparCases{{
    {"zipar_G8_w3.json", "zipar:3", "8x8"}, {"zipar_G12_w3.json", "zipar:3", "12x12"}, {"zipar_G16_w5.json", "zipar:5", "16x16"}}};

void check_case(const std::string& file, const std::string& policy, const std::string& grid) {
    INFO(file << " with ordo plan --policy " << policy << " --grid " << grid);
    json ref = load(file);
    const ordo::any_policy p = ordo::parse_policy(policy);
    const ordo::plan pl = ordo::make_plan(p, ordo::parse_grid(grid), ref["cls_token_num"].get<int>());
    json ours = reference_form(json::parse(ordo::plan_to_json(pl, ordo::spec_of(p))));

    // fields that only describe the official script, not the plan
    ref["train"].erase("mask_note");
    for (auto& s : ref["plan"]["steps"]) s.erase("idx_arg_grid");

    CHECK(ours["cls_token_num"] == ref["cls_token_num"]);
    // heads: a list, or (video) an object keyed by head name
    json ref_heads = json::array();
    if (ref["heads"].is_object()) for (auto it = ref["heads"].begin(); it != ref["heads"].end(); ++it) ref_heads.push_back(it.key());
    else ref_heads = ref["heads"];
    std::vector<std::string> a = ours["heads"], b = ref_heads;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    CHECK(a == b);
    CHECK(diff(ours["train"], ref["train"], "/train") == "");
    CHECK(diff(ours["plan"], ref["plan"], "/plan") == "");
    if (ref.contains("grid_of_seq_index")) {  // PAR: the generation order
        json order = json::array();
        for (ordo::index_t pos : pl.view().order) {
            const ordo::coord c = pl.view().grid().at(pos);
            order.push_back({c.h, c.w});
        }
        CHECK(diff(order, ref["grid_of_seq_index"], "/grid_of_seq_index") == "");
    }
}

}  // namespace

TEST_CASE("golden: LlamaGen raster 8x8", "[golden]") { check_case("raster_G8.json", "raster", "8x8"); }
TEST_CASE("golden: PAR 16x16, 4 regions", "[golden]") { check_case("par_G16_n4.json", "par:2x2", "16x16"); }
TEST_CASE("golden: PAR 24x24, 16 regions", "[golden]") { check_case("par_G24_n16.json", "par:4x4", "24x24"); }
TEST_CASE("golden: NAR images 16x16", "[golden]") { check_case("nar_img_G16.json", "nar", "16x16"); }
TEST_CASE("golden: NAR video 4x8x8", "[golden]") { check_case("nar_vid_T4H8W8.json", "nar", "4x8x8"); }
TEST_CASE("golden: ZipAR as released, 8x8 w3, 12x12 w3, 16x16 w5", "[golden]") {
    for (const auto& [file, policy, grid] : kZiparCases) {
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(policy), ordo::parse_grid(grid));
        check_zipar_case(file, json::parse(ordo::plan_to_json(p, policy)));
    }
}

TEST_CASE("golden: the ZipAR comparison notices the differences the issue found", "[golden]") {
    const auto& [file, policy, grid] = kZiparCases[0];
    const json ref = load_zipar(file);
    const json written = json::parse(ordo::plan_to_json(ordo::make_plan(ordo::parse_policy(policy), ordo::parse_grid(grid)), policy));
    REQUIRE(diff(zipar_reference_form(written)["plan"], ref["plan"]) == "");
    // a stand-in that copied another token, or a slot written at another call, shows
    json moved = written;
    moved["plan"]["steps"][11]["fed"][1]["copy_of"] = {{"slot", 7}, {"grid", {0, 6}}};
    CHECK(diff(zipar_reference_form(moved)["plan"], ref["plan"]) != "");
    moved = written;
    moved["plan"]["slot_step"][15] = 9;  // what a mask hiding nothing unwritten would need to match
    CHECK(diff(zipar_reference_form(moved)["plan"], ref["plan"]) != "");
    // another window
    const json w2 = json::parse(ordo::plan_to_json(ordo::make_plan(ordo::parse_policy("zipar:2"), ordo::parse_grid(grid)), "zipar:2"));
    CHECK(diff(zipar_reference_form(w2)["plan"], ref["plan"]) != "");
}

TEST_CASE("golden: the comparison notices a different order", "[golden]") {
    json ref = load("par_G16_n4.json");
    const ordo::plan pl = ordo::make_plan(ordo::parse_policy("par:2x2+nar"), ordo::parse_grid("16x16"));
    ref["train"].erase("mask_note");
    for (auto& s : ref["plan"]["steps"]) s.erase("idx_arg_grid");
    json ours = reference_form(json::parse(ordo::plan_to_json(pl, "par:2x2+nar")));
    CHECK(diff(ours["plan"], ref["plan"]) != "");
    const ordo::plan raster = ordo::make_plan(ordo::raster{}, ordo::parse_grid("16x16"));
    CHECK(diff(reference_form(json::parse(ordo::plan_to_json(raster, "raster")))["train"], ref["train"]) != "");
    // the expanded masks are checked: one slot step moved changes a mask range
    json moved = json::parse(ordo::plan_to_json(ordo::make_plan(ordo::par4, ordo::parse_grid("16x16")), "par:2x2"));
    CHECK(diff(reference_form(moved)["train"], ref["train"]) == "");
    moved["plan"]["slot_step"][5] = moved["plan"]["slot_step"][5].get<int>() + 1;
    CHECK(diff(reference_form(moved)["train"]["mask_ranges"], ref["train"]["mask_ranges"]) != "");
}

#ifdef ORDO_CLI
#include <cstdio>
#include <memory>
// What `ordo plan --format json` prints for a policy and grid.
json cli_plan(const std::string& policy, const std::string& grid) {
    const std::string cmd = std::string(ORDO_CLI) + " plan --format json --policy " + policy + " --grid " + grid;
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
    REQUIRE(pipe);
    std::string out;
    char buf[65536];
    for (std::size_t n; (n = fread(buf, 1, sizeof buf, pipe.get())) > 0;) out.append(buf, n);
    return json::parse(out);
}

// `ordo plan` itself prints what the golden files hold.
TEST_CASE("golden: the ordo CLI prints the reference plans", "[golden][cli]") {
    for (const auto& [file, policy, grid] : std::vector<std::array<std::string, 3>>{
             {"raster_G8.json", "raster", "8x8"}, {"par_G16_n4.json", "par:2x2", "16x16"}, {"par_G24_n16.json", "par:4x4", "24x24"},
             {"nar_img_G16.json", "nar", "16x16"}, {"nar_vid_T4H8W8.json", "nar", "4x8x8"}}) {
        INFO(file);
        json ours = reference_form(cli_plan(policy, grid)), ref = load(file);
        ref["train"].erase("mask_note");
        for (auto& s : ref["plan"]["steps"]) s.erase("idx_arg_grid");
        CHECK(diff(ours["train"], ref["train"], "/train") == "");
        CHECK(diff(ours["plan"], ref["plan"], "/plan") == "");
    }
    for (const auto& [file, policy, grid] : kZiparCases) check_zipar_case(file, cli_plan(policy, grid));
}
#endif

// --- LPD (README-lpd-randar-arpg.md): each call's fed rows with their pos_embed rows, what is
// sampled from which row, every row's visible slots, the slots written and overwritten next call,
// and the linear CFG scale of each sampled row. Derived from ordo's plan file by those definitions
// (visibility: the step-causal rule over slot_step, the first write of each slot).
namespace {
json lpd_reference_form(const json& written, int label, float cfg_scale) {
    json ours = reference_form(written);  // adds each step's "visible"
    json& pl = ours["plan"];
    const int width = written["grid"][1], n = written["params"]["N"];
    auto raster = [&](const json& cell) { return cell[0].get<int>() * width + cell[1].get<int>(); };
    std::map<int, int> call_of;  // raster index -> the call that samples it
    for (const json& st : pl["steps"])
        for (const json& smp : st["sampled"]) call_of[raster(smp["grid"])] = st["call"];
    const ordo::cfg guidance{cfg_scale, -1, {}, ordo::cfg_ramp::linear_in_rank};
    int rank = 0;
    json& steps = pl["steps"];
    for (std::size_t k = 0; k < steps.size(); ++k) {
        json& st = steps[k];
        json uncond = json::array(), overwritten = json::array();
        int kv_len = 0;
        for (json& f : st["fed"]) {
            kv_len = std::max(kv_len, f["slot"].get<int>() + 1);
            if (f["what"] == "cls") {
                f["label"] = label;
                f["pos_embed_row"] = 0;
                json u = f;
                u["label"] = "fake_latent";
                uncond.push_back(u);
            } else if (f["what"] == "token") {
                f["raster_index"] = raster(f["grid"]);
                f["produced_by_call"] = call_of.at(raster(f["grid"]));
                f["pos_embed_row"] = 1 + raster(f["grid"]);
            } else if (f["what"] == "query") {
                f["target_raster_index"] = raster(f["target_grid"]);
                f["pos_embed_row"] = 1 + raster(f["target_grid"]);
                if (k + 1 < steps.size())
                    for (const json& g : steps[k + 1]["fed"])
                        if (g["slot"] == f["slot"]) overwritten.push_back(f["slot"]);
            }
        }
        json scales = json::array();
        for (json& smp : st["sampled"]) {
            smp["raster_index"] = raster(smp["grid"]);
            ++rank;
        }
        for (int r = rank - static_cast<int>(st["sampled"].size()); r < rank; ++r)
            scales.push_back(guidance.scale_at({static_cast<ordo::index_t>(k), r, rank - static_cast<int>(st["sampled"].size()), rank, n}));
        st["fed_uncond_differs"] = uncond;
        st["attended_kv_len"] = kv_len;
        st["kv_written_slots"] = st["input_pos"];
        st["kv_slots_overwritten_next_call"] = overwritten;
        st["cfg_scale_per_sampled_row_linear"] = scales;
    }
    return ours;
}

struct lpd_case {
    std::string file, policy, grid;
};
const std::vector<lpd_case> kLpdCases{{"lpd_G16_s20_seed0.json", "lpd:20", "16x16"},
                                      {"lpd_G16_s32_seed0.json", "lpd:steps=32,repulsion=2,seed=0", "16x16"},
                                      {"lpd_G12_s13custom_seed0.json", "lpd:sizes=1+2+4+6+8+10+12+14+16+18+20+18+15", "12x12"}};

void check_lpd_case(const lpd_case& c, const json& written) {
    INFO(c.file);
    const json ref = load(c.file);
    const json ours = lpd_reference_form(written, 3, ref["params"]["cfg_for_probe"].get<float>());
    CHECK(ours["cls_token_num"] == ref["cls_token_num"]);
    CHECK(ours["heads"] == ref["heads"]);
    CHECK(ours["position_encoding"] == "cell_table");
    CHECK(written["plan"]["num_forward_calls"] == ref["plan"]["num_forward_calls"]);
    // the official cache has N + 1 rows; ordo's is padded to a multiple of 8 (never visible)
    CHECK(written["plan"]["num_slots"] == ref["plan"]["kv_cache_len"]);
    CHECK(diff(ours["plan"]["steps"], ref["plan"]["steps"], "/plan/steps") == "");
    // the order and its groups, as the official generator made them
    std::vector<int> order;
    for (const json& st : ours["plan"]["steps"])
        for (const json& smp : st["sampled"]) order.push_back(smp["raster_index"]);
    CHECK(json(order) == ref["order"]);
    for (std::size_t k = 0; k < ref["order_steps"].size(); ++k)
        CHECK(ours["plan"]["steps"][k]["sampled"].size() == ref["order_steps"][k]["group_size"].get<std::size_t>());
}
}  // namespace

TEST_CASE("golden: LPD 16x16 in 20 and 32 steps, 12x12 with a custom schedule", "[golden][lpd]") {
    for (const lpd_case& c : kLpdCases) {
        const ordo::plan p = ordo::make_plan(ordo::parse_policy(c.policy), ordo::parse_grid(c.grid));
        check_lpd_case(c, json::parse(ordo::plan_to_json(p, c.policy)));
    }
}

TEST_CASE("golden: the LPD comparison notices a causal group, a different seed or schedule", "[golden][lpd]") {
    const lpd_case c = kLpdCases[0];
    const json ref = load(c.file);
    const ordo::plan p = ordo::make_plan(ordo::parse_policy(c.policy), ordo::parse_grid(c.grid));
    const json written = json::parse(ordo::plan_to_json(p, c.policy));
    REQUIRE(diff(lpd_reference_form(written, 3, 4.0f)["plan"]["steps"], ref["plan"]["steps"]) == "");
    json moved = written;  // a slot dated one step later: its group's queries no longer see it
    moved["plan"]["slot_step"][20] = moved["plan"]["slot_step"][20].get<int>() + 1;
    CHECK(diff(lpd_reference_form(moved, 3, 4.0f)["plan"]["steps"], ref["plan"]["steps"]) != "");
    for (const std::string other : {"lpd:steps=20,seed=1", "lpd:steps=20,repulsion=3,seed=0", "lpd:32"}) {
        const ordo::plan q = ordo::make_plan(ordo::parse_policy(other), ordo::parse_grid(c.grid));
        CHECK(diff(lpd_reference_form(json::parse(ordo::plan_to_json(q, other)), 3, 4.0f)["plan"]["steps"], ref["plan"]["steps"]) != "");
    }
    CHECK(diff(lpd_reference_form(written, 3, 5.0f)["plan"]["steps"], ref["plan"]["steps"]) != "");  // another CFG scale
}

#ifdef ORDO_CLI
TEST_CASE("golden: the ordo CLI prints the reference LPD plans", "[golden][lpd][cli]") {
    for (const lpd_case& c : kLpdCases) check_lpd_case(c, cli_plan(c.policy, c.grid));
}
#endif

// The guidance ramps against the per-call scales the official RandAR and ARPG generate() used
// (structure files: queries per call, cfg_scale per call); LPD's per-token ramp is checked with
// its plans above.
TEST_CASE("golden: the guidance ramps give RandAR's and ARPG's per-call CFG scales", "[golden][guidance]") {
    struct ramp_case {
        const char* file;
        ordo::cfg guidance;
    };
    for (const ramp_case& c : {ramp_case{"randar_G16_s88_seed0.json", {4.0f, -1, {}, ordo::cfg_ramp::linear_in_step_start, 1.0f}},
                               ramp_case{"arpg_G16_s64_seed0.json", {4.0f, -1, {}, ordo::cfg_ramp::linear_in_step_end, 1.0f}}}) {
        INFO(c.file);
        const json ref = load(c.file);
        const int n = ref["params"]["N"];
        int first = 0, calls = 0;
        for (const json& st : ref["plan"]["steps"]) {
            const int k = st["call"], m = st["num_queries"];
            const float want = st["cfg_scale"].get<float>();
            for (int r = first; r < first + m; ++r) CHECK(c.guidance.scale_at({k, r, first, first + m, n}) == want);
            first += m;
            ++calls;
        }
        CHECK(first == n);
        CHECK(calls == static_cast<int>(ref["plan"]["steps"].size()));
        // the other definition of "decoded so far" gives other scales
        ordo::cfg other = c.guidance;
        other.ramp = c.guidance.ramp == ordo::cfg_ramp::linear_in_step_start ? ordo::cfg_ramp::linear_in_step_end : ordo::cfg_ramp::linear_in_step_start;
        const json& st = ref["plan"]["steps"][40];
        CHECK(other.scale_at({40, 100, 100, 100 + st["num_queries"].get<int>(), n}) != c.guidance.scale_at({40, 100, 100, 100 + st["num_queries"].get<int>(), n}));
    }
    // RandAR's start: cfg_scales (2, 5) ramps from 2; a ramp refuses a per-step schedule
    const ordo::cfg from_two{5.0f, -1, {}, ordo::cfg_ramp::linear_in_step_start, 2.0f};
    CHECK(from_two.scale_at({0, 0, 0, 1, 256}) == 2.0f);
    CHECK(from_two.scale_at({9, 128, 128, 130, 256}) == 3.5f);
    const float sched[] = {2.0f};
    const ordo::cfg both{4.0f, -1, sched, ordo::cfg_ramp::linear_in_rank};
    CHECK_THROWS_WITH(both.scale_at({0, 0, 0, 1, 4}), Catch::Contains("a ramp takes no per-step schedule"));
    CHECK_THROWS_WITH(from_two.scale_at({0, 5, 0, 2, 4}), Catch::Contains("emission rank 5"));
    // a ramp guides with any scale but 1, below 1 too (LPD: "CFG on iff cfg != 1"); flat at 1 it is off
    const ordo::cfg below{0.5f, -1, {}, ordo::cfg_ramp::linear_in_rank};
    CHECK(below.active());
    CHECK(below.scale_at({3, 128, 128, 130, 256}) == 0.75f);
    CHECK(!ordo::cfg{1.0f, -1, {}, ordo::cfg_ramp::linear_in_step_end}.active());
    CHECK(!ordo::cfg{0.5f}.active());  // LlamaGen's rule: at a scale <= 1 the uncond branch never runs
}

// --- RandAR and ARPG (README-lpd-randar-arpg.md), given the golden order (the official orders
// come from torch's RNG, which ordo does not reproduce). Every per-call field is derived from
// ordo's plan file by its definition, as for LPD.
namespace {
int raster_of(const json& written, const json& cell) { return cell[0].get<int>() * written["grid"][1].get<int>() + cell[1].get<int>(); }

// fed rows, sampled cells and slots written: RandAR's form
json randar_reference_form(const json& written, int label) {
    json ours = reference_form(written);  // each step's "visible", the training mask
    json& pl = ours["plan"];
    const int n = written["params"]["N"];
    std::map<int, int> call_of;
    for (const json& st : pl["steps"])
        for (const json& smp : st["sampled"]) call_of[raster_of(written, smp["grid"])] = st["call"];
    const ordo::cfg guidance{4.0f, -1, {}, ordo::cfg_ramp::linear_in_step_start, 1.0f};
    auto fed_form = [&](json& f) {
        if (f["what"] == "cls") {
            f["label"] = label;
            f["rope_pos"] = nullptr;
        } else if (f["what"] == "token") {
            f["raster_index"] = raster_of(written, f["grid"]);
            f["rope_pos"] = f["grid"];
        } else if (f["what"] == "query") {
            f["what"] = "pos_instruction";
            f["target_raster_index"] = raster_of(written, f["target_grid"]);
        }
    };
    json& steps = pl["steps"];
    int first = 0;
    for (std::size_t k = 0; k < steps.size(); ++k) {
        json& st = steps[k];
        json uncond = json::array(), refed = json::array(), overwritten = json::array();
        int kv_len = 0;
        for (json& f : st["fed"]) {
            kv_len = std::max(kv_len, f["slot"].get<int>() + 1);
            fed_form(f);
            if (f["what"] == "cls") {
                json u = f;
                u["label"] = 10;
                uncond.push_back(u);
            } else if (f["what"] == "token") {
                f["produced_by_call"] = call_of.at(f["raster_index"].get<int>());
            } else {
                f["rope_pos"] = f["target_grid"];
                if (call_of.at(f["target_raster_index"].get<int>()) < static_cast<int>(k)) refed.push_back(f["slot"]);
            }
        }
        if (k + 1 < steps.size())
            for (const json& q : st["input_pos"])
                for (const json& next : steps[k + 1]["input_pos"])
                    if (q == next) overwritten.push_back(q);
        for (json& smp : st["sampled"]) smp["raster_index"] = raster_of(written, smp["grid"]);
        const int m = static_cast<int>(st["sampled"].size());
        st["fed_uncond_differs"] = uncond;
        st["num_queries"] = m;
        st["attended_kv_len"] = kv_len;
        st["kv_written_slots"] = st["input_pos"];
        st["refed_pos_instruction_slots"] = refed;
        st["kv_slots_overwritten_next_call"] = overwritten;
        st["cfg_scale"] = guidance.scale_at({static_cast<ordo::index_t>(k), first, first, first + m, n});
        first += m;
    }
    json& tr = ours["train"];
    for (json& f : tr["slots"]) {
        fed_form(f);
        f.erase("rope_pos");
    }
    for (json& row : tr["logit_rows"]) row["target_raster_index"] = raster_of(written, row["target_grid"]);
    return ours;
}

// ARPG's form: the self-decoder's rows (kv_slot), the call's [MASK] queries apart
json arpg_reference_form(const json& written, int label) {
    json ours = json::object();
    json steps = json::array();
    std::map<int, int> call_of;
    for (const json& st : written["plan"]["steps"])
        for (const json& smp : st["sampled"]) call_of[raster_of(written, smp["grid"])] = st["call"];
    const ordo::cfg guidance{4.0f, -1, {}, ordo::cfg_ramp::linear_in_step_end, 1.0f};
    const int n = written["params"]["N"];
    int kv = 0, first = 0;
    for (const json& st : written["plan"]["steps"]) {
        const int k = st["call"];
        json fed = json::array(), uncond = json::array(), queries = json::array(), appended = json::array();
        int tokens = 0;
        for (const json& f : st["fed"]) {
            if (f["what"] == "query") {
                const int q = static_cast<int>(queries.size());
                queries.push_back({{"query", q}, {"what", "mask_token"}, {"rope_pos", f["target_grid"]}, {"target_grid", f["target_grid"]},
                                   {"target_raster_index", raster_of(written, f["target_grid"])}});
                continue;
            }
            ++tokens;
            appended.push_back(f["slot"]);
            json g{{"kv_slot", f["slot"]}, {"what", f["what"]}};
            if (f["what"] == "cls") {
                g["label"] = label;
                g["rope_pos"] = nullptr;
                json u = g;
                u["label"] = "none_conds_id (null class)";
                uncond.push_back(u);
            } else {
                g["grid"] = f["grid"];
                g["raster_index"] = raster_of(written, f["grid"]);
                g["produced_by_call"] = call_of.at(raster_of(written, f["grid"]));
                g["rope_pos"] = f["grid"];
            }
            fed.push_back(g);
        }
        kv += tokens;
        // the self rows see the cache and their whole group (step-causal over slot_step); the
        // queries everything written through the call
        const std::vector<int> slot_step = written["plan"]["slot_step"];
        json self_visible = json::array();
        for (const json& f : fed) {
            const int q = f["kv_slot"];
            int end = 0;
            while (end < static_cast<int>(slot_step.size()) && slot_step[static_cast<std::size_t>(end)] <= slot_step[static_cast<std::size_t>(q)]) ++end;
            self_visible.push_back(json::array({json::array({0, q == 0 ? 1 : end})}));
        }
        json sampled = json::array();
        const int rows_before = tokens;
        for (const json& smp : st["sampled"]) {
            json s{{"grid", smp["grid"]}, {"raster_index", raster_of(written, smp["grid"])}, {"from", json::array()}};
            for (const json& c : smp["from"]) s["from"].push_back({{"query", c["input_row"].get<int>() - rows_before}, {"head", c["head"]}, {"weight", c["weight"]}});
            sampled.push_back(s);
        }
        const int m = static_cast<int>(queries.size());
        json step{{"call", k},
                  {"kv_slots_appended", appended},
                  {"fed", fed},
                  {"fed_uncond_differs", uncond},
                  {"self_visible", self_visible},
                  {"num_queries", m},
                  {"queries", queries},
                  {"query_visible_shared_kv", json::array({json::array({0, kv})})},
                  {"sampled", sampled},
                  {"kv_len_after_call", kv},
                  {"cfg_scale", guidance.scale_at({k, first, first, first + m, n})},
                  {"sdpa_calls", json::array({json{{"q_len", tokens}, {"k_len", kv}, {"attn_mask_is_none", true}, {"is_causal", false}},
                                              json{{"q_len", m}, {"k_len", kv}, {"attn_mask_is_none", true}, {"is_causal", false}}})}};
        steps.push_back(step);
        first += m;
    }
    ours["steps"] = steps;
    return ours;
}

std::string order_file(const json& order) {
    const std::string path = std::string(std::filesystem::temp_directory_path() / ("ordo_order_" + std::to_string(order.size()) + "_" +
                                                                                   std::to_string(order[0].get<int>()) + ".json"));
    std::ofstream(path) << order.dump();
    return path;
}
}  // namespace

TEST_CASE("golden: RandAR 16x16 in 88 calls, given the official order", "[golden][randar]") {
    const json ref = load("randar_G16_s88_seed0.json");
    ordo::interleaved_queries pol{88, 0, ref["order"].get<std::vector<ordo::index_t>>()};
    const ordo::plan p = ordo::make_plan(pol, ordo::grid_shape::make(16, 16));
    const json written = json::parse(ordo::plan_to_json(p, pol.spec()));
    CHECK(written["plan"]["num_forward_calls"] == ref["plan"]["num_forward_calls"]);
    CHECK((written["plan"]["num_slots"].get<int>() + 7) / 8 * 8 == ref["plan"]["kv_cache_len"].get<int>());  // find_multiple(1 + 2N, 8)
    const json ours = randar_reference_form(written, 3);
    CHECK(diff(ours["plan"]["steps"], ref["plan"]["steps"], "/plan/steps") == "");
    // the training layout (the official train order is the same permutation here)
    REQUIRE(ref["train_order"] == ref["order"]);
    json ref_train = ref["train"];
    ref_train.erase("mask_note");
    CHECK(diff(ours["train"], ref_train, "/train") == "");
    // the comparison notices a query that does not see the earlier queries of its call
    json moved = written;
    moved["plan"]["steps"][30]["fed"][2]["slot"] = moved["plan"]["steps"][30]["fed"][2]["slot"].get<int>() + 1;
    CHECK(diff(randar_reference_form(moved, 3)["plan"]["steps"], ref["plan"]["steps"]) != "");
#ifdef ORDO_CLI
    const json cli = cli_plan("randar:88 --order " + order_file(ref["order"]), "16x16");
    CHECK(diff(randar_reference_form(cli, 3)["plan"]["steps"], ref["plan"]["steps"], "/cli/plan/steps") == "");
#endif
}

TEST_CASE("golden: ARPG 16x16 in 64 calls (arccos), given the official order", "[golden][arpg]") {
    const json ref = load("arpg_G16_s64_seed0.json");
    ordo::cross_queries pol{64, ordo::schedules::arpg_schedule::arccos, 0, ref["order"].get<std::vector<ordo::index_t>>()};
    const ordo::plan p = ordo::make_plan(pol, ordo::grid_shape::make(16, 16));
    const json written = json::parse(ordo::plan_to_json(p, pol.spec()));
    CHECK(written["plan"]["num_forward_calls"] == ref["plan"]["num_forward_calls"]);
    CHECK(written["query_mode"] == "cross");
    CHECK(diff(arpg_reference_form(written, 3)["steps"], ref["plan"]["steps"], "/plan/steps") == "");
    // a different schedule or order is noticed
    ordo::cross_queries cosine = pol;
    cosine.schedule = ordo::schedules::arpg_schedule::cosine;
    CHECK(diff(arpg_reference_form(json::parse(ordo::plan_to_json(ordo::make_plan(cosine, p.header().grid), "")), 3)["steps"], ref["plan"]["steps"]) != "");
    ordo::cross_queries seeded = pol;
    seeded.order.clear();
    CHECK(diff(arpg_reference_form(json::parse(ordo::plan_to_json(ordo::make_plan(seeded, p.header().grid), "")), 3)["steps"], ref["plan"]["steps"]) != "");
#ifdef ORDO_CLI
    const json cli = cli_plan("arpg:64 --order " + order_file(ref["order"]), "16x16");
    CHECK(diff(arpg_reference_form(cli, 3)["steps"], ref["plan"]["steps"], "/cli/plan/steps") == "");
#endif
}
