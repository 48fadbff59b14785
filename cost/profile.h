/* cost/profile.h - what the time model knows about this machine.
 *
 * `tlaloc calibrate` measures the machine and stores a profile; the `time`
 * cost property and `tlaloc cost-report` read it. Without a stored profile
 * the defaults are the figures measured on the project's reference machine
 * (2-vCPU AVX-512 VM, ../shared/bench/machine-baselines.md), so the model
 * always has numbers, and a report says which ones it used.
 *
 * The file is plain text, one "key value" pair per line, '#' comments:
 *
 *   # tlaloc profile 1
 *   threads 2
 *   bw_1 1.55e10          bytes/s, triad-style stream on one thread
 *   elem.exp 0.35         ns per f32 element on one thread
 *
 * Location: $TLALOC_PROFILE if set, else $XDG_CACHE_HOME/tlaloc/profile.txt,
 * else ~/.cache/tlaloc/profile.txt. No global state: callers load a profile
 * into their own struct. */
#ifndef TL_PROFILE_H
#define TL_PROFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "ir/ir.h"

#define TL_PROFILE_MAX_LEVELS 16

/* tl_profile.own_math bits (the backend's be_options.own_math, the same) */
enum { TL_OWN_EXP32 = 1, TL_OWN_TANH32 = 2 };

typedef struct tl_profile {
  bool measured;          /* false: the built-in defaults */
  char cpu[128];          /* CPU model name at measurement time */
  int threads;            /* threads a large kernel is split over */
  double bw_1, bw_all;    /* stream bandwidth, bytes/s: one thread, all threads */
  double flops_1, flops_all; /* f32 multiply-add throughput, flop/s (vectorised) */
  double gemm_f32, gemm_f64; /* BLAS GEMM rate on large square matrices, flop/s */
  char blas_core[32];      /* OpenBLAS kernel set measured fastest (backend/blas.h); "": not
                           * measured, keep the default choice */
  double gemm_half;       /* a GEMM whose smallest dim is s runs at s / (s + gemm_half) of that
                           * rate (packing and edge blocks weigh on small products) */
  double kernel_overhead; /* seconds per kernel call (dispatch, loop setup) */
  double par_overhead;    /* extra seconds per kernel split over threads (waking the worker) */
  double run_overhead;    /* seconds per program call (binding inputs, allocating outputs) */
  double parallel_min_elems; /* kernels below this many elements stay on one thread */
  double f64_factor;      /* f64 element math costs this many times f32's */
  double row_ns;          /* ns per row and pass of a row kernel (reduction, softmax) */
  double fault_bw;        /* bytes/s of first-touching fresh pages (an output of 32 MiB
                             or more is a fresh mapping on every call) */
  /* Caches: a kernel moving at most level_bytes[i] bytes (and more than the
   * level before) streams at level_bw_1[i] / level_bw_all[i] instead of
   * bw_1 / bw_all. Sorted by size; file lines "mem.BYTES BW_1 BW_ALL".
   * The defaults have none. */
  int nlevels;
  double level_bytes[TL_PROFILE_MAX_LEVELS], level_bw_1[TL_PROFILE_MAX_LEVELS],
      level_bw_all[TL_PROFILE_MAX_LEVELS];
  /* Per-element cost of the op's arithmetic on one thread in ns (f32,
   * vectorised, data in cache): what a roofline's "flops" cannot express for
   * exp/log/tanh/erf… 0 means "one flop" (plain arithmetic). */
  double elem_ns[TL_OP_COUNT];
  /* The same on f64, measured ("elem64.OP"); 0: elem_ns × f64_factor. */
  double elem_ns_f64[TL_OP_COUNT];
  /* Which f32 math the backend calls where it has a choice: bit
   * TL_OWN_EXP32 / TL_OWN_TANH32 set when tlaloc's own inline kernel was
   * measured faster than libmvec's ("vmath.exp own" / "vmath.tanh libmvec"
   * in the file). The defaults: both on AMD family 26 (Zen 5), where every
   * calibration chose them, else none (libmvec, sound on every machine). */
  unsigned own_math;
  /* The GPU and the link to it (docs/gpu.md, "Placement"). The defaults
   * are an H100/H200-class card (SXM, HBM3/HBM3e) on PCIe 5 with pageable
   * host memory; `tlaloc calibrate` measures the GPU and the link when
   * there is one ("gpu NAME" in the file says so). */
  char gpu[128];          /* the GPU the figures are for; "" for the defaults */
  double gpu_bw;          /* device memory, bytes/s, bytes read plus written */
  double gpu_flops;       /* f32 arithmetic, flop/s (FMA counted as two) */
  double gpu_flops_f64;   /* the same in f64 */
  double gpu_gemm_f32, gpu_gemm_f64; /* cuBLAS matmul rates, flop/s */
  double gpu_math_factor; /* a math function's element (exp, log, ...) costs elem_ns /
                             gpu_math_factor ns on the whole GPU */
  double gpu_launch;      /* seconds per kernel launch */
  double gpu_sync;        /* seconds per program call: the error word back, a stream sync */
  double link_bw;         /* host <-> device copies, bytes/s */
  double link_latency;    /* seconds per copy */
} tl_profile;

/* The built-in defaults (measured once on the reference machine). */
void tl_profile_default(tl_profile *p);

/* Path of the stored profile (see above) into buf; returns buf, or NULL when
 * no location can be derived (no HOME). */
const char *tl_profile_path(char *buf, size_t n);

/* Reads a profile file over the defaults. Returns 0 on success, 1 when the
 * file does not exist (p holds the defaults), 2 on a malformed file (err
 * holds "path:line: message"; p holds the defaults). */
int tl_profile_load(const char *path, tl_profile *p, char *err, size_t n);

/* Loads the stored profile if there is one, else the defaults. A malformed
 * stored profile is an error (returns 2, message in err) rather than being
 * silently ignored. */
int tl_profile_get(tl_profile *p, char *err, size_t n);

/* Writes the profile atomically (temp file + rename), creating the folder.
 * Returns 0, or 2 with a message. */
int tl_profile_save(const char *path, const tl_profile *p, char *err, size_t n);

/* The roofline for one kernel: overhead + max(bytes / bandwidth,
 * flops / flop-rate + math + gemm flops / GEMM rate), where math is the sum
 * of per-element op costs (elem_ns × elements, scaled by f64_factor for
 * f64) and the kernel runs on all threads (paying par_overhead) when it has
 * at least parallel_min_elems elements. The bandwidth is that of the
 * smallest cache level holding the kernel's bytes, else memory's; levels
 * are read so that the time never decreases as bytes grow. A program adds
 * run_overhead once. Seconds. */
typedef struct tl_kernel_work {
  double elems;   /* elements the kernel's loop covers (for the thread split) */
  double bytes;   /* bytes read from and written to memory (fused intermediates excluded) */
  double flops;   /* plain arithmetic */
  double math_ns; /* sum over the kernel's ops of elem_ns × elements (f64 already scaled) */
  double gemm_flops_f32, gemm_flops_f64; /* work done by BLAS */
  double gemm_extra_f32, gemm_extra_f64; /* what small products cost more, as flops at the
                                          * large-matrix rate (gemm_half) */
} tl_kernel_work;
double tl_profile_kernel_time(const tl_profile *p, const tl_kernel_work *w);

/* The work of one op run on its own: every operand read from memory and the
 * result written (a fused kernel sums its ops' flops and math_ns but counts
 * only the bytes that cross its boundary). Symbolic dims count as sym_size
 * elements. Shape ops that are index maps (transpose, broadcast_to, slice,
 * reshape, ...) do no arithmetic; constants and inputs do no work at all.
 * A row kernel (reduction, softmax) adds row_ns per row and pass
 * (tl_row_passes) to math_ns. */
void tl_node_work(const tl_profile *p, tl_op op, const tl_attrs *attrs, const tl_type *out,
                  const tl_type *const *in, int nin, double sym_size, tl_kernel_work *w);

/* The same roofline on the GPU: gpu_launch + max(bytes / gpu_bw, flops /
 * rate + math_ns / gpu_math_factor + gemm flops / cuBLAS rate), where the
 * f64 rates apply when f64 is set. Seconds. */
double tl_profile_gpu_kernel_time(const tl_profile *p, const tl_kernel_work *w, bool f64);

/* Seconds to copy bytes between host and device: link_latency + bytes /
 * link_bw (0 for no bytes). */
double tl_profile_transfer_time(const tl_profile *p, double bytes);

/* Passes a row kernel makes over its operand (backend/lower_rows.c): 3 for
 * softmax and log_softmax (max, sum of exponentials, write), 2 for
 * logsumexp, 1 for the other reductions. A producer fused into the kernel
 * is computed again in every pass. */
int tl_row_passes(tl_op op);

/* Elements of t with symbolic dims counted as sym_size. */
double tl_type_elems(const tl_type *t, double sym_size);

#endif
