/* lower_rows.c - row kernels: reductions (sum, prod, mean, max, min,
 * logsumexp) and softmax / log_softmax. A row kernel loops over the dims
 * it keeps and makes its passes over the reduced dims of each row (for
 * logsumexp the max, then the sum of exponentials; softmax also writes),
 * each pass reading the fused producer as psrc says; a kernel that keeps
 * the last dim works on chunks of columns instead ("column mode"). Rows
 * shorter than SHORT_ROW get loops vectorised without interleaving. */
#include "backend/lower_internal.h"

#include <math.h>
#include <string.h>

void lw_reduce_axes(const tl_node *n, int rank, bool *red) {
  for (int i = 0; i < rank; i++) red[i] = !(n->attrs.present & TL_A_AXIS);
  for (int i = 0; i < n->attrs.naxes; i++) {
    int a = n->attrs.axes[i];
    red[a < 0 ? a + rank : a] = true;
  }
}

static LLVMValueRef fast(LLVMValueRef v, unsigned f) {
  if (LLVMCanValueUseFastMathFlags(v)) LLVMSetFastMathFlags(v, f);
  return v;
}

/* One pass of a reduction over the reduced dims: acc = f(acc, x[idx]).
 * R_SUMEXP_KEEP is R_SUMEXP that also keeps each exp(x - shift) in the
 * output (softmax's sum pass; its write pass then only scales). */
typedef enum { R_SUM, R_PROD, R_MAX, R_MIN, R_SUMEXP, R_SUMEXP_KEEP } rkind;

/* a + t for t = exp(v - shift); nan (a row pass's second accumulator)
 * counts the terms equal to the shift and leaves them out (see lw_sumexp_log) */
static LLVMValueRef sumexp_add(em *e, int adt, LLVMValueRef a, LLVMValueRef t, LLVMValueRef v, LLVMValueRef shift,
                               LLVMValueRef *nan) {
  if (nan) {
    LLVMValueRef eq = fcmp(e, LLVMRealOEQ, v, shift);
    if (LLVMGetTypeKind(LLVMTypeOf(*nan)) == LLVMIntegerTypeKind) /* a count (lw_k_red's f32 rows) */
      *nan = LLVMBuildAdd(e->b, *nan, LLVMBuildZExt(e->b, eq, LLVMTypeOf(*nan), ""), "");
    else
      *nan = fast(LLVMBuildFAdd(e->b, *nan, sel(e, eq, cf(e, adt, 1), cf(e, adt, 0)), ""), LLVMFastMathAllowReassoc);
    t = sel(e, eq, cf(e, adt, 0), t);
  }
  return fast(LLVMBuildFAdd(e->b, a, t, ""), LLVMFastMathAllowReassoc);
}

/* A sum of exponentials' term exp(v - shift), accumulated in adt. An f32
 * input's exps are f32 (summed in f64 all the same), as log_softmax's are:
 * an f64 exp takes half the lanes and more work per lane (logsumexp over
 * f32 rows of 10^4 ran at 0.43x of gcc's f32 kernel with them). The
 * difference and the tie test are f32 too, exact conversions of v and
 * shift (the max of f32 values), so the vector loop stays on 16 lanes; the
 * exp then errs by about an f32 ulp of each term, within the f32 result's
 * ulp of the interpreter's f64 exps. xdt: the input's dtype. */
static LLVMValueRef sumexp_term(em *e, int adt, int xdt, LLVMValueRef a, LLVMValueRef v, LLVMValueRef shift,
                                LLVMValueRef *nan) {
  if (adt != TL_F64 || xdt != TL_F32)
    return sumexp_add(e, adt, a, lw_m1(e, "exp", adt, LLVMBuildFSub(e->b, v, shift, "")), v, shift, nan);
  LLVMValueRef vf = lw_conv(e, v, TL_F64, TL_F32), sf = lw_conv(e, shift, TL_F64, TL_F32);
  LLVMValueRef t = lw_m1(e, "exp", TL_F32, LLVMBuildFSub(e->b, vf, sf, ""));
  return sumexp_add(e, adt, a, lw_conv(e, t, TL_F32, TL_F64), vf, sf, nan);
}

/* f(a, v) for one element. nan: a row pass's NaN flag; a float max/min then
 * uses maxnum under nnan (which the vectoriser reduces) and the flag records
 * NaNs. Without it (column mode, elementwise) llvm.maximum propagates them.
 * xdt: the input's dtype before v was converted to adt. */
static LLVMValueRef reduce_step(em *e, rkind kind, int adt, int xdt, LLVMValueRef a, LLVMValueRef v, LLVMValueRef shift,
                                LLVMValueRef *nan) {
  bool fl = isf(adt);
  switch (kind) {
  case R_SUM: return fl ? fast(LLVMBuildFAdd(e->b, a, v, ""), LLVMFastMathAllowReassoc) : LLVMBuildAdd(e->b, a, v, "");
  case R_PROD: return fl ? fast(LLVMBuildFMul(e->b, a, v, ""), LLVMFastMathAllowReassoc) : LLVMBuildMul(e->b, a, v, "");
  case R_SUMEXP:
  case R_SUMEXP_KEEP: return sumexp_term(e, adt, xdt, a, v, shift, nan);
  default:
    if (!fl) return sel(e, icmp(e, kind == R_MAX ? LLVMIntSGT : LLVMIntSLT, v, a), v, a);
    if (!nan) return lw_intr2(e, kind == R_MAX ? "llvm.maximum" : "llvm.minimum", a, v);
    *nan = LLVMBuildOr(e->b, *nan, fcmp(e, LLVMRealUNO, v, v), "");
    return fast(lw_intr2(e, kind == R_MAX ? "llvm.maxnum" : "llvm.minnum", a, v),
                LLVMFastMathNoNaNs | LLVMFastMathNoSignedZeros);
  }
}

/* log of a sum of exponentials shifted by the max, from the pass's two
 * accumulators: s, the terms other than those equal to the shift, and
 * ties, how many equal it. With a finite max the sum is 1 + rest, where
 * rest = s + (ties - 1) leaves out the max's own exp(0) = 1, and the log is
 * log1p(rest): a row dominated by its max keeps every digit of its small
 * terms (log(1 + 1e-9) is 0 in f32; log1p gives 1e-9), as the interpreter
 * does. Otherwise (shift 0) the log of s + ties; the max is then -inf
 * (the sum is 0) or +inf (the sum is inf), where log1p(s + ties - 1) is
 * the same, so one call serves both (two calls per row cost rows of 8
 * twice their time). Scalars or vectors (lower_short.c). */
LLVMValueRef lw_sumexp_log(em *e, int dt, LLVMValueRef fin, LLVMValueRef s, LLVMValueRef ties) {
  LLVMValueRef one = lw_like(s, cf(e, dt, 1));
  LLVMValueRef rest = LLVMBuildFAdd(e->b, s, LLVMBuildFSub(e->b, ties, one, ""), "");
  LLVMValueRef all = LLVMBuildFSub(e->b, LLVMBuildFAdd(e->b, s, ties, ""), one, "");
  /* log1p(x) as log(u) * x / (u - 1) with u = 1 + x (exact when u == 1,
   * within a few ulp of log1p otherwise: the rounding error of u cancels
   * in the quotient). glibc's scalar log1pf took 15 ns a row more than
   * logf: log_softmax over [2048 8] rows 0.064 -> 0.095 ms. */
  LLVMValueRef x = sel(e, fin, rest, all), u = LLVMBuildFAdd(e->b, x, one, "");
  LLVMValueRef um1 = LLVMBuildFSub(e->b, u, one, "");
  LLVMValueRef q = LLVMBuildFMul(e->b, lw_m1(e, "log", dt, u), LLVMBuildFDiv(e->b, x, um1, ""), "");
  LLVMValueRef r = sel(e, fcmp(e, LLVMRealOEQ, u, lw_like(s, cf(e, dt, INFINITY))), u, q);
  return sel(e, fcmp(e, LLVMRealOEQ, um1, lw_like(s, cf(e, dt, 0))), x, r);
}

/* What a pass reads. A row kernel's passes evaluate its fused producer
 * again each (SRC_EX). A softmax whose producer computes anything stores
 * the producer's value in its output in the first pass (SRC_STORE) and
 * reads it back in the others (SRC_OUT): the producer is computed once,
 * and every pass sees the same value. Recomputed, one pass could run the
 * producer's libm call scalar and another libmvec's vector variant, which
 * can differ in the last bit; the row's maximum minus itself then was not
 * 0 (log_softmax of expm1(30x) on rows of 3: 20 of 30 seeds off the
 * interpreter by ulp(x), up to 1e+23). */
enum { SRC_EX, SRC_STORE, SRC_OUT, SRC_EXP };
/* SRC_EXP: softmax's write pass reads back exp(x - shift), which its sum
 * pass (R_SUMEXP_KEEP) left in the output */
typedef struct psrc {
  const be_kern *k;
  const tl_node *xn; /* the input */
  int32_t xid;
  int mode;
} psrc;

/* The input's value at idx, converted to adt (for SRC_STORE/SRC_OUT adt
 * is the output's dtype). */
/* the offset of element idx in kernel k's (contiguous) output */
static LLVMValueRef out_offset(em *e, const be_kern *k, LLVMValueRef *idx) {
  const tl_node *n = &e->g->nodes[k->node];
  LLVMValueRef st[TL_MAX_RANK];
  lw_contig_strides(e, n->type.rank, n->type.dims, st);
  return lw_offset(e, n->type.rank, st, idx);
}

static LLVMValueRef src_value(em *e, const psrc *s, LLVMValueRef *idx, int adt) {
  if (s->mode == SRC_EX) return lw_conv(e, lw_ex(e, s->xid, idx), s->xn->type.dtype, adt);
  LLVMValueRef off = out_offset(e, s->k, idx);
  if (s->mode == SRC_OUT || s->mode == SRC_EXP) return lw_load_at(e, s->k->out, adt, off);
  LLVMValueRef v = lw_conv(e, lw_ex(e, s->xid, idx), s->xn->type.dtype, adt);
  lw_store_at(e, s->k->out, adt, off, v);
  return v;
}

/* An inline expression that does arithmetic (not only loads and index maps).
 * Recursion depth: the fused expression's, at most BE_FUSE_MAX_OPS. */
static bool computes_inline(const be_plan *p, int32_t id) {
  if (p->state[id] != BE_S_INLINE) return false;
  const tl_node *n = &p->g->nodes[id];
  if (tl_ops[n->op].kind == TL_KIND_ELEMWISE) return true;
  for (int i = 0; i < n->ninputs; i++)
    if (computes_inline(p, tl_node_inputs(p->g, n)[i])) return true;
  return false;
}

/* a + exp(v - shift) for softmax's sum pass, which also keeps the exp in
 * the output at idx for its write pass to scale */
static LLVMValueRef sumexp_keep(em *e, const psrc *src, LLVMValueRef *idx, int adt, LLVMValueRef a, LLVMValueRef v,
                                LLVMValueRef shift, LLVMValueRef *nan) {
  LLVMValueRef t = lw_m1(e, "exp", adt, LLVMBuildFSub(e->b, v, shift, ""));
  lw_store_at(e, src->k->out, adt, out_offset(e, src->k, idx), t);
  return sumexp_add(e, adt, a, t, v, shift, nan);
}

/* One element of a row pass: the accumulator after element idx (a
 * softmax's sum pass also keeps the element's exp in the output). */
static LLVMValueRef row_step(em *e, const psrc *src, LLVMValueRef *idx, rkind kind, int adt, LLVMValueRef a,
                             LLVMValueRef *nan, LLVMValueRef shift) {
  LLVMValueRef v = src_value(e, src, idx, adt);
  if (kind != R_SUMEXP_KEEP) return reduce_step(e, kind, adt, src->xn->type.dtype, a, v, shift, nan);
  return sumexp_keep(e, src, idx, adt, a, v, shift, nan);
}

/* Rows of a known length up to this are not loops: their elements are
 * emitted one after another, so that the loop over rows is the innermost
 * loop and the vectoriser runs it across rows (a vector lane per row,
 * the row's elements read as an interleaved group). As loops, rows of 8
 * ran scalar (a vector loop of 16 lanes never started): log_softmax over
 * [2048 8] took 0.047 ms against 0.007-0.010 for the same elements in
 * rows of 1024; unrolled, 0.015 ms. Softmax and log_softmax only
 * (e->unroll_rows): a plain sum over rows of 16 ran 2.5x slower across
 * rows (its interleaved loads cost more shuffles than the sum saves),
 * where a row is one vector. Softmax rows of a known length of 2 up to a
 * vector do not come here: lower_short.c holds them in registers. */
enum { UNROLL_ROW = 16 };

static bool unrolled_row(const em *e, const tl_node *xn, int nred, const int *red) {
  int64_t d = nred == 1 ? xn->type.dims[red[0]] : -1;
  return e->unroll_rows && d >= 0 && d <= UNROLL_ROW;
}

/* The pass over one row; ic > 0 asks the vectoriser for that interleave
 * count on the innermost loop. */
static void row_pass(em *e, const psrc *src, int nred, const int *red, LLVMValueRef *idx,
                     rkind kind, int adt, LLVMValueRef *acc, LLVMValueRef *nan, LLVMValueRef shift, int ic) {
  const tl_node *xn = src->xn;
  if (unrolled_row(e, xn, nred, red)) {
    int64_t d = xn->type.dims[red[0]];
    for (int64_t j = 0; j < d; j++) {
      idx[red[0]] = ci(e, j);
      *acc = row_step(e, src, idx, kind, adt, *acc, nan, shift);
    }
    return;
  }
  loop ls[TL_MAX_RANK] = {0}; /* gcc -O3 saw phis[1] read where nc is 1 (it is not) */
  LLVMValueRef init[2] = {*acc, nan ? *nan : NULL};
  int nc = nan ? 2 : 1;
  /* open loops carrying (acc, nan) */
  for (int k = 0; k < nred; k++) {
    idx[red[k]] = lw_loop_open(e, &ls[k], ci(e, 0), lw_dimv(e, xn->type.dims[red[k]]), nc, k ? (LLVMValueRef[]){ls[k - 1].phis[0], nc > 1 ? ls[k - 1].phis[1] : NULL} : init);
  }
  if (nred) ls[nred - 1].ic = ic;
  LLVMValueRef a = nred ? ls[nred - 1].phis[0] : *acc;
  LLVMValueRef nn = nan ? (nred ? ls[nred - 1].phis[1] : *nan) : NULL;
  LLVMValueRef na = row_step(e, src, idx, kind, adt, a, nan ? &nn : NULL, shift);
  LLVMValueRef nx[2] = {na, nn};
  for (int k = nred - 1; k >= 0; k--) {
    lw_loop_close(e, &ls[k], nx);
    nx[0] = ls[k].phis[0];
    if (nc > 1) nx[1] = ls[k].phis[1];
  }
  *acc = nx[0];
  if (nan) *nan = nx[1];
}

/* Rows shorter than this take their innermost loops vectorised without
 * interleaving. LLVM's default main loop is VF x 4 elements (64 f32 with
 * AVX-512), so a row of 16-63 ran in the half-width epilogue or scalar;
 * without interleaving a row of 16 takes one full vector. Long rows keep
 * the interleaved loop, whose four accumulators hide the add latency (a
 * sum over rows of 1024 ran 2x slower without). A symbolic row length
 * gets both loops and picks at run time. */
enum { SHORT_ROW = 64 };

/* Emits a row's loop through f with the interleave the row's length d
 * asks for: a known length once (ic 1 below SHORT_ROW, else 0), a
 * symbolic one twice behind a run-time test, the nv values the loops
 * carry (in and out through v; NULL entries carry nothing) joined by phis. */
typedef void row_loop(em *e, int ic, LLVMValueRef *v, void *ctx);
static void by_row_length(em *e, int64_t d, row_loop *f, void *ctx, LLVMValueRef *v, int nv) {
  if (d >= 0) {
    f(e, d < SHORT_ROW ? 1 : 0, v, ctx);
    return;
  }
  LLVMBasicBlockRef bb[2] = {LLVMAppendBasicBlockInContext(e->cx, e->fn, "short"),
                             LLVMAppendBasicBlockInContext(e->cx, e->fn, "long")};
  LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(e->cx, e->fn, "rowj");
  LLVMBuildCondBr(e->b, icmp(e, LLVMIntSLT, lw_dimv(e, d), ci(e, SHORT_ROW)), bb[0], bb[1]);
  LLVMValueRef out[4][2];
  for (int w = 0; w < 2; w++) {
    LLVMPositionBuilderAtEnd(e->b, bb[w]);
    LLVMValueRef t[4];
    memcpy(t, v, (size_t)nv * sizeof *t);
    f(e, w ? 0 : 1, t, ctx);
    for (int q = 0; q < nv; q++) out[q][w] = t[q];
    bb[w] = LLVMGetInsertBlock(e->b);
    LLVMBuildBr(e->b, join);
  }
  LLVMPositionBuilderAtEnd(e->b, join);
  for (int q = 0; q < nv; q++) {
    if (!v[q]) continue;
    v[q] = LLVMBuildPhi(e->b, LLVMTypeOf(out[q][0]), "");
    LLVMAddIncoming(v[q], out[q], bb, 2);
  }
}

typedef struct rp_ctx {
  const psrc *src; int nred; const int *red; LLVMValueRef *idx; rkind kind; int adt; LLVMValueRef shift;
} rp_ctx;
static void row_pass_at(em *e, int ic, LLVMValueRef *v, void *ctx) {
  rp_ctx *c = ctx;
  row_pass(e, c->src, c->nred, c->red, c->idx, c->kind, c->adt, &v[0], v[1] ? &v[1] : NULL, c->shift, ic);
}

static void reduce_pass(em *e, const psrc *src, int nred, const int *red, LLVMValueRef *idx,
                        rkind kind, int adt, LLVMValueRef *acc, LLVMValueRef *nan, LLVMValueRef shift,
                        bool short_version) {
  int64_t d = nred ? src->xn->type.dims[red[nred - 1]] : 0;
  if (!nred || (d < 0 && !short_version)) {
    row_pass(e, src, nred, red, idx, kind, adt, acc, nan, shift, 0);
    return;
  }
  rp_ctx c = {src, nred, red, idx, kind, adt, shift};
  LLVMValueRef v[2] = {*acc, nan ? *nan : NULL};
  by_row_length(e, d, row_pass_at, &c, v, 2);
  *acc = v[0];
  if (nan) *nan = v[1];
}

static LLVMValueRef fix_nan(em *e, int adt, LLVMValueRef acc, LLVMValueRef nan) {
  /* the nnan maxnum may have produced poison on NaN input: replace it. No
   * freeze here: select does not propagate poison from the arm it does not
   * pick, and a freeze lets InstCombine push it into the loop, dropping
   * nnan from the maxnum and with it the vectorised max reduction. */
  return sel(e, nan, cf(e, adt, NAN), acc);
}

/* ---- column mode ----------------------------------------------------------
 * A reduction that keeps the input's last dim (a sum over axis 0 of [r c],
 * a softmax over a leading axis) read each output's elements at a stride
 * of a row: scalar code and a cache line per element, 40x slower than a
 * row reduction of the same size. In column mode the kernel takes the last
 * dim in chunks of COLS columns with one accumulator per column in a stack
 * array, so each pass over the reduced dims is a loop over contiguous
 * columns that the vectoriser treats like an elementwise kernel. */
/* COLS: 1024 columns. 256-column chunks read a 1 KiB piece of each row at
 * a 4 KiB stride (a new page for the prefetchers every 16 lines; the set
 * aliasing of that stride is the likely reason the 1 MiB chunk was not
 * served from L2). On Emerald Rapids (one thread, f32 [1024 1024] over
 * axis 0, min of 5 x 100 runs, the widths alternated in one process):
 * softmax 1118-1195 us at 256 columns, 909-1010 at 512, 792-897 at 1024;
 * sum 184-188 / 142-148 (256 / 1024); max 217 / 142 (over axis 1: 137
 * and 145). 2048 and 4096 columns ran as 1024 within noise ([2048 2048],
 * [256 4096], [64 16384]); 64 and 128 were slower. On Zen 5, 512 to 2048
 * had measured within noise of 256. The stack arrays stay in L1: three of
 * 1024 f64 are 24 KiB. */
enum { COLS = 1024 };

typedef struct cols {
  loop outer[TL_MAX_RANK], chunk;
  int nouter, last;
  LLVMValueRef c0, w; /* the chunk's first column and its width */
  LLVMValueRef *idx;
} cols;

/* Opens the loops over the kept dims (red[i] false) before the last, then
 * the chunks of the last; the first kept dim covers the kernel's range
 * [lo, hi) (the entry's split across threads). */
static void cols_open(em *e, cols *c, const tl_type *t, const bool *red, LLVMValueRef *idx) {
  LLVMValueRef lo = LLVMGetParam(e->fn, 1), hi = LLVMGetParam(e->fn, 2);
  c->idx = idx;
  c->last = t->rank - 1;
  c->nouter = 0;
  bool first = true;
  for (int i = 0; i < c->last; i++) {
    if (red[i]) continue;
    idx[i] = lw_loop_open(e, &c->outer[c->nouter++], first ? lo : ci(e, 0), first ? hi : lw_dimv(e, t->dims[i]), 0, NULL);
    first = false;
  }
  LLVMValueRef clo = first ? lo : ci(e, 0), chi = first ? hi : lw_dimv(e, t->dims[c->last]);
  LLVMValueRef nch = LLVMBuildSDiv(e->b, LLVMBuildAdd(e->b, LLVMBuildSub(e->b, chi, clo, ""), ci(e, COLS - 1), ""),
                                   ci(e, COLS), "");
  LLVMValueRef q = lw_loop_open(e, &c->chunk, ci(e, 0), nch, 0, NULL);
  c->c0 = LLVMBuildNSWAdd(e->b, clo, LLVMBuildNSWMul(e->b, q, ci(e, COLS), ""), "");
  LLVMValueRef rest = LLVMBuildSub(e->b, chi, c->c0, "");
  c->w = sel(e, icmp(e, LLVMIntSLT, rest, ci(e, COLS)), rest, ci(e, COLS));
}

static void cols_close(em *e, cols *c) {
  lw_loop_close(e, &c->chunk, NULL);
  for (int k = c->nouter - 1; k >= 0; k--) lw_loop_close(e, &c->outer[k], NULL);
}

/* for (j = 0; j < w; j++) over the chunk's columns: idx[last] = c0 + j */
static LLVMValueRef lane_open(em *e, cols *c, loop *l) {
  LLVMValueRef j = lw_loop_open(e, l, ci(e, 0), c->w, 0, NULL);
  c->idx[c->last] = LLVMBuildNSWAdd(e->b, c->c0, j, "");
  return j;
}

static LLVMValueRef lane_array(em *e, int dt) {
  return LLVMBuildAlloca(e->pre, LLVMArrayType2(vty(e, dt), COLS), "lanes");
}
static LLVMValueRef lane_ptr(em *e, LLVMValueRef arr, int dt, LLVMValueRef j) {
  return LLVMBuildInBoundsGEP2(e->b, vty(e, dt), arr, &j, 1, "");
}
static LLVMValueRef lane_load(em *e, LLVMValueRef arr, int dt, LLVMValueRef j) {
  return LLVMBuildLoad2(e->b, vty(e, dt), lane_ptr(e, arr, dt, j), "");
}

static void lanes_fill(em *e, cols *c, LLVMValueRef arr, int dt, LLVMValueRef v) {
  loop l;
  LLVMValueRef j = lane_open(e, c, &l);
  LLVMBuildStore(e->b, v, lane_ptr(e, arr, dt, j));
  lw_loop_close(e, &l, NULL);
}

/* A softmax's or logsumexp's shift from the column's max m: m, but 0 when
 * m is infinite (the row-mode rule; a NaN m gives a NaN result either way). */
static LLVMValueRef shift_of(em *e, int dt, LLVMValueRef m) {
  return sel(e, fcmp(e, LLVMRealOEQ, lw_intr1(e, "llvm.fabs", m), cf(e, dt, INFINITY)), cf(e, dt, 0), m);
}

/* acc = f(acc, v) for the element at idx: reduce_step, or a softmax's sum
 * step that also keeps the exp in the output (t: the ties, or NULL) */
static LLVMValueRef col_step(em *e, const psrc *src, LLVMValueRef *idx, rkind kind, int adt, LLVMValueRef a,
                             LLVMValueRef v, LLVMValueRef sh, LLVMValueRef *t) {
  if (kind == R_SUMEXP_KEEP) return sumexp_keep(e, src, idx, adt, a, v, sh, t);
  return reduce_step(e, kind, adt, src->xn->type.dtype, a, v, sh, t);
}

/* Column mode takes JAM rows of the innermost reduced dim at a time,
 * combined before they meet the accumulators (sums, products and sums of
 * exponentials, which already allow reassociation), so that each
 * accumulator is loaded and stored once per JAM rows. The accumulators are
 * a stack array that a pass over one row reads and writes whole; a row at a
 * time, the kernel stored an accumulator vector per vector read (f32 into
 * f64 accumulators: two), and those stores set its speed. f32 sums over
 * axis 0, Zen 5, one thread, min of 5 x 100 runs, the variants alternated
 * in one process, two runs: [1024 1024] 90-96 us a row at a time, 86-88
 * two, 75-80 four, 71-72 eight rows; [256 4096] 89-93 / 76-77 / 61-68 /
 * 56-57; [4096 256] 78-84 / 76-80 / 60-63 / 58-59 (the sums over axis 1:
 * 45-53). Sixteen rows ran slower than eight. The sum pass of a softmax,
 * log_softmax or logsumexp likewise adds its eight rows' terms and ties in
 * registers, then into the two accumulator arrays once: f32 [1024 1024]
 * over axis 0, log_softmax 456-466 -> 390-399 us, logsumexp 834-854 ->
 * 633-644, softmax 394-429 -> 347-425 (over axis 1: 311-332, 483-514,
 * 280-305). Max and min keep a row at a time: jammed, their time did not
 * move (llvm.maximum's expansion sets it), and softmax's max pass ran 4%
 * slower. */
enum { JAM = 8 };

/* acc[j] = f(acc[j], x[idx]) for ng groups of g rows of the innermost
 * reduced dim ax from row lo, over the chunk's columns: a group's rows
 * combined in registers (sums and products pairwise, a sum of
 * exponentials and its ties as a chain from 0), then into the accumulator
 * arrays once. R_SUMEXP shifts by shift_of(marr[j]). */
static void cols_rows(em *e, cols *c, const psrc *src, int ax, rkind kind, int adt, LLVMValueRef acc, LLVMValueRef marr,
                      LLVMValueRef tarr, LLVMValueRef lo, LLVMValueRef ng, int g) {
  const tl_node *xn = src->xn;
  loop lq, lj;
  LLVMValueRef q = lw_loop_open(e, &lq, ci(e, 0), ng, 0, NULL);
  LLVMValueRef i0 = LLVMBuildNSWAdd(e->b, lo, LLVMBuildNSWMul(e->b, q, ci(e, g), ""), "");
  LLVMValueRef j = lane_open(e, c, &lj);
  bool sx = kind == R_SUMEXP || kind == R_SUMEXP_KEEP;
  LLVMValueRef v[JAM], sh = sx ? shift_of(e, adt, lane_load(e, marr, adt, j)) : NULL;
  LLVMValueRef s = sx ? cf(e, adt, 0) : NULL, t = tarr ? cf(e, adt, 0) : NULL;
  for (int u = 0; u < g; u++) {
    c->idx[ax] = LLVMBuildNSWAdd(e->b, i0, ci(e, u), "");
    v[u] = src_value(e, src, c->idx, adt);
    if (sx) s = col_step(e, src, c->idx, kind, adt, s, v[u], sh, tarr ? &t : NULL);
  }
  if (!sx) {
    for (int w = 1; w < g; w *= 2)
      for (int u = 0; u + w < g; u += 2 * w)
        v[u] = reduce_step(e, kind, adt, xn->type.dtype, v[u], v[u + w], NULL, NULL);
    s = v[0];
  }
  LLVMValueRef p = lane_ptr(e, acc, adt, j), a = LLVMBuildLoad2(e->b, vty(e, adt), p, "");
  LLVMBuildStore(e->b,
                 sx ? fast(LLVMBuildFAdd(e->b, a, s, ""), LLVMFastMathAllowReassoc)
                    : reduce_step(e, kind, adt, xn->type.dtype, a, s, NULL, NULL),
                 p);
  if (tarr) {
    LLVMValueRef tp = lane_ptr(e, tarr, adt, j), ta = LLVMBuildLoad2(e->b, vty(e, adt), tp, "");
    LLVMBuildStore(e->b, fast(LLVMBuildFAdd(e->b, ta, t, ""), LLVMFastMathAllowReassoc), tp);
  }
  lw_loop_close(e, &lj, NULL);
  lw_loop_close(e, &lq, NULL);
}

/* acc[j] = f(acc[j], x[idx]) over the reduced dims (outer) and the chunk's
 * columns (inner): the innermost reduced dim JAM rows at a time where the
 * step may be reassociated and reads nothing it stores, the rest a row at
 * a time. */
static void cols_pass(em *e, cols *c, const psrc *src, int nred, const int *red, rkind kind, int adt,
                      LLVMValueRef acc, LLVMValueRef marr, LLVMValueRef tarr) {
  const tl_node *xn = src->xn;
  loop ls[TL_MAX_RANK];
  for (int k = 0; k < nred - 1; k++)
    c->idx[red[k]] = lw_loop_open(e, &ls[k], ci(e, 0), lw_dimv(e, xn->type.dims[red[k]]), 0, NULL);
  int ax = red[nred - 1];
  LLVMValueRef n = lw_dimv(e, xn->type.dims[ax]), from = ci(e, 0);
  if (src->mode != SRC_STORE && kind != R_MAX && kind != R_MIN) {
    LLVMValueRef nq = LLVMBuildSDiv(e->b, n, ci(e, JAM), "");
    cols_rows(e, c, src, ax, kind, adt, acc, marr, tarr, from, nq, JAM);
    from = LLVMBuildNSWMul(e->b, nq, ci(e, JAM), "");
  }
  cols_rows(e, c, src, ax, kind, adt, acc, marr, tarr, from, LLVMBuildSub(e->b, n, from, ""), 1);
  for (int k = nred - 2; k >= 0; k--) lw_loop_close(e, &ls[k], NULL);
}

static LLVMValueRef lanes_sum(em *e, LLVMValueRef arr, int dt, int64_t bl);

/* ---- logsumexp's sum pass, prefetching the next row ------------------------
 * logsumexp's rows take two passes: the max reads the row from memory, the
 * sum of exponentials (an exp per element) computes from cache. Over the
 * last axis with rows of LSE_PF_BYTES or more, the sum pass runs in blocks
 * of one line (lw_prefetched_loop), each prefetching the same line of the
 * next row: the next max pass then reads from cache, and memory works
 * while the core computes this row's exps (as log_softmax's fused loop
 * does below). The sums and the tie counts accumulate in lane arrays of
 * one block, reduced once a row; the counts are i32 per lane (a row's
 * count reaches 2^31 only past 2^35 elements), summed in i64. */
enum { LSE_PF_BYTES = 2048 };

typedef struct lse_pf {
  const psrc *src;
  LLVMValueRef *idx;
  int ax, adt;
  LLVMValueRef sh, acc, ties; /* the shift; lane arrays of one block */
} lse_pf;

/* Element idx's term exp(x - sh) into lane `lane` of one block's lane
 * arrays: acc (adt) and ties (the count of terms equal to sh, of type tty:
 * i32 for logsumexp, adt for log_softmax's fused loop). */
static void lane_sumexp(em *e, const psrc *src, LLVMValueRef *idx, int adt, LLVMValueRef sh, LLVMValueRef acc,
                        LLVMValueRef ties, LLVMTypeRef tty, LLVMValueRef lane) {
  LLVMTypeRef at = vty(e, adt);
  LLVMValueRef pa = LLVMBuildInBoundsGEP2(e->b, at, acc, &lane, 1, "");
  LLVMValueRef pt = LLVMBuildInBoundsGEP2(e->b, tty, ties, &lane, 1, "");
  LLVMValueRef t = LLVMBuildLoad2(e->b, tty, pt, "");
  LLVMValueRef v = src_value(e, src, idx, adt);
  LLVMValueRef a = sumexp_term(e, adt, src->xn->type.dtype, LLVMBuildLoad2(e->b, at, pa, ""), v, sh, &t);
  LLVMBuildStore(e->b, a, pa);
  LLVMBuildStore(e->b, t, pt);
}

/* lw_prefetched_loop's body: element i into lane scratch_j (lane 0 for the
 * elements after the blocks) */
static void lse_sum_at(em *e, LLVMValueRef i, void *ctx) {
  lse_pf *c = ctx;
  c->idx[c->ax] = i;
  lane_sumexp(e, c->src, c->idx, c->adt, c->sh, c->acc, c->ties, e->i32, e->scratch_j ? e->scratch_j : ci(e, 0));
}

/* The sum pass of the row at idx over the last axis ax, prefetching the
 * next row of the ns buffers st (read like the input); s and ties (i64)
 * out. */
static void lse_sum_prefetched(em *e, const psrc *src, LLVMValueRef *idx, int ax, int adt, LLVMValueRef sh,
                               const int32_t *st, int ns, LLVMValueRef *s, LLVMValueRef *ties) {
  const tl_type *xt = &src->xn->type;
  int64_t bl = PF_LINE / tl_dtype_size((tl_dtype)xt->dtype);
  LLVMValueRef acc = LLVMBuildAlloca(e->pre, LLVMArrayType2(vty(e, adt), (uint64_t)bl), "lsesum");
  LLVMValueRef tl = LLVMBuildAlloca(e->pre, LLVMArrayType2(e->i32, (uint64_t)bl), "lseties");
  LLVMSetAlignment(acc, PF_LINE);
  LLVMSetAlignment(tl, PF_LINE);
  LLVMBuildMemSet(e->b, acc, LLVMConstInt(e->i8, 0, 0), ci(e, bl * tl_dtype_size((tl_dtype)adt)), PF_LINE);
  LLVMBuildMemSet(e->b, tl, LLVMConstInt(e->i8, 0, 0), ci(e, bl * 4), PF_LINE);
  LLVMValueRef xst[TL_MAX_RANK], len = lw_dimv(e, xt->dims[ax]);
  lw_contig_strides(e, xt->rank, xt->dims, xst);
  idx[ax] = ci(e, 0);
  LLVMValueRef next = LLVMBuildAdd(e->b, lw_offset(e, xt->rank, xst, idx), len, "");
  lse_pf c = {src, idx, ax, adt, sh, acc, tl};
  lw_prefetched_loop(e, bl, ci(e, 0), len, next, st, ns, lse_sum_at, &c, NULL);
  *s = lanes_sum(e, acc, adt, bl);
  LLVMTypeRef vt = LLVMVectorType(e->i32, (unsigned)bl), wt = LLVMVectorType(e->i64, (unsigned)bl);
  LLVMValueRef tv = LLVMBuildSExt(e->b, LLVMBuildLoad2(e->b, vt, tl, ""), wt, "");
  *ties = lw_intr(e, "llvm.vector.reduce.add", wt, &tv, 1);
}

/* logsumexp's sum of exponentials and tie count (f64, out through s and
 * ties) over the reduced dims of the row at idx: long rows over the last
 * axis prefetch the next row (above; a symbolic length tests at run time),
 * the others take reduce_pass. A row known to count fewer than 2^31 terms
 * counts its ties in i32 lanes: one masked add a vector where an f64 count
 * took two conversions' worth of adds. */
static void lse_sums(em *e, const be_kern *k, const psrc *src, int nr, const int *rd, int nk, LLVMValueRef *idx,
                     int adt, LLVMValueRef sh, LLVMValueRef *s, LLVMValueRef *ties) {
  const tl_type *xt = &src->xn->type;
  int64_t xsz = tl_dtype_size((tl_dtype)xt->dtype), cnt = 1;
  int32_t st[8];
  int ns = nr == 1 && rd[0] == xt->rank - 1 && nk >= 1 ? lw_bufs_like(e->p, k, xt, st, 8) : 0;
  int64_t d = nr ? xt->dims[rd[nr - 1]] : 0; /* nr 0: a reduction over no axis */
  bool known = true; /* and then cnt is the count, or INT32_MAX when it is not less */
  for (int i = 0; i < nr; i++) {
    int64_t di = xt->dims[rd[i]];
    known &= di >= 0;
    cnt = cnt < INT32_MAX && di < INT32_MAX ? cnt * di : INT32_MAX;
  }
  bool pf_always = ns > 0 && d >= 0 && d * xsz >= LSE_PF_BYTES, pf_test = ns > 0 && d < 0;
  if (pf_always) {
    lse_sum_prefetched(e, src, idx, rd[0], adt, sh, st, ns, s, ties);
    *ties = LLVMBuildSIToFP(e->b, *ties, e->f64, "");
    return;
  }
  /* below the run-time test a row has fewer than LSE_PF_BYTES elements */
  bool i32t = (known && cnt < INT32_MAX) || pf_test;
  LLVMBasicBlockRef bp = NULL, bs = NULL, join = NULL;
  LLVMValueRef ps = NULL, pt = NULL;
  if (pf_test) {
    bp = LLVMAppendBasicBlockInContext(e->cx, e->fn, "lsepf");
    bs = LLVMAppendBasicBlockInContext(e->cx, e->fn, "lserows");
    join = LLVMAppendBasicBlockInContext(e->cx, e->fn, "lsesums");
    LLVMValueRef bytes = LLVMBuildMul(e->b, lw_dimv(e, d), ci(e, xsz), "");
    LLVMBuildCondBr(e->b, icmp(e, LLVMIntSGE, bytes, ci(e, LSE_PF_BYTES)), bp, bs);
    LLVMPositionBuilderAtEnd(e->b, bp);
    lse_sum_prefetched(e, src, idx, rd[0], adt, sh, st, ns, &ps, &pt);
    pt = LLVMBuildSIToFP(e->b, pt, e->f64, "");
    bp = LLVMGetInsertBlock(e->b);
    LLVMBuildBr(e->b, join);
    LLVMPositionBuilderAtEnd(e->b, bs);
  }
  *s = cf(e, adt, 0);
  *ties = i32t ? LLVMConstInt(e->i32, 0, 0) : cf(e, adt, 0);
  /* below the test, one loop without interleaving (the exps bound it):
   * reduce_pass's two there made the symbolic kernel compile in 73 ms
   * cold instead of 61 */
  if (pf_test)
    row_pass(e, src, nr, rd, idx, R_SUMEXP, adt, s, ties, sh, 1);
  else
    reduce_pass(e, src, nr, rd, idx, R_SUMEXP, adt, s, ties, sh, true);
  if (i32t) *ties = LLVMBuildSIToFP(e->b, *ties, e->f64, "");
  if (!pf_test) return;
  bs = LLVMGetInsertBlock(e->b);
  LLVMBuildBr(e->b, join);
  LLVMPositionBuilderAtEnd(e->b, join);
  LLVMValueRef phs = LLVMBuildPhi(e->b, vty(e, adt), ""), pht = LLVMBuildPhi(e->b, e->f64, "");
  LLVMAddIncoming(phs, (LLVMValueRef[]){ps, *s}, (LLVMBasicBlockRef[]){bp, bs}, 2);
  LLVMAddIncoming(pht, (LLVMValueRef[]){pt, *ties}, (LLVMBasicBlockRef[]){bp, bs}, 2);
  *s = phs;
  *ties = pht;
}

void lw_k_red(em *e, const be_kern *k) {
  const tl_graph *g = e->g;
  const tl_node *n = &g->nodes[k->node];
  int32_t xid = tl_node_inputs(g, n)[0];
  const tl_node *xn = &g->nodes[xid];
  int R = xn->type.rank, op = n->op, odt = n->type.dtype;
  bool red[TL_MAX_RANK];
  lw_reduce_axes(n, R, red);
  int kept[TL_MAX_RANK], rd[TL_MAX_RANK], nk = 0, nr = 0;
  int64_t kd[TL_MAX_RANK];
  for (int i = 0; i < R; i++) {
    if (red[i]) rd[nr++] = i;
    else { kd[nk] = xn->type.dims[i]; kept[nk++] = i; }
  }
  bool ints = !isf(odt) && op != TL_OP_MEAN && op != TL_OP_LOGSUMEXP;
  int adt = ints ? TL_I64 : TL_F64;
  LLVMValueRef lo = LLVMGetParam(e->fn, 1), hi = LLVMGetParam(e->fn, 2);
  LLVMValueRef count = ci(e, 1);
  for (int i = 0; i < nr; i++) count = LLVMBuildMul(e->pre, count, lw_dimv(e, xn->type.dims[rd[i]]), "");
  if (op == TL_OP_MAX || op == TL_OP_MIN) {
    LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(e->cx, e->fn, "empty");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(e->cx, e->fn, "nonempty");
    LLVMValueRef c = LLVMBuildAnd(e->b, icmp(e, LLVMIntEQ, count, ci(e, 0)), icmp(e, LLVMIntSLT, lo, hi), "");
    LLVMBuildCondBr(e->b, c, bad, ok);
    LLVMPositionBuilderAtEnd(e->b, bad);
    lw_set_err(e, BE_ERR_EMPTY);
    LLVMBuildRetVoid(e->b);
    LLVMPositionBuilderAtEnd(e->b, ok);
  }
  bool mx = op == TL_OP_MAX;
  rkind kind = op == TL_OP_PROD ? R_PROD : op == TL_OP_MAX || op == TL_OP_LOGSUMEXP ? R_MAX
             : op == TL_OP_MIN ? R_MIN : R_SUM;
  LLVMValueRef init = kind == R_SUM ? (ints ? ci(e, 0) : cf(e, adt, 0))
                    : kind == R_PROD ? (ints ? ci(e, 1) : cf(e, adt, 1))
                    : ints ? ci(e, mx ? INT64_MIN : INT64_MAX) : cf(e, adt, kind == R_MAX ? -INFINITY : INFINITY);
  LLVMValueRef ost[TL_MAX_RANK], idx[TL_MAX_RANK], kidx[TL_MAX_RANK];
  lw_contig_strides(e, nk, kd, ost);
  psrc src = {k, xn, xid, SRC_EX};
  /* the max or min of f32 in f32: the same value, on twice the lanes */
  bool m32 = (kind == R_MAX || kind == R_MIN) && xn->type.dtype == TL_F32;
  if (R >= 2 && nr > 0 && !red[R - 1]) { /* column mode */
    cols c;
    cols_open(e, &c, &xn->type, red, idx);
    int cdt = m32 && op != TL_OP_LOGSUMEXP ? TL_F32 : adt;
    LLVMValueRef acc = lane_array(e, cdt), sacc = NULL;
    lanes_fill(e, &c, acc, cdt, cdt == adt ? init : cf(e, cdt, kind == R_MAX ? -INFINITY : INFINITY));
    cols_pass(e, &c, &src, nr, rd, kind, cdt, acc, NULL, NULL);
    LLVMValueRef tacc = NULL;
    if (op == TL_OP_LOGSUMEXP) {
      sacc = lane_array(e, adt);
      tacc = lane_array(e, adt);
      lanes_fill(e, &c, sacc, adt, cf(e, adt, 0));
      lanes_fill(e, &c, tacc, adt, cf(e, adt, 0));
      cols_pass(e, &c, &src, nr, rd, R_SUMEXP, adt, sacc, acc, tacc);
    }
    loop l;
    LLVMValueRef j = lane_open(e, &c, &l);
    LLVMValueRef r = lw_conv(e, lane_load(e, acc, cdt, j), cdt, adt);
    if (op == TL_OP_MEAN) r = LLVMBuildFDiv(e->b, r, LLVMBuildSIToFP(e->b, count, e->f64, ""), "");
    if (op == TL_OP_LOGSUMEXP) {
      LLVMValueRef fin = fcmp(e, LLVMRealOLT, lw_intr1(e, "llvm.fabs", r), cf(e, adt, INFINITY));
      LLVMValueRef lg = lw_sumexp_log(e, adt, fin, lane_load(e, sacc, adt, j), lane_load(e, tacc, adt, j));
      r = sel(e, fin, LLVMBuildFAdd(e->b, r, lg, ""), r);
    }
    for (int i = 0; i < nk; i++) kidx[i] = idx[kept[i]];
    lw_store_at(e, k->out, odt, lw_offset(e, nk, ost, kidx), lw_conv(e, r, adt, odt));
    lw_loop_close(e, &l, NULL);
    cols_close(e, &c);
    return;
  }
  LLVMBasicBlockRef sjoin;
  if (lw_short_sum(e, k, &sjoin)) return;
  loop ls[TL_MAX_RANK];
  LLVMValueRef no = NULL;
  if (nk == 0) no = lw_guard_range(e, lo, hi);
  {
    LLVMValueRef kiv[TL_MAX_RANK];
    lw_nest_open(e, ls, nk, kd, NULL, lo, hi, kiv);
    for (int i = 0; i < nk; i++) idx[kept[i]] = kiv[i];
  }
  int madt = m32 ? TL_F32 : adt;
  LLVMValueRef acc = madt == adt ? init : cf(e, madt, kind == R_MAX ? -INFINITY : INFINITY);
  LLVMValueRef nan = LLVMConstInt(e->i1, 0, 0), r;
  bool fnan = !ints && (kind == R_MAX || kind == R_MIN);
  reduce_pass(e, &src, nr, rd, idx, kind, madt, &acc, fnan ? &nan : NULL, NULL, true);
  r = lw_conv(e, fnan ? fix_nan(e, madt, acc, nan) : acc, madt, adt);
  if (op == TL_OP_MEAN) r = LLVMBuildFDiv(e->b, r, LLVMBuildSIToFP(e->b, count, e->f64, ""), "");
  if (op == TL_OP_LOGSUMEXP) {
    LLVMValueRef m = r, s, ties;
    LLVMValueRef fin = fcmp(e, LLVMRealOLT, lw_intr1(e, "llvm.fabs", m), cf(e, adt, INFINITY));
    LLVMValueRef sh = sel(e, fin, m, cf(e, adt, 0));
    lse_sums(e, k, &src, nr, rd, nk, idx, adt, sh, &s, &ties);
    r = sel(e, fin, LLVMBuildFAdd(e->b, m, lw_sumexp_log(e, adt, fin, s, ties), ""), m);
  }
  for (int i = 0; i < nk; i++) kidx[i] = idx[kept[i]];
  lw_store_at(e, k->out, odt, lw_offset(e, nk, ost, kidx), lw_conv(e, r, adt, odt));
  lw_nest_close(e, ls, nk);
  if (no) lw_guard_end(e, no);
  if (sjoin) {
    LLVMBuildBr(e->b, sjoin);
    LLVMPositionBuilderAtEnd(e->b, sjoin);
  }
}

/* The output pass of a softmax row: y = f(x - shift, post); ic as row_pass. */
static void softmax_elem(em *e, const psrc *src, LLVMValueRef *idx, LLVMValueRef sh, LLVMValueRef post,
                         const LLVMValueRef *ost) {
  const be_kern *k = src->k;
  const tl_node *n = &e->g->nodes[k->node];
  int dt = n->type.dtype;
  LLVMValueRef r;
  if (src->mode == SRC_EXP) {
    r = LLVMBuildFMul(e->b, src_value(e, src, idx, dt), post, "");
  } else {
    LLVMValueRef v = LLVMBuildFSub(e->b, src_value(e, src, idx, dt), sh, "");
    r = n->op == TL_OP_SOFTMAX ? LLVMBuildFMul(e->b, lw_m1(e, "exp", dt, v), post, "") : LLVMBuildFSub(e->b, v, post, "");
  }
  lw_store_at(e, k->out, dt, lw_offset(e, n->type.rank, ost, idx), r);
}

typedef struct sw_ctx {
  const psrc *src; LLVMValueRef *idx; int ax; LLVMValueRef sh, post; const LLVMValueRef *ost;
} sw_ctx;
static void softmax_elem_at(em *e, LLVMValueRef i, void *ctx) {
  sw_ctx *c = ctx;
  c->idx[c->ax] = i;
  softmax_elem(e, c->src, c->idx, c->sh, c->post, c->ost);
}
static LLVMValueRef softmax_off_at(em *e, LLVMValueRef i, void *ctx) {
  sw_ctx *c = ctx;
  c->idx[c->ax] = i;
  return lw_offset(e, e->g->nodes[c->src->k->node].type.rank, c->ost, c->idx);
}

/* The write pass over one row. Over the last axis it also prefetches the
 * next row of each input read in step with the output, one line per
 * block of one output line (lw_prefetched_loop): the max pass of the next
 * row then reads from cache, and memory works while this row is written.
 * In C, the same loop took a 1000 x 10000 log_softmax from 11.1-11.2 to
 * 9.5-9.7 ms. */
/* Whether softmax_write will stream kernel k's output (its i1 condition,
 * emitted in the kernel's preamble) or never (NULL). */
static LLVMValueRef softmax_streams(em *e, const be_kern *k, int ax, int ic) {
  int32_t st[8];
  if (ax != e->g->nodes[k->node].type.rank - 1 || ic != 0 || lw_stream_bufs(e->p, k, st, 8) == 0) return NULL;
  return lw_nt_wanted(e, k);
}

/* The write pass; nt: softmax_streams' condition */
static void softmax_write(em *e, const psrc *src, int ax, LLVMValueRef *idx, LLVMValueRef sh, LLVMValueRef post,
                          int ic, LLVMValueRef nton) {
  const be_kern *k = src->k;
  const tl_node *n = &e->g->nodes[k->node];
  LLVMValueRef ost[TL_MAX_RANK];
  lw_contig_strides(e, n->type.rank, n->type.dims, ost);
  int32_t st[8];
  int ns = ax == n->type.rank - 1 && ic == 0 ? lw_stream_bufs(e->p, k, st, 8) : 0;
  LLVMValueRef len = lw_dimv(e, n->type.dims[ax]);
  if (ns > 0) {
    int64_t bl = PF_LINE / tl_dtype_size((tl_dtype)e->p->bufs[k->out].dtype);
    idx[ax] = ci(e, 0);
    LLVMValueRef next = LLVMBuildAdd(e->b, lw_offset(e, n->type.rank, ost, idx), len, ""); /* the next row */
    sw_ctx c = {src, idx, ax, sh, post, ost};
    nt_lines nt = {k->out, e->p->bufs[k->out].dtype, nton, softmax_off_at};
    lw_prefetched_loop(e, bl, ci(e, 0), len, next, st, ns, softmax_elem_at, &c, nt.on ? &nt : NULL);
    return;
  }
  int red[1] = {ax};
  if (unrolled_row(e, src->xn, 1, red)) {
    for (int64_t j = 0; j < n->type.dims[ax]; j++) {
      idx[ax] = ci(e, j);
      softmax_elem(e, src, idx, sh, post, ost);
    }
    return;
  }
  loop l;
  idx[ax] = lw_loop_open(e, &l, ci(e, 0), len, 0, NULL);
  l.ic = ic;
  softmax_elem(e, src, idx, sh, post, ost);
  lw_loop_close(e, &l, NULL);
}

/* ---- log_softmax's write pass one row behind ------------------------------
 * A log_softmax row makes three passes: the max (which reads the row from
 * memory, or from cache when the previous write pass prefetched it), the
 * sum of exponentials (an exp per element: the core computes) and the
 * write pass (the row out, the next row in: memory works). One after
 * another, each left the other's unit idle. Over the last axis with long
 * rows, the write pass of row r - 1 now runs inside the sum pass of row r,
 * prefetching row r + 1, whose max pass then follows from cache; row r - 1's
 * shift and log wait in stack slots, the first row of the innermost kept
 * loop (each thread's first row) makes its sum pass alone and the last row
 * its write pass alone. In C (one thread, libmvec's exp, streaming
 * stores, Sapphire Rapids, min of 30): [1000 10000] 6.9 -> 5.6 ms, [4096
 * 1024] 2.7 -> 1.9, [256 4096] 0.66 -> 0.50. The fused loop is the write
 * pass's (lw_prefetched_loop: blocks of one output line, one vector each),
 * so the sum accumulates in lane arrays of one line (a scalar accumulator
 * would be reduced across lanes in every block), reduced once a row. */
typedef struct behind {
  const psrc *src;          /* what both passes read */
  LLVMValueRef *cur, *prev; /* row r's and row r - 1's index */
  int ax;
  LLVMValueRef sh, psh, ppost; /* row r's shift; row r - 1's shift and log */
  LLVMValueRef acc, ties;      /* lane arrays of one line */
  LLVMValueRef hoff;           /* the write's elements before its first block */
  const LLVMValueRef *ost;
} behind;

/* element s of row r into lane `lane` of the sums */
static void behind_sum(em *e, behind *c, LLVMValueRef lane, LLVMValueRef s) {
  int dt = e->g->nodes[c->src->k->node].type.dtype;
  c->cur[c->ax] = s;
  lane_sumexp(e, c->src, c->cur, dt, c->sh, c->acc, c->ties, vty(e, dt), lane);
}

/* lw_prefetched_loop's body: element i of row r - 1 written; in a block,
 * also element i - hoff of row r summed (so that the sums run in whole
 * vectors whatever the write's alignment; the head and tail elements of
 * the write, which run one by one, sum nothing) */
static void behind_elem_at(em *e, LLVMValueRef i, void *ctx) {
  behind *c = ctx;
  c->prev[c->ax] = i;
  softmax_elem(e, c->src, c->prev, c->psh, c->ppost, c->ost);
  if (e->scratch_j) behind_sum(e, c, e->scratch_j, LLVMBuildNSWSub(e->b, i, c->hoff, ""));
}
static LLVMValueRef behind_off_at(em *e, LLVMValueRef i, void *ctx) {
  behind *c = ctx;
  c->prev[c->ax] = i;
  return lw_offset(e, e->g->nodes[c->src->k->node].type.rank, c->ost, c->prev);
}

/* The sums the write's blocks left: whole blocks from block `from` on (one
 * vector each; at most one after the write's blocks, as the write's head
 * is shorter than a block; all of the row's on a first row), then the
 * last elements one by one into lane 0. */
static void behind_rest(em *e, behind *c, int64_t bl, LLVMValueRef from, LLVMValueRef len) {
  LLVMValueRef nb = LLVMBuildUDiv(e->b, len, ci(e, bl), "");
  loop ob, ib, tb;
  LLVMValueRef b = lw_loop_open(e, &ob, from, nb, 0, NULL);
  ob.nounroll = 1;
  LLVMValueRef j = lw_loop_open(e, &ib, ci(e, 0), ci(e, bl), 0, NULL);
  ib.ic = 1;
  ib.vectorize = 1;
  behind_sum(e, c, j, LLVMBuildNSWAdd(e->b, LLVMBuildNSWMul(e->b, b, ci(e, bl), ""), j, ""));
  lw_loop_close(e, &ib, NULL);
  lw_loop_close(e, &ob, NULL);
  LLVMValueRef k = lw_loop_open(e, &tb, LLVMBuildNSWMul(e->b, nb, ci(e, bl), ""), len, 0, NULL);
  tb.ic = -1;
  tb.nounroll = 1;
  behind_sum(e, c, ci(e, 0), k);
  lw_loop_close(e, &tb, NULL);
}

/* the sum of a lane array of bl elements of dt */
static LLVMValueRef lanes_sum(em *e, LLVMValueRef arr, int dt, int64_t bl) {
  LLVMTypeRef vt = LLVMVectorType(vty(e, dt), (unsigned)bl);
  LLVMValueRef v = LLVMBuildLoad2(e->b, vt, arr, "");
  LLVMValueRef args[2] = {cf(e, dt, 0), v};
  return fast(lw_intr(e, "llvm.vector.reduce.fadd", vt, args, 2), LLVMFastMathAllowReassoc);
}

/* Rows shorter than this (in bytes) keep the passes: the fused loop runs
 * one vector a block where the sum pass alone runs four, and each row pays
 * for its lane arrays, so rows that sit in L2 lost more than the overlap
 * won. AOT objects, one thread, min of 40-60 alternating calls, Sapphire
 * Rapids, with the fused loop at every length: f32 [16384 100] 0.83-0.89x,
 * [8192 256] 0.87-1.10x, [4096 512] 0.97-1.03x, [4096 768] 0.94-1.17x, [2048 1000] 1.10-1.31x;
 * f64 [8192 256] (2 KiB rows) 0.85-0.89x, [4096 512] 1.13-1.47x. */
enum { BEHIND_BYTES = 3072 };

/* Whether kernel k's log_softmax rows can run their write pass one row
 * behind (see above): the last axis, rows long enough for the long-row
 * loops (ic 0), a kept dim to loop over, an input read in step with the
 * output, and a producer evaluated in each pass (SRC_EX: a stored one
 * would be read back from the row being written). */
static bool behind_ok(const em *e, const be_kern *k, const psrc *src, int ax, int ic, int ns) {
  const tl_node *n = &e->g->nodes[k->node];
  return n->op == TL_OP_LOG_SOFTMAX && ax == n->type.rank - 1 && n->type.rank >= 2 && ic == 0 && ns > 0 &&
         src->mode == SRC_EX;
}

/* The row at idx (its innermost kept index idx[nk - 1], in [start, end)):
 * sum pass beside the previous row's write pass, then the next row's max. */
static void log_softmax_behind(em *e, const be_kern *k, const psrc *src, int nk, LLVMValueRef *idx, LLVMValueRef start,
                               LLVMValueRef end, LLVMValueRef nton, const int32_t *st, int ns) {
  const tl_node *n = &e->g->nodes[k->node];
  int R = n->type.rank, ax = R - 1, dt = n->type.dtype, red[1] = {ax};
  int64_t bl = PF_LINE / tl_dtype_size((tl_dtype)dt);
  LLVMTypeRef ft = vty(e, dt), lty = LLVMArrayType2(ft, (uint64_t)bl);
  LLVMValueRef acc = LLVMBuildAlloca(e->pre, lty, "lanesum"), ties = LLVMBuildAlloca(e->pre, lty, "laneties");
  LLVMSetAlignment(acc, PF_LINE);
  LLVMSetAlignment(ties, PF_LINE);
  LLVMValueRef mslot = LLVMBuildAlloca(e->pre, ft, "nextmax"), nslot = LLVMBuildAlloca(e->pre, e->i1, "nextnan");
  LLVMValueRef shslot = LLVMBuildAlloca(e->pre, ft, "prevshift"), postslot = LLVMBuildAlloca(e->pre, ft, "prevlog");
  LLVMValueRef len = lw_dimv(e, n->type.dims[ax]), row = idx[nk - 1];
  LLVMValueRef first = icmp(e, LLVMIntEQ, row, start);
  LLVMBasicBlockRef bf = LLVMAppendBasicBlockInContext(e->cx, e->fn, "firstmax");
  LLVMBasicBlockRef bh = LLVMAppendBasicBlockInContext(e->cx, e->fn, "havemax");
  LLVMBuildCondBr(e->b, first, bf, bh);
  LLVMPositionBuilderAtEnd(e->b, bf);
  LLVMValueRef m = cf(e, dt, -INFINITY), nan = LLVMConstInt(e->i1, 0, 0);
  reduce_pass(e, src, 1, red, idx, R_MAX, dt, &m, &nan, NULL, false);
  LLVMBuildStore(e->b, m, mslot);
  LLVMBuildStore(e->b, nan, nslot);
  LLVMBuildBr(e->b, bh);
  LLVMPositionBuilderAtEnd(e->b, bh);
  nan = LLVMBuildLoad2(e->b, e->i1, nslot, "");
  m = fix_nan(e, dt, LLVMBuildLoad2(e->b, ft, mslot, ""), nan);
  LLVMValueRef fin = fcmp(e, LLVMRealOLT, lw_intr1(e, "llvm.fabs", m), cf(e, dt, INFINITY));
  LLVMValueRef sh = sel(e, LLVMBuildOr(e->b, fin, nan, ""), m, cf(e, dt, 0));
  /* the sum pass beside row r - 1's writes; the first row takes the
   * blocks behind_rest runs after them, all of its row (one loop for both:
   * a pass of its own for the first row cost compile time) */
  LLVMBuildMemSet(e->b, acc, LLVMConstInt(e->i8, 0, 0), ci(e, PF_LINE), PF_LINE);
  LLVMBuildMemSet(e->b, ties, LLVMConstInt(e->i8, 0, 0), ci(e, PF_LINE), PF_LINE);
  LLVMValueRef ost[TL_MAX_RANK], prev[TL_MAX_RANK];
  lw_contig_strides(e, R, n->type.dims, ost);
  behind c = {src, idx, prev, ax, sh, NULL, NULL, acc, ties, ci(e, 0), ost};
  LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(e->cx, e->fn, "sumbehind");
  LLVMBasicBlockRef bj = LLVMAppendBasicBlockInContext(e->cx, e->fn, "sumrest");
  LLVMBasicBlockRef ba = LLVMGetInsertBlock(e->b);
  LLVMBuildCondBr(e->b, first, bj, bb);
  LLVMPositionBuilderAtEnd(e->b, bb);
  memcpy(prev, idx, sizeof prev);
  prev[nk - 1] = LLVMBuildNSWSub(e->b, row, ci(e, 1), "");
  prev[ax] = ci(e, 0);
  LLVMValueRef ahead = LLVMBuildAdd(e->b, lw_offset(e, R, ost, prev), LLVMBuildMul(e->b, len, ci(e, 2), ""), "");
  c.psh = LLVMBuildLoad2(e->b, ft, shslot, "");
  c.ppost = LLVMBuildLoad2(e->b, ft, postslot, "");
  nt_lines nt = {k->out, dt, nton, behind_off_at};
  if (nton) c.hoff = lw_line_head(e, &nt, ci(e, 0), len, &c);
  lw_prefetched_loop(e, bl, ci(e, 0), len, ahead, st, ns, behind_elem_at, &c, nton ? &nt : NULL);
  LLVMValueRef done = LLVMBuildUDiv(e->b, LLVMBuildNSWSub(e->b, len, c.hoff, ""), ci(e, bl), "");
  bb = LLVMGetInsertBlock(e->b);
  LLVMBuildBr(e->b, bj);
  LLVMPositionBuilderAtEnd(e->b, bj);
  LLVMValueRef from = LLVMBuildPhi(e->b, e->i64, "");
  LLVMAddIncoming(from, (LLVMValueRef[]){ci(e, 0), done}, (LLVMBasicBlockRef[]){ba, bb}, 2);
  behind_rest(e, &c, bl, from, len);
  LLVMValueRef s[2] = {lanes_sum(e, acc, dt, bl), lanes_sum(e, ties, dt, bl)};
  LLVMValueRef post = lw_sumexp_log(e, dt, fin, s[0], s[1]);
  LLVMBuildStore(e->b, sh, shslot);
  LLVMBuildStore(e->b, post, postslot);
  /* the next row's max (this row's again on the last row: no branch) */
  LLVMValueRef nidx[TL_MAX_RANK];
  memcpy(nidx, idx, sizeof nidx);
  LLVMValueRef r1 = LLVMBuildNSWAdd(e->b, row, ci(e, 1), "");
  LLVMValueRef more = icmp(e, LLVMIntSLT, r1, end);
  nidx[nk - 1] = sel(e, more, r1, row);
  m = cf(e, dt, -INFINITY);
  nan = LLVMConstInt(e->i1, 0, 0);
  reduce_pass(e, src, 1, red, nidx, R_MAX, dt, &m, &nan, NULL, false);
  LLVMBuildStore(e->b, m, mslot);
  LLVMBuildStore(e->b, nan, nslot);
  /* the last row writes itself */
  LLVMBasicBlockRef bl1 = LLVMAppendBasicBlockInContext(e->cx, e->fn, "lastwrite");
  LLVMBasicBlockRef bd = LLVMAppendBasicBlockInContext(e->cx, e->fn, "rowdone");
  LLVMBuildCondBr(e->b, more, bd, bl1);
  LLVMPositionBuilderAtEnd(e->b, bl1);
  softmax_write(e, src, ax, idx, sh, post, 0, nton);
  LLVMBuildBr(e->b, bd);
  LLVMPositionBuilderAtEnd(e->b, bd);
}

/* One softmax or log_softmax row in passes: the max, the sum of
 * exponentials, the write pass; nton: softmax_streams' condition. */
static void softmax_row(em *e, const be_kern *k, const psrc *first, const psrc *rest, int ax, LLVMValueRef *idx, int ic,
                        LLVMValueRef nton) {
  const tl_node *n = &e->g->nodes[k->node];
  int dt = n->type.dtype, red[1] = {ax};
  bool soft = n->op == TL_OP_SOFTMAX;
  LLVMValueRef acc = cf(e, dt, -INFINITY), nan = LLVMConstInt(e->i1, 0, 0);
  reduce_pass(e, first, 1, red, idx, R_MAX, dt, &acc, &nan, NULL, false);
  LLVMValueRef m = fix_nan(e, dt, acc, nan);
  LLVMValueRef fin = fcmp(e, LLVMRealOLT, lw_intr1(e, "llvm.fabs", m), cf(e, dt, INFINITY));
  LLVMValueRef sh = sel(e, LLVMBuildOr(e->b, fin, nan, ""), m, cf(e, dt, 0));
  LLVMValueRef s = cf(e, dt, 0), ties = cf(e, dt, 0);
  /* Softmax keeps each exp in the output and its write pass only scales:
   * one exp per element instead of two (one thread, 1024 x 1024: 1.34 ->
   * 0.73 ms; attention's 2048 x 2048 on two threads: 3.64 -> 3.35 ms).
   * Its write pass then never streams: the sum pass's stores have brought
   * the row's lines into cache, and a streaming store to a cached line
   * costs more than an ordinary one (1000 x 10000 into a caller's buffer,
   * one thread: 18.8-19.0 ms kept and streamed; 11.6-14.1 kept, not
   * streamed; 11.8-12.0 two exps and streamed). log_softmax has no exp
   * in its write pass and streams. */
  bool keep = soft;
  reduce_pass(e, rest, 1, red, idx, keep ? R_SUMEXP_KEEP : R_SUMEXP, dt, &s, &ties, sh, false);
  LLVMValueRef post = soft ? LLVMBuildFDiv(e->b, cf(e, dt, 1), LLVMBuildFAdd(e->b, s, ties, ""), "")
                           : lw_sumexp_log(e, dt, fin, s, ties);
  psrc wsrc = *rest;
  if (keep) wsrc.mode = SRC_EXP;
  softmax_write(e, &wsrc, ax, idx, sh, post, ic, nton);
}

void lw_k_softmax(em *e, const be_kern *k) {
  const tl_graph *g = e->g;
  const tl_node *n = &g->nodes[k->node];
  int32_t xid = tl_node_inputs(g, n)[0];
  const tl_node *xn = &g->nodes[xid];
  int R = n->type.rank, dt = n->type.dtype;
  bool soft = n->op == TL_OP_SOFTMAX;
  int ax = (n->attrs.present & TL_A_AXIS) ? n->attrs.axes[0] : -1;
  if (ax < 0) ax += R;
  int kept[TL_MAX_RANK], nk = 0;
  int64_t kd[TL_MAX_RANK];
  for (int i = 0; i < R; i++)
    if (i != ax) { kd[nk] = n->type.dims[i]; kept[nk++] = i; }
  LLVMValueRef lo = LLVMGetParam(e->fn, 1), hi = LLVMGetParam(e->fn, 2);
  LLVMValueRef idx[TL_MAX_RANK];
  int red[1] = {ax};
  bool store = computes_inline(e->p, xid);
  psrc first = {k, xn, xid, store ? SRC_STORE : SRC_EX}, rest = {k, xn, xid, store ? SRC_OUT : SRC_EX};
  e->unroll_rows = ax == R - 1;
  if (ax != R - 1) { /* column mode: max, sum of exponentials, post, write */
    bool rd[TL_MAX_RANK] = {false};
    rd[ax] = true;
    cols c;
    cols_open(e, &c, &n->type, rd, idx);
    LLVMValueRef macc = lane_array(e, dt), sacc = lane_array(e, dt);
    lanes_fill(e, &c, macc, dt, cf(e, dt, -INFINITY));
    LLVMValueRef tacc = lane_array(e, dt);
    cols_pass(e, &c, &first, 1, red, R_MAX, dt, macc, NULL, NULL);
    lanes_fill(e, &c, sacc, dt, cf(e, dt, 0));
    lanes_fill(e, &c, tacc, dt, cf(e, dt, 0));
    /* softmax keeps each exp in the output, and its write pass scales
     * them (one exp per element, as the rows do) */
    cols_pass(e, &c, &rest, 1, red, soft ? R_SUMEXP_KEEP : R_SUMEXP, dt, sacc, macc, tacc);
    loop l, lw[2];
    LLVMValueRef j = lane_open(e, &c, &l), p = lane_ptr(e, sacc, dt, j);
    LLVMValueRef s = LLVMBuildLoad2(e->b, vty(e, dt), p, ""), t = lane_load(e, tacc, dt, j);
    LLVMValueRef mj = lane_load(e, macc, dt, j);
    LLVMValueRef fin = fcmp(e, LLVMRealOLT, lw_intr1(e, "llvm.fabs", mj), cf(e, dt, INFINITY));
    LLVMBuildStore(e->b, soft ? LLVMBuildFDiv(e->b, cf(e, dt, 1), LLVMBuildFAdd(e->b, s, t, ""), "")
                              : lw_sumexp_log(e, dt, fin, s, t), p);
    lw_loop_close(e, &l, NULL);
    LLVMValueRef ost[TL_MAX_RANK];
    lw_contig_strides(e, R, n->type.dims, ost);
    idx[ax] = lw_loop_open(e, &lw[0], ci(e, 0), lw_dimv(e, n->type.dims[ax]), 0, NULL);
    j = lane_open(e, &c, &lw[1]);
    LLVMValueRef post = lane_load(e, sacc, dt, j), r;
    if (soft) {
      psrc kept_exp = {k, xn, xid, SRC_EXP};
      r = LLVMBuildFMul(e->b, src_value(e, &kept_exp, idx, dt), post, "");
    } else {
      LLVMValueRef v =
          LLVMBuildFSub(e->b, src_value(e, &rest, idx, dt), shift_of(e, dt, lane_load(e, macc, dt, j)), "");
      r = LLVMBuildFSub(e->b, v, post, "");
    }
    lw_store_at(e, k->out, dt, lw_offset(e, R, ost, idx), r);
    lw_loop_close(e, &lw[1], NULL);
    lw_loop_close(e, &lw[0], NULL);
    cols_close(e, &c);
    return;
  }
  LLVMBasicBlockRef join;
  if (lw_short_softmax(e, k, &join)) return;
  loop ls[TL_MAX_RANK];
  LLVMValueRef kiv[TL_MAX_RANK], no = NULL;
  if (nk == 0) no = lw_guard_range(e, lo, hi);
  lw_nest_open(e, ls, nk, kd, NULL, lo, hi, kiv);
  for (int i = 0; i < nk; i++) idx[kept[i]] = kiv[i];
  /* the input is converted to dt inside the passes (ints become f64) */
  /* Rows of a known length of 2 up to a vector are lower_short.c's, and a
   * symbolic length that is a power of two up to a vector (behind a
   * run-time test there; the other lengths here). A
   * symbolic row length gets the long-row loops only: the short-row
   * versions (as reductions have) made no difference to softmax on rows of
   * 8 and 32 (rows of 8: 0.107 vs 0.109 ms over 2048 rows) but made the
   * kernel twice the code, and attention's cold JIT 13.9 -> 10.4 ms
   * without them. */
  int64_t d = n->type.dims[ax];
  int ic = d >= 0 && d < SHORT_ROW ? 1 : 0;
  int32_t st[8];
  int ns = lw_stream_bufs(e->p, k, st, 8);
  /* softmax keeps its exps in the output and never streams (softmax_row) */
  LLVMValueRef nton = soft ? NULL : softmax_streams(e, k, ax, ic);
  if (behind_ok(e, k, &first, ax, ic, ns)) {
    /* rows shorter than BEHIND_BYTES in passes; a symbolic length chooses at run time */
    int64_t sz = tl_dtype_size((tl_dtype)dt);
    LLVMValueRef start = nk == 1 ? lo : ci(e, 0), end = nk == 1 ? hi : lw_dimv(e, kd[nk - 1]);
    if (d >= 0 && d * sz >= BEHIND_BYTES) {
      log_softmax_behind(e, k, &first, nk, idx, start, end, nton, st, ns);
    } else if (d >= 0) {
      softmax_row(e, k, &first, &rest, ax, idx, ic, nton);
    } else {
      LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(e->cx, e->fn, "behind");
      LLVMBasicBlockRef bp = LLVMAppendBasicBlockInContext(e->cx, e->fn, "inpasses");
      LLVMBasicBlockRef bj = LLVMAppendBasicBlockInContext(e->cx, e->fn, "rowend");
      LLVMBuildCondBr(e->b, icmp(e, LLVMIntSGE, lw_dimv(e, d), ci(e, BEHIND_BYTES / sz)), bb, bp);
      LLVMPositionBuilderAtEnd(e->b, bb);
      log_softmax_behind(e, k, &first, nk, idx, start, end, nton, st, ns);
      LLVMBuildBr(e->b, bj);
      LLVMPositionBuilderAtEnd(e->b, bp);
      softmax_row(e, k, &first, &rest, ax, idx, ic, nton);
      LLVMBuildBr(e->b, bj);
      LLVMPositionBuilderAtEnd(e->b, bj);
    }
  } else {
    softmax_row(e, k, &first, &rest, ax, idx, ic, nton);
  }
  lw_nest_close(e, ls, nk);
  if (no) lw_guard_end(e, no);
  if (join) {
    LLVMBuildBr(e->b, join);
    LLVMPositionBuilderAtEnd(e->b, join);
  }
}

/* ---- row kernels (BE_K_ROWS, plan.c "row kernels") ------------------------
 * For each row (the dims before the last; the first split across
 * threads): one pass per row reduction, in node order (a later one may
 * read an earlier one's value), then the write pass, which evaluates the
 * kernel's expression with this row's values (lw_ex returns them). Each
 * reduction is computed as lw_k_red's row mode computes it (an f64
 * accumulator, max/min's NaN flag, mean divided by the count) and
 * converted to its dtype: the numbers its buffer would have held. */
typedef struct rows_ctx { const be_kern *k; LLVMValueRef *idx; int ax; } rows_ctx;
static void rows_elem_at(em *e, LLVMValueRef i, void *ctx) {
  rows_ctx *c = ctx;
  const be_kern *k = c->k;
  const tl_node *n = &e->g->nodes[k->node];
  const be_buf *ob = &e->p->bufs[k->out];
  bool own = e->p->buf_of[k->node] == k->out && e->p->state[k->node] == BE_S_MAT;
  c->idx[c->ax] = i;
  LLVMValueRef v = own ? lw_ex_def(e, k->node, c->idx) : lw_ex(e, k->node, c->idx);
  lw_store_at(e, k->out, ob->dtype, out_offset(e, k, c->idx), lw_conv(e, v, n->type.dtype, ob->dtype));
}
static LLVMValueRef rows_off_at(em *e, LLVMValueRef i, void *ctx) {
  rows_ctx *c = ctx;
  c->idx[c->ax] = i;
  return out_offset(e, c->k, c->idx);
}

static rkind row_kind(int op) { return op == TL_OP_MAX ? R_MAX : op == TL_OP_MIN ? R_MIN : R_SUM; }
static LLVMValueRef row_init(em *e, rkind kind) {
  return cf(e, TL_F64, kind == R_SUM ? 0 : kind == R_MAX ? -INFINITY : INFINITY);
}

/* A row kernel with two or more reductions runs its first reduction one
 * row ahead: the second pass over row r also makes the first pass over row
 * r + 1 (the same row again for the last row of the loop), and row r + 1
 * then starts from that result, kept in a stack slot. The first pass is the
 * one that reads the row from memory; alone, it left the core waiting on
 * memory while the later passes over the cached row did not use it. Beside
 * the second pass the loads of the next row overlap that pass's work. In C
 * (gcc -O2 -march=native, layer norm [4096 1024] f32 into a buffer, one
 * thread, Sapphire Rapids) 1.72 -> 1.45 ms, the same bits. The first
 * reduction reads no row value (rows are in node order), so it can run
 * ahead; each accumulator still sums its own row, in f64 (docs/backend.md
 * on the order within a row). */
typedef struct ahead {
  LLVMValueRef acc, nan;   /* stack slots: the first reduction's accumulator and NaN flag */
  LLVMValueRef start, end; /* the innermost kept loop's range */
} ahead;

/* Whether kernel k's first reduction can run ahead (see above): two
 * reductions at least, a kept dim to loop over, both read rows of one length. */
static bool ahead_ok(const em *e, const be_kern *k, int R) {
  if (k->nrows < 2 || R < 2) return false;
  const tl_graph *g = e->g;
  const tl_node *a = &g->nodes[tl_node_inputs(g, &g->nodes[k->rows[0]])[0]];
  const tl_node *b = &g->nodes[tl_node_inputs(g, &g->nodes[k->rows[1]])[0]];
  return a->type.rank == R && b->type.rank == R && a->type.dims[R - 1] == b->type.dims[R - 1];
}

/* The second reduction's pass over the row at idx fused with the first
 * reduction's pass over the row at nidx: one loop carrying both
 * accumulators and, where there are, NaN flags (v: a2, n2, a1, n1; a NULL
 * flag is none). A by_row_length loop. */
typedef struct fp_ctx { const psrc *s2, *s1; LLVMValueRef *idx, *nidx; int ax; rkind k2, k1; } fp_ctx;
static void fused_pass(em *e, int ic, LLVMValueRef *v, void *ctx) {
  fp_ctx *c = ctx;
  LLVMValueRef init[4];
  int slot[4], nc = 0;
  for (int q = 0; q < 4; q++) {
    slot[q] = v[q] ? nc : -1;
    if (v[q]) init[nc++] = v[q];
  }
  loop l;
  LLVMValueRef j = lw_loop_open(e, &l, ci(e, 0), lw_dimv(e, c->s2->xn->type.dims[c->ax]), nc, init);
  l.ic = ic;
  c->idx[c->ax] = c->nidx[c->ax] = j;
  LLVMValueRef cur[4], next[4];
  for (int q = 0; q < 4; q++) cur[q] = v[q] ? l.phis[slot[q]] : NULL;
  cur[0] = row_step(e, c->s2, c->idx, c->k2, TL_F64, cur[0], cur[1] ? &cur[1] : NULL, NULL);
  cur[2] = row_step(e, c->s1, c->nidx, c->k1, TL_F64, cur[2], cur[3] ? &cur[3] : NULL, NULL);
  for (int q = 0; q < 4; q++)
    if (v[q]) next[slot[q]] = cur[q];
  lw_loop_close(e, &l, next);
  for (int q = 0; q < 4; q++)
    if (v[q]) v[q] = l.phis[slot[q]];
}

void lw_k_rows(em *e, const be_kern *k) {
  const tl_graph *g = e->g;
  const tl_node *n = &g->nodes[k->node];
  int R = n->type.rank, nk = R - 1, red[1] = {R - 1};
  int64_t kd[TL_MAX_RANK];
  for (int i = 0; i < nk; i++) kd[i] = n->type.dims[i];
  LLVMValueRef lo = LLVMGetParam(e->fn, 1), hi = LLVMGetParam(e->fn, 2);
  LLVMValueRef len = lw_dimv(e, n->type.dims[R - 1]);
  int32_t maxmin = -1; /* the first max or min: an empty row is its error */
  for (int i = 0; i < k->nrows && maxmin < 0; i++) {
    int op = g->nodes[k->rows[i]].op;
    if (op == TL_OP_MAX || op == TL_OP_MIN) maxmin = k->rows[i];
  }
  if (maxmin >= 0) { /* max/min of an empty row: lw_k_red's error */
    LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(e->cx, e->fn, "empty");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(e->cx, e->fn, "nonempty");
    LLVMValueRef c = LLVMBuildAnd(e->b, icmp(e, LLVMIntEQ, len, ci(e, 0)), icmp(e, LLVMIntSLT, lo, hi), "");
    LLVMBuildCondBr(e->b, c, bad, ok);
    LLVMPositionBuilderAtEnd(e->b, bad);
    e->knode = maxmin;
    lw_set_err(e, BE_ERR_EMPTY);
    e->knode = k->node;
    LLVMBuildRetVoid(e->b);
    LLVMPositionBuilderAtEnd(e->b, ok);
  }
  loop ls[TL_MAX_RANK];
  LLVMValueRef idx[TL_MAX_RANK];
  lw_nest_open(e, ls, nk, kd, NULL, lo, hi, idx);
  LLVMValueRef *rv = tl_xcalloc((size_t)g->nnodes + 1, sizeof *rv);
  e->rowval = rv;
  ahead ah = {0};
  bool run_ahead = ahead_ok(e, k, R);
  if (run_ahead) {
    ah.acc = LLVMBuildAlloca(e->pre, e->f64, "ahead");
    ah.nan = LLVMBuildAlloca(e->pre, e->i1, "aheadnan");
    ah.start = nk == 1 ? lo : ci(e, 0);
    ah.end = nk == 1 ? hi : lw_dimv(e, kd[nk - 1]);
  }
  for (int i = 0; i < k->nrows; i++) {
    int32_t s = k->rows[i];
    const tl_node *sn = &g->nodes[s];
    int32_t xid = tl_node_inputs(g, sn)[0];
    int op = sn->op, adt = TL_F64;
    rkind kind = row_kind(op);
    LLVMValueRef acc = row_init(e, kind);
    LLVMValueRef nan = LLVMConstInt(e->i1, 0, 0);
    bool fnan = kind != R_SUM;
    psrc src = {k, &g->nodes[xid], xid, SRC_EX};
    if (run_ahead && i == 0) {
      /* the loop's first row makes its own first pass; the others have it */
      LLVMBasicBlockRef first = LLVMAppendBasicBlockInContext(e->cx, e->fn, "aheadfirst");
      LLVMBasicBlockRef have = LLVMAppendBasicBlockInContext(e->cx, e->fn, "aheadhave");
      LLVMBuildCondBr(e->b, icmp(e, LLVMIntEQ, idx[nk - 1], ah.start), first, have);
      LLVMPositionBuilderAtEnd(e->b, first);
      reduce_pass(e, &src, 1, red, idx, kind, adt, &acc, fnan ? &nan : NULL, NULL, true);
      LLVMBuildStore(e->b, acc, ah.acc);
      LLVMBuildStore(e->b, nan, ah.nan);
      LLVMBuildBr(e->b, have);
      LLVMPositionBuilderAtEnd(e->b, have);
      acc = LLVMBuildLoad2(e->b, e->f64, ah.acc, "");
      nan = LLVMBuildLoad2(e->b, e->i1, ah.nan, "");
    } else if (run_ahead && i == 1) {
      const tl_node *fn0 = &g->nodes[k->rows[0]];
      int32_t x0 = tl_node_inputs(g, fn0)[0];
      psrc src0 = {k, &g->nodes[x0], x0, SRC_EX};
      rkind kind0 = row_kind(fn0->op);
      LLVMValueRef nidx[TL_MAX_RANK];
      memcpy(nidx, idx, sizeof nidx);
      LLVMValueRef r1 = LLVMBuildNSWAdd(e->b, idx[nk - 1], ci(e, 1), "");
      nidx[nk - 1] = sel(e, icmp(e, LLVMIntSLT, r1, ah.end), r1, idx[nk - 1]);
      fp_ctx fc = {&src, &src0, idx, nidx, R - 1, kind, kind0};
      LLVMValueRef no = LLVMConstInt(e->i1, 0, 0);
      LLVMValueRef v[4] = {acc, fnan ? nan : NULL, row_init(e, kind0), kind0 != R_SUM ? no : NULL};
      by_row_length(e, src.xn->type.dims[R - 1], fused_pass, &fc, v, 4);
      acc = v[0];
      if (fnan) nan = v[1];
      LLVMBuildStore(e->b, v[2], ah.acc);
      LLVMBuildStore(e->b, v[3] ? v[3] : no, ah.nan);
    } else {
      reduce_pass(e, &src, 1, red, idx, kind, adt, &acc, fnan ? &nan : NULL, NULL, true);
    }
    LLVMValueRef r = fnan ? fix_nan(e, adt, acc, nan) : acc;
    if (op == TL_OP_MEAN) r = LLVMBuildFDiv(e->b, r, LLVMBuildSIToFP(e->b, len, e->f64, ""), "");
    rv[s] = lw_conv(e, r, adt, sn->type.dtype);
  }
  /* the write pass prefetches the next row of what it reads in step with
   * the output (as softmax's does): the next row's first pass then reads
   * from cache while memory works during this row's writes */
  int32_t st[8];
  int ns = lw_stream_bufs(e->p, k, st, 8);
  rows_ctx c = {k, idx, R - 1};
  if (ns > 0) {
    int64_t bl = PF_LINE / tl_dtype_size((tl_dtype)e->p->bufs[k->out].dtype);
    idx[R - 1] = ci(e, 0);
    LLVMValueRef next = LLVMBuildAdd(e->b, out_offset(e, k, idx), len, "");
    nt_lines nt = {k->out, e->p->bufs[k->out].dtype, lw_nt_wanted(e, k), rows_off_at};
    lw_prefetched_loop(e, bl, ci(e, 0), len, next, st, ns, rows_elem_at, &c, nt.on ? &nt : NULL);
  } else {
    loop l;
    rows_elem_at(e, lw_loop_open(e, &l, ci(e, 0), len, 0, NULL), &c);
    lw_loop_close(e, &l, NULL);
  }
  lw_nest_close(e, ls, nk);
  e->rowval = NULL;
  tl_free(rv);
}
