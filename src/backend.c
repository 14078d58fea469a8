/* backend.c: choosing a backend by name (backend.h), the same in builds with and without CUDA. */
#include <stdio.h>
#include <string.h>

#include "lorasweep/backend.h"
#include "lorasweep/common.h"

const ls_backend *ls_backend_named(const char *name, int *picked_cuda, char *why, size_t why_cap) {
    int is_cpu = strcmp(name, "cpu") == 0, is_cuda = strcmp(name, "cuda") == 0, is_auto = strcmp(name, "auto") == 0;
    if (picked_cuda) *picked_cuda = 0;
    if (!is_cpu && !is_cuda && !is_auto) {
        ls_error("backend '%s' is not one of cpu, cuda, auto", name);
        return NULL;
    }
    if (is_cpu) return ls_backend_cpu();
#ifdef LS_HAVE_CUDA
    /* a device whose context was lost (a machine fault) is not silently swapped for the CPU: the
     * process stops, and its successor gets the device back */
    if (ls_cuda_lost()) return ls_backend_cuda(); /* NULL with the machine fault */
    char reason[256];
    int usable = ls_cuda_available(reason, sizeof reason);
    if (why) snprintf(why, why_cap, "%s", reason);
    if (!usable) {
        if (is_auto) return ls_backend_cpu();
        ls_error("cuda was asked for, but no CUDA device is usable (%s)", reason);
        return NULL;
    }
    const ls_backend *be = ls_backend_cuda(); /* NULL with its error when the device will not start */
    if (!be && is_auto && !ls_cuda_lost()) {
        if (why) snprintf(why, why_cap, "CUDA failed to start: %s", ls_last_error());
        return ls_backend_cpu();
    }
    if (be && picked_cuda) *picked_cuda = 1;
    return be;
#else
    if (why) snprintf(why, why_cap, "this build has no CUDA backend");
    if (is_auto) return ls_backend_cpu();
    ls_error("cuda was asked for, but this build has no CUDA backend");
    return NULL;
#endif
}
