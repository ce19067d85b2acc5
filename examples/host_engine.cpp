// A minimal host engine that owns the decode loop and embeds ordo through the session API, the way
// a serving engine with continuous batching would: two groups of requests with different orders
// (PAR-4x and NAR) advance side by side, one step of each per tick, and a third group joins late.
// The "model" is a toy: logits from a hash of each row's input and slot, with a small KV cache.
//
// The example doubles as a test: it checks that every request finished with a full token grid and
// that the late group got the same tokens it gets when run alone.
#include <cstdio>
#include <memory>
#include <vector>

#include <ordo/engine/generate.hpp>
#include <ordo/ordo.hpp>

namespace {

constexpr ordo::index_t kVocab = 64;

// Toy transformer stand-in: writes each fed row into the cache, then scores tokens from the row's
// own input and the number of cache rows it may see.
struct toy_model {
    ordo::index_t vocab_size() const { return kVocab; }
    ordo::index_t num_heads() const { return 2; }  // enough for NAR's R and B heads
    template <class C>
    void forward(const ordo::step_batch& b, C& cache, std::span<float> logits) {
        for (ordo::index_t s = 0; s < b.num_sequences; ++s)
            for (ordo::index_t r = 0; r < b.num_rows; ++r) cache.key(0, s, b.slots[r])[0] = static_cast<float>(b.input(s, r).value);
        for (ordo::index_t s = 0; s < b.num_sequences; ++s)
            for (ordo::index_t r = 0; r < b.num_rows; ++r) {
                unsigned seen = 0;
                for (ordo::index_t kv = 0; kv < cache.capacity(); ++kv)
                    if (ordo::visible(b.plan, b.slots[r], kv))  // a slot not written yet counts as 0 (ZipAR shows such slots)
                        seen = seen * 31 + (ordo::written(b.plan.fed_step.data(), kv, b.written_through) ? static_cast<unsigned>(cache.key(0, s, kv)[0]) : 0u);
                for (ordo::index_t h = 0; h < b.num_heads; ++h)
                    for (ordo::index_t v = 0; v < kVocab; ++v)
                        logits[static_cast<std::size_t>(((s * b.num_rows + r) * b.num_heads + h) * kVocab + v)] =
                            static_cast<float>((seen * 2654435761u + static_cast<unsigned>(v * 97 + h)) % 1000) / 100.0f;
            }
    }
};

// One group: a plan, its requests, a session and a cache sized from the plan.
struct group {
    std::string spec;
    ordo::plan plan;
    std::vector<ordo::request> requests;
    ordo::session<decltype(ordo::make_sampler(ordo::top_k{16}, ordo::multinomial{}))> session;
    ordo::contiguous_kv_cache<float> cache;
    std::vector<float> logits;
    group(const char* s, ordo::grid_shape g, std::vector<ordo::request> reqs, ordo::session_options o)
        : spec(s), plan(ordo::make_plan(ordo::parse_policy(s), g)), requests(std::move(reqs)),
          session(plan.view(), requests, ordo::make_sampler(ordo::top_k{16}, ordo::multinomial{}), kVocab, o),
          cache(1, session.num_sequences(), ordo::kv_cache_len(plan), 1) {}
};

}  // namespace

int main() {
    toy_model model;
    ordo::session_options o;
    o.guidance.scale = 2.0f;
    o.null_label = 1000;
    o.seed = 42;
    const auto grid = ordo::grid_shape::make(8, 8);
    std::vector<std::unique_ptr<group>> groups;
    groups.push_back(std::make_unique<group>("par:2x2", grid, std::vector<ordo::request>{{1, 1}, {2, 2}}, o));
    groups.push_back(std::make_unique<group>("nar", grid, std::vector<ordo::request>{{3, 3}}, o));

    for (int tick = 0;; ++tick) {
        if (tick == 5) groups.push_back(std::make_unique<group>("par:2x2", grid, std::vector<ordo::request>{{7, 7}}, o));  // joins late
        bool any = false;
        for (auto& g : groups) {
            if (g->session.done()) continue;
            any = true;
            const ordo::step_batch& b = g->session.next();  // what to run
            g->logits.resize(b.logits_size());
            model.forward(b, g->cache, g->logits);          // a real engine batches these across groups
            g->session.commit(g->logits);                   // mix heads, CFG, sample, record
        }
        if (!any) {
            std::printf("all groups finished after %d ticks\n", tick);
            break;
        }
    }
    bool ok = true;
    for (auto& g : groups)
        for (ordo::index_t i = 0; i < g->session.num_requests(); ++i) {
            std::printf("%s request %llu:", g->spec.c_str(),
                        static_cast<unsigned long long>(g->requests[static_cast<std::size_t>(i)].id));
            for (ordo::index_t t : g->session.tokens(i).first(8)) std::printf(" %d", t);
            std::printf(" ...\n");
            for (ordo::index_t t : g->session.tokens(i)) ok = ok && t >= 0 && t < kVocab;
        }
    // the late request's tokens equal a run on its own: batching and timing change nothing
    ordo::contiguous_kv_cache<float> cache(1, 2, ordo::kv_cache_len(groups[2]->plan), 1);
    const std::vector<ordo::request> alone{{7, 7}};
    ordo::generate_options go;
    go.session = o;
    const auto solo = ordo::generate(model, cache, groups[2]->plan.view(), ordo::make_sampler(ordo::top_k{16}, ordo::multinomial{}), std::span<const ordo::request>(alone), go);
    ok = ok && std::equal(solo[0].begin(), solo[0].end(), groups[2]->session.tokens(0).begin());
    std::printf("host engine %s\n", ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}
