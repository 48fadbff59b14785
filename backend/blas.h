/* backend/blas.h - which of OpenBLAS's kernel sets runs the GEMMs.
 *
 * A DYNAMIC_ARCH OpenBLAS (Debian's) picks one kernel set per process when
 * it loads, by CPU model; 0.3.21 does not know AMD Zen 4/5 and gives them
 * its AVX2 "Haswell" kernels, although they run the AVX-512 "SkylakeX" ones
 * (sgemm 1024^3 on one Zen 5 thread: 109 against 204 GFLOP/s). The library
 * keeps its choice in one global, which OpenBLAS's own dynamic-arch entry
 * points (gotoblas_dynamic_quit/_init, honouring OPENBLAS_CORETYPE as at
 * load) can set again. That is process-wide (every user of this OpenBLAS in
 * the process gets the new kernels) and must not race a BLAS call, so only
 * tools that own the process choose: `tlaloc calibrate` measures the
 * kernel sets this CPU can run and records the fastest in the profile
 * (docs/calibrate.md), and tlaloc_blas_tune() (the CLI and the Python
 * package call it once, at start) applies that. Everything here is found
 * with dlsym, so another BLAS, or a single-arch OpenBLAS, just has no
 * choice. */
#ifndef BE_BLAS_H
#define BE_BLAS_H

#include <stdbool.h>
#include <stddef.h>

/* The address of cblas_sgemm in the global scope, where the JIT resolves
 * generated code's calls; a BLAS is loaded RTLD_GLOBAL first when none is
 * there. NULL when no BLAS can be found. */
void *be_blas_global(void);

/* The kernel set OpenBLAS runs now ("Haswell", "SkylakeX", ...), or NULL
 * when the BLAS in this process cannot switch (not a DYNAMIC_ARCH OpenBLAS). */
const char *be_blas_core(void);

/* The kernel sets worth trying on this CPU: those this OpenBLAS has and the
 * CPU (with the OS's saved vector state) can run, the current one first.
 * Returns how many were stored (at most max); 0 when there is no choice. */
int be_blas_cores(const char **out, int max);

/* Switches OpenBLAS to the named kernel set (case-insensitive, as
 * OPENBLAS_CORETYPE). Returns 0, or -1 with a message when this BLAS cannot
 * switch, the name is not one of be_blas_cores, or OpenBLAS chose another. */
int be_blas_set_core(const char *name, char *err, size_t n);

/* The kernel set to use without a measurement: "SkylakeX" when OpenBLAS
 * picked an AVX2 set on a CPU with AVX-512 F/CD/BW/DQ/VL (what OpenBLAS
 * 0.3.22 and later pick there themselves), else NULL (keep its choice). */
const char *be_blas_default_core(void);

/* Once per process, before any BLAS call of the caller's: switches to the
 * stored profile's kernel set (blas.core, written by `tlaloc calibrate`),
 * even over OPENBLAS_CORETYPE (that set was measured running here), else,
 * unless OPENBLAS_CORETYPE is set, to be_blas_default_core(); nothing when
 * TLALOC_BLAS_TUNE=0. Returns the kernel set running
 * afterwards, NULL when this BLAS cannot switch. */
const char *be_blas_tune(void);

#endif
