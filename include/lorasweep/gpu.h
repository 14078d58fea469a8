/*
 * gpu.h: the decisions about GPUs that need no GPU, as pure functions in every build, so that the
 * CPU tests check them (tests/test_gpu.c): which device a process takes, and what a CUDA error
 * means for the process. backend_cuda.cu and sweep.c apply them.
 *
 * Binding: a process takes device (node-local rank mod the node's devices). CUDA_VISIBLE_DEVICES,
 * when set (Slurm, mpirun), lists the devices; unset, the devices are counted without starting
 * CUDA (/dev/nvidiaN: CUDA reads CUDA_VISIBLE_DEVICES once, when it starts, so the process must
 * choose before its first CUDA call). The choice narrows CUDA_VISIBLE_DEVICES to the one device,
 * before MPI_Init where the launcher says the node-local rank in the environment (a CUDA-aware
 * MPI may create a context in MPI_Init), else right after it from MPI's own node split.
 */
#ifndef LORASWEEP_GPU_H
#define LORASWEEP_GPU_H

#include <stddef.h>

#ifdef __cplusplus /* backend_cuda.cu is compiled as C++ */
extern "C" {
#endif

/* The device of node-local rank local_rank (>= 0). visible: CUDA_VISIBLE_DEVICES (NULL: unset);
 * when set, entry (local_rank mod entries) is taken and device_count is not used; "" and
 * "NoDevFiles" (Slurm's word for none) mean no device. Unset: device (local_rank mod
 * device_count), none when device_count < 1. Writes the CUDA_VISIBLE_DEVICES value that
 * narrows the process to it into out (an index or a UUID, as listed) and returns its position
 * among the node's devices; -1 (out untouched) for no device: the CPU. */
int ls_gpu_pick_device(int local_rank, int device_count, const char *visible, char *out, size_t cap);

/* The node-local rank the launcher gives in the environment before MPI starts: Open MPI's
 * OMPI_COMM_WORLD_LOCAL_RANK, MPICH's MPI_LOCALRANKID, Slurm's SLURM_LOCALID, in that order
 * (NULL: unset); -1 when none is a non-negative integer. */
int ls_gpu_local_rank_of(const char *ompi, const char *mpich, const char *slurm);

/* The GPUs on this machine as the driver's device files count them (/dev/nvidia0, 1, ...),
 * without starting CUDA; 0 when there are none. */
int ls_gpu_count_device_files(void);

/* Bind this process to its device: narrow CUDA_VISIBLE_DEVICES as ls_gpu_pick_device says, for
 * node-local rank local_rank (-1: from the launcher's environment, ls_gpu_local_rank_of). The
 * first call that knows the rank decides (a second keeps it: CUDA may have started since).
 * Returns the device's position on the node, or -1 (the CPU). */
int ls_gpu_bind(int local_rank);
/* The device ls_gpu_bind chose (-1: none or not bound) and the node-local rank it used (-1). */
int ls_gpu_bound_device(void);
int ls_gpu_bound_local_rank(void);

/* The CUDA runtime's error codes that this code classifies (cudaError_t values; backend_cuda.cu
 * checks each against CUDA's headers at compile time). */
enum {
    LS_CUDA_SUCCESS = 0,
    LS_CUDA_INVALID_VALUE = 1,
    LS_CUDA_MEMORY_ALLOCATION = 2,
    LS_CUDA_INITIALIZATION_ERROR = 3,
    LS_CUDA_CUDART_UNLOADING = 4,
    LS_CUDA_INVALID_CONFIGURATION = 9,
    LS_CUDA_INSUFFICIENT_DRIVER = 35,
    LS_CUDA_DEVICES_UNAVAILABLE = 46,
    LS_CUDA_PRIOR_LAUNCH_FAILURE = 53,
    LS_CUDA_NO_DEVICE = 100,
    LS_CUDA_INVALID_DEVICE = 101,
    LS_CUDA_DEVICE_UNINITIALIZED = 201,
    LS_CUDA_ECC_UNCORRECTABLE = 214,
    LS_CUDA_NVLINK_UNCORRECTABLE = 220,
    LS_CUDA_CONTAINED = 226,
    LS_CUDA_ILLEGAL_ADDRESS = 700,
    LS_CUDA_LAUNCH_OUT_OF_RESOURCES = 701,
    LS_CUDA_LAUNCH_TIMEOUT = 702,
    LS_CUDA_CONTEXT_IS_DESTROYED = 709,
    LS_CUDA_ASSERT = 710,
    LS_CUDA_HARDWARE_STACK_ERROR = 714,
    LS_CUDA_ILLEGAL_INSTRUCTION = 715,
    LS_CUDA_MISALIGNED_ADDRESS = 716,
    LS_CUDA_INVALID_ADDRESS_SPACE = 717,
    LS_CUDA_INVALID_PC = 718,
    LS_CUDA_LAUNCH_FAILURE = 719,
    LS_CUDA_SYSTEM_NOT_READY = 802,
    LS_CUDA_SYSTEM_DRIVER_MISMATCH = 803,
    LS_CUDA_MPS_CONNECTION_FAILED = 805,
    LS_CUDA_MPS_RPC_FAILURE = 806,
    LS_CUDA_MPS_SERVER_NOT_READY = 807,
    LS_CUDA_MPS_CLIENT_TERMINATED = 810,
    LS_CUDA_EXTERNAL_DEVICE = 911,
    LS_CUDA_UNKNOWN = 999,
};

/* 1 when a CUDA error leaves this process's device unusable: a sticky error that destroyed the
 * context (an illegal address, a failed or timed-out kernel, a device-side assert, an
 * uncorrectable ECC or NVLink error), or a device or driver that is gone. Only a new process can
 * use the GPU again, so the failure is the machine's: the sweep stops (exit 4) and its resume
 * starts fresh processes; no trial is blamed. 0 for errors after which the context still works
 * (out of memory, an invalid argument or launch configuration): the trial that met it fails and
 * the worker goes on. */
int ls_gpu_error_is_fatal(int cuda_error);

#ifdef __cplusplus
}
#endif

#endif
