/* lower_expr.c - values inside a kernel: intrinsics and libm calls,
 * conversions, scalar ops, tlaloc's own f32 exp and tanh, and expressions
 * (lower.c lists the emitter's files).
 *
 * Every value inside a kernel is computed by lw_ex(), which evaluates a node at
 * an index vector: a buffer is a load at sum(idx * contiguous stride);
 * elementwise ops evaluate their operands at the broadcast index; the
 * index-map shape ops (transpose, broadcast_to, expand_dims, squeeze,
 * slice, take) rewrite the index vector. Loop-invariant values (buffer
 * pointers, symbol sizes, strides) are emitted in the kernel's entry block
 * through a second builder, so the loop bodies hold only index arithmetic
 * and the loop vectoriser sees plain strided loads.
 *
 * Scalar semantics follow interp/interp.c operation by operation (NaN
 * propagation, stable sigmoid/softplus, integer wrapping, x // 0 == 0, x86
 * float-to-int conversion). Transcendental functions are glibc calls marked
 * memory(none) with a vector-function-abi-variant naming libmvec's AVX2
 * variant, so vectorised loops call _ZGVdN8v_expf and friends; with
 * own bits of vector_math (be_vm_code), f32 exp and tanh are tlaloc's own inline kernels
 * (vm_exp32, vm_tanh32).
 *
 * lw_ex recurses once per level of a kernel's fused expression (through
 * lw_ex_def and ex_elemwise); the planner cuts every fused expression at
 * BE_FUSE_MAX_OPS ops (be_internal.h), which bounds that depth whatever
 * the graph's length. The other walks over a kernel's expression
 * (scan_expr, computes_inline, lw_calls_math, plan.c's collect, computes
 * and reads_in_place, the cost model's add_expr and copy_expr) rest on the
 * same bound. */
#include "backend/lower_internal.h"
#include "util/util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- intrinsics and libm ----------------------------------------------- */

LLVMValueRef lw_intr(em *e, const char *name, LLVMTypeRef t, LLVMValueRef *args, int n) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMTypeRef tys[1] = {t};
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(e->m, id, tys, 1);
  LLVMTypeRef ft = LLVMIntrinsicGetType(e->cx, id, tys, 1);
  return LLVMBuildCall2(e->b, ft, f, args, (unsigned)n, "");
}
LLVMValueRef lw_intr1(em *e, const char *name, LLVMValueRef x) {
  return lw_intr(e, name, LLVMTypeOf(x), &x, 1);
}
LLVMValueRef lw_intr2(em *e, const char *name, LLVMValueRef x, LLVMValueRef y) {
  LLVMValueRef a[2] = {x, y};
  return lw_intr(e, name, LLVMTypeOf(x), a, 2);
}

/* libmvec's variant vname taking n vectors of type vt, declared once per
 * module and kept in llvm.used (the vectoriser finds it by name) */
static LLVMValueRef libmvec_fn(em *e, const char *vname, LLVMTypeRef vt, int n, LLVMTypeRef *ft) {
  LLVMTypeRef vp[2] = {vt, vt};
  *ft = LLVMFunctionType(vt, vp, (unsigned)n, 0);
  LLVMValueRef vf = LLVMGetNamedFunction(e->m, vname);
  if (!vf) {
    vf = LLVMAddFunction(e->m, vname, *ft);
    lw_add_enum_attr(e, vf, "nounwind", 0);
    e->used = tl_xrealloc(e->used, (size_t)(e->nused + 1) * sizeof *e->used);
    e->used[e->nused++] = vf;
  }
  return vf;
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
    lw_add_enum_attr(e, fn, "nounwind", 0);
    lw_add_enum_attr(e, fn, "willreturn", 0);
    lw_add_enum_attr(e, fn, "memory", 0);
  }
  LLVMValueRef c = LLVMBuildCall2(e->b, ft, fn, args, (unsigned)n, "");
  if (e->vector_math) {
    /* the AVX2 variant, and on AVX-512 targets also the 512-bit one (which
     * the kernels' prefer-vector-width=512 makes the vectoriser pick);
     * without AVX2 (an object for x86-64 or -v2) the SSE one */
    attr[0] = 0;
    int isa0 = e->avx2 ? 1 : 0, isa1 = e->avx2 ? (e->avx512 ? 2 : 1) : 0;
    for (int isa = isa0; isa <= isa1; isa++) {
      int w = (f ? 4 : 2) << isa;
      snprintf(vname, sizeof vname, "_ZGV%cN%d%s_%s", "bde"[isa], w, n == 2 ? "vv" : "v", fname);
      LLVMTypeRef vft;
      libmvec_fn(e, vname, LLVMVectorType(t, (unsigned)w), n, &vft);
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

/* A one-argument function over a vector x (lower_short.c's registers):
 * libmvec's variant of the target's width called on each piece of x, the
 * variant the vectoriser would pick (mcall's attribute); without vector
 * math, the scalar function lane by lane. */
static LLVMValueRef vcall(em *e, const char *name, int dt, LLVMValueRef x) {
  unsigned n = LLVMGetVectorSize(LLVMTypeOf(x));
  bool f = dt == TL_F32;
  int isa = e->avx512 ? 2 : e->avx2 ? 1 : 0;
  unsigned w = (unsigned)((f ? 4 : 2) << isa);
  if (!e->vector_math || n % w || n / w > 16 || ((n / w) & (n / w - 1))) {
    LLVMValueRef r = LLVMGetPoison(LLVMTypeOf(x));
    for (unsigned i = 0; i < n; i++) {
      LLVMValueRef l = LLVMConstInt(e->i32, i, 0);
      LLVMValueRef xi = LLVMBuildExtractElement(e->b, x, l, "");
      r = LLVMBuildInsertElement(e->b, r, mcall(e, name, dt, &xi, 1), l, "");
    }
    return r;
  }
  char vname[48];
  snprintf(vname, sizeof vname, "_ZGV%cN%uv_%s%s", "bde"[isa], w, name, f ? "f" : "");
  LLVMTypeRef ft;
  LLVMValueRef vf = libmvec_fn(e, vname, LLVMVectorType(vty(e, dt), w), 1, &ft);
  if (n == w) return LLVMBuildCall2(e->b, ft, vf, &x, 1, "");
  LLVMValueRef m[64], parts[16];
  unsigned np = n / w;
  for (unsigned p = 0; p < np && p < 16; p++) {
    for (unsigned i = 0; i < w; i++) m[i] = LLVMConstInt(e->i32, p * w + i, 0);
    LLVMValueRef piece = LLVMBuildShuffleVector(e->b, x, LLVMGetPoison(LLVMTypeOf(x)), LLVMConstVector(m, w), "");
    parts[p] = LLVMBuildCall2(e->b, ft, vf, &piece, 1, "");
  }
  /* join the pieces pairwise back to n lanes */
  for (unsigned len = w; np > 1; len *= 2, np /= 2) {
    for (unsigned p = 0; p < np / 2; p++) {
      for (unsigned i = 0; i < 2 * len; i++) m[i] = LLVMConstInt(e->i32, i, 0);
      parts[p] = LLVMBuildShuffleVector(e->b, parts[2 * p], parts[2 * p + 1], LLVMConstVector(m, 2 * len), "");
    }
  }
  return parts[0];
}

/* A one-argument math function; f32 exp and tanh (and so sigmoid,
 * softplus, softmax, ... built on exp) are tlaloc's own inline kernels
 * below instead of calls where e->vector_math's own bits say so. */
LLVMValueRef lw_m1(em *e, const char *name, int dt, LLVMValueRef x) {
  if (dt == TL_F32 && e->vector_math) {
    unsigned own = (unsigned)e->vector_math >> 1;
    if ((own & BE_OWN_EXP32) && !strcmp(name, "exp")) return vm_exp32(e, x);
    if ((own & BE_OWN_TANH32) && !strcmp(name, "tanh")) return vm_tanh32(e, x);
  }
  if (lw_is_vec(x)) return vcall(e, name, dt, x);
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

LLVMValueRef lw_conv(em *e, LLVMValueRef v, int from, int to) {
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

/* The kernels below take a scalar or a vector (a row kernel's registers,
 * lower_short.c): constants and types follow the argument's lanes. */
static LLVMValueRef kf32(em *e, LLVMValueRef like, double v) { return lw_like(like, cf(e, TL_F32, v)); }
static LLVMValueRef ki32(em *e, LLVMValueRef like, unsigned v) { return lw_like(like, LLVMConstInt(e->i32, v, 0)); }

static LLVMValueRef fma32(em *e, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  LLVMValueRef ar[3] = {a, b, c};
  return lw_intr(e, "llvm.fmuladd", LLVMTypeOf(a), ar, 3);
}

/* 2^k as an f32 for k in [-126, 127]: the biased exponent in place. */
static LLVMValueRef pow2i(em *e, LLVMValueRef k) {
  LLVMValueRef b = LLVMBuildAdd(e->b, k, ki32(e, k, 127), "");
  return LLVMBuildBitCast(e->b, LLVMBuildShl(e->b, b, ki32(e, k, 23), ""), lw_like_ty(k, e->f32), "");
}

/* The reduction shared by exp and tanh: x = n ln2 + r, n = round(x / ln2),
 * r in [-ln2/2, ln2/2] (Cody-Waite: ln2_hi has 9 significant bits, so
 * n * ln2_hi is exact for the |n| < 2^8 here). Returns exp(r) - 1 =
 * r + r^2 q(r), q(r) = c2 + c3 r + ... + c6 r^4, and n in *ni (i32). n
 * is rounded by the 1.5 * 2^23 shifter, which leaves it in the low bits: no
 * float-to-int conversion, so NaN stays defined and flows into r. */
static LLVMValueRef vm_expm1_r(em *e, LLVMValueRef x, LLVMValueRef *ni) {
  LLVMBuilderRef B = e->b;
  LLVMValueRef shifter = kf32(e, x, 12582912.0);
  LLVMValueRef s = fma32(e, x, kf32(e, x, 1.44269504088896341), shifter);
  LLVMValueRef nf = LLVMBuildFSub(B, s, shifter, "");
  *ni = LLVMBuildSub(B, LLVMBuildBitCast(B, s, lw_like_ty(x, e->i32), ""), ki32(e, x, 0x4b400000), "");
  LLVMValueRef r = fma32(e, nf, kf32(e, x, -0.693359375), x);
  r = fma32(e, nf, kf32(e, x, 2.12194440e-4), r);
  static const double c[5] = {0.4999999403953552, 0.1666652113199234, 0.04166838899254799,
                              0.008368710055947304, 0.0013814610429108143};
  /* Estrin's scheme, not Horner's: q is 3 dependent steps instead of 4,
   * and the chain from x to the result is what limits a fused kernel */
  LLVMValueRef r2 = LLVMBuildFMul(B, r, r, "");
  LLVMValueRef lo = fma32(e, kf32(e, x, c[1]), r, kf32(e, x, c[0]));
  LLVMValueRef hi = fma32(e, kf32(e, x, c[3]), r, kf32(e, x, c[2]));
  hi = fma32(e, kf32(e, x, c[4]), r2, hi);
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
  LLVMValueRef hi = kf32(e, x, 89.0), lo = kf32(e, x, -104.0);
  LLVMValueRef xc = sel(e, fcmp(e, LLVMRealOGT, x, hi), hi, x);
  xc = sel(e, fcmp(e, LLVMRealOLT, xc, lo), lo, xc);
  LLVMValueRef ni;
  LLVMValueRef p = LLVMBuildFAdd(B, vm_expm1_r(e, xc, &ni), kf32(e, x, 1.0), "");
  LLVMValueRef n1 = LLVMBuildAShr(B, ni, ki32(e, x, 1), "");
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
  LLVMValueRef a = lw_intr1(e, "llvm.fabs", x);
  LLVMValueRef ten = kf32(e, x, 10.0);
  LLVMValueRef ac = sel(e, fcmp(e, LLVMRealOGT, a, ten), ten, a);
  LLVMValueRef ni;
  LLVMValueRef er = vm_expm1_r(e, LLVMBuildFAdd(B, ac, ac, ""), &ni);
  LLVMValueRef sc = pow2i(e, ni);
  LLVMValueRef m = fma32(e, sc, er, LLVMBuildFSub(B, sc, kf32(e, x, 1.0), ""));
  LLVMValueRef t = LLVMBuildFDiv(B, m, LLVMBuildFAdd(B, m, kf32(e, x, 2.0), ""), "");
  return lw_intr2(e, "llvm.copysign", t, x);
}

static LLVMValueRef f_sign(em *e, int dt, LLVMValueRef x) {
  LLVMValueRef z = cf(e, dt, 0);
  return sel(e, fcmp(e, LLVMRealOGT, x, z), cf(e, dt, 1),
             sel(e, fcmp(e, LLVMRealOLT, x, z), cf(e, dt, -1), sel(e, fcmp(e, LLVMRealOEQ, x, z), z, x)));
}

static LLVMValueRef f_log1pexp_neg_abs(em *e, int dt, LLVMValueRef x) {
  /* log1p(exp(-|x|)) */
  LLVMValueRef ax = lw_intr1(e, "llvm.fabs", x);
  return lw_m1(e, "log1p", dt, lw_m1(e, "exp", dt, LLVMBuildFNeg(e->b, ax, "")));
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
  LLVMValueRef m2 = sel(e, mnz, m1v, lw_intr2(e, "llvm.copysign", z, b));
  LLVMValueRef fd0 = lw_intr1(e, "llvm.floor", div1);
  LLVMValueRef fd1 = sel(e, fcmp(e, LLVMRealOGT, LLVMBuildFSub(B, div1, fd0, ""), cf(e, dt, 0.5)),
                         LLVMBuildFAdd(B, fd0, one, ""), fd0);
  LLVMValueRef fd = sel(e, fcmp(e, LLVMRealUNE, div1, z), fd1, lw_intr2(e, "llvm.copysign", z, q));
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
  lw_set_err(e, BE_ERR_POW);
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
  case TL_OP_ABS: return lw_intr1(e, "llvm.fabs", x);
  case TL_OP_SIGN: return f_sign(e, dt, x);
  case TL_OP_RELU: return lw_intr2(e, "llvm.maximum", x, cf(e, dt, 0));
  case TL_OP_SQRT: return lw_intr1(e, "llvm.sqrt", x);
  case TL_OP_FLOOR: return lw_intr1(e, "llvm.floor", x);
  case TL_OP_CEIL: return lw_intr1(e, "llvm.ceil", x);
  case TL_OP_RECIPROCAL: return LLVMBuildFDiv(B, cf(e, dt, 1), x, "");
  case TL_OP_SIGMOID: {
    LLVMValueRef en = lw_m1(e, "exp", dt, LLVMBuildFNeg(B, lw_intr1(e, "llvm.fabs", x), ""));
    LLVMValueRef d = LLVMBuildFAdd(B, cf(e, dt, 1), en, "");
    return sel(e, fcmp(e, LLVMRealOGE, x, cf(e, dt, 0)), LLVMBuildFDiv(B, cf(e, dt, 1), d, ""),
               LLVMBuildFDiv(B, en, d, ""));
  }
  case TL_OP_SOFTPLUS: {
    LLVMValueRef r = LLVMBuildFAdd(B, lw_intr2(e, "llvm.maxnum", x, cf(e, dt, 0)),
                                   f_log1pexp_neg_abs(e, dt, x), "");
    return sel(e, fcmp(e, LLVMRealUNO, x, x), x, r);
  }
  case TL_OP_LOG1MEXP: {
    LLVMValueRef a = lw_m1(e, "log", dt, LLVMBuildFNeg(B, lw_m1(e, "expm1", dt, x), ""));
    LLVMValueRef b = lw_m1(e, "log1p", dt, LLVMBuildFNeg(B, lw_m1(e, "exp", dt, x), ""));
    LLVMValueRef r = sel(e, fcmp(e, LLVMRealOGT, x, cf(e, dt, -M_LN2)), a, b);
    return sel(e, fcmp(e, LLVMRealOGT, x, cf(e, dt, 0)), cf(e, dt, NAN), r);
  }
  default: /* a libm op of ir/ops.def */
    return tl_ops[op].ref1 ? lw_m1(e, tl_ops[op].math, dt, x) : NULL;
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
  case TL_OP_MAXIMUM: return lw_intr2(e, "llvm.maximum", a, b);
  case TL_OP_MINIMUM: return lw_intr2(e, "llvm.minimum", a, b);
  case TL_OP_LOGADDEXP: {
    LLVMValueRef mx = lw_intr2(e, "llvm.maxnum", a, b);
    LLVMValueRef r = LLVMBuildFAdd(B, mx, f_log1pexp_neg_abs(e, dt, LLVMBuildFSub(B, a, b, "")), "");
    r = sel(e, fcmp(e, LLVMRealUNO, a, b), cf(e, dt, NAN), r);
    return sel(e, fcmp(e, LLVMRealOEQ, a, b), LLVMBuildFAdd(B, a, cf(e, dt, M_LN2), ""), r);
  }
  case TL_OP_XLOGY: {
    LLVMValueRef r = LLVMBuildFMul(B, a, lw_m1(e, "log", dt, b), "");
    LLVMValueRef z = LLVMBuildAnd(B, fcmp(e, LLVMRealOEQ, a, cf(e, dt, 0)), fcmp(e, LLVMRealORD, b, b), "");
    return sel(e, z, cf(e, dt, 0), r);
  }
  default: /* a libm op of ir/ops.def */
    if (!tl_ops[op].ref2) return NULL;
    LLVMValueRef ar[2] = {a, b};
    return mcall(e, tl_ops[op].math, dt, ar, 2);
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
  case TL_OP_RELU: return sel(e, icmp(e, LLVMIntSGT, a, z), a, z);
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

void lw_contig_strides(em *e, int rank, const int64_t *dims, LLVMValueRef *st) {
  LLVMValueRef s = ci(e, 1);
  for (int i = rank - 1; i >= 0; i--) {
    st[i] = s;
    s = LLVMBuildMul(e->pre, s, lw_dimv(e, dims[i]), "");
  }
}

LLVMValueRef lw_offset(em *e, int rank, const LLVMValueRef *st, LLVMValueRef *idx) {
  LLVMValueRef off = ci(e, 0);
  for (int i = 0; i < rank; i++) off = LLVMBuildNSWAdd(e->b, off, LLVMBuildNSWMul(e->b, idx[i], st[i], ""), "");
  return off;
}

LLVMValueRef lw_load_at(em *e, int32_t bi, int dt, LLVMValueRef off) {
  LLVMValueRef a = LLVMBuildInBoundsGEP2(e->b, mty(e, dt), lw_bufptr(e, bi), &off, 1, "");
  LLVMValueRef v = LLVMBuildLoad2(e->b, mty(e, dt), a, "");
  lw_mark_access(e, bi, v);
  if (dt == TL_BOOL) v = LLVMBuildICmp(e->b, LLVMIntNE, v, LLVMConstInt(e->i8, 0, 0), "");
  return v;
}

void lw_store_at(em *e, int32_t bi, int dt, LLVMValueRef off, LLVMValueRef v) {
  if (dt == TL_BOOL) v = LLVMBuildZExt(e->b, v, e->i8, "");
  if (e->scratch && bi == e->scratch_buf) {
    LLVMBuildStore(e->b, v, LLVMBuildInBoundsGEP2(e->b, mty(e, dt), e->scratch, &e->scratch_j, 1, ""));
    return;
  }
  LLVMValueRef a = LLVMBuildInBoundsGEP2(e->b, mty(e, dt), lw_bufptr(e, bi), &off, 1, "");
  lw_mark_access(e, bi, LLVMBuildStore(e->b, v, a));
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

/* Index of operand x (of rank xr) of a broadcasting op of rank r. */
static void bcast_idx(em *e, const tl_type *xt, const tl_type *ot, LLVMValueRef *idx, LLVMValueRef *xi) {
  int src[TL_MAX_RANK];
  tl_broadcast_src_axes(xt, ot, src);
  for (int j = 0; j < xt->rank; j++) xi[j] = src[j] < 0 ? ci(e, 0) : idx[src[j]];
}

/* Python slice start for a dim of length len (an LLVM value). */
LLVMValueRef lw_slice_start(em *e, const tl_attrs *a, LLVMValueRef len) {
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
  LLVMValueRef v[3] = {0};
  int dts[3] = {0};
  const tl_type *ts[3] = {0};
  for (int k = 0; k < nin; k++) {
    LLVMValueRef xi[TL_MAX_RANK];
    ts[k] = &g->nodes[in[k]].type;
    bcast_idx(e, ts[k], &n->type, idx, xi);
    v[k] = lw_ex(e, in[k], xi);
    dts[k] = ts[k]->dtype;
  }
  switch (op) {
  case TL_OP_NOT: return LLVMBuildNot(e->b, truthy(e, v[0], dts[0]), "");
  case TL_OP_AND: return LLVMBuildAnd(e->b, truthy(e, v[0], dts[0]), truthy(e, v[1], dts[1]), "");
  case TL_OP_OR: return LLVMBuildOr(e->b, truthy(e, v[0], dts[0]), truthy(e, v[1], dts[1]), "");
  case TL_OP_BITWISE_XOR: return LLVMBuildXor(e->b, lw_conv(e, v[0], dts[0], odt), lw_conv(e, v[1], dts[1], odt), "");
  case TL_OP_WHERE:
    return sel(e, truthy(e, v[0], dts[0]), lw_conv(e, v[1], dts[1], odt), lw_conv(e, v[2], dts[2], odt));
  case TL_OP_CAST: return lw_conv(e, v[0], dts[0], odt);
  default: break;
  }
  uint8_t ct = (uint8_t)odt, weak;
  if (tl_ops[op].dtype_rule == TL_DR_CMP) tl_promote(ts, nin, &ct, &weak);
  for (int k = 0; k < nin; k++) v[k] = lw_conv(e, v[k], dts[k], ct);
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
    tl_fail(e->err, TL_BAD_INPUT, "backend: op %s on dtype %s is not supported", tl_ops[op].name,
             tl_dtype_name((tl_dtype)ct));
  }
  return r ? r : LLVMGetUndef(vty(e, odt));
}

LLVMValueRef lw_ex(em *e, int32_t id, LLVMValueRef *idx) {
  const tl_node *n = &e->g->nodes[id];
  const be_plan *p = e->p;
  if (p->state[id] == BE_S_MAT || p->state[id] == BE_S_ALIAS) {
    LLVMValueRef st[TL_MAX_RANK];
    lw_contig_strides(e, n->type.rank, n->type.dims, st);
    return lw_load_at(e, p->buf_of[id], n->type.dtype, lw_offset(e, n->type.rank, st, idx));
  }
  if (p->state[id] == BE_S_ROW) return e->rowval[id]; /* read at the current row (plan.c "row kernels") */
  return lw_ex_def(e, id, idx);
}

/* The node's own definition (its operands may be buffers). */
LLVMValueRef lw_ex_def(em *e, int32_t id, LLVMValueRef *idx) {
  const tl_graph *g = e->g;
  const tl_node *n = &g->nodes[id];
  const int32_t *in = tl_node_inputs(g, n);
  const be_plan *p = e->p;
  const tl_type *xt = n->ninputs ? &g->nodes[in[0]].type : NULL;
  LLVMValueRef xi[TL_MAX_RANK];
  int src[TL_MAX_RANK];
  if (tl_view_src_axes(g, n, src)) {
    for (int i = 0; i < xt->rank; i++) xi[i] = src[i] < 0 ? ci(e, 0) : idx[src[i]];
    return lw_ex(e, in[0], xi);
  }
  switch (n->op) {
  case TL_OP_LIT: case TL_OP_FILL: case TL_OP_ZEROS_LIKE: case TL_OP_ONES_LIKE:
    return lit_value(e, n);
  case TL_OP_DIM: {
    int ax = n->attrs.axes[0] < 0 ? n->attrs.axes[0] + xt->rank : n->attrs.axes[0];
    return lw_dimv(e, xt->dims[ax]);
  }
  case TL_OP_IOTA: /* lower.c keeps :axis out of merged loops, so idx[ax] is the index */
    return idx[n->attrs.axes[0] < 0 ? n->attrs.axes[0] + xt->rank : n->attrs.axes[0]];
  case TL_OP_SLICE: {
    int ax = (n->attrs.present & TL_A_AXIS) ? n->attrs.axes[0] : 0;
    if (ax < 0) ax += xt->rank;
    int64_t step = (n->attrs.present & TL_A_STEP) ? n->attrs.step : 1;
    LLVMValueRef start = lw_slice_start(e, &n->attrs, lw_dimv(e, xt->dims[ax]));
    for (int i = 0; i < xt->rank; i++) xi[i] = idx[i];
    xi[ax] = LLVMBuildNSWAdd(e->b, start, LLVMBuildNSWMul(e->b, idx[ax], ci(e, step), ""), "");
    return lw_ex(e, in[0], xi);
  }
  case TL_OP_TAKE: {
    const tl_type *it = &g->nodes[in[1]].type;
    bool flat = !(n->attrs.present & TL_A_AXIS);
    int ax = flat ? 0 : n->attrs.axes[0];
    if (ax < 0) ax += xt->rank;
    LLVMValueRef ist[TL_MAX_RANK];
    lw_contig_strides(e, it->rank, it->dims, ist);
    LLVMValueRef j = lw_load_at(e, p->buf_of[in[1]], it->dtype, lw_offset(e, it->rank, ist, idx + ax));
    j = lw_conv(e, j, it->dtype, TL_I64);
    LLVMValueRef len;
    if (flat) {
      len = ci(e, 1);
      for (int i = 0; i < xt->rank; i++) len = LLVMBuildMul(e->pre, len, lw_dimv(e, xt->dims[i]), "");
    } else {
      len = lw_dimv(e, xt->dims[ax]);
    }
    j = sel(e, icmp(e, LLVMIntSLT, j, ci(e, 0)), LLVMBuildAdd(e->b, j, len, ""), j);
    if (flat) return lw_load_at(e, p->buf_of[in[0]], xt->dtype, j);
    for (int i = 0; i < ax; i++) xi[i] = idx[i];
    xi[ax] = j;
    for (int i = ax + 1; i < xt->rank; i++) xi[i] = idx[i - 1 + it->rank];
    return lw_ex(e, in[0], xi);
  }
  default:
    if (tl_ops[n->op].kind == TL_KIND_ELEMWISE) return ex_elemwise(e, id, idx);
    if (!e->failed) {
      e->failed = 1;
      tl_fail(e->err, TL_INTERNAL, "backend: op %s on dtype %s is not supported (internal: not inline)",
               tl_ops[n->op].name, tl_dtype_name((tl_dtype)n->type.dtype));
    }
    return LLVMGetUndef(vty(e, n->type.dtype));
  }
}
