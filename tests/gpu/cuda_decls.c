/* cuda_decls.c - the GPU runtime declares the CUDA driver's and cuBLAS's
 * entry points itself (gpu/gpurt.c: no CUDA header, nothing linked); this
 * checks every one of them against the toolkit's cuda.h and cublas_v2.h:
 * the function pointer types must be compatible with the headers'
 * prototypes (an incompatible one does not compile: -Werror), and the
 * symbol dlsym looks up must be the one the header's name maps to
 * (cuMemAlloc is cuMemAlloc_v2). Built only where the toolkit's headers are. */
#include <cublas_v2.h>
#include <cuda.h>

#define GPU_RT_API static __attribute__((unused))
#include "gpu/gpurt.c"

#include <stdio.h>
#include <string.h>

#define STR(x) #x
#define XSTR(x) STR(x)

int main(void) {
  int fails = 0, n = 0;
#define CHECK(f, sym, args)                                                                    \
  {                                                                                            \
    gpu_rt_##f##_fn p = (__typeof__(&f))0; /* compatible types, no reference to the symbol */ \
    (void)p;                                                                                   \
    n++;                                                                                       \
    if (strcmp(sym, XSTR(f))) {                                                                \
      printf("FAIL %s: the runtime looks up %s, cuda.h maps it to %s\n", #f, sym, XSTR(f));    \
      fails++;                                                                                 \
    }                                                                                          \
  }
  GPU_RT_CU_FUNCS(CHECK)
#undef CHECK
  gpu_rt_cublasCreate_fn c = (__typeof__(&cublasCreate))0;
  gpu_rt_cublasDestroy_fn d = (__typeof__(&cublasDestroy))0;
  gpu_rt_cublasSetStream_fn s = (__typeof__(&cublasSetStream))0;
  gpu_rt_cublasSgemm_fn sg = (__typeof__(&cublasSgemm))0;
  gpu_rt_cublasDgemm_fn dg = (__typeof__(&cublasDgemm))0;
  (void)c, (void)d, (void)s, (void)sg, (void)dg;
  static const char *const blas[][2] = {{"cublasCreate_v2", XSTR(cublasCreate)}, {"cublasDestroy_v2", XSTR(cublasDestroy)},
                                        {"cublasSetStream_v2", XSTR(cublasSetStream)},
                                        {"cublasSgemm_v2", XSTR(cublasSgemm)}, {"cublasDgemm_v2", XSTR(cublasDgemm)}};
  for (size_t i = 0; i < sizeof blas / sizeof *blas; i++, n++)
    if (strcmp(blas[i][0], blas[i][1])) {
      printf("FAIL the runtime looks up %s, cublas_v2.h maps it to %s\n", blas[i][0], blas[i][1]);
      fails++;
    }
  _Static_assert(CU_JIT_ERROR_LOG_BUFFER == 5 && CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES == 6, "JIT option codes");
  _Static_assert(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT == 16 && CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR == 75 &&
                     CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR == 76,
                 "device attribute codes");
  _Static_assert(CU_STREAM_NON_BLOCKING == 1 && CUBLAS_OP_T == 1 && CUBLAS_OP_N == 0, "flags");
  printf("%d entry points of the CUDA driver and cuBLAS checked against cuda.h and cublas_v2.h (CUDA %d): %d wrong\n",
         n, CUDA_VERSION, fails);
  return fails ? 1 : 0;
}
