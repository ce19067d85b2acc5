// A random-order policy's generation order as data (RandAR's and ARPG's official orders come from
// torch's RNG, which ordo does not reproduce): `--order FILE` of ordo plan, show and generate.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include <ordo/io/json.hpp>
#include <ordo/io/text_file.hpp>
#include <ordo/ordo.hpp>

namespace cli {

// A generation order saved as a JSON list of raster cells (a random-order method's order as data:
// RandAR's and ARPG's official orders come from torch's RNG).
inline std::vector<ordo::index_t> load_order(const std::string& path) {
    const std::string text = ordo::io::read_text_file(path, ordo::max_plan_json_bytes, "order file");
    const ordo::detail::json_document doc(text, path, ordo::max_plan_json_bytes);
    using jt = ordo::detail::json_document::type;
    const auto& root = doc.at(doc.root());
    if (root.kind != jt::array) throw ordo::error(path + ": an order is a JSON list of raster cells");
    std::vector<ordo::index_t> order;
    for (std::uint32_t i = 0; i < root.count; ++i) {
        const auto& v = doc.at(doc.element(doc.root(), i));
        if (v.kind != jt::number || !v.integral || v.number < 0 || v.number > ordo::max_grid_positions)
            throw ordo::error(path + ": entry " + std::to_string(i) + " is not a cell index");
        order.push_back(static_cast<ordo::index_t>(v.number));
    }
    return order;
}

// Gives `p` the order (randar, arpg); any other policy is refused by name.
inline void give_order(ordo::any_policy& p, const std::vector<ordo::index_t>& order) {
    std::visit(
        [&](auto& q) {
            if constexpr (requires { q.order.assign(order.begin(), order.end()); }) q.order = order;
            else throw ordo::error("--order gives a random-order policy its order (randar, arpg); " + q.spec() + " has its own");
        },
        p);
}

}  // namespace cli
