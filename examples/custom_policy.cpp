// Writing your own decode order: a policy is a small value type with a mask mode, a build()
// and a spec(). Nothing in the library changes. This one decodes in "snake" (boustrophedon)
// order: left to right on even rows, right to left on odd rows, one token per step, each token
// read from the row of the token fed just before it.
//
// The example doubles as a test: it checks its own plan and exits non-zero if anything is off.
#include <cstdio>

#include <ordo/ordo.hpp>

struct snake {
    // queries see every slot fed in an earlier or the same step
    static constexpr ordo::mask_mode mask = ordo::mask_mode::step_causal;

    // optional: a closed form lets num_steps() skip building the plan
    constexpr ordo::index_t num_steps(ordo::grid_shape g) const { return g.size(); }

    constexpr ordo::index_t position(const ordo::grid_shape& g, ordo::index_t k) const {
        const ordo::index_t row = k / g.cols(), col = k % g.cols();  // rows of all frames, in turn
        return row * g.cols() + (row % 2 ? g.cols() - 1 - col : col);
    }

    constexpr void build(ordo::plan_builder& b) const {
        const ordo::grid_shape g = b.grid();
        b.set_heads({"main"});
        // slots in decode order, so the model sees its sequence in the order it was trained on
        for (ordo::index_t k = 0; k < g.size(); ++k) b.add_token_slot(position(g, k));
        b.begin_step();
        for (ordo::index_t i = 0; i < b.prefix(); ++i) b.feed(i);
        b.emit(position(g, 0), {{b.prefix() - 1, 0, 1.0f}});
        for (ordo::index_t k = 1; k < g.size(); ++k) {
            b.begin_step();
            b.feed(b.slot_of(position(g, k - 1)));
            b.emit(position(g, k), {{0, 0, 1.0f}});
        }
    }

    std::string spec() const { return "snake"; }
};

static_assert(ordo::decode_policy<snake>);
// Everything works at compile time for a static grid too.
static_assert(ordo::make_plan(snake{}, ordo::grid<6, 5>{}).num_steps() == 30);

int main() {
    const ordo::plan p = ordo::make_plan(snake{}, ordo::grid_shape::make(4, 6));
    std::printf("%s", ordo::step_map(p).c_str());
    // row 1 runs right to left: its last cell is decoded first
    const auto& step_of = p.view().step_of;
    const bool ok = step_of[6 + 5] == 6 && step_of[6 + 0] == 11 && p.num_steps() == 24 &&
                    !ordo::visible(p, p.view().slot_of[8], p.view().slot_of[7]);
    std::printf("snake plan %s\n", ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}
