/* measure/calibrate.h - the time model against the clock: tl_calibrate
 * (`tlaloc calibrate`) measures this machine into a tl_profile
 * (cost/profile.h), and tl_cost_report_measure (`tlaloc cost-report`) sets
 * the model's prediction for each kernel of a compiled program beside the
 * measured time. docs/calibrate.md describes both; the commands themselves
 * are cli/cmd_measure.c.
 *
 * Every measurement goes through the backend itself (be_compile + be_run):
 * what the model needs is what tlaloc's generated code achieves here, not
 * what a hand-written loop would. */
#ifndef TL_CALIBRATE_H
#define TL_CALIBRATE_H

#include <stdbool.h>
#include <stdio.h>

#include "backend/backend.h"
#include "cost/profile.h"

/* Minimum wall time of be_run(p, ...) in seconds, over at least `runs`
 * runs and until `budget_s` has been spent (at most 100000 runs), after one
 * untimed warm-up run (it plans memory and starts the worker thread).
 * Outputs are freed. -1 with a message on a run error. */
double tl_time_run(be_program *p, tl_tensor *const *inputs, const int64_t *syms, int runs,
                   double budget_s, char *err, size_t n);

/* Inputs for g under syms (all bound): floats uniform in [0.5, 1.5) so that
 * log, sqrt and pow stay in their domain and the math library's
 * special-value paths stay out of the timings; integers in [0, 3); bools
 * alternate. inputs has g->ninputs entries. -1 with a message. */
int tl_timing_inputs(const tl_graph *g, const int64_t *syms, tl_tensor **inputs, char *err, size_t n);

/* Measures this machine (see docs/calibrate.md). quick: smaller arrays and
 * fewer runs, a few seconds in all. A line per measurement goes to log when
 * it is not NULL. 0, or -1 with a message (a compile or run failure). */
int tl_calibrate(tl_profile *p, bool quick, FILE *log, char *err, size_t n);

/* The model's view of one kernel of a backend plan. */
typedef struct tl_kernel_cost {
  int kind;          /* BE_K_* of backend/be_internal.h */
  int32_t node;      /* the node it computes (its root) */
  double elems;      /* elements its loop covers (a reduction: its operand's) */
  bool parallel;     /* split over the profile's threads */
  tl_kernel_work w;  /* work; w.elems is 0 when the backend keeps it on one thread */
  double predicted;  /* seconds, tl_profile_kernel_time */
} tl_kernel_cost;

typedef struct tl_program_cost {
  tl_kernel_cost *ks;
  int nks;
  double total; /* run_overhead + the sum of the kernels' predictions */
} tl_program_cost;

/* Predicts the time of g as the backend compiles it (be_plan_build), with
 * the symbolic dims bound by syms (g->nsyms entries, all >= 0). 0, or -1
 * with a message (a plan error: unsupported op). */
int tl_cost_predict(const tl_profile *p, const tl_graph *g, const int64_t *syms, tl_program_cost *c,
                    char *err, size_t n);
void tl_program_cost_free(tl_program_cost *c);

/* One kernel of a cost report: its prediction beside its measured time.
 * Both count one be_run call's fixed cost, since the kernel is timed as a
 * program of its own (see cost_report.c). */
typedef struct tl_report_kernel {
  const char *kind;  /* "fused", "reduce", "softmax", "matmul", "take-chk" */
  const char *bound; /* what bounds the prediction: "memory", "compute",
                        "gemm" or "call" */
  double predicted;  /* seconds: run_overhead + the kernel's prediction */
  double measured;   /* seconds, the minimum over the runs; -1: not measured */
  bool not_one;      /* compiled alone, it became more than one kernel */
  char note[256];    /* why it was not measured ("" when it was, or when it
                        cannot run alone: take's index check) */
} tl_report_kernel;

typedef struct tl_cost_report {
  tl_program_cost pc;   /* the prediction; pc.ks[i] is kernel i's */
  tl_report_kernel *ks; /* [pc.nks] */
  int nks;
  int nunmeasured;      /* kernels left unmeasured by time_limit_s */
  double measured;      /* seconds, the whole program through be_run */
} tl_cost_report;

/* How tl_cost_report_measure measures: each figure is the minimum of at
 * least `runs` runs and until budget_s has been spent (tl_time_run); the
 * kernels are compiled at opt_level (-1: the backend's default; 0..3 as
 * be_options); past time_limit_s seconds (0: none) of kernel measurements
 * the remaining kernels are predicted only. The whole program is always
 * measured. */
typedef struct tl_cost_report_opts {
  int runs;
  double budget_s;
  int opt_level;
  double time_limit_s;
} tl_cost_report_opts;

/* What `tlaloc cost-report` shows: predicts g under syms (all bound, as
 * tl_cost_predict), then measures the whole program and each kernel compiled
 * alone (tl_time_run with runs and budget_s). 0, or -1 with a message (the
 * prediction, or the whole program's compile or run, failed); a kernel that
 * could not be measured has measured -1 and the reason in its note. Release
 * with tl_cost_report_free (also safe after a failure). */
int tl_cost_report_measure(const tl_profile *p, const tl_graph *g, const int64_t *syms, tl_cost_report_opts o,
                           tl_cost_report *r, char *err, size_t n);
void tl_cost_report_free(tl_cost_report *r);

/* ---- the GPU (calibrate_gpu.c) ---------------------------------------------
 * The GPU's and the link's figures of p, measured through the gpu engine
 * when a driver and a GPU are there (tl_calibrate runs it last); without
 * them a line on lg says why they keep their defaults. 0, or -1 with a
 * message. */
int tl_calibrate_gpu(tl_profile *p, bool quick, FILE *lg, char *err, size_t n);

/* The GPU's side of a cost report: per kernel of the plan, the GPU's
 * roofline prediction and (with a GPU) the time of that kernel alone by
 * CUDA events; the whole call predicted (kernels, copies in and out, sync)
 * and measured (wall clock of gpu_run, minimum of runs). Measurements are
 * -1 without a GPU (why says what is missing; with one, the GPU's name). */
typedef struct tl_gpu_report {
  int nks;
  double *predicted, *measured; /* seconds, per kernel */
  double pred_total, pred_h2d, pred_d2h, meas_total;
  bool same_kernels; /* the GPU program's kernels are the plan's (in place over inputs can differ) */
  char why[512];
} tl_gpu_report;
int tl_gpu_report_measure(const tl_profile *p, const tl_graph *g, const int64_t *syms, int runs, tl_gpu_report *r,
                          char *err, size_t n);
void tl_gpu_report_free(tl_gpu_report *r);

#endif
