/* gpurt.h - the GPU runtime: a compiled program as tables (buffers,
 * kernels, the steps that run them), run on a device behind a small
 * vtable: the CUDA driver, loaded with dlopen at run time (gpurt.c), or the
 * host emulator (gpu/sim_dev.c). The gpu engine and the launchers that
 * `tlaloc compile --target ptx` writes run the same code: this header and
 * gpurt.c depend on nothing but libc, dlopen and pthreads, and an AOT
 * launcher carries a copy of both (with GPU_RT_API defined as static).
 *
 *   gpu_rt_cuda c;                           // or a sim device
 *   if (gpu_rt_cuda_open(&c, &prog, ptx, 1, err, n)) ... // "gpu: no CUDA driver ..."
 *   gpu_rt_dev dev = gpu_rt_cuda_dev(&c);
 *   gpu_rt_state s; gpu_rt_init(&s, &prog, &dev);
 *   rc = gpu_rt_run(&s, inputs, NULL, outputs, err, n); // host tensors in and out
 *   gpu_rt_fini(&s); gpu_rt_cuda_close(&c);
 *
 * A program's steps are explicit: copy each input to the device (H2D),
 * launch each kernel, copy each output back (D2H). Device memory is one
 * pool per program, planned for the symbol sizes of the call (temporaries
 * share space once dead) and reused across calls while it is big enough.
 * Return codes: 0; -1 the inputs do not match (dtype, rank, dims); -2 a
 * device or memory failure (message in err); > 0 a run-time error of the
 * program, (node << 4) | kind (kind 1 take index out of range, 2 integer to
 * a negative power, 3 max/min over an empty axis). */
#ifndef GPU_RT_H
#define GPU_RT_H

#include <stddef.h>
#include <stdint.h>

#ifndef GPU_RT_API
#define GPU_RT_API
#endif

/* buffer kinds: the CPU backend's BE_BUF_* */
enum { GPU_RT_IN, GPU_RT_OUT, GPU_RT_TEMP, GPU_RT_CONST, GPU_RT_UNUSED };
/* step kinds */
enum { GPU_RT_H2D, GPU_RT_LAUNCH, GPU_RT_D2H };

/* dtype codes: 0 bool (one byte), 1 int32, 2 int64, 3 float, 4 double; the
 * layout of tlaloc_tensor in the AOT headers */
typedef struct gpu_rt_tensor {
  int dtype;
  int rank;
  int64_t dims[8];
  void *data;
} gpu_rt_tensor;

typedef struct gpu_rt_buf {
  int kind, index, dtype, rank;
  int64_t dims[8]; /* >= 0 concrete, < 0 symbol -d-1 */
} gpu_rt_buf;

typedef struct gpu_rt_kernel {
  const char *name;
  int threads;
  int nwork;
  int64_t work[16]; /* launch: prod ceil(work[i] / wdiv[i]) items, per_block a block */
  int32_t wdiv[16];
  int64_t per_block;
  int nbufs;        /* parameters: the error word, these buffers, these symbols (i64) */
  const int32_t *bufs;
  int nsyms;
  const int32_t *syms;
  int nreads;       /* buffers read and written, for memory planning */
  const int32_t *reads;
  int32_t out;
  /* a matmul cuBLAS may compute instead (f32, f64): operand buffers, their
   * "stored transposed" flags, their ranks and dims as the graph has them */
  int gemm;
  int32_t ga, gb;
  int gta, gtb, gar, gbr;
  int64_t gad[8], gbd[8];
} gpu_rt_kernel;

typedef struct gpu_rt_step {
  int kind;
  int32_t arg; /* a buffer (H2D, D2H) or a kernel (LAUNCH) */
} gpu_rt_step;

typedef struct gpu_rt_prog {
  int nbufs, nsyms, ninputs, noutputs, nkernels, nsteps;
  const gpu_rt_buf *bufs;
  const gpu_rt_kernel *ks;
  const gpu_rt_step *steps;
  /* computes the derived symbols (ir/symdim.h) from the base ones, in
   * place: -1 when one is negative or disagrees with a value the inputs
   * gave it; NULL: the caller gives every symbol (the JIT binds them) */
  int (*derive)(int64_t *syms);
} gpu_rt_prog;

/* A device. Pointers are device addresses (the emulator's: host ones). */
typedef struct gpu_rt_dev {
  void *self;
  const char *name;
  unsigned max_blocks; /* grid size limit: the kernels loop over the rest */
  int (*alloc)(void *self, size_t bytes, uint64_t *ptr, char *err, size_t n);
  void (*release)(void *self, uint64_t ptr);
  int (*h2d)(void *self, uint64_t dst, const void *src, size_t bytes, char *err, size_t n);
  int (*d2h)(void *self, void *dst, uint64_t src, size_t bytes, char *err, size_t n);
  int (*zero)(void *self, uint64_t dst, size_t bytes, char *err, size_t n);
  /* kernel ki on grid x block; ptr and numel per plan buffer, syms per
   * graph symbol, errp the error word */
  int (*launch)(void *self, int ki, unsigned grid, unsigned block, const uint64_t *ptr, const int64_t *numel,
                const int64_t *syms, uint64_t errp, char *err, size_t n);
  /* a matmul kernel computed another way (cuBLAS): 1 done, 0 not done
   * (launch the kernel), -1 failure; NULL: never */
  int (*gemm)(void *self, int ki, const uint64_t *ptr, const int64_t *syms, char *err, size_t n);
  int (*sync)(void *self, char *err, size_t n);
} gpu_rt_dev;

typedef struct gpu_rt_state {
  const gpu_rt_prog *p;
  gpu_rt_dev *dev;
  int64_t *syms, *planned_syms;
  int planned;
  int64_t *numel;  /* per buffer */
  uint64_t *ptr;   /* per buffer: device address (0: none) */
  uint64_t pool, errp;
  size_t pool_bytes;
  int32_t errv;
  /* what the last run did */
  double bytes_h2d, bytes_d2h;
  int launches, gemms;
} gpu_rt_state;

GPU_RT_API void gpu_rt_init(gpu_rt_state *s, const gpu_rt_prog *p, gpu_rt_dev *dev);
GPU_RT_API void gpu_rt_fini(gpu_rt_state *s);
/* Binds the symbols from the inputs (sym_values: nsyms entries, -1 = from
 * the inputs; may be NULL), plans and allocates device memory. */
GPU_RT_API int gpu_rt_prepare(gpu_rt_state *s, const gpu_rt_tensor *inputs, const int64_t *sym_values, char *err,
                              size_t n);
/* Output i's rank and dims after gpu_rt_prepare. */
GPU_RT_API void gpu_rt_output_type(const gpu_rt_state *s, int i, int *dtype, int *rank, int64_t *dims);
/* The steps, in three parts: the H2D steps; the launches (asynchronous);
 * the D2H steps into outputs[i].data (allocated by the caller) and the
 * error word, then a synchronisation. */
GPU_RT_API int gpu_rt_upload(gpu_rt_state *s, const gpu_rt_tensor *inputs, char *err, size_t n);
GPU_RT_API int gpu_rt_exec(gpu_rt_state *s, char *err, size_t n);
GPU_RT_API int gpu_rt_download(gpu_rt_state *s, gpu_rt_tensor *outputs, char *err, size_t n);
/* All of it: prepare, upload, exec, download. */
GPU_RT_API int gpu_rt_run(gpu_rt_state *s, const gpu_rt_tensor *inputs, const int64_t *sym_values,
                          gpu_rt_tensor *outputs, char *err, size_t n);
/* Blocks of kernel ki under the state's sizes (0: not launched). */
GPU_RT_API unsigned gpu_rt_grid(const gpu_rt_state *s, int ki);

/* ---- the CUDA driver ---------------------------------------------------------
 * libcuda.so.1 (or $TLALOC_LIBCUDA) is loaded once per process; a program
 * has its own module, stream and (where libcublas loads) cuBLAS handle, in
 * the primary context of device 0. */
typedef struct gpu_rt_cuda {
  const gpu_rt_prog *p;
  void *ctx, *mod, *stream, *cublas;
  void **fns;
  void *ev[2];
  int sm_count, cc_major, cc_minor;
  char devname[128];
} gpu_rt_cuda;

/* Whether a driver and a GPU are there: 1, or 0 with the reason in why
 * ("gpu: no CUDA driver (libcuda.so.1 not found)", "gpu: no GPU (...)"). */
GPU_RT_API int gpu_rt_cuda_available(char *why, size_t n);
/* Loads image (PTX text, NUL-terminated, or a cubin) as the program's
 * module and finds its kernels. use_cublas: f32/f64 matmuls through cuBLAS
 * when libcublas loads. 0, or -2 with a message. */
GPU_RT_API int gpu_rt_cuda_open(gpu_rt_cuda *c, const gpu_rt_prog *p, const void *image, int use_cublas, char *err,
                                size_t n);
GPU_RT_API void gpu_rt_cuda_close(gpu_rt_cuda *c);
GPU_RT_API gpu_rt_dev gpu_rt_cuda_dev(gpu_rt_cuda *c);
/* Milliseconds of reps runs of gpu_rt_exec (after one untimed), by CUDA
 * events on the program's stream; -1 on failure. */
GPU_RT_API double gpu_rt_cuda_time_exec(gpu_rt_cuda *c, gpu_rt_state *s, int reps, char *err, size_t n);
/* Milliseconds of one launch of kernel ki (the mean of reps, after one
 * untimed) under the state's sizes and device memory (a matmul through
 * cuBLAS where the program uses it); 0 when the kernel has no work; -1 on
 * failure. */
GPU_RT_API double gpu_rt_cuda_time_kernel(gpu_rt_cuda *c, gpu_rt_state *s, int ki, int reps, char *err, size_t n);
/* Device-to-device copy of bytes, reps times: seconds per copy (events);
 * and host-to-device of bytes from pageable memory (wall clock). -1 on
 * failure. */
GPU_RT_API double gpu_rt_cuda_copy_time(gpu_rt_cuda *c, size_t bytes, int reps, char *err, size_t n);
GPU_RT_API double gpu_rt_cuda_h2d_time(gpu_rt_cuda *c, size_t bytes, int reps, char *err, size_t n);

#endif
