/* lower.c - the plan as LLVM IR: one function per kernel plus an entry
 * that runs them in order (ABI in be_internal.h).
 *
 * Every value inside a kernel is computed by ex(), which evaluates a node at
 * an index vector: a buffer is a load at sum(idx * contiguous stride);
 * elementwise ops evaluate their operands at the broadcast index; the
 * index-map shape ops (transpose, broadcast_to, expand_dims, squeeze,
 * slice, take) rewrite the index vector. Loop-invariant values (buffer
 * pointers, symbol sizes, strides) are emitted in the kernel's entry block
 * through a second builder, so the loop bodies hold only index arithmetic
 * and the loop vectoriser sees plain strided loads.
 *
 * Loop shapes (each measured in docs/backend.md): an elementwise kernel
 * runs one loop per group of adjacent dims that its accesses see as one
 * contiguous run ("loop structure"); a reduction or softmax that keeps the
 * last dim works on chunks of columns ("column mode"); short rows get an
 * innermost loop vectorised without interleaving (SHORT_ROW); matmul
 * calls cblas ?gemm, or ?gemv for one row or one column, with the trans
 * flags for operands the plan reads transposed (be_kern.trans).
 *
 * Scalar semantics follow interp/interp.c operation by operation (NaN
 * propagation, stable sigmoid/softplus, integer wrapping, x // 0 == 0, x86
 * float-to-int conversion). Transcendental functions are glibc calls marked
 * memory(none) with a vector-function-abi-variant naming libmvec's AVX2
 * variant, so vectorised loops call _ZGVdN8v_expf and friends; with
 * vector_math == 2, f32 exp and tanh are tlaloc's own inline kernels
 * (vm_exp32, vm_tanh32). */
#include "backend/be_internal.h"
#include "util/util.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/DebugInfo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXSYM 256

typedef struct em {
  const be_plan *p;
  const tl_graph *g;
  LLVMContextRef cx;
  LLVMModuleRef m;
  LLVMBuilderRef b, pre;
  LLVMTypeRef i1, i8, i32, i64, f32, f64, ptr, vd, kty;
  LLVMValueRef *consts; /* per buffer: the global of a CONST buffer */
  int vector_math;
  int avx512; /* host has AVX-512F: 512-bit vectors and libmvec's _ZGVe variants */
  LLVMValueRef *used; int nused;
  /* current kernel */
  LLVMValueRef fn, frame, bufs, syms, errp;
  LLVMValueRef *bufp;
  LLVMValueRef symv[MAXSYM];
  int32_t knode;
  int x86;     /* target is x86-64: streaming stores and sfence */
  int nt_used; /* the current kernel has streaming stores: sfence before returning */
  /* while set, stores to buffer scratch_buf go to scratch[scratch_j]
   * (prefetched_loop's line of output, see "streaming stores") */
  LLVMValueRef scratch, scratch_j;
  int32_t scratch_buf;
  char *err; size_t errn; int failed;
} em;

static LLVMValueRef ci(em *e, int64_t v) { return LLVMConstInt(e->i64, (unsigned long long)v, 1); }

static LLVMTypeRef vty(em *e, int dt) {
  switch (dt) {
  case TL_BOOL: return e->i1;
  case TL_I32: return e->i32;
  case TL_I64: return e->i64;
  case TL_F32: return e->f32;
  default: return e->f64;
  }
}
static LLVMTypeRef mty(em *e, int dt) { return dt == TL_BOOL ? e->i8 : vty(e, dt); }
static bool isf(int dt) { return dt == TL_F32 || dt == TL_F64; }

static LLVMValueRef cf(em *e, int dt, double v) { return LLVMConstReal(vty(e, dt), v); }

/* ---- kernel scaffolding ------------------------------------------------ */

static LLVMValueRef dimv(em *e, int64_t d) {
  if (d >= 0) return ci(e, d);
  int s = tl_dim_sym_id(d);
  if (s >= MAXSYM) return ci(e, 0);
  if (!e->symv[s]) {
    LLVMValueRef a = LLVMBuildGEP2(e->pre, e->i64, e->syms, (LLVMValueRef[]){ci(e, s)}, 1, "");
    e->symv[s] = LLVMBuildLoad2(e->pre, e->i64, a, "sym");
  }
  return e->symv[s];
}

static LLVMValueRef bufptr(em *e, int32_t bi) {
  if (e->p->bufs[bi].kind == BE_BUF_CONST) return e->consts[bi];
  if (!e->bufp[bi]) {
    LLVMValueRef a = LLVMBuildGEP2(e->pre, e->ptr, e->bufs, (LLVMValueRef[]){ci(e, bi)}, 1, "");
    e->bufp[bi] = LLVMBuildLoad2(e->pre, e->ptr, a, "buf");
  }
  return e->bufp[bi];
}

static void add_enum_attr(em *e, LLVMValueRef f, const char *name, uint64_t v) {
  unsigned k = LLVMGetEnumAttributeKindForName(name, strlen(name));
  LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(e->cx, k, v));
}

static void kbegin(em *e, const char *name, int32_t node) {
  e->fn = LLVMAddFunction(e->m, name, e->kty);
  LLVMSetLinkage(e->fn, LLVMInternalLinkage);
  /* kept out of line: the same code runs serially and from the worker */
  add_enum_attr(e, e->fn, "noinline", 0);
  if (e->avx512) {
    static const char k[] = "prefer-vector-width", v[] = "512";
    LLVMAddAttributeAtIndex(e->fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(e->cx, k, sizeof k - 1, v, sizeof v - 1));
  }
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(e->cx, e->fn, "entry");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(e->cx, e->fn, "body");
  LLVMPositionBuilderAtEnd(e->pre, entry);
  LLVMValueRef br = LLVMBuildBr(e->pre, body);
  LLVMPositionBuilderBefore(e->pre, br);
  e->frame = LLVMGetParam(e->fn, 0);
  e->bufs = LLVMBuildLoad2(e->pre, e->ptr, e->frame, "bufs");
  LLVMValueRef sa = LLVMBuildGEP2(e->pre, e->i8, e->frame, (LLVMValueRef[]){ci(e, 8)}, 1, "");
  e->syms = LLVMBuildLoad2(e->pre, e->ptr, sa, "syms");
  e->errp = LLVMBuildGEP2(e->pre, e->i8, e->frame, (LLVMValueRef[]){ci(e, 16)}, 1, "errp");
  memset(e->bufp, 0, (size_t)e->p->nbufs * sizeof *e->bufp);
  memset(e->symv, 0, sizeof e->symv);
  LLVMPositionBuilderAtEnd(e->b, body);
  e->knode = node;
}

static void kend(em *e) {
  /* streaming stores are weakly ordered: make them visible before the
   * kernel returns (its caller or the worker then signals completion
   * with ordinary stores) */
  if (e->nt_used) {
    unsigned id = LLVMLookupIntrinsicID("llvm.x86.sse.sfence", 19);
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(e->m, id, NULL, 0);
    LLVMBuildCall2(e->b, LLVMIntrinsicGetType(e->cx, id, NULL, 0), f, NULL, 0, "");
  }
  e->nt_used = 0;
  LLVMBuildRetVoid(e->b);
}

static void set_err(em *e, int code) {
  LLVMBuildStore(e->b, LLVMConstInt(e->i32, (unsigned long long)(((int64_t)e->knode << 4) | code), 0),
                 e->errp);
}

/* for (iv = lo; iv < hi; iv++) with nc loop-carried values */
typedef struct loop {
  LLVMBasicBlockRef head, body, exit;
  LLVMValueRef iv, phis[4];
  int nc;
  int ic; /* > 0: llvm.loop.interleave.count for the vectoriser */
} loop;

/* Loop metadata !{self, !{"llvm.loop.interleave.count", ic}} on a latch. */
static void loop_hint(em *e, LLVMValueRef latch_br, int ic) {
  /* ic < 0: llvm.loop.vectorize.enable false (a remainder shorter than a
   * vector: vectorising it only adds code) */
  static const char key[] = "llvm.loop.interleave.count", nv[] = "llvm.loop.vectorize.enable";
  LLVMMetadataRef tmp = LLVMTemporaryMDNode(e->cx, NULL, 0);
  LLVMMetadataRef prop[2] = {ic < 0 ? LLVMMDStringInContext2(e->cx, nv, sizeof nv - 1)
                                    : LLVMMDStringInContext2(e->cx, key, sizeof key - 1),
                             ic < 0 ? LLVMValueAsMetadata(LLVMConstInt(e->i1, 0, 0))
                                    : LLVMValueAsMetadata(LLVMConstInt(e->i32, (unsigned long long)ic, 0))};
  LLVMMetadataRef ops[2] = {tmp, LLVMMDNodeInContext2(e->cx, prop, 2)};
  LLVMMetadataRef id = LLVMMDNodeInContext2(e->cx, ops, 2);
  LLVMMetadataReplaceAllUsesWith(tmp, id);
  LLVMSetMetadata(latch_br, LLVMGetMDKindIDInContext(e->cx, "llvm.loop", 9), LLVMMetadataAsValue(e->cx, id));
}

static LLVMValueRef loop_open(em *e, loop *l, LLVMValueRef lo, LLVMValueRef hi, int nc,
                              const LLVMValueRef *init) {
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->b);
  l->head = LLVMAppendBasicBlockInContext(e->cx, e->fn, "head");
  l->body = LLVMAppendBasicBlockInContext(e->cx, e->fn, "loop");
  l->exit = LLVMAppendBasicBlockInContext(e->cx, e->fn, "exit");
  l->nc = nc;
  l->ic = 0;
  LLVMBuildBr(e->b, l->head);
  LLVMPositionBuilderAtEnd(e->b, l->head);
  l->iv = LLVMBuildPhi(e->b, e->i64, "i");
  LLVMAddIncoming(l->iv, &lo, &pre, 1);
  for (int k = 0; k < nc; k++) {
    l->phis[k] = LLVMBuildPhi(e->b, LLVMTypeOf(init[k]), "acc");
    LLVMAddIncoming(l->phis[k], (LLVMValueRef *)&init[k], &pre, 1);
  }
  LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, l->iv, hi, ""), l->body, l->exit);
  LLVMPositionBuilderAtEnd(e->b, l->body);
  return l->iv;
}

static void loop_close(em *e, loop *l, const LLVMValueRef *next) {
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(e->b);
  LLVMValueRef n = LLVMBuildNSWAdd(e->b, l->iv, ci(e, 1), "");
  LLVMValueRef br = LLVMBuildBr(e->b, l->head);
  if (l->ic != 0) loop_hint(e, br, l->ic);
  LLVMAddIncoming(l->iv, &n, &latch, 1);
  for (int k = 0; k < l->nc; k++) LLVMAddIncoming(l->phis[k], (LLVMValueRef *)&next[k], &latch, 1);
  LLVMPositionBuilderAtEnd(e->b, l->exit);
}

/* ---- intrinsics and libm ----------------------------------------------- */

static LLVMValueRef intr(em *e, const char *name, LLVMTypeRef t, LLVMValueRef *args, int n) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMTypeRef tys[1] = {t};
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(e->m, id, tys, 1);
  LLVMTypeRef ft = LLVMIntrinsicGetType(e->cx, id, tys, 1);
  return LLVMBuildCall2(e->b, ft, f, args, (unsigned)n, "");
}
static LLVMValueRef intr1(em *e, const char *name, LLVMValueRef x) {
  return intr(e, name, LLVMTypeOf(x), &x, 1);
}
static LLVMValueRef intr2(em *e, const char *name, LLVMValueRef x, LLVMValueRef y) {
  LLVMValueRef a[2] = {x, y};
  return intr(e, name, LLVMTypeOf(x), a, 2);
}

/* A glibc math function (name is the double one; f32 appends 'f'). */
static LLVMValueRef mcall(em *e, const char *name, int dt, LLVMValueRef *args, int n) {
  char fname[32], vname[48], attr[256];
  bool f = dt == TL_F32;
  snprintf(fname, sizeof fname, "%s%s", name, f ? "f" : "");
  LLVMTypeRef t = vty(e, dt);
  LLVMTypeRef pt[2] = {t, t};
  LLVMTypeRef ft = LLVMFunctionType(t, pt, (unsigned)n, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(e->m, fname);
  if (!fn) {
    fn = LLVMAddFunction(e->m, fname, ft);
    add_enum_attr(e, fn, "nounwind", 0);
    add_enum_attr(e, fn, "willreturn", 0);
    add_enum_attr(e, fn, "memory", 0);
  }
  LLVMValueRef c = LLVMBuildCall2(e->b, ft, fn, args, (unsigned)n, "");
  if (e->vector_math) {
    /* the AVX2 variant, and on AVX-512 hosts also the 512-bit one (which
     * the kernels' prefer-vector-width=512 makes the vectoriser pick) */
    attr[0] = 0;
    for (int isa = 0; isa < (e->avx512 ? 2 : 1); isa++) {
      int w = (f ? 8 : 4) << isa;
      snprintf(vname, sizeof vname, "_ZGV%cN%d%s_%s", isa ? 'e' : 'd', w, n == 2 ? "vv" : "v", fname);
      if (!LLVMGetNamedFunction(e->m, vname)) {
        LLVMTypeRef vt = LLVMVectorType(t, (unsigned)w);
        LLVMTypeRef vp[2] = {vt, vt};
        LLVMValueRef vf = LLVMAddFunction(e->m, vname, LLVMFunctionType(vt, vp, (unsigned)n, 0));
        add_enum_attr(e, vf, "nounwind", 0);
        e->used = tl_xrealloc(e->used, (size_t)(e->nused + 1) * sizeof *e->used);
        e->used[e->nused++] = vf;
      }
      size_t l = strlen(attr);
      snprintf(attr + l, sizeof attr - l, "%s_ZGV_LLVM_N%d%s_%s(%s)", l ? "," : "", w, n == 2 ? "vv" : "v",
               fname, vname);
    }
    const char *k = "vector-function-abi-variant";
    LLVMAddCallSiteAttribute(c, LLVMAttributeFunctionIndex,
                             LLVMCreateStringAttribute(e->cx, k, (unsigned)strlen(k), attr,
                                                       (unsigned)strlen(attr)));
  }
  return c;
}
static LLVMValueRef vm_exp32(em *e, LLVMValueRef x);
static LLVMValueRef vm_tanh32(em *e, LLVMValueRef x);

/* A one-argument math function; with vector_math == 2, f32 exp and tanh
 * (and so sigmoid, softplus, softmax, ... built on exp) are tlaloc's own
 * inline kernels below instead of calls. */
static LLVMValueRef m1(em *e, const char *name, int dt, LLVMValueRef x) {
  if (e->vector_math == 2 && dt == TL_F32) {
    if (!strcmp(name, "exp")) return vm_exp32(e, x);
    if (!strcmp(name, "tanh")) return vm_tanh32(e, x);
  }
  return mcall(e, name, dt, &x, 1);
}

/* ---- conversions --------------------------------------------------------- */

static LLVMValueRef truthy(em *e, LLVMValueRef v, int dt) {
  if (dt == TL_BOOL) return v;
  if (isf(dt)) return LLVMBuildFCmp(e->b, LLVMRealUNE, v, LLVMConstNull(LLVMTypeOf(v)), "");
  return LLVMBuildICmp(e->b, LLVMIntNE, v, LLVMConstNull(LLVMTypeOf(v)), "");
}

/* x86 cvttsd2si: NaN and out-of-range give the most negative integer */
static LLVMValueRef f2i(em *e, LLVMValueRef v, int from, int to) {
  LLVMValueRef d = from == TL_F32 ? LLVMBuildFPExt(e->b, v, e->f64, "") : v;
  double lo = to == TL_I32 ? -2147483649.0 : -9223372036854775808.0;
  double hi = to == TL_I32 ? 2147483648.0 : 9223372036854775808.0;
  LLVMRealPredicate lp = to == TL_I32 ? LLVMRealOGT : LLVMRealOGE;
  LLVMValueRef ok = LLVMBuildAnd(e->b, LLVMBuildFCmp(e->b, lp, d, LLVMConstReal(e->f64, lo), ""),
                                 LLVMBuildFCmp(e->b, LLVMRealOLT, d, LLVMConstReal(e->f64, hi), ""), "");
  LLVMTypeRef t = vty(e, to);
  LLVMValueRef safe = LLVMBuildSelect(e->b, ok, d, LLVMConstReal(e->f64, 0), "");
  LLVMValueRef r = LLVMBuildFPToSI(e->b, safe, t, "");
  LLVMValueRef mn = to == TL_I32 ? LLVMConstInt(e->i32, 0x80000000u, 0) : LLVMConstInt(e->i64, 1ull << 63, 0);
  return LLVMBuildSelect(e->b, ok, r, mn, "");
}

static LLVMValueRef conv(em *e, LLVMValueRef v, int from, int to) {
  if (from == to) return v;
  if (to == TL_BOOL) return truthy(e, v, from);
  LLVMTypeRef t = vty(e, to);
  if (from == TL_BOOL) return isf(to) ? LLVMBuildUIToFP(e->b, v, t, "") : LLVMBuildZExt(e->b, v, t, "");
  if (isf(from)) {
    if (isf(to)) return to == TL_F64 ? LLVMBuildFPExt(e->b, v, t, "") : LLVMBuildFPTrunc(e->b, v, t, "");
    return f2i(e, v, from, to);
  }
  if (isf(to)) {
    if (from == TL_I64 && to == TL_F32) /* through double, as the interpreter */
      return LLVMBuildFPTrunc(e->b, LLVMBuildSIToFP(e->b, v, e->f64, ""), t, "");
    return LLVMBuildSIToFP(e->b, v, t, "");
  }
  return to == TL_I64 ? LLVMBuildSExt(e->b, v, t, "") : LLVMBuildTrunc(e->b, v, t, "");
}

/* ---- scalar ops ------------------------------------------------------------ */

static LLVMValueRef sel(em *e, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(e->b, c, a, b, "");
}
static LLVMValueRef fcmp(em *e, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFCmp(e->b, p, a, b, "");
}
static LLVMValueRef icmp(em *e, LLVMIntPredicate p, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildICmp(e->b, p, a, b, "");
}

/* ---- tlaloc's own f32 exp and tanh (vector_math == 2) ---------------------
 * Inline IR with no calls (fmuladd, fmul, one fdiv, selects, bitcasts,
 * integer ops), so the loop vectoriser widens them with the rest of the
 * kernel. One polynomial serves both; its coefficients were fitted for
 * tlaloc (relative-error least squares on Chebyshev nodes, reweighted
 * towards minimax; docs/backend.md, "Own vector math"): relative error
 * 3.1e-9, well below f32's 6e-8, so the error is that of the f32
 * evaluation: at most 1.02 ulp (exp) and 2.62 ulp (tanh) over all f32
 * inputs (docs/backend.md; tests/backend/be_vmath.c checks <= 4). Not the
 * default: libmvec's AVX-512 variants are faster on AVX-512 hosts. */

static LLVMValueRef fma32(em *e, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  LLVMValueRef ar[3] = {a, b, c};
  return intr(e, "llvm.fmuladd", e->f32, ar, 3);
}

/* 2^k as an f32 for k in [-126, 127]: the biased exponent in place. */
static LLVMValueRef pow2i(em *e, LLVMValueRef k) {
  LLVMValueRef b = LLVMBuildAdd(e->b, k, LLVMConstInt(e->i32, 127, 0), "");
  return LLVMBuildBitCast(e->b, LLVMBuildShl(e->b, b, LLVMConstInt(e->i32, 23, 0), ""), e->f32, "");
}

/* The reduction shared by exp and tanh: x = n ln2 + r, n = round(x / ln2),
 * r in [-ln2/2, ln2/2] (Cody-Waite: ln2_hi has 9 significant bits, so
 * n * ln2_hi is exact for the |n| < 2^8 here). Returns exp(r) - 1 =
 * r + r^2 q(r), q(r) = c2 + c3 r + ... + c6 r^4, and n in *ni (i32). n
 * is rounded by the 1.5 * 2^23 shifter, which leaves it in the low bits: no
 * float-to-int conversion, so NaN stays defined and flows into r. */
static LLVMValueRef vm_expm1_r(em *e, LLVMValueRef x, LLVMValueRef *ni) {
  LLVMBuilderRef B = e->b;
  LLVMValueRef shifter = cf(e, TL_F32, 12582912.0);
  LLVMValueRef s = fma32(e, x, cf(e, TL_F32, 1.44269504088896341), shifter);
  LLVMValueRef nf = LLVMBuildFSub(B, s, shifter, "");
  *ni = LLVMBuildSub(B, LLVMBuildBitCast(B, s, e->i32, ""), LLVMConstInt(e->i32, 0x4b400000, 0), "");
  LLVMValueRef r = fma32(e, nf, cf(e, TL_F32, -0.693359375), x);
  r = fma32(e, nf, cf(e, TL_F32, 2.12194440e-4), r);
  static const double c[5] = {0.4999999403953552, 0.1666652113199234, 0.04166838899254799,
                              0.008368710055947304, 0.0013814610429108143};
  /* Estrin's scheme, not Horner's: q is 3 dependent steps instead of 4,
   * and the chain from x to the result is what limits a fused kernel */
  LLVMValueRef r2 = LLVMBuildFMul(B, r, r, "");
  LLVMValueRef lo = fma32(e, cf(e, TL_F32, c[1]), r, cf(e, TL_F32, c[0]));
  LLVMValueRef hi = fma32(e, cf(e, TL_F32, c[3]), r, cf(e, TL_F32, c[2]));
  hi = fma32(e, cf(e, TL_F32, c[4]), r2, hi);
  LLVMValueRef q = fma32(e, hi, r2, lo);
  return fma32(e, r2, q, r);
}

/* exp(x) = 2^n (1 + expm1(r)). x is clamped to [-104, 89] first: exp(89)
 * overflows and exp(-104) rounds to 0 in the final multiply on their own,
 * and n stays in [-150, 128]. 2^n is applied as two factors
 * 2^(n/2) 2^(n - n/2), both normal, so subnormal results are rounded once,
 * correctly, by the last multiply. NaN passes the clamps (ordered
 * compares) and the arithmetic. */
static LLVMValueRef vm_exp32(em *e, LLVMValueRef x) {
  LLVMBuilderRef B = e->b;
  LLVMValueRef hi = cf(e, TL_F32, 89.0), lo = cf(e, TL_F32, -104.0);
  LLVMValueRef xc = sel(e, fcmp(e, LLVMRealOGT, x, hi), hi, x);
  xc = sel(e, fcmp(e, LLVMRealOLT, xc, lo), lo, xc);
  LLVMValueRef ni;
  LLVMValueRef p = LLVMBuildFAdd(B, vm_expm1_r(e, xc, &ni), cf(e, TL_F32, 1.0), "");
  LLVMValueRef n1 = LLVMBuildAShr(B, ni, LLVMConstInt(e->i32, 1, 0), "");
  LLVMValueRef n2 = LLVMBuildSub(B, ni, n1, "");
  return LLVMBuildFMul(B, LLVMBuildFMul(B, p, pow2i(e, n1), ""), pow2i(e, n2), "");
}

/* tanh(x) = copysign(m / (m + 2), x), m = expm1(2|x|) with |x| clamped at
 * 10 (tanh rounds to 1 beyond 9.01). expm1 = 2^n expm1(r) + (2^n - 1), one
 * fma; n in [0, 29], so 2^n is one exponent field; 2^n - 1 is exact up to
 * n = 24, and above, its rounding (relative 2^-25) is damped by 2 / (m + 2)
 * < 2^-23 in m / (m + 2). The
 * expm1 form keeps the relative accuracy near 0 (m ~ 2|x|), so no separate
 * small-argument polynomial or select is needed. NaN passes the clamp and
 * the arithmetic; the copysign gives tanh(-0) = -0. */
static LLVMValueRef vm_tanh32(em *e, LLVMValueRef x) {
  LLVMBuilderRef B = e->b;
  LLVMValueRef a = intr1(e, "llvm.fabs", x);
  LLVMValueRef ten = cf(e, TL_F32, 10.0);
  LLVMValueRef ac = sel(e, fcmp(e, LLVMRealOGT, a, ten), ten, a);
  LLVMValueRef ni;
  LLVMValueRef er = vm_expm1_r(e, LLVMBuildFAdd(B, ac, ac, ""), &ni);
  LLVMValueRef sc = pow2i(e, ni);
  LLVMValueRef m = fma32(e, sc, er, LLVMBuildFSub(B, sc, cf(e, TL_F32, 1.0), ""));
  LLVMValueRef t = LLVMBuildFDiv(B, m, LLVMBuildFAdd(B, m, cf(e, TL_F32, 2.0), ""), "");
  return intr2(e, "llvm.copysign", t, x);
}

static LLVMValueRef f_sign(em *e, int dt, LLVMValueRef x) {
  LLVMValueRef z = cf(e, dt, 0);
  return sel(e, fcmp(e, LLVMRealOGT, x, z), cf(e, dt, 1),
             sel(e, fcmp(e, LLVMRealOLT, x, z), cf(e, dt, -1), sel(e, fcmp(e, LLVMRealOEQ, x, z), z, x)));
}

static LLVMValueRef f_log1pexp_neg_abs(em *e, int dt, LLVMValueRef x) {
  /* log1p(exp(-|x|)) */
  LLVMValueRef ax = intr1(e, "llvm.fabs", x);
  return m1(e, "log1p", dt, m1(e, "exp", dt, LLVMBuildFNeg(e->b, ax, "")));
}

static void fdivmod(em *e, int dt, LLVMValueRef a, LLVMValueRef b, LLVMValueRef *div, LLVMValueRef *mod) {
  LLVMBuilderRef B = e->b;
  LLVMValueRef z = cf(e, dt, 0), one = cf(e, dt, 1);
  LLVMValueRef m0 = LLVMBuildFRem(B, a, b, "");
  LLVMValueRef q = LLVMBuildFDiv(B, a, b, "");
  LLVMValueRef div0 = LLVMBuildFDiv(B, LLVMBuildFSub(B, a, m0, ""), b, "");
  LLVMValueRef mnz = fcmp(e, LLVMRealUNE, m0, z);
  LLVMValueRef sd = LLVMBuildXor(B, fcmp(e, LLVMRealOLT, b, z), fcmp(e, LLVMRealOLT, m0, z), "");
  LLVMValueRef adj = LLVMBuildAnd(B, mnz, sd, "");
  LLVMValueRef m1v = sel(e, adj, LLVMBuildFAdd(B, m0, b, ""), m0);
  LLVMValueRef div1 = sel(e, adj, LLVMBuildFSub(B, div0, one, ""), div0);
  LLVMValueRef m2 = sel(e, mnz, m1v, intr2(e, "llvm.copysign", z, b));
  LLVMValueRef fd0 = intr1(e, "llvm.floor", div1);
  LLVMValueRef fd1 = sel(e, fcmp(e, LLVMRealOGT, LLVMBuildFSub(B, div1, fd0, ""), cf(e, dt, 0.5)),
                         LLVMBuildFAdd(B, fd0, one, ""), fd0);
  LLVMValueRef fd = sel(e, fcmp(e, LLVMRealUNE, div1, z), fd1, intr2(e, "llvm.copysign", z, q));
  LLVMValueRef bz = fcmp(e, LLVMRealOEQ, b, z);
  *div = sel(e, bz, q, fd);
  *mod = sel(e, bz, m0, m2);
}

static LLVMValueRef ipow(em *e, LLVMValueRef a, LLVMValueRef b) {
  LLVMTypeRef t = LLVMTypeOf(a);
  LLVMBasicBlockRef ebb = LLVMAppendBasicBlockInContext(e->cx, e->fn, "powerr");
  LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(e->cx, e->fn, "powok");
  LLVMBuildCondBr(e->b, icmp(e, LLVMIntSLT, b, LLVMConstNull(t)), ebb, ok);
  LLVMPositionBuilderAtEnd(e->b, ebb);
  set_err(e, BE_ERR_POW);
  LLVMBuildBr(e->b, ok);
  LLVMPositionBuilderAtEnd(e->b, ok);
  /* square-and-multiply over the bits of b (0 iterations when b <= 0) */
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->b);
  LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(e->cx, e->fn, "pw");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(e->cx, e->fn, "pwb");
  LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(e->cx, e->fn, "pwx");
  LLVMBuildBr(e->b, head);
  LLVMPositionBuilderAtEnd(e->b, head);
  LLVMValueRef r = LLVMBuildPhi(e->b, t, ""), base = LLVMBuildPhi(e->b, t, ""), ex = LLVMBuildPhi(e->b, t, "");
  LLVMValueRef one = LLVMConstInt(t, 1, 0);
  LLVMAddIncoming(r, &one, &pre, 1);
  LLVMAddIncoming(base, &a, &pre, 1);
  LLVMAddIncoming(ex, &b, &pre, 1);
  LLVMBuildCondBr(e->b, icmp(e, LLVMIntSGT, ex, LLVMConstNull(t)), body, exit);
  LLVMPositionBuilderAtEnd(e->b, body);
  LLVMValueRef bit = icmp(e, LLVMIntNE, LLVMBuildAnd(e->b, ex, one, ""), LLVMConstNull(t));
  LLVMValueRef r2 = sel(e, bit, LLVMBuildMul(e->b, r, base, ""), r);
  LLVMValueRef b2 = LLVMBuildMul(e->b, base, base, "");
  LLVMValueRef e2 = LLVMBuildAShr(e->b, ex, one, "");
  LLVMBuildBr(e->b, head);
  LLVMAddIncoming(r, &r2, &body, 1);
  LLVMAddIncoming(base, &b2, &body, 1);
  LLVMAddIncoming(ex, &e2, &body, 1);
  LLVMPositionBuilderAtEnd(e->b, exit);
  return r;
}

static LLVMValueRef f_unary(em *e, int op, int dt, LLVMValueRef x) {
  LLVMBuilderRef B = e->b;
  switch (op) {
  case TL_OP_NEG: return LLVMBuildFNeg(B, x, "");
  case TL_OP_ABS: return intr1(e, "llvm.fabs", x);
  case TL_OP_SIGN: return f_sign(e, dt, x);
  case TL_OP_EXP: return m1(e, "exp", dt, x);
  case TL_OP_LOG: return m1(e, "log", dt, x);
  case TL_OP_LOG1P: return m1(e, "log1p", dt, x);
  case TL_OP_EXPM1: return m1(e, "expm1", dt, x);
  case TL_OP_SQRT: return intr1(e, "llvm.sqrt", x);
  case TL_OP_SIN: return m1(e, "sin", dt, x);
  case TL_OP_COS: return m1(e, "cos", dt, x);
  case TL_OP_TANH: return m1(e, "tanh", dt, x);
  case TL_OP_ERF: return m1(e, "erf", dt, x);
  case TL_OP_ERFC: return m1(e, "erfc", dt, x);
  case TL_OP_FLOOR: return intr1(e, "llvm.floor", x);
  case TL_OP_CEIL: return intr1(e, "llvm.ceil", x);
  case TL_OP_RECIPROCAL: return LLVMBuildFDiv(B, cf(e, dt, 1), x, "");
  case TL_OP_SIGMOID: {
    LLVMValueRef en = m1(e, "exp", dt, LLVMBuildFNeg(B, intr1(e, "llvm.fabs", x), ""));
    LLVMValueRef d = LLVMBuildFAdd(B, cf(e, dt, 1), en, "");
    return sel(e, fcmp(e, LLVMRealOGE, x, cf(e, dt, 0)), LLVMBuildFDiv(B, cf(e, dt, 1), d, ""),
               LLVMBuildFDiv(B, en, d, ""));
  }
  case TL_OP_SOFTPLUS: {
    LLVMValueRef r = LLVMBuildFAdd(B, intr2(e, "llvm.maxnum", x, cf(e, dt, 0)),
                                   f_log1pexp_neg_abs(e, dt, x), "");
    return sel(e, fcmp(e, LLVMRealUNO, x, x), x, r);
  }
  case TL_OP_LOG1MEXP: {
    LLVMValueRef a = m1(e, "log", dt, LLVMBuildFNeg(B, m1(e, "expm1", dt, x), ""));
    LLVMValueRef b = m1(e, "log1p", dt, LLVMBuildFNeg(B, m1(e, "exp", dt, x), ""));
    LLVMValueRef r = sel(e, fcmp(e, LLVMRealOGT, x, cf(e, dt, -M_LN2)), a, b);
    return sel(e, fcmp(e, LLVMRealOGT, x, cf(e, dt, 0)), cf(e, dt, NAN), r);
  }
  default: return NULL;
  }
}

static LLVMValueRef f_binary(em *e, int op, int dt, LLVMValueRef a, LLVMValueRef b) {
  LLVMBuilderRef B = e->b;
  LLVMValueRef d, m;
  switch (op) {
  case TL_OP_ADD: return LLVMBuildFAdd(B, a, b, "");
  case TL_OP_SUB: return LLVMBuildFSub(B, a, b, "");
  case TL_OP_MUL: return LLVMBuildFMul(B, a, b, "");
  case TL_OP_DIV: return LLVMBuildFDiv(B, a, b, "");
  case TL_OP_FLOOR_DIVIDE: fdivmod(e, dt, a, b, &d, &m); return d;
  case TL_OP_REMAINDER: fdivmod(e, dt, a, b, &d, &m); return m;
  case TL_OP_POW: { LLVMValueRef ar[2] = {a, b}; return mcall(e, "pow", dt, ar, 2); }
  case TL_OP_MAXIMUM: return intr2(e, "llvm.maximum", a, b);
  case TL_OP_MINIMUM: return intr2(e, "llvm.minimum", a, b);
  case TL_OP_LOGADDEXP: {
    LLVMValueRef mx = intr2(e, "llvm.maxnum", a, b);
    LLVMValueRef r = LLVMBuildFAdd(B, mx, f_log1pexp_neg_abs(e, dt, LLVMBuildFSub(B, a, b, "")), "");
    r = sel(e, fcmp(e, LLVMRealUNO, a, b), cf(e, dt, NAN), r);
    return sel(e, fcmp(e, LLVMRealOEQ, a, b), LLVMBuildFAdd(B, a, cf(e, dt, M_LN2), ""), r);
  }
  case TL_OP_XLOGY: {
    LLVMValueRef r = LLVMBuildFMul(B, a, m1(e, "log", dt, b), "");
    LLVMValueRef z = LLVMBuildAnd(B, fcmp(e, LLVMRealOEQ, a, cf(e, dt, 0)), fcmp(e, LLVMRealORD, b, b), "");
    return sel(e, z, cf(e, dt, 0), r);
  }
  default: return NULL;
  }
}

static LLVMValueRef i_op(em *e, int op, LLVMValueRef a, LLVMValueRef b) {
  LLVMBuilderRef B = e->b;
  LLVMTypeRef t = LLVMTypeOf(a);
  LLVMValueRef z = LLVMConstNull(t), one = LLVMConstInt(t, 1, 0), m1v = LLVMConstAllOnes(t);
  switch (op) {
  case TL_OP_NEG: return LLVMBuildSub(B, z, a, "");
  case TL_OP_ABS: return sel(e, icmp(e, LLVMIntSLT, a, z), LLVMBuildSub(B, z, a, ""), a);
  case TL_OP_SIGN:
    return sel(e, icmp(e, LLVMIntSGT, a, z), one, sel(e, icmp(e, LLVMIntSLT, a, z), m1v, z));
  case TL_OP_ADD: return LLVMBuildAdd(B, a, b, "");
  case TL_OP_SUB: return LLVMBuildSub(B, a, b, "");
  case TL_OP_MUL: return LLVMBuildMul(B, a, b, "");
  case TL_OP_MAXIMUM: return sel(e, icmp(e, LLVMIntSGT, a, b), a, b);
  case TL_OP_MINIMUM: return sel(e, icmp(e, LLVMIntSLT, a, b), a, b);
  case TL_OP_POW: return ipow(e, a, b);
  case TL_OP_FLOOR_DIVIDE: case TL_OP_REMAINDER: {
    LLVMValueRef b0 = icmp(e, LLVMIntEQ, b, z), bm = icmp(e, LLVMIntEQ, b, m1v);
    LLVMValueRef bs = sel(e, LLVMBuildOr(B, b0, bm, ""), one, b);
    LLVMValueRef r = LLVMBuildSRem(B, a, bs, "");
    if (op == TL_OP_FLOOR_DIVIDE) {
      LLVMValueRef q = LLVMBuildSDiv(B, a, bs, "");
      LLVMValueRef adj = LLVMBuildAnd(B, icmp(e, LLVMIntNE, r, z),
                                      LLVMBuildXor(B, icmp(e, LLVMIntSLT, a, z), icmp(e, LLVMIntSLT, b, z), ""), "");
      q = LLVMBuildSub(B, q, LLVMBuildZExt(B, adj, t, ""), "");
      return sel(e, b0, z, sel(e, bm, LLVMBuildSub(B, z, a, ""), q));
    }
    LLVMValueRef adj = LLVMBuildAnd(B, icmp(e, LLVMIntNE, r, z),
                                    LLVMBuildXor(B, icmp(e, LLVMIntSLT, r, z), icmp(e, LLVMIntSLT, b, z), ""), "");
    r = sel(e, adj, LLVMBuildAdd(B, r, b, ""), r);
    return sel(e, LLVMBuildOr(B, b0, bm, ""), z, r);
  }
  default: return NULL;
  }
}

/* ---- expressions ---------------------------------------------------------- */

static LLVMValueRef ex(em *e, int32_t id, LLVMValueRef *idx);

static void contig_strides(em *e, int rank, const int64_t *dims, LLVMValueRef *st) {
  LLVMValueRef s = ci(e, 1);
  for (int i = rank - 1; i >= 0; i--) {
    st[i] = s;
    s = LLVMBuildMul(e->pre, s, dimv(e, dims[i]), "");
  }
}

static LLVMValueRef offset(em *e, int rank, const LLVMValueRef *st, LLVMValueRef *idx) {
  LLVMValueRef off = ci(e, 0);
  for (int i = 0; i < rank; i++) off = LLVMBuildNSWAdd(e->b, off, LLVMBuildNSWMul(e->b, idx[i], st[i], ""), "");
  return off;
}

static LLVMValueRef load_at(em *e, int32_t bi, int dt, LLVMValueRef off) {
  LLVMValueRef a = LLVMBuildInBoundsGEP2(e->b, mty(e, dt), bufptr(e, bi), &off, 1, "");
  LLVMValueRef v = LLVMBuildLoad2(e->b, mty(e, dt), a, "");
  if (dt == TL_BOOL) v = LLVMBuildICmp(e->b, LLVMIntNE, v, LLVMConstInt(e->i8, 0, 0), "");
  return v;
}

static void store_at(em *e, int32_t bi, int dt, LLVMValueRef off, LLVMValueRef v) {
  if (dt == TL_BOOL) v = LLVMBuildZExt(e->b, v, e->i8, "");
  if (e->scratch && bi == e->scratch_buf) {
    LLVMBuildStore(e->b, v, LLVMBuildInBoundsGEP2(e->b, mty(e, dt), e->scratch, &e->scratch_j, 1, ""));
    return;
  }
  LLVMValueRef a = LLVMBuildInBoundsGEP2(e->b, mty(e, dt), bufptr(e, bi), &off, 1, "");
  LLVMBuildStore(e->b, v, a);
}

static LLVMValueRef lit_value(em *e, const tl_node *n) {
  int dt = n->type.dtype;
  bool one = n->op == TL_OP_ONES_LIKE;
  if (n->op == TL_OP_ZEROS_LIKE || one) {
    if (isf(dt)) return cf(e, dt, one);
    return LLVMConstInt(vty(e, dt), one, 0);
  }
  if (isf(dt)) {
    double v = n->attrs.is_int ? (double)n->attrs.i : n->attrs.f;
    return cf(e, dt, dt == TL_F32 ? (double)(float)v : v);
  }
  int64_t v = n->attrs.is_int ? n->attrs.i : tl_f64_to_i64(n->attrs.f);
  if (dt == TL_BOOL) return LLVMConstInt(e->i1, v != 0, 0);
  return LLVMConstInt(vty(e, dt), (unsigned long long)v, 1);
}

/* The index maps of expand_dims and squeeze, shared by the index
 * expressions and the dependency analysis: which result dims expand_dims
 * inserts, and which operand dims squeeze drops. */
static void expand_dims_mask(const tl_node *n, bool ins[TL_MAX_RANK]) {
  memset(ins, 0, TL_MAX_RANK * sizeof *ins);
  for (int i = 0; i < n->attrs.naxes; i++) {
    int a = n->attrs.axes[i];
    ins[a < 0 ? a + n->type.rank : a] = true;
  }
}

static void squeeze_mask(const tl_node *n, const tl_type *xt, bool drop[TL_MAX_RANK]) {
  memset(drop, 0, TL_MAX_RANK * sizeof *drop);
  if (n->attrs.present & TL_A_AXIS)
    for (int i = 0; i < n->attrs.naxes; i++) {
      int a = n->attrs.axes[i];
      drop[a < 0 ? a + xt->rank : a] = true;
    }
  else
    for (int i = 0; i < xt->rank; i++) drop[i] = xt->dims[i] == 1;
}

/* Index of operand x (of rank xr) of a broadcasting op of rank r. */
static void bcast_idx(em *e, const tl_type *xt, const tl_type *ot, LLVMValueRef *idx, LLVMValueRef *xi) {
  int off = ot->rank - xt->rank;
  for (int j = 0; j < xt->rank; j++) {
    bool b = xt->dims[j] == 1 && ot->dims[j + off] != 1;
    xi[j] = b ? ci(e, 0) : idx[j + off];
  }
}

/* Python slice start for a dim of length len (an LLVM value). */
static LLVMValueRef slice_start(em *e, const tl_attrs *a, LLVMValueRef len) {
  int64_t step = (a->present & TL_A_STEP) ? a->step : 1;
  LLVMBuilderRef B = e->pre;
  if (step > 0) {
    if (!(a->present & TL_A_START)) return ci(e, 0);
    int64_t s = a->start;
    if (s < 0) {
      LLVMValueRef v = LLVMBuildAdd(B, ci(e, s), len, "");
      return LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSLT, v, ci(e, 0), ""), ci(e, 0), v, "");
    }
    return LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSGT, ci(e, s), len, ""), len, ci(e, s), "");
  }
  LLVMValueRef lm1 = LLVMBuildSub(B, len, ci(e, 1), "");
  if (!(a->present & TL_A_START)) return lm1;
  int64_t s = a->start;
  if (s < 0) {
    LLVMValueRef v = LLVMBuildAdd(B, ci(e, s), len, "");
    return LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSLT, v, ci(e, 0), ""), ci(e, -1), v, "");
  }
  return LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSGE, ci(e, s), len, ""), lm1, ci(e, s), "");
}

static LLVMValueRef ex_elemwise(em *e, int32_t id, LLVMValueRef *idx) {
  const tl_graph *g = e->g;
  const tl_node *n = &g->nodes[id];
  const int32_t *in = tl_node_inputs(g, n);
  int op = n->op, nin = n->ninputs, odt = n->type.dtype;
  LLVMValueRef v[3];
  int dts[3];
  const tl_type *ts[3];
  for (int k = 0; k < nin; k++) {
    LLVMValueRef xi[TL_MAX_RANK];
    ts[k] = &g->nodes[in[k]].type;
    bcast_idx(e, ts[k], &n->type, idx, xi);
    v[k] = ex(e, in[k], xi);
    dts[k] = ts[k]->dtype;
  }
  switch (op) {
  case TL_OP_NOT: return LLVMBuildNot(e->b, truthy(e, v[0], dts[0]), "");
  case TL_OP_AND: return LLVMBuildAnd(e->b, truthy(e, v[0], dts[0]), truthy(e, v[1], dts[1]), "");
  case TL_OP_OR: return LLVMBuildOr(e->b, truthy(e, v[0], dts[0]), truthy(e, v[1], dts[1]), "");
  case TL_OP_WHERE:
    return sel(e, truthy(e, v[0], dts[0]), conv(e, v[1], dts[1], odt), conv(e, v[2], dts[2], odt));
  case TL_OP_CAST: return conv(e, v[0], dts[0], odt);
  default: break;
  }
  uint8_t ct = (uint8_t)odt, weak;
  if (tl_ops[op].dtype_rule == TL_DR_CMP) tl_promote(ts, nin, &ct, &weak);
  for (int k = 0; k < nin; k++) v[k] = conv(e, v[k], dts[k], ct);
  if (tl_ops[op].dtype_rule == TL_DR_CMP) {
    static const LLVMRealPredicate fp[] = {LLVMRealOEQ, LLVMRealUNE, LLVMRealOLT, LLVMRealOLE, LLVMRealOGT, LLVMRealOGE};
    static const LLVMIntPredicate ip[] = {LLVMIntEQ, LLVMIntNE, LLVMIntSLT, LLVMIntSLE, LLVMIntSGT, LLVMIntSGE};
    int k = op - TL_OP_EQ;
    if (isf(ct)) return fcmp(e, fp[k], v[0], v[1]);
    if (ct == TL_BOOL) {
      v[0] = LLVMBuildZExt(e->b, v[0], e->i8, "");
      v[1] = LLVMBuildZExt(e->b, v[1], e->i8, "");
    }
    return icmp(e, ip[k], v[0], v[1]);
  }
  LLVMValueRef r = NULL;
  if (isf(ct)) r = nin == 1 ? f_unary(e, op, ct, v[0]) : f_binary(e, op, ct, v[0], v[1]);
  else if (ct == TL_BOOL) {
    if (op == TL_OP_ABS) r = v[0];
    else if (op == TL_OP_ADD || op == TL_OP_MAXIMUM) r = LLVMBuildOr(e->b, v[0], v[1], "");
    else if (op == TL_OP_MUL || op == TL_OP_MINIMUM) r = LLVMBuildAnd(e->b, v[0], v[1], "");
  } else r = i_op(e, op, v[0], nin > 1 ? v[1] : NULL);
  if (!r && !e->failed) {
    e->failed = 1;
    snprintf(e->err, e->errn, "backend: op %s on dtype %s is not supported", tl_ops[op].name,
             tl_dtype_name((tl_dtype)ct));
  }
  return r ? r : LLVMGetUndef(vty(e, odt));
}

static LLVMValueRef ex_def(em *e, int32_t id, LLVMValueRef *idx);

static LLVMValueRef ex(em *e, int32_t id, LLVMValueRef *idx) {
  const tl_node *n = &e->g->nodes[id];
  const be_plan *p = e->p;
  if (p->state[id] == BE_S_MAT || p->state[id] == BE_S_ALIAS) {
    LLVMValueRef st[TL_MAX_RANK];
    contig_strides(e, n->type.rank, n->type.dims, st);
    return load_at(e, p->buf_of[id], n->type.dtype, offset(e, n->type.rank, st, idx));
  }
  return ex_def(e, id, idx);
}

/* The node's own definition (its operands may be buffers). */
static LLVMValueRef ex_def(em *e, int32_t id, LLVMValueRef *idx) {
  const tl_graph *g = e->g;
  const tl_node *n = &g->nodes[id];
  const int32_t *in = tl_node_inputs(g, n);
  const be_plan *p = e->p;
  const tl_type *xt = n->ninputs ? &g->nodes[in[0]].type : NULL;
  LLVMValueRef xi[TL_MAX_RANK];
  switch (n->op) {
  case TL_OP_LIT: case TL_OP_FILL: case TL_OP_ZEROS_LIKE: case TL_OP_ONES_LIKE:
    return lit_value(e, n);
  case TL_OP_TRANSPOSE:
    for (int i = 0; i < xt->rank; i++) {
      int q = (n->attrs.present & TL_A_PERM) ? n->attrs.perm[i] : xt->rank - 1 - i;
      if (q < 0) q += xt->rank;
      xi[q] = idx[i];
    }
    return ex(e, in[0], xi);
  case TL_OP_BROADCAST_TO:
    bcast_idx(e, xt, &n->type, idx, xi);
    return ex(e, in[0], xi);
  case TL_OP_EXPAND_DIMS: {
    bool ins[TL_MAX_RANK];
    expand_dims_mask(n, ins);
    int j = 0;
    for (int i = 0; i < n->type.rank; i++)
      if (!ins[i]) xi[j++] = idx[i];
    return ex(e, in[0], xi);
  }
  case TL_OP_SQUEEZE: {
    bool drop[TL_MAX_RANK];
    squeeze_mask(n, xt, drop);
    int j = 0;
    for (int i = 0; i < xt->rank; i++) xi[i] = drop[i] ? ci(e, 0) : idx[j++];
    return ex(e, in[0], xi);
  }
  case TL_OP_SLICE: {
    int ax = (n->attrs.present & TL_A_AXIS) ? n->attrs.axes[0] : 0;
    if (ax < 0) ax += xt->rank;
    int64_t step = (n->attrs.present & TL_A_STEP) ? n->attrs.step : 1;
    LLVMValueRef start = slice_start(e, &n->attrs, dimv(e, xt->dims[ax]));
    for (int i = 0; i < xt->rank; i++) xi[i] = idx[i];
    xi[ax] = LLVMBuildNSWAdd(e->b, start, LLVMBuildNSWMul(e->b, idx[ax], ci(e, step), ""), "");
    return ex(e, in[0], xi);
  }
  case TL_OP_TAKE: {
    const tl_type *it = &g->nodes[in[1]].type;
    bool flat = !(n->attrs.present & TL_A_AXIS);
    int ax = flat ? 0 : n->attrs.axes[0];
    if (ax < 0) ax += xt->rank;
    LLVMValueRef ist[TL_MAX_RANK];
    contig_strides(e, it->rank, it->dims, ist);
    LLVMValueRef j = load_at(e, p->buf_of[in[1]], it->dtype, offset(e, it->rank, ist, idx + ax));
    j = conv(e, j, it->dtype, TL_I64);
    LLVMValueRef len;
    if (flat) {
      len = ci(e, 1);
      for (int i = 0; i < xt->rank; i++) len = LLVMBuildMul(e->pre, len, dimv(e, xt->dims[i]), "");
    } else {
      len = dimv(e, xt->dims[ax]);
    }
    j = sel(e, icmp(e, LLVMIntSLT, j, ci(e, 0)), LLVMBuildAdd(e->b, j, len, ""), j);
    if (flat) return load_at(e, p->buf_of[in[0]], xt->dtype, j);
    for (int i = 0; i < ax; i++) xi[i] = idx[i];
    xi[ax] = j;
    for (int i = ax + 1; i < xt->rank; i++) xi[i] = idx[i - 1 + it->rank];
    return ex(e, in[0], xi);
  }
  default:
    if (tl_ops[n->op].kind == TL_KIND_ELEMWISE) return ex_elemwise(e, id, idx);
    if (!e->failed) {
      e->failed = 1;
      snprintf(e->err, e->errn, "backend: op %s on dtype %s is not supported (internal: not inline)",
               tl_ops[n->op].name, tl_dtype_name((tl_dtype)n->type.dtype));
    }
    return LLVMGetUndef(vty(e, n->type.dtype));
  }
}

/* ---- loop structure -------------------------------------------------------
 * An elementwise kernel's loop nest covers its output dims, and adjacent
 * dims that every memory access of the kernel sees as one contiguous run
 * share one loop: a [512 32] kernel is one loop of 16384 iterations. The
 * vectoriser's main loop needs VF x interleave iterations (32-64 here), so
 * an innermost loop of 8-60 ran its scalar remainder, libm calls included,
 * 5-10x slower than the same elements in one long loop.
 *
 * Inside a merged group of dims the loop variable j is given to the
 * group's last dim (its "carry" dim) and the other dims' indices are 0, so
 * every access computes j * stride(carry) for the group. That is the right
 * offset exactly when, for each access (a load of a buffer, the store),
 * the group's dims map to adjacent dims of the buffer of the same sizes in
 * the same order (the first may carry a loop-invariant shift: a step-1
 * slice), or the access does not depend on any of them (broadcast). The
 * walk below follows ex()/ex_def()'s index maps to check that. Dims of
 * size 1 always have index 0 and join any group. */

/* How one index of a node's index vector depends on the kernel's output
 * indices (bit a of mask: output dim a). PASS: it is the output index of
 * the one dim in mask; SHIFT: that index plus a loop invariant; OTHER:
 * another function of the dims in mask (mask 0: a loop invariant). */
enum { DEP_PASS, DEP_SHIFT, DEP_OTHER };
typedef struct dep {
  uint8_t kind;
  uint16_t mask;
} dep;

typedef struct mscan {
  const be_plan *p;
  const int64_t *odims;
  int u[TL_MAX_RANK], nu;  /* the output dims not of size 1 */
  bool cut[TL_MAX_RANK];   /* cut[k]: u[k] and u[k + 1] need loops of their own */
} mscan;

static dep dep_of(int kind, unsigned mask) { return (dep){(uint8_t)kind, (uint16_t)mask}; }

/* One memory access: a buffer of dims ldims[0..lr) read or written at an
 * index vector whose entries depend on the output dims as d says. */
static void scan_access(mscan *s, int lr, const int64_t *ldims, const dep *d) {
  for (int k = 0; k + 1 < s->nu; k++) {
    if (s->cut[k]) continue;
    int a = s->u[k], b = s->u[k + 1], p = -1, q = -1, np = 0, nq = 0;
    for (int i = 0; i < lr; i++) {
      if ((d[i].mask >> a) & 1) { p = i; np++; }
      if ((d[i].mask >> b) & 1) { q = i; nq++; }
    }
    if (!np && !nq) continue; /* broadcast over both */
    bool ok = np == 1 && nq == 1 && p < q && (d[p].kind == DEP_PASS || d[p].kind == DEP_SHIFT) &&
              d[q].kind == DEP_PASS && ldims[q] == s->odims[b];
    for (int i = p + 1; ok && i < q; i++) ok = ldims[i] == 1;
    if (!ok) s->cut[k] = true;
  }
}

/* Operand xt of a broadcasting node of type ot (bcast_idx's map). */
static void bcast_dep(const tl_type *xt, const tl_type *ot, const dep *d, dep *x) {
  int off = ot->rank - xt->rank;
  for (int j = 0; j < xt->rank; j++)
    x[j] = xt->dims[j] == 1 && ot->dims[j + off] != 1 ? dep_of(DEP_OTHER, 0) : d[j + off];
}

/* The accesses of ex(id) (def: ex_def(id)) at an index vector d. */
static void scan_expr(mscan *s, int32_t id, bool def, const dep *d) {
  const be_plan *p = s->p;
  const tl_graph *g = p->g;
  const tl_node *n = &g->nodes[id];
  if (!def && (p->state[id] == BE_S_MAT || p->state[id] == BE_S_ALIAS)) {
    scan_access(s, n->type.rank, n->type.dims, d);
    return;
  }
  const int32_t *in = tl_node_inputs(g, n);
  const tl_type *xt = n->ninputs ? &g->nodes[in[0]].type : NULL;
  dep x[TL_MAX_RANK];
  switch (n->op) {
  case TL_OP_LIT: case TL_OP_FILL: case TL_OP_ZEROS_LIKE: case TL_OP_ONES_LIKE:
    return;
  case TL_OP_TRANSPOSE:
    for (int i = 0; i < xt->rank; i++) {
      int q = (n->attrs.present & TL_A_PERM) ? n->attrs.perm[i] : xt->rank - 1 - i;
      x[q < 0 ? q + xt->rank : q] = d[i];
    }
    break;
  case TL_OP_BROADCAST_TO:
    bcast_dep(xt, &n->type, d, x);
    break;
  case TL_OP_EXPAND_DIMS: {
    bool ins[TL_MAX_RANK];
    expand_dims_mask(n, ins);
    int j = 0;
    for (int i = 0; i < n->type.rank; i++)
      if (!ins[i]) x[j++] = d[i];
    break;
  }
  case TL_OP_SQUEEZE: {
    bool drop[TL_MAX_RANK];
    squeeze_mask(n, xt, drop);
    int j = 0;
    for (int i = 0; i < xt->rank; i++) x[i] = drop[i] ? dep_of(DEP_OTHER, 0) : d[j++];
    break;
  }
  case TL_OP_SLICE: {
    int ax = (n->attrs.present & TL_A_AXIS) ? n->attrs.axes[0] : 0;
    if (ax < 0) ax += xt->rank;
    int64_t step = (n->attrs.present & TL_A_STEP) ? n->attrs.step : 1;
    memcpy(x, d, (size_t)xt->rank * sizeof *x);
    if (step == 1 && d[ax].kind == DEP_PASS) x[ax].kind = DEP_SHIFT;
    else if (step != 1) x[ax] = dep_of(DEP_OTHER, d[ax].mask);
    break;
  }
  case TL_OP_TAKE: {
    const tl_type *it = &g->nodes[in[1]].type;
    bool flat = !(n->attrs.present & TL_A_AXIS);
    int ax = flat ? 0 : n->attrs.axes[0];
    if (ax < 0) ax += xt->rank;
    scan_access(s, it->rank, it->dims, d + ax); /* the indices */
    unsigned m = 0;
    for (int i = 0; i < it->rank; i++) m |= d[ax + i].mask;
    if (flat) { /* a load at the index itself */
      x[0] = dep_of(DEP_OTHER, m);
      scan_access(s, 1, xt->dims, x);
      return;
    }
    for (int i = 0; i < ax; i++) x[i] = d[i];
    x[ax] = dep_of(DEP_OTHER, m);
    for (int i = ax + 1; i < xt->rank; i++) x[i] = d[i - 1 + it->rank];
    break;
  }
  default: /* elementwise (be_plan_build admits nothing else inline) */
    for (int k = 0; k < n->ninputs; k++) {
      bcast_dep(&g->nodes[in[k]].type, &n->type, d, x);
      scan_expr(s, in[k], false, x);
    }
    return;
  }
  scan_expr(s, in[0], false, x);
}

void be_ew_loops(const be_plan *p, const be_kern *k, be_loops *l) {
  const tl_graph *g = p->g;
  const tl_node *n = &g->nodes[k->node];
  int r = n->type.rank;
  mscan s;
  memset(&s, 0, sizeof s);
  s.p = p;
  s.odims = n->type.dims;
  for (int i = 0; i < r; i++)
    if (n->type.dims[i] != 1) s.u[s.nu++] = i;
  dep d[TL_MAX_RANK];
  for (int i = 0; i < r; i++) d[i] = dep_of(DEP_PASS, 1u << i);
  bool own = p->buf_of[k->node] == k->out && p->state[k->node] == BE_S_MAT;
  scan_expr(&s, k->node, own, d);
  if (k->place >= 0) { /* the store, into a concat's buffer at an offset */
    const tl_node *cn = &g->nodes[k->place];
    int ax = (cn->attrs.present & TL_A_AXIS) ? cn->attrs.axes[0] : 0;
    if (ax < 0) ax += cn->type.rank;
    d[ax].kind = DEP_SHIFT;
    scan_access(&s, cn->type.rank, cn->type.dims, d);
  } else {
    scan_access(&s, r, n->type.dims, d);
  }
  /* a cut between u[k] and u[k + 1] starts a loop at u[k] + 1 */
  memset(l, 0, sizeof *l);
  if (r == 0) return;
  bool start[TL_MAX_RANK + 1] = {true};
  for (int q = 0; q + 1 < s.nu; q++)
    if (s.cut[q]) start[s.u[q] + 1] = true;
  bool wide = false; /* the current group has a dim not of size 1 */
  for (int i = 0; i < r; i++) {
    if (start[i]) {
      l->first[l->n++] = (int8_t)i;
      wide = false;
    }
    l->last[l->n - 1] = (int8_t)i;
    if (n->type.dims[i] != 1 || !wide) l->carry[l->n - 1] = (int8_t)i;
    wide |= n->type.dims[i] != 1;
  }
}

/* ---- kernels ------------------------------------------------------------- */

/* Opens loops over dims[0..r) (dim 0 from lo to hi), writing the ivs. */
static void nest_open(em *e, loop *ls, int r, const int64_t *dims, const int *order, LLVMValueRef lo,
                      LLVMValueRef hi, LLVMValueRef *iv) {
  for (int k = 0; k < r; k++) {
    int d = order ? order[k] : k;
    LLVMValueRef a = k == 0 && lo ? lo : ci(e, 0), b = k == 0 && hi ? hi : dimv(e, dims[d]);
    iv[d] = loop_open(e, &ls[k], a, b, 0, NULL);
  }
}
static void nest_close(em *e, loop *ls, int r) {
  for (int k = r - 1; k >= 0; k--) loop_close(e, &ls[k], NULL);
}

static LLVMValueRef guard_range(em *e, LLVMValueRef lo, LLVMValueRef hi) {
  /* rank-0 kernels: run once when the range is non-empty */
  LLVMBasicBlockRef yes = LLVMAppendBasicBlockInContext(e->cx, e->fn, "once");
  LLVMBasicBlockRef no = LLVMAppendBasicBlockInContext(e->cx, e->fn, "done");
  LLVMBuildCondBr(e->b, icmp(e, LLVMIntSLT, lo, hi), yes, no);
  LLVMPositionBuilderAtEnd(e->b, yes);
  return (LLVMValueRef)no;
}
static void guard_end(em *e, LLVMValueRef no) {
  LLVMBuildBr(e->b, (LLVMBasicBlockRef)no);
  LLVMPositionBuilderAtEnd(e->b, (LLVMBasicBlockRef)no);
}

/* ---- streaming prefetch ---------------------------------------------------
 * A kernel that calls vector math functions (exp, tanh, ...) on every
 * element issues its loads too slowly for the hardware prefetcher to keep
 * memory busy: one thread ran the exp/tanh chain of bench-backend at the
 * sum of its compute time and the triad's memory time (1.11 ns per element
 * against 0.56 in L1 and 0.66 for the triad). Prefetching each streamed
 * input a fixed distance ahead, one line per vector, overlaps the two (the
 * same loop in C: 10.1 -> 7.3 ms, the triad 7.4 ms). Prefetching a block's
 * lines in a burst at its start did not help (10.4 ms): the misses must be
 * spread over the loop. So the loop runs in blocks of one cache line of
 * the output, each block first prefetching the lines PF_AHEAD blocks ahead
 * and then running the body over the block (one vector). */
enum { PF_LINE = 64, PF_AHEAD = 32 };

/* An inline expression (or the kernel's own definition, own) that calls a
 * vector math function. */
static bool calls_math(const be_plan *p, int32_t id, bool own) {
  if (!own && p->state[id] != BE_S_INLINE) return false;
  const tl_node *n = &p->g->nodes[id];
  switch (n->op) {
  case TL_OP_EXP: case TL_OP_LOG: case TL_OP_LOG1P: case TL_OP_EXPM1: case TL_OP_SIN: case TL_OP_COS:
  case TL_OP_TANH: case TL_OP_SIGMOID: case TL_OP_SOFTPLUS: case TL_OP_LOG1MEXP: case TL_OP_ERF:
  case TL_OP_ERFC: case TL_OP_POW: case TL_OP_LOGADDEXP: case TL_OP_XLOGY:
    return isf(n->type.dtype);
  default: break;
  }
  for (int i = 0; i < n->ninputs; i++)
    if (calls_math(p, tl_node_inputs(p->g, n)[i], false)) return true;
  return false;
}

/* The buffers kernel k reads in step with its output: as many elements
 * (the same dims once dims of size 1 are dropped). In a kernel whose
 * loops merge into one, such a buffer is read at the loop's index. */
static int stream_bufs(const be_plan *p, const be_kern *k, int32_t *out, int max) {
  const tl_type *t = &p->g->nodes[k->node].type;
  int64_t od[TL_MAX_RANK];
  int nod = 0;
  for (int i = 0; i < t->rank; i++)
    if (t->dims[i] != 1) od[nod++] = t->dims[i];
  int ns = 0;
  for (int r = 0; r < k->nreads && ns < max; r++) {
    const be_buf *b = &p->bufs[k->reads[r]];
    int nb = 0;
    bool same = true;
    for (int i = 0; i < b->rank && same; i++)
      if (b->dims[i] != 1) same = nb < nod && b->dims[i] == od[nb++];
    if (!same || nb != nod || b->dtype == TL_BOOL) continue;
    bool dup = false;
    for (int q = 0; q < ns; q++) dup |= out[q] == k->reads[r];
    if (!dup) out[ns++] = k->reads[r];
  }
  return ns;
}

static void prefetch(em *e, LLVMValueRef base, LLVMValueRef byte_off) {
  LLVMValueRef a = LLVMBuildGEP2(e->b, e->i8, base, &byte_off, 1, "");
  LLVMValueRef args[4] = {a, LLVMConstInt(e->i32, 0, 0), LLVMConstInt(e->i32, 3, 0), LLVMConstInt(e->i32, 1, 0)};
  intr(e, "llvm.prefetch", e->ptr, args, 4);
}

/* The body of an elementwise kernel at index iv: compute and store. */
static void ew_body(em *e, const be_kern *k, LLVMValueRef base, const LLVMValueRef *ost, LLVMValueRef *iv) {
  const tl_node *n = &e->g->nodes[k->node];
  const be_buf *ob = &e->p->bufs[k->out];
  bool own = e->p->buf_of[k->node] == k->out && e->p->state[k->node] == BE_S_MAT;
  LLVMValueRef v = own ? ex_def(e, k->node, iv) : ex(e, k->node, iv);
  v = conv(e, v, n->type.dtype, ob->dtype);
  LLVMValueRef off = LLVMBuildNSWAdd(e->b, base, offset(e, n->type.rank, ost, iv), "");
  store_at(e, k->out, ob->dtype, off, v);
}

/* ---- streaming stores -----------------------------------------------------
 * A large output is written with streaming (non-temporal) stores: an
 * ordinary store first reads the line it writes (read for ownership), so
 * writing 40 MB moves 80 MB; a streaming store moves 40. log_softmax over
 * 1000 x 10000 f32 in C, one thread: 12.3-12.6 -> 9.2-9.3 ms. An output
 * smaller than NT_MIN_BYTES may be read again from cache by the next
 * kernel and keeps ordinary stores. A streaming store writes a whole
 * aligned line, so the block's body stores its line into a scratch line
 * (vectorised like any other store), and the block then stores the line:
 * streaming when the output is large and the line aligned, else ordinary.
 * The extra store and load stay in L1. */
enum { NT_MIN_BYTES = 8 << 20 };

/* where prefetched_loop stores lines: buffer buf of dtype dt, stream when
 * on (i1) and the line is aligned; off(i) is the output offset of element
 * i of the loop, and the output is contiguous along the loop */
typedef LLVMValueRef pf_off(em *e, LLVMValueRef i, void *ctx);
typedef struct nt_lines { int32_t buf; int dt; LLVMValueRef on; pf_off *off; } nt_lines;

/* on (i1): stream k's output, NULL: never. Streaming pays when nothing
 * reads the output again soon: the output holds at least NT_MIN_BYTES, no
 * later kernel reads it, and its pages are not fresh. A page the process
 * has just faulted in was zeroed through the cache, and a streaming store
 * to a cached line costs more than an ordinary one (log_softmax 1000 x
 * 10000 into a fresh output: 15.7-16.1 ms ordinary, 18.4-18.6 ms
 * streaming); be_run, which allocates its outputs for each call, says so
 * in the frame's fresh flag. */
static LLVMValueRef nt_wanted(em *e, const be_kern *k) {
  const tl_node *n = &e->g->nodes[k->node];
  int dt = e->p->bufs[k->out].dtype;
  if (!e->x86 || dt == TL_BOOL || k->place >= 0) return NULL;
  for (const be_kern *q = k + 1; q < e->p->ks + e->p->nks; q++)
    for (int r = 0; r < q->nreads; r++)
      if (q->reads[r] == k->out) return NULL;
  LLVMValueRef bytes = ci(e, tl_dtype_size((tl_dtype)dt));
  for (int i = 0; i < n->type.rank; i++) bytes = LLVMBuildMul(e->pre, bytes, dimv(e, n->type.dims[i]), "");
  LLVMValueRef on = LLVMBuildICmp(e->pre, LLVMIntSGE, bytes, ci(e, NT_MIN_BYTES), "");
  if (LLVMIsAConstantInt(on) && !LLVMConstIntGetZExtValue(on)) return NULL; /* known small: no scratch line */
  LLVMValueRef fa = LLVMBuildGEP2(e->pre, e->i8, e->frame, (LLVMValueRef[]){ci(e, 20)}, 1, "");
  LLVMValueRef fresh = LLVMBuildLoad2(e->pre, e->i32, fa, "fresh");
  return LLVMBuildAnd(e->pre, on, LLVMBuildICmp(e->pre, LLVMIntEQ, fresh, LLVMConstInt(e->i32, 0, 0), ""), "");
}

static void store_line(em *e, const nt_lines *nt, LLVMValueRef scratch, LLVMValueRef i0, void *ctx);

/* for (i = lo; i < hi; i++) body(i), in blocks of bl elements (one output
 * line): each block [i0, i0 + bl) first prefetches, for each buffer of st,
 * the line(s) at element i0 + ahead, then runs the body from 0 to the
 * constant bl (the vectoriser sees the trip count: one vector); the
 * remainder, fewer than bl elements, runs after without vectorisation
 * (less code: attention's cold JIT 10.0-10.6 -> 9.5-10.1 ms). With nt,
 * the elements before the first line boundary of the output run first,
 * so that the blocks write whole aligned lines, each stored by store_line
 * (streaming stores). */
typedef void pf_body(em *e, LLVMValueRef i, void *ctx);
static void prefetched_loop(em *e, int64_t bl, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef ahead,
                            const int32_t *st, int ns, pf_body *body, void *ctx, const nt_lines *nt) {
  if (nt) { /* the elements before the first aligned output line, one by one */
    LLVMValueRef off = nt->off(e, lo, ctx);
    LLVMValueRef a = LLVMBuildInBoundsGEP2(e->b, mty(e, nt->dt), bufptr(e, nt->buf), &off, 1, "");
    LLVMValueRef mis = LLVMBuildAnd(e->b, LLVMBuildPtrToInt(e->b, a, e->i64, ""), ci(e, PF_LINE - 1), "");
    LLVMValueRef h = LLVMBuildUDiv(e->b, LLVMBuildAnd(e->b, LLVMBuildSub(e->b, ci(e, PF_LINE), mis, ""), ci(e, PF_LINE - 1), ""),
                                   ci(e, tl_dtype_size((tl_dtype)nt->dt)), "");
    LLVMValueRef len = LLVMBuildSub(e->b, hi, lo, "");
    h = sel(e, icmp(e, LLVMIntSGT, h, len), len, h);
    LLVMValueRef start = LLVMBuildNSWAdd(e->b, lo, h, "");
    loop hb;
    LLVMValueRef i = loop_open(e, &hb, lo, start, 0, NULL);
    hb.ic = -1;
    body(e, i, ctx);
    loop_close(e, &hb, NULL);
    lo = start;
  }
  LLVMValueRef nblk = LLVMBuildUDiv(e->b, LLVMBuildSub(e->b, hi, lo, ""), ci(e, bl), "");
  loop ob, ib, tb;
  LLVMValueRef b = loop_open(e, &ob, ci(e, 0), nblk, 0, NULL);
  LLVMValueRef i0 = LLVMBuildNSWAdd(e->b, lo, LLVMBuildNSWMul(e->b, b, ci(e, bl), ""), "");
  LLVMValueRef at = LLVMBuildAdd(e->b, i0, ahead, "");
  for (int s = 0; s < ns; s++) {
    int64_t sz = tl_dtype_size((tl_dtype)e->p->bufs[st[s]].dtype);
    LLVMValueRef byte = LLVMBuildMul(e->b, at, ci(e, sz), "");
    for (int64_t c = 0; c < bl * sz; c += PF_LINE) prefetch(e, bufptr(e, st[s]), LLVMBuildAdd(e->b, byte, ci(e, c), ""));
  }
  LLVMTypeRef lty = nt ? LLVMArrayType2(mty(e, nt->dt), (uint64_t)bl) : NULL;
  if (nt) {
    e->scratch = LLVMBuildAlloca(e->pre, lty, "line");
    LLVMSetAlignment(e->scratch, PF_LINE);
    e->scratch_buf = nt->buf;
  }
  LLVMValueRef j = loop_open(e, &ib, ci(e, 0), ci(e, bl), 0, NULL);
  ib.ic = 1;
  e->scratch_j = j;
  body(e, LLVMBuildNSWAdd(e->b, i0, j, ""), ctx);
  loop_close(e, &ib, NULL);
  if (nt) store_line(e, nt, e->scratch, i0, ctx);
  e->scratch = NULL;
  loop_close(e, &ob, NULL);
  LLVMValueRef rest = LLVMBuildNSWAdd(e->b, lo, LLVMBuildNSWMul(e->b, nblk, ci(e, bl), ""), "");
  LLVMValueRef i = loop_open(e, &tb, rest, hi, 0, NULL);
  tb.ic = -1;
  body(e, i, ctx);
  loop_close(e, &tb, NULL);
}

/* the scratch line to the output line of element i0: one vector store,
 * streaming when nt->on and the line is aligned */
static void store_line(em *e, const nt_lines *nt, LLVMValueRef scratch, LLVMValueRef i0, void *ctx) {
  LLVMTypeRef ety = mty(e, nt->dt);
  LLVMTypeRef vt = LLVMVectorType(ety, (unsigned)(PF_LINE / tl_dtype_size((tl_dtype)nt->dt)));
  LLVMValueRef v = LLVMBuildLoad2(e->b, vt, scratch, "line");
  LLVMSetAlignment(v, PF_LINE);
  LLVMValueRef off = nt->off(e, i0, ctx);
  LLVMValueRef a = LLVMBuildInBoundsGEP2(e->b, ety, bufptr(e, nt->buf), &off, 1, "");
  LLVMValueRef low = LLVMBuildAnd(e->b, LLVMBuildPtrToInt(e->b, a, e->i64, ""), ci(e, PF_LINE - 1), "");
  LLVMValueRef go = LLVMBuildAnd(e->b, nt->on, LLVMBuildICmp(e->b, LLVMIntEQ, low, ci(e, 0), ""), "");
  LLVMBasicBlockRef sb = LLVMAppendBasicBlockInContext(e->cx, e->fn, "stream");
  LLVMBasicBlockRef pb = LLVMAppendBasicBlockInContext(e->cx, e->fn, "plain");
  LLVMBasicBlockRef jb = LLVMAppendBasicBlockInContext(e->cx, e->fn, "stored");
  LLVMBuildCondBr(e->b, go, sb, pb);
  LLVMPositionBuilderAtEnd(e->b, sb);
  LLVMValueRef s1 = LLVMBuildStore(e->b, v, a);
  LLVMSetAlignment(s1, PF_LINE);
  LLVMMetadataRef one = LLVMValueAsMetadata(LLVMConstInt(e->i32, 1, 0));
  LLVMSetMetadata(s1, LLVMGetMDKindIDInContext(e->cx, "nontemporal", 11),
                  LLVMMetadataAsValue(e->cx, LLVMMDNodeInContext2(e->cx, &one, 1)));
  LLVMBuildBr(e->b, jb);
  LLVMPositionBuilderAtEnd(e->b, pb);
  LLVMValueRef s2 = LLVMBuildStore(e->b, v, a);
  LLVMSetAlignment(s2, (unsigned)tl_dtype_size((tl_dtype)nt->dt));
  LLVMBuildBr(e->b, jb);
  LLVMPositionBuilderAtEnd(e->b, jb);
  e->nt_used = 1;
}

typedef struct ew_ctx { const be_kern *k; LLVMValueRef base; const LLVMValueRef *ost; LLVMValueRef *iv; int carry; } ew_ctx;
static void ew_body_at(em *e, LLVMValueRef i, void *ctx) {
  ew_ctx *c = ctx;
  c->iv[c->carry] = i;
  ew_body(e, c->k, c->base, c->ost, c->iv);
}
static LLVMValueRef ew_off_at(em *e, LLVMValueRef i, void *ctx) {
  ew_ctx *c = ctx;
  c->iv[c->carry] = i;
  const tl_node *n = &e->g->nodes[c->k->node];
  return LLVMBuildNSWAdd(e->b, c->base, offset(e, n->type.rank, c->ost, c->iv), "");
}

static bool is_one(LLVMValueRef v) { return LLVMIsAConstantInt(v) && LLVMConstIntGetSExtValue(v) == 1; }

/* One merged loop [lo, hi), prefetching the streams PF_AHEAD lines ahead;
 * iv[carry] is the loop's index. */
static void ew_prefetched(em *e, const be_kern *k, int carry, LLVMValueRef lo, LLVMValueRef hi,
                          LLVMValueRef base, const LLVMValueRef *ost, LLVMValueRef *iv,
                          const int32_t *st, int ns) {
  int64_t bl = PF_LINE / tl_dtype_size((tl_dtype)e->p->bufs[k->out].dtype);
  ew_ctx c = {k, base, ost, iv, carry};
  nt_lines nt = {k->out, e->p->bufs[k->out].dtype, is_one(ost[carry]) ? nt_wanted(e, k) : NULL, ew_off_at};
  prefetched_loop(e, bl, lo, hi, ci(e, bl * PF_AHEAD), st, ns, ew_body_at, &c, nt.on ? &nt : NULL);
}

static void k_ew(em *e, const be_kern *k) {
  const tl_node *n = &e->g->nodes[k->node];
  int r = n->type.rank;
  LLVMValueRef lo = LLVMGetParam(e->fn, 1), hi = LLVMGetParam(e->fn, 2);
  LLVMValueRef ost[TL_MAX_RANK], base = ci(e, 0);
  if (k->place >= 0) {
    const tl_node *cn = &e->g->nodes[k->place];
    contig_strides(e, cn->type.rank, cn->type.dims, ost);
    int ax = (cn->attrs.present & TL_A_AXIS) ? cn->attrs.axes[0] : 0;
    if (ax < 0) ax += cn->type.rank;
    LLVMValueRef pos = ci(e, 0);
    for (int i = 0; i < k->part; i++)
      pos = LLVMBuildAdd(e->pre, pos, dimv(e, e->g->nodes[tl_node_inputs(e->g, cn)[i]].type.dims[ax]), "");
    base = LLVMBuildMul(e->pre, pos, ost[ax], "");
  } else {
    contig_strides(e, r, n->type.dims, ost);
  }
  /* one loop per group of merged dims (be_ew_loops) */
  be_loops L;
  be_ew_loops(e->p, k, &L);
  loop ls[TL_MAX_RANK];
  LLVMValueRef iv[TL_MAX_RANK], no = NULL;
  for (int i = 0; i < r; i++) iv[i] = ci(e, 0);
  int32_t st[8];
  int ns = L.n == 1 && calls_math(e->p, k->node, true) ? stream_bufs(e->p, k, st, 8) : 0;
  if (ns > 0) {
    ew_prefetched(e, k, L.carry[0], lo, hi, base, ost, iv, st, ns);
    return;
  }
  if (L.n == 0) no = guard_range(e, lo, hi);
  for (int q = 0; q < L.n; q++) {
    LLVMValueRef len = ci(e, 1);
    for (int i = L.first[q]; i <= L.last[q]; i++) len = LLVMBuildMul(e->pre, len, dimv(e, n->type.dims[i]), "");
    iv[L.carry[q]] = loop_open(e, &ls[q], q == 0 ? lo : ci(e, 0), q == 0 ? hi : len, 0, NULL);
  }
  /* an innermost loop that is not the whole kernel may be short (dims that
   * could not be merged: a broadcast row, a slice): vectorised without
   * interleaving it takes a full vector from 16 f32 elements rather than
   * 64 (measured: [1024 16] exp(x - m[r 1]) 12.0 -> 9.2 us; [16 1024] the
   * same) */
  if (L.n > 1) ls[L.n - 1].ic = 1;
  ew_body(e, k, base, ost, iv);
  nest_close(e, ls, L.n);
  if (no) guard_end(e, no);
}

static void reduce_axes(const tl_node *n, int rank, bool *red) {
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

/* One pass of a reduction over the reduced dims: acc = f(acc, x[idx]). */
typedef enum { R_SUM, R_PROD, R_MAX, R_MIN, R_SUMEXP } rkind;

/* f(a, v) for one element. nan: a row pass's NaN flag; a float max/min then
 * uses maxnum under nnan (which the vectoriser reduces) and the flag records
 * NaNs. Without it (column mode, elementwise) llvm.maximum propagates them. */
static LLVMValueRef reduce_step(em *e, rkind kind, int adt, LLVMValueRef a, LLVMValueRef v, LLVMValueRef shift,
                                LLVMValueRef *nan) {
  bool fl = isf(adt);
  switch (kind) {
  case R_SUM: return fl ? fast(LLVMBuildFAdd(e->b, a, v, ""), LLVMFastMathAllowReassoc) : LLVMBuildAdd(e->b, a, v, "");
  case R_PROD: return fl ? fast(LLVMBuildFMul(e->b, a, v, ""), LLVMFastMathAllowReassoc) : LLVMBuildMul(e->b, a, v, "");
  case R_SUMEXP: {
    LLVMValueRef t = m1(e, "exp", adt, LLVMBuildFSub(e->b, v, shift, ""));
    if (nan) { /* *nan counts the terms equal to the shift (see sumexp_log) */
      LLVMValueRef eq = fcmp(e, LLVMRealOEQ, v, shift);
      *nan = fast(LLVMBuildFAdd(e->b, *nan, sel(e, eq, cf(e, adt, 1), cf(e, adt, 0)), ""), LLVMFastMathAllowReassoc);
      t = sel(e, eq, cf(e, adt, 0), t);
    }
    return fast(LLVMBuildFAdd(e->b, a, t, ""), LLVMFastMathAllowReassoc);
  }
  default:
    if (!fl) return sel(e, icmp(e, kind == R_MAX ? LLVMIntSGT : LLVMIntSLT, v, a), v, a);
    if (!nan) return intr2(e, kind == R_MAX ? "llvm.maximum" : "llvm.minimum", a, v);
    *nan = LLVMBuildOr(e->b, *nan, fcmp(e, LLVMRealUNO, v, v), "");
    return fast(intr2(e, kind == R_MAX ? "llvm.maxnum" : "llvm.minnum", a, v),
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
 * twice their time). */
static LLVMValueRef sumexp_log(em *e, int dt, LLVMValueRef fin, LLVMValueRef s, LLVMValueRef ties) {
  LLVMValueRef rest = LLVMBuildFAdd(e->b, s, LLVMBuildFSub(e->b, ties, cf(e, dt, 1), ""), "");
  LLVMValueRef all = LLVMBuildFSub(e->b, LLVMBuildFAdd(e->b, s, ties, ""), cf(e, dt, 1), "");
  /* log1p(x) as log(u) * x / (u - 1) with u = 1 + x (exact when u == 1,
   * within a few ulp of log1p otherwise: the rounding error of u cancels
   * in the quotient). glibc's scalar log1pf took 15 ns a row more than
   * logf: log_softmax over [2048 8] rows 0.064 -> 0.095 ms. */
  LLVMValueRef x = sel(e, fin, rest, all), u = LLVMBuildFAdd(e->b, x, cf(e, dt, 1), "");
  LLVMValueRef um1 = LLVMBuildFSub(e->b, u, cf(e, dt, 1), "");
  LLVMValueRef q = LLVMBuildFMul(e->b, m1(e, "log", dt, u), LLVMBuildFDiv(e->b, x, um1, ""), "");
  LLVMValueRef r = sel(e, fcmp(e, LLVMRealOEQ, u, cf(e, dt, INFINITY)), u, q);
  return sel(e, fcmp(e, LLVMRealOEQ, um1, cf(e, dt, 0)), x, r);
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
enum { SRC_EX, SRC_STORE, SRC_OUT };
typedef struct psrc {
  const be_kern *k;
  const tl_node *xn; /* the input */
  int32_t xid;
  int mode;
} psrc;

/* The input's value at idx, converted to adt (for SRC_STORE/SRC_OUT adt
 * is the output's dtype). */
static LLVMValueRef src_value(em *e, const psrc *s, LLVMValueRef *idx, int adt) {
  if (s->mode == SRC_EX) return conv(e, ex(e, s->xid, idx), s->xn->type.dtype, adt);
  const tl_node *n = &e->g->nodes[s->k->node];
  LLVMValueRef st[TL_MAX_RANK];
  contig_strides(e, n->type.rank, n->type.dims, st);
  LLVMValueRef off = offset(e, n->type.rank, st, idx);
  if (s->mode == SRC_OUT) return load_at(e, s->k->out, adt, off);
  LLVMValueRef v = conv(e, ex(e, s->xid, idx), s->xn->type.dtype, adt);
  store_at(e, s->k->out, adt, off, v);
  return v;
}

/* An inline expression that does arithmetic (not only loads and index maps). */
static bool computes_inline(const be_plan *p, int32_t id) {
  if (p->state[id] != BE_S_INLINE) return false;
  const tl_node *n = &p->g->nodes[id];
  if (tl_ops[n->op].kind == TL_KIND_ELEMWISE) return true;
  for (int i = 0; i < n->ninputs; i++)
    if (computes_inline(p, tl_node_inputs(p->g, n)[i])) return true;
  return false;
}

/* The pass over one row; ic > 0 asks the vectoriser for that interleave
 * count on the innermost loop. */
static void row_pass(em *e, const psrc *src, int nred, const int *red, LLVMValueRef *idx,
                     rkind kind, int adt, LLVMValueRef *acc, LLVMValueRef *nan, LLVMValueRef shift, int ic) {
  const tl_node *xn = src->xn;
  loop ls[TL_MAX_RANK];
  LLVMValueRef init[2] = {*acc, nan ? *nan : NULL};
  int nc = nan ? 2 : 1;
  /* open loops carrying (acc, nan) */
  for (int k = 0; k < nred; k++) {
    idx[red[k]] = loop_open(e, &ls[k], ci(e, 0), dimv(e, xn->type.dims[red[k]]), nc, k ? (LLVMValueRef[]){ls[k - 1].phis[0], nc > 1 ? ls[k - 1].phis[1] : NULL} : init);
  }
  if (nred) ls[nred - 1].ic = ic;
  LLVMValueRef a = nred ? ls[nred - 1].phis[0] : *acc;
  LLVMValueRef nn = nan ? (nred ? ls[nred - 1].phis[1] : *nan) : NULL;
  LLVMValueRef v = src_value(e, src, idx, adt);
  LLVMValueRef na = reduce_step(e, kind, adt, a, v, shift, nan ? &nn : NULL);
  LLVMValueRef nx[2] = {na, nn};
  for (int k = nred - 1; k >= 0; k--) {
    loop_close(e, &ls[k], nx);
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

static void reduce_pass(em *e, const psrc *src, int nred, const int *red, LLVMValueRef *idx,
                        rkind kind, int adt, LLVMValueRef *acc, LLVMValueRef *nan, LLVMValueRef shift,
                        bool short_version) {
  int64_t d = nred ? src->xn->type.dims[red[nred - 1]] : 0;
  if (!nred || d >= 0 || !short_version) {
    row_pass(e, src, nred, red, idx, kind, adt, acc, nan, shift, nred && d >= 0 && d < SHORT_ROW ? 1 : 0);
    return;
  }
  LLVMBasicBlockRef bb[2] = {LLVMAppendBasicBlockInContext(e->cx, e->fn, "short"),
                             LLVMAppendBasicBlockInContext(e->cx, e->fn, "long")};
  LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(e->cx, e->fn, "rowj");
  LLVMBuildCondBr(e->b, icmp(e, LLVMIntSLT, dimv(e, d), ci(e, SHORT_ROW)), bb[0], bb[1]);
  LLVMValueRef a[2], nn[2];
  for (int v = 0; v < 2; v++) {
    LLVMPositionBuilderAtEnd(e->b, bb[v]);
    a[v] = *acc;
    nn[v] = nan ? *nan : NULL;
    row_pass(e, src, nred, red, idx, kind, adt, &a[v], nan ? &nn[v] : NULL, shift, v ? 0 : 1);
    bb[v] = LLVMGetInsertBlock(e->b);
    LLVMBuildBr(e->b, join);
  }
  LLVMPositionBuilderAtEnd(e->b, join);
  *acc = LLVMBuildPhi(e->b, LLVMTypeOf(a[0]), "");
  LLVMAddIncoming(*acc, a, bb, 2);
  if (nan) {
    *nan = LLVMBuildPhi(e->b, LLVMTypeOf(nn[0]), "");
    LLVMAddIncoming(*nan, nn, bb, 2);
  }
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
enum { COLS = 256 };

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
    idx[i] = loop_open(e, &c->outer[c->nouter++], first ? lo : ci(e, 0), first ? hi : dimv(e, t->dims[i]), 0, NULL);
    first = false;
  }
  LLVMValueRef clo = first ? lo : ci(e, 0), chi = first ? hi : dimv(e, t->dims[c->last]);
  LLVMValueRef nch = LLVMBuildSDiv(e->b, LLVMBuildAdd(e->b, LLVMBuildSub(e->b, chi, clo, ""), ci(e, COLS - 1), ""),
                                   ci(e, COLS), "");
  LLVMValueRef q = loop_open(e, &c->chunk, ci(e, 0), nch, 0, NULL);
  c->c0 = LLVMBuildNSWAdd(e->b, clo, LLVMBuildNSWMul(e->b, q, ci(e, COLS), ""), "");
  LLVMValueRef rest = LLVMBuildSub(e->b, chi, c->c0, "");
  c->w = sel(e, icmp(e, LLVMIntSLT, rest, ci(e, COLS)), rest, ci(e, COLS));
}

static void cols_close(em *e, cols *c) {
  loop_close(e, &c->chunk, NULL);
  for (int k = c->nouter - 1; k >= 0; k--) loop_close(e, &c->outer[k], NULL);
}

/* for (j = 0; j < w; j++) over the chunk's columns: idx[last] = c0 + j */
static LLVMValueRef lane_open(em *e, cols *c, loop *l) {
  LLVMValueRef j = loop_open(e, l, ci(e, 0), c->w, 0, NULL);
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
  loop_close(e, &l, NULL);
}

/* A softmax's or logsumexp's shift from the column's max m: m, but 0 when
 * m is infinite (the row-mode rule; a NaN m gives a NaN result either way). */
static LLVMValueRef shift_of(em *e, int dt, LLVMValueRef m) {
  return sel(e, fcmp(e, LLVMRealOEQ, intr1(e, "llvm.fabs", m), cf(e, dt, INFINITY)), cf(e, dt, 0), m);
}

/* acc[j] = f(acc[j], x[idx]) over the reduced dims (outer) and the chunk's
 * columns (inner). R_SUMEXP shifts by shift_of(marr[j]). */
static void cols_pass(em *e, cols *c, const psrc *src, int nred, const int *red, rkind kind, int adt,
                      LLVMValueRef acc, LLVMValueRef marr, LLVMValueRef tarr) {
  const tl_node *xn = src->xn;
  loop ls[TL_MAX_RANK + 1];
  for (int k = 0; k < nred; k++)
    c->idx[red[k]] = loop_open(e, &ls[k], ci(e, 0), dimv(e, xn->type.dims[red[k]]), 0, NULL);
  LLVMValueRef j = lane_open(e, c, &ls[nred]);
  LLVMValueRef v = src_value(e, src, c->idx, adt);
  LLVMValueRef sh = kind == R_SUMEXP ? shift_of(e, adt, lane_load(e, marr, adt, j)) : NULL;
  LLVMValueRef p = lane_ptr(e, acc, adt, j), tp = tarr ? lane_ptr(e, tarr, adt, j) : NULL;
  LLVMValueRef t = tarr ? LLVMBuildLoad2(e->b, vty(e, adt), tp, "") : NULL;
  LLVMBuildStore(e->b, reduce_step(e, kind, adt, LLVMBuildLoad2(e->b, vty(e, adt), p, ""), v, sh, tarr ? &t : NULL), p);
  if (tarr) LLVMBuildStore(e->b, t, tp);
  for (int k = nred; k >= 0; k--) loop_close(e, &ls[k], NULL);
}

static void k_red(em *e, const be_kern *k) {
  const tl_graph *g = e->g;
  const tl_node *n = &g->nodes[k->node];
  int32_t xid = tl_node_inputs(g, n)[0];
  const tl_node *xn = &g->nodes[xid];
  int R = xn->type.rank, op = n->op, odt = n->type.dtype;
  bool red[TL_MAX_RANK];
  reduce_axes(n, R, red);
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
  for (int i = 0; i < nr; i++) count = LLVMBuildMul(e->pre, count, dimv(e, xn->type.dims[rd[i]]), "");
  if (op == TL_OP_MAX || op == TL_OP_MIN) {
    LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(e->cx, e->fn, "empty");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(e->cx, e->fn, "nonempty");
    LLVMValueRef c = LLVMBuildAnd(e->b, icmp(e, LLVMIntEQ, count, ci(e, 0)), icmp(e, LLVMIntSLT, lo, hi), "");
    LLVMBuildCondBr(e->b, c, bad, ok);
    LLVMPositionBuilderAtEnd(e->b, bad);
    set_err(e, BE_ERR_EMPTY);
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
  contig_strides(e, nk, kd, ost);
  psrc src = {k, xn, xid, SRC_EX};
  if (R >= 2 && nr > 0 && !red[R - 1]) { /* column mode */
    cols c;
    cols_open(e, &c, &xn->type, red, idx);
    LLVMValueRef acc = lane_array(e, adt), sacc = NULL;
    lanes_fill(e, &c, acc, adt, init);
    cols_pass(e, &c, &src, nr, rd, kind, adt, acc, NULL, NULL);
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
    LLVMValueRef r = lane_load(e, acc, adt, j);
    if (op == TL_OP_MEAN) r = LLVMBuildFDiv(e->b, r, LLVMBuildSIToFP(e->b, count, e->f64, ""), "");
    if (op == TL_OP_LOGSUMEXP) {
      LLVMValueRef fin = fcmp(e, LLVMRealOLT, intr1(e, "llvm.fabs", r), cf(e, adt, INFINITY));
      LLVMValueRef lg = sumexp_log(e, adt, fin, lane_load(e, sacc, adt, j), lane_load(e, tacc, adt, j));
      r = sel(e, fin, LLVMBuildFAdd(e->b, r, lg, ""), r);
    }
    for (int i = 0; i < nk; i++) kidx[i] = idx[kept[i]];
    store_at(e, k->out, odt, offset(e, nk, ost, kidx), conv(e, r, adt, odt));
    loop_close(e, &l, NULL);
    cols_close(e, &c);
    return;
  }
  loop ls[TL_MAX_RANK];
  LLVMValueRef no = NULL;
  if (nk == 0) no = guard_range(e, lo, hi);
  {
    LLVMValueRef kiv[TL_MAX_RANK];
    nest_open(e, ls, nk, kd, NULL, lo, hi, kiv);
    for (int i = 0; i < nk; i++) idx[kept[i]] = kiv[i];
  }
  LLVMValueRef acc = init, nan = LLVMConstInt(e->i1, 0, 0), r;
  bool fnan = !ints && (kind == R_MAX || kind == R_MIN);
  reduce_pass(e, &src, nr, rd, idx, kind, adt, &acc, fnan ? &nan : NULL, NULL, true);
  r = fnan ? fix_nan(e, adt, acc, nan) : acc;
  if (op == TL_OP_MEAN) r = LLVMBuildFDiv(e->b, r, LLVMBuildSIToFP(e->b, count, e->f64, ""), "");
  if (op == TL_OP_LOGSUMEXP) {
    LLVMValueRef m = r;
    LLVMValueRef fin = fcmp(e, LLVMRealOLT, intr1(e, "llvm.fabs", m), cf(e, adt, INFINITY));
    LLVMValueRef s = cf(e, adt, 0), ties = cf(e, adt, 0);
    LLVMValueRef sh = sel(e, fin, m, cf(e, adt, 0));
    reduce_pass(e, &src, nr, rd, idx, R_SUMEXP, adt, &s, &ties, sh, true);
    r = sel(e, fin, LLVMBuildFAdd(e->b, m, sumexp_log(e, adt, fin, s, ties), ""), m);
  }
  for (int i = 0; i < nk; i++) kidx[i] = idx[kept[i]];
  store_at(e, k->out, odt, offset(e, nk, ost, kidx), conv(e, r, adt, odt));
  nest_close(e, ls, nk);
  if (no) guard_end(e, no);
}

/* The output pass of a softmax row: y = f(x - shift, post); ic as row_pass. */
static void softmax_elem(em *e, const psrc *src, LLVMValueRef *idx, LLVMValueRef sh, LLVMValueRef post,
                         const LLVMValueRef *ost) {
  const be_kern *k = src->k;
  const tl_node *n = &e->g->nodes[k->node];
  int dt = n->type.dtype;
  LLVMValueRef v = LLVMBuildFSub(e->b, src_value(e, src, idx, dt), sh, "");
  LLVMValueRef r = n->op == TL_OP_SOFTMAX ? LLVMBuildFMul(e->b, m1(e, "exp", dt, v), post, "")
                                         : LLVMBuildFSub(e->b, v, post, "");
  store_at(e, k->out, dt, offset(e, n->type.rank, ost, idx), r);
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
  return offset(e, e->g->nodes[c->src->k->node].type.rank, c->ost, c->idx);
}

/* The write pass over one row. Over the last axis it also prefetches the
 * next row of each input read in step with the output, one line per
 * block of one output line (prefetched_loop): the max pass of the next
 * row then reads from cache, and memory works while this row is written.
 * In C, the same loop took a 1000 x 10000 log_softmax from 11.1-11.2 to
 * 9.5-9.7 ms. */
static void softmax_write(em *e, const psrc *src, int ax, LLVMValueRef *idx, LLVMValueRef sh, LLVMValueRef post,
                          int ic) {
  const be_kern *k = src->k;
  const tl_node *n = &e->g->nodes[k->node];
  LLVMValueRef ost[TL_MAX_RANK];
  contig_strides(e, n->type.rank, n->type.dims, ost);
  int32_t st[8];
  int ns = ax == n->type.rank - 1 && ic == 0 ? stream_bufs(e->p, k, st, 8) : 0;
  LLVMValueRef len = dimv(e, n->type.dims[ax]);
  if (ns > 0) {
    int64_t bl = PF_LINE / tl_dtype_size((tl_dtype)e->p->bufs[k->out].dtype);
    idx[ax] = ci(e, 0);
    LLVMValueRef next = LLVMBuildAdd(e->b, offset(e, n->type.rank, ost, idx), len, ""); /* the next row */
    sw_ctx c = {src, idx, ax, sh, post, ost};
    nt_lines nt = {k->out, e->p->bufs[k->out].dtype, nt_wanted(e, k), softmax_off_at};
    prefetched_loop(e, bl, ci(e, 0), len, next, st, ns, softmax_elem_at, &c, nt.on ? &nt : NULL);
    return;
  }
  loop l;
  idx[ax] = loop_open(e, &l, ci(e, 0), len, 0, NULL);
  l.ic = ic;
  softmax_elem(e, src, idx, sh, post, ost);
  loop_close(e, &l, NULL);
}

static void k_softmax(em *e, const be_kern *k) {
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
    cols_pass(e, &c, &rest, 1, red, R_SUMEXP, dt, sacc, macc, tacc);
    loop l, lw[2];
    LLVMValueRef j = lane_open(e, &c, &l), p = lane_ptr(e, sacc, dt, j);
    LLVMValueRef s = LLVMBuildLoad2(e->b, vty(e, dt), p, ""), t = lane_load(e, tacc, dt, j);
    LLVMValueRef mj = lane_load(e, macc, dt, j);
    LLVMValueRef fin = fcmp(e, LLVMRealOLT, intr1(e, "llvm.fabs", mj), cf(e, dt, INFINITY));
    LLVMBuildStore(e->b, soft ? LLVMBuildFDiv(e->b, cf(e, dt, 1), LLVMBuildFAdd(e->b, s, t, ""), "")
                              : sumexp_log(e, dt, fin, s, t), p);
    loop_close(e, &l, NULL);
    LLVMValueRef ost[TL_MAX_RANK];
    contig_strides(e, R, n->type.dims, ost);
    idx[ax] = loop_open(e, &lw[0], ci(e, 0), dimv(e, n->type.dims[ax]), 0, NULL);
    j = lane_open(e, &c, &lw[1]);
    LLVMValueRef v = LLVMBuildFSub(e->b, src_value(e, &rest, idx, dt), shift_of(e, dt, lane_load(e, macc, dt, j)), "");
    LLVMValueRef post = lane_load(e, sacc, dt, j);
    LLVMValueRef r = soft ? LLVMBuildFMul(e->b, m1(e, "exp", dt, v), post, "") : LLVMBuildFSub(e->b, v, post, "");
    store_at(e, k->out, dt, offset(e, R, ost, idx), r);
    loop_close(e, &lw[1], NULL);
    loop_close(e, &lw[0], NULL);
    cols_close(e, &c);
    return;
  }
  loop ls[TL_MAX_RANK];
  LLVMValueRef kiv[TL_MAX_RANK], no = NULL;
  if (nk == 0) no = guard_range(e, lo, hi);
  nest_open(e, ls, nk, kd, NULL, lo, hi, kiv);
  for (int i = 0; i < nk; i++) idx[kept[i]] = kiv[i];
  LLVMValueRef acc = cf(e, dt, -INFINITY), nan = LLVMConstInt(e->i1, 0, 0);
  /* the input is converted to dt inside the passes (ints become f64) */
  /* A symbolic row length gets the long-row loops only: the short-row
   * versions (as reductions have) made no difference to softmax on rows of
   * 8 and 32 (rows of 8: 0.107 vs 0.109 ms over 2048 rows) but made the
   * kernel twice the code, and attention's cold JIT 13.9 -> 10.4 ms
   * without them. */
  reduce_pass(e, &first, 1, red, idx, R_MAX, dt, &acc, &nan, NULL, false);
  LLVMValueRef m = fix_nan(e, dt, acc, nan);
  LLVMValueRef fin = fcmp(e, LLVMRealOLT, intr1(e, "llvm.fabs", m), cf(e, dt, INFINITY));
  LLVMValueRef sh = sel(e, LLVMBuildOr(e->b, fin, nan, ""), m, cf(e, dt, 0));
  LLVMValueRef s = cf(e, dt, 0), ties = cf(e, dt, 0);
  reduce_pass(e, &rest, 1, red, idx, R_SUMEXP, dt, &s, &ties, sh, false);
  LLVMValueRef post = soft ? LLVMBuildFDiv(e->b, cf(e, dt, 1), LLVMBuildFAdd(e->b, s, ties, ""), "")
                           : sumexp_log(e, dt, fin, s, ties);
  int64_t d = n->type.dims[ax];
  softmax_write(e, &rest, ax, idx, sh, post, d >= 0 && d < SHORT_ROW ? 1 : 0);
  nest_close(e, ls, nk);
  if (no) guard_end(e, no);
}

static void k_takecheck(em *e, const be_kern *k) {
  const tl_graph *g = e->g;
  const tl_node *n = &g->nodes[k->node];
  const int32_t *in = tl_node_inputs(g, n);
  const tl_type *xt = &g->nodes[in[0]].type, *it = &g->nodes[in[1]].type;
  bool flat = !(n->attrs.present & TL_A_AXIS);
  int ax = flat ? 0 : n->attrs.axes[0];
  if (ax < 0) ax += xt->rank;
  LLVMValueRef len = ci(e, 1);
  if (flat)
    for (int i = 0; i < xt->rank; i++) len = LLVMBuildMul(e->pre, len, dimv(e, xt->dims[i]), "");
  else
    len = dimv(e, xt->dims[ax]);
  LLVMValueRef cnt = ci(e, 1);
  for (int i = 0; i < it->rank; i++) cnt = LLVMBuildMul(e->pre, cnt, dimv(e, it->dims[i]), "");
  loop l;
  LLVMValueRef init = LLVMConstInt(e->i1, 0, 0);
  LLVMValueRef i = loop_open(e, &l, ci(e, 0), cnt, 1, &init);
  LLVMValueRef j = conv(e, load_at(e, e->p->buf_of[in[1]], it->dtype, i), it->dtype, TL_I64);
  LLVMValueRef bad = LLVMBuildOr(e->b, icmp(e, LLVMIntSLT, j, LLVMBuildNeg(e->b, len, "")),
                                 icmp(e, LLVMIntSGE, j, len), "");
  LLVMValueRef nb = LLVMBuildOr(e->b, l.phis[0], bad, "");
  loop_close(e, &l, &nb);
  LLVMBasicBlockRef eb = LLVMAppendBasicBlockInContext(e->cx, e->fn, "oob");
  LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(e->cx, e->fn, "inb");
  LLVMBuildCondBr(e->b, l.phis[0], eb, ok);
  LLVMPositionBuilderAtEnd(e->b, eb);
  set_err(e, BE_ERR_TAKE);
  LLVMBuildBr(e->b, ok);
  LLVMPositionBuilderAtEnd(e->b, ok);
}

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

static void k_matmul(em *e, const be_kern *k) {
  const tl_graph *g = e->g;
  const tl_node *n = &g->nodes[k->node];
  const int32_t *in = tl_node_inputs(g, n);
  const tl_type *at = &g->nodes[in[0]].type, *bt = &g->nodes[in[1]].type;
  int dt = n->type.dtype;
  int64_t ad[TL_MAX_RANK + 1], bd[TL_MAX_RANK + 1];
  int ar = at->rank, br = bt->rank;
  memcpy(ad, at->dims, sizeof at->dims);
  memcpy(bd, bt->dims, sizeof bt->dims);
  if (ar == 1) { ad[1] = ad[0]; ad[0] = 1; ar = 2; }
  if (br == 1) { bd[1] = 1; br = 2; }
  LLVMValueRef M = dimv(e, ad[ar - 2]), K = dimv(e, ad[ar - 1]), N = dimv(e, bd[br - 1]);
  int nbr = (ar > br ? ar : br) - 2;
  /* [.. M K] @ [K N] with one B for every batch (a linear layer over a
   * batch): A's batches are contiguous rows, so the batch is one product
   * with M * batch rows rather than a loop of small ones */
  bool fold = nbr > 0 && !k->trans[0] && ar - 2 == nbr && isf(dt);
  for (int i = 0; fold && i < nbr; i++) {
    int bi = i - (nbr - (br - 2));
    fold = bi < 0 || bd[bi] == 1;
  }
  if (fold) {
    for (int i = 0; i < nbr; i++) M = LLVMBuildMul(e->pre, M, dimv(e, ad[i]), "");
    nbr = 0;
  }
  /* batch dims of the output and each operand's batch stride (in matrices) */
  int64_t bdims[TL_MAX_RANK];
  LLVMValueRef ast[TL_MAX_RANK], bst[TL_MAX_RANK];
  for (int i = 0; i < nbr; i++) {
    int ai = i - (nbr - (ar - 2)), bi = i - (nbr - (br - 2));
    int64_t da = ai >= 0 ? ad[ai] : 1, db = bi >= 0 ? bd[bi] : 1;
    bdims[i] = da == 1 ? db : da;
  }
  LLVMValueRef s = ci(e, 1);
  for (int i = nbr - 1; i >= 0; i--) {
    int ai = i - (nbr - (ar - 2));
    if (ai < 0 || (ad[ai] == 1 && bdims[i] != 1)) ast[i] = ci(e, 0);
    else { ast[i] = s; s = LLVMBuildMul(e->pre, s, dimv(e, ad[ai]), ""); }
  }
  s = ci(e, 1);
  for (int i = nbr - 1; i >= 0; i--) {
    int bi = i - (nbr - (br - 2));
    if (bi < 0 || (bd[bi] == 1 && bdims[i] != 1)) bst[i] = ci(e, 0);
    else { bst[i] = s; s = LLVMBuildMul(e->pre, s, dimv(e, bd[bi]), ""); }
  }
  LLVMValueRef ost[TL_MAX_RANK];
  contig_strides(e, nbr, bdims, ost);
  LLVMValueRef MK = LLVMBuildMul(e->pre, M, K, ""), KN = LLVMBuildMul(e->pre, K, N, ""),
               MN = LLVMBuildMul(e->pre, M, N, "");
  LLVMValueRef lo = LLVMGetParam(e->fn, 1), hi = LLVMGetParam(e->fn, 2);
  LLVMValueRef no = guard_range(e, lo, hi);
  loop ls[TL_MAX_RANK];
  LLVMValueRef iv[TL_MAX_RANK];
  nest_open(e, ls, nbr, bdims, NULL, NULL, NULL, iv);
  LLVMValueRef ao = LLVMBuildMul(e->b, offset(e, nbr, ast, iv), MK, "");
  LLVMValueRef bo = LLVMBuildMul(e->b, offset(e, nbr, bst, iv), KN, "");
  LLVMValueRef co = LLVMBuildMul(e->b, offset(e, nbr, ost, iv), MN, "");
  LLVMTypeRef et = mty(e, dt);
  LLVMValueRef A = LLVMBuildGEP2(e->b, et, bufptr(e, k->opbuf[0]), &ao, 1, "");
  LLVMValueRef Bp = LLVMBuildGEP2(e->b, et, bufptr(e, k->opbuf[1]), &bo, 1, "");
  LLVMValueRef C = LLVMBuildGEP2(e->b, et, bufptr(e, k->out), &co, 1, "");
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
    blas_call(e, k, dt, M, N, K, A, Bp, C, MN);
    LLVMBuildBr(e->b, next);
    LLVMPositionBuilderAtEnd(e->b, next);
  } else {
    loop l3[3];
    LLVMValueRef i = loop_open(e, &l3[0], ci(e, 0), M, 0, NULL);
    LLVMValueRef j = loop_open(e, &l3[1], ci(e, 0), N, 0, NULL);
    LLVMValueRef z = ci(e, 0);
    LLVMValueRef t = loop_open(e, &l3[2], ci(e, 0), K, 1, &z);
    LLVMValueRef av = conv(e, LLVMBuildLoad2(e->b, et, LLVMBuildGEP2(e->b, et, A, (LLVMValueRef[]){LLVMBuildAdd(e->b, LLVMBuildMul(e->b, i, K, ""), t, "")}, 1, ""), ""), dt == TL_BOOL ? TL_I32 : dt, TL_I64);
    LLVMValueRef bv = conv(e, LLVMBuildLoad2(e->b, et, LLVMBuildGEP2(e->b, et, Bp, (LLVMValueRef[]){LLVMBuildAdd(e->b, LLVMBuildMul(e->b, t, N, ""), j, "")}, 1, ""), ""), dt == TL_BOOL ? TL_I32 : dt, TL_I64);
    if (dt == TL_BOOL) {
      av = LLVMBuildZExt(e->b, icmp(e, LLVMIntNE, av, ci(e, 0)), e->i64, "");
      bv = LLVMBuildZExt(e->b, icmp(e, LLVMIntNE, bv, ci(e, 0)), e->i64, "");
    }
    LLVMValueRef na = LLVMBuildAdd(e->b, l3[2].phis[0], LLVMBuildMul(e->b, av, bv, ""), "");
    loop_close(e, &l3[2], &na);
    LLVMValueRef acc = l3[2].phis[0];
    LLVMValueRef res = dt == TL_BOOL ? LLVMBuildZExt(e->b, icmp(e, LLVMIntNE, acc, ci(e, 0)), e->i8, "")
                                     : conv(e, acc, TL_I64, dt);
    LLVMBuildStore(e->b, res, LLVMBuildGEP2(e->b, et, C, (LLVMValueRef[]){LLVMBuildAdd(e->b, LLVMBuildMul(e->b, i, N, ""), j, "")}, 1, ""));
    loop_close(e, &l3[1], NULL);
    loop_close(e, &l3[0], NULL);
  }
  nest_close(e, ls, nbr);
  guard_end(e, no);
}

/* ---- module ---------------------------------------------------------------- */

bool be_kern_split_dims(const be_plan *p, const be_kern *k, const tl_type **t, int *lo, int *hi) {
  const tl_graph *g = p->g;
  const tl_node *n = &g->nodes[k->node];
  if (k->kind == BE_K_EW) {
    be_loops L;
    be_ew_loops(p, k, &L);
    *t = &n->type;
    *lo = L.n ? L.first[0] : 0;
    *hi = L.n ? L.last[0] : 0;
    return L.n > 0;
  }
  if (k->kind != BE_K_RED && k->kind != BE_K_SOFTMAX) return false;
  /* row kernels: the first kept dim */
  *t = k->kind == BE_K_RED ? &g->nodes[tl_node_inputs(g, n)[0]].type : &n->type;
  bool red[TL_MAX_RANK] = {false};
  if (k->kind == BE_K_RED) reduce_axes(n, (*t)->rank, red);
  else {
    int ax = (n->attrs.present & TL_A_AXIS) ? n->attrs.axes[0] : -1;
    red[ax < 0 ? ax + (*t)->rank : ax] = true;
  }
  for (int i = 0; i < (*t)->rank; i++)
    if (!red[i]) {
      *lo = *hi = i;
      return true;
    }
  return false;
}

/* Outer range of a kernel (split across threads) and its total work. */
static void kernel_range(em *e, const be_kern *k, LLVMValueRef *range, LLVMValueRef *work, bool *par) {
  const tl_type *t;
  int lo, hi;
  *range = ci(e, 1);
  *work = ci(e, 1);
  *par = be_kern_split_dims(e->p, k, &t, &lo, &hi);
  if (!*par) return;
  for (int i = 0; i < t->rank; i++) *work = LLVMBuildMul(e->b, *work, dimv(e, t->dims[i]), "");
  for (int i = lo; i <= hi; i++) *range = LLVMBuildMul(e->b, *range, dimv(e, t->dims[i]), "");
}

LLVMModuleRef be_emit_module(const be_plan *p, LLVMContextRef cx, LLVMTargetMachineRef tm,
                             const char *name, const char *entry, int vector_math, char *err, size_t n) {
  em E, *e = &E;
  memset(e, 0, sizeof E);
  e->p = p;
  e->g = p->g;
  e->cx = cx;
  e->err = err;
  e->errn = n;
  e->vector_math = vector_math;
  {
    char *feat = LLVMGetTargetMachineFeatureString(tm);
    e->avx512 = feat && strstr(feat, "+avx512f") != NULL;
    const char *no = getenv("TLALOC_NO_AVX512");
    if (no && *no && *no != '0') e->avx512 = 0;
    LLVMDisposeMessage(feat);
  }
  e->m = LLVMModuleCreateWithNameInContext(name, cx);
  char *triple = LLVMGetTargetMachineTriple(tm);
  e->x86 = !strncmp(triple, "x86_64", 6);
  LLVMSetTarget(e->m, triple);
  LLVMDisposeMessage(triple);
  LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
  char *dl = LLVMCopyStringRepOfTargetData(td);
  LLVMSetDataLayout(e->m, dl);
  LLVMDisposeMessage(dl);
  LLVMDisposeTargetData(td);
  e->b = LLVMCreateBuilderInContext(cx);
  e->pre = LLVMCreateBuilderInContext(cx);
  e->i1 = LLVMInt1TypeInContext(cx);
  e->i8 = LLVMInt8TypeInContext(cx);
  e->i32 = LLVMInt32TypeInContext(cx);
  e->i64 = LLVMInt64TypeInContext(cx);
  e->f32 = LLVMFloatTypeInContext(cx);
  e->f64 = LLVMDoubleTypeInContext(cx);
  e->ptr = LLVMPointerTypeInContext(cx, 0);
  e->vd = LLVMVoidTypeInContext(cx);
  e->kty = LLVMFunctionType(e->vd, (LLVMTypeRef[]){e->ptr, e->i64, e->i64}, 3, 0);
  e->bufp = tl_xcalloc((size_t)p->nbufs + 1, sizeof *e->bufp);
  e->consts = tl_xcalloc((size_t)p->nbufs + 1, sizeof *e->consts);
  if (p->g->nsyms > MAXSYM) {
    snprintf(err, n, "backend: more than %d symbolic dims are not supported", MAXSYM);
    e->failed = 1;
  }
  for (int i = 0; i < p->nbufs; i++) {
    if (p->bufs[i].kind != BE_BUF_CONST) continue;
    const tl_tensor *t = p->g->lits[p->g->nodes[p->bufs[i].node].attrs.lit];
    size_t bytes = (size_t)t->numel * tl_dtype_size((tl_dtype)t->dtype);
    LLVMValueRef init = LLVMConstStringInContext(cx, bytes ? (const char *)t->data : "", (unsigned)(bytes ? bytes : 1), 1);
    LLVMValueRef gv = LLVMAddGlobal(e->m, LLVMTypeOf(init), "lit");
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    LLVMSetAlignment(gv, 16);
    e->consts[i] = gv;
  }
  LLVMValueRef *kfn = tl_xcalloc((size_t)p->nks + 1, sizeof *kfn);
  for (int i = 0; i < p->nks && !e->failed; i++) {
    const be_kern *k = &p->ks[i];
    char kn[32];
    snprintf(kn, sizeof kn, "k%d", i);
    kbegin(e, kn, k->node);
    switch (k->kind) {
    case BE_K_EW: k_ew(e, k); break;
    case BE_K_RED: k_red(e, k); break;
    case BE_K_SOFTMAX: k_softmax(e, k); break;
    case BE_K_MATMUL: k_matmul(e, k); break;
    default: k_takecheck(e, k); break;
    }
    kend(e);
    kfn[i] = e->fn;
  }
  /* entry: kernels in order, large ones through par(pool, k, frame, n) */
  LLVMTypeRef ety = LLVMFunctionType(e->i32, (LLVMTypeRef[]){e->ptr, e->ptr, e->ptr}, 3, 0);
  LLVMTypeRef pty = LLVMFunctionType(e->vd, (LLVMTypeRef[]){e->ptr, e->ptr, e->ptr, e->i64}, 4, 0);
  LLVMValueRef ef = LLVMAddFunction(e->m, entry, ety);
  e->fn = ef;
  LLVMBasicBlockRef eb = LLVMAppendBasicBlockInContext(cx, ef, "entry");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(cx, ef, "body");
  LLVMPositionBuilderAtEnd(e->pre, eb);
  LLVMValueRef br = LLVMBuildBr(e->pre, body);
  LLVMPositionBuilderBefore(e->pre, br);
  e->frame = LLVMGetParam(ef, 0);
  LLVMValueRef sa = LLVMBuildGEP2(e->pre, e->i8, e->frame, (LLVMValueRef[]){ci(e, 8)}, 1, "");
  e->syms = LLVMBuildLoad2(e->pre, e->ptr, sa, "syms");
  e->errp = LLVMBuildGEP2(e->pre, e->i8, e->frame, (LLVMValueRef[]){ci(e, 16)}, 1, "errp");
  memset(e->symv, 0, sizeof e->symv);
  LLVMPositionBuilderAtEnd(e->b, body);
  LLVMValueRef par = LLVMGetParam(ef, 1), pool = LLVMGetParam(ef, 2);
  LLVMValueRef havepar = LLVMBuildIsNotNull(e->b, par, "");
  for (int i = 0; i < p->nks && !e->failed; i++) {
    LLVMValueRef range, work;
    bool canpar;
    kernel_range(e, &p->ks[i], &range, &work, &canpar);
    if (canpar) {
      LLVMValueRef big = LLVMBuildAnd(e->b, icmp(e, LLVMIntSGE, work, ci(e, BE_SPLIT_ELEMS)),
                                      icmp(e, LLVMIntSGE, range, ci(e, 2)), "");
      big = LLVMBuildAnd(e->b, big, havepar, "");
      LLVMBasicBlockRef pb = LLVMAppendBasicBlockInContext(cx, ef, "par");
      LLVMBasicBlockRef sb = LLVMAppendBasicBlockInContext(cx, ef, "ser");
      LLVMBasicBlockRef nb = LLVMAppendBasicBlockInContext(cx, ef, "next");
      LLVMBuildCondBr(e->b, big, pb, sb);
      LLVMPositionBuilderAtEnd(e->b, pb);
      LLVMBuildCall2(e->b, pty, par, (LLVMValueRef[]){pool, kfn[i], e->frame, range}, 4, "");
      LLVMBuildBr(e->b, nb);
      LLVMPositionBuilderAtEnd(e->b, sb);
      LLVMBuildCall2(e->b, e->kty, kfn[i], (LLVMValueRef[]){e->frame, ci(e, 0), range}, 3, "");
      LLVMBuildBr(e->b, nb);
      LLVMPositionBuilderAtEnd(e->b, nb);
    } else {
      LLVMBuildCall2(e->b, e->kty, kfn[i], (LLVMValueRef[]){e->frame, ci(e, 0), range}, 3, "");
    }
    LLVMValueRef ev = LLVMBuildLoad2(e->b, e->i32, e->errp, "");
    LLVMBasicBlockRef fb = LLVMAppendBasicBlockInContext(cx, ef, "fail");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(cx, ef, "ok");
    LLVMBuildCondBr(e->b, icmp(e, LLVMIntNE, ev, LLVMConstInt(e->i32, 0, 0)), fb, ok);
    LLVMPositionBuilderAtEnd(e->b, fb);
    LLVMBuildRet(e->b, ev);
    LLVMPositionBuilderAtEnd(e->b, ok);
  }
  LLVMBuildRet(e->b, LLVMConstInt(e->i32, 0, 0));
  if (e->nused) {
    LLVMTypeRef at = LLVMArrayType2(e->ptr, (uint64_t)e->nused);
    LLVMValueRef gv = LLVMAddGlobal(e->m, at, "llvm.compiler.used");
    LLVMSetInitializer(gv, LLVMConstArray2(e->ptr, e->used, (uint64_t)e->nused));
    LLVMSetLinkage(gv, LLVMAppendingLinkage);
    LLVMSetSection(gv, "llvm.metadata");
  }
  free(kfn);
  free(e->bufp);
  free(e->consts);
  free(e->used);
  LLVMDisposeBuilder(e->b);
  LLVMDisposeBuilder(e->pre);
  if (e->failed) {
    LLVMDisposeModule(e->m);
    return NULL;
  }
  char *msg = NULL;
  if (LLVMVerifyModule(e->m, LLVMReturnStatusAction, &msg)) {
    snprintf(err, n, "backend: internal error: invalid IR: %.300s", msg ? msg : "");
    LLVMDisposeMessage(msg);
    LLVMDisposeModule(e->m);
    return NULL;
  }
  LLVMDisposeMessage(msg);
  return e->m;
}
