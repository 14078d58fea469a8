/*
 * test_train.c: the training loop on a toy model: it learns, it repeats bit for bit, a run
 * stopped at a checkpoint (or paused at the rungs of early stopping) and resumed ends exactly
 * where an uninterrupted one does, the schedules and the optimisers do what PyTorch's do.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <sys/stat.h>

#include "lorasweep/common.h"
#include "lorasweep/train.h"
#include "testing.h"
#include "toy_model.h"

enum { CTX = 8 };

/* The learnable stream of toy_model.h, in windows of CTX. */
static void pattern_windows(ls_window_set *w, int n_tokens, int offset) { toy_pattern_windows(w, CTX, n_tokens, offset); }

static ls_train_options options(int steps) {
    return (ls_train_options){
        .batch_size = 3, .max_steps = steps, .optimizer = LS_OPTIMIZER_ADAMW, .lr = 1e-2f, .beta1 = 0.9f,
        .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f, .grad_clip = 1.0f, .schedule = LS_SCHEDULE_COSINE,
        .warmup_steps = 2, .min_lr_ratio = 0.1f, .eval_every = 5, .seed = 11, .pad_id = 1,
    };
}

static ls_model model;
static int setup(void **state) {
    toy_model(&model, &toy_config);
    return 0;
}
static int teardown(void **state) {
    ls_model_free(&model);
    return 0;
}

static void fresh_lora(ls_lora *l) {
    ls_lora_init(l, &toy_config, 4, 8.0f, (1u << LS_PROJ_Q) | (1u << LS_PROJ_V), 1);
    ls_lora_reset(l, &toy_config, 5);
}

static void test_training_lowers_validation_loss(void **state) {
    const ls_backend *be = ls_backend_cpu();
    ls_window_set train, val;
    pattern_windows(&train, 200, 0);
    pattern_windows(&val, 60, 3);
    ls_lora lora;
    fresh_lora(&lora);
    ls_train_options o = options(100);
    o.lr = 3e-2f;
    double before = ls_train_evaluate(be, &model, &lora, &val, 3, 0, o.pad_id);
    ls_train_state st;
    ls_train_state_init(&st, &lora, &toy_config, o.max_steps);
    assert_int_equal(ls_train_run(be, &model, &lora, &train, &val, &o, &st, NULL, NULL), LS_OK);
    assert_int_equal(st.step, 100);
    assert_int_equal(st.n_evals, 21); /* step 0, then every 5 */
    assert_int_equal(st.eval_step[0], 0);
    assert_float_equal(st.val_loss[0], before, 1e-6);
    double after = st.val_loss[st.n_evals - 1];
    print_message("validation loss %.4f -> %.4f; train %.4f -> %.4f\n", before, after, st.train_loss[0],
                  st.train_loss[99]);
    assert_true(after < 0.7 * before);
    assert_true(st.train_loss[99] < st.train_loss[0]);
    ls_train_state_free(&st);
    ls_lora_free(&lora);
    ls_window_set_free(&train);
    ls_window_set_free(&val);
}

typedef struct {
    const char *dir;
    int stop_at;
    int step_seen;
} stop_ctx;

static void track(void *ctx, const ls_train_progress *p) { ((stop_ctx *)ctx)->step_seen = p->step; }
static int stop_now(void *ctx) {
    stop_ctx *s = ctx;
    return s->stop_at > 0 && s->step_seen >= s->stop_at;
}
static int save(void *ctx, const ls_train_state *st, const ls_lora *lora) {
    return ls_train_checkpoint_save(((stop_ctx *)ctx)->dir, st, lora, &toy_config);
}

/* 13 steps straight == 7 steps, stop, reload everything from the checkpoint, 6 more: bit for bit. */
static void test_resume_is_exact(void **state) {
    const ls_backend *be = ls_backend_cpu();
    ls_window_set train, val;
    pattern_windows(&train, 90, 0); /* 22 windows: batches cross an epoch boundary */
    pattern_windows(&val, 30, 3);
    ls_train_options o = options(13);
    o.checkpoint_every = 4;

    ls_lora straight;
    fresh_lora(&straight);
    ls_train_state st;
    ls_train_state_init(&st, &straight, &toy_config, o.max_steps);
    assert_int_equal(ls_train_run(be, &model, &straight, &train, &val, &o, &st, NULL, NULL), LS_OK);

    char dir[512];
    snprintf(dir, sizeof dir, "%s/ckpt", temp_dir());
    mkdir(dir, 0777);
    stop_ctx sc = {dir, 7, 0};
    ls_train_hooks hooks = {track, save, stop_now, &sc};
    ls_lora first;
    fresh_lora(&first);
    ls_train_state st1;
    ls_train_state_init(&st1, &first, &toy_config, o.max_steps);
    assert_int_equal(ls_train_run(be, &model, &first, &train, &val, &o, &st1, &hooks, NULL), LS_OK);
    assert_int_equal(st1.step, 7);

    ls_lora resumed;
    fresh_lora(&resumed);
    memset(resumed.arena, 0, sizeof(float) * resumed.arena_floats); /* everything must come from disk */
    ls_train_state st2;
    ls_train_state_init(&st2, &resumed, &toy_config, o.max_steps);
    assert_int_equal(ls_train_checkpoint_load(dir, &st2, &resumed, &toy_config), LS_OK);
    assert_int_equal(st2.step, 7);
    sc.stop_at = 0;
    assert_int_equal(ls_train_run(be, &model, &resumed, &train, &val, &o, &st2, &hooks, NULL), LS_OK);
    assert_int_equal(st2.step, 13);
    assert_memory_equal(resumed.arena, straight.arena, sizeof(float) * straight.arena_floats);
    assert_memory_equal(st2.m.arena, st.m.arena, sizeof(float) * st.m.arena_floats);
    assert_memory_equal(st2.train_loss, st.train_loss, sizeof(float) * 13);
    assert_int_equal(st2.n_evals, st.n_evals);
    assert_memory_equal(st2.val_loss, st.val_loss, sizeof(float) * (size_t)st.n_evals);

    /* A checkpoint of another layout is refused with a message. */
    ls_lora other;
    ls_lora_init(&other, &toy_config, 2, 2.0f, 1u << LS_PROJ_Q, 0);
    ls_train_state st3;
    ls_train_state_init(&st3, &other, &toy_config, o.max_steps);
    assert_int_equal(ls_train_checkpoint_load(dir, &st3, &other, &toy_config), LS_ERR);
    assert_non_null(strstr(ls_last_error(), "another trial"));

    ls_train_state_free(&st3);
    ls_lora_free(&other);
    ls_train_state_free(&st);
    ls_train_state_free(&st1);
    ls_train_state_free(&st2);
    ls_lora_free(&straight);
    ls_lora_free(&first);
    ls_lora_free(&resumed);
    ls_window_set_free(&train);
    ls_window_set_free(&val);
}

/* Early stopping's rungs: 13 steps straight == paused at step 3, reloaded, paused at 9, reloaded,
 * to the end, bit for bit (the schedule stays over 13 steps). Each pause validates at its step
 * although eval_every (5) does not, and checkpoints there; a run resumed at the step it pauses at
 * trains nothing. */
static void test_pause_is_exact(void **state) {
    const ls_backend *be = ls_backend_cpu();
    ls_window_set train, val;
    pattern_windows(&train, 90, 0);
    pattern_windows(&val, 30, 3);
    ls_train_options o = options(13);
    o.checkpoint_every = 4;
    ls_lora straight;
    fresh_lora(&straight);
    ls_train_state st;
    ls_train_state_init(&st, &straight, &toy_config, o.max_steps);
    assert_int_equal(ls_train_run(be, &model, &straight, &train, &val, &o, &st, NULL, NULL), LS_OK);
    assert_int_equal(st.n_evals, 4); /* 0, 5, 10, 13 */

    char dir[512];
    snprintf(dir, sizeof dir, "%s/pause", temp_dir());
    mkdir(dir, 0777);
    stop_ctx sc = {dir, 0, 0};
    ls_train_hooks hooks = {track, save, stop_now, &sc};
    const int pauses[] = {3, 9, 9, 0}, want_step[] = {3, 9, 9, 13}, want_evals[] = {2, 4, 4, 6};
    ls_lora lora;
    ls_train_state sp;
    for (int leg = 0; leg < 4; leg++) {
        fresh_lora(&lora);
        ls_train_state_init(&sp, &lora, &toy_config, o.max_steps);
        if (leg > 0) assert_int_equal(ls_train_checkpoint_load(dir, &sp, &lora, &toy_config), LS_OK);
        o.pause_step = pauses[leg];
        assert_int_equal(ls_train_run(be, &model, &lora, &train, &val, &o, &sp, &hooks, NULL), LS_OK);
        assert_int_equal(sp.step, want_step[leg]);
        assert_int_equal(sp.n_evals, want_evals[leg]); /* 0, 3, 5, 9, 10, 13 */
        assert_int_equal(sp.eval_step[sp.n_evals - 1], want_step[leg]);
        if (leg < 3) ls_lora_free(&lora), ls_train_state_free(&sp);
    }
    assert_memory_equal(lora.arena, straight.arena, sizeof(float) * straight.arena_floats);
    assert_memory_equal(sp.m.arena, st.m.arena, sizeof(float) * st.m.arena_floats);
    assert_memory_equal(sp.v.arena, st.v.arena, sizeof(float) * st.v.arena_floats);
    assert_memory_equal(sp.train_loss, st.train_loss, sizeof(float) * 13);
    for (int i = 0, k = 0; i < sp.n_evals; i++) /* the straight run's validations, the same values */
        if (k < st.n_evals && sp.eval_step[i] == st.eval_step[k]) {
            assert_memory_equal(&sp.val_loss[i], &st.val_loss[k], sizeof(float));
            k++;
        }
    ls_train_state_free(&sp);
    ls_train_state_free(&st);
    ls_lora_free(&lora);
    ls_lora_free(&straight);
    ls_window_set_free(&train);
    ls_window_set_free(&val);
}

/* Validation runs in the training activations: a run with 5 validations allocates one block of
 * backend memory (the activations; the adapter's tensors alias the host ones on the CPU). */
static long allocs;
static void *counting_alloc(size_t bytes) {
    allocs++;
    return ls_backend_cpu()->alloc(bytes);
}

static void test_validation_allocates_nothing(void **state) {
    ls_backend counting = *ls_backend_cpu();
    counting.alloc = counting_alloc;
    ls_window_set train, val;
    pattern_windows(&train, 200, 0);
    pattern_windows(&val, 60, 3);
    ls_lora lora;
    fresh_lora(&lora);
    ls_train_options o = options(20);
    ls_train_state st;
    ls_train_state_init(&st, &lora, &toy_config, o.max_steps);
    allocs = 0;
    assert_int_equal(ls_train_run(&counting, &model, &lora, &train, &val, &o, &st, NULL, NULL), LS_OK);
    assert_int_equal(st.n_evals, 5); /* step 0, then every 5 */
    assert_int_equal(allocs, 1);
    ls_train_state_free(&st);
    ls_lora_free(&lora);
    ls_window_set_free(&train);
    ls_window_set_free(&val);
}

static void test_schedules(void **state) {
    ls_train_options o = options(10);
    o.lr = 1.0f;
    o.warmup_steps = 2;
    o.min_lr_ratio = 0.1f;
    o.schedule = LS_SCHEDULE_CONSTANT;
    assert_float_equal(ls_train_lr(&o, 1), 0.5, 1e-7);
    assert_float_equal(ls_train_lr(&o, 2), 1.0, 1e-7);
    assert_float_equal(ls_train_lr(&o, 7), 1.0, 1e-7);
    o.schedule = LS_SCHEDULE_LINEAR;
    assert_float_equal(ls_train_lr(&o, 6), 1.0 - 0.9 * 0.5, 1e-6); /* halfway through 8 decay steps */
    assert_float_equal(ls_train_lr(&o, 10), 0.1, 1e-6);
    o.schedule = LS_SCHEDULE_COSINE;
    assert_float_equal(ls_train_lr(&o, 6), 0.1 + 0.9 * 0.5, 1e-6);
    assert_float_equal(ls_train_lr(&o, 10), 0.1, 1e-6);
    assert_float_equal(ls_train_lr(&o, 4), 0.1 + 0.9 * 0.5 * (1 + cos(3.14159265358979 * 0.25)), 1e-6);
}

/* One parameter, by hand, against PyTorch's formulas. */
static void test_optimiser_steps(void **state) {
    const ls_backend *be = ls_backend_cpu();
    float p = 1.0f, g = 0.5f, m = 0, v = 0;
    be->adamw(&p, &g, &m, &v, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, 1);
    /* decay: 1 - 0.1*0.01 = 0.999; m_hat = 0.5, v_hat = 0.25: step 0.1 * 0.5 / 0.5 = 0.1 */
    assert_float_equal(p, 0.999 - 0.1 * 0.5 / (0.5 + 1e-8), 1e-6);
    float q = 1.0f, buf = 0;
    be->sgd(&q, &g, &buf, 1, 0.1f, 0.9f, 0.0f, 1);
    assert_float_equal(q, 0.95, 1e-7);
    be->sgd(&q, &g, &buf, 1, 0.1f, 0.9f, 0.0f, 2); /* buf = 0.9*0.5 + 0.5 = 0.95 */
    assert_float_equal(q, 0.95 - 0.095, 1e-6);
}

static double json_number(const cJSON *obj, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(obj, key);
    assert_true(cJSON_IsNumber(x));
    return x->valuedouble;
}

/* golden/adamw_trajectory.json: PyTorch's AdamW and SGD (float64) stepped 25 times on one
 * 11-element vector with given gradients and learning rates, clipping included. The project's
 * step (ls_train_optimizer_step: norm, clip, the backend's optimiser) in float32 follows every
 * step to about 1e-6 relative. One step cannot tell: AdamW's first step is lr * sign(g) whatever
 * the betas, so the moments, the bias correction, the decay and the clipping show only here. */
static void test_optimisers_match_pytorch(void **state) {
    size_t len;
    char *text = ls_read_file(shared_path("golden/adamw_trajectory.json"), &len);
    assert_non_null(text);
    cJSON *root = cJSON_Parse(text);
    assert_non_null(root);
    int n = (int)json_number(root, "n"), steps = (int)json_number(root, "steps");
    const cJSON *p0 = cJSON_GetObjectItemCaseSensitive(root, "p0"), *grads = cJSON_GetObjectItemCaseSensitive(root, "grads"),
                *lrs = cJSON_GetObjectItemCaseSensitive(root, "lrs"), *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    assert_int_equal(cJSON_GetArraySize(cases), 3);
    const ls_backend *be = ls_backend_cpu();
    float *p = calloc((size_t)n, sizeof *p), *g = calloc((size_t)n, sizeof *g), *m = calloc((size_t)n, sizeof *m),
          *v = calloc((size_t)n, sizeof *v);
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        const char *opt = cJSON_GetObjectItemCaseSensitive(c, "optimizer")->valuestring;
        const cJSON *hyper = cJSON_GetObjectItemCaseSensitive(c, "hyper");
        ls_train_options o = {.grad_clip = (float)json_number(c, "clip"),
                              .weight_decay = (float)json_number(hyper, "weight_decay")};
        if (strcmp(opt, "adamw") == 0) {
            const cJSON *betas = cJSON_GetObjectItemCaseSensitive(hyper, "betas");
            o.optimizer = LS_OPTIMIZER_ADAMW;
            o.beta1 = (float)cJSON_GetArrayItem(betas, 0)->valuedouble;
            o.beta2 = (float)cJSON_GetArrayItem(betas, 1)->valuedouble;
            o.eps = (float)json_number(hyper, "eps");
        } else {
            assert_string_equal(opt, "sgd");
            o.optimizer = LS_OPTIMIZER_SGD;
            o.momentum = (float)json_number(hyper, "momentum");
        }
        for (int i = 0; i < n; i++) p[i] = (float)cJSON_GetArrayItem(p0, i)->valuedouble, m[i] = v[i] = 0;
        double worst = 0;
        int clipped = 0;
        for (int s = 0; s < steps; s++) {
            const cJSON *gs = cJSON_GetArrayItem(grads, s);
            for (int i = 0; i < n; i++) g[i] = (float)cJSON_GetArrayItem(gs, i)->valuedouble;
            float norm;
            assert_int_equal(ls_train_optimizer_step(be, &o, p, g, m, v, (size_t)n,
                                                     (float)cJSON_GetArrayItem(lrs, s)->valuedouble, s + 1, &norm),
                             LS_OK);
            double want_norm = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "grad_norms"), s)->valuedouble;
            assert_true(fabs(norm - want_norm) <= 1e-6 * want_norm);
            clipped += o.grad_clip > 0 && want_norm > o.grad_clip;
            const cJSON *want = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "params"), s);
            for (int i = 0; i < n; i++) {
                double w = cJSON_GetArrayItem(want, i)->valuedouble, err = fabs(p[i] - w) / fmax(fabs(w), 1e-3);
                if (err > worst) worst = err;
                if (err > 2e-6) fail_msg("%s: step %d, element %d: %.9g, PyTorch %.9g", name, s, i, (double)p[i], w);
            }
        }
        print_message("%s: 25 steps, %d clipped, worst relative difference %.2e\n", name, clipped, worst);
    }
    free(p), free(g), free(m), free(v);
    cJSON_Delete(root);
    free(text);
}

/* A non-finite loss (here from a NaN in the weights) stops the run with a message, not a crash. */
static void test_divergence_is_an_error(void **state) {
    const ls_backend *be = ls_backend_cpu();
    ls_window_set train;
    pattern_windows(&train, 60, 0);
    ls_lora lora;
    fresh_lora(&lora);
    ls_train_options o = options(30);
    ls_train_state st;
    ls_train_state_init(&st, &lora, &toy_config, o.max_steps);
    float keep = model.final_norm[3];
    model.final_norm[3] = NAN;
    int rc = ls_train_run(be, &model, &lora, &train, NULL, &o, &st, NULL, NULL);
    model.final_norm[3] = keep;
    assert_int_equal(rc, LS_ERR);
    assert_string_equal(ls_last_error(), "step 1: the training loss is NaN (try a lower learning rate)");
    assert_int_equal(st.step, 0);
    ls_train_state_free(&st);
    ls_lora_free(&lora);
    ls_window_set_free(&train);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_training_lowers_validation_loss),
        cmocka_unit_test(test_resume_is_exact),
        cmocka_unit_test(test_pause_is_exact),
        cmocka_unit_test(test_validation_allocates_nothing),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_optimiser_steps),
        cmocka_unit_test(test_optimisers_match_pytorch),
        cmocka_unit_test(test_divergence_is_an_error),
    };
    return test_exit_status(cmocka_run_group_tests(tests, setup, teardown));
}
