/*
 * sweep.c: the scheduler/worker protocol over MPI (see sweep.h). All of the program's MPI calls
 * are here, so the rest of it builds and tests without thinking about ranks.
 *
 * Messages (tags below) are small fixed structs plus, for an assignment, the trial's text.
 * Rank 0 never blocks in a receive: it polls with MPI_Iprobe so that it notices a stop request
 * while every worker is busy in a long trial. Workers poll for rank 0's stop message between
 * training steps through the trial's should_stop hook.
 *
 * Data-parallel groups (sweep.h): a communicator per group from MPI_Comm_split of the world (rank
 * 0 and idle workers take no color); the leader relays rank 0's assignments to its group, and
 * the group's ls_train_group sums with MPI_Allreduce over that communicator.
 */
#define _GNU_SOURCE /* sched_getaffinity */
#include "lorasweep/sweep.h"

#include <cblas.h>
#include <mpi.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lorasweep/backend.h"
#include "lorasweep/common.h"
#include "lorasweep/gpu.h"
#include "lorasweep/train.h"

#ifdef _OPENMP
#include <omp.h>
#endif

enum {
    TAG_REQUEST = 1,   /* worker -> 0: give me a trial */
    TAG_ASSIGN = 2,    /* 0 -> worker: assign_header + payload */
    TAG_RELEASE = 3,   /* 0 -> worker: no more work, leave */
    TAG_HEARTBEAT = 4, /* worker -> 0: heartbeat_msg */
    TAG_RESULT = 5,    /* worker -> 0: result_msg */
    TAG_STOP = 6,      /* 0 -> worker: checkpoint and stop the current trial */
};

typedef struct {
    uint64_t id;
    int index;
    int pause_step;
    double cost;
} assign_header;

typedef struct {
    int index;
    ls_trial_heartbeat hb;
} heartbeat_msg;

typedef ls_sweep_worker_info request_msg; /* rank 0 names the host in the journal and in a hang */

typedef struct {
    int index;
    ls_trial_summary summary;
} result_msg;

int ls_sweep_mpi_init(int *argc, char ***argv, ls_sweep_place *place) {
    /* The GPU before MPI starts, where the launcher says the node-local rank: a CUDA-aware MPI may
     * create a context in MPI_Init, on whatever device CUDA_VISIBLE_DEVICES then shows. */
    ls_gpu_bind(-1);
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return ls_error("MPI could not start");
    MPI_Comm_rank(MPI_COMM_WORLD, &place->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &place->size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, place->rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &place->local_rank);
    MPI_Comm_size(node, &place->local_size);
    int is_scheduler = place->rank == 0, schedulers_here = 0;
    MPI_Allreduce(&is_scheduler, &schedulers_here, 1, MPI_INT, MPI_SUM, node);
    place->workers_on_node = place->local_size - schedulers_here;
    /* this worker's index among the node's workers: a split without the scheduler */
    MPI_Comm workers;
    MPI_Comm_split(node, is_scheduler ? MPI_UNDEFINED : 1, place->local_rank, &workers);
    place->local_worker = -1;
    if (workers != MPI_COMM_NULL) {
        MPI_Comm_rank(workers, &place->local_worker);
        MPI_Comm_free(&workers);
    }
    /* Workers bound to their own cores (mpirun --bind-to core, srun --cpu-bind) use them all;
     * workers given one cpuset together (a Slurm allocation, taskset) share it. */
    cpu_set_t mask;
    CPU_ZERO(&mask);
    sched_getaffinity(0, sizeof mask, &mask);
    uint64_t mine = is_scheduler ? 0 : 1469598103934665603ULL, *all = ls_malloc((size_t)place->local_size * sizeof *all);
    for (size_t b = 0; !is_scheduler && b < sizeof mask; b++) mine = (mine ^ ((unsigned char *)&mask)[b]) * 1099511628211ULL;
    MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, node);
    place->cpu_sharers = 0;
    for (int i = 0; i < place->local_size; i++) place->cpu_sharers += !is_scheduler && all[i] == mine;
    free(all);
    MPI_Comm_free(&node);
    /* Otherwise now, from MPI's node split (ls_gpu_bind keeps an earlier choice: CUDA may have
     * started in MPI_Init). Node-local rank mod the devices: the scheduler's rank takes a slot it
     * does not use, but the workers of a node, consecutive ranks, still get distinct devices
     * while there are enough, and share them evenly when there are not. */
    int device = ls_gpu_bind(place->local_rank);
    place->device = is_scheduler ? -1 : device;
    return LS_OK;
}

void ls_sweep_mpi_finalize(void) { MPI_Finalize(); }
void ls_sweep_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
void ls_sweep_barrier(void) { MPI_Barrier(MPI_COMM_WORLD); }
void ls_sweep_broadcast_int(int *v) { MPI_Bcast(v, 1, MPI_INT, 0, MPI_COMM_WORLD); }

char *ls_sweep_broadcast_string(const char *s) {
    int rank, len = s ? (int)strlen(s) + 1 : 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Bcast(&len, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (len == 0) return NULL;
    char *out = ls_malloc((size_t)len);
    if (rank == 0) memcpy(out, s, (size_t)len);
    MPI_Bcast(out, len, MPI_CHAR, 0, MPI_COMM_WORLD);
    return out;
}

/* ---- rank 0 ------------------------------------------------------------------------------- */

static int by_cost_desc(const void *a, const void *b) {
    const ls_sweep_item *x = a, *y = b;
    if (x->cost != y->cost) return x->cost < y->cost ? 1 : -1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Waiting for the next message: yield a while (a reply is usually microseconds away), then sleep
 * in growing naps up to 2 ms, so that an idle scheduler costs no CPU that workers need. */
static void idle_wait(int idle_rounds) {
    if (idle_rounds < 200) {
        sched_yield();
        return;
    }
    long ns = 10000L << (idle_rounds - 200 < 8 ? idle_rounds - 200 : 8); /* 10 us .. 2.56 ms */
    struct timespec ts = {0, ns > 2000000 ? 2000000 : ns};
    nanosleep(&ts, NULL);
}

static void send_assignment(const ls_sweep_item *item, int worker) {
    size_t len = item->payload ? strlen(item->payload) + 1 : 1;
    char *buf = ls_malloc(sizeof(assign_header) + len);
    assign_header h = {item->id, item->index, item->pause_step, item->cost};
    memcpy(buf, &h, sizeof h);
    memcpy(buf + sizeof h, item->payload ? item->payload : "", len);
    MPI_Send(buf, (int)(sizeof h + len), MPI_BYTE, worker, TAG_ASSIGN, MPI_COMM_WORLD);
    free(buf);
}

int ls_sweep_groups(int size, int ranks_per_trial, int *idle) {
    int workers = size > 1 ? size - 1 : 0, k = ranks_per_trial > 0 ? ranks_per_trial : 1;
    if (idle) *idle = workers % k;
    return workers / k;
}

/* Every rank's color: its group's index, or none (rank 0, idle workers). Collective over the world,
 * so rank 0 takes part too; without groups (k = 1) nothing is split. */
static MPI_Comm group_split(int rank, int size, int k) {
    int groups = ls_sweep_groups(size, k, NULL);
    int color = rank >= 1 && (rank - 1) / k < groups ? (rank - 1) / k : MPI_UNDEFINED;
    MPI_Comm comm;
    MPI_Comm_split(MPI_COMM_WORLD, color, rank, &comm);
    return comm;
}

/* The fixed list of ls_sweep_schedule, handed out in order. */
typedef struct {
    ls_sweep_item *items;
    int n, next;
} item_list;

static int list_next(void *user, const ls_sweep_worker_info *worker, ls_sweep_item *item) {
    item_list *l = user;
    (void)worker;
    if (l->next >= l->n) return -1;
    *item = l->items[l->next++];
    return 1;
}

typedef int (*next_fn)(void *user, const ls_sweep_worker_info *worker, ls_sweep_item *item);

static void assign(next_fn next, void *next_user, const ls_sweep_hooks *hooks, int worker,
                   ls_sweep_item *slot, int *running, const request_msg *info, int *answer) {
    ls_sweep_item item;
    *answer = next(next_user, info, &item);
    if (*answer != 1) return;
    *slot = item;
    running[worker] = 1;
    send_assignment(slot, worker);
    if (hooks && hooks->on_start) hooks->on_start(hooks->user, slot, worker, info);
}

static int schedule(next_fn next, void *next_user, int ranks_per_trial,
                    const ls_sweep_hooks *hooks, int *stopped) {
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (ranks_per_trial > 1) { /* the workers' split needs rank 0's part; it gets no group */
        MPI_Comm none = group_split(0, size, ranks_per_trial);
        if (none != MPI_COMM_NULL) MPI_Comm_free(&none);
    }
    int leaders = ls_sweep_groups(size, ranks_per_trial, NULL);
    int *running = ls_calloc((size_t)size, sizeof(int));               /* 1: the worker has a trial */
    int *waiting = ls_calloc((size_t)size, sizeof(int));               /* 1: asked, told to wait */
    ls_sweep_item *current = ls_calloc((size_t)size, sizeof *current); /* each worker's trial */
    request_msg *workers = ls_calloc((size_t)size, sizeof *workers); /* each worker's GPU and host */
    double *heard = ls_calloc((size_t)size, sizeof *heard);         /* when each worker last spoke */
    for (int r = 0; r < size; r++) workers[r].device = -1;
    int released = 0, stopping = 0, idle_rounds = 0, n_running = 0, n_waiting = 0;
    double timeout = hooks ? hooks->hang_timeout_s : 0;
    while (released < leaders) {
        int stop_now = !stopping && hooks && hooks->should_stop && hooks->should_stop(hooks->user);
        if (timeout > 0) { /* a worker with a trial that went silent: hung; the others checkpoint */
            double now = MPI_Wtime();
            for (int r = 1; r < size; r++) {
                if (!running[r] || now - heard[r] <= timeout) continue;
                if (hooks->on_hung) hooks->on_hung(hooks->user, &current[r], r, workers[r].host, now - heard[r]);
                running[r] = 0, n_running--;
                released++; /* never waited for again */
                stop_now = !stopping;
            }
        }
        if (stop_now) {
            stopping = 1;
            for (int r = 1; r < size; r++)
                if (running[r]) MPI_Send(NULL, 0, MPI_BYTE, r, TAG_STOP, MPI_COMM_WORLD);
        }
        /* Waiting groups: released when stopping, or when no running trial can give them work. */
        if (n_waiting > 0 && (stopping || n_running == 0))
            for (int r = 1; r < size; r++)
                if (waiting[r]) {
                    int answer = -1;
                    if (!stopping) assign(next, next_user, hooks, r, &current[r], running, &workers[r], &answer);
                    if (answer == 0 && n_running > 0) continue; /* another waiting group just got work */
                    waiting[r] = 0, n_waiting--;
                    if (answer == 1) {
                        n_running++;
                    } else {
                        MPI_Send(NULL, 0, MPI_BYTE, r, TAG_RELEASE, MPI_COMM_WORLD);
                        released++;
                    }
                }
        if (released >= leaders) break;
        int flag;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (!flag) {
            idle_wait(idle_rounds++);
            continue;
        }
        idle_rounds = 0;
        int src = st.MPI_SOURCE;
        heard[src] = MPI_Wtime();
        if (st.MPI_TAG == TAG_REQUEST) {
            MPI_Recv(&workers[src], sizeof workers[src], MPI_BYTE, src, TAG_REQUEST, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            workers[src].host[sizeof workers[src].host - 1] = '\0';
            int answer = -1;
            if (!stopping) assign(next, next_user, hooks, src, &current[src], running, &workers[src], &answer);
            if (answer == 1) {
                n_running++;
            } else if (answer == 0) {
                waiting[src] = 1, n_waiting++;
            } else {
                MPI_Send(NULL, 0, MPI_BYTE, src, TAG_RELEASE, MPI_COMM_WORLD);
                released++;
            }
        } else if (st.MPI_TAG == TAG_HEARTBEAT) {
            heartbeat_msg m;
            MPI_Recv(&m, sizeof m, MPI_BYTE, src, TAG_HEARTBEAT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            if (hooks && hooks->on_heartbeat && running[src])
                hooks->on_heartbeat(hooks->user, &current[src], src, &m.hb);
        } else if (st.MPI_TAG == TAG_RESULT) {
            result_msg m;
            MPI_Recv(&m, sizeof m, MPI_BYTE, src, TAG_RESULT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            m.summary.message[sizeof m.summary.message - 1] = '\0';
            if (running[src]) {
                running[src] = 0, n_running--;
                if (hooks && hooks->on_result) hooks->on_result(hooks->user, &current[src], src, &m.summary);
            }
            /* a result may have made work (a promotion): the waiting groups ask again, in rank order */
            for (int r = 1; r < size && n_waiting > 0 && !stopping; r++) {
                if (!waiting[r]) continue;
                int answer;
                assign(next, next_user, hooks, r, &current[r], running, &workers[r], &answer);
                if (answer == 1) {
                    waiting[r] = 0, n_waiting--, n_running++;
                } else if (answer < 0) {
                    waiting[r] = 0, n_waiting--;
                    MPI_Send(NULL, 0, MPI_BYTE, r, TAG_RELEASE, MPI_COMM_WORLD);
                    released++;
                }
            }
        } else { /* nothing else is sent to rank 0: drop it rather than spin on it */
            MPI_Recv(NULL, 0, MPI_BYTE, src, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
    }
    free(running);
    free(waiting);
    free(current);
    free(workers);
    free(heard);
    if (stopped) *stopped = stopping;
    return LS_OK;
}

void ls_sweep_items_sort(ls_sweep_item *items, int n) { qsort(items, (size_t)n, sizeof *items, by_cost_desc); }

int ls_sweep_schedule(ls_sweep_item *items, int n, int ranks_per_trial, const ls_sweep_hooks *hooks, int *stopped) {
    ls_sweep_items_sort(items, n);
    item_list l = {items, n, 0};
    return schedule(list_next, &l, ranks_per_trial, hooks, stopped);
}

int ls_sweep_schedule_next(next_fn next, int ranks_per_trial,
                           const ls_sweep_hooks *hooks, int *stopped) {
    return schedule(next, hooks ? hooks->user : NULL, ranks_per_trial, hooks, stopped);
}

/* ---- workers ------------------------------------------------------------------------------ */

typedef struct {
    int index;
    int stop;
} worker_ctx;

static void worker_heartbeat(void *ctx, const ls_trial_heartbeat *hb) {
    heartbeat_msg m = {((worker_ctx *)ctx)->index, *hb};
    MPI_Send(&m, sizeof m, MPI_BYTE, 0, TAG_HEARTBEAT, MPI_COMM_WORLD);
}

static int worker_should_stop(void *ctx) {
    worker_ctx *w = ctx;
    int flag;
    MPI_Iprobe(0, TAG_STOP, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
    if (flag) {
        MPI_Recv(NULL, 0, MPI_BYTE, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        w->stop = 1;
    }
    return w->stop;
}

/* A worker's share of the CPUs it may use (its affinity, not the machine's core count): the
 * workers with the same CPUs run beside it. OMP_NUM_THREADS, when set, decides. */
static void set_threads(const ls_sweep_place *place) { ls_cpu_threads_set(ls_thread_count(place->cpu_sharers)); }

/* A group member other than the leader: its heartbeats would repeat the leader's, and only the
 * leader hears rank 0 (the trainer makes the group stop together, train.c). */
static void member_heartbeat(void *ctx, const ls_trial_heartbeat *hb) { (void)ctx, (void)hb; }
static int member_should_stop(void *ctx) { return 0; }

/* A leader's (or lone worker's) request to rank 0: the assignment (header + payload, malloc'ed,
 * *len bytes), or NULL when released. */
static char *request_work(const ls_sweep_place *place, int *len) {
    request_msg req = {place->device, ls_cpu_threads(), ""};
    gethostname(req.host, sizeof req.host - 1);
    MPI_Send(&req, sizeof req, MPI_BYTE, 0, TAG_REQUEST, MPI_COMM_WORLD);
    MPI_Status st;
    do { /* a stop that arrived after the last trial ended is stale: skip it */
        MPI_Probe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
        if (st.MPI_TAG == TAG_STOP) MPI_Recv(NULL, 0, MPI_BYTE, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } while (st.MPI_TAG == TAG_STOP);
    if (st.MPI_TAG == TAG_RELEASE) {
        MPI_Recv(NULL, 0, MPI_BYTE, 0, TAG_RELEASE, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        return NULL;
    }
    MPI_Get_count(&st, MPI_BYTE, len);
    char *buf = ls_malloc((size_t)*len + 1);
    MPI_Recv(buf, *len, MPI_BYTE, 0, TAG_ASSIGN, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    buf[*len] = '\0';
    return buf;
}

/* Run an assignment (buf from request_work) and, on a leader, report its result to rank 0. */
static void run_assignment(ls_sweep_run_fn run, void *user, const ls_train_group *group, char *buf) {
    assign_header h;
    memcpy(&h, buf, sizeof h);
    ls_sweep_item item = {h.id, h.index, h.cost, buf + sizeof h, h.pause_step};
    worker_ctx ctx = {h.index, 0};
    result_msg m = {h.index, {0}};
    int leader = !group || group->rank == 0;
    int rc = leader ? run(user, &item, group, worker_heartbeat, worker_should_stop, &ctx, &m.summary)
                    : run(user, &item, group, member_heartbeat, member_should_stop, &ctx, &m.summary);
    if (rc != LS_OK && m.summary.status != LS_TRIAL_FAILED) {
        m.summary.status = LS_TRIAL_FAILED;
        snprintf(m.summary.message, sizeof m.summary.message, "%s", ls_last_error());
    }
    if (leader) MPI_Send(&m, sizeof m, MPI_BYTE, 0, TAG_RESULT, MPI_COMM_WORLD);
}

/* ---- data-parallel groups ----------------------------------------------------------------- */

typedef struct {
    MPI_Comm comm;
    double *scratch; /* the floats being summed, widened */
    size_t cap;
} mpi_group;

static int group_sum_doubles(void *ctx, double *x, int n) {
    mpi_group *g = ctx;
    if (MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, g->comm) != MPI_SUCCESS)
        return ls_error("MPI_Allreduce over the trial's group failed");
    return LS_OK;
}

static int group_broadcast(void *ctx, void *buf, size_t bytes) {
    mpi_group *g = ctx;
    if (bytes > (size_t)INT32_MAX || MPI_Bcast(buf, (int)bytes, MPI_BYTE, 0, g->comm) != MPI_SUCCESS)
        return ls_error("MPI_Bcast over the trial's group failed");
    return LS_OK;
}

/* Floats are summed in double and rounded once: k float addends in double are far more often
 * exact than in float, so the result hardly depends on the order MPI adds them in. Reruns repeat
 * bit for bit (MPI picks its algorithm from the sizes alone), and every rank gets the same bits:
 * with 2 ranks because a + b == b + a; beyond, Open MPI's algorithms combine the same partial
 * sums on every rank (the MPI standard only advises this; mpi_data_parallel checks it).
 * The NCCL version for device memory is reduce_nccl.c. */
static int group_sum_floats(void *ctx, float *x, size_t n) {
    mpi_group *g = ctx;
    if (n > g->cap) {
        g->scratch = ls_realloc(g->scratch, sizeof(double) * n);
        g->cap = n;
    }
    for (size_t i = 0; i < n; i++) g->scratch[i] = x[i];
    const size_t chunk = (size_t)1 << 28; /* MPI counts are ints */
    for (size_t off = 0; off < n; off += chunk) {
        int count = (int)(n - off < chunk ? n - off : chunk);
        if (group_sum_doubles(g, g->scratch + off, count) != LS_OK) return LS_ERR;
    }
    for (size_t i = 0; i < n; i++) x[i] = (float)g->scratch[i];
    return LS_OK;
}

/* A group's own wait: polled with naps, so that members waiting for their leader's next
 * assignment (while it forecasts alone) do not spin on the cores it needs. */
static void group_wait(MPI_Request *req) {
    int done = 0, rounds = 0;
    for (;;) {
        MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (done) return;
        idle_wait(rounds++);
    }
}

/* The leader's word to its group: the assignment's length, 0 for release. */
static char *group_next(MPI_Comm comm, int leader, const ls_sweep_place *place, int *len) {
    char *buf = leader ? request_work(place, len) : NULL;
    int n = buf ? *len : 0;
    MPI_Request req;
    MPI_Ibcast(&n, 1, MPI_INT, 0, comm, &req);
    group_wait(&req);
    if (n == 0) return NULL;
    if (!leader) buf = ls_malloc((size_t)n + 1);
    MPI_Ibcast(buf, n, MPI_BYTE, 0, comm, &req);
    group_wait(&req);
    buf[n] = '\0';
    *len = n;
    return buf;
}

ls_train_group *ls_sweep_group_world(void) {
    mpi_group *mg = ls_calloc(1, sizeof *mg);
    MPI_Comm_dup(MPI_COMM_WORLD, &mg->comm);
    ls_train_group *g = ls_calloc(1, sizeof *g);
    MPI_Comm_rank(mg->comm, &g->rank);
    MPI_Comm_size(mg->comm, &g->size);
    g->sum_floats = group_sum_floats;
    g->sum_doubles = group_sum_doubles;
    g->broadcast = group_broadcast;
    g->ctx = mg;
    return g;
}

void ls_sweep_group_free(ls_train_group *g) {
    if (!g) return;
    mpi_group *mg = g->ctx;
    MPI_Comm_free(&mg->comm);
    free(mg->scratch);
    free(mg);
    free(g);
}

static int work_in_group(ls_sweep_run_fn run, void *user, const ls_sweep_place *place, int k) {
    MPI_Comm comm = group_split(place->rank, place->size, k);
    if (comm == MPI_COMM_NULL) return LS_OK; /* left over: idle */
    int grank, len = 0;
    MPI_Comm_rank(comm, &grank);
    mpi_group mg = {comm, NULL, 0};
    ls_train_group g = {grank, k, group_sum_floats, group_sum_doubles, group_broadcast, &mg};
    char *buf;
    while ((buf = group_next(comm, grank == 0, place, &len))) {
        run_assignment(run, user, &g, buf);
        free(buf);
    }
    free(mg.scratch);
    MPI_Comm_free(&comm);
    return LS_OK;
}

int ls_sweep_work(ls_sweep_run_fn run, void *user, const ls_sweep_place *place, int ranks_per_trial) {
    set_threads(place);
    if (ranks_per_trial > 1) return work_in_group(run, user, place, ranks_per_trial);
    int len = 0;
    char *buf;
    while ((buf = request_work(place, &len))) {
        run_assignment(run, user, NULL, buf);
        free(buf);
    }
    return LS_OK;
}
