/* lower_pass.c - a one-pass group (plan_pass.c) as two kernels: the run
 * over parts of rows, block by block (z = X w for the block's rows, the
 * members' kernels on the block's rows, then the block's share of X^T r
 * added into its part's row of the partial buffer while the block is in
 * cache), and the sum of the parts' rows, in part order, into the last
 * product's output. The block loops are the backend's own (not ?gemv: see
 * block_fn), in helper functions of explicit vectors. */
#include "backend/lower_internal.h"

#include <stdio.h>

static LLVMValueRef smin(em *e, LLVMValueRef a, LLVMValueRef b) { return sel(e, icmp(e, LLVMIntSLT, a, b), a, b); }

static LLVMValueRef at(em *e, int dt, LLVMValueRef base, LLVMValueRef i) {
  return LLVMBuildGEP2(e->b, mty(e, dt), base, &i, 1, "");
}
/* a part's row of the partial buffer: d elements rounded up to whole
 * lines (BE_PASS_LINE bytes) where that is at most 2 d (the buffer holds
 * 2 d per part: plan_pass.c), else d (rows of a few elements) */
static LLVMValueRef pad_row(em *e, LLVMValueRef d, int64_t size) {
  int64_t per = BE_PASS_LINE / size;
  LLVMValueRef pad = LLVMBuildAnd(e->pre, LLVMBuildAdd(e->pre, d, ci(e, per - 1), ""), ci(e, -per), "");
  LLVMValueRef fits = LLVMBuildICmp(e->pre, LLVMIntSLE, pad, LLVMBuildMul(e->pre, d, ci(e, 2), ""), "");
  return LLVMBuildSelect(e->pre, fits, pad, d, "");
}

/* A block's helper: void f(X, a, b, rows, d) with X the block's rows (rows
 * x d, row major), its pointers not aliasing one another (each is another
 * buffer of the plan: plan_pass.c). Its own function, with plain operands:
 * in the part's loop nest, under the block bounds' min()s, LLVM's loop
 * strength reduction took 40 ms over the same loops. */
static LLVMValueRef helper(em *e, const char *name, int head, LLVMTypeRef *fty) {
  char nm[48];
  snprintf(nm, sizeof nm, "pass%d_%s", head, name);
  LLVMTypeRef pt[5] = {e->ptr, e->ptr, e->ptr, e->i64, e->i64};
  *fty = LLVMFunctionType(e->vd, pt, 5, 0);
  LLVMValueRef f = LLVMAddFunction(e->m, nm, *fty);
  lw_kernel_fn(e, f);
  unsigned na = LLVMGetEnumAttributeKindForName("noalias", 7);
  for (unsigned k = 1; k <= 3; k++) LLVMAddAttributeAtIndex(f, k, LLVMCreateEnumAttribute(e->cx, na, 0));
  e->fn = f;
  LLVMPositionBuilderAtEnd(e->b, LLVMAppendBasicBlockInContext(e->cx, f, "entry"));
  return f;
}

/* ---- explicit vectors ------------------------------------------------------
 * The helpers' loops over a row are written in vectors of the target's
 * width, the row's last partial vector through masked loads and stores:
 * left to the loop vectoriser (d = 100), each loop became a vector loop, a
 * vector epilogue and a scalar remainder, and codegen of the group took
 * 25-30 ms more than without it, against 6-10 ms here. */

typedef struct vrow {
  int dt, vl;          /* element dtype, lanes */
  LLVMTypeRef vt;      /* <vl x T> */
  LLVMValueRef lanes;  /* <0, 1, .., vl - 1> (i32: an i64 compare of 16 lanes is split in two) */
} vrow;

static void vrow_init(em *e, vrow *v, int dt) {
  int bytes = e->avx512 ? 64 : e->avx2 ? 32 : 16;
  v->dt = dt;
  v->vl = bytes / (int)tl_dtype_size((tl_dtype)dt);
  v->vt = LLVMVectorType(vty(e, dt), (unsigned)v->vl);
  LLVMValueRef l[16];
  for (int k = 0; k < v->vl; k++) l[k] = LLVMConstInt(e->i32, (unsigned long long)k, 0);
  v->lanes = LLVMConstVector(l, (unsigned)v->vl);
}

/* x in every lane of a vector of vl lanes */
static LLVMValueRef splat(em *e, const vrow *v, LLVMValueRef x) {
  LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(x), (unsigned)v->vl);
  LLVMValueRef u = LLVMBuildInsertElement(e->b, LLVMGetUndef(vt), x, ci(e, 0), "");
  return LLVMBuildShuffleVector(e->b, u, u, LLVMConstNull(LLVMVectorType(e->i32, (unsigned)v->vl)), "");
}

/* lanes below rem (i64, < vl) of a vector: the mask of a row's last vector */
static LLVMValueRef tail_mask(em *e, const vrow *v, LLVMValueRef rem) {
  return LLVMBuildICmp(e->b, LLVMIntSLT, v->lanes, splat(e, v, LLVMBuildTrunc(e->b, rem, e->i32, "")), "");
}

/* the vector at base[j] (mask NULL: all lanes; else the masked lanes, 0 elsewhere) */
static LLVMValueRef vload(em *e, const vrow *v, LLVMValueRef base, LLVMValueRef j, LLVMValueRef mask) {
  LLVMValueRef a = at(e, v->dt, base, j);
  unsigned al = (unsigned)tl_dtype_size((tl_dtype)v->dt);
  if (!mask) {
    LLVMValueRef x = LLVMBuildLoad2(e->b, v->vt, a, "");
    LLVMSetAlignment(x, al);
    return x;
  }
  unsigned id = LLVMLookupIntrinsicID("llvm.masked.load", 16);
  LLVMTypeRef tys[2] = {v->vt, e->ptr};
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(e->m, id, tys, 2);
  LLVMValueRef args[4] = {a, LLVMConstInt(e->i32, al, 0), mask, LLVMConstNull(v->vt)};
  return LLVMBuildCall2(e->b, LLVMIntrinsicGetType(e->cx, id, tys, 2), f, args, 4, "");
}

static void vstore(em *e, const vrow *v, LLVMValueRef x, LLVMValueRef base, LLVMValueRef j, LLVMValueRef mask) {
  LLVMValueRef a = at(e, v->dt, base, j);
  unsigned al = (unsigned)tl_dtype_size((tl_dtype)v->dt);
  if (!mask) {
    LLVMSetAlignment(LLVMBuildStore(e->b, x, a), al);
    return;
  }
  unsigned id = LLVMLookupIntrinsicID("llvm.masked.store", 17);
  LLVMTypeRef tys[2] = {v->vt, e->ptr};
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(e->m, id, tys, 2);
  LLVMValueRef args[4] = {x, a, LLVMConstInt(e->i32, al, 0), mask};
  LLVMBuildCall2(e->b, LLVMIntrinsicGetType(e->cx, id, tys, 2), f, args, 4, "");
}

/* acc + a b, fused (one rounding, as ?gemv's kernels) */
static LLVMValueRef vfma(em *e, LLVMValueRef a, LLVMValueRef b, LLVMValueRef acc) {
  return lw_intr(e, "llvm.fma", LLVMTypeOf(a), (LLVMValueRef[]){a, b, acc}, 3);
}

/* The full vectors of a row of d, then its partial one: body(j, mask)
 * with mask NULL for a full vector. */
typedef void vbody(em *e, const vrow *v, LLVMValueRef j, LLVMValueRef mask, void *ctx);
static void over_row(em *e, const vrow *v, LLVMValueRef d, int nc, LLVMValueRef *carry, vbody *body, void *ctx) {
  loop l;
  LLVMValueRef nv = LLVMBuildSDiv(e->b, d, ci(e, v->vl), "");
  LLVMValueRef k = lw_loop_open(e, &l, ci(e, 0), nv, nc, carry);
  for (int q = 0; q < nc; q++) carry[q] = l.phis[q];
  body(e, v, LLVMBuildMul(e->b, k, ci(e, v->vl), ""), NULL, ctx);
  l.ic = -1;
  l.nounroll = 1;
  lw_loop_close(e, &l, carry);
  for (int q = 0; q < nc; q++) carry[q] = l.phis[q];
  LLVMValueRef j = LLVMBuildMul(e->b, nv, ci(e, v->vl), "");
  LLVMValueRef rem = LLVMBuildSub(e->b, d, j, "");
  LLVMBasicBlockRef tb = LLVMAppendBasicBlockInContext(e->cx, e->fn, "tail");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(e->cx, e->fn, "tail_done");
  LLVMBasicBlockRef from = LLVMGetInsertBlock(e->b);
  LLVMBuildCondBr(e->b, icmp(e, LLVMIntSGT, rem, ci(e, 0)), tb, done);
  LLVMPositionBuilderAtEnd(e->b, tb);
  LLVMValueRef before[4];
  for (int q = 0; q < nc; q++) before[q] = carry[q];
  body(e, v, j, tail_mask(e, v, rem), ctx);
  LLVMBasicBlockRef tend = LLVMGetInsertBlock(e->b);
  LLVMBuildBr(e->b, done);
  LLVMPositionBuilderAtEnd(e->b, done);
  for (int q = 0; q < nc; q++) {
    LLVMValueRef ph = LLVMBuildPhi(e->b, LLVMTypeOf(before[q]), "");
    LLVMAddIncoming(ph, (LLVMValueRef[]){before[q], carry[q]}, (LLVMBasicBlockRef[]){from, tend}, 2);
    carry[q] = ph;
  }
}

typedef struct rows_ctx {
  int nr;
  LLVMValueRef xr[4], w, r[4], P, *acc;
} rows_ctx;

/* acc[q] += x_q[j..] w[j..] */
static void dot_body(em *e, const vrow *v, LLVMValueRef j, LLVMValueRef mask, void *ctx) {
  rows_ctx *c = ctx;
  LLVMValueRef wv = vload(e, v, c->w, j, mask);
  for (int q = 0; q < c->nr; q++) c->acc[q] = vfma(e, vload(e, v, c->xr[q], j, mask), wv, c->acc[q]);
}

/* P[j..] += sum_q r_q x_q[j..] */
static void axpy_body(em *e, const vrow *v, LLVMValueRef j, LLVMValueRef mask, void *ctx) {
  rows_ctx *c = ctx;
  LLVMValueRef p = vload(e, v, c->P, j, mask);
  for (int q = 0; q < c->nr; q++) p = vfma(e, c->r[q], vload(e, v, c->xr[q], j, mask), p);
  vstore(e, v, p, c->P, j, mask);
}

/* Rows [i0, i0 + nr) of a block (nr 4, or 1 for the rows left). */
static void zw_rows(em *e, const vrow *v, int nr, LLVMValueRef X, LLVMValueRef W, LLVMValueRef Z, LLVMValueRef i0,
                    LLVMValueRef d) {
  LLVMValueRef acc[4];
  rows_ctx c = {.nr = nr, .w = W, .acc = acc};
  for (int q = 0; q < nr; q++) {
    c.xr[q] = at(e, v->dt, X, LLVMBuildMul(e->b, LLVMBuildAdd(e->b, i0, ci(e, q), ""), d, ""));
    acc[q] = LLVMConstNull(v->vt);
  }
  over_row(e, v, d, nr, acc, dot_body, &c);
  for (int q = 0; q < nr; q++) {
    LLVMValueRef sum = lw_intr(e, "llvm.vector.reduce.fadd", v->vt, (LLVMValueRef[]){cf(e, v->dt, -0.0), acc[q]}, 2);
    LLVMSetFastMathFlags(sum, LLVMFastMathAllowReassoc);
    LLVMBuildStore(e->b, sum, at(e, v->dt, Z, LLVMBuildAdd(e->b, i0, ci(e, q), "")));
  }
}

static void xr_rows(em *e, const vrow *v, int nr, LLVMValueRef X, LLVMValueRef R, LLVMValueRef P, LLVMValueRef i0,
                    LLVMValueRef d) {
  rows_ctx c = {.nr = nr, .P = P};
  for (int q = 0; q < nr; q++) {
    LLVMValueRef iq = LLVMBuildAdd(e->b, i0, ci(e, q), "");
    c.xr[q] = at(e, v->dt, X, LLVMBuildMul(e->b, iq, d, ""));
    c.r[q] = splat(e, v, LLVMBuildLoad2(e->b, mty(e, v->dt), at(e, v->dt, R, iq), ""));
  }
  over_row(e, v, d, 0, NULL, axpy_body, &c);
}

/* Rows [i0, i0 + nr) of a block: zw_rows or xr_rows. */
typedef void rows_fn(em *e, const vrow *v, int nr, LLVMValueRef X, LLVMValueRef a, LLVMValueRef b, LLVMValueRef i0,
                     LLVMValueRef d);

/* A block's helper over its rows, four at a time, then the rows left one
 * at a time. zw (z = X w; a = w, b = z): w's loads shared by four rows.
 * xr (P += r_i X_i; a = r, b = P): P loaded and stored once per four rows,
 * and with each four rows the same four rows of the next block prefetched
 * (from memory while this block is worked on in cache). Not ?gemv:
 * OpenBLAS splits even a block's product across its own threads, which
 * then contend with the parts'. */
static LLVMValueRef block_fn(em *e, const char *name, int head, int dt, rows_fn *rows_of, bool prefetch,
                             LLVMTypeRef *fty) {
  LLVMValueRef f = helper(e, name, head, fty);
  LLVMValueRef X = LLVMGetParam(f, 0), a = LLVMGetParam(f, 1), b = LLVMGetParam(f, 2);
  LLVMValueRef rows = LLVMGetParam(f, 3), d = LLVMGetParam(f, 4);
  vrow v;
  vrow_init(e, &v, dt);
  loop li;
  LLVMValueRef n4 = LLVMBuildAnd(e->b, rows, ci(e, -4), "");
  LLVMValueRef i = lw_loop_open(e, &li, ci(e, 0), LLVMBuildSDiv(e->b, n4, ci(e, 4), ""), 0, NULL);
  LLVMValueRef i0 = LLVMBuildMul(e->b, i, ci(e, 4), "");
  if (prefetch) {
    int64_t size = (int64_t)tl_dtype_size((tl_dtype)dt);
    LLVMValueRef nl = LLVMBuildSDiv(e->b, LLVMBuildAdd(e->b, LLVMBuildMul(e->b, d, ci(e, 4 * size), ""), ci(e, 63), ""),
                                    ci(e, 64), "");
    LLVMValueRef nx = at(e, dt, X, LLVMBuildMul(e->b, LLVMBuildAdd(e->b, i0, rows, ""), d, ""));
    loop lf;
    LLVMValueRef l = lw_loop_open(e, &lf, ci(e, 0), nl, 0, NULL);
    lw_prefetch(e, nx, LLVMBuildMul(e->b, l, ci(e, 64), ""));
    lf.ic = -1;
    lf.nounroll = 1;
    lw_loop_close(e, &lf, NULL);
  }
  rows_of(e, &v, 4, X, a, b, i0, d);
  li.ic = -1;
  lw_loop_close(e, &li, NULL);
  i = lw_loop_open(e, &li, n4, rows, 0, NULL);
  rows_of(e, &v, 1, X, a, b, i, d);
  li.ic = -1;
  lw_loop_close(e, &li, NULL);
  LLVMBuildRetVoid(e->b);
  return f;
}

void lw_k_pass(em *e, int head, const LLVMValueRef *kfn, LLVMValueRef *run, LLVMValueRef *sum) {
  const be_plan *p = e->p;
  const tl_graph *g = e->g;
  const be_kern *h = &p->ks[head], *t = &p->ks[h->pass_hi];
  const tl_type *xt = &g->nodes[tl_node_inputs(g, &g->nodes[h->node])[0]].type;
  int dt = g->nodes[h->node].type.dtype;
  int64_t size = (int64_t)tl_dtype_size((tl_dtype)dt);
  /* the tail's vector operand: r in X^T r (operand 1) or r^T X (operand 0) */
  int32_t rbuf = t->trans[0] ? t->opbuf[1] : t->opbuf[0];
  char name[48];

  LLVMTypeRef hty;
  LLVMValueRef zw = block_fn(e, "zw", head, dt, zw_rows, false, &hty);
  LLVMValueRef xr = block_fn(e, "xr", head, dt, xr_rows, true, &hty);
  snprintf(name, sizeof name, "pass%d", head);
  lw_kbegin(e, name, h->node);
  LLVMValueRef plo = LLVMGetParam(e->fn, 1), phi = LLVMGetParam(e->fn, 2);
  LLVMValueRef n = lw_dimv(e, xt->dims[0]), d = lw_dimv(e, xt->dims[1]);
  LLVMValueRef X = lw_bufptr(e, h->opbuf[0]), W = lw_bufptr(e, h->opbuf[1]), Z = lw_bufptr(e, h->out);
  LLVMValueRef R = lw_bufptr(e, rbuf), P = lw_bufptr(e, h->pass_part);
  LLVMValueRef bytes_d = LLVMBuildMul(e->pre, d, ci(e, size), "");
  /* the parts' rows of the partial buffer are lines apart: with two
   * threads adding into neighbouring rows that shared a line the group took
   * 4.2 ms, on rows of their own 1.3 ms (logistic regression, 10^5 x 100
   * f32, two threads, tlaloc cost-report end to end) */
  LLVMValueRef ld = pad_row(e, d, size);
  /* rows per part: a multiple of 16, so that the members' blocks start on
   * cache lines; rows per block: BE_PASS_BLOCK_BYTES of X, at least 16 */
  LLVMValueRef rpp = LLVMBuildSDiv(e->pre, LLVMBuildAdd(e->pre, n, ci(e, BE_PASS_PARTS - 1), ""), ci(e, BE_PASS_PARTS), "");
  rpp = LLVMBuildAnd(e->pre, LLVMBuildAdd(e->pre, rpp, ci(e, 15), ""), ci(e, ~(int64_t)15), "");
  LLVMValueRef blk = LLVMBuildSDiv(e->pre, ci(e, BE_PASS_BLOCK_BYTES),
                                   LLVMBuildSelect(e->pre, LLVMBuildICmp(e->pre, LLVMIntSGT, bytes_d, ci(e, 0), ""),
                                                   bytes_d, ci(e, 1), ""), "");
  blk = LLVMBuildAnd(e->pre, blk, ci(e, ~(int64_t)15), "");
  blk = LLVMBuildSelect(e->pre, LLVMBuildICmp(e->pre, LLVMIntSLT, blk, ci(e, 16), ""), ci(e, 16), blk, "");
  loop lp, lb;
  LLVMValueRef part = lw_loop_open(e, &lp, plo, phi, 0, NULL);
  LLVMValueRef r0 = smin(e, LLVMBuildMul(e->b, part, rpp, ""), n);
  LLVMValueRef r1 = smin(e, LLVMBuildAdd(e->b, r0, rpp, ""), n);
  LLVMValueRef Pp = at(e, dt, P, LLVMBuildMul(e->b, part, ld, ""));
  LLVMBuildMemSet(e->b, Pp, LLVMConstInt(e->i8, 0, 0), bytes_d, 8);
  LLVMValueRef nblk = LLVMBuildSDiv(e->b, LLVMBuildAdd(e->b, LLVMBuildSub(e->b, r1, r0, ""), LLVMBuildSub(e->b, blk, ci(e, 1), ""), ""), blk, "");
  LLVMValueRef bi = lw_loop_open(e, &lb, ci(e, 0), nblk, 0, NULL);
  LLVMValueRef b0 = LLVMBuildAdd(e->b, r0, LLVMBuildMul(e->b, bi, blk, ""), "");
  LLVMValueRef b1 = smin(e, LLVMBuildAdd(e->b, b0, blk, ""), r1);
  LLVMValueRef rows = LLVMBuildSub(e->b, b1, b0, "");
  LLVMValueRef Xb = at(e, dt, X, LLVMBuildMul(e->b, b0, d, ""));
  LLVMBuildCall2(e->b, hty, zw, (LLVMValueRef[]){Xb, W, at(e, dt, Z, b0), rows, d}, 5, "");
  for (int q = head + 1; q < h->pass_hi; q++)
    LLVMBuildCall2(e->b, e->kty, kfn[q], (LLVMValueRef[]){e->frame, b0, b1}, 3, "");
  LLVMBuildCall2(e->b, hty, xr, (LLVMValueRef[]){Xb, at(e, dt, R, b0), Pp, rows, d}, 5, "");
  lw_loop_close(e, &lb, NULL);
  lw_loop_close(e, &lp, NULL);
  lw_kend(e);
  *run = e->fn;

  /* out[j] = ((P[0 j] + P[1 j]) + P[2 j]) + ..., the same order whichever
   * thread ran which part */
  snprintf(name, sizeof name, "pass%d_sum", head);
  lw_kbegin(e, name, t->node);
  d = lw_dimv(e, xt->dims[1]);
  ld = pad_row(e, d, size);
  P = lw_bufptr(e, h->pass_part);
  LLVMValueRef O = lw_bufptr(e, t->out);
  LLVMTypeRef et = mty(e, dt);
  loop lj;
  LLVMValueRef j = lw_loop_open(e, &lj, ci(e, 0), d, 0, NULL);
  LLVMValueRef s = LLVMBuildLoad2(e->b, et, at(e, dt, P, j), "");
  for (int q = 1; q < BE_PASS_PARTS; q++) {
    LLVMValueRef off = LLVMBuildAdd(e->b, LLVMBuildMul(e->b, ci(e, q), ld, ""), j, "");
    s = LLVMBuildFAdd(e->b, s, LLVMBuildLoad2(e->b, et, at(e, dt, P, off), ""), "");
  }
  LLVMBuildStore(e->b, s, at(e, dt, O, j));
  lw_loop_close(e, &lj, NULL);
  lw_kend(e);
  *sum = e->fn;
}
