/* lower_sums.c - sums and means over the last axis of rows of up to
 * SUMMAX elements, in blocks of L rows (L: f64 lanes) added by a halving
 * tree, one vector store per block: a known power of two or multiple of L
 * as d vectors of memory (sum_block), other lengths and symbolic ones
 * (behind a run-time test) as each row's vectors where they lie, the last
 * masked (sum_rows);
 * a symbolic power of two calls its known length's sum_block, compiled per
 * length in a function of its own (pow2_body). The blocks, staging and
 * halving tree are lower_short.c's (lower_short.h). */
#include "backend/lower_short.h"

#include <stdio.h>
#include <string.h>

/* vector r of the stack array a (of vt) */
static LLVMValueRef slot_v(em *e, LLVMTypeRef vt, LLVMValueRef a, int r) {
  LLVMValueRef i = ci(e, r);
  return LLVMBuildInBoundsGEP2(e->b, vt, a, &i, 1, "");
}

typedef struct sum_leaves {
  const srow *s;
  LLVMValueRef off, n;
  int order[MAXV]; /* d >= L: leaf i is row order[i] (sr_leaf_order) */
} sum_leaves;

/* Leaf i of sum_block's tree: memory vector i (d < L) or row i's d/L
 * vectors added (d >= L), as f64 lanes. */
static LLVMValueRef sum_leaf(em *e, const sum_leaves *t, int i) {
  const srow *s = t->s;
  int L = s->W, d = (int)s->d, m = d >= L ? d / L : 1;
  unsigned al = (unsigned)tl_dtype_size((tl_dtype)s->dt);
  LLVMTypeRef avt = LLVMVectorType(e->f64, (unsigned)L);
  LLVMValueRef a = NULL;
  for (int j = i * m; j < i * m + m; j++) {
    LLVMValueRef o = LLVMBuildAdd(e->b, t->off, ci(e, (int64_t)j * L), "");
    /* not inbounds: a masked-off vector of the last block may lie past the buffer */
    LLVMValueRef p = LLVMBuildGEP2(e->b, s->et, s->src, &o, 1, "");
    LLVMValueRef x = sr_vload(e, s->vt, p, t->n ? sr_lanes_from(e, L, t->n, ci(e, (int64_t)j * L)) : NULL, al);
    if (s->dt != TL_F64) x = LLVMBuildFPExt(e->b, x, avt, "");
    a = a ? LLVMBuildFAdd(e->b, a, x, "") : x;
  }
  return a;
}

/* Leaves [lo, lo + cnt) halved into one vector, emitted depth first (a
 * pair's halving right after its leaves' loads). */
static rowvec sum_tree(em *e, const sum_leaves *t, int lo, int cnt) {
  int L = t->s->W;
  if (cnt == 1) {
    if (t->s->d >= L) return (rowvec){sum_leaf(e, t, t->order[lo]), L, {t->order[lo]}};
    int g = (int)t->s->d; /* a leaf is a vector of memory: L/g whole rows in order */
    rowvec c = {sum_leaf(e, t, lo), g, {0}};
    for (int k = 0; k < L / g; k++) c.rows[k] = lo * (L / g) + k;
    return c;
  }
  rowvec a = sum_tree(e, t, lo, cnt / 2), b = sum_tree(e, t, lo + cnt / 2, cnt / 2);
  return sr_halve(e, &a, &b, L, false);
}

/* L rows of d elements (L: the accumulator's lanes, f64) at element
 * offset off; n of the block's elements when it may be partial. The block
 * is d vectors of L elements: with d < L each holds L/d whole rows, else
 * each row is d/L vectors, added first. Then log2 of the lanes per row
 * halving steps leave one vector of the L sums in row order, one store. */
static void sum_block(em *e, const srow *s, LLVMValueRef off, LLVMValueRef n) {
  int L = s->W, d = (int)s->d;
  LLVMTypeRef avt = LLVMVectorType(e->f64, (unsigned)L);
  sum_leaves t = {s, off, n, {0}};
  if (d >= L) sr_leaf_order(L, t.order);
  rowvec c = sum_tree(e, &t, 0, d >= L ? L : d);
  LLVMValueRef r = sr_rows_in_order(e, &c, L);
  /* + 0: a row of -0s sums to +0, as the row passes' accumulator (0) gives */
  r = LLVMBuildFAdd(e->b, r, LLVMConstNull(avt), "");
  if (s->mean) r = LLVMBuildFDiv(e->b, r, sr_splat_n(e, cf(e, TL_F64, (double)d), L), "");
  LLVMTypeRef oet = vty(e, s->odt), ovt = LLVMVectorType(oet, (unsigned)L);
  if (s->odt != TL_F64) r = LLVMBuildFPTrunc(e->b, r, ovt, "");
  LLVMValueRef row = LLVMBuildUDiv(e->b, off, ci(e, d), "");
  LLVMValueRef p = LLVMBuildGEP2(e->b, oet, s->dst, &row, 1, "");
  sr_vstore(e, ovt, p, r, n ? sr_lanes_below(e, L, LLVMBuildUDiv(e->b, n, ci(e, d), "")) : NULL,
            (unsigned)tl_dtype_size((tl_dtype)s->odt));
}

/* Row r's vector j (i64) of L elements at element offset ro of src, as
 * f64 lanes; masked when mask. Not inbounds: a masked-off vector may lie
 * past the buffer. */
static LLVMValueRef row_part(em *e, const srow *s, LLVMValueRef src, LLVMValueRef ro, LLVMValueRef j,
                             LLVMValueRef mask) {
  unsigned al = (unsigned)tl_dtype_size((tl_dtype)s->dt);
  LLVMValueRef o = LLVMBuildAdd(e->b, ro, LLVMBuildMul(e->b, j, ci(e, s->W), ""), "");
  LLVMValueRef x = sr_vload(e, s->vt, LLVMBuildGEP2(e->b, s->et, src, &o, 1, ""), mask, al);
  return s->dt == TL_F64 ? x : LLVMBuildFPExt(e->b, x, LLVMVectorType(e->f64, (unsigned)s->W), "");
}

/* L rows of any length d up to SUMMAX at element offset off, from row
 * row on, their sums stored as one vector at the output's row row. Each row is its vectors of L elements
 * where they lie, added lanewise, the last one masked to the row's end;
 * the L row vectors then go through the halving tree as sum_block's rows
 * of L or more do. A known length's m vectors a row are unrolled; a
 * symbolic one's whole vectors (s->mv - 1) are a loop, so that one copy
 * of code serves every length. The last, partial block of rows comes
 * through staged_blocks' stack block (per_row). */
static void sum_rows(em *e, const srow *s, LLVMValueRef off, LLVMValueRef row) {
  int L = s->W, m = s->d ? (int)((s->d + L - 1) / L) : 0;
  LLVMValueRef src = s->src, out = LLVMBuildGEP2(e->b, vty(e, s->odt), s->dst, &row, 1, "");
  LLVMTypeRef avt = LLVMVectorType(e->f64, (unsigned)L);
  LLVMValueRef last = m ? ci(e, m - 1) : LLVMBuildSub(e->b, s->mv, ci(e, 1), "");
  LLVMValueRef tail = sr_lanes_from(e, L, s->dv, LLVMBuildMul(e->b, last, ci(e, L), ""));
  LLVMValueRef v[MAXV], ro[MAXV];
  for (int r = 0; r < L; r++) {
    ro[r] = LLVMBuildAdd(e->b, off, LLVMBuildMul(e->b, ci(e, r), s->dv, ""), "");
    v[r] = row_part(e, s, src, ro[r], last, tail);
    for (int j = 0; j < m - 1; j++) v[r] = LLVMBuildFAdd(e->b, v[r], row_part(e, s, src, ro[r], ci(e, j), NULL), "");
  }
  if (!m) { /* the whole vectors: a loop, the row sums through a stack array (promoted to registers) */
    LLVMValueRef acc = LLVMBuildAlloca(e->pre, LLVMArrayType2(avt, (uint64_t)L), "rowsums");
    for (int r = 0; r < L; r++) LLVMBuildStore(e->b, v[r], slot_v(e, avt, acc, r));
    loop l;
    LLVMValueRef j = lw_loop_open(e, &l, ci(e, 0), last, 0, NULL);
    l.ic = -1;
    for (int r = 0; r < L; r++) {
      LLVMValueRef p = slot_v(e, avt, acc, r);
      LLVMBuildStore(e->b,
                     LLVMBuildFAdd(e->b, LLVMBuildLoad2(e->b, avt, p, ""), row_part(e, s, src, ro[r], j, NULL), ""), p);
    }
    lw_loop_close(e, &l, NULL);
    for (int r = 0; r < L; r++) v[r] = LLVMBuildLoad2(e->b, avt, slot_v(e, avt, acc, r), "");
  }
  LLVMValueRef r = LLVMBuildFAdd(e->b, sr_halving_tree(e, v, L, false), LLVMConstNull(avt), ""); /* + 0: as sum_block */
  if (s->mean) r = LLVMBuildFDiv(e->b, r, sr_splat_v(e, LLVMBuildSIToFP(e->b, s->dv, e->f64, ""), L), "");
  LLVMTypeRef ovt = LLVMVectorType(vty(e, s->odt), (unsigned)L);
  if (s->odt != TL_F64) r = LLVMBuildFPTrunc(e->b, r, ovt, "");
  sr_vstore(e, ovt, out, r, NULL, (unsigned)tl_dtype_size((tl_dtype)s->odt));
}

/* The vector width of the kernel left to LLVM's tuning for the CPU
 * instead of the kernels' prefer-vector-width=512: Intel's AVX-512 cores
 * are tuned to prefer 256-bit vectors (512-bit operations issue on two
 * ports, their shuffles and f32 -> f64 conversions on one), AMD's Zen 4
 * and 5 keep 512 (llc -mcpu=znver4/znver5 on the same IR: zmm; generic
 * x86-64-v4: ymm). Taken for sum_block only, which has no calls (a libmvec
 * call takes its 512-bit vector in one register, which a 256-bit legal
 * width would split): on Sapphire Rapids its rows of 8 / 16 / 32 f32 ran
 * at 0.61 / 0.80 / 0.93x the per-element speed of long rows with zmm and
 * 0.78 / 0.93 / 1.04x with ymm; sum_rows' masked rows ran slower with ymm
 * (symbolic rows of 16 0.74 -> 0.63x) and keep 512. */
static void tuned_width(em *e) {
  static const char pw[] = "prefer-vector-width", lw[] = "min-legal-vector-width", v[] = "256";
  LLVMRemoveStringAttributeAtIndex(e->fn, LLVMAttributeFunctionIndex, pw, sizeof pw - 1);
  LLVMAddAttributeAtIndex(e->fn, LLVMAttributeFunctionIndex,
                          LLVMCreateStringAttribute(e->cx, lw, sizeof lw - 1, v, sizeof v - 1));
}

/* A symbolic length that is a power of two d (2 to SUMMAX, in s->d):
 * sum_block's code for d in a function of its own (sr_call_outlined),
 * since the vector width it is tuned to is a function's attribute. One
 * function per d; the kernel calls the one its length asks for. sum_rows ran these
 * lengths at 0.70-0.75x of long rows (rows of 16) and slower with that
 * width; f32, AVX-512, Sapphire Rapids (AOT objects, min of 300 x 20
 * calls): [8192 2] 6.8 -> 2.3 us, [4096 4] 3.4 -> 2.1, [2048 8] 1.73 ->
 * 1.28, [1024 16] 1.31-1.33 -> 1.03, [512 32] 1.11 -> 0.91 ([16 1024]:
 * 0.92-0.94). The symbolic sum kernel compiles in 29 ms instead of 15
 * (cold `run --stats`, min of 7). */
static void pow2_body(em *e, srow *s, LLVMValueRef r0, LLVMValueRef r1) {
  if (e->avx512) tuned_width(e);
  s->dv = ci(e, s->d);
  sr_groups(e, s, r0, r1, ci(e, s->W), s->dv, sum_block, true);
}

bool lw_short_sum(em *e, const be_kern *k, LLVMBasicBlockRef *join) {
  *join = NULL;
  const tl_graph *g = e->g;
  const be_plan *p = e->p;
  const tl_node *n = &g->nodes[k->node];
  int32_t xid = tl_node_inputs(g, n)[0];
  const tl_node *xn = &g->nodes[xid];
  int R = xn->type.rank, dt = xn->type.dtype, odt = n->type.dtype;
  if ((n->op != TL_OP_SUM && n->op != TL_OP_MEAN) || R < 2 || !(e->avx512 || e->avx2)) return false;
  if ((dt != TL_F32 && dt != TL_F64) || (odt != TL_F32 && odt != TL_F64)) return false;
  /* read in place: the input is a buffer of its own shape (a producer
   * that computes anything takes the row passes, which evaluate it) */
  if (p->state[xid] != BE_S_MAT && p->state[xid] != BE_S_ALIAS) return false;
  bool red[TL_MAX_RANK];
  lw_reduce_axes(n, R, red);
  for (int i = 0; i < R - 1; i++)
    if (red[i]) return false;
  int64_t d = xn->type.dims[R - 1];
  int L = (e->avx512 ? 64 : 32) / 8; /* f64 accumulator lanes */
  if (!red[R - 1] || (d >= 0 && (d < 2 || d > SUMMAX))) return false;
  srow s = {.dt = dt, .d = d >= 0 ? d : 0, .W = L, .mean = n->op == TL_OP_MEAN, .odt = odt, .et = vty(e, dt)};
  s.vt = LLVMVectorType(s.et, (unsigned)L);
  s.dv = lw_dimv(e, d);
  LLVMBasicBlockRef no = NULL;
  if (d >= 0) {
    LLVMBasicBlockRef yes = LLVMAppendBasicBlockInContext(e->cx, e->fn, "shortsums");
    LLVMBuildBr(e->b, yes);
    LLVMPositionBuilderAtEnd(e->b, yes);
  } else { /* the run-time test; the builder continues in the other lengths' block */
    LLVMValueRef in =
        LLVMBuildAnd(e->b, icmp(e, LLVMIntSGE, s.dv, ci(e, 1)), icmp(e, LLVMIntSLE, s.dv, ci(e, SUMMAX)), "");
    LLVMBasicBlockRef yes = LLVMAppendBasicBlockInContext(e->cx, e->fn, "shortsums");
    no = LLVMAppendBasicBlockInContext(e->cx, e->fn, "rowpasses");
    *join = LLVMAppendBasicBlockInContext(e->cx, e->fn, "sumsdone");
    LLVMBuildCondBr(e->b, in, yes, no);
    LLVMPositionBuilderAtEnd(e->b, yes);
  }
  LLVMValueRef inner = ci(e, 1); /* rows per index of dim 0 */
  for (int i = 1; i < R - 1; i++) inner = LLVMBuildMul(e->b, inner, lw_dimv(e, xn->type.dims[i]), "");
  LLVMValueRef lo = LLVMGetParam(e->fn, 1), hi = LLVMGetParam(e->fn, 2);
  LLVMValueRef r0 = LLVMBuildMul(e->b, lo, inner, ""), r1 = LLVMBuildMul(e->b, hi, inner, "");
  s.src = lw_bufptr(e, p->buf_of[xid]);
  s.dst = lw_bufptr(e, k->out);
  if (d >= 0 && (!(d & (d - 1)) || d % L == 0)) {
    /* a power of two, or a multiple of L (each row's d/L vectors added
     * first): d vectors of memory a block, whole groups with plain loads
     * (a mask per load in every group cost more than the halving tree: the
     * kernel ran 2x slower). Rows of 24 f32 ran 0.79-0.84x of long rows'
     * per-element speed as sum_rows and 0.93-0.95x here (AVX-512; AVX2
     * 0.79-0.81 -> 0.86-0.90x; Sapphire Rapids, bench-backend --shapes) */
    if (e->avx512) tuned_width(e);
    sr_groups(e, &s, r0, r1, ci(e, L), ci(e, d), sum_block, true);
    return true;
  }
  if (d >= 0) {
    sr_staged_blocks(e, &s, r0, r1, sum_rows, 1, true);
    return true;
  }
  /* a symbolic power of two: its known length's blocks, in functions of
   * their own (pow2_body) */
  for (int d2 = 2; d2 <= SUMMAX; d2 *= 2) {
    LLVMBasicBlockRef yes = LLVMAppendBasicBlockInContext(e->cx, e->fn, "pow2sums");
    LLVMBasicBlockRef nt = LLVMAppendBasicBlockInContext(e->cx, e->fn, "notpow2");
    LLVMBuildCondBr(e->b, icmp(e, LLVMIntEQ, s.dv, ci(e, d2)), yes, nt);
    LLVMPositionBuilderAtEnd(e->b, yes);
    srow p = s;
    p.d = d2;
    char sfx[16];
    snprintf(sfx, sizeof sfx, "sums%d", d2);
    sr_call_outlined(e, &p, sfx, pow2_body, r0, r1);
    LLVMBuildBr(e->b, *join);
    LLVMPositionBuilderAtEnd(e->b, nt);
  }
  /* the other lengths: one copy for every vector count */
  s.mv = LLVMBuildUDiv(e->b, LLVMBuildAdd(e->b, s.dv, ci(e, L - 1), ""), ci(e, L), "");
  sr_staged_blocks(e, &s, r0, r1, sum_rows, 1, true);
  LLVMBuildBr(e->b, *join);
  LLVMPositionBuilderAtEnd(e->b, no);
  return false;
}
