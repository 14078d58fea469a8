/*
 * gpu.c: the GPU decisions that need no GPU (gpu.h): device binding and the classification of
 * CUDA errors. No CUDA header here: the CPU build compiles and tests it, backend_cuda.cu checks
 * the error numbers against CUDA's own at compile time.
 */
#include "lorasweep/gpu.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ls_gpu_pick_device(int local_rank, int device_count, const char *visible, char *out, size_t cap) {
    if (local_rank < 0) return -1;
    if (!visible) {
        if (device_count < 1) return -1;
        int k = local_rank % device_count;
        if (snprintf(out, cap, "%d", k) >= (int)cap) return -1;
        return k;
    }
    if (!visible[0] || !strcmp(visible, "NoDevFiles")) return -1;
    int n = 1;
    for (const char *c = visible; *c; c++) n += *c == ',';
    int k = local_rank % n;
    const char *start = visible;
    for (int i = 0; i < k; i++) start = strchr(start, ',') + 1;
    size_t len = strcspn(start, ",");
    if (len == 0 || len >= cap) return -1; /* "0,,1": an empty entry names no device */
    memcpy(out, start, len);
    out[len] = '\0';
    return k;
}

static int rank_text(const char *s) {
    if (!s || !*s) return -1;
    char *end;
    long v = strtol(s, &end, 10);
    return *end || v < 0 || v > 1 << 20 ? -1 : (int)v;
}

int ls_gpu_local_rank_of(const char *ompi, const char *mpich, const char *slurm) {
    int r = rank_text(ompi);
    if (r < 0) r = rank_text(mpich);
    if (r < 0) r = rank_text(slurm);
    return r;
}

int ls_gpu_count_device_files(void) {
    DIR *d = opendir("/dev");
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) { /* nvidia<digits>: one per GPU (nvidiactl, nvidia-uvm are not) */
        const char *p = e->d_name;
        if (strncmp(p, "nvidia", 6) != 0 || !p[6]) continue;
        p += 6;
        while (*p >= '0' && *p <= '9') p++;
        n += *p == '\0';
    }
    closedir(d);
    return n;
}

static int bound_device = -1, bound_rank = -1;

int ls_gpu_bind(int local_rank) {
    if (bound_rank >= 0) return bound_device; /* decided already: CUDA may have started since */
    if (local_rank < 0)
        local_rank = ls_gpu_local_rank_of(getenv("OMPI_COMM_WORLD_LOCAL_RANK"), getenv("MPI_LOCALRANKID"),
                                          getenv("SLURM_LOCALID"));
    if (local_rank < 0) return -1;
    const char *visible = getenv("CUDA_VISIBLE_DEVICES");
    char entry[128];
    int k = ls_gpu_pick_device(local_rank, visible ? 0 : ls_gpu_count_device_files(), visible, entry, sizeof entry);
    if (k >= 0) setenv("CUDA_VISIBLE_DEVICES", entry, 1);
    bound_rank = local_rank, bound_device = k;
    return k;
}

int ls_gpu_bound_device(void) { return bound_device; }
int ls_gpu_bound_local_rank(void) { return bound_rank; }

int ls_gpu_error_is_fatal(int e) {
    switch (e) {
    /* sticky: the context is corrupted, every later call in this process returns the same error */
    case LS_CUDA_ILLEGAL_ADDRESS:
    case LS_CUDA_LAUNCH_TIMEOUT:
    case LS_CUDA_CONTEXT_IS_DESTROYED:
    case LS_CUDA_ASSERT:
    case LS_CUDA_HARDWARE_STACK_ERROR:
    case LS_CUDA_ILLEGAL_INSTRUCTION:
    case LS_CUDA_MISALIGNED_ADDRESS:
    case LS_CUDA_INVALID_ADDRESS_SPACE:
    case LS_CUDA_INVALID_PC:
    case LS_CUDA_LAUNCH_FAILURE:
    case LS_CUDA_PRIOR_LAUNCH_FAILURE:
    case LS_CUDA_ECC_UNCORRECTABLE:
    case LS_CUDA_NVLINK_UNCORRECTABLE:
    case LS_CUDA_CONTAINED:
    case LS_CUDA_EXTERNAL_DEVICE:
    case LS_CUDA_UNKNOWN:
    /* the device or the driver is gone or unusable for this process */
    case LS_CUDA_INITIALIZATION_ERROR:
    case LS_CUDA_CUDART_UNLOADING:
    case LS_CUDA_INSUFFICIENT_DRIVER:
    case LS_CUDA_DEVICES_UNAVAILABLE:
    case LS_CUDA_NO_DEVICE:
    case LS_CUDA_DEVICE_UNINITIALIZED:
    case LS_CUDA_SYSTEM_NOT_READY:
    case LS_CUDA_SYSTEM_DRIVER_MISMATCH:
    case LS_CUDA_MPS_CONNECTION_FAILED:
    case LS_CUDA_MPS_RPC_FAILURE:
    case LS_CUDA_MPS_SERVER_NOT_READY:
    case LS_CUDA_MPS_CLIENT_TERMINATED:
        return 1;
    default: /* out of memory, invalid values and launch configurations: the context still works */
        return 0;
    }
}
