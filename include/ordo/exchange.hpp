// ordo/exchange.hpp - the plan exchange format (JSON), in the schema of the structure files
// produced from the official PAR / NAR / LlamaGen code, so a plan can be diffed against them
// and a training script can read the teacher-forcing layout. docs/plan-format.md describes it.
#pragma once

#include <charconv>
#include <cmath>
#include <ostream>
#include <string>
#include <string_view>

#include "mask.hpp"
#include "plan.hpp"

namespace ordo {

namespace detail {
inline void json_coord(std::string& o, const grid_shape& g, index_t pos) {
    const coord c = g.at(pos);
    o += '[';
    if (g.rank() == 3) { o += itos(c.t); o += ", "; }
    o += itos(c.h); o += ", "; o += itos(c.w); o += ']';
}
// weights are written rounded to 6 decimals (1/3 -> 0.333333), as the reference files do
inline void json_weight(std::string& o, float w) {
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
        case slot_kind::stand_in: {
            const stand_in_entry& si = p.stand_ins[static_cast<std::size_t>(e.index)];
            o += "\"stand_in\", \"copy_of\": "; o += itos(si.copy_of);
            o += ", \"rope_grid\": "; json_coord(o, p.grid(), si.at);
            break;
        }
    }
    o += '}';
}
// visible kv ranges [start, end) of query slot q over [0, kv_len)
template <class M>
void json_ranges(std::string& o, const M& m, index_t q, index_t kv_len) {
    o += '[';
    bool first = true;
    for (index_t kv = 0; kv < kv_len;) {
        if (!m(q, kv)) { ++kv; continue; }
        index_t end = kv + 1;
        while (end < kv_len && m(q, end)) ++end;
        if (!first) o += ", ";
        first = false;
        o += '['; o += itos(kv); o += ", "; o += itos(end); o += ']';
        kv = end;
    }
    o += ']';
}
inline void json_from(std::string& o, const plan_view& p, const step_view& st, index_t k, bool with_input_row) {
    o += '[';
    bool first = true;
    for (const contribution& c : st.from(k)) {
        if (!first) o += ", ";
        first = false;
        o += '{';
        if (with_input_row) { o += "\"input_row\": "; o += itos(c.row); o += ", "; }
        o += "\"slot\": "; o += itos(st.fed[c.row]);
        o += ", \"head\": \""; o += p.header.head_names[c.head]; o += "\", \"weight\": ";
        json_weight(o, c.weight);
        o += '}';
    }
    o += ']';
}
inline const char* mode_name(mask_mode m) { return m == mask_mode::slot_causal ? "slot_causal" : "step_causal"; }
}  // namespace detail

// Writes the plan as one JSON document. `policy_spec` is recorded as "policy".
inline std::string plan_to_json(const plan_view& p, std::string_view policy_spec) {
    using namespace detail;
    const grid_shape& g = p.grid();
    std::string o;
    o.reserve(static_cast<std::size_t>(p.num_slots()) * 160);
    o += "{\"format\": \"ordo-plan/1\", \"policy\": \""; o += policy_spec; o += "\", ";
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
    for (index_t h = 0; h < p.header.num_heads; ++h) { if (h) o += ", "; o += '"'; o += p.header.head_names[h]; o += '"'; }
    o += "], \"mask_mode\": \""; o += mode_name(p.header.mask);
    o += "\", \"position_encoding\": \""; o += p.header.encoding == position_encoding::rope ? "rope" : "absolute";
    o += "\", \"teacher_forcing\": \""; o += p.header.forcing == teacher_forcing::full ? "full" : "shifted";
    o += "\",\n";

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
    o += "\"mask_ranges\": [";
    visit_mask(p, [&](auto m) {
        for (index_t s = 0; s < ts; ++s) { if (s) o += ",\n"; json_ranges(o, m, s, ts); }
    });
    o += "],\n\"logit_rows\": [";
    {
        index_t row = 0;
        for (index_t s = 0; s < p.num_slots(); ++s) {
            const slot_entry& e = p.slots[static_cast<std::size_t>(s)];
            if (e.kind != slot_kind::token) continue;
            const index_t pos = e.index, st = p.step_of[static_cast<std::size_t>(pos)];
            const step_view sv = p.step(st);
            if (row) o += ",\n";
            o += "{\"row\": "; o += itos(row++); o += ", \"target_grid\": "; json_coord(o, g, pos);
            o += ", \"from\": "; json_from(o, p, sv, p.rank_of[static_cast<std::size_t>(pos)] - sv.first_rank, false);
            o += '}';
        }
    }
    o += "]},\n";

    // --- the decode plan ---
    const index_t kv_len = kv_cache_len(p);
    o += "\"plan\": {\"num_forward_calls\": "; o += itos(p.num_steps());
    o += ", \"kv_cache_len\": "; o += itos(kv_len); o += ", \"steps\": [\n";
    visit_mask(p, [&](auto m) {
        for (index_t s = 0; s < p.num_steps(); ++s) {
            const step_view st = p.step(s);
            if (s) o += ",\n";
            o += "{\"call\": "; o += itos(s); o += ", \"input_pos\": [";
            for (index_t r = 0; r < st.num_rows(); ++r) { if (r) o += ", "; o += itos(st.fed[r]); }
            o += "], \"fed\": [";
            for (index_t r = 0; r < st.num_rows(); ++r) { if (r) o += ", "; json_slot(o, p, st.fed[r], false); }
            o += "], \"sampled\": [";
            for (index_t k = 0; k < st.num_emitted(); ++k) {
                if (k) o += ", ";
                o += "{\"grid\": "; json_coord(o, g, st.emitted[k]); o += ", \"from\": "; json_from(o, p, st, k, true); o += '}';
            }
            o += "], \"visible\": [";
            for (index_t r = 0; r < st.num_rows(); ++r) { if (r) o += ", "; json_ranges(o, m, st.fed[r], kv_len); }
            o += "]}";
        }
    });
    o += "]}}\n";
    return o;
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
                case slot_kind::stand_in: {
                    const stand_in_entry& si = p.stand_ins[static_cast<std::size_t>(e.index)];
                    o += "copy(" + itos(si.copy_of) + ")@" + cell(si.at);
                    break;
                }
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
                if (c.weight != 1.0f) { o += '*'; json_weight(o, c.weight); }
            }
        }
        o += '\n';
    }
    return o;
}

}  // namespace ordo
