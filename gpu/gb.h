/* gb.h - private to gpu/: the kernel plan written as kernel descriptions
 * (gk.h). One description per kernel of the CPU backend's plan
 * (backend/be_internal.h): elementwise kernels and take's index check
 * (gk_build.c), reductions, softmax and log_softmax (gk_rows.c), matmul
 * (gk_matmul.c); the values inside them are built as backend/lower_expr.c
 * builds them for the CPU, operation by operation (gk_build.c), with the
 * math functions of gk_math.c. */
#ifndef TL_GPU_GB_H
#define TL_GPU_GB_H

#include "backend/be_internal.h"
#include "gpu/gk.h"

/* Threads of a block; 8 warps. The warp-per-row mode assumes it; a
 * softmax kernel holding its rows in registers may set more (gk_rows.c). */
enum { GB_THREADS = 256, GB_WARPS = GB_THREADS / 32 };

/* How math functions are computed (gpu.h, gpu_math). */
enum { GB_MATH_LIBDEVICE, GB_MATH_OWN };

typedef struct gb {
  const be_plan *p;
  const tl_graph *g;
  gk_kernel *k;
  int32_t knode; /* the node of the kernel being built: error codes name it */
  int math;      /* GB_MATH_* */
  uint8_t *is_const; /* per plan buffer */
  char *err;
  size_t errn;
  int failed;
} gb;

/* Builds the description of plan kernel ki into b->k (a fresh kernel
 * named name): the whole kernel (stage 0), or of a split reduction the
 * partial results into plan buffer scratch (stage 1) or the rows from
 * them (stage 2). 0, or -1 with the message in b->err (an op, dtype or
 * math function the GPU backend lacks). */
int gb_kernel(gb *b, int ki, const char *name, int stage, int32_t scratch, int slots);

/* ---- gk_build.c: values ---------------------------------------------------- */
int32_t gb_dim(gb *b, int64_t d);                         /* a tl dim's size, i64 */
void gb_strides(gb *b, int rank, const int64_t *dims, int32_t *st); /* contiguous strides */
int32_t gb_offset(gb *b, int rank, const int32_t *st, const int32_t *idx);
/* idx[0..nd) from the linear index lin over dims (C order) */
void gb_decompose(gb *b, int32_t lin, int nd, const int32_t *dims, int32_t *idx);
int32_t gb_conv(gb *b, int32_t v, int from, int to);     /* tl dtypes */
int32_t gb_ex(gb *b, int32_t id, const int32_t *idx);    /* node id at idx */
int32_t gb_ex_def(gb *b, int32_t id, const int32_t *idx);/* its own definition */
void gb_set_err(gb *b, int kind);                         /* (knode << 4) | kind */
void gb_fail(gb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The thread's coordinates and the grid's size in threads. */
int32_t gb_gtid(gb *b);
int32_t gb_gstride(gb *b);

/* ---- gk_math.c --------------------------------------------------------------
 * A math function of type dt (TL_F32/TL_F64) at x (and y): a call of
 * libdevice's __nv_* in GB_MATH_LIBDEVICE; the project's own code in
 * GB_MATH_OWN (f32 exp, log, log1p, tanh), refused for the others. */
int32_t gb_math(gb *b, gk_math f, int dt, int32_t x, int32_t y);

/* ---- gk_rows.c, gk_matmul.c ------------------------------------------------- */
void gb_reduce_axes(const tl_node *n, int rank, bool *red);
int gb_k_red(gb *b, const be_kern *k);
/* Whether reduction kernel k runs as two kernels (gk_rows.c, "split
 * reductions"): then *scratch is the type of the buffer of partial results
 * between them and *slots their number per row. */
bool gb_red_split(const tl_graph *g, const be_kern *k, tl_type *scratch, int *slots);
int gb_k_red_part(gb *b, const be_kern *k, int32_t scratch, int slots);
int gb_k_red_final(gb *b, const be_kern *k, int32_t scratch, int slots);
int gb_k_softmax(gb *b, const be_kern *k);
int gb_k_matmul(gb *b, const be_kern *k);

#endif
