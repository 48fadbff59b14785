/* gpurt.c - the GPU runtime (gpurt.h): binding, device memory, the steps
 * of a program, and the CUDA driver and cuBLAS loaded with dlopen.
 *
 * Self-contained on purpose: libc, dlopen and pthread_once only, no CUDA
 * header and no link-time CUDA library, so the same file is compiled into
 * libtlaloc and copied into every AOT launcher. The driver's entry points
 * are declared below with the types of cuda.h's ABI (handles as pointers to
 * the same struct tags, enums as unsigned int, CUdeviceptr as unsigned long
 * long); tests/gpu checks each against cuda.h where the toolkit is
 * installed. Symbol names are the versioned ones cuda.h maps to
 * (cuMemAlloc_v2, ...). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpurt.h"

/* This file is also pasted verbatim into every AOT launcher, which has
 * only libc; built inside tlaloc (GPURT_IN_TLALOC) its host allocations go
 * through tlaloc's allocation hook like every other module's. */
#ifdef GPURT_IN_TLALOC
#include "util/alloc.h"
#define RT_MALLOC tl_try_malloc
#define RT_CALLOC tl_try_calloc
#define RT_FREE tl_free
#define RT_KEEP tl_keep /* state kept across runs: an unwind must not free it */
#else
#define RT_MALLOC malloc
#define RT_CALLOC calloc
#define RT_FREE free
#define RT_KEEP(p) ((void)(p))
#endif

#define GPU_RT_ALIGN 256 /* every buffer starts here: the kernels' 16-byte accesses rely on it */

static size_t rt_round(size_t b) { return (b + GPU_RT_ALIGN - 1) & ~(size_t)(GPU_RT_ALIGN - 1); }
static const int rt_esize[5] = {1, 4, 8, 4, 8};

/* ---- the program's steps ---------------------------------------------------------- */

GPU_RT_API void gpu_rt_init(gpu_rt_state *s, const gpu_rt_prog *p, gpu_rt_dev *dev) {
  memset(s, 0, sizeof *s);
  s->p = p;
  s->dev = dev;
}

GPU_RT_API void gpu_rt_fini(gpu_rt_state *s) {
  if (s->pool && s->dev) s->dev->release(s->dev->self, s->pool);
  RT_FREE(s->syms);
  RT_FREE(s->planned_syms);
  RT_FREE(s->numel);
  RT_FREE(s->ptr);
  memset(s, 0, sizeof *s);
}

static int64_t rt_dim(const gpu_rt_state *s, int64_t d) { return d >= 0 ? d : s->syms[-d - 1]; }

/* Whether symbol i sizes a buffer, a launch or a cuBLAS operand, or is a
 * kernel's parameter. */
static int rt_sym_used(const gpu_rt_prog *p, int i) {
  int64_t d = -(int64_t)i - 1;
  for (int b = 0; b < p->nbufs; b++)
    for (int k = 0; k < p->bufs[b].rank; k++)
      if (p->bufs[b].dims[k] == d) return 1;
  for (int q = 0; q < p->nkernels; q++) {
    const gpu_rt_kernel *k = &p->ks[q];
    for (int j = 0; j < k->nwork; j++)
      if (k->work[j] == d) return 1;
    for (int j = 0; j < k->nsyms; j++)
      if (k->syms[j] == i) return 1;
    for (int j = 0; k->gemm && j < 8; j++)
      if ((j < k->gar && k->gad[j] == d) || (j < k->gbr && k->gbd[j] == d)) return 1;
  }
  return 0;
}

/* Places every buffer in one pool: the error word, inputs and outputs
 * each in their own place, temporaries first fit by live range (a kernel's
 * reads and its output are live together, so they never share memory). */
static int rt_plan(gpu_rt_state *s, char *err, size_t n) {
  const gpu_rt_prog *p = s->p;
  int nb = p->nbufs;
  size_t *off = RT_CALLOC((size_t)nb + 1, sizeof *off), *size = RT_CALLOC((size_t)nb + 1, sizeof *size);
  int *first = RT_MALLOC(((size_t)nb + 1) * sizeof *first), *last = RT_MALLOC(((size_t)nb + 1) * sizeof *last);
  int *placed = RT_MALLOC(((size_t)nb + 1) * sizeof *placed), rc = 0, np = 0;
  if (!off || !size || !first || !last || !placed) {
    snprintf(err, n, "gpu: out of host memory");
    rc = -2;
    goto done;
  }
  for (int b = 0; b < nb; b++) {
    const gpu_rt_buf *bb = &p->bufs[b];
    int64_t ne = 1;
    for (int i = 0; i < bb->rank; i++) {
      int64_t d = rt_dim(s, bb->dims[i]);
      if (d && ne > ((int64_t)1 << 40) / d) {
        snprintf(err, n, "gpu: buffer %d is too large", b);
        rc = -2;
        goto done;
      }
      ne *= d;
    }
    s->numel[b] = ne;
    size[b] = bb->kind <= GPU_RT_TEMP ? rt_round((size_t)(ne ? ne : 1) * (size_t)rt_esize[bb->dtype]) : 0;
    first[b] = last[b] = -1;
  }
  for (int k = 0; k < p->nkernels; k++) {
    const gpu_rt_kernel *kk = &p->ks[k];
    if (kk->out >= 0) {
      if (first[kk->out] < 0) first[kk->out] = k;
      if (last[kk->out] < k) last[kk->out] = k;
    }
    for (int r = 0; r < kk->nreads; r++)
      if (last[kk->reads[r]] < k) last[kk->reads[r]] = k;
  }
  size_t total = GPU_RT_ALIGN; /* the error word */
  for (int b = 0; b < nb; b++)
    if (p->bufs[b].kind == GPU_RT_IN || p->bufs[b].kind == GPU_RT_OUT) {
      off[b] = total;
      total += size[b];
    }
  size_t tbase = total, tend = total;
  for (int k = 0; k < p->nkernels; k++)
    for (int b = 0; b < nb; b++) {
      if (p->bufs[b].kind != GPU_RT_TEMP || first[b] != k) continue;
      size_t o = tbase;
      for (int moved = 1; moved;) {
        moved = 0;
        for (int i = 0; i < np; i++) {
          int q = placed[i];
          int live = !(last[q] < first[b] || last[b] < first[q]);
          if (live && o < off[q] + size[q] && off[q] < o + size[b]) {
            o = off[q] + size[q];
            moved = 1;
          }
        }
      }
      off[b] = o;
      placed[np++] = b;
      if (o + size[b] > tend) tend = o + size[b];
    }
  total = tend;
  if (total > s->pool_bytes) {
    if (s->pool) s->dev->release(s->dev->self, s->pool);
    s->pool = 0;
    s->pool_bytes = 0;
    if ((rc = s->dev->alloc(s->dev->self, total, &s->pool, err, n)) != 0) goto done;
    s->pool_bytes = total;
  }
  s->errp = s->pool;
  for (int b = 0; b < nb; b++) s->ptr[b] = size[b] ? s->pool + off[b] : 0;
done:
  RT_FREE(off);
  RT_FREE(size);
  RT_FREE(first);
  RT_FREE(last);
  RT_FREE(placed);
  return rc;
}

GPU_RT_API int gpu_rt_prepare(gpu_rt_state *s, const gpu_rt_tensor *in, const int64_t *sym_values, char *err,
                              size_t n) {
  const gpu_rt_prog *p = s->p;
  if (!s->syms) {
    s->syms = RT_CALLOC((size_t)p->nsyms + 1, sizeof *s->syms);
    s->planned_syms = RT_CALLOC((size_t)p->nsyms + 1, sizeof *s->planned_syms);
    s->numel = RT_CALLOC((size_t)p->nbufs + 1, sizeof *s->numel);
    s->ptr = RT_CALLOC((size_t)p->nbufs + 1, sizeof *s->ptr);
    if (!s->syms || !s->planned_syms || !s->numel || !s->ptr) {
      RT_FREE(s->syms);
      RT_FREE(s->planned_syms);
      RT_FREE(s->numel);
      RT_FREE(s->ptr);
      s->syms = s->planned_syms = NULL;
      s->numel = NULL;
      s->ptr = NULL;
      snprintf(err, n, "gpu: out of host memory");
      return -2;
    }
    RT_KEEP(s->syms);
    RT_KEEP(s->planned_syms);
    RT_KEEP(s->numel);
    RT_KEEP(s->ptr);
  }
  for (int i = 0; i < p->nsyms; i++) s->syms[i] = sym_values ? sym_values[i] : -1;
  for (int b = 0; b < p->nbufs; b++) {
    const gpu_rt_buf *bb = &p->bufs[b];
    if (bb->kind != GPU_RT_IN) continue;
    const gpu_rt_tensor *x = &in[bb->index];
    if (x->dtype != bb->dtype || x->rank != bb->rank) {
      snprintf(err, n, "gpu: input %d: dtype or rank does not match", bb->index);
      return -1;
    }
    for (int i = 0; i < x->rank; i++) {
      int64_t d = bb->dims[i];
      if (d >= 0 ? x->dims[i] != d : (s->syms[-d - 1] >= 0 && s->syms[-d - 1] != x->dims[i])) {
        snprintf(err, n, "gpu: input %d: dim %d is %lld, expected %lld", bb->index, i, (long long)x->dims[i],
                 (long long)(d >= 0 ? d : s->syms[-d - 1]));
        return -1;
      }
      if (d < 0) s->syms[-d - 1] = x->dims[i];
    }
  }
  if (p->derive && p->derive(s->syms)) {
    snprintf(err, n, "gpu: a derived dim is negative or disagrees with the inputs");
    return -1;
  }
  for (int i = 0; i < p->nsyms; i++)
    if (s->syms[i] < 0) {
      /* one nothing here reads (a staged segment before the loop that
       * binds it, say) takes 0 */
      if (!rt_sym_used(p, i)) {
        s->syms[i] = 0;
        continue;
      }
      snprintf(err, n, "gpu: symbol %d has no size", i);
      return -1;
    }
  if (!s->planned || memcmp(s->syms, s->planned_syms, (size_t)p->nsyms * sizeof *s->syms)) {
    s->planned = 0;
    int rc = rt_plan(s, err, n);
    if (rc) return rc;
    memcpy(s->planned_syms, s->syms, (size_t)p->nsyms * sizeof *s->syms);
    s->planned = 1;
  }
  return 0;
}

GPU_RT_API void gpu_rt_output_type(const gpu_rt_state *s, int i, int *dtype, int *rank, int64_t *dims) {
  for (int b = 0; b < s->p->nbufs; b++) {
    const gpu_rt_buf *bb = &s->p->bufs[b];
    if (bb->kind != GPU_RT_OUT || bb->index != i) continue;
    *dtype = bb->dtype;
    *rank = bb->rank;
    for (int d = 0; d < 8; d++) dims[d] = d < bb->rank ? rt_dim(s, bb->dims[d]) : 0;
  }
}

GPU_RT_API unsigned gpu_rt_grid(const gpu_rt_state *s, int ki) {
  const gpu_rt_kernel *k = &s->p->ks[ki];
  int64_t work = 1;
  for (int i = 0; i < k->nwork; i++) {
    int64_t d = rt_dim(s, k->work[i]), q = k->wdiv[i] > 1 ? k->wdiv[i] : 1;
    work *= (d + q - 1) / q;
  }
  if (work <= 0) return 0;
  int64_t blocks = (work + k->per_block - 1) / k->per_block;
  if (blocks > (int64_t)s->dev->max_blocks) blocks = s->dev->max_blocks;
  return blocks < 1 ? 1 : (unsigned)blocks;
}

GPU_RT_API int gpu_rt_upload(gpu_rt_state *s, const gpu_rt_tensor *in, char *err, size_t n) {
  const gpu_rt_prog *p = s->p;
  s->bytes_h2d = 0;
  for (int i = 0; i < p->nsteps; i++) {
    if (p->steps[i].kind != GPU_RT_H2D) continue;
    int b = p->steps[i].arg;
    size_t bytes = (size_t)s->numel[b] * (size_t)rt_esize[p->bufs[b].dtype];
    if (!bytes) continue;
    int rc = s->dev->h2d(s->dev->self, s->ptr[b], in[p->bufs[b].index].data, bytes, err, n);
    if (rc) return rc;
    s->bytes_h2d += (double)bytes;
  }
  return 0;
}

GPU_RT_API int gpu_rt_exec(gpu_rt_state *s, char *err, size_t n) {
  const gpu_rt_prog *p = s->p;
  int rc = s->dev->zero(s->dev->self, s->errp, 4, err, n);
  s->launches = s->gemms = 0;
  for (int i = 0; i < p->nsteps && !rc; i++) {
    if (p->steps[i].kind != GPU_RT_LAUNCH) continue;
    int ki = p->steps[i].arg;
    unsigned grid = gpu_rt_grid(s, ki);
    if (!grid) continue;
    if (p->ks[ki].gemm && s->dev->gemm) {
      rc = s->dev->gemm(s->dev->self, ki, s->ptr, s->syms, err, n);
      if (rc == 1) {
        s->gemms++;
        rc = 0;
        continue;
      }
      if (rc) return -2;
    }
    rc = s->dev->launch(s->dev->self, ki, grid, (unsigned)p->ks[ki].threads, s->ptr, s->numel, s->syms, s->errp,
                        err, n);
    s->launches++;
  }
  return rc;
}

GPU_RT_API int gpu_rt_download(gpu_rt_state *s, gpu_rt_tensor *out, char *err, size_t n) {
  const gpu_rt_prog *p = s->p;
  s->bytes_d2h = 0;
  for (int i = 0; i < p->nsteps; i++) {
    if (p->steps[i].kind != GPU_RT_D2H) continue;
    int b = p->steps[i].arg;
    size_t bytes = (size_t)s->numel[b] * (size_t)rt_esize[p->bufs[b].dtype];
    if (!bytes) continue;
    int rc = s->dev->d2h(s->dev->self, out[p->bufs[b].index].data, s->ptr[b], bytes, err, n);
    if (rc) return rc;
    s->bytes_d2h += (double)bytes;
  }
  int rc = s->dev->d2h(s->dev->self, &s->errv, s->errp, 4, err, n);
  if (!rc) rc = s->dev->sync(s->dev->self, err, n);
  if (rc) return rc;
  return s->errv;
}

GPU_RT_API int gpu_rt_run(gpu_rt_state *s, const gpu_rt_tensor *in, const int64_t *sym_values, gpu_rt_tensor *out,
                          char *err, size_t n) {
  int rc = gpu_rt_prepare(s, in, sym_values, err, n);
  if (!rc) rc = gpu_rt_upload(s, in, err, n);
  if (!rc) rc = gpu_rt_exec(s, err, n);
  if (!rc) rc = gpu_rt_download(s, out, err, n);
  return rc;
}

/* ---- the CUDA driver ------------------------------------------------------------------ */

typedef unsigned int gpu_rt_CUresult;
typedef int gpu_rt_CUdevice;
typedef unsigned long long gpu_rt_CUdeviceptr;
typedef struct CUctx_st *gpu_rt_CUcontext;
typedef struct CUmod_st *gpu_rt_CUmodule;
typedef struct CUfunc_st *gpu_rt_CUfunction;
typedef struct CUstream_st *gpu_rt_CUstream;
typedef struct CUevent_st *gpu_rt_CUevent;

/* X(field, exported symbol, parameters) */
#define GPU_RT_CU_FUNCS(X)                                                                                         \
  X(cuInit, "cuInit", (unsigned int))                                                                              \
  X(cuDeviceGetCount, "cuDeviceGetCount", (int *))                                                                 \
  X(cuDeviceGet, "cuDeviceGet", (gpu_rt_CUdevice *, int))                                                         \
  X(cuDeviceGetName, "cuDeviceGetName", (char *, int, gpu_rt_CUdevice))                                            \
  X(cuDeviceGetAttribute, "cuDeviceGetAttribute", (int *, unsigned int, gpu_rt_CUdevice))                          \
  X(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", (gpu_rt_CUcontext *, gpu_rt_CUdevice))                   \
  X(cuCtxSetCurrent, "cuCtxSetCurrent", (gpu_rt_CUcontext))                                                       \
  X(cuModuleLoadDataEx, "cuModuleLoadDataEx", (gpu_rt_CUmodule *, const void *, unsigned int, unsigned int *, void **)) \
  X(cuModuleUnload, "cuModuleUnload", (gpu_rt_CUmodule))                                                          \
  X(cuModuleGetFunction, "cuModuleGetFunction", (gpu_rt_CUfunction *, gpu_rt_CUmodule, const char *))             \
  X(cuLaunchKernel, "cuLaunchKernel", (gpu_rt_CUfunction, unsigned int, unsigned int, unsigned int, unsigned int,  \
                                       unsigned int, unsigned int, unsigned int, gpu_rt_CUstream, void **, void **)) \
  X(cuMemAlloc, "cuMemAlloc_v2", (gpu_rt_CUdeviceptr *, size_t))                                                  \
  X(cuMemFree, "cuMemFree_v2", (gpu_rt_CUdeviceptr))                                                              \
  X(cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2", (gpu_rt_CUdeviceptr, const void *, size_t, gpu_rt_CUstream))       \
  X(cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2", (void *, gpu_rt_CUdeviceptr, size_t, gpu_rt_CUstream))             \
  X(cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2", (gpu_rt_CUdeviceptr, gpu_rt_CUdeviceptr, size_t, gpu_rt_CUstream)) \
  X(cuMemsetD8Async, "cuMemsetD8Async", (gpu_rt_CUdeviceptr, unsigned char, size_t, gpu_rt_CUstream))             \
  X(cuStreamCreate, "cuStreamCreate", (gpu_rt_CUstream *, unsigned int))                                          \
  X(cuStreamSynchronize, "cuStreamSynchronize", (gpu_rt_CUstream))                                                \
  X(cuStreamDestroy, "cuStreamDestroy_v2", (gpu_rt_CUstream))                                                     \
  X(cuEventCreate, "cuEventCreate", (gpu_rt_CUevent *, unsigned int))                                             \
  X(cuEventRecord, "cuEventRecord", (gpu_rt_CUevent, gpu_rt_CUstream))                                            \
  X(cuEventSynchronize, "cuEventSynchronize", (gpu_rt_CUevent))                                                   \
  X(cuEventElapsedTime, "cuEventElapsedTime_v2", (float *, gpu_rt_CUevent, gpu_rt_CUevent))                       \
  X(cuEventDestroy, "cuEventDestroy_v2", (gpu_rt_CUevent))                                                        \
  X(cuGetErrorName, "cuGetErrorName", (gpu_rt_CUresult, const char **))                                           \
  X(cuGetErrorString, "cuGetErrorString", (gpu_rt_CUresult, const char **))

#define GPU_RT_FN_TYPE(f, sym, args) typedef gpu_rt_CUresult (*gpu_rt_##f##_fn) args;
GPU_RT_CU_FUNCS(GPU_RT_FN_TYPE)
#undef GPU_RT_FN_TYPE

typedef struct gpu_rt_driver {
  void *lib;
#define GPU_RT_FN_FIELD(f, sym, args) gpu_rt_##f##_fn f;
  GPU_RT_CU_FUNCS(GPU_RT_FN_FIELD)
#undef GPU_RT_FN_FIELD
  gpu_rt_CUdevice dev;
  gpu_rt_CUcontext ctx;
  int ok;
  char why[256];
} gpu_rt_driver;

/* cuBLAS: cublasHandle_t is struct cublasContext *, statuses and
 * operations are enums */
typedef unsigned int gpu_rt_cublasStatus;
typedef struct cublasContext *gpu_rt_cublasHandle;
typedef gpu_rt_cublasStatus (*gpu_rt_cublasCreate_fn)(gpu_rt_cublasHandle *);
typedef gpu_rt_cublasStatus (*gpu_rt_cublasDestroy_fn)(gpu_rt_cublasHandle);
typedef gpu_rt_cublasStatus (*gpu_rt_cublasSetStream_fn)(gpu_rt_cublasHandle, gpu_rt_CUstream);
typedef gpu_rt_cublasStatus (*gpu_rt_cublasSgemm_fn)(gpu_rt_cublasHandle, unsigned int, unsigned int, int, int, int,
                                                     const float *, const float *, int, const float *, int,
                                                     const float *, float *, int);
typedef gpu_rt_cublasStatus (*gpu_rt_cublasDgemm_fn)(gpu_rt_cublasHandle, unsigned int, unsigned int, int, int, int,
                                                     const double *, const double *, int, const double *, int,
                                                     const double *, double *, int);

typedef struct gpu_rt_blas {
  void *lib;
  gpu_rt_cublasCreate_fn create;
  gpu_rt_cublasDestroy_fn destroy;
  gpu_rt_cublasSetStream_fn set_stream;
  gpu_rt_cublasSgemm_fn sgemm;
  gpu_rt_cublasDgemm_fn dgemm;
} gpu_rt_blas;

/* Loaded once per process: the library handles and function tables are
 * read-only afterwards (the one piece of process-wide state, like LLVM's
 * target initialisation). */
static pthread_once_t gpu_rt_once = PTHREAD_ONCE_INIT, gpu_rt_blas_once = PTHREAD_ONCE_INIT;
static gpu_rt_driver gpu_rt_drv;
static gpu_rt_blas gpu_rt_cublas;

/* CUDA's name of r, else its number (a stub driver names nothing) */
#define rt_cu_err(r) rt_cu_err_((r), (char[48]){0})
static const char *rt_cu_err_(gpu_rt_CUresult r, char *buf) {
  const char *s = NULL;
  if (gpu_rt_drv.cuGetErrorName && gpu_rt_drv.cuGetErrorName(r, &s) == 0 && s) return s;
  snprintf(buf, 48, "CUDA error %u", r);
  return buf;
}

/* dlsym into a function pointer (ISO C has no cast from void * to one) */
static int rt_sym(void *lib, const char *name, void *fnp) {
  void *p = dlsym(lib, name);
  memcpy(fnp, &p, sizeof p);
  return p != NULL;
}

static void rt_load_driver(void) {
  gpu_rt_driver *d = &gpu_rt_drv;
  const char *path = getenv("TLALOC_LIBCUDA");
  if (!path || !*path) path = "libcuda.so.1";
  d->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!d->lib) {
    snprintf(d->why, sizeof d->why, "gpu: no CUDA driver (%s not found)", path);
    return;
  }
#define GPU_RT_FN_LOAD(f, sym, args)                                                                   \
  if (!rt_sym(d->lib, sym, &d->f) && !strcmp(sym, "cuEventElapsedTime_v2"))                           \
    rt_sym(d->lib, "cuEventElapsedTime", &d->f);                                                      \
  if (!d->f) {                                                                                         \
    snprintf(d->why, sizeof d->why, "gpu: the CUDA driver %s lacks %s (too old)", path, sym);          \
    return;                                                                                            \
  }
  GPU_RT_CU_FUNCS(GPU_RT_FN_LOAD)
#undef GPU_RT_FN_LOAD
  gpu_rt_CUresult r = d->cuInit(0);
  int count = 0;
  if (r) {
    snprintf(d->why, sizeof d->why, "gpu: no GPU (cuInit: %s)", rt_cu_err(r));
    return;
  }
  if ((r = d->cuDeviceGetCount(&count)) || count < 1) {
    snprintf(d->why, sizeof d->why, "gpu: no GPU (%s)", r ? rt_cu_err(r) : "the driver sees no device");
    return;
  }
  if ((r = d->cuDeviceGet(&d->dev, 0)) || (r = d->cuDevicePrimaryCtxRetain(&d->ctx, d->dev))) {
    snprintf(d->why, sizeof d->why, "gpu: cannot use GPU 0 (%s)", rt_cu_err(r));
    return;
  }
  d->ok = 1;
}

static void rt_load_blas(void) {
  static const char *const names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"};
  gpu_rt_blas *b = &gpu_rt_cublas;
  const char *e = getenv("TLALOC_GPU_NO_CUBLAS");
  if (e && *e && *e != '0') return;
  char path[1024];
  const char *home = getenv("CUDA_HOME");
  for (size_t i = 0; i < 2 * sizeof names / sizeof *names && !b->lib; i++) {
    const char *nm = names[i % 4];
    if (i < 4) snprintf(path, sizeof path, "%s", nm);
    else snprintf(path, sizeof path, "%s/lib64/%s", home && *home ? home : "/usr/local/cuda", nm);
    b->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  }
  if (!b->lib) return;
  if (!rt_sym(b->lib, "cublasCreate_v2", &b->create) || !rt_sym(b->lib, "cublasDestroy_v2", &b->destroy) ||
      !rt_sym(b->lib, "cublasSetStream_v2", &b->set_stream) || !rt_sym(b->lib, "cublasSgemm_v2", &b->sgemm) ||
      !rt_sym(b->lib, "cublasDgemm_v2", &b->dgemm))
    b->lib = NULL;
}

GPU_RT_API int gpu_rt_cuda_available(char *why, size_t n) {
  pthread_once(&gpu_rt_once, rt_load_driver);
  if (!gpu_rt_drv.ok) snprintf(why, n, "%s", gpu_rt_drv.why);
  return gpu_rt_drv.ok;
}

#define RT_CU(call, what)                                                   \
  do {                                                                      \
    gpu_rt_CUresult r_ = (call);                                            \
    if (r_) {                                                               \
      snprintf(err, n, "gpu: %s: %s", what, rt_cu_err(r_));                 \
      return -2;                                                            \
    }                                                                       \
  } while (0)

static int rt_cuda_alloc(void *self, size_t bytes, uint64_t *ptr, char *err, size_t n) {
  (void)self;
  gpu_rt_CUdeviceptr p = 0;
  RT_CU(gpu_rt_drv.cuMemAlloc(&p, bytes), "cuMemAlloc");
  *ptr = p;
  return 0;
}

static void rt_cuda_release(void *self, uint64_t ptr) {
  (void)self;
  gpu_rt_drv.cuMemFree(ptr);
}

static int rt_cuda_h2d(void *self, uint64_t dst, const void *src, size_t bytes, char *err, size_t n) {
  gpu_rt_cuda *c = self;
  RT_CU(gpu_rt_drv.cuMemcpyHtoDAsync(dst, src, bytes, c->stream), "cuMemcpyHtoDAsync");
  return 0;
}

static int rt_cuda_d2h(void *self, void *dst, uint64_t src, size_t bytes, char *err, size_t n) {
  gpu_rt_cuda *c = self;
  RT_CU(gpu_rt_drv.cuMemcpyDtoHAsync(dst, src, bytes, c->stream), "cuMemcpyDtoHAsync");
  return 0;
}

static int rt_cuda_zero(void *self, uint64_t dst, size_t bytes, char *err, size_t n) {
  gpu_rt_cuda *c = self;
  RT_CU(gpu_rt_drv.cuMemsetD8Async(dst, 0, bytes, c->stream), "cuMemsetD8Async");
  return 0;
}

static int rt_cuda_sync(void *self, char *err, size_t n) {
  gpu_rt_cuda *c = self;
  RT_CU(gpu_rt_drv.cuStreamSynchronize(c->stream), "running the program");
  return 0;
}

static int rt_cuda_launch(void *self, int ki, unsigned grid, unsigned block, const uint64_t *ptr, const int64_t *numel,
                          const int64_t *syms, uint64_t errp, char *err, size_t n) {
  gpu_rt_cuda *c = self;
  const gpu_rt_kernel *k = &c->p->ks[ki];
  (void)numel;
  enum { MAXP = 512 };
  uint64_t vals[MAXP];
  void *args[MAXP];
  int na = 0;
  if (1 + k->nbufs + k->nsyms > MAXP) {
    snprintf(err, n, "gpu: kernel %s has too many parameters", k->name);
    return -2;
  }
  vals[na] = errp;
  args[na] = &vals[na];
  na++;
  for (int i = 0; i < k->nbufs; i++, na++) {
    vals[na] = ptr[k->bufs[i]];
    args[na] = &vals[na];
  }
  for (int i = 0; i < k->nsyms; i++, na++) {
    vals[na] = (uint64_t)syms[k->syms[i]];
    args[na] = &vals[na];
  }
  RT_CU(gpu_rt_drv.cuLaunchKernel((gpu_rt_CUfunction)c->fns[ki], grid, 1, 1, block, 1, 1, 0, c->stream, args, NULL),
        k->name);
  return 0;
}

/* C = A B by cuBLAS, row major: cuBLAS is column major, so it computes
 * C^T = B^T A^T, reading each operand's buffer as its transpose. */
static int rt_cuda_gemm(void *self, int ki, const uint64_t *ptr, const int64_t *syms, char *err, size_t n) {
  gpu_rt_cuda *c = self;
  const gpu_rt_kernel *k = &c->p->ks[ki];
  int dt = c->p->bufs[k->out].dtype;
  if (!c->cublas || (dt != 3 && dt != 4)) return 0;
  int64_t ad[9], bd[9];
  int ar = k->gar, br = k->gbr;
  for (int i = 0; i < 8; i++) {
    ad[i] = k->gad[i] >= 0 ? k->gad[i] : syms[-k->gad[i] - 1];
    bd[i] = k->gbd[i] >= 0 ? k->gbd[i] : syms[-k->gbd[i] - 1];
  }
  if (ar == 1) { ad[1] = ad[0]; ad[0] = 1; ar = 2; }
  if (br == 1) { bd[1] = 1; br = 2; }
  int64_t M = ad[ar - 2], K = ad[ar - 1], N = bd[br - 1];
  if (M > 2147483647 || N > 2147483647 || K > 2147483647) return 0;
  int nbr = (ar > br ? ar : br) - 2;
  int64_t bdims[8], ast[8], bst[8], ost[8], batch = 1;
  for (int i = 0; i < nbr; i++) {
    int ai = i - (nbr - (ar - 2)), bi = i - (nbr - (br - 2));
    int64_t da = ai >= 0 ? ad[ai] : 1, db = bi >= 0 ? bd[bi] : 1;
    bdims[i] = da == 1 ? db : da;
    batch *= bdims[i];
  }
  int64_t sa = 1, sb = 1, so = 1;
  for (int i = nbr - 1; i >= 0; i--) {
    int ai = i - (nbr - (ar - 2)), bi = i - (nbr - (br - 2));
    if (ai < 0 || (ad[ai] == 1 && bdims[i] != 1)) ast[i] = 0;
    else { ast[i] = sa; sa *= ad[ai]; }
    if (bi < 0 || (bd[bi] == 1 && bdims[i] != 1)) bst[i] = 0;
    else { bst[i] = sb; sb *= bd[bi]; }
    ost[i] = so;
    so *= bdims[i];
  }
  size_t es = dt == 3 ? 4 : 8;
  if (M == 0 || N == 0 || batch == 0) return 1;
  if (K == 0) return rt_cuda_zero(c, ptr[k->out], (size_t)(batch * M * N) * es, err, n) ? -1 : 1;
  unsigned opa = k->gta ? 1 : 0, opb = k->gtb ? 1 : 0; /* CUBLAS_OP_T = 1 */
  int lda = k->gta ? (int)M : (int)K, ldb = k->gtb ? (int)K : (int)N;
  for (int64_t t = 0; t < batch; t++) {
    int64_t rem = t, ao = 0, bo = 0, co = 0;
    for (int i = nbr - 1; i >= 0; i--) {
      int64_t q = rem % bdims[i];
      rem /= bdims[i];
      ao += q * ast[i];
      bo += q * bst[i];
      co += q * ost[i];
    }
    uint64_t A = ptr[k->ga] + (uint64_t)(ao * M * K) * es, B = ptr[k->gb] + (uint64_t)(bo * K * N) * es,
             C = ptr[k->out] + (uint64_t)(co * M * N) * es;
    gpu_rt_cublasStatus st;
    if (dt == 3) {
      const float one = 1, zero = 0;
      st = gpu_rt_cublas.sgemm(c->cublas, opb, opa, (int)N, (int)M, (int)K, &one, (const float *)(uintptr_t)B, ldb,
                               (const float *)(uintptr_t)A, lda, &zero, (float *)(uintptr_t)C, (int)N);
    } else {
      const double one = 1, zero = 0;
      st = gpu_rt_cublas.dgemm(c->cublas, opb, opa, (int)N, (int)M, (int)K, &one, (const double *)(uintptr_t)B, ldb,
                               (const double *)(uintptr_t)A, lda, &zero, (double *)(uintptr_t)C, (int)N);
    }
    if (st) {
      snprintf(err, n, "gpu: cuBLAS gemm of %s failed (status %u)", k->name, st);
      return -1;
    }
  }
  return 1;
}

GPU_RT_API int gpu_rt_cuda_open(gpu_rt_cuda *c, const gpu_rt_prog *p, const void *image, int use_cublas, char *err,
                                size_t n) {
  memset(c, 0, sizeof *c);
  c->p = p;
  if (!gpu_rt_cuda_available(err, n)) return -2;
  gpu_rt_driver *d = &gpu_rt_drv;
  RT_CU(d->cuCtxSetCurrent(d->ctx), "cuCtxSetCurrent");
  d->cuDeviceGetName(c->devname, (int)sizeof c->devname, d->dev);
  d->cuDeviceGetAttribute(&c->sm_count, 16 /* MULTIPROCESSOR_COUNT */, d->dev);
  d->cuDeviceGetAttribute(&c->cc_major, 75 /* COMPUTE_CAPABILITY_MAJOR */, d->dev);
  d->cuDeviceGetAttribute(&c->cc_minor, 76, d->dev);
  char log[4096] = "";
  unsigned int opts[2] = {5 /* CU_JIT_ERROR_LOG_BUFFER */, 6 /* ..._SIZE_BYTES */};
  void *vals[2] = {log, (void *)(uintptr_t)sizeof log};
  gpu_rt_CUmodule mod = NULL;
  gpu_rt_CUresult r = d->cuModuleLoadDataEx(&mod, image, 2, opts, vals);
  if (r) {
    snprintf(err, n, "gpu: loading the module: %s%s%.1800s", rt_cu_err(r), log[0] ? ": " : "", log);
    return -2;
  }
  c->mod = mod;
  c->fns = RT_CALLOC((size_t)p->nkernels + 1, sizeof *c->fns);
  for (int i = 0; i < p->nkernels; i++) {
    gpu_rt_CUfunction f = NULL;
    if ((r = d->cuModuleGetFunction(&f, mod, p->ks[i].name))) {
      snprintf(err, n, "gpu: kernel %s: %s", p->ks[i].name, rt_cu_err(r));
      gpu_rt_cuda_close(c);
      return -2;
    }
    c->fns[i] = f;
  }
  gpu_rt_CUstream st = NULL;
  if ((r = d->cuStreamCreate(&st, 1 /* CU_STREAM_NON_BLOCKING */))) {
    snprintf(err, n, "gpu: cuStreamCreate: %s", rt_cu_err(r));
    gpu_rt_cuda_close(c);
    return -2;
  }
  c->stream = st;
  if (use_cublas) {
    pthread_once(&gpu_rt_blas_once, rt_load_blas);
    gpu_rt_cublasHandle h = NULL;
    if (gpu_rt_cublas.lib && gpu_rt_cublas.create(&h) == 0) {
      gpu_rt_cublas.set_stream(h, st);
      c->cublas = h;
    }
  }
  return 0;
}

GPU_RT_API void gpu_rt_cuda_close(gpu_rt_cuda *c) {
  if (!gpu_rt_drv.ok) return;
  gpu_rt_drv.cuCtxSetCurrent(gpu_rt_drv.ctx);
  if (c->cublas) gpu_rt_cublas.destroy((gpu_rt_cublasHandle)c->cublas);
  for (int i = 0; i < 2; i++)
    if (c->ev[i]) gpu_rt_drv.cuEventDestroy((gpu_rt_CUevent)c->ev[i]);
  if (c->stream) gpu_rt_drv.cuStreamDestroy((gpu_rt_CUstream)c->stream);
  if (c->mod) gpu_rt_drv.cuModuleUnload((gpu_rt_CUmodule)c->mod);
  RT_FREE(c->fns);
  memset(c, 0, sizeof *c);
}

GPU_RT_API gpu_rt_dev gpu_rt_cuda_dev(gpu_rt_cuda *c) {
  gpu_rt_dev d;
  memset(&d, 0, sizeof d);
  d.self = c;
  d.name = "gpu";
  /* enough resident blocks of 256 threads to fill every multiprocessor */
  d.max_blocks = (unsigned)(c->sm_count > 0 ? c->sm_count * 8 : 1024);
  d.alloc = rt_cuda_alloc;
  d.release = rt_cuda_release;
  d.h2d = rt_cuda_h2d;
  d.d2h = rt_cuda_d2h;
  d.zero = rt_cuda_zero;
  d.launch = rt_cuda_launch;
  d.gemm = c->cublas ? rt_cuda_gemm : NULL;
  d.sync = rt_cuda_sync;
  return d;
}

static int rt_events(gpu_rt_cuda *c, char *err, size_t n) {
  for (int i = 0; i < 2; i++)
    if (!c->ev[i]) {
      gpu_rt_CUevent e = NULL;
      RT_CU(gpu_rt_drv.cuEventCreate(&e, 0), "cuEventCreate");
      c->ev[i] = e;
    }
  return 0;
}

static double rt_elapsed_ms(gpu_rt_cuda *c, char *err, size_t n) {
  float ms = -1;
  gpu_rt_CUresult r = gpu_rt_drv.cuEventSynchronize((gpu_rt_CUevent)c->ev[1]);
  if (!r) r = gpu_rt_drv.cuEventElapsedTime(&ms, (gpu_rt_CUevent)c->ev[0], (gpu_rt_CUevent)c->ev[1]);
  if (r) {
    snprintf(err, n, "gpu: timing: %s", rt_cu_err(r));
    return -1;
  }
  return ms;
}

GPU_RT_API double gpu_rt_cuda_time_exec(gpu_rt_cuda *c, gpu_rt_state *s, int reps, char *err, size_t n) {
  gpu_rt_drv.cuCtxSetCurrent(gpu_rt_drv.ctx);
  if (rt_events(c, err, n) || gpu_rt_exec(s, err, n) || rt_cuda_sync(c, err, n)) return -1;
  gpu_rt_drv.cuEventRecord((gpu_rt_CUevent)c->ev[0], (gpu_rt_CUstream)c->stream);
  for (int i = 0; i < reps; i++)
    if (gpu_rt_exec(s, err, n)) return -1;
  gpu_rt_drv.cuEventRecord((gpu_rt_CUevent)c->ev[1], (gpu_rt_CUstream)c->stream);
  double ms = rt_elapsed_ms(c, err, n);
  return ms < 0 ? -1 : ms / reps;
}

static int rt_launch_one(gpu_rt_cuda *c, gpu_rt_state *s, int ki, unsigned grid, char *err, size_t n) {
  if (s->p->ks[ki].gemm && c->cublas) {
    int rc = rt_cuda_gemm(c, ki, s->ptr, s->syms, err, n);
    if (rc) return rc < 0 ? -1 : 0;
  }
  return rt_cuda_launch(c, ki, grid, (unsigned)s->p->ks[ki].threads, s->ptr, s->numel, s->syms, s->errp, err, n);
}

GPU_RT_API double gpu_rt_cuda_time_kernel(gpu_rt_cuda *c, gpu_rt_state *s, int ki, int reps, char *err, size_t n) {
  gpu_rt_drv.cuCtxSetCurrent(gpu_rt_drv.ctx);
  unsigned grid = gpu_rt_grid(s, ki);
  if (!grid) return 0;
  if (rt_events(c, err, n) || rt_launch_one(c, s, ki, grid, err, n) || rt_cuda_sync(c, err, n)) return -1;
  gpu_rt_drv.cuEventRecord((gpu_rt_CUevent)c->ev[0], (gpu_rt_CUstream)c->stream);
  for (int i = 0; i < reps; i++)
    if (rt_launch_one(c, s, ki, grid, err, n)) return -1;
  gpu_rt_drv.cuEventRecord((gpu_rt_CUevent)c->ev[1], (gpu_rt_CUstream)c->stream);
  double ms = rt_elapsed_ms(c, err, n);
  return ms < 0 ? -1 : ms / reps;
}

GPU_RT_API double gpu_rt_cuda_copy_time(gpu_rt_cuda *c, size_t bytes, int reps, char *err, size_t n) {
  gpu_rt_drv.cuCtxSetCurrent(gpu_rt_drv.ctx);
  gpu_rt_CUdeviceptr a = 0, b = 0;
  double ms = -1;
  if (rt_events(c, err, n)) return -1;
  if (gpu_rt_drv.cuMemAlloc(&a, bytes) || gpu_rt_drv.cuMemAlloc(&b, bytes)) {
    snprintf(err, n, "gpu: cannot allocate 2 x %zu bytes", bytes);
  } else {
    gpu_rt_CUstream st = (gpu_rt_CUstream)c->stream;
    gpu_rt_drv.cuMemsetD8Async(a, 1, bytes, st);
    gpu_rt_drv.cuMemcpyDtoDAsync(b, a, bytes, st);
    gpu_rt_drv.cuEventRecord((gpu_rt_CUevent)c->ev[0], st);
    for (int i = 0; i < reps; i++) gpu_rt_drv.cuMemcpyDtoDAsync(i & 1 ? a : b, i & 1 ? b : a, bytes, st);
    gpu_rt_drv.cuEventRecord((gpu_rt_CUevent)c->ev[1], st);
    ms = rt_elapsed_ms(c, err, n);
  }
  if (a) gpu_rt_drv.cuMemFree(a);
  if (b) gpu_rt_drv.cuMemFree(b);
  return ms < 0 ? -1 : ms * 1e-3 / reps;
}

static double rt_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

GPU_RT_API double gpu_rt_cuda_h2d_time(gpu_rt_cuda *c, size_t bytes, int reps, char *err, size_t n) {
  gpu_rt_drv.cuCtxSetCurrent(gpu_rt_drv.ctx);
  gpu_rt_CUdeviceptr a = 0;
  char *h = RT_MALLOC(bytes ? bytes : 1);
  double best = -1;
  if (!h || gpu_rt_drv.cuMemAlloc(&a, bytes)) {
    snprintf(err, n, "gpu: cannot allocate %zu bytes", bytes);
  } else {
    memset(h, 1, bytes);
    gpu_rt_CUstream st = (gpu_rt_CUstream)c->stream;
    for (int i = 0; i < reps + 1; i++) {
      double t0 = rt_now();
      gpu_rt_drv.cuMemcpyHtoDAsync(a, h, bytes, st);
      if (gpu_rt_drv.cuStreamSynchronize(st)) {
        snprintf(err, n, "gpu: host-to-device copy failed");
        best = -1;
        break;
      }
      double t = rt_now() - t0;
      if (i > 0 && (best < 0 || t < best)) best = t;
    }
  }
  if (a) gpu_rt_drv.cuMemFree(a);
  RT_FREE(h);
  return best;
}
