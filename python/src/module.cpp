// ordo._ordo - the Python extension (nanobind): plans and their arrays, masks, Python-defined
// orders, the step-wise session, the CPU backend and the oracle. Arrays a plan or a session owns
// come out as read-only NumPy views (zero-copy; the view keeps its owner alive); arrays go in
// through the buffer protocol or DLPack (NumPy, CPU torch tensors) without a copy, and must have
// the documented dtype and layout: anything else is a ValueError naming what is wrong.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <ordo/eigen/arpg.hpp>
#include <ordo/eigen/gpt.hpp>
#include <ordo/eigen/lpd.hpp>
#include <ordo/eigen/vq.hpp>
#include <ordo/engine/teacher.hpp>
#include <ordo/exchange.hpp>
#include <ordo/models/arpg/checkpoint.hpp>
#include <ordo/models/family.hpp>
#include <ordo/models/llamagen/checkpoint.hpp>
#include <ordo/models/lpd/checkpoint.hpp>
#include <ordo/models/vq/checkpoint.hpp>
#include <ordo/models/llamagen/model_args.hpp>
#include <ordo/oracle/oracle.hpp>
#include <ordo/ordo.hpp>

namespace nb = nanobind;
using namespace nb::literals;
using ordo::index_t;

namespace {

template <class T, std::size_t N>
using out_array = nb::ndarray<nb::numpy, T, nb::ndim<N>>;

// A read-only view of n elements at `data`, `stride` elements apart, owned by `owner`.
template <class T>
out_array<const T, 1> view(const T* data, std::size_t n, nb::handle owner, std::int64_t stride = 1) {
    const std::size_t shape[1] = {n};
    const std::int64_t strides[1] = {stride};
    return out_array<const T, 1>(data, 1, shape, owner, strides);
}
// A fresh array (the capsule owns the vector).
template <class T, std::size_t N>
out_array<T, N> owned(std::vector<T>&& v, std::array<std::size_t, N> shape) {
    auto* heap = new std::vector<T>(std::move(v));
    nb::capsule del(heap, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
    return out_array<T, N>(heap->data(), N, shape.data(), del);
}

[[noreturn]] void fail(const std::string& what) { throw ordo::error(what); }

// A VQ tokenizer's weights and its decoder (which points into them, so both live on the heap).
struct py_vq {
    std::unique_ptr<ordo::models::vq::vq_weights> weights;
    std::unique_ptr<ordo::eigen::vq_decoder> decoder;
};

// A 1-D int32 array in (any array-like of integers of int32 dtype).
std::span<const index_t> int32_span(const nb::ndarray<nb::ro>& a, const char* what) {
    if (a.device_type() != nb::device::cpu::value) fail(std::string(what) + ": the array must be in CPU memory");
    if (a.dtype() != nb::dtype<std::int32_t>()) fail(std::string(what) + ": expected int32 values");
    if (a.ndim() != 1) fail(std::string(what) + ": expected a 1-D array, got " + std::to_string(a.ndim()) + " dimensions");
    if (a.shape(0) > 0 && a.stride(0) != 1) fail(std::string(what) + ": the array must be contiguous");
    return {static_cast<const index_t*>(a.data()), a.shape(0)};
}
std::vector<index_t> int_list(const std::vector<long long>& v, const char* what) {
    std::vector<index_t> out;
    for (long long x : v) {
        if (x < INT32_MIN || x > INT32_MAX) fail(std::string(what) + ": " + std::to_string(x) + " does not fit the 32-bit index type");
        out.push_back(static_cast<index_t>(x));
    }
    return out;
}

const char* kind_name(ordo::slot_kind k) {
    switch (k) {
        case ordo::slot_kind::prefix: return "prefix";
        case ordo::slot_kind::token: return "token";
        case ordo::slot_kind::transition: return "transition";
        case ordo::slot_kind::query: return "query";
    }
    return "?";
}
const char* mode_name(ordo::mask_mode m) { return m == ordo::mask_mode::slot_causal ? "slot_causal" : "step_causal"; }

// A plan shared between Python objects (sessions and views keep it alive).
struct py_plan {
    std::shared_ptr<const ordo::plan> p;
    std::string policy;
    ordo::plan_view view() const { return p->view(); }
};

// Rotary coordinates of slots: [n, 3] (t, h, w) and a zero flag per slot (cos = sin = 0 rows).
nb::tuple rope_arrays(const ordo::plan_view& v, std::span<const index_t> slots) {
    std::vector<std::int32_t> c(slots.size() * 3);
    std::vector<std::uint8_t> z(slots.size());
    for (std::size_t i = 0; i < slots.size(); ++i) {
        const ordo::rope_coord r = ordo::rope_of(v, slots[i]);
        z[i] = r.zero;
        c[3 * i] = r.at.t;
        c[3 * i + 1] = r.at.h;
        c[3 * i + 2] = r.at.w;
    }
    auto zero = owned<std::uint8_t, 1>(std::move(z), {slots.size()});
    return nb::make_tuple(owned<std::int32_t, 2>(std::move(c), {slots.size(), 3}), zero);
}

std::vector<index_t> check_slots(const ordo::plan_view& v, std::span<const index_t> q, const char* what) {
    for (index_t s : q)
        if (s < 0 || s >= v.num_slots()) fail(std::string(what) + ": slot " + std::to_string(s) + " is outside the plan's " + std::to_string(v.num_slots()) + " slots");
    return {q.begin(), q.end()};
}

out_array<bool, 2> dense(const ordo::plan_view& v, std::span<const index_t> q, index_t kv_len) {
    if (kv_len < 0) fail("dense_mask: kv_len must be >= 0");
    std::vector<std::uint8_t> bytes(q.size() * static_cast<std::size_t>(kv_len));
    ordo::dense_mask(v, q, kv_len, bytes);
    auto* heap = new std::vector<std::uint8_t>(std::move(bytes));
    nb::capsule del(heap, [](void* p) noexcept { delete static_cast<std::vector<std::uint8_t>*>(p); });
    const std::size_t shape[2] = {q.size(), static_cast<std::size_t>(kv_len)};
    return out_array<bool, 2>(reinterpret_cast<bool*>(heap->data()), 2, shape, del);
}

// The bool [rows, kv_len] mask of a whole step (cross queries included: dense_step_mask), or of
// the steps [step, step + steps) of a speculative window, their rows in order.
out_array<bool, 2> dense_step(const ordo::plan_view& v, index_t step, index_t kv_len, index_t steps = 1) {
    if (kv_len < 0) fail("mask: kv_len must be >= 0");
    std::size_t rows = 0;
    for (index_t t = step; t < step + steps; ++t) rows += static_cast<std::size_t>(v.step(t).num_rows());
    std::vector<std::uint8_t> bytes(rows * static_cast<std::size_t>(kv_len));
    std::size_t at = 0;
    for (index_t t = step; t < step + steps; ++t) {
        const std::size_t n = static_cast<std::size_t>(v.step(t).num_rows()) * static_cast<std::size_t>(kv_len);
        ordo::dense_step_mask(v, t, kv_len, std::span<std::uint8_t>(bytes.data() + at, n));
        at += n;
    }
    auto* heap = new std::vector<std::uint8_t>(std::move(bytes));
    nb::capsule del(heap, [](void* p) noexcept { delete static_cast<std::vector<std::uint8_t>*>(p); });
    const std::size_t shape[2] = {rows, static_cast<std::size_t>(kv_len)};
    return out_array<bool, 2>(reinterpret_cast<bool*>(heap->data()), 2, shape, del);
}

// ---- a plan built from Python: a layout and a list of steps -------------------------------------
ordo::mask_mode parse_mode(const std::string& s) {
    if (s == "step_causal") return ordo::mask_mode::step_causal;
    if (s == "slot_causal") return ordo::mask_mode::slot_causal;
    fail("mask must be \"step_causal\" or \"slot_causal\", got \"" + s + "\"");
}

// steps: a list of {"feed": [slot | (slot, copy_of)], "emit": [(pos, row) | (pos, [(row, head, weight), ...])]}
ordo::plan plan_from_steps(const std::string& grid, const nb::list& steps, index_t prefix, const std::optional<nb::list>& layout, const std::string& mask,
                           const std::vector<std::string>& heads, const std::string& encoding, const std::string& forcing) {
    ordo::plan_builder b(ordo::parse_grid(grid), prefix, parse_mode(mask));
    std::vector<std::string_view> names(heads.begin(), heads.end());
    b.set_heads(std::span<const std::string_view>(names));
    if (encoding != "rope" && encoding != "absolute") fail("encoding must be \"rope\" or \"absolute\", got \"" + encoding + "\"");
    b.set_encoding(encoding == "rope" ? ordo::position_encoding::rope : ordo::position_encoding::absolute);
    if (forcing != "shifted" && forcing != "full") fail("forcing must be \"shifted\" or \"full\", got \"" + forcing + "\"");
    b.set_forcing(forcing == "shifted" ? ordo::teacher_forcing::shifted : ordo::teacher_forcing::full);
    if (layout) {
        std::size_t i = 0;
        for (nb::handle e : *layout) {
            try {
                if (nb::isinstance<nb::str>(e)) {
                    if (nb::cast<std::string>(e) != "M") fail("a layout entry is a position or \"M\" (a transition token)");
                    b.add_transition_slot();
                } else {
                    b.add_token_slot(nb::cast<index_t>(e));
                }
            } catch (const ordo::error& err) {
                fail("layout entry " + std::to_string(i) + ": " + std::string(err.what()).substr(6));
            } catch (const nb::cast_error&) {
                fail("layout entry " + std::to_string(i) + ": expected a position (int) or \"M\"");
            } catch (nb::python_error& e) {
                e.restore();
                PyErr_Clear();
                fail("layout entry " + std::to_string(i) + ": expected a position (int) or \"M\"");
            }
            ++i;
        }
    } else {
        for (index_t q = 0; q < b.grid().size(); ++q) b.add_token_slot(q);
    }
    std::vector<ordo::source> from;
    std::size_t k = 0;
    for (nb::handle step : steps) {
        try {
            if (!nb::isinstance<nb::dict>(step)) fail("expected a dict with \"feed\" and \"emit\"");
            nb::dict d = nb::borrow<nb::dict>(step);
            if (!d.contains("feed") || !d.contains("emit")) fail("expected a dict with \"feed\" and \"emit\"");
            b.begin_step();
            for (nb::handle f : d["feed"]) {
                if (nb::isinstance<nb::tuple>(f) || nb::isinstance<nb::list>(f)) {
                    auto pair = nb::cast<std::pair<index_t, index_t>>(f);
                    b.feed_stand_in(pair.first, pair.second);
                } else {
                    b.feed(nb::cast<index_t>(f));
                }
            }
            for (nb::handle e : d["emit"]) {
                auto pos_and = nb::cast<nb::tuple>(e);
                if (pos_and.size() != 2) fail("an emit entry is (position, row) or (position, [(row, head, weight), ...])");
                const index_t pos = nb::cast<index_t>(pos_and[0]);
                from.clear();
                if (nb::isinstance<nb::int_>(pos_and[1])) {
                    from.push_back({nb::cast<index_t>(pos_and[1]), 0, 1.0f});
                } else {
                    for (nb::handle t : pos_and[1]) {
                        auto term = nb::cast<nb::tuple>(t);
                        if (term.size() != 3) fail("a contribution is (row, head, weight)");
                        index_t head = 0;
                        if (nb::isinstance<nb::str>(term[1])) {
                            const std::string name = nb::cast<std::string>(term[1]);
                            head = -1;
                            for (std::size_t h = 0; h < heads.size(); ++h)
                                if (heads[h] == name) head = static_cast<index_t>(h);
                            if (head < 0) fail("no head is named \"" + name + "\"");
                        } else {
                            head = nb::cast<index_t>(term[1]);
                        }
                        from.push_back({nb::cast<index_t>(term[0]), head, nb::cast<float>(term[2])});
                    }
                }
                b.emit(pos, from.begin(), from.end());
            }
        } catch (const ordo::error& err) {
            fail("step " + std::to_string(k) + ": " + std::string(err.what()).substr(6));
        } catch (const nb::cast_error&) {
            fail("step " + std::to_string(k) + ": a value has the wrong type (slots, positions and rows are ints, weights floats)");
        } catch (nb::python_error& e) {  // e.g. a number where a list belongs
            e.restore();
            PyErr_Clear();
            fail("step " + std::to_string(k) + ": a value has the wrong type (feed and emit are lists; a contribution list holds (row, head, weight))");
        }
        ++k;
    }
    return std::move(b).finish();
}

// ---- the session ---------------------------------------------------------------------------------
using greedy_chain = decltype(ordo::make_sampler(ordo::temperature{}, ordo::top_k{}, ordo::top_p{}, ordo::greedy{}));
using multinomial_chain = decltype(ordo::make_sampler(ordo::temperature{}, ordo::top_k{}, ordo::top_p{}, ordo::multinomial{}));

// LlamaGen's sampling options; with_chain(f) calls f with the chain they make (greedy or multinomial draw).
struct sampling {
    float temperature = 1.0f;
    index_t top_k = 0;
    float top_p = 1.0f;
    bool greedy = false;

    template <class F>
    decltype(auto) with_chain(F&& f) const {
        if (!(top_p > 0.0f && top_p <= 1.0f)) fail("top_p must lie in (0, 1], got " + std::to_string(top_p));
        if (top_k < 0) fail("top_k must be >= 0 (0: off), got " + std::to_string(top_k));
        if (greedy) return f(ordo::make_sampler(ordo::temperature{temperature}, ordo::top_k{top_k}, ordo::top_p{top_p}, ordo::greedy{}));
        return f(ordo::make_sampler(ordo::temperature{temperature}, ordo::top_k{top_k}, ordo::top_p{top_p}, ordo::multinomial{}));
    }
};

using session_variant = std::variant<ordo::session<greedy_chain>, ordo::session<multinomial_chain>>;

struct py_session {
    std::shared_ptr<const ordo::plan> plan;  // the session keeps a view of it
    index_t vocab = 0;
    session_variant s;

    template <class F>
    decltype(auto) visit(F&& f) {
        return std::visit(f, s);
    }
};

std::vector<ordo::request> make_requests(const std::vector<long long>& labels, const std::optional<std::vector<long long>>& ids) {
    if (labels.empty()) fail("Session: no requests (labels is empty)");
    if (ids && ids->size() != labels.size()) fail("Session: " + std::to_string(ids->size()) + " ids for " + std::to_string(labels.size()) + " labels");
    std::vector<ordo::request> out;
    const std::vector<index_t> l = int_list(labels, "labels");
    for (std::size_t i = 0; i < l.size(); ++i)
        out.push_back({l[i], ids ? static_cast<std::uint64_t>((*ids)[i]) : static_cast<std::uint64_t>(i), {}});
    return out;
}

ordo::cfg_ramp parse_ramp(const std::string& r) {
    if (r == "per_step") return ordo::cfg_ramp::per_step;
    if (r == "linear_in_rank") return ordo::cfg_ramp::linear_in_rank;
    if (r == "linear_in_step_start") return ordo::cfg_ramp::linear_in_step_start;
    if (r == "linear_in_step_end") return ordo::cfg_ramp::linear_in_step_end;
    fail("cfg_ramp must be per_step, linear_in_rank (LPD), linear_in_step_start (RandAR) or linear_in_step_end (ARPG), got \"" + r + "\"");
}

// Speculative decoding's options from their Python spellings (`what` names the caller in errors).
ordo::jacobi_options jacobi_from(index_t window, const std::string& draft_init, const std::string& coupling, const std::string& what) {
    ordo::jacobi_options j;
    j.window = window;
    if (draft_init == "left_neighbour") j.init = ordo::draft_init::left_neighbour;
    else if (draft_init != "uniform") fail(what + ": draft_init must be \"uniform\" or \"left_neighbour\", got \"" + draft_init + "\"");
    if (coupling == "gumbel") j.coupling = ordo::draft_coupling::gumbel;
    else if (coupling == "maximal") j.coupling = ordo::draft_coupling::maximal;
    else if (coupling != "none") fail(what + ": coupling must be \"none\", \"gumbel\" or \"maximal\", got \"" + coupling + "\"");
    return j;
}

using jacobi_variant = std::variant<ordo::jacobi_session<greedy_chain>, ordo::jacobi_session<multinomial_chain>>;

// A speculative Jacobi decode driven step by step from Python (a host engine's loop).
struct py_jacobi_session {
    std::shared_ptr<const ordo::plan> plan;  // the session keeps a view of it
    jacobi_variant s;

    template <class F>
    decltype(auto) visit(F&& f) {
        return std::visit(f, s);
    }
};

// Request i of a session (either kind), or a ValueError naming `what`.
template <class Session>
void check_request(const Session& x, index_t i, const char* what) {
    if (i < 0 || i >= x.num_requests()) fail(std::string(what) + ": request " + std::to_string(i) + " is outside the session's " + std::to_string(x.num_requests()));
}
// A copy of request i's tokens in raster order, int32 [positions].
template <class PySession>
out_array<index_t, 1> request_tokens(PySession& s, index_t i) {
    std::vector<index_t> out;
    s.visit([&](auto& x) {
        check_request(x, i, "tokens");
        const auto t = x.tokens(i);
        out.assign(t.begin(), t.end());
    });
    const std::size_t n = out.size();
    return owned<index_t, 1>(std::move(out), {n});
}

// Constructs a py_session at `self` (nanobind's __init__).
void init_session(py_session* self, const py_plan& p, const std::vector<long long>& labels, index_t vocab, float cfg, index_t cfg_interval,
                  std::uint64_t seed, index_t null_label, const std::optional<std::vector<long long>>& ids, const sampling& smp,
                  const std::optional<std::vector<std::vector<long long>>>& orders = std::nullopt, const std::string& cfg_ramp = "per_step",
                  float cfg_start = 1.0f) {
    std::vector<ordo::request> reqs = make_requests(labels, ids);
    std::vector<std::vector<index_t>> tables;  // read by the session's constructor, which copies them
    if (orders) {
        if (orders->size() != reqs.size()) fail("Session: " + std::to_string(orders->size()) + " orders for " + std::to_string(reqs.size()) + " labels");
        for (const auto& o : *orders) tables.push_back(int_list(o, "orders"));
        for (std::size_t i = 0; i < reqs.size(); ++i) reqs[i].order = tables[i];
    }
    ordo::session_options o;
    o.guidance.scale = cfg;
    o.guidance.interval = cfg_interval;
    o.guidance.ramp = parse_ramp(cfg_ramp);
    o.guidance.start = cfg_start;
    o.seed = seed;
    o.null_label = null_label;
    smp.with_chain([&](auto chain) {
        using session_t = ordo::session<decltype(chain)>;
        new (self) py_session{p.p, vocab, session_variant(std::in_place_type<session_t>, p.view(), std::span<const ordo::request>(reqs), chain, vocab, o)};
    });
}

// Logits: float32, C-contiguous, in CPU memory (the session checks the size).
std::span<const float> logits_span(const nb::ndarray<nb::ro>& a, const char* what) {
    if (a.device_type() != nb::device::cpu::value) fail(std::string(what) + ": the logits must be in CPU memory (call .cpu() on a device tensor)");
    if (a.dtype() != nb::dtype<float>()) fail(std::string(what) + ": the logits must be float32");
    std::int64_t expect = 1;
    for (std::size_t d = a.ndim(); d-- > 0;) {
        if (a.shape(d) != 1 && a.stride(d) != expect) fail(std::string(what) + ": the logits must be C-contiguous");
        expect *= static_cast<std::int64_t>(a.shape(d));
    }
    return {static_cast<const float*>(a.data()), a.size()};
}

// The step batch of a session, as arrays (views valid until the session's next commit/next).
struct py_batch {
    nb::object session;  // keeps the session (and its buffers) alive
    ordo::step_batch b;
};

// One field (at byte `offset`, of type T) of the batch's fed_input structs, as a read-only
// [sequences, rows] strided view.
template <class T>
out_array<const T, 2> input_field(nb::handle self, std::size_t offset) {
    static_assert(sizeof(ordo::fed_input) % sizeof(T) == 0, "strides count whole elements");
    const py_batch& b = nb::cast<const py_batch&>(self);
    const std::size_t shape[2] = {static_cast<std::size_t>(b.b.num_sequences), static_cast<std::size_t>(b.b.num_rows)};
    const std::int64_t per_row = sizeof(ordo::fed_input) / sizeof(T);
    const std::int64_t strides[2] = {static_cast<std::int64_t>(b.b.num_rows) * per_row, per_row};
    const T* first = reinterpret_cast<const T*>(reinterpret_cast<const std::byte*>(b.b.inputs.data()) + offset);
    return out_array<const T, 2>(first, 2, shape, self, strides);
}

// ---- the CPU backend -----------------------------------------------------------------------------
// A checkpoint of any family the CPU backend runs: LlamaGen / PAR / NAR / RandAR's GPT, LPD's or
// ARPG's decoder (read off the checkpoint's keys).
struct py_model {
    std::variant<ordo::models::llamagen::gpt_weights, ordo::models::lpd::lpd_weights, ordo::models::arpg::arpg_weights> weights;
    std::string description;
    index_t vocab = 0, classes = 0, null = 0;
    std::shared_ptr<const ordo::eigen::gpt_bf16_matrices> bf16;  // the GPT's bf16 products (weight_dtype="bf16"); null: fp32

    // f(model): a fresh CPU model over the weights (it owns only per-step buffers)
    template <class F>
    decltype(auto) with_model(F&& f) const {
        return std::visit(
            [&](const auto& w) {
                using W = std::decay_t<decltype(w)>;
                if constexpr (std::is_same_v<W, ordo::models::llamagen::gpt_weights>) {
                    ordo::eigen::gpt_model m(w, bf16);
                    return f(m);
                } else if constexpr (std::is_same_v<W, ordo::models::lpd::lpd_weights>) {
                    ordo::eigen::lpd_model m(w);
                    return f(m);
                } else {
                    ordo::eigen::arpg_model m(w);
                    return f(m);
                }
            },
            weights);
    }
};


}  // namespace

NB_MODULE(_ordo, m) {
    m.doc() = "ordo: decode orders for autoregressive visual generation (C++ core, Python bindings)";
    nb::register_exception_translator([](const std::exception_ptr& p, void*) {
        try {
            std::rethrow_exception(p);
        } catch (const ordo::error& e) {
            const std::string_view w = e.what();
            PyErr_SetString(PyExc_ValueError, std::string(w.starts_with("ordo: ") ? w.substr(6) : w).c_str());
        }
    });

    // ---- plans ----
    nb::class_<py_plan>(m, "Plan", "A decode plan: the slot layout, what each step feeds and emits, head mixing and the mask.")
        .def_prop_ro("policy", [](const py_plan& p) { return p.policy; }, "the policy's spec string")
        .def_prop_ro("grid", [](const py_plan& p) {
            const ordo::grid_shape g = p.view().grid();
            return g.rank() == 3 ? nb::make_tuple(g.frames(), g.rows(), g.cols()) : nb::make_tuple(g.rows(), g.cols());
        }, "(H, W) or (T, H, W)")
        .def_prop_ro("prefix", [](const py_plan& p) { return p.view().header.prefix; })
        .def_prop_ro("num_steps", [](const py_plan& p) { return p.view().num_steps(); })
        .def_prop_ro("num_slots", [](const py_plan& p) { return p.view().num_slots(); })
        .def_prop_ro("num_positions", [](const py_plan& p) { return p.view().num_positions(); })
        .def_prop_ro("train_slots", [](const py_plan& p) { return p.view().header.train_slots; }, "slots the teacher-forcing forward feeds: [0, train_slots)")
        .def_prop_ro("num_transitions", [](const py_plan& p) { return p.view().header.num_transitions; })
        .def_prop_ro("num_stand_ins", [](const py_plan& p) { return p.view().header.num_stand_ins; })
        .def_prop_ro("num_queries", [](const py_plan& p) { return p.view().header.num_queries; })
        .def_prop_ro("query_mode", [](const py_plan& p) { return std::string(ordo::detail::query_mode_names[static_cast<std::size_t>(p.view().header.queries)]); },
                     "in_cache (a query row is written and attended like any row: LPD, RandAR) or cross (not written; it sees what is written through its step: ARPG)")
        .def_prop_ro("heads", [](const py_plan& p) {
            std::vector<std::string> out;
            for (index_t h = 0; h < p.view().header.num_heads; ++h) out.emplace_back(p.view().header.head_names[static_cast<std::size_t>(h)].view());
            return out;
        })
        .def_prop_ro("mask_mode", [](const py_plan& p) { return std::string(mode_name(p.view().header.mask)); })
        .def_prop_ro("position_encoding", [](const py_plan& p) { return std::string(ordo::detail::encoding_names[static_cast<std::size_t>(p.view().header.encoding)]); })
        .def_prop_ro("teacher_forcing", [](const py_plan& p) { return std::string(ordo::detail::forcing_names[static_cast<std::size_t>(p.view().header.forcing)]); })
        .def_prop_ro("kv_cache_len", [](const py_plan& p) { return ordo::kv_cache_len(p.view()); }, "cache rows a decode needs (the official find_multiple(prefix + N, 8))")
        .def_prop_ro("max_rows_per_step", [](const py_plan& p) { return p.view().max_rows_per_step(); })
        .def_prop_ro("digest", [](const py_plan& p) { return ordo::digest(p.view()); }, "64-bit identity of the plan's content")
        .def_prop_ro("nbytes", [](const py_plan& p) { return p.p->bytes(); })
        // the plan's arrays, zero-copy and read-only
        .def_prop_ro("fed_step", [](nb::handle self) { const auto v = nb::cast<const py_plan&>(self).view(); return view(v.fed_step.data(), v.fed_step.size(), self); },
                     "per slot, the step that first writes it (num_steps: never)")
        .def_prop_ro("fed_offsets", [](nb::handle self) { const auto v = nb::cast<const py_plan&>(self).view(); return view(v.fed_offsets.data(), v.fed_offsets.size(), self); })
        .def_prop_ro("fed", [](nb::handle self) { const auto v = nb::cast<const py_plan&>(self).view(); return view(v.fed.data(), v.fed.size(), self); },
                     "the slots each step feeds, steps concatenated (fed_offsets)")
        .def_prop_ro("emit_offsets", [](nb::handle self) { const auto v = nb::cast<const py_plan&>(self).view(); return view(v.emit_offsets.data(), v.emit_offsets.size(), self); })
        .def_prop_ro("order", [](nb::handle self) { const auto v = nb::cast<const py_plan&>(self).view(); return view(v.order.data(), v.order.size(), self); },
                     "the positions in emission order (emit_offsets per step)")
        .def_prop_ro("contrib_offsets", [](nb::handle self) { const auto v = nb::cast<const py_plan&>(self).view(); return view(v.contrib_offsets.data(), v.contrib_offsets.size(), self); })
        .def_prop_ro("contrib_row", [](nb::handle self) { const auto v = nb::cast<const py_plan&>(self).view(); return view(&v.contribs.data()->row, v.contribs.size(), self, 4); })
        .def_prop_ro("contrib_head", [](nb::handle self) { const auto v = nb::cast<const py_plan&>(self).view(); return view(&v.contribs.data()->head, v.contribs.size(), self, 8); })
        .def_prop_ro("contrib_weight", [](nb::handle self) { const auto v = nb::cast<const py_plan&>(self).view(); return view(&v.contribs.data()->weight, v.contribs.size(), self, 2); })
        .def_prop_ro("rank_of", [](nb::handle self) { const auto v = nb::cast<const py_plan&>(self).view(); return view(v.rank_of.data(), v.rank_of.size(), self); })
        .def_prop_ro("step_of", [](nb::handle self) { const auto v = nb::cast<const py_plan&>(self).view(); return view(v.step_of.data(), v.step_of.size(), self); })
        .def_prop_ro("slot_of", [](nb::handle self) { const auto v = nb::cast<const py_plan&>(self).view(); return view(v.slot_of.data(), v.slot_of.size(), self); })
        .def_prop_ro("slot_kind", [](nb::handle self) {
            const auto v = nb::cast<const py_plan&>(self).view();
            return view(reinterpret_cast<const std::uint8_t*>(&v.slots.data()->kind), v.slots.size(), self, sizeof(ordo::slot_entry));
        }, "per slot: 0 prefix, 1 token, 2 transition, 3 query (RandAR's P slots)")
        .def_prop_ro("slot_index", [](nb::handle self) {
            const auto v = nb::cast<const py_plan&>(self).view();
            return view(&v.slots.data()->index, v.slots.size(), self, sizeof(ordo::slot_entry) / sizeof(index_t));
        }, "per slot: the prefix row, the position, or the transition number M_i")
        .def_prop_ro("stand_ins", [](nb::handle self) {
            const auto v = nb::cast<const py_plan&>(self).view();
            const std::size_t shape[2] = {v.stand_ins.size(), 2};
            return out_array<const index_t, 2>(reinterpret_cast<const index_t*>(v.stand_ins.data()), 2, shape, self);
        }, "[k, 2]: (fed row, slot whose content it copies) of each stand-in row (ZipAR)")
        .def_prop_ro("queries", [](nb::handle self) {
            const auto v = nb::cast<const py_plan&>(self).view();
            const std::size_t shape[2] = {v.queries.size(), 2};
            return out_array<const index_t, 2>(reinterpret_cast<const index_t*>(v.queries.data()), 2, shape, self);
        }, "[k, 2]: (fed row, target position) of each query row (LPD)")
        .def("rope", [](const py_plan& p, std::optional<nb::ndarray<nb::ro>> slots) {
            const auto v = p.view();
            std::vector<index_t> all;
            if (!slots) for (index_t s = 0; s < v.num_slots(); ++s) all.push_back(s);
            else all = check_slots(v, int32_span(*slots, "rope"), "rope");
            return rope_arrays(v, all);
        }, "slots"_a = nb::none(), "Rotary coordinates (t, h, w) of the slots (all by default) and a flag for zero rows (cos = sin = 0).")
        .def("positions", [](const py_plan& p, std::optional<nb::ndarray<nb::ro>> slots) {
            const auto v = p.view();
            std::vector<index_t> all;
            if (!slots) for (index_t s = 0; s < v.num_slots(); ++s) all.push_back(s);
            else all = check_slots(v, int32_span(*slots, "positions"), "positions");
            std::vector<index_t> out;
            for (index_t s : all) {
                const ordo::slot_entry& e = v.slots[static_cast<std::size_t>(s)];
                out.push_back(e.kind == ordo::slot_kind::token ? e.index : -1);
            }
            const std::size_t n = out.size();
            return owned<index_t, 1>(std::move(out), {n});
        }, "slots"_a = nb::none(), "The raster position (1-D position id) of each slot's token, -1 for prefix and transition slots.")
        .def("step", [](nb::handle self, index_t s) {
            const auto v = nb::cast<const py_plan&>(self).view();
            if (s < 0 || s >= v.num_steps()) fail("step " + std::to_string(s) + " is outside the plan's " + std::to_string(v.num_steps()) + " steps");
            const ordo::step_view st = v.step(s);
            std::vector<index_t> content;
            for (index_t r = 0; r < st.num_rows(); ++r) content.push_back(st.content_of(r));
            nb::list from;
            for (index_t k = 0; k < st.num_emitted(); ++k) {
                nb::list terms;
                for (const ordo::contribution& c : st.from(k))
                    terms.append(nb::make_tuple(static_cast<int>(c.row), std::string(v.header.head_names[c.head].view()), c.weight));
                from.append(terms);
            }
            nb::dict d;
            d["fed"] = view(st.fed.data(), st.fed.size(), self);
            d["content"] = owned<index_t, 1>(std::move(content), {st.fed.size()});
            d["emitted"] = view(st.emitted.data(), st.emitted.size(), self);
            d["from"] = from;
            return d;
        }, "s"_a, "One step: the fed slots, the slot whose content each row carries, the positions emitted and each one's (row, head, weight) terms.")
        .def("dense_mask", [](const py_plan& p, nb::ndarray<nb::ro> q_slots, std::optional<index_t> kv_len) {
            const auto v = p.view();
            const std::vector<index_t> q = check_slots(v, int32_span(q_slots, "dense_mask"), "dense_mask");
            return dense(v, q, kv_len ? *kv_len : ordo::kv_cache_len(v));
        }, "q_slots"_a, "kv_len"_a = nb::none(), "bool [rows, kv_len]: which kv slots each query slot sees (kv_len: the decode cache by default).")
        .def("train_mask", [](const py_plan& p) {
            const auto v = p.view();
            const std::vector<index_t> q = ordo::train_rows(v);
            return dense(v, q, v.header.train_slots);
        }, "bool [train_slots, train_slots]: the teacher-forcing forward's mask.")
        .def("pack_mask", [](const py_plan& p, nb::ndarray<nb::ro> q_slots, index_t kv_len) {
            const auto v = p.view();
            const std::vector<index_t> q = check_slots(v, int32_span(q_slots, "pack_mask"), "pack_mask");
            if (kv_len < 0) fail("pack_mask: kv_len must be >= 0");
            std::vector<std::uint8_t> out(ordo::packed_mask_bytes(q.size(), static_cast<std::size_t>(kv_len)));
            ordo::pack_mask(v, q, kv_len, out);
            const std::size_t n = out.size();
            return owned<std::uint8_t, 1>(std::move(out), {n});
        }, "q_slots"_a, "kv_len"_a, "FlashInfer's packed mask: the rows x kv bits row-major, flattened, 8 per byte, little-endian bit order.")
        .def("block_mask", [](const py_plan& p, nb::ndarray<nb::ro> q_slots, index_t kv_len, index_t block_q, index_t block_kv) {
            const auto v = p.view();
            const std::vector<index_t> q = check_slots(v, int32_span(q_slots, "block_mask"), "block_mask");
            ordo::block_mask bm = ordo::make_block_mask(v, q, kv_len, block_q, block_kv);
            nb::dict d;
            const std::size_t a = bm.full_offsets.size(), b = bm.full_blocks.size(), c = bm.partial_offsets.size(), e = bm.partial_blocks.size();
            d["full_offsets"] = owned<index_t, 1>(std::move(bm.full_offsets), {a});
            d["full_blocks"] = owned<index_t, 1>(std::move(bm.full_blocks), {b});
            d["partial_offsets"] = owned<index_t, 1>(std::move(bm.partial_offsets), {c});
            d["partial_blocks"] = owned<index_t, 1>(std::move(bm.partial_blocks), {e});
            return d;
        }, "q_slots"_a, "kv_len"_a, "block_q"_a, "block_kv"_a,
             "The block-sparse summary: per query block (CSR), the kv blocks all of whose pairs are visible (full) and those with some (partial).")
        .def("visible", [](const py_plan& p, index_t q, index_t kv) {
            const auto v = p.view();
            if (q < 0 || q >= v.num_slots()) fail("visible: query slot " + std::to_string(q) + " is outside the plan");
            return ordo::visible(v, q, kv);
        }, "q"_a, "kv"_a)
        .def("to_json", [](const py_plan& p) { return ordo::plan_to_json(p.view(), p.policy); }, "The plan exchange format (docs/plan-format.md).")
        .def("to_text", [](const py_plan& p) { return ordo::plan_to_text(p.view(), p.policy); })
        .def("__eq__", [](const py_plan& a, const py_plan& b) { return ordo::same_plan(a.view(), b.view()); })
        .def("__repr__", [](const py_plan& p) {
            return "ordo.Plan('" + p.policy + "', '" + p.view().grid().str() + "', steps=" + std::to_string(p.view().num_steps()) + ")";
        });

    m.def("plan", [](const std::string& policy, const std::string& grid, index_t prefix) {
        const ordo::any_policy pol = ordo::parse_policy(policy);
        return py_plan{std::make_shared<const ordo::plan>(ordo::make_plan(pol, ordo::parse_grid(grid), prefix)), ordo::spec_of(pol)};
    }, "policy"_a, "grid"_a, "prefix"_a = 1, "The plan of a built-in order ('raster', 'par:2x2', 'par:2x2+nar', 'nar', 'zipar:8') on a grid ('24x24', '4x16x16').");
    m.def("policies", [](const std::string& grid) { return ordo::builtin_policies(ordo::parse_grid(grid)); }, "grid"_a,
          "The built-in orders worth comparing on a grid.");
    m.def("plan_from_json", [](const std::string& text) {
        ordo::plan_document d = ordo::plan_from_json(text);
        return py_plan{std::make_shared<const ordo::plan>(std::move(d.plan)), d.policy};
    }, "text"_a, "Reads the plan exchange format back (every rule checked).");
    m.def("plan_from_steps", [](const std::string& grid, const nb::list& steps, index_t prefix, std::optional<nb::list> layout, const std::string& mask,
                                 const std::vector<std::string>& heads, const std::string& encoding, const std::string& forcing, const std::string& policy) {
        return py_plan{std::make_shared<const ordo::plan>(plan_from_steps(grid, steps, prefix, layout, mask, heads, encoding, forcing)), policy};
    }, "grid"_a, "steps"_a, "prefix"_a = 1, "layout"_a = nb::none(), "mask"_a = "step_causal", "heads"_a = std::vector<std::string>{"main"},
          "encoding"_a = "rope", "forcing"_a = "shifted", "policy"_a = "python",
          "A plan from an order written in Python, through the same builder and rules as a C++ policy.\n\n"
          "steps: a list of {'feed': [slot, ... | (slot, copy_of)], 'emit': [(position, row) | (position, [(row, head, weight), ...])]};\n"
          "layout: the slots after the prefix, in order: positions, or 'M' for a transition token (default: every position, raster).");
    m.def("packed_mask_indptr", [](const std::vector<long long>& q_rows, const std::vector<long long>& kv_lens) {
        const std::vector<index_t> q = int_list(q_rows, "q_rows"), kv = int_list(kv_lens, "kv_lens");
        std::vector<std::int64_t> out(q.size() + 1);
        ordo::packed_mask_indptr(q, kv, out);
        const std::size_t n = out.size();
        return owned<std::int64_t, 1>(std::move(out), {n});
    }, "q_rows"_a, "kv_lens"_a, "Byte offsets of each request's packed mask in a batch (FlashInfer's mask_indptr).");

    // ---- the session ----
    nb::class_<py_batch>(m, "StepBatch", "What the model runs for one step. The arrays are views of the session's buffers, valid until its next commit().")
        .def_prop_ro("step", [](const py_batch& b) { return b.b.step; })
        .def_prop_ro("num_sequences", [](const py_batch& b) { return b.b.num_sequences; }, "requests x halves: [cond of every request; uncond of every request] with CFG")
        .def_prop_ro("num_rows", [](const py_batch& b) { return b.b.num_rows; })
        .def_prop_ro("num_heads", [](const py_batch& b) { return b.b.num_heads; })
        .def_prop_ro("vocab", [](const py_batch& b) { return b.b.vocab; })
        .def_prop_ro("per_request_positions", [](const py_batch& b) { return b.b.per_request_positions; },
                     "some request brings its own order: read each row's cell per sequence (input_cell), not one rope() per row")
        .def_prop_ro("written_through", [](const py_batch& b) { return b.b.written_through; },
                     "visible slots with fed_step > written_through are not written yet: they read as K = V = 0 (ZipAR)")
        .def_prop_ro("logits_shape", [](const py_batch& b) { return nb::make_tuple(b.b.num_sequences, b.b.num_rows, b.b.num_heads, b.b.vocab); })
        .def_prop_ro("slots", [](nb::handle self) { const py_batch& b = nb::cast<const py_batch&>(self); return view(b.b.slots.data(), b.b.slots.size(), self); },
                     "the cache slot of each row")
        .def_prop_ro("input_kind", [](nb::handle self) { return input_field<std::uint8_t>(self, offsetof(ordo::fed_input, kind)); },
                     "[sequences, rows]: 0 prefix row, 1 token, 2 transition token, 3 query (LPD)")
        .def_prop_ro("input_value", [](nb::handle self) { return input_field<index_t>(self, offsetof(ordo::fed_input, value)); },
                     "[sequences, rows]: the id to embed (class label, token id, transition number)")
        .def_prop_ro("input_index", [](nb::handle self) { return input_field<index_t>(self, offsetof(ordo::fed_input, index)); },
                     "[sequences, rows]: the prefix row, position or transition number the row's content is (a query: its target)")
        .def_prop_ro("input_cell", [](nb::handle self) { return input_field<index_t>(self, offsetof(ordo::fed_input, cell)); },
                     "[sequences, rows]: the grid cell of a token's or query's position in the sequence's request (-1 otherwise)")
        .def("rope", [](const py_batch& b) { return rope_arrays(b.b.plan, b.b.slots); }, "Rotary coordinates (t, h, w) of each row and its zero flag.")
        .def_prop_ro("window_steps", [](const py_batch& b) { return b.b.window_steps; },
                     "1, or in a JacobiSession's window the plan steps [step, step + window_steps) whose rows the batch feeds in order")
        .def("mask", [](const py_batch& b, std::optional<index_t> kv_len) {
            return dense_step(b.b.plan, b.b.step, kv_len ? *kv_len : ordo::kv_cache_len(b.b.plan), b.b.window_steps);
        }, "kv_len"_a = nb::none(), "bool [rows, kv_len]: the kv slots each row sees (an ARPG cross query: every slot written through the step).")
        .def("written", [](const py_batch& b, std::optional<index_t> kv_len) {
            const index_t n = kv_len ? *kv_len : ordo::kv_cache_len(b.b.plan);
            std::vector<std::uint8_t> w(static_cast<std::size_t>(std::max<index_t>(n, 0)));
            for (index_t kv = 0; kv < n && kv < b.b.plan.num_slots(); ++kv) w[static_cast<std::size_t>(kv)] = ordo::written(b.b.plan.fed_step.data(), kv, b.b.written_through);
            const std::size_t size = w.size();
            return owned<std::uint8_t, 1>(std::move(w), {size});
        }, "kv_len"_a = nb::none(), "Per kv slot: does it hold what the plan wrote by this step? (Visible slots that do not read as zeros.)");

    nb::class_<py_session>(m, "Session", "The decode loop step by step: next() says what to run, commit(logits) mixes heads, guides, samples and records.")
        .def("__init__", [](py_session* self, const py_plan& plan, const std::vector<long long>& labels, index_t vocab, float cfg, index_t cfg_interval,
                            std::uint64_t seed, index_t null_label, std::optional<std::vector<long long>> ids, float temperature, index_t top_k, float top_p,
                            bool greedy, std::optional<std::vector<std::vector<long long>>> orders, const std::string& cfg_ramp, float cfg_start) {
            init_session(self, plan, labels, vocab, cfg, cfg_interval, seed, null_label, ids, sampling{temperature, top_k, top_p, greedy}, orders, cfg_ramp,
                         cfg_start);
        }, "plan"_a, "labels"_a, "vocab"_a, nb::kw_only(), "cfg"_a = 1.0f, "cfg_interval"_a = -1, "seed"_a = 0, "null_label"_a = 0, "ids"_a = nb::none(),
             "temperature"_a = 1.0f, "top_k"_a = 0, "top_p"_a = 1.0f, "greedy"_a = false, "orders"_a = nb::none(), "cfg_ramp"_a = "per_step", "cfg_start"_a = 1.0f,
             "One request per label (ids key each one's random stream; default 0, 1, ...). cfg > 1: classifier-free guidance with the null_label "
             "in the uncond half (cfg_ramp: linear_in_rank, LPD's per-token scale; linear_in_step_start, RandAR's per call from cfg_start; linear_in_step_end, ARPG's). orders: one position table per "
             "request (grid cell of each plan position) over a schedule plan such as lpd:20,seed=request. Sampling as LlamaGen: temperature, "
             "top-k, top-p, then a multinomial draw (or argmax: greedy=True).")
        .def_prop_ro("done", [](py_session& s) { return s.visit([](auto& x) { return x.done(); }); })
        .def_prop_ro("step", [](py_session& s) { return s.visit([](auto& x) { return x.step(); }); })
        .def_prop_ro("pending", [](py_session& s) { return s.visit([](auto& x) { return x.pending(); }); })
        .def_prop_ro("num_sequences", [](py_session& s) { return s.visit([](auto& x) { return x.num_sequences(); }); })
        .def_prop_ro("num_requests", [](py_session& s) { return s.visit([](auto& x) { return x.num_requests(); }); })
        .def_prop_ro("guidance_scale", [](py_session& s) { return s.visit([](auto& x) { return x.guidance_scale(); }); })
        .def("next", [](nb::handle self) {
            py_session& s = nb::cast<py_session&>(self);
            const ordo::step_batch& b = s.visit([](auto& x) -> const ordo::step_batch& { return x.next(); });
            return py_batch{nb::borrow(self), b};
        }, "The batch of the current step (a second call before commit() is an error; cancel() drops it).")
        .def("commit", [](py_session& s, nb::ndarray<nb::ro> logits) { s.visit([&](auto& x) { x.commit(logits_span(logits, "commit")); }); }, "logits"_a, "Consumes float32 logits [sequences, rows, heads, vocab] (C-contiguous, CPU; not copied): mixes heads, applies CFG, samples, records.")
        .def("final_logits", [](py_session& s, nb::ndarray<nb::ro> logits, index_t request, index_t k) {
            std::vector<float> out(static_cast<std::size_t>(s.vocab));
            s.visit([&](auto& x) { x.final_logits(logits_span(logits, "final_logits"), request, k, out); });
            return owned<float, 1>(std::move(out), {static_cast<std::size_t>(s.vocab)});
        }, "logits"_a, "request"_a, "k"_a,
             "The logits the sampler sees for the k-th position the pending step emits, for request i (the plan's head mix, then CFG).")
        .def("tokens", [](py_session& s, index_t i) { return request_tokens(s, i); }, "i"_a = 0,
             "Request i's tokens in raster order (-1 where not decoded yet), a copy.")
        .def("rewind", [](py_session& s, index_t step) { s.visit([&](auto& x) { x.rewind(step); }); }, "step"_a)
        .def("cancel", [](py_session& s) { s.visit([](auto& x) { x.cancel(); }); });

    nb::class_<py_jacobi_session>(m, "JacobiSession",
                                  "Speculative Jacobi decoding (SJD; SCD with a coupling) of a raster plan, step by step: next() gives a window's batch "
                                  "(its rows are the plan steps [step, step + window_steps)), commit(logits) runs the speculative test. Lossless: the "
                                  "tokens follow raster decoding with the same sampling.")
        .def("__init__", [](py_jacobi_session* self, const py_plan& plan, const std::vector<long long>& labels, index_t vocab, index_t window,
                            const std::string& draft_init, const std::string& coupling, float cfg, std::uint64_t seed, index_t null_label,
                            std::optional<std::vector<long long>> ids, float temperature, index_t top_k, float top_p, bool greedy) {
            const std::vector<ordo::request> reqs = make_requests(labels, ids);
            const ordo::jacobi_options j = jacobi_from(window, draft_init, coupling, "JacobiSession");
            ordo::session_options o;
            o.guidance.scale = cfg;
            o.seed = seed;
            o.null_label = null_label;
            sampling{temperature, top_k, top_p, greedy}.with_chain([&](auto chain) {
                using session_t = ordo::jacobi_session<decltype(chain)>;
                new (self) py_jacobi_session{plan.p, jacobi_variant(std::in_place_type<session_t>, plan.view(), std::span<const ordo::request>(reqs), chain, vocab, o, j)};
            });
        }, "plan"_a, "labels"_a, "vocab"_a, nb::kw_only(), "window"_a, "draft_init"_a = "uniform", "coupling"_a = "none", "cfg"_a = 1.0f, "seed"_a = 0,
             "null_label"_a = 0, "ids"_a = nb::none(), "temperature"_a = 1.0f, "top_k"_a = 0, "top_p"_a = 1.0f, "greedy"_a = false,
             "One request per label, as Session. window: the rows of drafts a forward checks (1 .. positions; clamped near the end); draft_init "
             "uniform | left_neighbour; coupling none (SJD) | gumbel (SCD-GS) | maximal (SCD-MC).")
        .def_prop_ro("done", [](py_jacobi_session& s) { return s.visit([](auto& x) { return x.done(); }); })
        .def_prop_ro("pending", [](py_jacobi_session& s) { return s.visit([](auto& x) { return x.pending(); }); })
        .def_prop_ro("num_sequences", [](py_jacobi_session& s) { return s.visit([](auto& x) { return x.num_sequences(); }); })
        .def_prop_ro("num_requests", [](py_jacobi_session& s) { return s.visit([](auto& x) { return x.num_requests(); }); })
        .def_prop_ro("window", [](py_jacobi_session& s) { return s.visit([](auto& x) { return x.window(); }); })
        .def_prop_ro("max_rows", [](py_jacobi_session& s) { return s.visit([](auto& x) { return x.max_rows(); }); }, "the most rows a window feeds (what a model sizes for)")
        .def_prop_ro("forward_passes", [](py_jacobi_session& s) { return s.visit([](auto& x) { return x.forward_passes(); }); }, "windows committed")
        .def("iterations", [](py_jacobi_session& s, index_t i) {
            return s.visit([&](auto& x) {
                check_request(x, i, "iterations");
                return x.iterations(i);
            });
        }, "i"_a, "The windows request i took part in (the forwards it needs decoded alone).")
        .def("frontier", [](py_jacobi_session& s, index_t i) {
            return s.visit([&](auto& x) {
                check_request(x, i, "frontier");
                return x.frontier(i);
            });
        }, "i"_a, "Positions [0, frontier) of request i are accepted.")
        .def("next", [](nb::handle self) {
            py_jacobi_session& s = nb::cast<py_jacobi_session&>(self);
            const ordo::step_batch& b = s.visit([](auto& x) -> const ordo::step_batch& { return x.next(); });
            return py_batch{nb::borrow(self), b};
        }, "The batch of the next window (a second call before commit() is an error; cancel() drops it).")
        .def("commit", [](py_jacobi_session& s, nb::ndarray<nb::ro> logits) { s.visit([&](auto& x) { x.commit(logits_span(logits, "commit")); }); }, "logits"_a,
             "Consumes float32 logits [sequences, rows, heads, vocab] of the window: accepts drafts left to right, resamples at the first rejection. "
             "On bad logits (NaN, wrong size) it raises and changes nothing.")
        .def("tokens", [](py_jacobi_session& s, index_t i) { return request_tokens(s, i); }, "i"_a = 0,
             "Request i's accepted tokens in raster order (-1 past its frontier), a copy.")
        .def("cancel", [](py_jacobi_session& s) { s.visit([](auto& x) { x.cancel(); }); });

    // ---- the CPU backend (LlamaGen / PAR / NAR / RandAR GPT, LPD, ARPG on Eigen) ----
    nb::class_<py_model>(m, "Model", "A checkpoint on the CPU backend (fp32, Eigen): LlamaGen / PAR / NAR / RandAR, LPD or ARPG, read off its keys.")
        .def("__init__", [](py_model* self, const std::string& weights, const std::optional<std::string>& config, const std::string& weight_dtype) {
            const ordo::eigen::weight_dtype dtype = ordo::eigen::parse_weight_dtype(weight_dtype);
            const ordo::io::safetensors file = ordo::io::safetensors::open(weights);
            if (!config) fail("Model: give config=, the checkpoint's JSON (LlamaGen ModelArgs; LPD's / ARPG's head count)");
            if (dtype != ordo::eigen::weight_dtype::fp32 && ordo::models::family_of(file) != ordo::models::family::llamagen)
                fail("Model: weight_dtype=\"" + weight_dtype + "\" is for the LlamaGen-family GPT; LPD and ARPG run in fp32");
            switch (ordo::models::family_of(file)) {
                case ordo::models::family::lpd: {
                    auto w = ordo::models::lpd::load_checkpoint(file, ordo::models::lpd::num_heads_from_weights_json(*config));
                    const auto c = w.config();
                    new (self) py_model{std::move(w), "LPD " + c.str(), c.vocab_size, c.num_classes, c.null_label()};
                    return;
                }
                case ordo::models::family::arpg: {
                    auto w = ordo::models::arpg::load_checkpoint(file, ordo::models::arpg::n_head_from_weights_json(*config));
                    const auto c = w.config();
                    new (self) py_model{std::move(w), "ARPG " + c.str(), c.vocab_size, c.num_classes, c.null_label()};
                    return;
                }
                case ordo::models::family::llamagen: {
                    const ordo::models::llamagen::gpt_config c = ordo::models::llamagen::model_args_from_file(*config);
                    new (self) py_model{ordo::models::llamagen::load_weights(file, c), c.str(), c.vocab_size, c.num_classes, c.null_label(), nullptr};
                    if (dtype == ordo::eigen::weight_dtype::bf16)
                        self->bf16 = std::make_shared<const ordo::eigen::gpt_bf16_matrices>(std::get<ordo::models::llamagen::gpt_weights>(self->weights));
                    return;
                }
            }
        }, "weights"_a, "config"_a = nb::none(), nb::kw_only(), "weight_dtype"_a = "fp32",
             "Loads a safetensors checkpoint with its JSON config. weight_dtype=\"bf16\": the GPT's multiplied matrices in bf16 (half the "
             "bytes per step, fp32 accumulation; a copy besides the fp32 weights).")
        .def_prop_ro("weight_dtype", [](const py_model& m) { return std::string(m.bf16 ? "bf16" : "fp32"); })
        .def_prop_ro("vocab_size", [](const py_model& m) { return m.vocab; })
        .def_prop_ro("num_classes", [](const py_model& m) { return m.classes; })
        .def_prop_ro("null_label", [](const py_model& m) { return m.null; })
        .def_prop_ro("config", [](const py_model& m) { return m.description; })
        .def("generate", [](const py_model& m, const py_plan& p, const std::vector<long long>& labels, float cfg, index_t cfg_interval, std::uint64_t seed,
                            float temperature, index_t top_k, float top_p, bool greedy, const std::string& cfg_ramp, float cfg_start,
                            std::optional<std::vector<std::vector<long long>>> orders, index_t jacobi_window, const std::string& draft_init,
                            const std::string& coupling, bool return_stats) -> nb::object {
            std::vector<ordo::request> reqs = make_requests(labels, std::nullopt);
            std::vector<std::vector<index_t>> tables;  // read when the session is made
            if (orders) {
                if (orders->size() != reqs.size()) fail("generate: " + std::to_string(orders->size()) + " orders for " + std::to_string(reqs.size()) + " labels");
                for (const auto& o : *orders) tables.push_back(int_list(o, "orders"));
                for (std::size_t i = 0; i < reqs.size(); ++i) reqs[i].order = tables[i];
            }
            ordo::generate_options o;
            o.session.guidance.scale = cfg;
            o.session.guidance.interval = cfg_interval;
            o.session.guidance.ramp = parse_ramp(cfg_ramp);
            o.session.guidance.start = cfg_start;
            o.session.seed = seed;
            o.session.null_label = m.null;
            o.jacobi = jacobi_from(jacobi_window, draft_init, coupling, "generate");
            if (jacobi_window < 0) fail("generate: jacobi_window must be >= 0 (0: off), got " + std::to_string(jacobi_window));
            if (jacobi_window == 0 && (draft_init != "uniform" || coupling != "none"))
                fail("generate: draft_init and coupling are options of speculative decoding: give jacobi_window too");
            ordo::generate_stats stats;
            o.stats = &stats;
            const index_t seqs = static_cast<index_t>(reqs.size()) * (o.session.guidance.active() ? 2 : 1);
            std::vector<std::vector<index_t>> grids;
            m.with_model([&](auto& model) {
                ordo::contiguous_kv_cache<float> cache(model.num_layers(), seqs, ordo::kv_cache_len(p.view()), model.cache_width());
                sampling{temperature, top_k, top_p, greedy}.with_chain([&](auto chain) {
                    nb::gil_scoped_release release;
                    grids = ordo::generate(model, cache, p.view(), chain, std::span<const ordo::request>(reqs), o);
                });
                return 0;
            });
            const std::size_t n = static_cast<std::size_t>(p.view().num_positions());
            std::vector<index_t> flat;
            for (const auto& g : grids) flat.insert(flat.end(), g.begin(), g.end());
            nb::object tokens = nb::cast(owned<index_t, 2>(std::move(flat), {grids.size(), n}));
            if (!return_stats) return tokens;
            nb::dict st;
            st["forward_passes"] = stats.forward_passes;
            st["iterations"] = stats.iterations;
            return nb::make_tuple(tokens, st);
        }, "plan"_a, "labels"_a, nb::kw_only(), "cfg"_a = 1.0f, "cfg_interval"_a = -1, "seed"_a = 0, "temperature"_a = 1.0f, "top_k"_a = 0, "top_p"_a = 1.0f,
             "greedy"_a = false, "cfg_ramp"_a = "per_step", "cfg_start"_a = 1.0f, "orders"_a = nb::none(), "jacobi_window"_a = 0,
             "draft_init"_a = "uniform", "coupling"_a = "none", "return_stats"_a = false,
             "Decodes one image per label under the plan: int32 [images, positions] in raster order (as `ordo generate`). cfg_ramp: the "
             "method's guidance rule (linear_in_rank: LPD, linear_in_step_start: RandAR from cfg_start, linear_in_step_end: ARPG); orders: "
             "one position table per image over a seed=request plan. jacobi_window > 0: speculative Jacobi decoding of a raster plan "
             "(lossless; draft_init uniform | left_neighbour, coupling none (SJD) | gumbel (SCD-GS) | maximal (SCD-MC)). return_stats: "
             "also return {forward_passes, iterations (per image: the forwards that advanced it)}.")
        .def("teacher_forcing_logits", [](const py_model& m, const py_plan& p, nb::ndarray<nb::ro> tokens, index_t label) {
            const auto v = p.view();
            std::vector<float> out = m.with_model([&](auto& model) {
                ordo::contiguous_kv_cache<float> cache(model.num_layers(), 1, ordo::teacher_cache_len(v), model.cache_width());
                return ordo::teacher_forcing_logits(model, cache, v, int32_span(tokens, "teacher_forcing_logits"), label);
            });
            return owned<float, 2>(std::move(out), {static_cast<std::size_t>(v.num_positions()), static_cast<std::size_t>(m.vocab)});
        }, "plan"_a, "tokens"_a, "label"_a, "float32 [positions, vocab]: the training forward's logits for a token grid (int32, raster order; LPD and ARPG replay the plan's steps on it).");

    // ---- the VQ tokenizer's decoder: tokens to pixels ----
    nb::class_<py_vq>(m, "VQDecoder", "A VQ tokenizer's decoder on the CPU (LlamaGen's VQModel.decode_code, fp32, Eigen): token grids to uint8 images.")
        .def("__init__", [](py_vq* self, const std::string& path) {
            const ordo::io::safetensors file = ordo::io::safetensors::open(path);
            auto w = std::make_unique<ordo::models::vq::vq_weights>(ordo::models::vq::load_checkpoint(file));
            auto d = std::make_unique<ordo::eigen::vq_decoder>(*w);
            new (self) py_vq{std::move(w), std::move(d)};
        }, "path"_a, "Loads a safetensors checkpoint with the official key names (the shape is read off the tensors; encoder.*, quant_conv.* and "
                     "quantize.codebook_used are skipped).")
        .def_prop_ro("config", [](const py_vq& v) { return v.weights->config().str(); })
        .def_prop_ro("codebook_size", [](const py_vq& v) { return v.weights->config().codebook_size; })
        .def_prop_ro("downsample", [](const py_vq& v) { return v.weights->config().downsample(); }, "pixels per token along each side")
        .def("decode", [](py_vq& v, nb::ndarray<nb::ro> tokens) {
            if (tokens.device_type() != nb::device::cpu::value) fail("VQDecoder.decode: the tokens must be in CPU memory");
            const bool i32 = tokens.dtype() == nb::dtype<std::int32_t>(), i64 = tokens.dtype() == nb::dtype<std::int64_t>();
            if (!i32 && !i64) fail("VQDecoder.decode: expected int32 or int64 token ids");
            std::size_t batch = 0, h = 0, w = 0;
            if (tokens.ndim() == 3) {
                batch = tokens.shape(0), h = tokens.shape(1), w = tokens.shape(2);
            } else if (tokens.ndim() == 2) {  // [B, h*w] as Model.generate and decode_code take them: square grids
                batch = tokens.shape(0);
                h = w = static_cast<std::size_t>(std::llround(std::sqrt(static_cast<double>(tokens.shape(1)))));
                if (h * w != tokens.shape(1))
                    fail("VQDecoder.decode: " + std::to_string(tokens.shape(1)) + " tokens per image is not a square grid; give [images, rows, cols]");
            } else {
                fail("VQDecoder.decode: expected [images, rows, cols] or [images, rows*cols] (square), got " + std::to_string(tokens.ndim()) + " dimensions");
            }
            if (batch == 0 || h == 0 || w == 0) fail("VQDecoder.decode: empty token array");
            std::int64_t expect = 1;
            for (std::size_t d = tokens.ndim(); d-- > 0;) {
                if (tokens.shape(d) > 1 && tokens.stride(d) != expect) fail("VQDecoder.decode: the token array must be C-contiguous");
                expect *= static_cast<std::int64_t>(tokens.shape(d));
            }
            if (h > static_cast<std::size_t>(ordo::max_index) || w > static_cast<std::size_t>(ordo::max_index) || batch > static_cast<std::size_t>(ordo::max_index))
                fail("VQDecoder.decode: the token array is too large");
            const auto H = static_cast<index_t>(h), W = static_cast<index_t>(w), B = static_cast<index_t>(batch);
            v.decoder->check_grid(H, W);
            const std::size_t n = batch * h * w;
            std::vector<std::uint8_t> images(batch * 3 * static_cast<std::size_t>(v.decoder->image_height(H)) * static_cast<std::size_t>(v.decoder->image_width(W)));
            {
                nb::gil_scoped_release unlocked;
                if (i32) v.decoder->decode_uint8(std::span<const std::int32_t>(static_cast<const std::int32_t*>(tokens.data()), n), B, H, W, std::span<std::uint8_t>(images));
                else v.decoder->decode_uint8(std::span<const std::int64_t>(static_cast<const std::int64_t*>(tokens.data()), n), B, H, W, std::span<std::uint8_t>(images));
            }
            return owned<std::uint8_t, 4>(std::move(images), {batch, static_cast<std::size_t>(v.decoder->image_height(H)), static_cast<std::size_t>(v.decoder->image_width(W)), 3});
        }, "tokens"_a, "uint8 [images, H, W, 3] (R, G, B): token ids int32/int64 [images, rows, cols] (or [images, rows*cols], square) through the "
                       "decoder and the official post-processing floor(clamp(127.5 x + 128, 0, 255)).");
    // ---- the CPU backend's threads ----
    m.def("set_num_threads", [](int n) { ordo::eigen::set_threads(n); }, "n"_a,
          "Threads of the CPU backend's forward passes (and of Eigen's products), process-wide; default: all cores (OMP_NUM_THREADS). "
          "Results are bit-identical for any count. Beside PyTorch in one process, keep ordo's and torch's counts within the cores "
          "(docs/cpu-backend.md, Threads).");
    m.def("get_num_threads", [] { return ordo::eigen::threads(); }, "The CPU backend's thread count.");

    // ---- the oracle ----
    m.def("exact_kl", [](const py_plan& p, const std::string& kernel, double ell, double nugget) {
        if (kernel != "exp" && kernel != "sqexp") fail("exact_kl: kernel must be \"exp\" or \"sqexp\", got \"" + kernel + "\"");
        ordo::oracle::field_kernel k = ordo::oracle::field_kernel::isotropic(
            kernel == "exp" ? ordo::oracle::kernel_shape::exponential : ordo::oracle::kernel_shape::squared_exponential, ell, nugget);
        k.validate();
        ordo::oracle::plan_kl kl;
        {
            nb::gil_scoped_release release;
            kl = ordo::oracle::exact_kl(p.view(), k);
        }
        const std::size_t n = kl.per_step.size();
        return nb::make_tuple(kl.total, owned<double, 1>(std::move(kl.per_step), {n}));
    }, "plan"_a, "kernel"_a = "exp", "ell"_a = 2.0, "nugget"_a = 1e-4,
          "Exact KL (nats) of the plan's order on a Gaussian token field, and its per-step terms (docs/oracle.md).");

    // ---- for the overhead benchmark: the C++ session's loop alone ----
    m.def("_time_cpp_session", [](const py_plan& p, index_t batch, index_t vocab, index_t repeats) {
        std::vector<ordo::request> reqs;
        for (index_t i = 0; i < batch; ++i) reqs.push_back({0, static_cast<std::uint64_t>(i), {}});
        std::vector<float> logits;
        std::int64_t steps = 0;
        const auto t0 = std::chrono::steady_clock::now();
        for (index_t r = 0; r < repeats; ++r) {
            ordo::session s(p.view(), std::span<const ordo::request>(reqs),
                            ordo::make_sampler(ordo::temperature{}, ordo::top_k{}, ordo::top_p{}, ordo::greedy{}), vocab);
            while (!s.done()) {
                const ordo::step_batch& b = s.next();
                if (logits.size() != b.logits_size()) logits.assign(b.logits_size(), 0.5f);
                s.commit(logits);
                ++steps;
            }
        }
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / static_cast<double>(steps);
    }, "plan"_a, "batch"_a, "vocab"_a, "repeats"_a, "Seconds per step of a C++ session loop (greedy, constant logits).");
}
