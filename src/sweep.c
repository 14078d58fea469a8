/*
 * sweep.c: the scheduler/worker protocol over MPI (see sweep.h). All of the program's MPI calls
 * are here, so the rest of it builds and tests without thinking about ranks.
 *
 * Messages (tags below) are small fixed structs plus, for an assignment, the trial's text.
 * Rank 0 never blocks in a receive: it polls with MPI_Iprobe so that it notices a stop request
 * while every worker is busy in a long trial. Workers poll for rank 0's stop message between
 * training steps through the trial's should_stop hook.
 */
#include "lorasweep/sweep.h"

#include <cblas.h>
#include <mpi.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lorasweep/common.h"

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
    double cost;
} assign_header;

typedef struct {
    int index;
    ls_trial_heartbeat hb;
} heartbeat_msg;

typedef struct {
    int index;
    ls_trial_summary summary;
} result_msg;

int ls_sweep_mpi_init(int *argc, char ***argv, ls_sweep_place *place) {
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
    MPI_Comm_free(&node);
    place->device = -1;
    if (!is_scheduler) {
        char entry[64];
        place->device = ls_sweep_pick_device(getenv("CUDA_VISIBLE_DEVICES"), place->local_worker, entry, sizeof entry);
        if (place->device >= 0) setenv("CUDA_VISIBLE_DEVICES", entry, 1);
    }
    return LS_OK;
}

int ls_sweep_pick_device(const char *visible, int local_worker, char *out, size_t cap) {
    if (!visible || !visible[0] || !strcmp(visible, "NoDevFiles") || local_worker < 0) return -1;
    int n = 1;
    for (const char *c = visible; *c; c++) n += *c == ',';
    int k = local_worker % n;
    const char *start = visible;
    for (int i = 0; i < k; i++) start = strchr(start, ',') + 1;
    size_t len = strcspn(start, ",");
    if (len == 0 || len >= cap) return -1;
    memcpy(out, start, len);
    out[len] = '\0';
    return k;
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
    assign_header h = {item->id, item->index, item->cost};
    memcpy(buf, &h, sizeof h);
    memcpy(buf + sizeof h, item->payload ? item->payload : "", len);
    MPI_Send(buf, (int)(sizeof h + len), MPI_BYTE, worker, TAG_ASSIGN, MPI_COMM_WORLD);
    free(buf);
}

int ls_sweep_schedule(ls_sweep_item *items, int n, const ls_sweep_hooks *hooks, int *stopped) {
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    qsort(items, (size_t)n, sizeof *items, by_cost_desc);
    int *running = ls_malloc(sizeof(int) * (size_t)size); /* item of each worker, -1 when idle */
    int *devices = ls_malloc(sizeof(int) * (size_t)size);  /* each worker's GPU, -1 for CPU */
    for (int r = 0; r < size; r++) running[r] = devices[r] = -1;
    int next = 0, released = 0, stopping = 0, idle_rounds = 0;
    while (released < size - 1) {
        if (!stopping && hooks && hooks->should_stop && hooks->should_stop(hooks->user)) {
            stopping = 1;
            for (int r = 1; r < size; r++)
                if (running[r] >= 0) MPI_Send(NULL, 0, MPI_BYTE, r, TAG_STOP, MPI_COMM_WORLD);
        }
        int flag;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (!flag) {
            idle_wait(idle_rounds++);
            continue;
        }
        idle_rounds = 0;
        int src = st.MPI_SOURCE;
        if (st.MPI_TAG == TAG_REQUEST) {
            int device = -1;
            MPI_Recv(&device, 1, MPI_INT, src, TAG_REQUEST, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            devices[src] = device;
            if (!stopping && next < n) {
                running[src] = next;
                send_assignment(&items[next], src);
                if (hooks && hooks->on_start) hooks->on_start(hooks->user, &items[next], src, devices[src]);
                next++;
            } else {
                MPI_Send(NULL, 0, MPI_BYTE, src, TAG_RELEASE, MPI_COMM_WORLD);
                released++;
            }
        } else if (st.MPI_TAG == TAG_HEARTBEAT) {
            heartbeat_msg m;
            MPI_Recv(&m, sizeof m, MPI_BYTE, src, TAG_HEARTBEAT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            if (hooks && hooks->on_heartbeat && running[src] >= 0)
                hooks->on_heartbeat(hooks->user, &items[running[src]], src, &m.hb);
        } else if (st.MPI_TAG == TAG_RESULT) {
            result_msg m;
            MPI_Recv(&m, sizeof m, MPI_BYTE, src, TAG_RESULT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            m.summary.message[sizeof m.summary.message - 1] = '\0';
            if (hooks && hooks->on_result && running[src] >= 0)
                hooks->on_result(hooks->user, &items[running[src]], src, &m.summary);
            running[src] = -1;
        } else { /* nothing else is sent to rank 0: drop it rather than spin on it */
            MPI_Recv(NULL, 0, MPI_BYTE, src, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
    }
    free(running);
    free(devices);
    if (stopped) *stopped = stopping;
    return LS_OK;
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

/* A worker's share of the node's cores: the others run beside it. */
static void set_threads(const ls_sweep_place *place) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int share = place->workers_on_node > 0 ? (int)(cores / place->workers_on_node) : (int)cores;
    if (share < 1) share = 1;
#ifdef _OPENMP
    omp_set_num_threads(share);
#endif
    if (openblas_get_parallel() != 2) openblas_set_num_threads(share);
}

int ls_sweep_work(ls_sweep_run_fn run, void *user, const ls_sweep_place *place) {
    set_threads(place);
    for (;;) {
        MPI_Send(&place->device, 1, MPI_INT, 0, TAG_REQUEST, MPI_COMM_WORLD);
        MPI_Status st;
        int len = 0;
        do { /* a stop that arrived after the last trial ended is stale: skip it */
            MPI_Probe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
            if (st.MPI_TAG == TAG_STOP) MPI_Recv(NULL, 0, MPI_BYTE, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } while (st.MPI_TAG == TAG_STOP);
        if (st.MPI_TAG == TAG_RELEASE) {
            MPI_Recv(NULL, 0, MPI_BYTE, 0, TAG_RELEASE, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            return LS_OK;
        }
        MPI_Get_count(&st, MPI_BYTE, &len);
        char *buf = ls_malloc((size_t)len + 1);
        MPI_Recv(buf, len, MPI_BYTE, 0, TAG_ASSIGN, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        buf[len] = '\0';
        assign_header h;
        memcpy(&h, buf, sizeof h);
        ls_sweep_item item = {h.id, h.index, h.cost, buf + sizeof h};
        worker_ctx ctx = {h.index, 0};
        result_msg m = {h.index, {0}};
        if (run(user, &item, place->rank, worker_heartbeat, worker_should_stop, &ctx, &m.summary) != LS_OK &&
            m.summary.status != LS_TRIAL_FAILED) {
            m.summary.status = LS_TRIAL_FAILED;
            snprintf(m.summary.message, sizeof m.summary.message, "%s", ls_last_error());
        }
        MPI_Send(&m, sizeof m, MPI_BYTE, 0, TAG_RESULT, MPI_COMM_WORLD);
        free(buf);
    }
}
