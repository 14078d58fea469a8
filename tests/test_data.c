/*
 * test_data.c: the data module. The real course file loads unchanged; generated data survive a
 * write/read round trip bit for bit and are the same for the same seed; the solver is accurate
 * (conserved quantity of the classic model, an independent RK4 for the saturating one); every
 * kind of bad file is refused with one message naming it; splits have the course's sizes.
 * Bad files are made here with the HDF5 API in temp_dir().
 */
#include <float.h>
#include <hdf5.h>
#include <math.h>
#include <sys/stat.h>

#include "lorasweep/common.h"
#include "lorasweep/data.h"
#include "testing.h"

#define REAL_FILE "data/lotka_volterra_data.h5"

static char *tmp_path(const char *name) {
    size_t n = strlen(temp_dir()) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", temp_dir(), name);
    return p;
}

/* The message of the last error contains `what` and the file name. */
static void assert_error_names(const char *path, const char *what) {
    const char *msg = ls_last_error();
    if (!strstr(msg, path) || !strstr(msg, what))
        fail_msg("error message \"%s\" should name \"%s\" and contain \"%s\"", msg, path, what);
    if (strchr(msg, '\n')) fail_msg("error message \"%s\" is more than one line", msg);
}

static void assert_read_fails(const char *path, const char *what) {
    ls_dataset ds;
    assert_int_equal(ls_dataset_read(path, &ds), LS_ERR);
    assert_error_names(path, what);
    assert_null(ds.traj); /* nothing left allocated */
    assert_null(ds.time);
}

/* ---------------------------------------------------------------- making HDF5 files */

/* A file to write: /trajectories and /time filled with valid values unless changed. */
typedef struct {
    int traj_rank;       /* 0 = no /trajectories */
    hsize_t tdims[3];
    hid_t traj_type;     /* file type */
    int traj_is_group;   /* /trajectories is a group, not a dataset */
    hsize_t time_len;    /* 0 = no /time */
    hid_t time_type;
    int time_rank;       /* 1 unless changed */
    long poke;           /* index into the trajectory values to set to poke_value, or -1 */
    double poke_value;
    int time_poke;       /* index into /time to set to time_poke_value, or -1 */
    double time_poke_value;
    hsize_t params_rows, params_cols; /* 0 = no /params */
} file_spec;

static file_spec good_spec(hsize_t systems, hsize_t steps) {
    file_spec s = {3, {systems, steps, 2}, H5T_IEEE_F32LE, 0, steps, H5T_IEEE_F64LE, 1, -1, 0.0, -1, 0.0, 0, 0};
    return s;
}

static void put_dataset(hid_t file, const char *name, hid_t type, int rank, const hsize_t *dims, const double *data) {
    hid_t space = H5Screate_simple(rank, dims, NULL);
    assert_true(space >= 0);
    hid_t d = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(d >= 0);
    assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    H5Dclose(d);
    H5Sclose(space);
}

static char *make_file(const char *name, const file_spec *s) {
    char *path = tmp_path(name);
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(file >= 0);
    if (s->traj_is_group) {
        hid_t g = H5Gcreate2(file, "/trajectories", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(g >= 0);
        H5Gclose(g);
    } else if (s->traj_rank > 0) {
        size_t n = 1;
        for (int i = 0; i < s->traj_rank; i++) n *= s->tdims[i];
        double *v = calloc(n ? n : 1, sizeof *v);
        for (size_t i = 0; i < n; i++) v[i] = 1.0 + 0.001 * (double)(i % 1000);
        if (s->poke >= 0) v[s->poke] = s->poke_value;
        put_dataset(file, "/trajectories", s->traj_type, s->traj_rank, s->tdims, v);
        free(v);
    }
    if (s->time_len > 0) {
        double *t = calloc(s->time_len * 2, sizeof *t);
        for (size_t i = 0; i < s->time_len * 2; i++) t[i] = 2.0 * (double)i;
        if (s->time_poke >= 0) t[s->time_poke] = s->time_poke_value;
        hsize_t dims[2] = {s->time_len, 2};
        put_dataset(file, "/time", s->time_type, s->time_rank, dims, t);
        free(t);
    }
    if (s->params_rows > 0) {
        double *p = calloc(s->params_rows * s->params_cols, sizeof *p);
        hsize_t dims[2] = {s->params_rows, s->params_cols};
        put_dataset(file, "/params", H5T_IEEE_F64LE, 2, dims, p);
        free(p);
    }
    assert_true(H5Fclose(file) >= 0);
    return path;
}

static void check_bad(const char *name, const file_spec *s, const char *what) {
    char *path = make_file(name, s);
    assert_read_fails(path, what);
    free(path);
}

/* ---------------------------------------------------------------- the real file */

static void test_real_file_loads(void **state) {
    (void)state;
    const char *path = shared_path(REAL_FILE);
    ls_dataset ds;
    assert_int_equal(ls_dataset_read(path, &ds), LS_OK);
    assert_int_equal(ds.systems, 1000);
    assert_int_equal(ds.steps, 100);
    assert_true(ds.time[0] == 0.0);
    assert_true(ds.time[99] == 200.0);
    assert_float_equal(ds.time[1], 200.0 / 99.0, 1e-12);
    assert_true(ds.traj[0] == 0.94991744f);
    assert_true(ds.traj[1] == 1.040624f);
    assert_null(ds.params); /* the course file holds no parameters */
    assert_null(ds.initial);
    assert_null(ds.saturation);
    /* The statistics the docs quote, as numpy computes them. */
    ls_var_stats st;
    ls_dataset_stats(&ds, 0, &st);
    assert_float_equal(st.max, 13.740113, 1e-5);
    assert_float_equal(st.p50, 1.31416714, 1e-5);
    assert_float_equal(st.p99, 7.11494539, 1e-5);
    ls_dataset_free(&ds);

    ls_h5_layout lay;
    assert_int_equal(ls_dataset_layout(path, "/trajectories", &lay), 1);
    assert_string_equal(lay.dtype, "float32");
    assert_int_equal(lay.rank, 3);
    assert_int_equal(lay.dims[0], 1000);
    assert_int_equal(ls_dataset_layout(path, "/params", &lay), 0);
}

/* Our time grid is numpy.linspace(0, 200, 100) bit for bit. */
static void test_time_grid_matches_course(void **state) {
    (void)state;
    const char *path = shared_path(REAL_FILE);
    ls_dataset real, gen;
    assert_int_equal(ls_dataset_read(path, &real), LS_OK);
    ls_lv_config c = ls_lv_config_default();
    c.systems = 2;
    assert_int_equal(ls_lv_generate(&c, &gen), LS_OK);
    assert_int_equal(gen.steps, real.steps);
    assert_memory_equal(gen.time, real.time, sizeof(double) * (size_t)real.steps);
    ls_dataset_free(&real);
    ls_dataset_free(&gen);
}

/* The saturating config reproduces the course set's distribution (docs/data.md). */
static void test_course_model_is_realistic(void **state) {
    (void)state;
    const char *path = shared_path(REAL_FILE);
    ls_dataset real, gen;
    assert_int_equal(ls_dataset_read(path, &real), LS_OK);
    ls_lv_config c = ls_lv_config_course();
    assert_int_equal(ls_lv_generate(&c, &gen), LS_OK);
    for (int v = 0; v < LS_LV_VARS; v++) {
        ls_var_stats a, b;
        ls_dataset_stats(&real, v, &a);
        ls_dataset_stats(&gen, v, &b);
        assert_float_equal(b.p50 / a.p50, 1.0, 0.05);
        assert_float_equal(b.mean / a.mean, 1.0, 0.05);
        assert_float_equal(b.p99 / a.p99, 1.0, 0.10);
        assert_float_equal(b.peak_p99 / a.peak_p99, 1.0, 0.15);
    }
    ls_dataset_free(&real);
    ls_dataset_free(&gen);
}

/* ---------------------------------------------------------------- generate, write, read */

static void assert_same_dataset(const ls_dataset *a, const ls_dataset *b) {
    size_t S = (size_t)a->systems, N = (size_t)a->steps;
    assert_int_equal(a->systems, b->systems);
    assert_int_equal(a->steps, b->steps);
    assert_memory_equal(a->traj, b->traj, S * N * 2 * sizeof(float));
    assert_memory_equal(a->time, b->time, N * sizeof(double));
    assert_true((a->params == NULL) == (b->params == NULL));
    if (a->params) assert_memory_equal(a->params, b->params, S * 4 * sizeof(double));
    assert_true((a->initial == NULL) == (b->initial == NULL));
    if (a->initial) assert_memory_equal(a->initial, b->initial, S * 2 * sizeof(double));
    assert_true((a->saturation == NULL) == (b->saturation == NULL));
    if (a->saturation) assert_memory_equal(a->saturation, b->saturation, S * 2 * sizeof(double));
}

static void roundtrip(ls_lv_config c, const char *name) {
    ls_dataset gen, back;
    assert_int_equal(ls_lv_generate(&c, &gen), LS_OK);
    char *path = tmp_path(name);
    assert_int_equal(ls_dataset_write(path, &gen), LS_OK);
    assert_int_equal(ls_dataset_read(path, &back), LS_OK);
    assert_same_dataset(&gen, &back);
    assert_non_null(back.source);
    assert_string_equal(gen.source, back.source);
    ls_h5_layout lay;
    assert_int_equal(ls_dataset_layout(path, "/trajectories", &lay), 1);
    assert_string_equal(lay.dtype, "float32");
    assert_int_equal(ls_dataset_layout(path, "/params", &lay), 1);
    assert_string_equal(lay.dtype, "float64");
    assert_int_equal(lay.dims[1], 4);
    ls_dataset_free(&gen);
    ls_dataset_free(&back);
    free(path);
}

static void test_roundtrip_exact(void **state) {
    (void)state;
    ls_lv_config c = ls_lv_config_default();
    c.systems = 37, c.steps = 51, c.t_end = 50.0;
    roundtrip(c, "classic.h5");
    ls_lv_config k = ls_lv_config_course();
    k.systems = 23, k.steps = 100;
    roundtrip(k, "course.h5");
}

static void test_same_seed_same_data(void **state) {
    (void)state;
    ls_lv_config c = ls_lv_config_default();
    c.systems = 50;
    ls_dataset a, b, d;
    assert_int_equal(ls_lv_generate(&c, &a), LS_OK);
    assert_int_equal(ls_lv_generate(&c, &b), LS_OK);
    assert_same_dataset(&a, &b);
    c.seed = 43;
    assert_int_equal(ls_lv_generate(&c, &d), LS_OK);
    assert_true(memcmp(a.traj, d.traj, 50 * 100 * 2 * sizeof(float)) != 0);
    assert_true(memcmp(a.params, d.params, 50 * 4 * sizeof(double)) != 0);
    /* Parameters stay inside their ranges, each system starts at its drawn initial values. */
    ls_lv_config dc = ls_lv_config_default();
    for (int s = 0; s < 50; s++) {
        assert_in_range((long)(a.params[4 * s] * 1e6), (long)(dc.alpha_min * 1e6), (long)(dc.alpha_max * 1e6));
        assert_in_range((long)(a.params[4 * s + 3] * 1e6), (long)(dc.delta_min * 1e6), (long)(dc.delta_max * 1e6));
        assert_true(a.traj[s * 200] == (float)a.initial[2 * s]);
        assert_true(a.traj[s * 200 + 1] == (float)a.initial[2 * s + 1]);
    }
    ls_dataset_free(&a);
    ls_dataset_free(&b);
    ls_dataset_free(&d);
}

/* The stored trajectories are the solutions for the stored parameters. */
static void test_trajectories_match_params(void **state) {
    (void)state;
    ls_lv_config c = ls_lv_config_course();
    c.systems = 5;
    ls_dataset ds;
    assert_int_equal(ls_lv_generate(&c, &ds), LS_OK);
    double *sol = malloc(sizeof(double) * 200);
    for (int s = 0; s < 5; s++) {
        const double *p = ds.params + 4 * s;
        ls_lv_system sys = {p[0], p[1], p[2], p[3], ds.saturation[2 * s], ds.saturation[2 * s + 1],
                            ds.initial[2 * s], ds.initial[2 * s + 1]};
        assert_int_equal(ls_lv_solve(&sys, c.t_end, c.steps, sol), LS_OK);
        for (int i = 0; i < 200; i++) assert_true(ds.traj[s * 200 + i] == (float)sol[i]);
        /* delta = eff * beta with eff in [0.3, 0.7] */
        assert_true(p[3] >= 0.3 * p[1] && p[3] <= 0.7 * p[1]);
    }
    free(sol);
    ls_dataset_free(&ds);
}

/* ---------------------------------------------------------------- accuracy */

/* Classic model: V = delta x - gamma ln x + beta y - alpha ln y is constant along a solution. */
static void test_classic_conserves_v(void **state) {
    (void)state;
    const ls_lv_system systems[] = {
        {0.1, 0.15, 0.1, 0.06, 0, 0, 0.8, 1.2},   {0.25, 0.45, 0.25, 0.25, 0, 0, 1.2, 0.8},
        {0.18, 0.3, 0.12, 0.05, 0, 0, 1.0, 1.0},  {0.1, 0.45, 0.25, 0.06, 0, 0, 0.8, 0.8},
    };
    double *out = malloc(sizeof(double) * 2 * 2001);
    for (size_t k = 0; k < 2 * sizeof systems / sizeof systems[0]; k++) {
        /* Each system on a coarse grid (the solver picks its steps) and a fine one. */
        const ls_lv_system *p = &systems[k / 2];
        int n = k % 2 ? 2001 : 100;
        assert_int_equal(ls_lv_solve(p, 200.0, n, out), LS_OK);
        double v0 = p->delta * out[0] - p->gamma * log(out[0]) + p->beta * out[1] - p->alpha * log(out[1]);
        double worst = 0.0;
        for (int i = 1; i < n; i++) {
            double x = out[2 * i], y = out[2 * i + 1];
            double v = p->delta * x - p->gamma * log(x) + p->beta * y - p->alpha * log(y);
            worst = fmax(worst, fabs(v - v0) / fabs(v0));
        }
        if (worst > 1e-8) fail_msg("system %zu, %d steps: V drifts by %g (relative)", k / 2, n, worst);
    }
    free(out);
}

static void rk4_rhs(const ls_lv_system *p, double x, double y, double *dx, double *dy) {
    double f = x / (1.0 + p->h * x);
    *dx = p->alpha * x * (p->k > 0 ? 1.0 - x / p->k : 1.0) - p->beta * f * y;
    *dy = p->delta * f * y - p->gamma * y;
}

/* Saturating model: compare with a plain RK4 at a small fixed step (an independent method). */
static void test_saturating_matches_rk4(void **state) {
    (void)state;
    const ls_lv_system p = {0.27, 0.31, 0.12, 0.17, 7.5, 0.15, 1.1, 0.85};
    int n = 101;
    double t_end = 200.0, *out = malloc(sizeof(double) * 2 * (size_t)n);
    assert_int_equal(ls_lv_solve(&p, t_end, n, out), LS_OK);
    double x = p.x0, y = p.y0, h = t_end / (double)(n - 1) / 2000.0, worst = 0.0;
    for (int i = 1; i < n; i++) {
        for (int k = 0; k < 2000; k++) {
            double a1, b1, a2, b2, a3, b3, a4, b4;
            rk4_rhs(&p, x, y, &a1, &b1);
            rk4_rhs(&p, x + h / 2 * a1, y + h / 2 * b1, &a2, &b2);
            rk4_rhs(&p, x + h / 2 * a2, y + h / 2 * b2, &a3, &b3);
            rk4_rhs(&p, x + h * a3, y + h * b3, &a4, &b4);
            x += h / 6 * (a1 + 2 * a2 + 2 * a3 + a4);
            y += h / 6 * (b1 + 2 * b2 + 2 * b3 + b4);
        }
        worst = fmax(worst, fmax(fabs(out[2 * i] - x) / x, fabs(out[2 * i + 1] - y) / y));
    }
    if (worst > 1e-8) fail_msg("saturating model differs from RK4 by %g (relative)", worst);
    free(out);
}

/* ---------------------------------------------------------------- bad files */

static void test_missing_and_non_hdf5(void **state) {
    (void)state;
    char *missing = tmp_path("no-such-file.h5");
    assert_read_fails(missing, "No such file");
    free(missing);

    char *text = tmp_path("text.h5");
    FILE *f = fopen(text, "w");
    assert_non_null(f);
    fputs("prey,predator\n1,2\n", f);
    fclose(f);
    assert_read_fails(text, "not an HDF5 file");
    free(text);

    char *empty = tmp_path("empty.h5");
    f = fopen(empty, "w");
    assert_non_null(f);
    fclose(f);
    assert_read_fails(empty, "not an HDF5 file");
    free(empty);

    assert_read_fails(temp_dir(), "is a directory");
}

static void test_truncated_file(void **state) {
    (void)state;
    ls_lv_config c = ls_lv_config_default();
    c.systems = 200;
    ls_dataset ds;
    assert_int_equal(ls_lv_generate(&c, &ds), LS_OK);
    char *path = tmp_path("truncated.h5");
    assert_int_equal(ls_dataset_write(path, &ds), LS_OK);
    ls_dataset_free(&ds);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    ls_dataset back;
    assert_int_equal(ls_dataset_read(path, &back), LS_ERR);
    assert_error_names(path, "");
    free(path);
}

static void test_bad_structure(void **state) {
    (void)state;
    file_spec s = good_spec(20, 50);
    s.traj_rank = 0;
    check_bad("no-traj.h5", &s, "no dataset /trajectories");

    s = good_spec(20, 50);
    s.traj_is_group = 1;
    check_bad("traj-group.h5", &s, "/trajectories is not a dataset");

    s = good_spec(20, 50);
    s.traj_rank = 2;
    s.tdims[1] = 100;
    check_bad("rank2.h5", &s, "/trajectories has 2 dimensions, expected 3");

    s = good_spec(20, 50);
    s.tdims[2] = 3;
    check_bad("lastdim3.h5", &s, "/trajectories has shape (20, 50, 3), expected (systems, steps, 2)");

    s = good_spec(20, 50);
    s.traj_type = H5T_STD_I32LE;
    check_bad("int.h5", &s, "/trajectories holds int32 values, expected floating-point");

    s = good_spec(20, 50);
    s.tdims[0] = 0;
    check_bad("zero-systems.h5", &s, "/trajectories is empty");

    s = good_spec(20, 50);
    s.time_len = 0;
    check_bad("no-time.h5", &s, "no dataset /time");

    s = good_spec(20, 50);
    s.time_len = 49;
    check_bad("short-time.h5", &s, "/time has 49 values, expected 50");

    s = good_spec(20, 50);
    s.time_type = H5T_STD_I64LE;
    check_bad("int-time.h5", &s, "/time holds int64 values");

    s = good_spec(20, 50);
    s.time_rank = 2;
    check_bad("time-rank2.h5", &s, "/time has 2 dimensions, expected 1");

    s = good_spec(20, 50);
    s.params_rows = 20, s.params_cols = 3;
    check_bad("params-cols.h5", &s, "/params has shape (20, 3), expected (20, 4)");

    s = good_spec(20, 50);
    s.params_rows = 19, s.params_cols = 4;
    check_bad("params-rows.h5", &s, "/params has shape (19, 4)");

    s = good_spec(20, 50); /* a float64 trajectory file is fine */
    s.traj_type = H5T_IEEE_F64LE;
    char *path = make_file("f64.h5", &s);
    ls_dataset ds;
    assert_int_equal(ls_dataset_read(path, &ds), LS_OK);
    assert_true(ds.traj[1] == 1.001f);
    ls_dataset_free(&ds);
    free(path);
}

static void test_bad_values(void **state) {
    (void)state;
    file_spec s = good_spec(20, 50);
    s.poke = (12 * 50 + 40) * 2 + 0, s.poke_value = NAN;
    char *path = make_file("nan.h5", &s);
    char want[4096];
    snprintf(want, sizeof want, "%s: /trajectories[12, 40, 0] is NaN (system 12, step 40, prey)", path);
    ls_dataset ds;
    assert_int_equal(ls_dataset_read(path, &ds), LS_ERR);
    assert_string_equal(ls_last_error(), want);
    free(path);

    s = good_spec(20, 50);
    s.poke = (3 * 50 + 7) * 2 + 1, s.poke_value = -0.25;
    check_bad("negative.h5", &s, "/trajectories[3, 7, 1] is negative (-0.25) (system 3, step 7, predator)");

    s = good_spec(20, 50);
    s.poke = 5, s.poke_value = INFINITY;
    check_bad("inf.h5", &s, "is infinite (system 0, step 2, predator)");

    s = good_spec(20, 50); /* a float64 value too large for float32 */
    s.traj_type = H5T_IEEE_F64LE;
    s.poke = 0, s.poke_value = 1e300;
    check_bad("huge.h5", &s, "/trajectories[0, 0, 0] is infinite");

    s = good_spec(20, 50);
    s.time_poke = 10, s.time_poke_value = NAN;
    check_bad("time-nan.h5", &s, "/time[10] is NaN");

    s = good_spec(20, 50);
    s.time_poke = 10, s.time_poke_value = 0.0;
    check_bad("time-back.h5", &s, "/time[10] = 0 does not come after /time[9] = 18");
}

/* ---------------------------------------------------------------- writing */

static void test_write_errors_keep_old_file(void **state) {
    (void)state;
    ls_lv_config c = ls_lv_config_default();
    c.systems = 10;
    ls_dataset ds, back;
    assert_int_equal(ls_lv_generate(&c, &ds), LS_OK);

    char *nodir = tmp_path("no-such-dir/out.h5");
    assert_int_equal(ls_dataset_write(nodir, &ds), LS_ERR);
    assert_error_names(nodir, "No such file or directory");
    free(nodir);
    assert_int_equal(ls_dataset_write(temp_dir(), &ds), LS_ERR);
    assert_error_names(temp_dir(), "is a directory");

    char *path = tmp_path("keep.h5");
    assert_int_equal(ls_dataset_write(path, &ds), LS_OK);
    /* A data set with a bad value is refused and the file on disk stays as it was. */
    ds.traj[7] = NAN;
    assert_int_equal(ls_dataset_write(path, &ds), LS_ERR);
    assert_error_names(path, "/trajectories[0, 3, 1] is NaN");
    ds.traj[7] = 1.0f;
    assert_int_equal(ls_dataset_read(path, &back), LS_OK);
    assert_int_equal(back.systems, 10);
    ls_dataset_free(&back);
    /* No temporary file was left behind. */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    assert_int_not_equal(access(tmp, F_OK), 0);

    /* Without params: the optional datasets are simply absent. */
    free(ds.params);
    ds.params = NULL;
    assert_int_equal(ls_dataset_write(path, &ds), LS_OK);
    assert_int_equal(ls_dataset_read(path, &back), LS_OK);
    assert_null(back.params);
    assert_non_null(back.initial);
    ls_dataset_free(&back);

    ls_dataset empty = {0};
    assert_int_equal(ls_dataset_write(path, &empty), LS_ERR);
    assert_error_names(path, "nothing to write");
    ls_dataset_free(&ds);
    free(path);
}

/* ---------------------------------------------------------------- config */

static void expect_config_error(ls_lv_config c, const char *what) {
    ls_dataset ds;
    assert_int_equal(ls_lv_generate(&c, &ds), LS_ERR);
    assert_null(ds.traj);
    if (!strstr(ls_last_error(), what)) fail_msg("\"%s\" should contain \"%s\"", ls_last_error(), what);
}

static void test_config_errors(void **state) {
    (void)state;
    ls_lv_config d = ls_lv_config_default(), c;
    assert_int_equal(ls_lv_config_check(&d), LS_OK);
    ls_lv_config k = ls_lv_config_course();
    assert_int_equal(ls_lv_config_check(&k), LS_OK);
    c = d, c.systems = 0;
    expect_config_error(c, "systems must be at least 1");
    c = d, c.steps = 1;
    expect_config_error(c, "steps must be at least 2");
    c = d, c.t_end = 0.0;
    expect_config_error(c, "t_end must be > 0");
    c = d, c.t_end = NAN;
    expect_config_error(c, "t_end must be > 0");
    c = d, c.alpha_min = 0.3;
    expect_config_error(c, "alpha range [0.3, 0.25] is empty");
    c = d, c.gamma_min = -0.1;
    expect_config_error(c, "gamma_min must be > 0");
    c = d, c.y0_max = NAN;
    expect_config_error(c, "y0_max must be a finite number");
    c = d, c.k_min = 0.0, c.k_max = 5.0;
    expect_config_error(c, "k_min must be > 0 (or 0..0 for off)");
    c = d, c.systems = 1 << 30;
    expect_config_error(c, "too large");
}

/* ---------------------------------------------------------------- statistics */

static void test_stats(void **state) {
    (void)state;
    /* 2 systems x 3 steps: prey 1 2 3 | 4 5 10 */
    float traj[12] = {1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 10, 0};
    double time[3] = {0, 1, 2};
    ls_dataset ds = {2, 3, traj, time, NULL, NULL, NULL, NULL};
    ls_var_stats st;
    ls_dataset_stats(&ds, 0, &st);
    assert_float_equal(st.min, 1.0, 1e-12);
    assert_float_equal(st.max, 10.0, 1e-12);
    assert_float_equal(st.mean, 25.0 / 6.0, 1e-12);
    assert_float_equal(st.p50, 3.5, 1e-12);              /* numpy.percentile([1,2,3,4,5,10], 50) */
    assert_float_equal(st.p99, 5.0 + 0.95 * 5.0, 1e-12); /* position 4.95 */
    assert_float_equal(st.peak_p99, 3.0 + 0.99 * 7.0, 1e-12);
    ls_dataset_stats(&ds, 1, &st);
    assert_float_equal(st.max, 0.0, 0.0);
}

/* ---------------------------------------------------------------- splits */

static void test_split_course_sizes(void **state) {
    (void)state;
    ls_split a, b;
    assert_int_equal(ls_split_make(1000, 100, 0.2, 42, &a), LS_OK);
    assert_int_equal(a.n_test, 100);
    assert_int_equal(a.n_val, 180);
    assert_int_equal(a.n_train, 720);
    int seen[1000] = {0};
    for (int i = 0; i < a.n_test; i++) {
        assert_int_equal(a.test[i], i);
        seen[a.test[i]]++;
    }
    for (int i = 0; i < a.n_val; i++) {
        if (i) assert_true(a.val[i] > a.val[i - 1]);
        assert_in_range(a.val[i], 100, 999);
        seen[a.val[i]]++;
    }
    for (int i = 0; i < a.n_train; i++) {
        if (i) assert_true(a.train[i] > a.train[i - 1]);
        assert_in_range(a.train[i], 100, 999);
        seen[a.train[i]]++;
    }
    for (int i = 0; i < 1000; i++) assert_int_equal(seen[i], 1); /* disjoint and covering */

    assert_int_equal(ls_split_make(1000, 100, 0.2, 42, &b), LS_OK);
    assert_memory_equal(a.val, b.val, 180 * sizeof(int));
    assert_memory_equal(a.train, b.train, 720 * sizeof(int));
    ls_split_free(&b);
    assert_int_equal(ls_split_make(1000, 100, 0.2, 7, &b), LS_OK);
    assert_true(memcmp(a.val, b.val, 180 * sizeof(int)) != 0);
    ls_split_free(&b);
    ls_split_free(&a);

    assert_int_equal(ls_split_make(10, 0, 0.0, 1, &a), LS_OK);
    assert_int_equal(a.n_test, 0);
    assert_int_equal(a.n_val, 0);
    assert_int_equal(a.n_train, 10);
    ls_split_free(&a);
}

static void test_split_errors(void **state) {
    (void)state;
    ls_split sp;
    assert_int_equal(ls_split_make(1000, 1000, 0.2, 42, &sp), LS_ERR);
    assert_non_null(strstr(ls_last_error(), "test set"));
    assert_null(sp.train);
    assert_int_equal(ls_split_make(1000, -1, 0.2, 42, &sp), LS_ERR);
    assert_int_equal(ls_split_make(1000, 100, 1.0, 42, &sp), LS_ERR);
    assert_non_null(strstr(ls_last_error(), "validation fraction"));
    assert_int_equal(ls_split_make(1000, 100, -0.1, 42, &sp), LS_ERR);
    assert_int_equal(ls_split_make(1000, 100, NAN, 42, &sp), LS_ERR);
    assert_int_equal(ls_split_make(0, 0, 0.2, 42, &sp), LS_ERR);
    assert_int_equal(ls_split_make(2, 1, 0.9, 42, &sp), LS_ERR); /* nothing left to train on */
    assert_non_null(strstr(ls_last_error(), "training"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_file_loads),
        cmocka_unit_test(test_time_grid_matches_course),
        cmocka_unit_test(test_course_model_is_realistic),
        cmocka_unit_test(test_roundtrip_exact),
        cmocka_unit_test(test_same_seed_same_data),
        cmocka_unit_test(test_trajectories_match_params),
        cmocka_unit_test(test_classic_conserves_v),
        cmocka_unit_test(test_saturating_matches_rk4),
        cmocka_unit_test(test_missing_and_non_hdf5),
        cmocka_unit_test(test_truncated_file),
        cmocka_unit_test(test_bad_structure),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_write_errors_keep_old_file),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_split_course_sizes),
        cmocka_unit_test(test_split_errors),
    };
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the bad-file makers check their own results */
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
