// ordo/show.hpp - the step map of a plan: every grid cell labelled with the step that emits it.
#pragma once

#include <string>

#include "plan.hpp"

namespace ordo {

// Text step map; with `color`, cells get an ANSI 256-colour background running from dark (early)
// to bright (late). Video grids print one block per frame.
inline std::string step_map(const plan_view& p, bool color = false) {
    const grid_shape& g = p.grid();
    const index_t last = p.num_steps() - 1;
    const std::size_t width = detail::itos(last).size();
    std::string o;
    for (index_t t = 0; t < g.frames(); ++t) {
        if (g.rank() == 3) o += "frame " + detail::itos(t) + "\n";
        for (index_t h = 0; h < g.rows(); ++h) {
            for (index_t w = 0; w < g.cols(); ++w) {
                const index_t s = p.step_of[static_cast<std::size_t>(g.index({t, h, w}))];
                std::string num = detail::itos(s);
                num.insert(num.begin(), width - num.size() + 1, ' ');
                if (color) {
                    // grayscale ramp 232..255, text flips to black on bright cells
                    const int shade = 232 + (last ? static_cast<int>(23LL * s / last) : 0);
                    o += "\x1b[48;5;" + detail::itos(shade) + (shade > 243 ? "m\x1b[30m" : "m\x1b[97m") + num + "\x1b[0m";
                } else {
                    o += num;
                }
            }
            o += '\n';
        }
    }
    return o;
}

}  // namespace ordo
