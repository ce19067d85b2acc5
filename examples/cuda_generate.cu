// The GPU backend in one page: load a checkpoint (here the official tiny NAR model of the golden
// data), put it on the GPU in bf16, and decode one class with NAR's neighbour frontier, sampling on
// the device, then once more with the host sampler to show the two paths give the same tokens.
//
//   example_cuda_generate WEIGHTS.safetensors CONFIG.json
//
// The example doubles as a test (ctest: example.cuda_generate): it exits 77 (skipped) without a
// CUDA device, 1 if the two paths disagree or a token is out of range.
#include <cstdio>
#include <string>

#include <ordo/cuda/generate.cuh>
#include <ordo/models/llamagen/checkpoint.hpp>
#include <ordo/models/llamagen/model_args.hpp>
#include <ordo/ordo.hpp>

int main(int argc, char** argv) try {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s WEIGHTS.safetensors CONFIG.json\n", argv[0]);
        return 2;
    }
    if (ordo::cuda::device_count() == 0) {
        std::puts("example_cuda_generate: no CUDA device present, skipping (exit 77)");
        return 77;
    }
    const ordo::models::llamagen::gpt_config cfg = ordo::models::llamagen::model_args_from_file(argv[2]);
    // host weights are read, uploaded (rounded to bf16) and freed
    const ordo::cuda::device_gpt_weights<__nv_bfloat16> weights(ordo::models::llamagen::load_weights(ordo::io::safetensors::open(argv[1]), cfg));
    ordo::cuda::gpt_model<__nv_bfloat16> model(weights);
    model.use_graphs(true);

    const ordo::plan p = ordo::make_plan(ordo::nar, ordo::grid_shape::make(8, 8));
    ordo::cuda::device_kv_cache<__nv_bfloat16> cache(model.num_layers(), 2, ordo::kv_cache_len(p), model.cache_width());
    const std::vector<ordo::request> requests{{3, 0, {}}};
    ordo::generate_options o;
    o.session.guidance.scale = 2.0f;
    o.session.null_label = cfg.null_label();
    o.session.seed = 1;
    const auto chain = ordo::make_sampler(ordo::top_k{50}, ordo::multinomial{});
    const auto on_device = ordo::cuda::generate(model, cache, p.view(), chain, requests, o);  // logits stay on the GPU
    const auto on_host = ordo::generate(model, cache, p.view(), chain, requests, o);          // logits to the host sampler
    std::printf("NAR, 8x8, %d steps, class 3, CFG 2, top-k 50, bf16 on the GPU:\n", p.num_steps());
    for (ordo::index_t h = 0; h < 8; ++h) {
        for (ordo::index_t w = 0; w < 8; ++w) std::printf(" %5d", on_device[0][static_cast<std::size_t>(h * 8 + w)]);
        std::printf("\n");
    }
    for (ordo::index_t t : on_device[0])
        if (t < 0 || t >= model.vocab_size()) {
            std::printf("token %d out of range\n", t);
            return 1;
        }
    if (on_device != on_host) {
        std::puts("device and host sampling disagree");
        return 1;
    }
    std::puts("device sampling and host sampling chose the same tokens");
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
