/*
 * backend_cuda.cu: the op table of backend.h on an NVIDIA GPU. Same fp32 interface as the CPU
 * backend (the model code is shared); every pointer is device memory.
 *
 * Decisions:
 *  - fp32 everywhere for now: kernels compute in fp32 (double where the CPU reference does,
 *    e.g. RoPE angles and squared norms), matrix products go to cuBLAS SGEMM. Setting
 *    LS_CUDA_MATH=tf32 lets cuBLAS use TF32 tensor cores (faster, ~1e-3 relative error). bf16
 *    weights and activations are the next step (docs/cuda.md), not done here.
 *  - Row-major products through column-major cuBLAS: C = op(A) op(B) row-major is
 *    C^T = op(B)^T op(A)^T column-major, so the operands are swapped, nothing is copied.
 *  - Everything runs on the legacy default stream, in order; upload and download are
 *    synchronous cudaMemcpy, so host buffers are safe to reuse when they return.
 *  - Errors: the op table's functions return void, so a failing CUDA or cuBLAS call records the
 *    first message (file:line, call, reason) in a sticky slot and later ops become no-ops; the
 *    caller asks be->check() at step boundaries, which turns it into ls_error() and LS_ERR.
 *    A sticky CUDA error (illegal address) poisons the context anyway, so nothing is lost.
 *  - Attention is fused flash-attention style: a warp per query row, keys streamed through
 *    shared memory in tiles of 32, online softmax, only lse (B, NH, T) kept. Backward recomputes
 *    the probabilities from lse: one kernel for dK/dV (a warp per key row, queries streamed),
 *    one for dQ (a warp per query row, keys streamed), both without atomics, so deterministic.
 *  - The output head + cross-entropy never holds (rows, V) logits: rows in blocks, the
 *    vocabulary in chunks of 8192 columns through a bounded scratch, online max/sum per row;
 *    a second pass recomputes each chunk's logits for dz and accumulates dx += dz W and dbias.
 *  - Reductions that reach the host (loss, squared norm) are summed in double in a fixed order.
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "lorasweep/backend.h"
#include "lorasweep/common.h"
#include "lorasweep/gpu.h"
}

/* gpu.c classifies CUDA errors by number without CUDA's headers: the numbers must be CUDA's. */
#define LS_SAME_CODE(ours, theirs) static_assert((int)(ours) == (int)(theirs), #ours " is not " #theirs)
LS_SAME_CODE(LS_CUDA_SUCCESS, cudaSuccess);
LS_SAME_CODE(LS_CUDA_INVALID_VALUE, cudaErrorInvalidValue);
LS_SAME_CODE(LS_CUDA_MEMORY_ALLOCATION, cudaErrorMemoryAllocation);
LS_SAME_CODE(LS_CUDA_INITIALIZATION_ERROR, cudaErrorInitializationError);
LS_SAME_CODE(LS_CUDA_CUDART_UNLOADING, cudaErrorCudartUnloading);
LS_SAME_CODE(LS_CUDA_INVALID_CONFIGURATION, cudaErrorInvalidConfiguration);
LS_SAME_CODE(LS_CUDA_INSUFFICIENT_DRIVER, cudaErrorInsufficientDriver);
LS_SAME_CODE(LS_CUDA_DEVICES_UNAVAILABLE, cudaErrorDevicesUnavailable);
LS_SAME_CODE(LS_CUDA_PRIOR_LAUNCH_FAILURE, cudaErrorPriorLaunchFailure);
LS_SAME_CODE(LS_CUDA_NO_DEVICE, cudaErrorNoDevice);
LS_SAME_CODE(LS_CUDA_INVALID_DEVICE, cudaErrorInvalidDevice);
LS_SAME_CODE(LS_CUDA_DEVICE_UNINITIALIZED, cudaErrorDeviceUninitialized);
LS_SAME_CODE(LS_CUDA_ECC_UNCORRECTABLE, cudaErrorECCUncorrectable);
LS_SAME_CODE(LS_CUDA_NVLINK_UNCORRECTABLE, cudaErrorNvlinkUncorrectable);
LS_SAME_CODE(LS_CUDA_CONTAINED, cudaErrorContained);
LS_SAME_CODE(LS_CUDA_ILLEGAL_ADDRESS, cudaErrorIllegalAddress);
LS_SAME_CODE(LS_CUDA_LAUNCH_OUT_OF_RESOURCES, cudaErrorLaunchOutOfResources);
LS_SAME_CODE(LS_CUDA_LAUNCH_TIMEOUT, cudaErrorLaunchTimeout);
LS_SAME_CODE(LS_CUDA_CONTEXT_IS_DESTROYED, cudaErrorContextIsDestroyed);
LS_SAME_CODE(LS_CUDA_ASSERT, cudaErrorAssert);
LS_SAME_CODE(LS_CUDA_HARDWARE_STACK_ERROR, cudaErrorHardwareStackError);
LS_SAME_CODE(LS_CUDA_ILLEGAL_INSTRUCTION, cudaErrorIllegalInstruction);
LS_SAME_CODE(LS_CUDA_MISALIGNED_ADDRESS, cudaErrorMisalignedAddress);
LS_SAME_CODE(LS_CUDA_INVALID_ADDRESS_SPACE, cudaErrorInvalidAddressSpace);
LS_SAME_CODE(LS_CUDA_INVALID_PC, cudaErrorInvalidPc);
LS_SAME_CODE(LS_CUDA_LAUNCH_FAILURE, cudaErrorLaunchFailure);
LS_SAME_CODE(LS_CUDA_SYSTEM_NOT_READY, cudaErrorSystemNotReady);
LS_SAME_CODE(LS_CUDA_SYSTEM_DRIVER_MISMATCH, cudaErrorSystemDriverMismatch);
LS_SAME_CODE(LS_CUDA_MPS_CONNECTION_FAILED, cudaErrorMpsConnectionFailed);
LS_SAME_CODE(LS_CUDA_MPS_RPC_FAILURE, cudaErrorMpsRpcFailure);
LS_SAME_CODE(LS_CUDA_MPS_SERVER_NOT_READY, cudaErrorMpsServerNotReady);
LS_SAME_CODE(LS_CUDA_MPS_CLIENT_TERMINATED, cudaErrorMpsClientTerminated);
LS_SAME_CODE(LS_CUDA_EXTERNAL_DEVICE, cudaErrorExternalDevice);
LS_SAME_CODE(LS_CUDA_UNKNOWN, cudaErrorUnknown);

/* ---- errors ------------------------------------------------------------------------------- */

static char g_error[600]; /* the first failure since the last check; "" when none */
static int g_failed;
/* The failure is fatal (ls_gpu_error_is_fatal: a sticky error, the context is lost). Once check()
 * has reported it, g_dead stays set: every op is a no-op and check() and ls_backend_cuda() give
 * the same machine fault, so the worker stops (the sweep exits 4) and its resume starts a fresh
 * process, instead of later trials failing on the dead context with misleading messages. */
static int g_fatal, g_dead;

static void record_error(const char *file, int line, const char *call, const char *why) {
    if (g_failed) return;
    g_failed = 1;
    snprintf(g_error, sizeof g_error, "CUDA backend: %s failed at %s:%d: %s", call, file, line, why);
}

static const char *cublas_reason(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "cuBLAS not initialised";
    case CUBLAS_STATUS_ALLOC_FAILED: return "cuBLAS allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "architecture mismatch";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    default: return "cuBLAS error";
    }
}

#define CUDA_OK(call) cuda_ok((call), #call, __FILE__, __LINE__)
#define CUBLAS_OK(call) cublas_ok((call), #call, __FILE__, __LINE__)
/* After a kernel launch: launch errors (bad configuration) show at once, faults later. */
#define LAUNCHED() cuda_ok(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)

static int cuda_ok(cudaError_t e, const char *call, const char *file, int line) {
    if (e == cudaSuccess) return 1;
    if (ls_gpu_error_is_fatal((int)e)) g_fatal = 1;
    record_error(file, line, call, cudaGetErrorString(e));
    return 0;
}
static int cublas_ok(cublasStatus_t s, const char *call, const char *file, int line) {
    if (s == CUBLAS_STATUS_SUCCESS) return 1;
    record_error(file, line, call, cublas_reason(s));
    return 0;
}

/* Turn a recorded failure into ls_error (the caller's thread) and clear it. Synchronises first,
 * so that faults of kernels still running are seen here rather than at a later, unrelated op.
 * A recoverable failure (out of memory, a bad argument) is cleared from CUDA's last-error slot
 * too, so that no later launch, perhaps in the next trial, reports it again; a fatal one (a
 * sticky error, which CUDA keeps returning) marks the backend dead and is reported as a fault of
 * the machine (ls_error_machine): the trial is not blamed, the sweep stops, the resume starts a
 * fresh process. */
static int cuda_check(void) {
    if (g_dead) return ls_error_machine("%s", g_error);
    if (!g_failed) CUDA_OK(cudaDeviceSynchronize());
    if (!g_failed) return LS_OK;
    cudaError_t now = cudaDeviceSynchronize(), last = cudaGetLastError(); /* a sticky error shows again */
    if (ls_gpu_error_is_fatal((int)now) || ls_gpu_error_is_fatal((int)last)) g_fatal = 1;
    if (g_fatal) {
        g_dead = 1; /* g_failed stays set: every op stays a no-op */
        size_t n = strlen(g_error);
        snprintf(g_error + n, sizeof g_error - n, " (the GPU context is lost: a fresh process is needed)");
        return ls_error_machine("%s", g_error);
    }
    g_failed = 0;
    return ls_error("%s", g_error);
}

/* ---- state -------------------------------------------------------------------------------- */

static cublasHandle_t g_blas;

/* Device scratch that grows on demand and lives as long as the process (as the CPU backend's
 * thread scratch does): no op allocates in steady state. */
typedef struct {
    void *p;
    size_t bytes;
} scratch;

/* NULL on failure, recorded for check(). An out-of-memory is said as such, and cleared from
 * CUDA's last-error slot at once: left there, the next kernel launch's cudaGetLastError (perhaps
 * in the next trial) would report it as its own failure. */
static void *scratch_get(scratch *s, size_t bytes, const char *what) {
    if (bytes <= s->bytes) return s->p;
    if (s->p) CUDA_OK(cudaFree(s->p));
    s->p = NULL;
    s->bytes = 0;
    cudaError_t e = cudaMalloc(&s->p, bytes);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* not sticky: clear it (a sticky one is seen again by check()) */
        s->p = NULL;
        if (e == cudaErrorMemoryAllocation) {
            char why[160];
            snprintf(why, sizeof why, "out of device memory: %.1f MiB of scratch for %s", (double)bytes / (1 << 20),
                     what);
            record_error(__FILE__, __LINE__, "cudaMalloc", why);
        } else {
            cuda_ok(e, "cudaMalloc (scratch)", __FILE__, __LINE__);
        }
        return NULL;
    }
    s->bytes = bytes;
    return s->p;
}

/* The grid for n items: capped at 65535 * 16 blocks, so every kernel launched with it must loop
 * (grid-stride). Those are add_bias, add, scale, rope, attention_delta, swiglu fwd/bwd, head_dz,
 * adamw and sgd; the other kernels get exact grids (a block per row, or a fixed grid that loops). */
static unsigned blocks_for(size_t n, unsigned threads) {
    size_t b = (n + threads - 1) / threads;
    return (unsigned)(b < 65535u * 16 ? (b ? b : 1) : 65535u * 16);
}

/* ---- memory ------------------------------------------------------------------------------- */

static void *cuda_alloc(size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 64);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* an out-of-memory is reported by the caller, not sticky */
        if (ls_gpu_error_is_fatal((int)e)) cuda_ok(e, "cudaMalloc", __FILE__, __LINE__); /* check() says so */
        return NULL;
    }
    if (!CUDA_OK(cudaMemset(p, 0, bytes))) {
        cudaFree(p);
        return NULL;
    }
    return p;
}
static void cuda_release(void *p) {
    if (p) CUDA_OK(cudaFree(p));
}
static void cuda_upload(void *dst, const void *src, size_t bytes) {
    if (!g_failed && bytes) CUDA_OK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
static void cuda_download(void *dst, const void *src, size_t bytes) {
    if (g_failed) {
        memset(dst, 0, bytes); /* defined contents; the caller's check reports the failure */
        return;
    }
    if (bytes) CUDA_OK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
static void cuda_zero(void *p, size_t bytes) {
    if (!g_failed && bytes) CUDA_OK(cudaMemsetAsync(p, 0, bytes, 0));
}
static void cuda_copy(void *dst, const void *src, size_t bytes) {
    if (!g_failed && bytes) CUDA_OK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0));
}

/* ---- matrix products ---------------------------------------------------------------------- */

static void cuda_matmul(float *c, const float *a, const float *b, int m, int n, int k, int trans_a, int trans_b,
                        float alpha, float beta) {
    if (g_failed || m <= 0 || n <= 0) return;
    int lda = trans_a ? m : k, ldb = trans_b ? k : n;
    CUBLAS_OK(cublasSgemm(g_blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k,
                          &alpha, b, ldb, a, lda, &beta, c, n));
}

/* ---- reductions inside a block ------------------------------------------------------------ */

__device__ static float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ static float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum (or max) over the block, the result in every thread; blockDim.x a multiple of 32, <= 1024.
 * The order is fixed by the thread layout, so results repeat bit for bit. */
__device__ static float block_reduce(float v, int is_max) {
    __shared__ float part[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = is_max ? warp_max(v) : warp_sum(v);
    __syncthreads(); /* part[] may still be read by a previous call */
    if (lane == 0) part[warp] = v;
    __syncthreads();
    float r = lane < warps ? part[lane] : (is_max ? -INFINITY : 0.0f);
    return is_max ? warp_max(r) : warp_sum(r);
}

/* ---- simple elementwise ops --------------------------------------------------------------- */

__global__ static void add_bias_kernel(float *y, const float *bias, size_t total, int cols) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        y[i] += bias[i % cols];
}
static void cuda_add_bias(float *y, const float *bias, int rows, int cols) {
    size_t n = (size_t)rows * cols;
    if (g_failed || !n) return;
    add_bias_kernel<<<blocks_for(n, 256), 256>>>(y, bias, n, cols);
    LAUNCHED();
}

__global__ static void add_kernel(float *y, const float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}
static void cuda_add(float *y, const float *x, size_t n) {
    if (g_failed || !n) return;
    add_kernel<<<blocks_for(n, 256), 256>>>(y, x, n);
    LAUNCHED();
}

__global__ static void scale_kernel(float *x, float s, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] *= s;
}
static void cuda_scale(float *x, float s, size_t n) {
    if (g_failed || !n) return;
    scale_kernel<<<blocks_for(n, 256), 256>>>(x, s, n);
    LAUNCHED();
}

/* One block per row: out[i] = table[ids[i]]. */
__global__ static void embedding_kernel(float *out, const int32_t *ids, const float *table, int C) {
    const float *src = table + (size_t)ids[blockIdx.x] * C;
    float *dst = out + (size_t)blockIdx.x * C;
    for (int j = threadIdx.x; j < C; j += blockDim.x) dst[j] = src[j];
}
static void cuda_embedding(float *out, const int32_t *ids, const float *table, int n, int C) {
    if (g_failed || n <= 0) return;
    embedding_kernel<<<n, 256>>>(out, ids, table, C);
    LAUNCHED();
}

/* Fixed grid, fixed per-thread strides, fixed tree: a deterministic sum in double. The block
 * partials are added on the host in order. */
enum { SS_BLOCKS = 256, SS_THREADS = 256 };
__global__ static void sum_squares_kernel(double *part, const float *x, size_t n) {
    __shared__ double s[SS_THREADS];
    double acc = 0;
    for (size_t i = blockIdx.x * (size_t)SS_THREADS + threadIdx.x; i < n; i += (size_t)SS_BLOCKS * SS_THREADS)
        acc += (double)x[i] * x[i];
    s[threadIdx.x] = acc;
    __syncthreads();
    for (int w = SS_THREADS / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) part[blockIdx.x] = s[0];
}
static double cuda_sum_squares(const float *x, size_t n) {
    static scratch parts;
    double *d = (double *)scratch_get(&parts, sizeof(double) * SS_BLOCKS, "the squared norm");
    if (g_failed || !d || !n) return g_failed ? NAN : 0.0;
    sum_squares_kernel<<<SS_BLOCKS, SS_THREADS>>>(d, x, n);
    LAUNCHED();
    double h[SS_BLOCKS], sum = 0;
    cuda_download(h, d, sizeof h);
    if (g_failed) return NAN;
    for (int b = 0; b < SS_BLOCKS; b++) sum += h[b];
    return sum;
}

/* ---- RMSNorm ------------------------------------------------------------------------------ */

__global__ static void rmsnorm_forward_kernel(float *y, float *rstd, const float *x, const float *w, int C,
                                              float eps) {
    const float *xr = x + (size_t)blockIdx.x * C;
    float *yr = y + (size_t)blockIdx.x * C;
    float ss = 0;
    for (int j = threadIdx.x; j < C; j += blockDim.x) ss += xr[j] * xr[j];
    ss = block_reduce(ss, 0);
    float s = 1.0f / sqrtf(ss / (float)C + eps);
    if (threadIdx.x == 0) rstd[blockIdx.x] = s;
    for (int j = threadIdx.x; j < C; j += blockDim.x) yr[j] = w[j] * (xr[j] * s);
}
static void cuda_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int rows, int C, float eps) {
    if (g_failed || rows <= 0) return;
    rmsnorm_forward_kernel<<<rows, 256>>>(y, rstd, x, w, C, eps);
    LAUNCHED();
}

/* dx += s * (w dy - xhat * mean(w dy * xhat)), xhat = x * s. */
__global__ static void rmsnorm_backward_kernel(float *dx, const float *dy, const float *x, const float *w,
                                               const float *rstd, int C) {
    size_t off = (size_t)blockIdx.x * C;
    float s = rstd[blockIdx.x], dot = 0;
    for (int j = threadIdx.x; j < C; j += blockDim.x) dot += w[j] * dy[off + j] * x[off + j] * s;
    dot = block_reduce(dot, 0) / (float)C;
    for (int j = threadIdx.x; j < C; j += blockDim.x)
        dx[off + j] += s * (w[j] * dy[off + j] - x[off + j] * s * dot);
}
static void cuda_rmsnorm_backward(float *dx, const float *dy, const float *x, const float *w, const float *rstd,
                                  int rows, int C) {
    if (g_failed || rows <= 0) return;
    rmsnorm_backward_kernel<<<rows, 256>>>(dx, dy, x, w, rstd, C);
    LAUNCHED();
}

/* ---- RoPE --------------------------------------------------------------------------------- */

/* One thread per (row, head, i < hd/2). The angle in double, as the CPU reference computes it:
 * positions reach 32k and a float angle would drift. */
__global__ static void rope_kernel(float *x, int rows, int T, int pos0, int heads, int hd, float theta,
                                   float direction) {
    int half = hd / 2;
    size_t total = (size_t)rows * heads * half;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < total;
         idx += (size_t)gridDim.x * blockDim.x) {
        int i = (int)(idx % half);
        size_t rh = idx / half;
        int r = (int)(rh / heads);
        double angle = (double)(pos0 + r % T) * pow((double)theta, -2.0 * i / hd);
        float cs = (float)cos(angle), sn = direction * (float)sin(angle);
        float *v = x + rh * hd; /* row r, head h: (r * heads + h) * hd */
        float a = v[i], b = v[i + half];
        v[i] = a * cs - b * sn;
        v[i + half] = b * cs + a * sn;
    }
}
static void rope_launch(float *x, int rows, int T, int pos0, int heads, int hd, float theta, float direction) {
    size_t n = (size_t)rows * heads * (hd / 2);
    if (g_failed || !n) return;
    rope_kernel<<<blocks_for(n, 256), 256>>>(x, rows, T, pos0, heads, hd, theta, direction);
    LAUNCHED();
}
static void cuda_rope_forward(float *x, int rows, int T, int pos0, int heads, int hd, float theta) {
    rope_launch(x, rows, T, pos0, heads, hd, theta, 1.0f);
}
static void cuda_rope_backward(float *dx, int rows, int T, int pos0, int heads, int hd, float theta) {
    rope_launch(dx, rows, T, pos0, heads, hd, theta, -1.0f);
}

/* ---- attention ---------------------------------------------------------------------------- */

/* A lane holds dimensions d = lane + 32 j of a head vector, j < HD_MAX / 32. HD_MAX 128 covers
 * every Qwen2.5 size (head_dim 64 or 128) and keeps each kernel's shared memory under the 48 KB
 * that needs no opt-in (37 KB at 128: two padded 32-row tiles and the warps' own rows). */
enum { ATT_WARPS = 4, ATT_TILE = 32, HD_MAX = 128, HD_PER_LANE = HD_MAX / 32 };

/* Forward: a warp per query row; the block's warps share each tile of 32 keys and values in
 * shared memory (rows padded by one float so that lane j reading row j hits distinct banks).
 * Lane l scores key l of the tile, the warp takes the tile's max, rescales its running sum and
 * accumulator once per tile (online softmax), then every lane adds p_l V_l to its dimensions.
 * Query row i of a sequence sees keys 0 .. past + i, past = T_total - T_new. */
__global__ static void attention_forward_kernel(float *out, float *lse, const float *q, const float *k,
                                                const float *v, int T_new, int T_total, int T_max, int NH, int KVH,
                                                int hd, float scale) {
    extern __shared__ float sm[];
    int ld = hd + 1;
    float *Ks = sm, *Vs = Ks + ATT_TILE * ld, *Qs = Vs + ATT_TILE * ld; /* Qs: (ATT_WARPS, hd) */
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int b = blockIdx.z, h = blockIdx.y, kh = h / (NH / KVH), past = T_total - T_new;
    int i = blockIdx.x * ATT_WARPS + warp, ldq = NH * hd, ldk = KVH * hd;
    int valid = i < T_new;
    const float *K = k + (size_t)b * T_max * ldk + (size_t)kh * hd;
    const float *V = v + (size_t)b * T_max * ldk + (size_t)kh * hd;
    float *qs = Qs + warp * hd;
    for (int d = lane; d < hd; d += 32) qs[d] = valid ? q[((size_t)b * T_new + i) * ldq + (size_t)h * hd + d] : 0.0f;
    int last_row = min(T_new - 1, (int)blockIdx.x * ATT_WARPS + ATT_WARPS - 1);
    int keys = past + last_row + 1, my_last = past + i;
    float m = -INFINITY, l = 0, acc[HD_PER_LANE];
#pragma unroll
    for (int j = 0; j < HD_PER_LANE; j++) acc[j] = 0;
    for (int t0 = 0; t0 < keys; t0 += ATT_TILE) {
        __syncthreads(); /* the previous tile is no longer read */
        for (int e = threadIdx.x; e < ATT_TILE * hd; e += blockDim.x) {
            int r = e / hd, d = e % hd;
            int key = t0 + r;
            Ks[r * ld + d] = key < keys ? K[(size_t)key * ldk + d] : 0.0f;
            Vs[r * ld + d] = key < keys ? V[(size_t)key * ldk + d] : 0.0f;
        }
        __syncthreads();
        if (!valid) continue;
        int key = t0 + lane;
        float s = -INFINITY;
        if (key <= my_last) {
            s = 0;
            for (int d = 0; d < hd; d++) s += qs[d] * Ks[lane * ld + d];
            s *= scale;
        }
        float mt = warp_max(s);
        if (mt == -INFINITY) continue; /* every key of this tile is masked for this row */
        float m_new = fmaxf(m, mt), corr = expf(m - m_new), p = expf(s - m_new);
        l = l * corr + warp_sum(p);
#pragma unroll
        for (int j = 0; j < HD_PER_LANE; j++) acc[j] *= corr;
        for (int r = 0; r < ATT_TILE; r++) {
            float pr = __shfl_sync(0xffffffffu, p, r);
#pragma unroll
            for (int j = 0; j < HD_PER_LANE; j++) {
                int d = lane + 32 * j;
                if (d < hd) acc[j] += pr * Vs[r * ld + d];
            }
        }
        m = m_new;
    }
    if (!valid) return;
    float inv = 1.0f / l;
    float *o = out + ((size_t)b * T_new + i) * ldq + (size_t)h * hd;
#pragma unroll
    for (int j = 0; j < HD_PER_LANE; j++) {
        int d = lane + 32 * j;
        if (d < hd) o[d] = acc[j] * inv;
    }
    if (lse && lane == 0) lse[((size_t)b * NH + h) * T_new + i] = m + logf(l);
}

static size_t attention_smem(int hd) { return sizeof(float) * (2 * ATT_TILE * (size_t)(hd + 1) + ATT_WARPS * (size_t)hd); }

static int head_dim_ok(int hd) {
    if (hd <= HD_MAX && hd % 2 == 0) return 1;
    char why[64];
    snprintf(why, sizeof why, "head_dim %d (at most %d, even)", hd, HD_MAX);
    record_error(__FILE__, __LINE__, "attention", why);
    return 0;
}

static void attention_launch(float *out, float *lse, const float *q, const float *k, const float *v, int B,
                             int T_new, int T_total, int T_max, int NH, int KVH, int hd) {
    if (g_failed || B <= 0 || T_new <= 0 || !head_dim_ok(hd)) return;
    dim3 grid((unsigned)((T_new + ATT_WARPS - 1) / ATT_WARPS), (unsigned)NH, (unsigned)B);
    attention_forward_kernel<<<grid, 32 * ATT_WARPS, attention_smem(hd)>>>(out, lse, q, k, v, T_new, T_total, T_max,
                                                                          NH, KVH, hd, 1.0f / sqrtf((float)hd));
    LAUNCHED();
}

static void cuda_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v, int B,
                                   int T, int NH, int KVH, int hd) {
    attention_launch(out, lse, q, k, v, B, T, T, T, NH, KVH, hd);
}

static void cuda_attention_cached(float *out, const float *q, const float *k_cache, const float *v_cache, int B,
                                  int T_new, int T_total, int T_max, int NH, int KVH, int hd) {
    attention_launch(out, NULL, q, k_cache, v_cache, B, T_new, T_total, T_max, NH, KVH, hd);
}

/* D (B, NH, T) = rowsum(dO * O) of each query row: the softmax backward's correction term. One
 * warp per (row, head), grid-stride: blocks_for caps the grid (at 268M threads, 8.4M warps), so
 * a warp takes rows w, w + warps, ... (all 32 lanes of a warp take the same rows: the shuffle
 * sees every lane). */
__global__ static void attention_delta_kernel(float *D, const float *dout, const float *out, int B, int T, int NH,
                                              int hd) {
    int lane = threadIdx.x & 31;
    size_t rows = (size_t)B * NH * T, warps = ((size_t)gridDim.x * blockDim.x) >> 5;
    for (size_t w = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5; w < rows; w += warps) {
        int i = (int)(w % T), h = (int)(w / T % NH), b = (int)(w / T / NH);
        size_t off = ((size_t)b * T + i) * NH * hd + (size_t)h * hd;
        float s = 0;
        for (int d = lane; d < hd; d += 32) s += dout[off + d] * out[off + d];
        s = warp_sum(s);
        if (lane == 0) D[w] = s;
    }
}

/* dK, dV: a warp per key row j of one (sequence, kv head); the query rows i >= j of every head
 * sharing this kv head stream through shared memory, 32 at a time. Lane l takes query l of the
 * tile: p = exp(scale q.k - lse), ds = p (dO.v - D); then every lane adds, for its dimensions,
 * sum_l p_l dO_l to dV and scale sum_l ds_l Q_l to dK. Overwrites dK, dV. */
__global__ static void attention_dkdv_kernel(float *dk, float *dv, const float *dout, const float *lse,
                                             const float *D, const float *q, const float *k, const float *v, int T,
                                             int NH, int KVH, int hd, float scale) {
    extern __shared__ float sm[];
    int ld = hd + 1;
    float *Qs = sm, *dOs = Qs + ATT_TILE * ld, *Ks = dOs + ATT_TILE * ld, *Vs = Ks + ATT_WARPS * hd;
    float *Ls = Vs + ATT_WARPS * hd, *Ds = Ls + ATT_TILE;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int b = blockIdx.z, kh = blockIdx.y, group = NH / KVH;
    int j0 = blockIdx.x * ATT_WARPS, j = j0 + warp, valid = j < T, ldq = NH * hd, ldk = KVH * hd;
    size_t krow = ((size_t)b * T + j) * ldk + (size_t)kh * hd;
    float *ks = Ks + warp * hd, *vs = Vs + warp * hd;
    for (int d = lane; d < hd; d += 32) {
        ks[d] = valid ? k[krow + d] : 0.0f;
        vs[d] = valid ? v[krow + d] : 0.0f;
    }
    float dK[HD_PER_LANE], dV[HD_PER_LANE];
#pragma unroll
    for (int e = 0; e < HD_PER_LANE; e++) dK[e] = dV[e] = 0;
    for (int h = kh * group; h < (kh + 1) * group; h++) {
        const float *L = lse + ((size_t)b * NH + h) * T, *Dh = D + ((size_t)b * NH + h) * T;
        for (int i0 = j0 - j0 % ATT_TILE; i0 < T; i0 += ATT_TILE) {
            __syncthreads();
            for (int e = threadIdx.x; e < ATT_TILE * hd; e += blockDim.x) {
                int r = e / hd, d = e % hd, i = i0 + r;
                size_t off = ((size_t)b * T + i) * ldq + (size_t)h * hd + d;
                Qs[r * ld + d] = i < T ? q[off] : 0.0f;
                dOs[r * ld + d] = i < T ? dout[off] : 0.0f;
            }
            for (int r = threadIdx.x; r < ATT_TILE; r += blockDim.x) {
                Ls[r] = i0 + r < T ? L[i0 + r] : 0.0f;
                Ds[r] = i0 + r < T ? Dh[i0 + r] : 0.0f;
            }
            __syncthreads();
            if (!valid) continue;
            int i = i0 + lane;
            float p = 0, ds = 0;
            if (i < T && i >= j) {
                float s = 0, dp = 0;
                for (int d = 0; d < hd; d++) {
                    s += Qs[lane * ld + d] * ks[d];
                    dp += dOs[lane * ld + d] * vs[d];
                }
                p = expf(s * scale - Ls[lane]);
                ds = p * (dp - Ds[lane]);
            }
            for (int r = 0; r < ATT_TILE; r++) {
                float pr = __shfl_sync(0xffffffffu, p, r), dsr = __shfl_sync(0xffffffffu, ds, r);
#pragma unroll
                for (int e = 0; e < HD_PER_LANE; e++) {
                    int d = lane + 32 * e;
                    if (d < hd) {
                        dV[e] += pr * dOs[r * ld + d];
                        dK[e] += dsr * Qs[r * ld + d];
                    }
                }
            }
        }
    }
    if (!valid) return;
#pragma unroll
    for (int e = 0; e < HD_PER_LANE; e++) {
        int d = lane + 32 * e;
        if (d < hd) {
            dk[krow + d] = scale * dK[e];
            dv[krow + d] = dV[e];
        }
    }
}

/* dQ: a warp per query row i of one (sequence, head); keys 0..i stream through shared memory.
 * Lane l takes key l of the tile, then dQ += scale sum_l ds_l K_l. Overwrites dQ. */
__global__ static void attention_dq_kernel(float *dq, const float *dout, const float *lse, const float *D,
                                           const float *q, const float *k, const float *v, int T, int NH, int KVH,
                                           int hd, float scale) {
    extern __shared__ float sm[];
    int ld = hd + 1;
    float *Ks = sm, *Vs = Ks + ATT_TILE * ld, *Qs = Vs + ATT_TILE * ld, *dOs = Qs + ATT_WARPS * hd;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int b = blockIdx.z, h = blockIdx.y, kh = h / (NH / KVH);
    int i = blockIdx.x * ATT_WARPS + warp, valid = i < T, ldq = NH * hd, ldk = KVH * hd;
    size_t qrow = ((size_t)b * T + i) * ldq + (size_t)h * hd;
    float *qs = Qs + warp * hd, *dos = dOs + warp * hd;
    for (int d = lane; d < hd; d += 32) {
        qs[d] = valid ? q[qrow + d] : 0.0f;
        dos[d] = valid ? dout[qrow + d] : 0.0f;
    }
    float Li = valid ? lse[((size_t)b * NH + h) * T + i] : 0.0f, Di = valid ? D[((size_t)b * NH + h) * T + i] : 0.0f;
    const float *K = k + (size_t)b * T * ldk + (size_t)kh * hd, *V = v + (size_t)b * T * ldk + (size_t)kh * hd;
    int keys = min(T, (int)blockIdx.x * ATT_WARPS + ATT_WARPS);
    float dQ[HD_PER_LANE];
#pragma unroll
    for (int e = 0; e < HD_PER_LANE; e++) dQ[e] = 0;
    for (int t0 = 0; t0 < keys; t0 += ATT_TILE) {
        __syncthreads();
        for (int e = threadIdx.x; e < ATT_TILE * hd; e += blockDim.x) {
            int r = e / hd, d = e % hd, key = t0 + r;
            Ks[r * ld + d] = key < keys ? K[(size_t)key * ldk + d] : 0.0f;
            Vs[r * ld + d] = key < keys ? V[(size_t)key * ldk + d] : 0.0f;
        }
        __syncthreads();
        if (!valid) continue;
        int key = t0 + lane;
        float ds = 0;
        if (key <= i) {
            float s = 0, dp = 0;
            for (int d = 0; d < hd; d++) {
                s += qs[d] * Ks[lane * ld + d];
                dp += dos[d] * Vs[lane * ld + d];
            }
            ds = expf(s * scale - Li) * (dp - Di);
        }
        for (int r = 0; r < ATT_TILE; r++) {
            float dsr = __shfl_sync(0xffffffffu, ds, r);
#pragma unroll
            for (int e = 0; e < HD_PER_LANE; e++) {
                int d = lane + 32 * e;
                if (d < hd) dQ[e] += dsr * Ks[r * ld + d];
            }
        }
    }
    if (!valid) return;
#pragma unroll
    for (int e = 0; e < HD_PER_LANE; e++) {
        int d = lane + 32 * e;
        if (d < hd) dq[qrow + d] = scale * dQ[e];
    }
}

static void cuda_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *out,
                                    const float *lse, const float *q, const float *k, const float *v, int B, int T,
                                    int NH, int KVH, int hd) {
    if (g_failed || B <= 0 || T <= 0 || !head_dim_ok(hd)) return;
    static scratch delta;
    size_t rows = (size_t)B * NH * T;
    float *D = (float *)scratch_get(&delta, sizeof(float) * rows, "attention backward");
    if (!D) return;
    float scale = 1.0f / sqrtf((float)hd);
    attention_delta_kernel<<<blocks_for(rows * 32, 256), 256>>>(D, dout, out, B, T, NH, hd);
    LAUNCHED();
    size_t smem_kv = sizeof(float) * (2 * ATT_TILE * (size_t)(hd + 1) + 2 * ATT_WARPS * (size_t)hd + 2 * ATT_TILE);
    dim3 grid_kv((unsigned)((T + ATT_WARPS - 1) / ATT_WARPS), (unsigned)KVH, (unsigned)B);
    attention_dkdv_kernel<<<grid_kv, 32 * ATT_WARPS, smem_kv>>>(dk, dv, dout, lse, D, q, k, v, T, NH, KVH, hd, scale);
    LAUNCHED();
    size_t smem_q = sizeof(float) * (2 * ATT_TILE * (size_t)(hd + 1) + 2 * ATT_WARPS * (size_t)hd);
    dim3 grid_q((unsigned)((T + ATT_WARPS - 1) / ATT_WARPS), (unsigned)NH, (unsigned)B);
    attention_dq_kernel<<<grid_q, 32 * ATT_WARPS, smem_q>>>(dq, dout, lse, D, q, k, v, T, NH, KVH, hd, scale);
    LAUNCHED();
}

/* ---- SwiGLU ------------------------------------------------------------------------------- */

__global__ static void swiglu_forward_kernel(float *h, const float *g, const float *u, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        h[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}
__global__ static void swiglu_backward_kernel(float *dg, float *du, const float *dh, const float *g, const float *u,
                                              size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float sig = 1.0f / (1.0f + expf(-g[i]));
        du[i] = dh[i] * g[i] * sig;
        dg[i] = dh[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
    }
}
static void cuda_swiglu_forward(float *h, const float *g, const float *u, size_t n) {
    if (g_failed || !n) return;
    swiglu_forward_kernel<<<blocks_for(n, 256), 256>>>(h, g, u, n);
    LAUNCHED();
}
static void cuda_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n) {
    if (g_failed || !n) return;
    swiglu_backward_kernel<<<blocks_for(n, 256), 256>>>(dg, du, dh, g, u, n);
    LAUNCHED();
}

/* ---- output head + cross-entropy ---------------------------------------------------------- */

enum { HEAD_ROWS = 1024, HEAD_COLS = 8192 };

/* One block per row of a chunk z (n, w) of logits (columns c0 .. c0 + w): add the bias, merge the
 * chunk's max and sum of exponentials into the row's running (mx, sum), and keep the target's
 * logit when it falls in this chunk. Rows without a target are skipped. */
__global__ static void head_stats_kernel(float *mx, float *sum, float *zt, const float *z, const float *bias,
                                         const int32_t *targets, int w, int c0) {
    int r = blockIdx.x, t = targets[r];
    if (t < 0) return;
    const float *zr = z + (size_t)r * w;
    float local = -INFINITY;
    for (int j = threadIdx.x; j < w; j += blockDim.x) {
        float zj = zr[j] + (bias ? bias[c0 + j] : 0.0f);
        local = fmaxf(local, zj);
        if (c0 + j == t) zt[r] = zj;
    }
    float mc = block_reduce(local, 1), s = 0;
    for (int j = threadIdx.x; j < w; j += blockDim.x) s += expf(zr[j] + (bias ? bias[c0 + j] : 0.0f) - mc);
    s = block_reduce(s, 0);
    if (threadIdx.x == 0) {
        float m_old = mx[r], m_new = fmaxf(m_old, mc);
        sum[r] = sum[r] * expf(m_old - m_new) + s * expf(mc - m_new);
        mx[r] = m_new;
    }
}

__global__ static void head_init_kernel(float *mx, float *sum, float *zt, int n) {
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r < n) mx[r] = -INFINITY, sum[r] = 0, zt[r] = 0;
}

/* Per row: loss = lse - z[target] (0 without a target); lse replaces mx for the second pass. */
__global__ static void head_loss_kernel(double *loss, float *mx, const float *sum, const float *zt,
                                        const int32_t *targets, int n) {
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n) return;
    if (targets[r] < 0) {
        loss[r] = 0;
        return;
    }
    float lse = mx[r] + logf(sum[r]);
    loss[r] = (double)lse - zt[r];
    mx[r] = lse;
}

/* z (n, w) becomes dz = grad_scale * (softmax(z) - onehot(target)); zero for rows without one. */
__global__ static void head_dz_kernel(float *z, const float *lse, const float *bias, const int32_t *targets, int n,
                                      int w, int c0, float grad_scale) {
    size_t total = (size_t)n * w;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < total;
         idx += (size_t)gridDim.x * blockDim.x) {
        int r = (int)(idx / w), j = (int)(idx % w), t = targets[r];
        if (t < 0) {
            z[idx] = 0;
            continue;
        }
        float p = expf(z[idx] + (bias ? bias[c0 + j] : 0.0f) - lse[r]);
        z[idx] = grad_scale * (p - (c0 + j == t ? 1.0f : 0.0f));
    }
}

/* dbias[c0 + j] += sum over rows of dz[:, j], rows in order (deterministic). */
__global__ static void head_dbias_kernel(float *dbias, const float *dz, int n, int w, int c0) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= w) return;
    float s = 0;
    for (int r = 0; r < n; r++) s += dz[(size_t)r * w + j];
    dbias[c0 + j] += s;
}

/* The logits of rows x (n, C) against vocabulary rows c0 .. c0 + w of W (V, C): z (n, w). */
static void head_chunk_logits(float *z, const float *x, const float *w, int n, int cols, int C, int c0) {
    cuda_matmul(z, x, w + (size_t)c0 * C, n, cols, C, 0, 1, 1.0f, 0.0f);
}

static double cuda_head_loss(float *dx, float *dbias, const float *x, const float *w, const float *bias,
                             const int32_t *targets, int rows, int C, int V, float grad_scale) {
    static scratch logits, stats, losses;
    if (g_failed || rows <= 0) return g_failed ? NAN : 0.0;
    int rb = rows < HEAD_ROWS ? rows : HEAD_ROWS, cb = V < HEAD_COLS ? V : HEAD_COLS;
    float *z = (float *)scratch_get(&logits, sizeof(float) * (size_t)rb * cb, "the head's logits");
    float *st = (float *)scratch_get(&stats, sizeof(float) * 3 * (size_t)rb, "the head's row statistics");
    double *dl = (double *)scratch_get(&losses, sizeof(double) * (size_t)rows, "the head's losses");
    if (!z || !st || !dl) return NAN;
    float *mx = st, *sum = st + rb, *zt = st + 2 * rb;
    for (int r0 = 0; r0 < rows && !g_failed; r0 += rb) {
        int n = rows - r0 < rb ? rows - r0 : rb;
        const float *xr = x + (size_t)r0 * C;
        const int32_t *tr = targets + r0;
        head_init_kernel<<<(n + 255) / 256, 256>>>(mx, sum, zt, n);
        LAUNCHED();
        for (int c0 = 0; c0 < V; c0 += cb) { /* pass 1: online max and sum over the vocabulary */
            int cols = V - c0 < cb ? V - c0 : cb;
            head_chunk_logits(z, xr, w, n, cols, C, c0);
            head_stats_kernel<<<n, 256>>>(mx, sum, zt, z, bias, tr, cols, c0);
            LAUNCHED();
        }
        head_loss_kernel<<<(n + 255) / 256, 256>>>(dl + r0, mx, sum, zt, tr, n);
        LAUNCHED();
        if (!dx) continue;
        for (int c0 = 0; c0 < V; c0 += cb) { /* pass 2: the chunk's logits again, now for dz */
            int cols = V - c0 < cb ? V - c0 : cb;
            head_chunk_logits(z, xr, w, n, cols, C, c0);
            head_dz_kernel<<<blocks_for((size_t)n * cols, 256), 256>>>(z, mx, bias, tr, n, cols, c0, grad_scale);
            LAUNCHED();
            cuda_matmul(dx + (size_t)r0 * C, z, w + (size_t)c0 * C, n, C, cols, 0, 0, 1.0f, 1.0f);
            if (dbias) {
                head_dbias_kernel<<<(cols + 255) / 256, 256>>>(dbias, z, n, cols, c0);
                LAUNCHED();
            }
        }
    }
    if (g_failed) return NAN;
    double *h = (double *)ls_malloc(sizeof(double) * (size_t)rows), total = 0;
    cuda_download(h, dl, sizeof(double) * (size_t)rows);
    for (int r = 0; r < rows; r++) total += h[r];
    free(h);
    return g_failed ? NAN : total;
}

/* ---- optimisers --------------------------------------------------------------------------- */

__global__ static void adamw_kernel(float *param, const float *grad, float *m, float *v, size_t n, float lr,
                                    float beta1, float beta2, float eps, float weight_decay, float c1, float c2) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float g = grad[i];
        param[i] -= lr * weight_decay * param[i];
        m[i] = beta1 * m[i] + (1.0f - beta1) * g;
        v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
        param[i] -= lr * (m[i] / c1) / (sqrtf(v[i] / c2) + eps);
    }
}
static void cuda_adamw(float *param, const float *grad, float *m, float *v, size_t n, float lr, float beta1,
                       float beta2, float eps, float weight_decay, int t) {
    if (g_failed || !n) return;
    /* bias corrections on the host with powf, as the CPU backend computes them */
    float c1 = 1.0f - powf(beta1, (float)t), c2 = 1.0f - powf(beta2, (float)t);
    adamw_kernel<<<blocks_for(n, 256), 256>>>(param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, c1, c2);
    LAUNCHED();
}

__global__ static void sgd_kernel(float *param, const float *grad, float *buf, size_t n, float lr, float momentum,
                                  float weight_decay, int t) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float g = grad[i] + weight_decay * param[i];
        if (momentum > 0) {
            buf[i] = t == 1 ? g : momentum * buf[i] + g;
            g = buf[i];
        }
        param[i] -= lr * g;
    }
}
static void cuda_sgd(float *param, const float *grad, float *buf, size_t n, float lr, float momentum,
                     float weight_decay, int t) {
    if (g_failed || !n) return;
    sgd_kernel<<<blocks_for(n, 256), 256>>>(param, grad, buf, n, lr, momentum, weight_decay, t);
    LAUNCHED();
}

/* ---- the table ---------------------------------------------------------------------------- */

static ls_backend cuda_backend;

static void fill_table(ls_backend *b) {
    b->name = "cuda";
    b->host_memory = 0;
    b->alloc = cuda_alloc;
    b->release = cuda_release;
    b->upload = cuda_upload;
    b->download = cuda_download;
    b->zero = cuda_zero;
    b->copy = cuda_copy;
    b->matmul = cuda_matmul;
    b->add_bias = cuda_add_bias;
    b->add = cuda_add;
    b->embedding = cuda_embedding;
    b->rmsnorm_forward = cuda_rmsnorm_forward;
    b->rmsnorm_backward = cuda_rmsnorm_backward;
    b->rope_forward = cuda_rope_forward;
    b->rope_backward = cuda_rope_backward;
    b->attention_forward = cuda_attention_forward;
    b->attention_backward = cuda_attention_backward;
    b->attention_cached = cuda_attention_cached;
    b->swiglu_forward = cuda_swiglu_forward;
    b->swiglu_backward = cuda_swiglu_backward;
    b->head_loss = cuda_head_loss;
    b->adamw = cuda_adamw;
    b->sgd = cuda_sgd;
    b->sum_squares = cuda_sum_squares;
    b->scale = cuda_scale;
    b->check = cuda_check;
}

/* The device this process uses among those CUDA sees: node-local rank mod their count (gpu.h),
 * the rank ls_gpu_bind used, else the launcher's, else 0. After ls_gpu_bind narrowed
 * CUDA_VISIBLE_DEVICES to one device CUDA sees only it: device 0. */
static int chosen_device(int count) {
    int rank = ls_gpu_bound_local_rank();
    if (rank < 0)
        rank = ls_gpu_local_rank_of(getenv("OMPI_COMM_WORLD_LOCAL_RANK"), getenv("MPI_LOCALRANKID"),
                                    getenv("SLURM_LOCALID"));
    char entry[32];
    int k = ls_gpu_pick_device(rank < 0 ? 0 : rank, count, NULL, entry, sizeof entry);
    return k < 0 ? 0 : k;
}

extern "C" int ls_cuda_available(char *why, size_t n) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        if (why && n) snprintf(why, n, "%s", cudaGetErrorString(e));
        cudaGetLastError();
        return 0;
    }
    if (count < 1) {
        if (why && n) snprintf(why, n, "no CUDA device is visible");
        return 0;
    }
    cudaDeviceProp prop;
    if (why && n) {
        int dev = chosen_device(count);
        if (cudaGetDeviceProperties(&prop, dev) == cudaSuccess) snprintf(why, n, "%s (device %d of %d)", prop.name, dev, count);
        else why[0] = 0, cudaGetLastError();
    }
    return 1;
}

extern "C" int ls_cuda_lost(void) { return g_dead; }

/* The process's device (chosen_device), one cuBLAS handle, on first use. NULL and ls_error when
 * there is no usable device; NULL and a machine fault (ls_error_machine) once the device's
 * context is lost: this process cannot use it again. */
extern "C" const ls_backend *ls_backend_cuda(void) {
    if (g_dead) {
        ls_error_machine("%s", g_error);
        return NULL;
    }
    if (cuda_backend.name) return &cuda_backend;
    char why[256];
    if (!ls_cuda_available(why, sizeof why)) {
        ls_error("CUDA backend: %s", why);
        return NULL;
    }
    int count = 0;
    cudaGetDeviceCount(&count);
    int dev = chosen_device(count);
    cudaError_t e = cudaSetDevice(dev);
    if (e != cudaSuccess) {
        if (ls_gpu_error_is_fatal((int)e)) {
            ls_error_machine("CUDA backend: cudaSetDevice(%d): %s", dev, cudaGetErrorString(e));
        } else {
            cudaGetLastError();
            ls_error("CUDA backend: cudaSetDevice(%d): %s", dev, cudaGetErrorString(e));
        }
        return NULL;
    }
    cublasStatus_t s = cublasCreate(&g_blas);
    if (s != CUBLAS_STATUS_SUCCESS) {
        ls_error("CUDA backend: cublasCreate: %s", cublas_reason(s));
        return NULL;
    }
    /* fp32 unless asked: the CPU backend is the reference these results are held to */
    const char *math = getenv("LS_CUDA_MATH");
    int tf32 = math && strcmp(math, "tf32") == 0;
    cublasSetMathMode(g_blas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
    fill_table(&cuda_backend);
    return &cuda_backend;
}
