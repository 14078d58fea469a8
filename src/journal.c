/*
 * journal.c: the append-only, CRC-framed journal of sweep events and its replay. Format and
 * guarantees: include/lorasweep/journal.h, docs/results.md.
 *
 * Design decisions:
 *  - Records are encoded field by field in little-endian order (not memcpy of structs), so a
 *    journal moves between machines and compilers. Doubles travel as their IEEE bits.
 *  - One write() per record (frame and payload together) followed by fsync(): a crash leaves at
 *    most one partial record at the end, which replay recognises by its length or CRC.
 *  - Replay distinguishes a torn tail (nothing valid after the damage: discard it) from damage in
 *    the middle (a valid frame follows: refuse). The scan for a following frame tries every offset
 *    but only computes a CRC where the length field is plausible, so it stays linear in practice.
 *  - The lock is flock() on a separate file: it conflicts between two opens even in one process
 *    (the tests rely on it), dies with the process, and never touches the journal's bytes.
 *    The state is updated by the same function in replay and in append: what an open after a
 *    crash reconstructs is exactly what the running scheduler saw.
 */
#define _DEFAULT_SOURCE /* flock, gethostname */
#include "lorasweep/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "lorasweep/asha.h"
#include "lorasweep/common.h"
#include "lorasweep/fault.h"

#define PAYLOAD_VERSION 1
#define FRAME_HEADER 8

struct ls_journal {
    int fd, lock_fd;
    int broken; /* an append failed: no more appends */
    char path[4096];
    ls_journal_state state;
};

/* ---------------------------------------------------------------- small helpers */

const char *ls_result_status_name(int status) {
    switch (status) {
    case LS_RESULT_PENDING: return "pending";
    case LS_RESULT_RUNNING: return "running";
    case LS_RESULT_DONE: return "done";
    case LS_RESULT_FAILED: return "failed";
    case LS_RESULT_SKIPPED: return "skipped";
    case LS_RESULT_STOPPED: return "stopped";
    default: return "unknown";
    }
}

void ls_result_metrics_init(ls_result_metrics *m) {
    m->steps = 0;
    m->final_train_loss = m->final_val_loss = NAN;
    for (int i = 0; i < LS_METRIC_COUNT; i++) m->mse[i] = m->mae[i] = NAN;
    m->flops_train = m->flops_validation = m->flops_forecast = m->flops_total = NAN;
    m->wall_seconds = m->tokens_per_s = NAN;
}

int ls_result_metrics_take(ls_result_metrics *row, const ls_result_metrics *journal) {
    double *dst[] = {&row->final_train_loss, &row->final_val_loss, &row->mse[0], &row->mse[1], &row->mse[2],
                     &row->mae[0], &row->mae[1], &row->mae[2], &row->flops_train, &row->flops_validation,
                     &row->flops_forecast, &row->flops_total, &row->wall_seconds, &row->tokens_per_s};
    const double src[] = {journal->final_train_loss, journal->final_val_loss, journal->mse[0], journal->mse[1],
                          journal->mse[2], journal->mae[0], journal->mae[1], journal->mae[2], journal->flops_train,
                          journal->flops_validation, journal->flops_forecast, journal->flops_total,
                          journal->wall_seconds, journal->tokens_per_s};
    int changed = 0;
    for (size_t i = 0; i < sizeof src / sizeof *src; i++)
        if (!isnan(src[i]) && memcmp(dst[i], &src[i], sizeof src[i]) != 0) *dst[i] = src[i], changed++;
    if (journal->steps > 0 && row->steps != journal->steps) row->steps = journal->steps, changed++;
    return changed;
}

void ls_journal_paths(const char *results_path, char *journal, size_t journal_cap, char *lock, size_t lock_cap) {
    if (journal) snprintf(journal, journal_cap, "%s.journal", results_path);
    if (lock) snprintf(lock, lock_cap, "%s.lock", results_path);
}

static uint32_t crc_of(const unsigned char *p, size_t n) {
    return (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, (uInt)n);
}

typedef struct {
    unsigned char *p;
    size_t n, cap;
    int overflow;
} wbuf;

static void put_bytes(wbuf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->overflow = 1;
        return;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put_u8(wbuf *b, unsigned v) {
    unsigned char c = (unsigned char)v;
    put_bytes(b, &c, 1);
}
static void put_u32(wbuf *b, uint32_t v) {
    unsigned char c[4];
    for (int i = 0; i < 4; i++) c[i] = (unsigned char)(v >> (8 * i));
    put_bytes(b, c, 4);
}
static void put_u64(wbuf *b, uint64_t v) {
    unsigned char c[8];
    for (int i = 0; i < 8; i++) c[i] = (unsigned char)(v >> (8 * i));
    put_bytes(b, c, 8);
}
static void put_i32(wbuf *b, int v) { put_u32(b, (uint32_t)v); }
static void put_f64(wbuf *b, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    put_u64(b, u);
}
static void put_text(wbuf *b, const char *s) {
    size_t n = s ? strnlen(s, LS_JOURNAL_TEXT_MAX - 1) : 0;
    put_u32(b, (uint32_t)n);
    put_bytes(b, s, n);
}

typedef struct {
    const unsigned char *p;
    size_t n, at;
    int bad;
} rbuf;

static const unsigned char *get_bytes(rbuf *b, size_t n) {
    if (b->bad || n > b->n - b->at) {
        b->bad = 1;
        return NULL;
    }
    const unsigned char *p = b->p + b->at;
    b->at += n;
    return p;
}
static uint32_t rd_u32(const unsigned char *c) {
    return (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
}
static unsigned get_u8(rbuf *b) {
    const unsigned char *c = get_bytes(b, 1);
    return c ? c[0] : 0;
}
static uint32_t get_u32(rbuf *b) {
    const unsigned char *c = get_bytes(b, 4);
    return c ? rd_u32(c) : 0;
}
static uint64_t get_u64(rbuf *b) {
    const unsigned char *c = get_bytes(b, 8);
    return c ? (uint64_t)rd_u32(c) | (uint64_t)rd_u32(c + 4) << 32 : 0;
}
static int get_i32(rbuf *b) { return (int)get_u32(b); }
static double get_f64(rbuf *b) {
    uint64_t u = get_u64(b);
    double v;
    memcpy(&v, &u, 8);
    return v;
}
static void get_text(rbuf *b, char *out) {
    uint32_t n = get_u32(b);
    if (n >= LS_JOURNAL_TEXT_MAX) {
        b->bad = 1;
        n = 0;
    }
    const unsigned char *c = get_bytes(b, n);
    if (c) memcpy(out, c, n);
    out[c ? n : 0] = '\0';
}

static void put_metrics(wbuf *b, const ls_result_metrics *m) {
    put_i32(b, m->steps);
    put_f64(b, m->final_train_loss);
    put_f64(b, m->final_val_loss);
    for (int i = 0; i < LS_METRIC_COUNT; i++) put_f64(b, m->mse[i]);
    for (int i = 0; i < LS_METRIC_COUNT; i++) put_f64(b, m->mae[i]);
    put_f64(b, m->flops_train);
    put_f64(b, m->flops_validation);
    put_f64(b, m->flops_forecast);
    put_f64(b, m->flops_total);
    put_f64(b, m->wall_seconds);
    put_f64(b, m->tokens_per_s);
}
static void get_metrics(rbuf *b, ls_result_metrics *m) {
    m->steps = get_i32(b);
    m->final_train_loss = get_f64(b);
    m->final_val_loss = get_f64(b);
    for (int i = 0; i < LS_METRIC_COUNT; i++) m->mse[i] = get_f64(b);
    for (int i = 0; i < LS_METRIC_COUNT; i++) m->mae[i] = get_f64(b);
    m->flops_train = get_f64(b);
    m->flops_validation = get_f64(b);
    m->flops_forecast = get_f64(b);
    m->flops_total = get_f64(b);
    m->wall_seconds = get_f64(b);
    m->tokens_per_s = get_f64(b);
}

static void put_cost(wbuf *b, const ls_segment_cost *c) {
    put_i32(b, c->steps);
    put_i32(b, c->batch);
    put_i32(b, c->ctx);
    const double *v[] = {&c->train_s, &c->gen_tokens, &c->gen_units, &c->gen_s, &c->wall_s};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) put_f64(b, *v[i]);
}
static void get_cost(rbuf *b, ls_segment_cost *c) {
    c->steps = get_i32(b);
    c->batch = get_i32(b);
    c->ctx = get_i32(b);
    double *v[] = {&c->train_s, &c->gen_tokens, &c->gen_units, &c->gen_s, &c->wall_s};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) *v[i] = get_f64(b);
}

/* ---------------------------------------------------------------- encoding */

size_t ls_journal_encode(const ls_journal_record *rec, unsigned char *buf, size_t cap) {
    if (cap < FRAME_HEADER) return 0;
    wbuf b = {buf + FRAME_HEADER, 0, cap - FRAME_HEADER < LS_JOURNAL_RECORD_MAX ? cap - FRAME_HEADER
                                                                                 : LS_JOURNAL_RECORD_MAX, 0};
    put_u8(&b, (unsigned)rec->type);
    put_u8(&b, PAYLOAD_VERSION);
    put_f64(&b, rec->time);
    put_u64(&b, rec->trial_id);
    switch (rec->type) {
    case LS_JREC_SWEEP_START:
        put_u64(&b, rec->grid_hash);
        put_text(&b, rec->text);
        break;
    case LS_JREC_TRIAL_START:
        put_i32(&b, rec->attempt);
        put_i32(&b, rec->rank);
        put_i32(&b, rec->device);
        put_text(&b, rec->text);
        break;
    case LS_JREC_TRIAL_PROGRESS:
        put_i32(&b, rec->step);
        put_f64(&b, rec->loss);
        put_f64(&b, rec->val_loss);
        break;
    case LS_JREC_TRIAL_CHECKPOINT: put_i32(&b, rec->step); break;
    case LS_JREC_TRIAL_DONE: put_metrics(&b, &rec->metrics); break;
    case LS_JREC_TRIAL_FAILED:
    case LS_JREC_TRIAL_SKIPPED: put_text(&b, rec->text); break;
    case LS_JREC_DECISION:
        put_i32(&b, rec->decision.verdict);
        put_i32(&b, rec->decision.rung);
        put_i32(&b, rec->decision.step);
        put_f64(&b, rec->decision.value);
        put_f64(&b, rec->decision.cutoff);
        put_i32(&b, rec->decision.n_at_rung);
        put_f64(&b, rec->decision.flops);
        break;
    case LS_JREC_COST:
        put_text(&b, rec->text);
        put_cost(&b, &rec->cost);
        break;
    default: return 0;
    }
    if (b.overflow) return 0;
    wbuf h = {buf, 0, FRAME_HEADER, 0};
    put_u32(&h, (uint32_t)b.n);
    put_u32(&h, crc_of(buf + FRAME_HEADER, b.n));
    return FRAME_HEADER + b.n;
}

/* Decode one payload; LS_ERR if it does not parse exactly. */
static int decode_payload(const unsigned char *p, size_t n, ls_journal_record *rec) {
    memset(rec, 0, sizeof *rec);
    rbuf b = {p, n, 0, 0};
    rec->type = (ls_jrec_type)get_u8(&b);
    unsigned version = get_u8(&b);
    rec->time = get_f64(&b);
    rec->trial_id = get_u64(&b);
    if (version != PAYLOAD_VERSION) return LS_ERR;
    switch (rec->type) {
    case LS_JREC_SWEEP_START:
        rec->grid_hash = get_u64(&b);
        get_text(&b, rec->text);
        break;
    case LS_JREC_TRIAL_START:
        rec->attempt = get_i32(&b);
        rec->rank = get_i32(&b);
        rec->device = get_i32(&b);
        get_text(&b, rec->text);
        break;
    case LS_JREC_TRIAL_PROGRESS:
        rec->step = get_i32(&b);
        rec->loss = get_f64(&b);
        rec->val_loss = get_f64(&b);
        break;
    case LS_JREC_TRIAL_CHECKPOINT: rec->step = get_i32(&b); break;
    case LS_JREC_TRIAL_DONE: get_metrics(&b, &rec->metrics); break;
    case LS_JREC_TRIAL_FAILED:
    case LS_JREC_TRIAL_SKIPPED: get_text(&b, rec->text); break;
    case LS_JREC_DECISION:
        rec->decision.trial_id = rec->trial_id;
        rec->decision.verdict = get_i32(&b);
        rec->decision.rung = get_i32(&b);
        rec->decision.step = get_i32(&b);
        rec->decision.value = get_f64(&b);
        rec->decision.cutoff = get_f64(&b);
        rec->decision.n_at_rung = get_i32(&b);
        rec->decision.flops = get_f64(&b);
        break;
    case LS_JREC_COST:
        get_text(&b, rec->text);
        get_cost(&b, &rec->cost);
        break;
    default: return LS_ERR;
    }
    return b.bad || b.at != n ? LS_ERR : LS_OK;
}

/* Is there a complete frame at data[at..n)? 0 no (torn or damaged), 1 a valid record (its total
 * size in *size), FRAME_UNREADABLE an intact frame (its CRC matches) whose payload this version
 * cannot decode: a newer version's record, never to be mistaken for a torn tail. */
enum { FRAME_UNREADABLE = 2 };
static int frame_at(const unsigned char *data, size_t n, size_t at, ls_journal_record *rec, size_t *size) {
    if (n - at < FRAME_HEADER) return 0;
    uint32_t len = rd_u32(data + at), crc = rd_u32(data + at + 4);
    if (len < 18 || len > LS_JOURNAL_RECORD_MAX || len > n - at - FRAME_HEADER) return 0;
    if (crc_of(data + at + FRAME_HEADER, len) != crc) return 0;
    *size = FRAME_HEADER + len;
    if (decode_payload(data + at + FRAME_HEADER, len, rec) != LS_OK) return FRAME_UNREADABLE;
    return 1;
}

/* ---------------------------------------------------------------- state */

static size_t slot_of(uint64_t id, size_t n_slots) { return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 17) & (n_slots - 1); }

/* The slot holding id, or the empty slot where it would go. */
static size_t find_slot(const ls_journal_state *st, uint64_t id) {
    size_t k = slot_of(id, st->n_slots);
    while (st->slots[k] && st->trials[st->slots[k] - 1].id != id) k = (k + 1) & (st->n_slots - 1);
    return k;
}

static void rehash(ls_journal_state *st, size_t n_slots) {
    free(st->slots);
    st->n_slots = n_slots;
    st->slots = ls_calloc(n_slots, sizeof *st->slots);
    for (int i = 0; i < st->n_trials; i++) st->slots[find_slot(st, st->trials[i].id)] = i + 1;
}

static ls_journal_trial *trial_entry(ls_journal_state *st, uint64_t id) {
    if (st->n_slots) {
        size_t k = find_slot(st, id);
        if (st->slots[k]) return &st->trials[st->slots[k] - 1];
    }
    if ((size_t)(st->n_trials + 1) * 2 > st->n_slots) rehash(st, st->n_slots ? 2 * st->n_slots : 128);
    if (st->n_trials == st->cap_trials) {
        st->cap_trials = st->cap_trials ? 2 * st->cap_trials : 64;
        st->trials = ls_realloc(st->trials, (size_t)st->cap_trials * sizeof *st->trials);
    }
    ls_journal_trial *t = &st->trials[st->n_trials++];
    memset(t, 0, sizeof *t);
    t->id = id;
    st->slots[find_slot(st, id)] = st->n_trials;
    t->status = LS_RESULT_PENDING;
    t->last_loss = t->last_val_loss = NAN;
    t->rank = t->device = -1;
    ls_result_metrics_init(&t->metrics);
    return t;
}

/* The state machine: the same for replay and for appends. */
static void apply(ls_journal_state *st, const ls_journal_record *r) {
    if (st->n_records++ == 0) st->first_time = r->time;
    if (r->type == LS_JREC_SWEEP_START) {
        st->n_sweep_starts++;
        st->grid_hash = r->grid_hash;
        snprintf(st->job_id, sizeof st->job_id, "%s", r->text);
        return;
    }
    if (r->type == LS_JREC_COST) { /* the time model's samples: no change to the trial's state */
        if (st->n_costs == st->cap_costs)
            st->costs = ls_realloc(st->costs, sizeof *st->costs * (size_t)(st->cap_costs = 2 * st->cap_costs + 64));
        ls_journal_cost *c = &st->costs[st->n_costs++];
        c->trial_id = r->trial_id, c->cost = r->cost;
        snprintf(c->key, sizeof c->key, "%s", r->text);
        return;
    }
    ls_journal_trial *t = trial_entry(st, r->trial_id);
    if (r->type == LS_JREC_DECISION) { /* kept in order: a resumed sweep replays them */
        if (st->n_decisions == st->cap_decisions)
            st->decisions = ls_realloc(st->decisions, sizeof *st->decisions * (size_t)(st->cap_decisions = 2 * st->cap_decisions + 64));
        const ls_journal_decision *d = &r->decision;
        st->decisions[st->n_decisions] = *d;
        st->decisions[st->n_decisions++].trial_id = r->trial_id;
        if (d->verdict != LS_ES_STOPPED) return;
        if (t->status == LS_RESULT_DONE) {
            st->anomalies++;
            return;
        }
        if (t->open_attempt) t->crashes--, t->open_attempt = 0;
        t->status = LS_RESULT_STOPPED;
        ls_result_metrics_init(&t->metrics);
        t->metrics.steps = d->step;
        t->metrics.final_val_loss = d->value;
        t->metrics.flops_total = d->flops;
        snprintf(t->message, sizeof t->message, LS_JOURNAL_STOPPED_TEXT, d->rung, d->step, d->value);
        return;
    }
    if (t->status == LS_RESULT_DONE) { /* done is final: anything later is a scheduler bug */
        st->anomalies++;
        return;
    }
    switch (r->type) {
    case LS_JREC_TRIAL_START:
        t->status = LS_RESULT_RUNNING;
        t->attempts++;
        t->crashes++; /* counted now (an open attempt before it stays counted); its end takes it back */
        t->open_attempt = 1;
        t->rank = r->rank;
        t->device = r->device;
        t->message[0] = '\0';
        break;
    case LS_JREC_TRIAL_PROGRESS:
        t->progress_step = r->step;
        t->last_loss = r->loss;
        if (!isnan(r->val_loss)) t->last_val_loss = r->val_loss;
        break;
    case LS_JREC_TRIAL_CHECKPOINT:
        t->checkpoint_step = r->step;
        if (t->open_attempt) t->crashes--, t->open_attempt = 0; /* a clean stop */
        break;
    case LS_JREC_TRIAL_DONE:
        if (t->open_attempt) t->crashes--, t->open_attempt = 0;
        t->status = LS_RESULT_DONE;
        t->metrics = r->metrics;
        t->message[0] = '\0';
        break;
    case LS_JREC_TRIAL_FAILED:
    case LS_JREC_TRIAL_SKIPPED:
        if (t->open_attempt) t->crashes--, t->open_attempt = 0;
        t->status = r->type == LS_JREC_TRIAL_FAILED ? LS_RESULT_FAILED : LS_RESULT_SKIPPED;
        snprintf(t->message, sizeof t->message, "%s", r->text);
        break;
    default: break;
    }
}

const ls_journal_trial *ls_journal_find(const ls_journal_state *st, uint64_t id) {
    if (!st->n_slots) return NULL;
    size_t k = find_slot(st, id);
    return st->slots[k] ? &st->trials[st->slots[k] - 1] : NULL;
}

ls_result_status ls_journal_status(const ls_journal_state *st, uint64_t id) {
    const ls_journal_trial *t = ls_journal_find(st, id);
    return t ? t->status : LS_RESULT_PENDING;
}

int ls_journal_count(const ls_journal_state *st, ls_result_status status) {
    int n = 0;
    for (int i = 0; i < st->n_trials; i++) n += st->trials[i].status == status;
    return n;
}

void ls_journal_state_free(ls_journal_state *st) {
    free(st->costs);
    free(st->decisions);
    free(st->trials);
    free(st->slots);
    memset(st, 0, sizeof *st);
}

/* ---------------------------------------------------------------- replay */

/* Replay the bytes of a journal file into st. */
static int replay_bytes(const char *path, const unsigned char *data, size_t n, ls_journal_state *st) {
    memset(st, 0, sizeof *st);
    if (n < LS_JOURNAL_MAGIC_LEN) { /* empty, or a crash while writing the magic */
        if (memcmp(data, LS_JOURNAL_MAGIC, n) != 0) return ls_error("%s: not a lorasweep journal", path);
        st->discarded_bytes = n;
        return LS_OK;
    }
    if (memcmp(data, LS_JOURNAL_MAGIC, LS_JOURNAL_MAGIC_LEN) != 0)
        return ls_error("%s: not a lorasweep journal (no %s header)", path, LS_JOURNAL_MAGIC);
    size_t at = LS_JOURNAL_MAGIC_LEN, size = 0;
    ls_journal_record *rec = ls_malloc(sizeof *rec);
    int frame;
    while ((frame = frame_at(data, n, at, rec, &size)) == 1) {
        apply(st, rec);
        at += size;
    }
    st->valid_bytes = at;
    st->discarded_bytes = n - at;
    int rc = LS_OK;
    if (frame == FRAME_UNREADABLE) { /* acknowledged by someone: refuse rather than truncate it away */
        free(rec);
        ls_journal_state_free(st);
        return ls_error("%s: the record at byte %zu is intact but of a kind this version cannot read (type %u, "
                        "payload version %u; written by a newer lorasweep?): refusing to discard it",
                        path, at, data[at + FRAME_HEADER], data[at + FRAME_HEADER + 1]);
    }
    for (size_t k = at + 1; k < n && rc == LS_OK; k++)
        if (frame_at(data, n, k, rec, &size))
            rc = ls_error("%s: damaged record at byte %zu followed by a valid record at byte %zu: the journal was "
                          "damaged in the middle, not torn by a crash; refusing to discard acknowledged records "
                          "(inspect or restore it)",
                          path, at, k);
    free(rec);
    if (rc != LS_OK) ls_journal_state_free(st);
    return rc;
}

int ls_journal_replay(const char *journal_path, ls_journal_state *st) {
    memset(st, 0, sizeof *st);
    struct stat sb;
    if (stat(journal_path, &sb) != 0 && errno == ENOENT) return LS_OK;
    size_t n = 0;
    char *data = ls_read_file(journal_path, &n);
    if (!data) return LS_ERR;
    int rc = replay_bytes(journal_path, (const unsigned char *)data, n, st);
    free(data);
    return rc;
}

/* ---------------------------------------------------------------- open, append, close */

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* fsync the directory holding path, so a newly created file's name is durable. */
static void sync_parent(const char *path) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) dir[1] = '\0';
    else if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static int take_lock(const char *lock_path, const char *job_id, int *out_fd) {
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ls_error("%s: cannot create the lock file: %s", lock_path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char holder[512] = "";
        ssize_t r = pread(fd, holder, sizeof holder - 1, 0);
        holder[r > 0 ? r : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        close(fd);
        char pbuf[512];
        if (e == EWOULDBLOCK)
            return ls_error("%s: another sweep is using these results (%s); wait for it to end or use another "
                            "results file",
                            lock_path, holder[0] ? ls_printable(holder, pbuf, sizeof pbuf) : "holder unknown");
        return ls_error("%s: cannot lock: %s", lock_path, strerror(e));
    }
    char host[256] = "?", text[1024];
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = '\0';
    int n = snprintf(text, sizeof text, "job %s pid %ld host %s\n", job_id && job_id[0] ? job_id : "-",
                     (long)getpid(), host);
    if (n < 0 || (size_t)n >= sizeof text) n = (int)strlen(text);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != (ssize_t)n || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return ls_error("%s: cannot write the lock file: %s", lock_path, strerror(e));
    }
    *out_fd = fd;
    return LS_OK;
}

int ls_journal_open(const char *results_path, const char *job_id, ls_journal **out) {
    *out = NULL;
    char lock_path[4096];
    ls_journal *j = ls_calloc(1, sizeof *j);
    j->fd = j->lock_fd = -1;
    ls_journal_paths(results_path, j->path, sizeof j->path, lock_path, sizeof lock_path);
    if (take_lock(lock_path, job_id, &j->lock_fd) != LS_OK) {
        free(j);
        return LS_ERR;
    }
    int created = access(j->path, F_OK) != 0;
    if (ls_journal_replay(j->path, &j->state) != LS_OK) goto fail;
    j->fd = open(j->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (j->fd < 0) {
        ls_error("%s: cannot open for appending: %s", j->path, strerror(errno));
        goto fail;
    }
    if (j->state.valid_bytes < LS_JOURNAL_MAGIC_LEN) { /* new (or torn while writing the magic) */
        if (ftruncate(j->fd, 0) != 0 || pwrite(j->fd, LS_JOURNAL_MAGIC, LS_JOURNAL_MAGIC_LEN, 0) != LS_JOURNAL_MAGIC_LEN ||
            fsync(j->fd) != 0) {
            ls_error("%s: cannot write the journal header: %s", j->path, strerror(errno));
            goto fail;
        }
        j->state.valid_bytes = LS_JOURNAL_MAGIC_LEN;
        if (created) sync_parent(j->path);
    } else if (j->state.discarded_bytes > 0) {
        if (ftruncate(j->fd, (off_t)j->state.valid_bytes) != 0 || fsync(j->fd) != 0) {
            ls_error("%s: cannot truncate the torn tail (%zu bytes): %s", j->path, j->state.discarded_bytes,
                     strerror(errno));
            goto fail;
        }
    }
    if (lseek(j->fd, (off_t)j->state.valid_bytes, SEEK_SET) < 0) {
        ls_error("%s: cannot seek: %s", j->path, strerror(errno));
        goto fail;
    }
    *out = j;
    return LS_OK;
fail:
    if (j->fd >= 0) close(j->fd);
    close(j->lock_fd);
    ls_journal_state_free(&j->state);
    free(j);
    return LS_ERR;
}

const ls_journal_state *ls_journal_current(const ls_journal *j) { return &j->state; }
size_t ls_journal_discarded(const ls_journal *j) { return j->state.discarded_bytes; }

int ls_journal_append(ls_journal *j, const ls_journal_record *rec) {
    if (j->broken) return ls_error("%s: an earlier append failed; the journal is closed for writing", j->path);
    unsigned char buf[FRAME_HEADER + LS_JOURNAL_RECORD_MAX];
    ls_journal_record r = *rec;
    if (r.time == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r.time = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    }
    size_t n = ls_journal_encode(&r, buf, sizeof buf);
    if (n == 0) return ls_error("%s: cannot encode a record of type %d", j->path, (int)rec->type);
    int failed = ls_fault("journal_append") != 0 || write_all(j->fd, buf, n) != 0 || fsync(j->fd) != 0;
    if (failed) {
        int e = errno;
        j->broken = 1;
        /* Take the partial record back if we can; replay would discard it anyway. */
        if (ftruncate(j->fd, (off_t)j->state.valid_bytes) == 0) (void)fsync(j->fd);
        return ls_error_io(e, "%s: cannot append a record", j->path);
    }
    j->state.valid_bytes += n;
    apply(&j->state, &r);
    return LS_OK;
}

static void set_text(ls_journal_record *r, const char *s) { snprintf(r->text, sizeof r->text, "%s", s ? s : ""); }

int ls_journal_sweep_start(ls_journal *j, uint64_t grid_hash, const char *job_id) {
    ls_journal_record r = {.type = LS_JREC_SWEEP_START, .grid_hash = grid_hash};
    set_text(&r, job_id);
    return ls_journal_append(j, &r);
}

int ls_journal_trial_start(ls_journal *j, uint64_t id, int attempt, int rank, const char *host, int device) {
    ls_journal_record r = {.type = LS_JREC_TRIAL_START, .trial_id = id, .attempt = attempt, .rank = rank,
                           .device = device};
    set_text(&r, host);
    return ls_journal_append(j, &r);
}

int ls_journal_trial_progress(ls_journal *j, uint64_t id, int step, double loss, double val_loss) {
    ls_journal_record r = {.type = LS_JREC_TRIAL_PROGRESS, .trial_id = id, .step = step, .loss = loss,
                           .val_loss = val_loss};
    return ls_journal_append(j, &r);
}

int ls_journal_trial_checkpoint(ls_journal *j, uint64_t id, int step) {
    ls_journal_record r = {.type = LS_JREC_TRIAL_CHECKPOINT, .trial_id = id, .step = step};
    return ls_journal_append(j, &r);
}

int ls_journal_trial_done(ls_journal *j, uint64_t id, const ls_result_metrics *m) {
    ls_journal_record r = {.type = LS_JREC_TRIAL_DONE, .trial_id = id, .metrics = *m};
    return ls_journal_append(j, &r);
}

int ls_journal_trial_decision(ls_journal *j, const ls_journal_decision *d) {
    ls_journal_record r = {.type = LS_JREC_DECISION, .trial_id = d->trial_id, .decision = *d};
    return ls_journal_append(j, &r);
}

int ls_journal_trial_failed(ls_journal *j, uint64_t id, const char *message) {
    ls_journal_record r = {.type = LS_JREC_TRIAL_FAILED, .trial_id = id};
    set_text(&r, message);
    return ls_journal_append(j, &r);
}

int ls_journal_trial_skipped(ls_journal *j, uint64_t id, const char *reason) {
    ls_journal_record r = {.type = LS_JREC_TRIAL_SKIPPED, .trial_id = id};
    set_text(&r, reason);
    return ls_journal_append(j, &r);
}

int ls_journal_close(ls_journal *j) {
    if (!j) return LS_OK;
    int rc = LS_OK;
    if (j->fd >= 0 && close(j->fd) != 0) rc = ls_error("%s: cannot close: %s", j->path, strerror(errno));
    if (j->lock_fd >= 0) {
        (void)flock(j->lock_fd, LOCK_UN);
        close(j->lock_fd);
    }
    ls_journal_state_free(&j->state);
    free(j);
    return rc;
}

int ls_journal_trial_cost(ls_journal *j, uint64_t id, const char *key, const ls_segment_cost *c) {
    ls_journal_record r = {.type = LS_JREC_COST, .trial_id = id, .cost = *c};
    set_text(&r, key);
    return ls_journal_append(j, &r);
}
