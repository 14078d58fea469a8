/*
 * reduce_nccl.h: data-parallel gradient sums on GPUs (CUDA builds only, LS_HAVE_CUDA).
 *
 * A sweep's group (sweep.c) sums with MPI_Allreduce on host memory. When the trial runs on the
 * CUDA backend its gradient arena is device memory, so the group is wrapped: sum_floats becomes
 * ncclAllReduce in place on the device, over an NCCL communicator made with ncclCommInitRank from
 * an ncclUniqueId that group rank 0 creates and broadcasts over the group's MPI communicator (the
 * group's own broadcast). Host sums (losses, counts, agreement flags) and broadcasts stay on MPI.
 * Each rank's device is the one the sweep gave it (CUDA_VISIBLE_DEVICES narrowed: device 0).
 *
 * Hook: where the trial picks the CUDA backend (trial.c, backend_of), a trial with a group calls
 * ls_nccl_group_init and trains with the wrapped group; ls_nccl_group_free after training.
 */
#ifndef LORASWEEP_REDUCE_NCCL_H
#define LORASWEEP_REDUCE_NCCL_H

#include "lorasweep/train.h"

#ifdef LS_HAVE_CUDA
/* Collective over mpi_group (which must outlive *out): LS_OK with *out ready, or LS_ERR on
 * every rank (the ranks agree) with a message. */
int ls_nccl_group_init(ls_train_group *out, const ls_train_group *mpi_group);
void ls_nccl_group_free(ls_train_group *g);
#endif

#endif
