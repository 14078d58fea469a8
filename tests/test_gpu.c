/*
 * test_gpu.c: the GPU decisions that need no GPU (gpu.h), on the CPU: which device a process
 * takes (node-local rank mod the devices, CUDA_VISIBLE_DEVICES honoured, its narrowing before
 * MPI from the launcher's environment), and which CUDA errors are the machine's (a lost context:
 * the sweep stops and resumes in fresh processes) rather than a trial's.
 */
#include "lorasweep/common.h"
#include "lorasweep/gpu.h"
#include "testing.h"

static void test_pick_device(void **state) {
    char e[64];
    /* CUDA_VISIBLE_DEVICES unset: the devices counted, rank mod count */
    assert_int_equal(ls_gpu_pick_device(0, 0, NULL, e, sizeof e), -1);
    assert_int_equal(ls_gpu_pick_device(3, 0, NULL, e, sizeof e), -1);
    assert_int_equal(ls_gpu_pick_device(0, 4, NULL, e, sizeof e), 0);
    assert_string_equal(e, "0");
    assert_int_equal(ls_gpu_pick_device(3, 4, NULL, e, sizeof e), 3);
    assert_string_equal(e, "3");
    assert_int_equal(ls_gpu_pick_device(5, 4, NULL, e, sizeof e), 1); /* wraps */
    assert_string_equal(e, "1");
    assert_int_equal(ls_gpu_pick_device(7, 1, NULL, e, sizeof e), 0);
    assert_string_equal(e, "0");
    /* every worker of a node (consecutive local ranks 1..W after the scheduler's 0) on its own
     * device while W <= devices */
    int seen = 0;
    for (int r = 1; r <= 8; r++) seen |= 1 << ls_gpu_pick_device(r, 8, NULL, e, sizeof e);
    assert_int_equal(seen, 0xff);
    /* set: its entries, the count ignored; none in "" and Slurm's NoDevFiles */
    assert_int_equal(ls_gpu_pick_device(0, 8, "", e, sizeof e), -1);
    assert_int_equal(ls_gpu_pick_device(1, 8, "NoDevFiles", e, sizeof e), -1);
    assert_int_equal(ls_gpu_pick_device(1, 0, "0,1", e, sizeof e), 1);
    assert_string_equal(e, "1");
    assert_int_equal(ls_gpu_pick_device(2, 0, "0,1", e, sizeof e), 0);
    assert_string_equal(e, "0");
    assert_int_equal(ls_gpu_pick_device(1, 2, "3,5,7", e, sizeof e), 1);
    assert_string_equal(e, "5");
    assert_int_equal(ls_gpu_pick_device(5, 0, "3,5,7", e, sizeof e), 2);
    assert_string_equal(e, "7");
    assert_int_equal(ls_gpu_pick_device(1, 0, "GPU-ab12,GPU-cd34", e, sizeof e), 1);
    assert_string_equal(e, "GPU-cd34");
    assert_int_equal(ls_gpu_pick_device(1, 0, "0,,1", e, sizeof e), -1); /* an empty entry */
    /* no rank, no room */
    assert_int_equal(ls_gpu_pick_device(-1, 4, NULL, e, sizeof e), -1);
    assert_int_equal(ls_gpu_pick_device(-1, 0, "0,1", e, sizeof e), -1);
    assert_int_equal(ls_gpu_pick_device(0, 0, "GPU-0123456789", e, 8), -1);
    assert_int_equal(ls_gpu_pick_device(12, 16, NULL, e, 2), -1);
}

static void test_local_rank(void **state) {
    assert_int_equal(ls_gpu_local_rank_of(NULL, NULL, NULL), -1);
    assert_int_equal(ls_gpu_local_rank_of("2", NULL, NULL), 2);
    assert_int_equal(ls_gpu_local_rank_of(NULL, "3", "9"), 3);   /* MPICH before Slurm */
    assert_int_equal(ls_gpu_local_rank_of(NULL, NULL, "0"), 0);
    assert_int_equal(ls_gpu_local_rank_of("1", "3", "9"), 1);    /* Open MPI first */
    assert_int_equal(ls_gpu_local_rank_of("x", "", "4"), 4);     /* not a rank: the next one */
    assert_int_equal(ls_gpu_local_rank_of("-1", "2a", NULL), -1);
}

/* The process-wide binding: the first call that knows the rank narrows CUDA_VISIBLE_DEVICES and
 * decides; later calls keep it (CUDA may have started in between). */
static void test_bind(void **state) {
    unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
    unsetenv("MPI_LOCALRANKID");
    unsetenv("SLURM_LOCALID");
    assert_int_equal(ls_gpu_bind(-1), -1); /* no launcher: nothing decided yet */
    assert_int_equal(ls_gpu_bound_local_rank(), -1);
    setenv("SLURM_LOCALID", "3", 1);
    setenv("CUDA_VISIBLE_DEVICES", "4,5", 1);
    assert_int_equal(ls_gpu_bind(-1), 1);
    assert_string_equal(getenv("CUDA_VISIBLE_DEVICES"), "5");
    assert_int_equal(ls_gpu_bound_device(), 1);
    assert_int_equal(ls_gpu_bound_local_rank(), 3);
    assert_int_equal(ls_gpu_bind(0), 1); /* MPI's rank later: the first choice stands */
    assert_string_equal(getenv("CUDA_VISIBLE_DEVICES"), "5");
    assert_true(ls_gpu_count_device_files() >= 0);
}

static void test_error_classes(void **state) {
    /* the context is lost, or the device or driver is gone: the machine's fault */
    const int fatal[] = {LS_CUDA_ILLEGAL_ADDRESS, LS_CUDA_LAUNCH_FAILURE, LS_CUDA_LAUNCH_TIMEOUT, LS_CUDA_ASSERT,
                         LS_CUDA_ILLEGAL_INSTRUCTION, LS_CUDA_MISALIGNED_ADDRESS, LS_CUDA_INVALID_PC,
                         LS_CUDA_HARDWARE_STACK_ERROR, LS_CUDA_INVALID_ADDRESS_SPACE, LS_CUDA_ECC_UNCORRECTABLE,
                         LS_CUDA_NVLINK_UNCORRECTABLE, LS_CUDA_CONTAINED, LS_CUDA_CONTEXT_IS_DESTROYED,
                         LS_CUDA_UNKNOWN, LS_CUDA_NO_DEVICE, LS_CUDA_DEVICES_UNAVAILABLE,
                         LS_CUDA_INITIALIZATION_ERROR, LS_CUDA_CUDART_UNLOADING, LS_CUDA_SYSTEM_DRIVER_MISMATCH,
                         LS_CUDA_EXTERNAL_DEVICE, LS_CUDA_MPS_CLIENT_TERMINATED, 700, 719};
    for (size_t i = 0; i < sizeof fatal / sizeof *fatal; i++)
        if (!ls_gpu_error_is_fatal(fatal[i])) fail_msg("CUDA error %d taken as recoverable", fatal[i]);
    /* the context still works: the trial that met it fails, the worker goes on */
    const int recoverable[] = {LS_CUDA_SUCCESS, LS_CUDA_MEMORY_ALLOCATION, LS_CUDA_INVALID_VALUE,
                               LS_CUDA_INVALID_CONFIGURATION, LS_CUDA_LAUNCH_OUT_OF_RESOURCES, LS_CUDA_INVALID_DEVICE,
                               2, 600 /* not ready */, 98 /* invalid device function */, 209 /* no kernel image */};
    for (size_t i = 0; i < sizeof recoverable / sizeof *recoverable; i++)
        if (ls_gpu_error_is_fatal(recoverable[i])) fail_msg("CUDA error %d taken as fatal", recoverable[i]);
}

/* A lost device is reported as the machine's fault, as a full disk is (sweep_trial.c sends such
 * a trial back as LS_TRIAL_MACHINE: the sweep stops with exit 4 and nothing is marked failed). */
static void test_machine_mark(void **state) {
    assert_int_equal(ls_error_machine("CUDA backend: %s", "an illegal memory access"), LS_ERR);
    assert_true(ls_error_is_machine());
    assert_string_equal(ls_last_error(), "CUDA backend: an illegal memory access");
    ls_error_prefix("trial 1");
    assert_true(ls_error_is_machine()); /* a prefix keeps the mark */
    assert_string_equal(ls_last_error(), "trial 1: CUDA backend: an illegal memory access");
    ls_error("a bad learning rate");
    assert_false(ls_error_is_machine());
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pick_device),  cmocka_unit_test(test_local_rank),   cmocka_unit_test(test_bind),
        cmocka_unit_test(test_error_classes), cmocka_unit_test(test_machine_mark),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
