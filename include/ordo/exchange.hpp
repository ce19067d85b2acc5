// ordo/exchange.hpp - the plan exchange format (JSON), in the schema of the structure files
// produced from the official PAR / NAR / LlamaGen code, so a plan can be diffed against them
// and a training script can read the teacher-forcing layout; and its reader, which rebuilds the
// plan through plan_builder. docs/plan-format.md describes it.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "io/json.hpp"
#include "mask.hpp"
#include "plan.hpp"

namespace ordo {

inline constexpr std::string_view plan_format = "ordo-plan/3";
// The most bytes plan_from_json reads by default (a 256x256 NAR plan is about 30 MB).
inline constexpr std::size_t max_plan_json_bytes = std::size_t{64} << 20;

namespace detail {
inline void json_coord(std::string& o, const grid_shape& g, index_t pos) {
    const coord c = g.at(pos);
    o += '[';
    if (g.rank() == 3) { o += itos(c.t); o += ", "; }
    o += itos(c.h); o += ", "; o += itos(c.w); o += ']';
}
// The shortest decimal that reads back as the same float (1/3 -> 0.33333334), so a plan survives
// the round trip bit for bit; always with a '.' or exponent, so it reads as a float.
inline void json_weight(std::string& o, float w) {
    char buf[32];
    auto res = std::to_chars(buf, buf + sizeof buf, w);
    std::string_view s(buf, static_cast<std::size_t>(res.ptr - buf));
    o += s;
    if (s.find_first_of(".e") == std::string_view::npos) o += ".0";
}
// Rounded to 6 decimals (1/3 -> 0.333333), for reading.
inline void text_weight(std::string& o, float w) {
    const double r = std::round(static_cast<double>(w) * 1e6) / 1e6;
    char buf[32];
    auto res = std::to_chars(buf, buf + sizeof buf, r);
    std::string_view s(buf, static_cast<std::size_t>(res.ptr - buf));
    o += s;
    if (s.find_first_of(".e") == std::string_view::npos) o += ".0";
}
inline void json_slot(std::string& o, const plan_view& p, index_t slot, bool with_raster_index) {
    const slot_entry& e = p.slots[static_cast<std::size_t>(slot)];
    o += "{\"slot\": "; o += itos(slot); o += ", \"what\": ";
    switch (e.kind) {
        case slot_kind::prefix:
            if (p.header.prefix == 1) o += "\"cls\"";
            else { o += "\"prefix\", \"prefix_index\": "; o += itos(e.index); }
            break;
        case slot_kind::token:
            o += "\"token\", \"grid\": "; json_coord(o, p.grid(), e.index);
            if (with_raster_index) { o += ", \"raster_index\": "; o += itos(e.index); }
            break;
        case slot_kind::transition:
            o += "\"M\", \"m_index\": "; o += itos(e.index);
            break;
        case slot_kind::query:  // a query slot (RandAR's P_t): the query of its position, as a query row is written
            o += "\"query\", \"target_grid\": "; json_coord(o, p.grid(), e.index);
            break;
    }
    o += '}';
}
// Fed row r of step st: its slot's entry, or a stand-in's (the slot, what it copies, where it rotates).
inline void json_fed(std::string& o, const plan_view& p, const step_view& st, index_t r) {
    const index_t slot = st.fed[r], content = st.content_of(r), target = st.query_target(r);
    if (target >= 0) {
        o += "{\"slot\": "; o += itos(slot); o += ", \"what\": \"query\", \"target_grid\": "; json_coord(o, p.grid(), target);
        o += '}';
        return;
    }
    if (content == slot) return json_slot(o, p, slot, false);
    o += "{\"slot\": "; o += itos(slot); o += ", \"what\": \"stand_in\", \"copy_of\": {\"slot\": "; o += itos(content);
    const slot_entry& c = p.slots[static_cast<std::size_t>(content)];
    if (c.kind == slot_kind::token) { o += ", \"grid\": "; json_coord(o, p.grid(), c.index); }
    o += "}, \"rope_grid\": "; json_coord(o, p.grid(), p.slots[static_cast<std::size_t>(slot)].index);
    o += '}';
}
// (query_slot non-empty: the training layout's slots, train_slot_of)
inline void json_from(std::string& o, const plan_view& p, const step_view& st, index_t k, bool with_input_row, std::span<const index_t> query_slot = {}) {
    o += '[';
    bool first = true;
    for (const contribution& c : st.from(k)) {
        if (!first) o += ", ";
        first = false;
        o += '{';
        if (with_input_row) { o += "\"input_row\": "; o += itos(c.row); o += ", "; }
        o += "\"slot\": "; o += itos(query_slot.empty() ? st.fed[c.row] : train_slot_of(st, c.row, query_slot));
        o += ", \"head\": "; json_string(o, p.header.head_names[c.head]); o += ", \"weight\": ";
        json_weight(o, c.weight);
        o += '}';
    }
    o += ']';
}
inline constexpr std::string_view encoding_names[] = {"rope", "absolute", "cell_table"};
inline constexpr std::string_view forcing_names[] = {"shifted", "full", "replay"};
inline constexpr std::string_view query_mode_names[] = {"in_cache", "cross"};
inline const char* mode_name(mask_mode m) { return m == mask_mode::slot_causal ? "slot_causal" : "step_causal"; }
}  // namespace detail

// Writes the plan as one JSON document. `policy_spec` is recorded as "policy". The size is linear
// in the slots: the mask is written as the step that feeds each slot (plan.slot_step), the one
// array it is a function of, not as per-query ranges.
inline std::string plan_to_json(const plan_view& p, std::string_view policy_spec) {
    using namespace detail;
    const grid_shape& g = p.grid();
    std::string o;
    o.reserve(static_cast<std::size_t>(p.num_slots()) * 160);
    o += "{\"format\": "; json_string(o, plan_format); o += ", \"policy\": "; json_string(o, policy_spec); o += ", ";
    o += "\"grid\": [";
    if (g.rank() == 3) { o += itos(g.frames()); o += ", "; }
    o += itos(g.rows()); o += ", "; o += itos(g.cols()); o += "], ";
    o += "\"params\": {";
    if (g.rank() == 3) { o += "\"T\": "; o += itos(g.frames()); o += ", \"H\": "; o += itos(g.rows()); o += ", \"W\": "; o += itos(g.cols()); }
    else if (g.rows() == g.cols()) { o += "\"G\": "; o += itos(g.rows()); }
    else { o += "\"H\": "; o += itos(g.rows()); o += ", \"W\": "; o += itos(g.cols()); }
    o += ", \"N\": "; o += itos(g.size());
    if (p.header.num_transitions) { o += ", \"spe_token_num\": "; o += itos(p.header.num_transitions); }
    o += "}, \"cls_token_num\": "; o += itos(p.header.prefix);
    o += ", \"heads\": [";
    for (index_t h = 0; h < p.header.num_heads; ++h) { if (h) o += ", "; json_string(o, p.header.head_names[h]); }
    o += "], \"mask_mode\": \""; o += mode_name(p.header.mask);
    o += "\", \"position_encoding\": \""; o += encoding_names[static_cast<std::size_t>(p.header.encoding)];
    o += "\", \"teacher_forcing\": \""; o += forcing_names[static_cast<std::size_t>(p.header.forcing)];
    o += '"';
    if (p.header.num_queries > 0) { o += ", \"query_mode\": \""; o += query_mode_names[static_cast<std::size_t>(p.header.queries)]; o += '"'; }
    o += ",\n";

    // --- the teacher-forcing (training) layout ---
    const index_t ts = p.header.train_slots;
    o += "\"train\": {\"num_slots\": "; o += itos(ts); o += ",\n\"slots\": [";
    for (index_t s = 0; s < ts; ++s) { if (s) o += ",\n"; json_slot(o, p, s, true); }
    o += "],\n";
    if (p.header.encoding == position_encoding::rope) {
        o += "\"rope_pos\": [";
        for (index_t s = 0; s < ts; ++s) {
            if (s) o += ", ";
            const rope_coord r = rope_of(p, s);
            if (r.zero) o += "null";
            else json_coord(o, g, g.index(r.at));
        }
        o += "],\n";
    }
    o += "\"logit_rows\": [";
    {
        const std::vector<index_t> query_slot = query_slots(p);
        index_t row = 0;
        for (index_t s = 0; s < p.num_slots(); ++s) {
            const slot_entry& e = p.slots[static_cast<std::size_t>(s)];
            if (e.kind != slot_kind::token) continue;
            const index_t pos = e.index, st = p.step_of[static_cast<std::size_t>(pos)];
            const step_view sv = p.step(st);
            if (row) o += ",\n";
            o += "{\"row\": "; o += itos(row++); o += ", \"target_grid\": "; json_coord(o, g, pos);
            o += ", \"from\": "; json_from(o, p, sv, p.rank_of[static_cast<std::size_t>(pos)] - sv.first_rank, false, query_slot);
            o += '}';
        }
    }
    o += "]},\n";

    // --- the decode plan ---
    o += "\"plan\": {\"num_forward_calls\": "; o += itos(p.num_steps());
    o += ", \"kv_cache_len\": "; o += itos(kv_cache_len(p));
    o += ", \"num_slots\": "; o += itos(p.num_slots());
    o += ",\n\"slots_after_train\": [";
    for (index_t s = ts; s < p.num_slots(); ++s) { if (s > ts) o += ",\n"; json_slot(o, p, s, true); }
    o += "],\n\"slot_step\": [";
    for (index_t s = 0; s < p.num_slots(); ++s) { if (s) o += ", "; o += itos(p.fed_step[static_cast<std::size_t>(s)]); }
    o += "],\n\"steps\": [\n";
    for (index_t s = 0; s < p.num_steps(); ++s) {
        const step_view st = p.step(s);
        if (s) o += ",\n";
        o += "{\"call\": "; o += itos(s); o += ", \"input_pos\": [";
        for (index_t r = 0; r < st.num_rows(); ++r) { if (r) o += ", "; o += itos(st.fed[r]); }
        o += "], \"fed\": [";
        for (index_t r = 0; r < st.num_rows(); ++r) { if (r) o += ", "; json_fed(o, p, st, r); }
        o += "], \"sampled\": [";
        for (index_t k = 0; k < st.num_emitted(); ++k) {
            if (k) o += ", ";
            o += "{\"grid\": "; json_coord(o, g, st.emitted[k]); o += ", \"from\": "; json_from(o, p, st, k, true); o += '}';
        }
        o += "]}";
    }
    o += "]}}\n";
    return o;
}

// A plan read back from the exchange format, and the policy spec the file records.
struct plan_document {
    std::string policy;
    ordo::plan plan;
};

namespace detail {

// A value of a json_document and the path that led to it, for errors ("/plan/steps/3/fed/0").
// It points at its parent: name each level that a child outlives (no chained temporaries).
struct json_at {
    const json_document* doc = nullptr;
    std::uint32_t id = 0;
    const json_at* parent = nullptr;
    std::string_view key{};  // empty: an array element, at `index`
    std::uint32_t index = 0;

    std::string path() const {
        if (!parent) return "";
        return parent->path() + "/" + (key.empty() ? itos(index) : std::string(key));
    }
    [[noreturn]] void fail(const std::string& msg) const {
        throw error("plan JSON: " + (parent ? path() : std::string("the document")) + ": " + msg);
    }
    json_document::type kind() const { return doc->at(id).kind; }
    void require(json_document::type t) const {
        if (kind() != t) fail(std::string("expected ") + json_document::type_name(t) + ", got " + json_document::type_name(kind()));
    }
    json_at operator[](std::string_view k) const {
        require(json_document::type::object);
        const long long m = doc->find(id, k);
        if (m < 0) fail("missing field \"" + std::string(k) + "\"");
        return {doc, static_cast<std::uint32_t>(m), this, k, 0};
    }
    bool has(std::string_view k) const {
        require(json_document::type::object);
        return doc->find(id, k) >= 0;
    }
    std::uint32_t size() const {
        require(json_document::type::array);
        return doc->at(id).count;
    }
    json_at operator[](std::uint32_t i) const { return {doc, doc->element(id, i), this, {}, i}; }  // i < size()
    // an integer in [lo, hi] (hi at most max_index)
    index_t integer(long long lo, long long hi) const {
        hi = std::min<long long>(hi, max_index);
        const auto& n = doc->at(id);
        if (n.kind != json_document::type::number || !n.integral || n.number < static_cast<double>(lo) || n.number > static_cast<double>(hi))
            fail("expected an integer in " + itos(lo) + ".." + itos(hi) + ", got " + shown());
        return static_cast<index_t>(n.number);
    }
    double number() const {
        require(json_document::type::number);
        return doc->at(id).number;
    }
    std::string_view string() const {
        require(json_document::type::string);
        return doc->string(id);
    }
    std::string shown() const {
        const auto& n = doc->at(id);
        if (n.kind == json_document::type::number) {
            if (n.integral && std::fabs(n.number) < 9e15) return itos(static_cast<long long>(n.number));
            char buf[32];
            auto r = std::to_chars(buf, buf + sizeof buf, n.number);
            return std::string(buf, r.ptr);
        }
        if (n.kind == json_document::type::string) {
            std::string s;
            json_string(s, doc->string(id).substr(0, 40));
            return s;
        }
        return json_document::type_name(n.kind);
    }
};

// A grid cell written as [h, w] or [t, h, w]: its raster index.
inline index_t read_cell(const json_at& v, const grid_shape& g) {
    const std::uint32_t rank = v.size();
    if (rank != static_cast<std::uint32_t>(g.rank())) v.fail("a grid cell of this " + g.str() + " grid has " + itos(g.rank()) + " coordinates, got " + itos(rank));
    coord c{};
    if (rank == 3) c.t = v[0u].integer(0, g.frames() - 1);
    c.h = v[rank - 2].integer(0, g.rows() - 1);
    c.w = v[rank - 1].integer(0, g.cols() - 1);
    return g.index(c);
}

// First difference between the file (a) and the document the plan it describes writes (b).
inline void require_same(const json_at& a, const json_at& b) {
    using T = json_document::type;
    if (a.kind() != b.kind()) a.fail("the file has " + a.shown() + ", the plan it describes has " + b.shown());
    switch (a.kind()) {
        case T::object: {
            const std::uint32_t na = a.doc->at(a.id).count, nb = b.doc->at(b.id).count;
            for (std::uint32_t i = 0; i < nb; ++i) {
                const std::string_view k = b.doc->string(b.doc->key(b.id, i));
                if (a.doc->find(a.id, k) < 0) a.fail("missing field \"" + std::string(k) + "\"");
                require_same(a[k], b[k]);
            }
            if (na == nb) return;
            // every field of b is in a, so a has another one, or one twice (b has a dozen fields at most)
            std::vector<std::uint32_t> seen(nb, 0);
            for (std::uint32_t i = 0; i < na; ++i) {
                const std::string_view k = a.doc->string(a.doc->key(a.id, i));
                std::uint32_t j = 0;
                while (j < nb && b.doc->string(b.doc->key(b.id, j)) != k) ++j;
                if (j == nb) a.fail("field \"" + std::string(k) + "\" is not part of the format");
                if (++seen[j] == 2) a.fail("field \"" + std::string(k) + "\" appears twice");
            }
            return;
        }
        case T::array: {
            const std::uint32_t na = a.size(), nb = b.size();
            if (na != nb) a.fail("the file has " + itos(na) + " entries, the plan it describes has " + itos(nb));
            for (std::uint32_t i = 0; i < na; ++i) require_same(a[i], b[i]);
            return;
        }
        case T::number: {
            const auto &x = a.doc->at(a.id), &y = b.doc->at(b.id);
            // integers exactly; a weight as the float it reads back as
            const bool floats = !(x.integral && y.integral) && std::fabs(x.number) <= 1e38 && std::fabs(y.number) <= 1e38;
            const bool same = floats ? static_cast<float>(x.number) == static_cast<float>(y.number) : x.number == y.number;
            if (!same) a.fail("the file has " + a.shown() + ", the plan it describes has " + b.shown());
            return;
        }
        case T::string:
            if (a.string() != b.string()) a.fail("the file has " + a.shown() + ", the plan it describes has " + b.shown());
            return;
        case T::boolean:
            if (a.doc->at(a.id).number != b.doc->at(b.id).number) a.fail("the file has " + a.shown() + ", the plan it describes has " + b.shown());
            return;
        case T::null: return;
    }
}


// Rebuilds the plan a parsed file describes through plan_builder (the fields it is built from).
inline void read_plan(const json_at& root, plan_document& out) {
    const json_at gj = root["grid"];
    const std::uint32_t rank = gj.size();
    if (rank != 2 && rank != 3) gj.fail("expected [H, W] or [T, H, W]");
    const grid_shape g = rank == 2 ? grid_shape::make(gj[0u].integer(1, max_index), gj[1u].integer(1, max_index))
                                   : grid_shape::make(gj[0u].integer(1, max_index), gj[1u].integer(1, max_index), gj[2u].integer(1, max_index));
    const json_at heads = root["heads"];
    const std::uint32_t num_heads = heads.size();
    if (num_heads < 1 || num_heads > static_cast<std::uint32_t>(max_heads)) heads.fail("a plan has 1 to " + itos(max_heads) + " heads, got " + itos(num_heads));
    std::vector<std::string_view> head_names;
    for (std::uint32_t h = 0; h < num_heads; ++h) {
        const std::string_view name = heads[h].string();
        if (name.size() >= sizeof(head_name::text)) heads[h].fail("head names have at most " + itos(sizeof(head_name::text) - 1) + " characters");
        for (std::string_view other : head_names)
            if (other == name) heads[h].fail("head " + heads[h].shown() + " is named twice");
        head_names.push_back(name);
    }
    auto choice = [](const json_at& v, std::string_view a, std::string_view b) {
        const std::string_view s = v.string();
        if (s != a && s != b) v.fail("expected \"" + std::string(a) + "\" or \"" + std::string(b) + "\", got " + v.shown());
        return s == b;
    };
    const mask_mode mode = choice(root["mask_mode"], "step_causal", "slot_causal") ? mask_mode::slot_causal : mask_mode::step_causal;
    // one of `names`, as its index
    auto one_of = [](const json_at& v, std::span<const std::string_view> names) {
        const std::string_view s = v.string();
        std::string expected;
        for (std::size_t i = 0; i < names.size(); ++i) {
            if (s == names[i]) return i;
            expected += (i ? ", \"" : "\"") + std::string(names[i]) + "\"";
        }
        v.fail("expected one of " + expected + ", got " + v.shown());
    };
    const auto encoding = static_cast<position_encoding>(one_of(root["position_encoding"], encoding_names));
    const auto forcing = static_cast<teacher_forcing>(one_of(root["teacher_forcing"], forcing_names));

    // The slot layout: the training slots, then the rest. Counted first, so a file's header cannot
    // make the builder allocate more than the file itself describes.
    const json_at pj = root["plan"], tj = root["train"];
    const json_at train_slots = tj["slots"], more_slots = pj["slots_after_train"];
    const std::uint32_t n_train = train_slots.size(), n_slots = n_train + more_slots.size();
    auto slot_at = [&](std::uint32_t s) { return s < n_train ? train_slots[s] : more_slots[s - n_train]; };
    long long tokens = 0;
    for (std::uint32_t s = 0; s < n_slots; ++s) tokens += slot_at(s)["what"].string() == "token";
    if (tokens != g.size())
        gj.fail("the " + g.str() + " grid has " + itos(g.size()) + " positions, but the file lays out " + itos(tokens) + " token slots");
    const index_t prefix = root["cls_token_num"].integer(1, n_slots - tokens);

    plan_builder b(g, prefix, mode);
    b.set_heads(std::span<const std::string_view>(head_names));
    b.set_encoding(encoding);
    b.set_forcing(forcing);
    if (root.has("query_mode")) b.set_query_mode(static_cast<query_mode>(one_of(root["query_mode"], query_mode_names)));
    for (std::uint32_t s = 0; s < n_slots; ++s) {
        const json_at e = slot_at(s);
        e["slot"].integer(s, s);
        const std::string_view what = e["what"].string();
        const bool is_prefix = what == "cls" || what == "prefix";
        if (is_prefix != (s < static_cast<std::uint32_t>(prefix)))
            e["what"].fail(is_prefix ? "a prefix row after the " + itos(prefix) + " prefix slots" : "slot " + itos(s) + " of the " + itos(prefix) + " prefix slots holds " + e["what"].shown());
        if (is_prefix) continue;  // laid out by the builder
        if (what == "token") b.add_token_slot(e["raster_index"].integer(0, g.size() - 1));
        else if (what == "M") b.add_transition_slot();
        else if (what == "query") b.add_query_slot(read_cell(e["target_grid"], g));
        else e["what"].fail("expected \"cls\", \"prefix\", \"token\", \"query\" or \"M\", got " + e["what"].shown());
    }

    const json_at steps = pj["steps"];
    std::vector<source> from;
    for (std::uint32_t k = 0; k < steps.size(); ++k) {
        const json_at st = steps[k];
        b.begin_step();
        const json_at fed = st["input_pos"], what = st["fed"];
        if (what.size() != fed.size()) what.fail("the step feeds " + itos(fed.size()) + " slots (input_pos) but describes " + itos(what.size()));
        for (std::uint32_t r = 0; r < fed.size(); ++r) {
            const index_t slot = fed[r].integer(0, n_slots - 1);
            const json_at row = what[r];
            if (row["what"].string() == "stand_in") {
                const json_at copy = row["copy_of"];
                b.feed_stand_in(slot, copy["slot"].integer(0, n_slots - 1));
            } else if (row["what"].string() == "query") {
                // a query slot's own content, or a query row written into another slot
                const index_t target = read_cell(row["target_grid"], g);
                if (b.slot_entry_at(slot) == slot_entry{target, slot_kind::query}) b.feed(slot);
                else b.feed_query(slot, target);
            } else {
                b.feed(slot);
            }
        }
        const json_at sampled = st["sampled"];
        for (std::uint32_t j = 0; j < sampled.size(); ++j) {
            const json_at cell = sampled[j], terms = cell["from"];
            from.clear();
            for (std::uint32_t c = 0; c < terms.size(); ++c) {
                const json_at t = terms[c];
                const std::string_view head = t["head"].string();
                index_t h = 0;
                while (h < static_cast<index_t>(num_heads) && head_names[static_cast<std::size_t>(h)] != head) ++h;
                if (h == static_cast<index_t>(num_heads)) t["head"].fail("no head is named " + t["head"].shown());
                const double w = t["weight"].number();
                if (!(w > 0 && w <= 1)) t["weight"].fail("a weight lies in (0, 1], got " + t["weight"].shown());
                from.push_back({t["input_row"].integer(0, 0xFFFF), h, static_cast<float>(w)});
            }
            b.emit(read_cell(cell["grid"], g), from.begin(), from.end());
        }
    }
    out.plan = std::move(b).finish();
}
}  // namespace detail

// Reads a plan written by plan_to_json. The plan is rebuilt through plan_builder, so it passes
// the checks every policy's plan passes; every other field of the file (the training layout, RoPE
// rows, logit rows, slot steps, what each fed row holds, the counts) must then equal what that
// plan writes. Anything else throws ordo::error naming the field and the problem. Reads at most
// max_bytes; allocates in proportion to the text.
inline plan_document plan_from_json(std::string_view json, std::size_t max_bytes = max_plan_json_bytes) {
    using namespace detail;
    using T = json_document::type;
    const json_document doc(json, "plan JSON", max_bytes);
    const json_at root{&doc, doc.root()};
    root.require(T::object);
    if (const std::string_view f = root["format"].string(); f != plan_format)
        root["format"].fail("this reader reads \"" + std::string(plan_format) + "\" files, got " + root["format"].shown());
    plan_document out;
    out.policy = std::string(root["policy"].string());

    try {
        read_plan(root, out);
    } catch (const error& e) {
        const std::string_view m = e.what();
        if (m.starts_with("ordo: plan JSON")) throw;
        throw error("plan JSON: the plan breaks a rule: " + std::string(m.substr(m.starts_with("ordo: ") ? 6 : 0)));
    }
    // every field the plan determines must say what the plan says
    const std::string canonical = plan_to_json(out.plan, out.policy);
    const json_document cdoc(canonical, "plan JSON (as written back)", canonical.size());
    require_same(root, json_at{&cdoc, cdoc.root()});
    return out;
}

// Human-readable plan: one line per step.
inline std::string plan_to_text(const plan_view& p, std::string_view policy_spec) {
    using namespace detail;
    const grid_shape& g = p.grid();
    std::string o;
    o += "policy "; o += policy_spec; o += "  grid "; o += g.str(); o += "  prefix "; o += itos(p.header.prefix);
    o += "\nsteps "; o += itos(p.num_steps()); o += "  slots "; o += itos(p.num_slots());
    o += "  transitions "; o += itos(p.header.num_transitions); o += "  heads ";
    for (index_t h = 0; h < p.header.num_heads; ++h) { if (h) o += ','; o += p.header.head_names[h]; }
    o += "  mask "; o += mode_name(p.header.mask); o += '\n';
    auto cell = [&](index_t pos) {
        const coord c = g.at(pos);
        std::string s = "(";
        if (g.rank() == 3) s += itos(c.t) + ",";
        return s + itos(c.h) + "," + itos(c.w) + ")";
    };
    for (index_t s = 0; s < p.num_steps(); ++s) {
        const step_view st = p.step(s);
        o += "step "; o += itos(s); o += ": feed";
        for (index_t r = 0; r < st.num_rows(); ++r) {
            const slot_entry& e = p.slots[static_cast<std::size_t>(st.fed[r])];
            o += ' '; o += itos(st.fed[r]); o += '=';
            switch (e.kind) {
                case slot_kind::prefix: o += "prefix" + itos(e.index); break;
                case slot_kind::transition: o += "M" + itos(e.index); break;
                case slot_kind::token: o += cell(e.index); break;
                case slot_kind::query: o += "query" + cell(e.index); break;
            }
            if (const index_t t = st.query_target(r); t >= 0) {  // a query: the cell it predicts
                o += "<-query" + cell(t);
            } else if (const index_t c = st.content_of(r); c != st.fed[r]) {  // a stand-in: what it copies
                const slot_entry& ce = p.slots[static_cast<std::size_t>(c)];
                o += "<-copy(" + (ce.kind == slot_kind::token ? cell(ce.index) : "prefix" + itos(ce.index)) + ")";
            }
        }
        o += " | emit";
        for (index_t k = 0; k < st.num_emitted(); ++k) {
            o += ' '; o += cell(st.emitted[k]); o += "<-";
            bool first = true;
            for (const contribution& c : st.from(k)) {
                if (!first) o += '+';
                first = false;
                o += itos(c.row); o += ':'; o += p.header.head_names[c.head];
                if (c.weight != 1.0f) { o += '*'; text_weight(o, c.weight); }
            }
        }
        o += '\n';
    }
    return o;
}

}  // namespace ordo
