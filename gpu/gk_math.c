/* gk_math.c - math functions inside kernels (gb.h, gb_math).
 *
 * With libdevice (GB_MATH_LIBDEVICE) a math function is one GK_MATH
 * instruction: the NVPTX lowering calls libdevice's __nv_expf and friends
 * and the emulator calls the host's libm (so the emulator checks the
 * kernels' logic, not libdevice's last bits).
 *
 * Without libdevice (GB_MATH_OWN: no CUDA toolkit where the PTX is made)
 * the project computes f32 exp, log, log1p and tanh itself, as plain
 * instructions of the description, so the emulator runs exactly the code
 * the GPU runs and the tests measure its accuracy; every other math
 * function (f64 ones included) is refused with a message naming it. The
 * own functions:
 *   exp, tanh  backend/lower_expr.c's vm_exp32 and vm_tanh32 (Cody-Waite
 *              reduction, one polynomial; <= 1.02 and 2.62 ulp there), with
 *              explicit fused multiply-adds;
 *   log        Cephes' logf: x = 2^e m, m in [sqrt(1/2), sqrt(2)), a degree-9
 *              polynomial in m - 1, the exponent added in two parts;
 *   log1p      log(u) * x / (u - 1) with u = 1 + x (the rounding error of u
 *              cancels in the quotient; exact for u == 1). */
#include "gpu/gb.h"

#include <math.h>

static int32_t c32(gb *b, double v) { return gk_cf(b->k, GK_F32, v); }
static int32_t i32(gb *b, int64_t v) { return gk_ci(b->k, GK_I32, v); }
static int32_t fma32(gb *b, int32_t x, int32_t y, int32_t z) { return gk_intr_v(b->k, GK_FMA, x, y, z); }
static int32_t bin(gb *b, gk_bin op, int32_t x, int32_t y) { return gk_bin_v(b->k, op, x, y); }
static int32_t sel(gb *b, int32_t c, int32_t x, int32_t y) { return gk_select(b->k, c, x, y); }
static int32_t fcmp(gb *b, gk_fcmp p, int32_t x, int32_t y) { return gk_fcmp_v(b->k, p, x, y); }

/* 2^k as an f32 for k in [-126, 127]: the biased exponent in place */
static int32_t pow2i(gb *b, int32_t k) {
  int32_t e = bin(b, GK_ADD, k, i32(b, 127));
  return gk_conv_v(b->k, GK_BITCAST, bin(b, GK_SHL, e, i32(b, 23)), GK_F32);
}

/* x = n ln2 + r: returns exp(r) - 1 and n (i32) in *ni (vm_expm1_r) */
static int32_t expm1_r(gb *b, int32_t x, int32_t *ni) {
  int32_t shifter = c32(b, 12582912.0);
  int32_t s = fma32(b, x, c32(b, 1.44269504088896341), shifter);
  int32_t nf = bin(b, GK_FSUB, s, shifter);
  *ni = bin(b, GK_SUB, gk_conv_v(b->k, GK_BITCAST, s, GK_I32), i32(b, 0x4b400000));
  int32_t r = fma32(b, nf, c32(b, -0.693359375), x);
  r = fma32(b, nf, c32(b, 2.12194440e-4), r);
  static const double c[5] = {0.4999999403953552, 0.1666652113199234, 0.04166838899254799,
                              0.008368710055947304, 0.0013814610429108143};
  int32_t r2 = bin(b, GK_FMUL, r, r);
  int32_t lo = fma32(b, c32(b, c[1]), r, c32(b, c[0]));
  int32_t hi = fma32(b, c32(b, c[3]), r, c32(b, c[2]));
  hi = fma32(b, c32(b, c[4]), r2, hi);
  int32_t q = fma32(b, hi, r2, lo);
  return fma32(b, r2, q, r);
}

static int32_t own_exp(gb *b, int32_t x) {
  int32_t hi = c32(b, 89.0), lo = c32(b, -104.0);
  int32_t xc = sel(b, fcmp(b, GK_FOGT, x, hi), hi, x);
  xc = sel(b, fcmp(b, GK_FOLT, xc, lo), lo, xc);
  int32_t ni;
  int32_t p = bin(b, GK_FADD, expm1_r(b, xc, &ni), c32(b, 1.0));
  int32_t n1 = bin(b, GK_ASHR, ni, i32(b, 1));
  int32_t n2 = bin(b, GK_SUB, ni, n1);
  return bin(b, GK_FMUL, bin(b, GK_FMUL, p, pow2i(b, n1)), pow2i(b, n2));
}

static int32_t own_tanh(gb *b, int32_t x) {
  int32_t a = gk_intr_v(b->k, GK_FABS, x, -1, -1);
  int32_t ten = c32(b, 10.0);
  int32_t ac = sel(b, fcmp(b, GK_FOGT, a, ten), ten, a);
  int32_t ni;
  int32_t er = expm1_r(b, bin(b, GK_FADD, ac, ac), &ni);
  int32_t sc = pow2i(b, ni);
  int32_t m = fma32(b, sc, er, bin(b, GK_FSUB, sc, c32(b, 1.0)));
  int32_t t = bin(b, GK_FDIV, m, bin(b, GK_FADD, m, c32(b, 2.0)));
  return gk_intr_v(b->k, GK_COPYSIGN, t, x, -1);
}

static int32_t own_log(gb *b, int32_t x) {
  gk_kernel *k = b->k;
  /* subnormals first scaled into the normal range */
  int32_t tiny = fcmp(b, GK_FOLT, x, c32(b, 1.17549435e-38));
  int32_t xs = sel(b, tiny, bin(b, GK_FMUL, x, c32(b, 8388608.0)), x);
  int32_t bits = gk_conv_v(k, GK_BITCAST, xs, GK_I32);
  int32_t e = bin(b, GK_SUB, bin(b, GK_AND, bin(b, GK_LSHR, bits, i32(b, 23)), i32(b, 0xff)), i32(b, 126));
  e = sel(b, tiny, bin(b, GK_SUB, e, i32(b, 23)), e);
  /* m in [0.5, 1) */
  int32_t m = gk_conv_v(k, GK_BITCAST, bin(b, GK_OR, bin(b, GK_AND, bits, i32(b, (int64_t)0x807fffff)), i32(b, 0x3f000000)), GK_F32);
  int32_t lowm = fcmp(b, GK_FOLT, m, c32(b, 0.707106781186547524));
  e = sel(b, lowm, bin(b, GK_SUB, e, i32(b, 1)), e);
  int32_t f = sel(b, lowm, bin(b, GK_FSUB, bin(b, GK_FADD, m, m), c32(b, 1.0)), bin(b, GK_FSUB, m, c32(b, 1.0)));
  static const double P[9] = {7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1, 1.4249322787E-1,
                              -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1};
  int32_t z = bin(b, GK_FMUL, f, f);
  int32_t p = c32(b, P[0]);
  for (int i = 1; i < 9; i++) p = fma32(b, p, f, c32(b, P[i]));
  int32_t ef = gk_conv_v(k, GK_SITOFP, e, GK_F32);
  int32_t y = bin(b, GK_FMUL, bin(b, GK_FMUL, f, z), p);
  y = fma32(b, ef, c32(b, -2.12194440e-4), y);
  y = fma32(b, z, c32(b, -0.5), y);
  int32_t r = bin(b, GK_FADD, f, y);
  r = fma32(b, ef, c32(b, 0.693359375), r);
  /* special values: 0 -> -inf, < 0 -> NaN, +inf -> +inf, NaN -> NaN */
  r = sel(b, fcmp(b, GK_FOEQ, x, c32(b, INFINITY)), x, r);
  r = sel(b, fcmp(b, GK_FOEQ, x, c32(b, 0.0)), c32(b, -INFINITY), r);
  r = sel(b, fcmp(b, GK_FOLT, x, c32(b, 0.0)), c32(b, NAN), r);
  return sel(b, fcmp(b, GK_FUNO, x, x), x, r);
}

static int32_t own_log1p(gb *b, int32_t x) {
  int32_t u = bin(b, GK_FADD, x, c32(b, 1.0));
  int32_t um1 = bin(b, GK_FSUB, u, c32(b, 1.0));
  int32_t q = bin(b, GK_FMUL, own_log(b, u), bin(b, GK_FDIV, x, um1));
  int32_t r = sel(b, fcmp(b, GK_FOEQ, u, c32(b, INFINITY)), u, q);
  return sel(b, fcmp(b, GK_FOEQ, um1, c32(b, 0.0)), x, r);
}

int32_t gb_math(gb *b, gk_math f, int dt, int32_t x, int32_t y) {
  if (b->math == GB_MATH_LIBDEVICE) return gk_math_v(b->k, f, x, y);
  if (dt == TL_F32) {
    switch (f) {
    case GK_EXP: return own_exp(b, x);
    case GK_LOG: return own_log(b, x);
    case GK_LOG1P: return own_log1p(b, x);
    case GK_TANH: return own_tanh(b, x);
    default: break;
    }
  }
  gb_fail(b, "gpu: the math function %s on %s needs libdevice (libdevice.10.bc of the CUDA toolkit, found "
          "through CUDA_HOME or /usr/local/cuda); without it the GPU backend computes f32 exp, log, log1p and "
          "tanh itself and refuses the others", gk_math_names[f], tl_dtype_name((tl_dtype)dt));
  return gk_cf(b->k, gk_ty_of_dtype(dt), 0);
}
