/*
 * reduce_nccl.h: data-parallel gradient sums on GPUs (CUDA builds with NCCL only, LS_HAVE_NCCL).
 *
 * A sweep's group (sweep.c) sums with MPI_Allreduce on host memory. When the trial runs on the
 * CUDA backend its gradient arena is device memory, so the group is wrapped: sum_floats becomes
 * ncclAllReduce in place on the device, over an NCCL communicator made with ncclCommInitRank from
 * an ncclUniqueId that group rank 0 creates and broadcasts over the group's MPI communicator (the
 * group's own broadcast). Host sums (losses, counts, agreement flags) and broadcasts stay on MPI.
 * Each rank's device is the one the sweep gave it (gpu.h: node-local rank mod the node's devices).
 * NCCL runs on its own stream, created blocking: it waits for the backend's work on the legacy
 * default stream, and the sum is synchronised before the optimiser step reads it.
 *
 * Hook: ls_trial_run (trial.c), once every rank of the group has set up, wraps a group on a
 * backend without host memory with ls_nccl_group_init, trains and evaluates with it, and calls
 * ls_nccl_group_free at the end. A CUDA build without NCCL refuses such a trial with one line.
 */
#ifndef LORASWEEP_REDUCE_NCCL_H
#define LORASWEEP_REDUCE_NCCL_H

#include "lorasweep/train.h"

#ifdef LS_HAVE_NCCL
/* Collective over mpi_group (which must outlive *out): LS_OK with *out ready, or LS_ERR on
 * every rank (the ranks agree) with a message. */
int ls_nccl_group_init(ls_train_group *out, const ls_train_group *mpi_group);
void ls_nccl_group_free(ls_train_group *g);
#endif

#endif
