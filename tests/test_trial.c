/*
 * test_trial.c: a worker's model between trials (ls_model_cache, trial.h). Trials of one process
 * on the same model read it once: the second and later take it as it is, with the same results as
 * trials that read it themselves; a model file that changed (rewritten in place, or replaced by a
 * rename keeping size and times), another model directory or another backend is read again.
 *
 * The model is the tiny preset written by `lorasweep model init` (random weights, the real
 * tokenizer from ../shared), the data 40 simulated systems; each trial trains 2 steps.
 */
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>

#include "lorasweep/cli.h"
#include "lorasweep/common.h"
#include "lorasweep/trial.h"
#include "testing.h"

static char dir[1024], yaml_a[8192], yaml_b[8192];

/* `lorasweep model init --preset tiny --out DIR/name --tokenizer TOK`. */
static void model_init(const char *name, const char *tok) {
    char out[4200];
    snprintf(out, sizeof out, "%s/%s", dir, name);
    char *argv[] = {"model", "init", "--preset", "tiny", "--out", out, "--tokenizer", (char *)tok, NULL};
    optind = 0; /* getopt_long starts over */
    assert_int_equal(cmd_model(8, argv), CLI_EXIT_OK);
}

static void trial_yaml(char *buf, size_t cap, const char *model) {
    snprintf(buf, cap,
             "name: cache\n"
             "model: {path: %s/%s}\n"
             "data: {path: %s/lv.h5}\n"
             "split: {test_systems: 4, val_fraction: 0.2}\n"
             "lora: {rank: 2, targets: [q_proj, v_proj]}\n"
             "train: {ctx: 32, batch_size: 2, max_steps: 2, eval_every: 2, val_max_windows: 2}\n"
             "eval: {systems: 0}\n",
             dir, model, dir);
}

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "%s", temp_dir());
    return 0;
}

/* One trial with the cache (or none): its final training loss, and the cache's counts after it. */
static double run(const char *yaml, ls_model_cache *cache) {
    ls_trial_config cfg;
    assert_int_equal(ls_config_load_string(yaml, strlen(yaml), "cache", &cfg), LS_OK);
    ls_trial_hooks hooks = {.model_cache = cache};
    ls_trial_result res;
    int rc = ls_trial_run(&cfg, &hooks, &res);
    if (rc != LS_OK) fail_msg("trial: %s", ls_last_error());
    double loss = res.final_train_loss;
    assert_true(isfinite(loss) && isfinite(res.final_val_loss));
    ls_trial_result_free(&res);
    ls_config_free(&cfg);
    return loss;
}

static void test_model_read_once_per_worker(void **state) {
    (void)state;
    const char *tok = shared_path("qwen/tokenizer.json");
    model_init("tiny", tok);
    model_init("other", tok);
    ls_lv_config lv = ls_lv_config_default();
    lv.systems = 40;
    ls_dataset ds;
    char path[4200];
    snprintf(path, sizeof path, "%s/lv.h5", dir);
    assert_int_equal(ls_lv_generate(&lv, &ds), LS_OK);
    assert_int_equal(ls_dataset_write(path, &ds), LS_OK);
    ls_dataset_free(&ds);
    trial_yaml(yaml_a, sizeof yaml_a, "tiny");
    trial_yaml(yaml_b, sizeof yaml_b, "other");

    double alone = run(yaml_a, NULL); /* reads and frees its model, as `lorasweep train` does */
    ls_model_cache cache = {0};
    double first = run(yaml_a, &cache);
    assert_int_equal(cache.loads, 1);
    assert_int_equal(cache.reuses, 0);
    double second = run(yaml_a, &cache);
    double third = run(yaml_a, &cache);
    assert_int_equal(cache.loads, 1); /* the second and third trials did not read it */
    assert_int_equal(cache.reuses, 2);
    assert_true(alone == first && first == second && second == third); /* the same bits */

    /* Rewritten in place: the modification time moves. */
    char model_file[4200];
    snprintf(model_file, sizeof model_file, "%s/tiny/model.safetensors", dir);
    struct timespec later[2] = {{.tv_sec = 2000000000, .tv_nsec = 0}, {.tv_sec = 2000000000, .tv_nsec = 0}};
    assert_int_equal(utimensat(AT_FDCWD, model_file, later, 0), 0);
    run(yaml_a, &cache);
    assert_int_equal(cache.loads, 2);

    /* Replaced by a rename with the same size and modification time: another inode. */
    char copy[4300];
    snprintf(copy, sizeof copy, "%s.new", model_file);
    size_t len;
    char *bytes = ls_read_file(model_file, &len);
    assert_non_null(bytes);
    FILE *f = fopen(copy, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    fclose(f);
    free(bytes);
    assert_int_equal(utimensat(AT_FDCWD, copy, later, 0), 0);
    assert_int_equal(rename(copy, model_file), 0);
    run(yaml_a, &cache);
    assert_int_equal(cache.loads, 3);
    run(yaml_a, &cache);
    assert_int_equal(cache.loads, 3);

    /* Another model: read (the kept one is freed first), then kept in its turn. */
    run(yaml_b, &cache);
    run(yaml_b, &cache);
    assert_int_equal(cache.loads, 4);
    assert_int_equal(cache.reuses, 4);
    assert_string_equal(cache.dir + strlen(cache.dir) - 5, "other");

    /* A model directory that went away is an error, not the kept copy. */
    snprintf(path, sizeof path, "%s/other/config.json", dir);
    assert_int_equal(unlink(path), 0);
    ls_trial_config cfg;
    assert_int_equal(ls_config_load_string(yaml_b, strlen(yaml_b), "cache", &cfg), LS_OK);
    ls_trial_hooks hooks = {.model_cache = &cache};
    ls_trial_result res;
    assert_int_equal(ls_trial_run(&cfg, &hooks, &res), LS_ERR);
    ls_trial_result_free(&res);
    ls_config_free(&cfg);

    ls_model_cache_free(&cache);
    assert_null(cache.dir);
    assert_int_equal(cache.loads, 4); /* the counts survive the free */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_model_read_once_per_worker, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
