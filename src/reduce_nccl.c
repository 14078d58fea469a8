/*
 * reduce_nccl.c: the NCCL version of a data-parallel group's gradient sum (see reduce_nccl.h).
 * Compiled to nothing without LS_HAVE_NCCL (a CUDA build with NCCL found, CMakeLists.txt).
 *
 * Determinism: NCCL's ring and tree all-reduces give every rank the same result (each reduced
 * chunk is computed once and then distributed), and repeat bit for bit for the same number of
 * ranks, topology and NCCL version; the sum is in float (NCCL has no widening sum), so it differs
 * from the CPU group's double sum by rounding.
 */
#include "lorasweep/reduce_nccl.h"

#ifdef LS_HAVE_NCCL

#include <cuda_runtime.h>
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes" /* nccl.h declares f() for f(void) */
#include <nccl.h>
#pragma GCC diagnostic pop
#include <stdlib.h>

#include "lorasweep/common.h"

typedef struct {
    const ls_train_group *mpi; /* host sums and broadcasts */
    ncclComm_t comm;
    cudaStream_t stream;
} nccl_group;

static int nccl_sum_floats(void *ctx, float *x, size_t n) {
    nccl_group *g = ctx;
    ncclResult_t r = ncclAllReduce(x, x, n, ncclFloat, ncclSum, g->comm, g->stream);
    if (r != ncclSuccess) return ls_error("ncclAllReduce: %s", ncclGetErrorString(r));
    cudaError_t e = cudaStreamSynchronize(g->stream); /* the optimiser step reads the sum next */
    if (e != cudaSuccess) return ls_error("ncclAllReduce: %s", cudaGetErrorString(e));
    return LS_OK;
}

static int nccl_sum_doubles(void *ctx, double *x, int n) {
    const ls_train_group *m = ((nccl_group *)ctx)->mpi;
    return m->sum_doubles(m->ctx, x, n);
}

static int nccl_broadcast(void *ctx, void *buf, size_t bytes) {
    const ls_train_group *m = ((nccl_group *)ctx)->mpi;
    return m->broadcast(m->ctx, buf, bytes);
}

int ls_nccl_group_init(ls_train_group *out, const ls_train_group *mpi) {
    ncclUniqueId id = {0};
    int ok = mpi->rank != 0 || ncclGetUniqueId(&id) == ncclSuccess;
    /* rank 0's id reaches everyone over MPI; a rank 0 failure is agreed before anyone waits in NCCL */
    if (!ls_train_group_agree(mpi, ok) || mpi->broadcast(mpi->ctx, &id, sizeof id) != LS_OK)
        return ls_error("NCCL: group rank 0 could not make an ncclUniqueId");
    nccl_group *g = ls_calloc(1, sizeof *g);
    g->mpi = mpi;
    /* the stream first, agreed: a rank that lacks it must not leave the others waiting inside
     * ncclCommInitRank for a rank that never comes */
    cudaError_t e = cudaStreamCreate(&g->stream);
    ok = e == cudaSuccess;
    if (!ok) cudaGetLastError();
    if (!ls_train_group_agree(mpi, ok)) {
        if (ok) cudaStreamDestroy(g->stream);
        free(g);
        return ls_error("NCCL: cudaStreamCreate failed%s%s", ok ? " on another rank" : ": ",
                        ok ? "" : cudaGetErrorString(e));
    }
    ncclResult_t r = ncclCommInitRank(&g->comm, mpi->size, id, mpi->rank);
    ok = r == ncclSuccess;
    if (!ls_train_group_agree(mpi, ok)) {
        if (ok) ncclCommDestroy(g->comm);
        cudaStreamDestroy(g->stream);
        free(g);
        return ls_error("NCCL: ncclCommInitRank over %d ranks failed%s%s", mpi->size, ok ? " on another rank" : ": ",
                        ok ? "" : ncclGetErrorString(r));
    }
    *out = (ls_train_group){mpi->rank, mpi->size, nccl_sum_floats, nccl_sum_doubles, nccl_broadcast, g};
    return LS_OK;
}

void ls_nccl_group_free(ls_train_group *out) {
    nccl_group *g = out->ctx;
    if (!g) return;
    ncclCommDestroy(g->comm);
    cudaStreamDestroy(g->stream);
    free(g);
    out->ctx = NULL;
}

#else
typedef int ls_reduce_nccl_unused; /* ISO C wants a translation unit to declare something */
#endif
