/* gpu.h - tlaloc's GPU backend: the CPU backend's kernel plan written once
 * as kernel descriptions (gk.h), lowered to PTX through LLVM's NVPTX target
 * and run through the CUDA driver loaded at run time (engine `gpu`), or run
 * on the host by an emulator of the grid that executes every thread of
 * every block (engine `gpu-sim`). docs/gpu.md describes both.
 *
 *   gpu_options o = gpu_options_default();
 *   tl_error e = {0};
 *   gpu_program *p = gpu_compile(g, &o, &e);     // NULL: e.status, e.msg
 *   gpu_run(p, inputs, syms, outputs, &e);       // as tl_interp_run
 *   gpu_program_free(p);
 *
 * Nothing here links CUDA: libcuda.so.1 and libcublas are opened with
 * dlopen when a `gpu` program is compiled; without them gpu_compile says
 * "gpu: no CUDA driver (libcuda.so.1 not found)" or "gpu: no GPU (...)".
 * libdevice (the CUDA toolkit's math library as LLVM bitcode) is linked
 * into the PTX when it is found; without it f32 exp, log, log1p and tanh
 * are the project's own and other math functions are refused. */
#ifndef TL_GPU_H
#define TL_GPU_H

#include "cost/profile.h"
#include "ir/ir.h"
#include "tensor/tensor.h"

enum { GPU_MATH_AUTO, GPU_MATH_LIBDEVICE, GPU_MATH_OWN };

typedef struct gpu_options {
  int sim;               /* 1: the emulator runs the program (no LLVM, no driver) */
  const char *arch;      /* NULL: $TLALOC_GPU_ARCH, else "sm_90" */
  int math;              /* GPU_MATH_*: AUTO is LIBDEVICE when libdevice is found (the
                            emulator always computes LIBDEVICE's calls with libm) */
  const char *libdevice; /* NULL: $CUDA_HOME/nvvm/libdevice/libdevice.10.bc, else
                            /usr/local/cuda/...; "": none */
  int use_cublas;        /* 1 (default): f32/f64 matmul through cuBLAS when it loads */
  int opt_level;         /* LLVM: 0 none, 1-3 default<O1..O3> (default 2, or
                            $TLALOC_GPU_OPT_LEVEL) */
  unsigned sim_blocks;   /* the emulator's grid limit (default 3: the kernels' grid-stride
                            loops then wrap even on small inputs) */
} gpu_options;

gpu_options gpu_options_default(void);

typedef struct gpu_program gpu_program;

/* Compiles g (which must outlive the program). NULL on failure: an op,
 * dtype or math function the GPU backend lacks (TL_BAD_INPUT), an LLVM
 * failure, no driver or no GPU (TL_BACKEND_FAILED; not for o->sim). */
gpu_program *gpu_compile(const tl_graph *g, const gpu_options *o, tl_error *err);
/* As tl_interp_run: inputs[i] for g->inputs[i], sym_values (may be NULL),
 * outputs[i] new tensors the caller frees; -1 on failure: bad inputs or a
 * kernel's run-time error (TL_BAD_INPUT), a driver call (TL_BACKEND_FAILED). */
int gpu_run(gpu_program *p, tl_tensor *const *inputs, const int64_t *sym_values, tl_tensor **outputs,
            tl_error *err);
/* Into the caller's buffers (dtype and dims must be the outputs'). */
int gpu_run_into(gpu_program *p, tl_tensor *const *inputs, const int64_t *sym_values, tl_tensor *const *outputs,
                 tl_error *err);
/* A JSON object: engine, compile times, kernels, the program's steps
 * (host-to-device copies, launches, device-to-host copies), the last run's
 * bytes moved. The caller frees it. */
char *gpu_describe(const gpu_program *p);
void gpu_program_free(gpu_program *p);

/* ---- timing (the `gpu` engine only; tlaloc calibrate, cost-report) ------------------
 * After a gpu_run with the inputs to time, their device copies stay: */
/* The kernels of its plan (a split reduction's two GPU kernels count as
 * their plan kernel). */
int gpu_program_kernels(const gpu_program *p);
/* Seconds per run of plan kernel ki alone (a split reduction's two
 * kernels together), or of all the program's kernels (ki = -1), by CUDA
 * events over reps runs after one untimed; -1 with a message (no GPU
 * program, or a failure). */
double gpu_time(gpu_program *p, int ki, int reps, char *err, size_t n);
/* Seconds per copy of bytes: device to device (events), or host to device
 * from pageable memory (h2d: wall clock, the best of reps); -1 with a
 * message. */
double gpu_copy_seconds(gpu_program *p, size_t bytes, int reps, int h2d, char *err, size_t n);
/* The GPU's name ("" for the emulator). */
const char *gpu_device_name(const gpu_program *p);

/* ---- PTX ------------------------------------------------------------------------ */

typedef struct gpu_ptx_stats {
  double plan_ms, build_ms, lower_ms, link_ms, opt_ms, emit_ms, total_ms;
  int nkernels;
  int libdevice; /* linked */
} gpu_ptx_stats;

/* The PTX of g's kernels (a NUL-terminated string the caller frees), their
 * names k0, k1, ... (prefixed by name_prefix when given); st may be NULL. */
char *gpu_ptx(const tl_graph *g, const gpu_options *o, const char *name_prefix, gpu_ptx_stats *st, char *err,
              size_t n);
/* The architecture o asks for ("sm_90" by default). */
const char *gpu_arch(const gpu_options *o);
/* The libdevice o would link (into buf), or NULL when there is none. */
const char *gpu_libdevice_path(const gpu_options *o, char *buf, size_t n);
/* 1 when a CUDA driver and a GPU are there, else 0 with the reason. */
int gpu_available(char *why, size_t n);

/* ---- ahead of time ---------------------------------------------------------------- */

typedef struct gpu_aot_params {
  const char *name;        /* prefix of the C names; NULL: the graph's name */
  const char *ptx_path;    /* the PTX to write */
  const char *header_path; /* the C header; NULL: none */
  const char *launcher_path; /* the C launcher source; NULL: next to the header, NAME_launch.c */
} gpu_aot_params;

/* Writes g's kernels as PTX, a header declaring the C ABI (as `tlaloc
 * compile`'s CPU header, plus NAME_init / NAME_release and a device-side
 * run for timing), and a launcher source that carries the GPU runtime
 * (gpurt.c) and the PTX: cc NAME_launch.c -ldl -lpthread, no tlaloc, no
 * LLVM, no CUDA library at link time. 0, or -1 with a message. */
int gpu_compile_aot(const tl_graph *g, const gpu_options *o, gpu_aot_params ap, tl_error *err);

#endif
