/* lower_matmul.c - matmul kernels: f32 and f64 through CBLAS (?gemm, or
 * ?gemv for one row or one column, a batch over one shared right operand
 * folded into one product), other dtypes as loops accumulating in i64. */
#include "backend/lower_internal.h"

#include <string.h>

static LLVMValueRef blas_fn(em *e, const char *name, int nargs, const LLVMTypeRef *pt, LLVMTypeRef *fty) {
  *fty = LLVMFunctionType(e->vd, (LLVMTypeRef *)pt, (unsigned)nargs, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(e->m, name);
  return fn ? fn : LLVMAddFunction(e->m, name, *fty);
}

/* C = op(A) op(B) for one matrix, M, N, K > 0, through CBLAS (row major).
 * A is stored M x K, or K x M when trans[0] (BLAS's trans flag then reads
 * it transposed); B K x N, or N x K. A product with one row or one column
 * is a matrix-vector product: gemm would pack the whole matrix first
 * (OpenBLAS's sgemm_itcopy took ~3/4 of a 1 x 9216 x 4096 product), gemv
 * streams it once. beta = 0 and y is zeroed first, so stale memory (NaN
 * bits) in the output never leaks through a BLAS that scales y by 0. */
/* Block bb: C = 0 (bytes), the gemv call with its 12 arguments, then done. */
static void gemv_block(em *e, LLVMBasicBlockRef bb, LLVMValueRef C, LLVMValueRef bytes, LLVMTypeRef fty,
                       LLVMValueRef fn, LLVMValueRef *args, LLVMBasicBlockRef done) {
  LLVMPositionBuilderAtEnd(e->b, bb);
  LLVMBuildMemSet(e->b, C, LLVMConstInt(e->i8, 0, 0), bytes, 8);
  LLVMBuildCall2(e->b, fty, fn, args, 12, "");
  LLVMBuildBr(e->b, done);
}

static void blas_call(em *e, const be_kern *k, int dt, LLVMValueRef M, LLVMValueRef N, LLVMValueRef K,
                      LLVMValueRef A, LLVMValueRef B, LLVMValueRef C, LLVMValueRef MN) {
  bool f = dt == TL_F32, ta = k->trans[0], tb = k->trans[1];
  LLVMTypeRef ft = vty(e, dt), i32 = e->i32;
  LLVMValueRef m32 = LLVMBuildTrunc(e->b, M, i32, ""), n32 = LLVMBuildTrunc(e->b, N, i32, ""),
               k32 = LLVMBuildTrunc(e->b, K, i32, "");
  LLVMValueRef one = cf(e, dt, 1), zero = cf(e, dt, 0), inc = LLVMConstInt(i32, 1, 0);
  LLVMValueRef rowm = LLVMConstInt(i32, 101, 0), notr = LLVMConstInt(i32, 111, 0), tr = LLVMConstInt(i32, 112, 0);
  LLVMBasicBlockRef nv = LLVMAppendBasicBlockInContext(e->cx, e->fn, "gemv_n");
  LLVMBasicBlockRef mchk = LLVMAppendBasicBlockInContext(e->cx, e->fn, "mchk");
  LLVMBasicBlockRef mv = LLVMAppendBasicBlockInContext(e->cx, e->fn, "gemv_m");
  LLVMBasicBlockRef mm = LLVMAppendBasicBlockInContext(e->cx, e->fn, "gemm");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(e->cx, e->fn, "blas_done");
  LLVMTypeRef vt[12] = {i32, i32, i32, i32, ft, e->ptr, i32, e->ptr, i32, ft, e->ptr, i32}, vfty;
  LLVMValueRef gemv = blas_fn(e, f ? "cblas_sgemv" : "cblas_dgemv", 12, vt, &vfty);
  LLVMValueRef bytes = LLVMBuildMul(e->b, MN, ci(e, (int64_t)tl_dtype_size((tl_dtype)dt)), "");
  LLVMBuildCondBr(e->b, icmp(e, LLVMIntEQ, N, ci(e, 1)), nv, mchk);
  /* N == 1: y (M) = op(A) b */
  LLVMValueRef an[12] = {rowm, ta ? tr : notr, ta ? k32 : m32, ta ? m32 : k32, one, A, ta ? m32 : k32,
                         B, inc, zero, C, inc};
  gemv_block(e, nv, C, bytes, vfty, gemv, an, done);
  LLVMPositionBuilderAtEnd(e->b, mchk);
  LLVMBuildCondBr(e->b, icmp(e, LLVMIntEQ, M, ci(e, 1)), mv, mm);
  /* M == 1: y (N) = op(B)^T a */
  LLVMValueRef am[12] = {rowm, tb ? notr : tr, tb ? n32 : k32, tb ? k32 : n32, one, B, tb ? k32 : n32,
                         A, inc, zero, C, inc};
  gemv_block(e, mv, C, bytes, vfty, gemv, am, done);
  LLVMPositionBuilderAtEnd(e->b, mm);
  LLVMTypeRef gt[14] = {i32, i32, i32, i32, i32, i32, ft, e->ptr, i32, e->ptr, i32, ft, e->ptr, i32}, gfty;
  LLVMValueRef gemm = blas_fn(e, f ? "cblas_sgemm" : "cblas_dgemm", 14, gt, &gfty);
  LLVMValueRef ag[14] = {rowm, ta ? tr : notr, tb ? tr : notr, m32, n32, k32, one, A, ta ? m32 : k32,
                         B, tb ? k32 : n32, zero, C, n32};
  LLVMBuildCall2(e->b, gfty, gemm, ag, 14, "");
  LLVMBuildBr(e->b, done);
  LLVMPositionBuilderAtEnd(e->b, done);
}

/* A product with a uniform operand (every element the same number; see
 * be_kern.uniform) has equal rows (uniform A) or equal columns (uniform
 * B), but a gemm does not round them alike: OpenBLAS's sgemm kernel sums
 * rows 6-11 of each 12 in another order than rows 0-5, one ulp apart, and a
 * softmax over such logits (~1e10 in squeezenet with constant weights,
 * where an ulp is 1024) turned equal classes into 0 and 2/n. So BLAS
 * computes the first row (or column) alone, into C's first Mu x Nu
 * elements, and this loop copies it over the M x N product: element r
 * takes element src(r) <= r, so going from the last element down reads
 * each source before anything overwrites it. */
static void spread_uniform(em *e, const be_kern *k, int dt, LLVMValueRef N, LLVMValueRef C, LLVMValueRef MN) {
  LLVMTypeRef et = mty(e, dt);
  loop l;
  LLVMValueRef d = lw_loop_open(e, &l, ci(e, 0), MN, 0, NULL);
  LLVMValueRef r = LLVMBuildSub(e->b, LLVMBuildSub(e->b, MN, ci(e, 1), ""), d, "");
  LLVMValueRef src = k->uniform[0] && k->uniform[1] ? ci(e, 0)
                     : k->uniform[0]                 ? LLVMBuildURem(e->b, r, N, "")
                                                     : LLVMBuildUDiv(e->b, r, N, "");
  LLVMValueRef v = LLVMBuildLoad2(e->b, et, LLVMBuildGEP2(e->b, et, C, &src, 1, ""), "");
  LLVMBuildStore(e->b, v, LLVMBuildGEP2(e->b, et, C, &r, 1, ""));
  lw_loop_close(e, &l, NULL);
}

void lw_k_matmul(em *e, const be_kern *k) {
  const tl_graph *g = e->g;
  const tl_node *n = &g->nodes[k->node];
  int dt = n->type.dtype;
  be_matmul_shape m;
  be_matmul_shape_of(g, n, &m);
  const int64_t *ad = m.ad, *bd = m.bd, *bdims = m.bdims;
  int ar = m.ar, br = m.br, nbr = m.nbr;
  LLVMValueRef M = lw_dimv(e, ad[ar - 2]), K = lw_dimv(e, ad[ar - 1]), N = lw_dimv(e, bd[br - 1]);
  /* [.. M K] @ [K N] with one B for every batch (a linear layer over a
   * batch): A's batches are contiguous rows, so the batch is one product
   * with M * batch rows rather than a loop of small ones */
  bool fold = nbr > 0 && !k->trans[0] && ar - 2 == nbr && isf(dt);
  for (int i = 0; fold && i < nbr; i++) {
    int bi = i - (nbr - (br - 2));
    fold = bi < 0 || bd[bi] == 1;
  }
  if (fold) {
    for (int i = 0; i < nbr; i++) M = LLVMBuildMul(e->pre, M, lw_dimv(e, ad[i]), "");
    nbr = 0;
  }
  /* each operand's batch stride (in matrices) */
  LLVMValueRef ast[TL_MAX_RANK], bst[TL_MAX_RANK];
  LLVMValueRef s = ci(e, 1);
  for (int i = nbr - 1; i >= 0; i--) {
    ast[i] = m.abat[i] < 0 ? ci(e, 0) : s;
    if (m.abat[i] >= 0) s = LLVMBuildMul(e->pre, s, lw_dimv(e, ad[m.abat[i]]), "");
  }
  s = ci(e, 1);
  for (int i = nbr - 1; i >= 0; i--) {
    bst[i] = m.bbat[i] < 0 ? ci(e, 0) : s;
    if (m.bbat[i] >= 0) s = LLVMBuildMul(e->pre, s, lw_dimv(e, bd[m.bbat[i]]), "");
  }
  LLVMValueRef ost[TL_MAX_RANK];
  lw_contig_strides(e, nbr, bdims, ost);
  LLVMValueRef MK = LLVMBuildMul(e->pre, M, K, ""), KN = LLVMBuildMul(e->pre, K, N, ""),
               MN = LLVMBuildMul(e->pre, M, N, "");
  LLVMValueRef lo = LLVMGetParam(e->fn, 1), hi = LLVMGetParam(e->fn, 2);
  LLVMValueRef no = lw_guard_range(e, lo, hi);
  loop ls[TL_MAX_RANK];
  LLVMValueRef iv[TL_MAX_RANK];
  lw_nest_open(e, ls, nbr, bdims, NULL, NULL, NULL, iv);
  LLVMValueRef ao = LLVMBuildMul(e->b, lw_offset(e, nbr, ast, iv), MK, "");
  LLVMValueRef bo = LLVMBuildMul(e->b, lw_offset(e, nbr, bst, iv), KN, "");
  LLVMValueRef co = LLVMBuildMul(e->b, lw_offset(e, nbr, ost, iv), MN, "");
  LLVMTypeRef et = mty(e, dt);
  LLVMValueRef A = LLVMBuildGEP2(e->b, et, lw_bufptr(e, k->opbuf[0]), &ao, 1, "");
  LLVMValueRef Bp = LLVMBuildGEP2(e->b, et, lw_bufptr(e, k->opbuf[1]), &bo, 1, "");
  LLVMValueRef C = LLVMBuildGEP2(e->b, et, lw_bufptr(e, k->out), &co, 1, "");
  if (isf(dt)) {
    /* K == 0: C = 0 (BLAS would reject lda = 0); M or N == 0: nothing */
    LLVMValueRef mn0 = LLVMBuildOr(e->b, icmp(e, LLVMIntEQ, M, ci(e, 0)), icmp(e, LLVMIntEQ, N, ci(e, 0)), "");
    LLVMBasicBlockRef call = LLVMAppendBasicBlockInContext(e->cx, e->fn, "gemm");
    LLVMBasicBlockRef zero = LLVMAppendBasicBlockInContext(e->cx, e->fn, "kzero");
    LLVMBasicBlockRef chk = LLVMAppendBasicBlockInContext(e->cx, e->fn, "chk");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(e->cx, e->fn, "gnext");
    LLVMBuildCondBr(e->b, mn0, next, chk);
    LLVMPositionBuilderAtEnd(e->b, chk);
    LLVMBuildCondBr(e->b, icmp(e, LLVMIntEQ, K, ci(e, 0)), zero, call);
    LLVMPositionBuilderAtEnd(e->b, zero);
    LLVMBuildMemSet(e->b, C, LLVMConstInt(e->i8, 0, 0), LLVMBuildMul(e->b, MN, ci(e, (int64_t)tl_dtype_size((tl_dtype)dt)), ""), 8);
    LLVMBuildBr(e->b, next);
    LLVMPositionBuilderAtEnd(e->b, call);
    LLVMValueRef Mu = k->uniform[0] ? ci(e, 1) : M, Nu = k->uniform[1] ? ci(e, 1) : N;
    blas_call(e, k, dt, Mu, Nu, K, A, Bp, C, LLVMBuildMul(e->b, Mu, Nu, ""));
    if (k->uniform[0] || k->uniform[1]) spread_uniform(e, k, dt, N, C, MN);
    LLVMBuildBr(e->b, next);
    LLVMPositionBuilderAtEnd(e->b, next);
  } else {
    loop l3[3];
    LLVMValueRef i = lw_loop_open(e, &l3[0], ci(e, 0), M, 0, NULL);
    LLVMValueRef j = lw_loop_open(e, &l3[1], ci(e, 0), N, 0, NULL);
    LLVMValueRef z = ci(e, 0);
    LLVMValueRef t = lw_loop_open(e, &l3[2], ci(e, 0), K, 1, &z);
    LLVMValueRef av = lw_conv(e, LLVMBuildLoad2(e->b, et, LLVMBuildGEP2(e->b, et, A, (LLVMValueRef[]){LLVMBuildAdd(e->b, LLVMBuildMul(e->b, i, K, ""), t, "")}, 1, ""), ""), dt == TL_BOOL ? TL_I32 : dt, TL_I64);
    LLVMValueRef bv = lw_conv(e, LLVMBuildLoad2(e->b, et, LLVMBuildGEP2(e->b, et, Bp, (LLVMValueRef[]){LLVMBuildAdd(e->b, LLVMBuildMul(e->b, t, N, ""), j, "")}, 1, ""), ""), dt == TL_BOOL ? TL_I32 : dt, TL_I64);
    if (dt == TL_BOOL) {
      av = LLVMBuildZExt(e->b, icmp(e, LLVMIntNE, av, ci(e, 0)), e->i64, "");
      bv = LLVMBuildZExt(e->b, icmp(e, LLVMIntNE, bv, ci(e, 0)), e->i64, "");
    }
    LLVMValueRef na = LLVMBuildAdd(e->b, l3[2].phis[0], LLVMBuildMul(e->b, av, bv, ""), "");
    lw_loop_close(e, &l3[2], &na);
    LLVMValueRef acc = l3[2].phis[0];
    LLVMValueRef res = dt == TL_BOOL ? LLVMBuildZExt(e->b, icmp(e, LLVMIntNE, acc, ci(e, 0)), e->i8, "")
                                     : lw_conv(e, acc, TL_I64, dt);
    LLVMBuildStore(e->b, res, LLVMBuildGEP2(e->b, et, C, (LLVMValueRef[]){LLVMBuildAdd(e->b, LLVMBuildMul(e->b, i, N, ""), j, "")}, 1, ""));
    lw_loop_close(e, &l3[1], NULL);
    lw_loop_close(e, &l3[0], NULL);
  }
  lw_nest_close(e, ls, nbr);
  lw_guard_end(e, no);
}
