/*
 * backend.h: the small table of operations that the model is run by. The model (qwen2.c) is
 * written once as a sequence of these calls; the CPU backend (backend_cpu.c, OpenBLAS +
 * OpenMP) is the reference, a CUDA backend implements the same table on device pointers.
 *
 * Conventions, as in llm.c: outputs first, sizes last; every pointer is backend memory;
 * "+=" in a comment means the op accumulates into its output (gradients of parameters and of
 * the residual stream accumulate; everything else overwrites). Rows are tokens: N = B*T rows.
 */
#ifndef LORASWEEP_BACKEND_H
#define LORASWEEP_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus /* backend_cuda.cu is compiled as C++ */
extern "C" {
#endif

typedef struct ls_backend {
    const char *name;
    /* 1 when backend memory is host memory (the CPU backend): the host may then read and write
     * model, adapter and activations directly; otherwise only through upload/download. */
    int host_memory;
    /* Ops return void, so a device backend records its first failure (a CUDA or cuBLAS error)
     * and skips later work; check() reports it with ls_error() and returns LS_ERR, or LS_OK.
     * The trainer and the generator call it at step boundaries. The CPU backend never fails. */
    int (*check)(void);

    /* Memory: alloc returns zeroed memory or NULL (the caller reports it). */
    void *(*alloc)(size_t bytes);
    void (*release)(void *p);
    void (*upload)(void *dst, const void *src, size_t bytes);
    void (*download)(void *dst, const void *src, size_t bytes);
    void (*zero)(void *p, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes); /* within backend memory */

    /* c (m, n) = alpha * op(a) op(b) + beta * c; op(a) is (m, k): a is (m, k), or (k, m) when
     * trans_a; op(b) is (k, n): b is (k, n), or (n, k) when trans_b. Leading dimensions are the
     * stored row lengths, as in CBLAS row-major. */
    void (*matmul)(float *c, const float *a, const float *b, int m, int n, int k, int trans_a, int trans_b,
                   float alpha, float beta);

    /* y (rows, cols) += bias (cols) broadcast over rows. */
    void (*add_bias)(float *y, const float *bias, int rows, int cols);
    /* y (n) += x (n). */
    void (*add)(float *y, const float *x, size_t n);
    /* out (n, C) = table[ids[i]]. */
    void (*embedding)(float *out, const int32_t *ids, const float *table, int n, int C);

    /* y = w * x / sqrt(mean(x^2) + eps) per row; rstd (rows) keeps 1/sqrt(...) for backward. */
    void (*rmsnorm_forward)(float *y, float *rstd, const float *x, const float *w, int rows, int C, float eps);
    /* dx (rows, C) += d/dx given dy; the weight is frozen, so no dw. */
    void (*rmsnorm_backward)(float *dx, const float *dy, const float *x, const float *w, const float *rstd,
                             int rows, int C);

    /* Rotate-half RoPE in place on x (rows, heads*hd); row r has position pos0 + r % T.
     * backward applies the inverse rotation to a gradient in place. */
    void (*rope_forward)(float *x, int rows, int T, int pos0, int heads, int hd, float theta);
    void (*rope_backward)(float *dx, int rows, int T, int pos0, int heads, int hd, float theta);

    /* Causal grouped-query attention within each of B sequences of T tokens.
     * q (B*T, NH*hd), k and v (B*T, KVH*hd); out (B*T, NH*hd); lse (B, NH, T) keeps each row's
     * log-sum-exp so that backward recomputes the probabilities instead of storing T x T. */
    void (*attention_forward)(float *out, float *lse, const float *q, const float *k, const float *v, int B,
                              int T, int NH, int KVH, int hd);
    /* dq = ..., dk and dv = ... (overwritten), given dout and forward's tensors. */
    void (*attention_backward)(float *dq, float *dk, float *dv, const float *dout, const float *out,
                               const float *lse, const float *q, const float *k, const float *v, int B, int T,
                               int NH, int KVH, int hd);
    /* Attention of T_new query rows per sequence against a KV cache holding T_total positions
     * per sequence (the last T_new of them are the queries' own). q (B*T_new, NH*hd); k_cache
     * and v_cache (B, T_max, KVH*hd); out (B*T_new, NH*hd). For generation: no backward. */
    void (*attention_cached)(float *out, const float *q, const float *k_cache, const float *v_cache, int B,
                             int T_new, int T_total, int T_max, int NH, int KVH, int hd);

    /* h = silu(g) * u, elementwise over n. backward: dg, du overwritten. */
    void (*swiglu_forward)(float *h, const float *g, const float *u, size_t n);
    void (*swiglu_backward)(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n);

    /* The output head fused with cross-entropy, so that (rows, V) logits are never all in
     * memory: for every row with targets[r] >= 0, loss += logsumexp(z) - z[target] where
     * z = x[r] W^T + bias. When dx is non-NULL: dx (rows, C) += grad_scale * dz W and, when
     * dbias is non-NULL, dbias (V) += grad_scale * dz, with dz = softmax(z) - onehot(target).
     * Returns the summed loss (double). bias may be NULL. */
    double (*head_loss)(float *dx, float *dbias, const float *x, const float *w, const float *bias,
                        const int32_t *targets, int rows, int C, int V, float grad_scale);

    /* AdamW step over n parameters: m, v moments; bias-corrected with step t (1-based). */
    void (*adamw)(float *param, const float *grad, float *m, float *v, size_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int t);
    /* SGD as PyTorch: g += weight_decay * p; buf = momentum * buf + g (buf = g at t == 1);
     * p -= lr * buf (or lr * g without momentum). */
    void (*sgd)(float *param, const float *grad, float *buf, size_t n, float lr, float momentum,
                float weight_decay, int t);
    /* Sum of squares of x (n), in double: for gradient norms. */
    double (*sum_squares)(const float *x, size_t n);
    /* x (n) *= s. */
    void (*scale)(float *x, float s, size_t n);
} ls_backend;

/* The CPU backend: OpenBLAS for matrix products, OpenMP for the rest. */
const ls_backend *ls_backend_cpu(void);
/* Its threads (OpenMP and OpenBLAS together): set (n >= 1) and read. Processes start with
 * ls_thread_count(1): their CPU affinity, or OMP_NUM_THREADS. */
void ls_cpu_threads_set(int n);
int ls_cpu_threads(void);
/* The instruction set of its exp-heavy loops (softmax, the loss, SiLU): 0 the baseline (SSE2 on
 * x86-64), 1 AVX2, 2 AVX-512; the best the CPU supports up to max_level (-1: no limit), which
 * ls_backend_cpu picks on its first call. Returns the level now in use. For tests and benchmarks. */
int ls_cpu_vector_level(int max_level);
/* The most logits its fused head keeps at once, in floats (rows are processed in even chunks of
 * at most floats / V rows, at least one); 0 restores the default (160 Mi floats, 640 MB).
 * Returns the bound in force before. For tests. */
size_t ls_cpu_head_logits(size_t floats);

/* The CUDA backend (backend_cuda.cu), in builds with LS_HAVE_CUDA only. ls_cuda_available says
 * whether a usable device exists (1, device 0's name in why), or why not (0, the reason in
 * why). ls_backend_cuda
 * initialises device 0 and cuBLAS on first use; NULL and ls_error() when that fails. */
int ls_cuda_available(char *why, size_t n);
const ls_backend *ls_backend_cuda(void);
/* 1 once the CUDA backend met a fatal error (gpu.h, ls_gpu_error_is_fatal): its context is lost
 * for the life of the process, and ls_backend_cuda returns NULL with a machine fault. */
int ls_cuda_lost(void);

/* A backend by name, in every build: "cpu"; "cuda" (NULL and an error saying whether the build
 * has no CUDA backend or no device is usable, and why); "auto": CUDA when it is built and a
 * device is usable, else the CPU. For `auto`, *picked_cuda (may be NULL) says which, and why
 * gets the device's name or why not (may be NULL). */
const ls_backend *ls_backend_named(const char *name, int *picked_cuda, char *why, size_t why_cap);

#ifdef __cplusplus
}
#endif

#endif
