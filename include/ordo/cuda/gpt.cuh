// ordo/cuda/gpt.cuh - the LlamaGen GPT (with PAR's transition tokens and NAR's extra block + B head)
// on the GPU: the model of the Eigen backend (eigen/gpt.hpp), as an ordo model_for over the device
// caches, loading the same weights (models/llamagen/gpt_weights.hpp, models/llamagen/checkpoint.hpp: standard library
// only, no Eigen).
//
// Precision: W = float (fp32 weights, cuBLAS SGEMM) or __nv_bfloat16 (bf16 weights and GEMM inputs,
// fp32 accumulation). The residual stream, norms, RoPE, softmax and logits are fp32 in both; the
// KV cache is float or bf16 (the cache's value_type).
//
// A step: one small upload (each fed row's slot, rotary coordinates and embedding row, from pinned
// memory), then embed -> per layer [RMSNorm, QKV GEMM, RoPE + K/V write, masked attention, WO GEMM
// accumulating into the residual (beta = 1), RMSNorm, W1|W3 GEMM, SwiGLU, W2 GEMM into the
// residual] -> norm + output GEMM per head. prepare() uploads the plan and sizes everything, so a
// step allocates nothing.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "../models/llamagen/gpt_weights.hpp"
#include "../engine/generate.hpp"
#include "attention.cuh"
#include "kv_cache.cuh"
#include "plan.cuh"
#include "runtime.cuh"

namespace ordo::cuda {

inline void check(cublasStatus_t s, const char* what) {
    if (s != CUBLAS_STATUS_SUCCESS) throw error(std::string("cublas: ") + what + ": " + cublasGetStatusName(s) + " (" + cublasGetStatusString(s) + ")");
}

using models::llamagen::gpt_config;

namespace detail {
// fp32 -> bf16, round to nearest even (NaN stays NaN), on the host.
inline std::uint16_t bf16_bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
    return static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// x[i] (fp32) = the embedding row src[i] of `dim` elements.
template <class W>
__global__ void embed_kernel(const W* const* src, index_t dim, float* x) {
    const W* row = src[blockIdx.x];
    float* out = x + static_cast<std::size_t>(blockIdx.x) * static_cast<std::size_t>(dim);
    for (index_t i = static_cast<index_t>(threadIdx.x); i < dim; i += static_cast<index_t>(blockDim.x)) out[i] = to_float(row[i]);
}

// out = x / sqrt(mean(x^2) + eps) * weight, one block per row (the official RMSNorm in fp32).
template <class W, class Out>
__global__ void rms_norm_kernel(const float* x, const W* weight, index_t dim, float eps, Out* out) {
    __shared__ float partial[32];
    const float* xr = x + static_cast<std::size_t>(blockIdx.x) * static_cast<std::size_t>(dim);
    float ss = 0.0f;
    for (index_t i = static_cast<index_t>(threadIdx.x); i < dim; i += static_cast<index_t>(blockDim.x)) ss += xr[i] * xr[i];
    for (int o = warp_size / 2; o > 0; o /= 2) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    const int warp = static_cast<int>(threadIdx.x) / warp_size, lane = static_cast<int>(threadIdx.x) % warp_size;
    if (lane == 0) partial[warp] = ss;
    __syncthreads();
    if (threadIdx.x == 0) {
        float t = 0.0f;
        for (int w = 0; w < static_cast<int>(blockDim.x) / warp_size; ++w) t += partial[w];
        partial[0] = 1.0f / sqrtf(t / static_cast<float>(dim) + eps);
    }
    __syncthreads();
    const float inv = partial[0];
    Out* o = out + static_cast<std::size_t>(blockIdx.x) * static_cast<std::size_t>(dim);
    for (index_t i = static_cast<index_t>(threadIdx.x); i < dim; i += static_cast<index_t>(blockDim.x)) o[i] = from_float<Out>(xr[i] * inv * to_float(weight[i]));
}

// out[r][j] = silu(g[r][j]) * g[r][hidden + j], g = the W1|W3 product [rows][2 hidden].
template <class Out>
__global__ void swiglu_kernel(const float* g, index_t rows, index_t hidden, Out* out) {
    const std::size_t n = static_cast<std::size_t>(rows) * static_cast<std::size_t>(hidden);
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
        const std::size_t r = i / static_cast<std::size_t>(hidden), j = i % static_cast<std::size_t>(hidden);
        const float a = g[r * 2 * static_cast<std::size_t>(hidden) + j], b = g[r * 2 * static_cast<std::size_t>(hidden) + static_cast<std::size_t>(hidden) + j];
        out[i] = from_float<Out>(a / (1.0f + expf(-a)) * b);
    }
}
}  // namespace detail

// The weights on the device in precision W, in checkpoint order (one arena, views per tensor).
template <class W>
class device_gpt_weights : public models::llamagen::gpt_tensors<W> {
    static_assert(std::is_same_v<W, float> || std::is_same_v<W, __nv_bfloat16>,
                  "ordo::cuda::device_gpt_weights: the weight precision is float or __nv_bfloat16");

public:
    // Uploads (and for bf16 rounds, to nearest even) the host weights, tensor by tensor.
    explicit device_gpt_weights(const models::llamagen::gpt_weights& host) : config_(host.config()) {
        const auto& specs = host.tensors();
        std::size_t total = 0;
        const std::vector<std::size_t> offsets = models::llamagen::tensor_offsets(specs, total);
        arena_ = device_buffer<W>(total);
        std::vector<W> staging;
        for (std::size_t i = 0; i < specs.size(); ++i) {
            const std::span<const float> src = host.storage(i);
            if constexpr (std::is_same_v<W, float>) {
                arena_.upload(src, nullptr, offsets[i]);
            } else {
                staging.resize(src.size());
                for (std::size_t j = 0; j < src.size(); ++j) {
                    const std::uint16_t b = detail::bf16_bits(src[j]);
                    std::memcpy(&staging[j], &b, 2);
                }
                arena_.upload(std::span<const W>(staging), nullptr, offsets[i]);
            }
            check(cudaStreamSynchronize(nullptr), "device_gpt_weights upload");  // staging is reused
        }
        this->bind(config_, arena_.data(), offsets);
    }

    const gpt_config& config() const { return config_; }
    std::size_t bytes() const { return arena_.bytes(); }

private:
    gpt_config config_;
    device_buffer<W> arena_;
};

// What a step's captured CUDA graph bakes in, all of it: the device plan and step buffers
// (generation: bumped whenever either is replaced), the plan's content (digest), the step and its
// batch shape, the kv range and the writes it sees, and the whole cache layout (kv_layout_key). A graph is replayed only
// for an equal key.
struct step_graph_key {
    std::uint64_t generation = 0;
    std::uint64_t plan_digest = 0;
    index_t step = -1, sequences = 0, rows = 0, heads = 0, kv_end = 0, written_through = 0;
    kv_layout_key cache{};
    friend bool operator==(const step_graph_key&, const step_graph_key&) = default;
};
inline step_graph_key make_step_graph_key(std::uint64_t generation, std::uint64_t plan_digest, const step_batch& b, const kv_layout_key& cache,
                                          index_t kv_end) {
    return {generation, plan_digest, b.step, b.num_sequences, b.num_rows, b.num_heads, kv_end, b.written_through, cache};
}

template <class W>
class gpt_model {
public:
    using memory_space = device_memory;  // runs on device kv caches (model_for checks this)

    // Borrows the weights; runs on `stream`, or on a stream of its own when none is given (CUDA
    // graphs cannot capture the legacy default stream).
    explicit gpt_model(const device_gpt_weights<W>& w, cudaStream_t stream = nullptr) : w_(&w), c_(w.config()), stream_(stream) {
        c_.validate();
        if (c_.head_dim() > max_head_dim)
            throw error("cuda gpt: head_dim " + ordo::detail::itos(c_.head_dim()) + " is above the decode attention's " + ordo::detail::itos(max_head_dim) +
                        " (the presets use 64 and 100)");
        if (!stream_) {
            check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
            own_stream_ = true;
        }
        try {
            check(cublasCreate(&blas_), "cublasCreate");
            check(cublasSetStream(blas_, stream_), "cublasSetStream");
            // cuBLAS gets its workspace from us: it must not allocate while a step is being captured
            blas_workspace_ = device_buffer<std::byte>(std::size_t{32} << 20);
            check(cublasSetWorkspace(blas_, blas_workspace_.data(), blas_workspace_.bytes()), "cublasSetWorkspace");
            check(cudaEventCreateWithFlags(&staged_, cudaEventDisableTiming), "cudaEventCreate");
            const index_t hd2 = c_.head_dim() / 4;
            std::vector<float> freqs(static_cast<std::size_t>(hd2));
            for (index_t k = 0; k < hd2; ++k)  // fp32, as the official table and the Eigen backend
                freqs[static_cast<std::size_t>(k)] = 1.0f / std::pow(c_.rope_base, static_cast<float>(2 * k) / static_cast<float>(c_.head_dim() / 2));
            freqs_ = device_buffer<float>(std::span<const float>(freqs), stream_);
            check(cudaStreamSynchronize(stream_), "rope table upload");
        } catch (...) {
            release();
            throw;
        }
    }
    gpt_model(const gpt_model&) = delete;
    gpt_model& operator=(const gpt_model&) = delete;
    ~gpt_model() { release(); }

    // CUDA graphs: at batch 1 a step's ~10 launches per layer cost more in launch overhead than
    // in work. With graphs on, the first decode run of each plan step (at a given batch shape,
    // cache and buffers) captures the step's launches into a graph and later runs replay it, so
    // the second image onwards pays one launch per step. Teacher-forcing batches run eagerly.
    void use_graphs(bool on) { graphs_on_ = on; }
    bool uses_graphs() const { return graphs_on_; }

    const gpt_config& config() const { return c_; }
    index_t vocab_size() const { return c_.vocab_size; }
    index_t num_heads() const { return c_.num_output_heads(); }
    index_t num_layers() const { return c_.num_layers(); }
    index_t cache_width() const { return c_.kv_width(); }
    cudaStream_t stream() const { return stream_; }

    // Checks that the checkpoint can run the plan, uploads the plan once and sizes every buffer
    // for `sequences` (generate() calls this through check_fit).
    void prepare(const plan_view& p, index_t sequences) {
        models::llamagen::check_plan_fit(c_, p);
        if (models::llamagen::has_query_rows(p))
            throw error("the CUDA GPT does not embed query rows (RandAR's position instruction, rotated per row) yet; run this plan on the CPU backend "
                        "(ordo::eigen::gpt_model)");
        use_plan(p);
        reserve(static_cast<std::size_t>(sequences) * static_cast<std::size_t>(std::max(p.max_rows_per_step(), p.header.train_slots)),
                static_cast<std::size_t>(std::max(p.max_rows_per_step(), p.header.train_slots)), p.header.num_heads);
    }

    // One step, logits left on the device: logits()[seq][row][head][vocab] (for ordo::cuda's sampler).
    template <class C>
        requires kv_cache_extents<C> && in_device_memory<C> && requires(const C& c) { c.layout(); }
    void run(const step_batch& b, C& cache) {
        check_batch(b, cache);
        // the previous step's upload reads the pinned buffers when the stream gets to it: wait for
        // it before they are reused or reallocated (run() may be called steps ahead of the device)
        check(cudaEventSynchronize(staged_), "step upload (previous step)");
        use_plan(b.plan);  // no-op after prepare()
        const std::size_t rows = static_cast<std::size_t>(b.num_sequences) * static_cast<std::size_t>(b.num_rows);
        reserve(rows, static_cast<std::size_t>(b.num_rows), b.num_heads);  // no-op after prepare()
        stage_inputs(b);
        const auto layout = cache.layout();
        const index_t kv_end = std::min({b.plan.num_slots(), b.kv_limit, cache.capacity()});  // slots past the cache were never fed
        if (graphs_on_ && b.kv_limit == max_index) {
            decode_attention_limits<typename C::value_type, act_t>(plan_->header().mask);  // its first call sets an attribute: not while capturing
            replay_or_capture(b, layout, kv_end);
        } else {
            enqueue(b, layout, kv_end);
        }
    }

    // The model_for forward: run() and the logits copied to the host.
    template <class C>
        requires kv_cache_extents<C> && in_device_memory<C> && requires(const C& c) { c.layout(); }
    void forward(const step_batch& b, C& cache, std::span<float> logits) {
        if (logits.size() != b.logits_size()) throw error("cuda gpt forward: logits span has the wrong size for the batch");
        run(b, cache);
        check(cudaMemcpyAsync(logits.data(), logits_.data(), logits.size_bytes(), cudaMemcpyDeviceToHost, stream_), "logits download");
        check(cudaStreamSynchronize(stream_), "cuda gpt forward");
    }

    // The device logits of the last run(): [seq][row][head][vocab].
    std::span<const float> logits(const step_batch& b) const { return {logits_.data(), b.logits_size()}; }
    const device_plan& plan() const {
        if (!plan_) throw error("cuda gpt: plan() before any prepare() or run()");
        return *plan_;
    }

private:
    using act_t = W;  // GEMM inputs: fp32 for SGEMM, bf16 for the bf16 GEMM

    // Every launch of one step, in stream order (what a graph captures).
    template <class T>
    void enqueue(const step_batch& b, const kv_layout<T>& layout, index_t kv_end) {
        const index_t d = c_.dim, hd = c_.head_dim(), nh = c_.n_head, nkv = c_.kv_heads(), hidden = c_.ffn_hidden();
        const std::size_t rows = static_cast<std::size_t>(b.num_sequences) * static_cast<std::size_t>(b.num_rows);
        const index_t n = static_cast<index_t>(rows);
        detail::embed_kernel<W><<<static_cast<unsigned>(rows), 256, 0, stream_>>>(d_src_.data(), d, x_.data());
        check_launch("embed_kernel");
        const index_t trunk = c_.n_layer, layers = b.num_heads > 1 ? c_.num_layers() : trunk;  // no B head read: skip its blocks
        for (index_t l = 0; l < layers; ++l) {
            const auto& L = w_->layers[static_cast<std::size_t>(l)];
            norm(L.attn_norm, n);
            gemm(L.wqkv, c_.qkv_rows(), d, xn_.data(), n, d, qkv_.data(), c_.qkv_rows(), 0.0f);
            rope_and_store(qkv_.data(), d_rows_.data(), b.num_sequences, b.num_rows, nh, nkv, hd, freqs_.data(), layout, l, stream_);
            decode_attention(qkv_.data(), d_rows_.data(), b.num_sequences, b.num_rows, nh, nkv, hd, *plan_, kv_end, b.written_through, layout, l,
                             xn_.data(), stream_);
            gemm(L.wo, d, d, xn_.data(), n, d, x_.data(), d, 1.0f);  // x += attn wo^T
            norm(L.ffn_norm, n);
            gemm(L.w13, 2 * hidden, d, xn_.data(), n, d, ffn_.data(), 2 * hidden, 0.0f);
            detail::swiglu_kernel<W><<<std::min<unsigned>(4096u, static_cast<unsigned>((rows * static_cast<std::size_t>(hidden) + 255) / 256)), 256, 0, stream_>>>(
                ffn_.data(), n, hidden, act_.data());
            check_launch("swiglu_kernel");
            gemm(L.w2, d, hidden, act_.data(), n, hidden, x_.data(), d, 1.0f);  // x += ffn
            if (l == trunk - 1) head(b, 0, w_->norm, w_->output, n);
        }
        if (layers > trunk) head(b, 1, w_->medusa_norm, w_->medusa_output, n);
    }

    void release() noexcept {
        if (stream_) cudaStreamSynchronize(stream_);
        for (step_graph& g : graphs_)
            if (g.exec) cudaGraphExecDestroy(g.exec);
        graphs_.clear();
        if (blas_) cublasDestroy(blas_);
        blas_ = nullptr;
        if (staged_) cudaEventDestroy(staged_);
        staged_ = nullptr;
        if (own_stream_) cudaStreamDestroy(stream_);
        own_stream_ = false;
    }

    struct step_graph {
        step_graph_key key{};
        cudaGraphExec_t exec = nullptr;
    };

    template <class T>
    void replay_or_capture(const step_batch& b, const kv_layout<T>& layout, index_t kv_end) {
        const step_graph_key key = make_step_graph_key(generation_, plan_->digest(), b, key_of(layout), kv_end);
        if (static_cast<std::size_t>(b.step) >= graphs_.size()) graphs_.resize(static_cast<std::size_t>(b.plan.num_steps()));  // once per plan
        step_graph& g = graphs_[static_cast<std::size_t>(b.step)];
        if (!(g.exec && g.key == key)) {
            cudaGraph_t graph = nullptr;
            check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "step graph (begin capture)");
            try {
                enqueue(b, layout, kv_end);
            } catch (...) {
                cudaStreamEndCapture(stream_, &graph);
                if (graph) cudaGraphDestroy(graph);
                throw;
            }
            check(cudaStreamEndCapture(stream_, &graph), "step graph (end capture)");
            cudaGraphExec_t exec = nullptr;
            const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
            cudaGraphDestroy(graph);
            check(e, "step graph (instantiate)");
            if (g.exec) cudaGraphExecDestroy(g.exec);
            g = {key, exec};
        }
        check(cudaGraphLaunch(g.exec, stream_), "step graph (launch)");
    }

    template <class C>
    void check_batch(const step_batch& b, const C& cache) const {
        if (b.vocab != c_.vocab_size) throw error("cuda gpt forward: the batch has vocab " + ordo::detail::itos(b.vocab) + ", the model " + ordo::detail::itos(c_.vocab_size));
        if (b.num_heads > num_heads()) throw error("cuda gpt forward: the batch reads " + ordo::detail::itos(b.num_heads) + " heads, the model has " + ordo::detail::itos(num_heads()));
        if (cache.num_layers() < c_.num_layers() || cache.width() != c_.kv_width())
            throw error("cuda gpt forward: the kv cache has " + ordo::detail::itos(cache.num_layers()) + " layers of width " + ordo::detail::itos(cache.width()) +
                        ", the model needs " + ordo::detail::itos(c_.num_layers()) + " of width " + ordo::detail::itos(c_.kv_width()));
        if (cache.num_sequences() < b.num_sequences)
            throw error("cuda gpt forward: the kv cache holds " + ordo::detail::itos(cache.num_sequences()) + " sequences, the batch has " + ordo::detail::itos(b.num_sequences));
        if (b.per_request_positions)
            throw error("cuda gpt forward: the batch's requests bring their own orders (request::order); this backend rotates every sequence's row by "
                        "one rope[r]: run per-request orders on the CPU backend, or build each order into its plan");
        if (b.slots.size() != static_cast<std::size_t>(b.num_rows) || b.rope.size() != static_cast<std::size_t>(b.num_rows) ||
            b.inputs.size() != static_cast<std::size_t>(b.num_rows) * static_cast<std::size_t>(b.num_sequences))
            throw error("cuda gpt forward: the batch's slots, rope and inputs do not match its " + ordo::detail::itos(b.num_rows) + " rows x " +
                        ordo::detail::itos(b.num_sequences) + " sequences");
        // each fed row's K/V goes to its slot; attention reads only slots fed earlier, so a cache of
        // kv_cache_len(plan) suffices even where the layout has more slots (PAR's unfed last group)
        for (const index_t slot : b.slots)
            if (slot < 0 || slot >= cache.capacity())
                throw error("cuda gpt forward: kv cache too small: row slot " + ordo::detail::itos(slot) + " is past its " + ordo::detail::itos(cache.capacity()) + " slots");
    }

    // The plan's device copy: uploaded when a plan is first seen (prepare), reused only while the
    // plan a batch carries is the same plan: every header field and array equal to the uploaded
    // one (device_plan::holds: the full content is compared, so its digest, which keys the step
    // graphs, is equal too; a host comparison per step, no allocation). Any other plan - other fed
    // row order, head weights or heads included - is uploaded anew.
    void use_plan(const plan_view& p) {
        if (plan_ && plan_->holds(p)) return;
        plan_ = std::make_unique<device_plan>(p, stream_);
        ++generation_;
    }

    void reserve(std::size_t rows, std::size_t rows_per_seq, index_t heads) {
        if (rows > rows_ || rows * static_cast<std::size_t>(heads) > logit_rows_ || rows_per_seq > row_cap_) ++generation_;  // graphs hold buffer addresses
        if (rows > rows_) {
            rows_ = rows;
            const std::size_t d = static_cast<std::size_t>(c_.dim), h = static_cast<std::size_t>(c_.ffn_hidden());
            x_ = device_buffer<float>(rows * d);
            xn_ = device_buffer<act_t>(rows * d);
            qkv_ = device_buffer<float>(rows * static_cast<std::size_t>(c_.qkv_rows()));
            ffn_ = device_buffer<float>(rows * 2 * h);
            act_ = device_buffer<act_t>(rows * h);
            d_src_ = device_buffer<const W*>(rows);
            h_src_ = pinned_buffer<const W*>(rows);
        }
        if (rows * static_cast<std::size_t>(heads) > logit_rows_) {
            logit_rows_ = rows * static_cast<std::size_t>(heads);
            logits_ = device_buffer<float>(logit_rows_ * static_cast<std::size_t>(c_.vocab_size));
        }
        if (rows_per_seq > row_cap_) {
            row_cap_ = rows_per_seq;
            d_rows_ = device_buffer<row_info>(rows_per_seq);
            h_rows_ = pinned_buffer<row_info>(rows_per_seq);
        }
    }

    // Each row's slot and rotary coordinates, and each (sequence, row)'s embedding row: checked
    // here (a bad label or token is an error naming it), then one upload per array.
    void stage_inputs(const step_batch& b) {
        for (index_t r = 0; r < b.num_rows; ++r) h_rows_.data()[r] = row_info{b.slots[static_cast<std::size_t>(r)], b.rope[static_cast<std::size_t>(r)]};
        for (index_t s = 0; s < b.num_sequences; ++s)
            for (index_t r = 0; r < b.num_rows; ++r) {
                if (b.input(s, r).kind == slot_kind::query)
                    throw error("cuda gpt: row " + ordo::detail::itos(r) + " is a query row (RandAR's position instruction), which this backend does not embed yet");
                const W* src = models::llamagen::embedding_row(*w_, c_, b, s, r);
                h_src_.data()[static_cast<std::size_t>(s) * static_cast<std::size_t>(b.num_rows) + static_cast<std::size_t>(r)] = src;
            }
        const std::size_t rows = static_cast<std::size_t>(b.num_sequences) * static_cast<std::size_t>(b.num_rows);
        check(cudaMemcpyAsync(d_rows_.data(), h_rows_.data(), static_cast<std::size_t>(b.num_rows) * sizeof(row_info), cudaMemcpyHostToDevice, stream_), "step upload (rows)");
        check(cudaMemcpyAsync(d_src_.data(), h_src_.data(), rows * sizeof(const W*), cudaMemcpyHostToDevice, stream_), "step upload (embeddings)");
        check(cudaEventRecord(staged_, stream_), "step upload (event)");
    }

    void norm(const W* weight, index_t rows) {
        detail::rms_norm_kernel<W, act_t><<<static_cast<unsigned>(rows), 256, 0, stream_>>>(x_.data(), weight, c_.dim, c_.norm_eps, xn_.data());
        check_launch("rms_norm_kernel");
    }

    // y[rows][ldy] (fp32) = x[rows][ldx] w[out][in]^T + beta y
    void gemm(const W* w, index_t out, index_t in, const act_t* x, index_t rows, index_t ldx, float* y, index_t ldy, float beta) {
        const float alpha = 1.0f;
        if constexpr (std::is_same_v<W, float>) {
            check(cublasSgemm(blas_, CUBLAS_OP_T, CUBLAS_OP_N, out, rows, in, &alpha, w, in, x, ldx, &beta, y, ldy), "cublasSgemm");
        } else {
            check(cublasGemmEx(blas_, CUBLAS_OP_T, CUBLAS_OP_N, out, rows, in, &alpha, w, CUDA_R_16BF, in, x, CUDA_R_16BF, ldx, &beta, y, CUDA_R_32F, ldy,
                               CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                  "cublasGemmEx (bf16)");
        }
    }

    // logits[s][r][which] = output(norm(x))
    void head(const step_batch& b, index_t which, const W* norm_w, const W* out_w, index_t rows) {
        norm(norm_w, rows);
        const index_t v = c_.vocab_size;
        gemm(out_w, v, c_.dim, xn_.data(), rows, c_.dim, logits_.data() + static_cast<std::size_t>(which) * static_cast<std::size_t>(v), b.num_heads * v, 0.0f);
    }

    const device_gpt_weights<W>* w_;
    gpt_config c_;
    cudaStream_t stream_;
    bool own_stream_ = false, graphs_on_ = false;
    cublasHandle_t blas_ = nullptr;
    device_buffer<std::byte> blas_workspace_;
    std::vector<step_graph> graphs_;
    cudaEvent_t staged_ = nullptr;  // the last step upload has been read
    device_buffer<float> freqs_;
    std::unique_ptr<device_plan> plan_;
    std::uint64_t generation_ = 0;
    std::size_t rows_ = 0, logit_rows_ = 0, row_cap_ = 0;
    device_buffer<float> x_, qkv_, ffn_, logits_;
    device_buffer<act_t> xn_, act_;
    device_buffer<const W*> d_src_;
    pinned_buffer<const W*> h_src_;
    device_buffer<row_info> d_rows_;
    pinned_buffer<row_info> h_rows_;
};

}  // namespace ordo::cuda
