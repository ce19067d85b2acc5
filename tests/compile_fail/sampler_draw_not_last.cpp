// must not compile: the draw (greedy or multinomial) must be the last stage of a sampler chain
#include <ordo/engine/sampler.hpp>
int main() {
    auto chain = ordo::make_sampler(ordo::greedy{}, ordo::top_k{10}, ordo::multinomial{});
    return static_cast<int>(std::tuple_size_v<decltype(chain.stages)>);
}
