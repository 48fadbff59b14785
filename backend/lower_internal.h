/* lower_internal.h - private to the IR emitter, backend/lower*.c (lower.c
 * says which file holds what): the emitter's state (em), the small builders
 * every file uses (static inline), and the functions one file of the
 * emitter calls in another. Those carry the prefix lw_: every global symbol
 * of libtlaloc is named for its module, and names such as ex, offset or
 * conv would otherwise be globals of libtlaloc.a and libtlaloc.so. */
#ifndef TL_LOWER_INTERNAL_H
#define TL_LOWER_INTERNAL_H

#include "backend/be_internal.h"

#include <stdbool.h>
#include <stdint.h>

#define MAXSYM 256

typedef struct em {
  const be_plan *p;
  const tl_graph *g;
  LLVMContextRef cx;
  LLVMModuleRef m;
  LLVMBuilderRef b, pre;
  LLVMTypeRef i1, i8, i32, i64, f32, f64, ptr, vd, kty;
  LLVMTypeRef ety;           /* an entry's type (ENTRY of the ABI) */
  LLVMValueRef *fnentry;     /* per plan of the root's table: its entry function */
  LLVMValueRef *consts; /* per buffer: the global of a CONST buffer */
  int vector_math; /* be_vm_code (be_internal.h) */
  int unroll_rows; /* a softmax kernel: rows of a known length up to UNROLL_ROW are emitted
                    * unrolled (lower_rows.c) */
  int lean_loops;  /* the kernel being lowered is small and one-pass: its loops without
                    * carried values are neither interleaved nor unrolled (lw_loop_close) */
  long split_elems; /* kernels split across threads from this much work (be_split_elems) */
  int avx512; /* target has AVX-512F: 512-bit vectors and libmvec's _ZGVe variants */
  int avx2;   /* target has AVX2: libmvec's _ZGVd variants (else the SSE _ZGVb ones) */
  LLVMValueRef *used; int nused;
  /* current kernel */
  LLVMValueRef fn, frame, bufs, syms, errp;
  LLVMValueRef *bufp;
  /* per buffer, in the current kernel: its accesses' !alias.scope and
   * !noalias (kernel_scopes in lower.c), or NULL */
  LLVMValueRef *ascope, *anoalias;
  LLVMValueRef symv[MAXSYM];
  int32_t knode;
  int x86;     /* target is x86-64: streaming stores and sfence */
  int nt_used; /* the current kernel has streaming stores: sfence before returning */
  /* while set, stores to buffer scratch_buf go to scratch[scratch_j]
   * (lw_prefetched_loop's line of output, see "streaming stores");
   * scratch_j is the element's place in its block there, NULL outside
   * the blocks */
  LLVMValueRef scratch, scratch_j;
  int32_t scratch_buf;
  /* per node, in a BE_K_ROWS kernel: a BE_S_ROW reduction's value for the
   * current row (lw_ex returns it), else NULL */
  LLVMValueRef *rowval;
  tl_error *err; int failed;
} em;

static inline LLVMValueRef ci(em *e, int64_t v) { return LLVMConstInt(e->i64, (unsigned long long)v, 1); }

static inline LLVMTypeRef vty(em *e, int dt) {
  switch (dt) {
  case TL_BOOL: return e->i1;
  case TL_I32: return e->i32;
  case TL_I64: return e->i64;
  case TL_F32: return e->f32;
  default: return e->f64;
  }
}
static inline LLVMTypeRef mty(em *e, int dt) { return dt == TL_BOOL ? e->i8 : vty(e, dt); }
static inline bool isf(int dt) { return dt == TL_F32 || dt == TL_F64; }

static inline LLVMValueRef cf(em *e, int dt, double v) { return LLVMConstReal(vty(e, dt), v); }

/* Lane-generic values: most builders below take scalars or vectors (the
 * short-row kernels of lower_short.c keep rows in vector registers). */
static inline bool lw_is_vec(LLVMValueRef v) { return LLVMGetTypeKind(LLVMTypeOf(v)) == LLVMVectorTypeKind; }
/* t, or a vector of t with like's lane count */
static inline LLVMTypeRef lw_like_ty(LLVMValueRef like, LLVMTypeRef t) {
  return lw_is_vec(like) ? LLVMVectorType(t, LLVMGetVectorSize(LLVMTypeOf(like))) : t;
}
/* the constant c, or c in every lane when like is a vector (of at most 64) */
static inline LLVMValueRef lw_like(LLVMValueRef like, LLVMValueRef c) {
  if (!lw_is_vec(like)) return c;
  LLVMValueRef a[64];
  unsigned n = LLVMGetVectorSize(LLVMTypeOf(like));
  for (unsigned i = 0; i < n && i < 64; i++) a[i] = c;
  return LLVMConstVector(a, n < 64 ? n : 64);
}

/* ---- scalar ops ------------------------------------------------------------ */

static inline LLVMValueRef sel(em *e, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(e->b, c, a, b, "");
}
static inline LLVMValueRef fcmp(em *e, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFCmp(e->b, p, a, b, "");
}
static inline LLVMValueRef icmp(em *e, LLVMIntPredicate p, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildICmp(e->b, p, a, b, "");
}

/* ---- lower.c: kernel scaffolding ----------------------------------------- */

LLVMValueRef lw_dimv(em *e, int64_t d);     /* a tl dim's size (symbols loaded in the entry block) */
LLVMValueRef lw_bufptr(em *e, int32_t bi);  /* buffer bi's address (loaded in the entry block) */
void lw_mark_access(em *e, int32_t bi, LLVMValueRef inst); /* a load or store of buffer bi */
void lw_add_enum_attr(em *e, LLVMValueRef f, const char *name, uint64_t v);
/* What every function the emitter adds gets: internal, noinline, and the
 * target's vector width preferred. */
void lw_kernel_fn(em *e, LLVMValueRef f);
/* A kernel's function (the ABI's k(frame, lo, hi)) named name, the builder
 * in its body; lw_kend returns from it. */
void lw_kbegin(em *e, const char *name, int32_t node);
void lw_kend(em *e);
void lw_set_err(em *e, int code);           /* stores the error (knode << 4) | code */

/* for (iv = lo; iv < hi; iv++) with nc loop-carried values */
typedef struct loop {
  LLVMBasicBlockRef head, body, exit;
  LLVMValueRef iv, phis[4];
  int nc;
  int ic; /* > 0: llvm.loop.interleave.count for the vectoriser; < 0: not vectorised */
  int nounroll; /* llvm.loop.unroll.disable */
  int vectorize; /* llvm.loop.vectorize.enable true: a loop of exactly one vector, which the
                  * vectoriser must take whatever its cost model says of the calls inside */
} loop;
LLVMValueRef lw_loop_open(em *e, loop *l, LLVMValueRef lo, LLVMValueRef hi, int nc,
                          const LLVMValueRef *init);
void lw_loop_close(em *e, loop *l, const LLVMValueRef *next);
void lw_nest_open(em *e, loop *ls, int r, const int64_t *dims, const int *order, LLVMValueRef lo,
                  LLVMValueRef hi, LLVMValueRef *iv);
void lw_nest_close(em *e, loop *ls, int r);
LLVMValueRef lw_guard_range(em *e, LLVMValueRef lo, LLVMValueRef hi);
void lw_guard_end(em *e, LLVMValueRef no);

/* ---- lower_expr.c: values ------------------------------------------------ */

LLVMValueRef lw_intr(em *e, const char *name, LLVMTypeRef t, LLVMValueRef *args, int n);
LLVMValueRef lw_intr1(em *e, const char *name, LLVMValueRef x);
LLVMValueRef lw_intr2(em *e, const char *name, LLVMValueRef x, LLVMValueRef y);
LLVMValueRef lw_m1(em *e, const char *name, int dt, LLVMValueRef x);
LLVMValueRef lw_conv(em *e, LLVMValueRef v, int from, int to);
void lw_contig_strides(em *e, int rank, const int64_t *dims, LLVMValueRef *st);
LLVMValueRef lw_offset(em *e, int rank, const LLVMValueRef *st, LLVMValueRef *idx);
LLVMValueRef lw_load_at(em *e, int32_t bi, int dt, LLVMValueRef off);
void lw_store_at(em *e, int32_t bi, int dt, LLVMValueRef off, LLVMValueRef v);
LLVMValueRef lw_ex(em *e, int32_t id, LLVMValueRef *idx);
LLVMValueRef lw_ex_def(em *e, int32_t id, LLVMValueRef *idx);
/* Python's slice start (slice and slice_update :start :step) along a dim of length len. */
LLVMValueRef lw_slice_start(em *e, const tl_attrs *a, LLVMValueRef len);

/* ---- lower_stream.c: streaming prefetch and stores ------------------------ */

/* lw_prefetched_loop's block is one line of the output, PF_LINE bytes;
 * elementwise kernels prefetch PF_AHEAD blocks ahead (lower_stream.c) */
enum { PF_LINE = 64, PF_AHEAD = 32 };

/* where lw_prefetched_loop stores lines: buffer buf of dtype dt, stream when
 * on (i1) and the line is aligned; off(i) is the output offset of element
 * i of the loop, and the output is contiguous along the loop */
typedef LLVMValueRef pf_off(em *e, LLVMValueRef i, void *ctx);
typedef struct nt_lines { int32_t buf; int dt; LLVMValueRef on; pf_off *off; } nt_lines;
typedef void pf_body(em *e, LLVMValueRef i, void *ctx);

bool lw_calls_math(const be_plan *p, int32_t id, bool own);
/* prefetches the line at base + byte_off (for reading, into all levels) */
void lw_prefetch(em *e, LLVMValueRef base, LLVMValueRef byte_off);
int lw_stream_bufs(const be_plan *p, const be_kern *k, int32_t *out, int max);
int lw_bufs_like(const be_plan *p, const be_kern *k, const tl_type *t, int32_t *out, int max);
LLVMValueRef lw_nt_wanted(em *e, const be_kern *k);
LLVMValueRef lw_line_head(em *e, const nt_lines *nt, LLVMValueRef lo, LLVMValueRef hi, void *ctx);
void lw_prefetched_loop(em *e, int64_t bl, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef ahead,
                        const int32_t *st, int ns, pf_body *body, void *ctx, const nt_lines *nt);

/* ---- lower_rows.c: reductions and softmax -------------------------------- */

void lw_reduce_axes(const tl_node *n, int rank, bool *red);
void lw_k_red(em *e, const be_kern *k);
void lw_k_softmax(em *e, const be_kern *k);
void lw_k_rows(em *e, const be_kern *k);
/* log of a row's sum of exponentials from its sum s (the terms other than
 * the max's) and ties (how many equal the max); fin: the max is finite */
LLVMValueRef lw_sumexp_log(em *e, int dt, LLVMValueRef fin, LLVMValueRef s, LLVMValueRef ties);

/* ---- lower_short.c: softmax over short rows in vector registers ----------- */

/* Emits softmax kernel k (last axis) as chunks of rows in registers when
 * its rows are short. true: done. false with *join set: a symbolic
 * length, tested at run time; the builder is in the block for the other
 * lengths, which must branch to *join when done. false, *join NULL: not
 * taken. */
bool lw_short_softmax(em *e, const be_kern *k, LLVMBasicBlockRef *join);

/* ---- lower_sums.c: sums over short rows ----------------------------------- */

/* Emits sum or mean kernel k over the last axis alone of a materialised
 * float input as blocks of rows added by a halving tree, when the rows
 * are at most four accumulator vectors long. true: done. false with
 * *join set: a symbolic length, tested at run time; the builder is in
 * the block for the other lengths, which must branch to *join when done.
 * false, *join NULL: not taken, nothing emitted. */
bool lw_short_sum(em *e, const be_kern *k, LLVMBasicBlockRef *join);

/* ---- lower_matmul.c ------------------------------------------------------- */

void lw_k_matmul(em *e, const be_kern *k);

/* ---- lower_pass.c: one-pass groups (plan_pass.c) --------------------------- */

/* The group headed by ks[head] as two kernels: *run(frame, plo, phi) runs
 * parts [plo, phi) of BE_PASS_PARTS, calling the members' kernels kfn[]
 * block by block; *sum(frame, 0, 1) adds the parts' sums into the last
 * product's output. */
void lw_k_pass(em *e, int head, const LLVMValueRef *kfn, LLVMValueRef *run, LLVMValueRef *sum);

/* ---- lower_control.c: call, cond, loop, scan in the entry ------------------ */

/* Emits control kernel k into the entry being built (e->fn), running its
 * functions' entries (e->fnentry) with the entry's par and pool. */
void lw_k_control(em *e, const be_kern *k, LLVMValueRef par, LLVMValueRef pool);

#endif
