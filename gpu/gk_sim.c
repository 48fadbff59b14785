/* gk_sim.c - the host emulator of the GPU grid: a kernel description
 * (gk.h) run for every thread of every block, as the GPU would run it.
 *
 * Blocks run one after another. Inside a block all threads go through the
 * description together, one instruction at a time, each thread with its
 * own registers (a value slot per instruction and thread) under an active
 * mask: an IF narrows the mask, a LOOP runs its body while any thread of
 * the mask is still inside its range. So
 *   - a BARRIER is reached by the whole block or it is an error (a barrier
 *     under divergent control flow deadlocks or is undefined on the GPU);
 *     barriers split the block's run into phases;
 *   - a shuffle reads the other lane's value from the warp's slots of its
 *     operand; every lane of the warp must be active (the kernels shuffle
 *     with a full mask);
 *   - lockstep execution would hide a missing barrier, so shared memory and
 *     every global buffer the kernel writes carry a shadow of their last
 *     writer and readers: two accesses of one element by different threads,
 *     one of them a write, are a race unless they are in the same block
 *     and a barrier lies between them. Reading shared memory that was never
 *     written in this block is an error too.
 * Out-of-bounds accesses, misaligned vector accesses (a load or store that
 * claims a 16-byte run), and what LLVM would make poison or undefined
 * (integer division by zero, shifts past the width, float-to-int out of
 * range, a loop step that is not positive) are reported with the kernel,
 * instruction, block and thread. Math functions call the host's libm. */
#include "gpu/gk.h"

#include "tensor/tensor.h"
#include "util/util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/gk_sim.h"

typedef union sv {
  int64_t i; /* integers sign-extended, i1 as 0/1 */
  double d;
  float f;
} sv;

/* last writer and readers of one element; threads are block-local ids */
typedef struct shadow {
  int32_t wt, wblk, wph; /* writer; wt -1: none */
  int32_t rt, rblk, rph; /* reader; rt -1: none, -2: several (rblk -1: in several blocks) */
} shadow;

typedef struct sim {
  const gk_kernel *k;
  const gk_sim_args *a;
  int nt;
  int32_t blk;
  int32_t phase;
  sv *val, *var;
  sv *shm[8];
  shadow *shsh[8];
  shadow **gsh; /* per plan buffer the kernel writes */
  uint8_t *masks;
  int32_t *endof;
  char *err;
  size_t errn;
  int failed;
} sim;

static int fail(sim *s, int32_t pc, int t, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(sim *s, int32_t pc, int t, const char *fmt, ...) {
  if (s->failed) return -1;
  s->failed = 1;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(s->err, s->errn, "gpu-sim: kernel %s, instruction %d, block %d, thread %d: %s", s->k->name, pc, s->blk,
           t, msg);
  return -1;
}

#define V(x, t) (s->val[(size_t)(x) * (size_t)s->nt + (size_t)(t)])
#define FOR_ACTIVE(t) for (int t = 0; t < s->nt; t++) if (m[t])

static bool ordered(int32_t pt, int32_t pblk, int32_t pph, int t, int32_t blk, int32_t ph) {
  return (pt == t && pblk == blk) || (pblk == blk && pph < ph);
}

/* A read of element e (shadow sh) by thread t: 0, or -1 on a race. */
static int shadow_read(sim *s, shadow *sh, int32_t pc, int t, const char *what, int64_t e) {
  int32_t blk = s->blk, ph = s->phase;
  if (sh->wt >= 0 && !ordered(sh->wt, sh->wblk, sh->wph, t, blk, ph))
    return fail(s, pc, t, "race: reads %s element %lld, written by thread %d of block %d with no barrier between", what,
                (long long)e, sh->wt, sh->wblk);
  if (sh->rt == -1 || (sh->rt >= 0 && ordered(sh->rt, sh->rblk, sh->rph, t, blk, ph))) {
    sh->rt = t;
    sh->rblk = blk;
    sh->rph = ph;
  } else if (!(sh->rt == t && sh->rblk == blk)) {
    if (sh->rblk != blk) sh->rblk = -1;
    sh->rt = -2;
    if (ph > sh->rph) sh->rph = ph;
  }
  return 0;
}

static int shadow_write(sim *s, shadow *sh, int32_t pc, int t, const char *what, int64_t e) {
  int32_t blk = s->blk, ph = s->phase;
  if (sh->wt >= 0 && !ordered(sh->wt, sh->wblk, sh->wph, t, blk, ph))
    return fail(s, pc, t, "race: writes %s element %lld, also written by thread %d of block %d with no barrier between",
                what, (long long)e, sh->wt, sh->wblk);
  if (sh->rt >= 0 && !ordered(sh->rt, sh->rblk, sh->rph, t, blk, ph))
    return fail(s, pc, t, "race: writes %s element %lld, read by thread %d of block %d with no barrier between", what,
                (long long)e, sh->rt, sh->rblk);
  if (sh->rt == -2 && !(sh->rblk == blk && sh->rph < ph))
    return fail(s, pc, t, "race: writes %s element %lld, read by several threads with no barrier between", what,
                (long long)e);
  sh->wt = t;
  sh->wblk = blk;
  sh->wph = ph;
  sh->rt = -1;
  return 0;
}

/* ---- values ------------------------------------------------------------------ */

static int64_t wrap(gk_ty ty, int64_t v) {
  if (ty == GK_I32) return (int32_t)(uint32_t)(uint64_t)v;
  if (ty == GK_I1) return v & 1;
  return v;
}

static int bits_of(gk_ty ty) { return ty == GK_I1 ? 1 : ty == GK_I32 ? 32 : 64; }

static int ev_bin(sim *s, int32_t pc, const gk_ins *x, const uint8_t *m) {
  gk_ty ty = (gk_ty)x->ty;
  if (ty == GK_F32 || ty == GK_F64) {
    FOR_ACTIVE(t) {
      sv a = V(x->a, t), b = V(x->b, t), r;
      if (ty == GK_F32) {
        switch (x->aux) {
        case GK_FADD: r.f = a.f + b.f; break;
        case GK_FSUB: r.f = a.f - b.f; break;
        case GK_FMUL: r.f = a.f * b.f; break;
        default: r.f = a.f / b.f; break;
        }
      } else {
        switch (x->aux) {
        case GK_FADD: r.d = a.d + b.d; break;
        case GK_FSUB: r.d = a.d - b.d; break;
        case GK_FMUL: r.d = a.d * b.d; break;
        default: r.d = a.d / b.d; break;
        }
      }
      V(pc, t) = r;
    }
    return 0;
  }
  int bits = bits_of(ty);
  int64_t mn = ty == GK_I32 ? INT32_MIN : INT64_MIN;
  FOR_ACTIVE(t) {
    int64_t a = V(x->a, t).i, b = V(x->b, t).i, r;
    uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
    switch (x->aux) {
    case GK_ADD: r = (int64_t)(ua + ub); break;
    case GK_SUB: r = (int64_t)(ua - ub); break;
    case GK_MUL: r = (int64_t)(ua * ub); break;
    case GK_SDIV: case GK_SREM:
      if (b == 0) return fail(s, pc, t, "integer division by zero");
      if (b == -1 && a == mn) return fail(s, pc, t, "integer division overflows");
      r = x->aux == GK_SDIV ? a / b : a % b;
      break;
    case GK_AND: r = a & b; break;
    case GK_OR: r = a | b; break;
    case GK_XOR: r = a ^ b; break;
    default:
      if (b < 0 || b >= bits) return fail(s, pc, t, "shift by %lld on a %d-bit value", (long long)b, bits);
      if (x->aux == GK_SHL) r = (int64_t)(ua << b);
      else if (x->aux == GK_ASHR) r = a >> b;
      else r = (int64_t)((bits == 32 ? (uint64_t)(uint32_t)ua : ua) >> b);
      break;
    }
    V(pc, t).i = wrap(ty, r);
  }
  return 0;
}

static bool fcmp_of(int p, double a, double b) {
  bool uno = isnan(a) || isnan(b);
  switch (p) {
  case GK_FOEQ: return !uno && a == b;
  case GK_FONE: return !uno && a != b;
  case GK_FOLT: return !uno && a < b;
  case GK_FOLE: return !uno && a <= b;
  case GK_FOGT: return !uno && a > b;
  case GK_FOGE: return !uno && a >= b;
  case GK_FORD: return !uno;
  case GK_FUNO: return uno;
  default: return uno || a != b; /* UNE */
  }
}

static double sim_fmaximum(double a, double b) {
  if (isnan(a) || isnan(b)) return NAN;
  if (a == b) return signbit(a) ? b : a;
  return a > b ? a : b;
}
static double sim_fminimum(double a, double b) {
  if (isnan(a) || isnan(b)) return NAN;
  if (a == b) return signbit(a) ? a : b;
  return a < b ? a : b;
}

static int ev_conv(sim *s, int32_t pc, const gk_ins *x, const uint8_t *m) {
  gk_ty from = (gk_ty)s->k->ins[x->a].ty, to = (gk_ty)x->ty;
  FOR_ACTIVE(t) {
    sv a = V(x->a, t), r;
    r.i = 0;
    switch (x->aux) {
    case GK_SEXT: r.i = from == GK_I1 ? -(a.i & 1) : a.i; break;
    case GK_ZEXT: r.i = from == GK_I1 ? (a.i & 1) : from == GK_I32 ? (int64_t)(uint32_t)a.i : a.i; break;
    case GK_TRUNC: r.i = wrap(to, a.i); break;
    case GK_FPEXT: r.d = a.f; break;
    case GK_FPTRUNC: r.f = (float)a.d; break;
    case GK_SITOFP: case GK_UITOFP: {
      int64_t v = x->aux == GK_UITOFP && from == GK_I1 ? (a.i & 1) : a.i;
      if (x->aux == GK_UITOFP && from != GK_I1) return fail(s, pc, t, "uitofp from a wide integer");
      if (to == GK_F32) r.f = (float)v;
      else r.d = (double)v;
      break;
    }
    case GK_FPTOSI: {
      double d = from == GK_F32 ? (double)a.f : a.d;
      double lo = to == GK_I32 ? -2147483649.0 : -9223372036854775809.0, hi = to == GK_I32 ? 2147483648.0 : 9223372036854775808.0;
      if (!(d > lo && d < hi)) return fail(s, pc, t, "fptosi of %g is poison", d);
      r.i = wrap(to, (int64_t)d);
      break;
    }
    default: /* bitcast */
      if (to == GK_F32) {
        uint32_t u = (uint32_t)a.i;
        memcpy(&r.f, &u, 4);
      } else if (to == GK_F64) {
        memcpy(&r.d, &a.i, 8);
      } else if (to == GK_I32) {
        int32_t u;
        memcpy(&u, &a.f, 4);
        r.i = u;
      } else {
        memcpy(&r.i, &a.d, 8);
      }
      break;
    }
    V(pc, t) = r;
  }
  return 0;
}

static void ev_intr(sim *s, int32_t pc, const gk_ins *x, const uint8_t *m) {
  bool f32 = x->ty == GK_F32;
  FOR_ACTIVE(t) {
    double a = f32 ? V(x->a, t).f : V(x->a, t).d;
    double b = x->b >= 0 ? (f32 ? V(x->b, t).f : V(x->b, t).d) : 0;
    double c = x->c >= 0 ? (f32 ? V(x->c, t).f : V(x->c, t).d) : 0;
    sv r;
    if (f32) {
      float fa = (float)a, fb = (float)b, fc = (float)c, v;
      switch (x->aux) {
      case GK_FABS: v = fabsf(fa); break;
      case GK_SQRT: v = sqrtf(fa); break;
      case GK_FLOOR: v = floorf(fa); break;
      case GK_CEIL: v = ceilf(fa); break;
      case GK_COPYSIGN: v = copysignf(fa, fb); break;
      case GK_MAXNUM: v = fmaxf(fa, fb); break;
      case GK_MINNUM: v = fminf(fa, fb); break;
      case GK_MAXIMUM: v = (float)sim_fmaximum(fa, fb); break;
      case GK_MINIMUM: v = (float)sim_fminimum(fa, fb); break;
      default: v = fmaf(fa, fb, fc); break;
      }
      r.f = v;
    } else {
      double v;
      switch (x->aux) {
      case GK_FABS: v = fabs(a); break;
      case GK_SQRT: v = sqrt(a); break;
      case GK_FLOOR: v = floor(a); break;
      case GK_CEIL: v = ceil(a); break;
      case GK_COPYSIGN: v = copysign(a, b); break;
      case GK_MAXNUM: v = fmax(a, b); break;
      case GK_MINNUM: v = fmin(a, b); break;
      case GK_MAXIMUM: v = sim_fmaximum(a, b); break;
      case GK_MINIMUM: v = sim_fminimum(a, b); break;
      default: v = fma(a, b, c); break;
      }
      r.d = v;
    }
    V(pc, t) = r;
  }
}

static void ev_math(sim *s, int32_t pc, const gk_ins *x, const uint8_t *m) {
  bool f32 = x->ty == GK_F32;
  FOR_ACTIVE(t) {
    sv a = V(x->a, t), b = x->b >= 0 ? V(x->b, t) : a, r;
    if (f32) {
      float v = a.f, w = b.f, y;
      switch (x->aux) {
      case GK_EXP: y = expf(v); break;
      case GK_LOG: y = logf(v); break;
      case GK_LOG1P: y = log1pf(v); break;
      case GK_EXPM1: y = expm1f(v); break;
      case GK_SIN: y = sinf(v); break;
      case GK_COS: y = cosf(v); break;
      case GK_TAN: y = tanf(v); break;
      case GK_TANH: y = tanhf(v); break;
      case GK_ERF: y = erff(v); break;
      case GK_ERFC: y = erfcf(v); break;
      case GK_POW: y = powf(v, w); break;
      case GK_ASIN: y = asinf(v); break;
      case GK_ACOS: y = acosf(v); break;
      case GK_ATAN: y = atanf(v); break;
      case GK_SINH: y = sinhf(v); break;
      case GK_COSH: y = coshf(v); break;
      case GK_ASINH: y = asinhf(v); break;
      case GK_ACOSH: y = acoshf(v); break;
      case GK_ATANH: y = atanhf(v); break;
      case GK_CBRT: y = cbrtf(v); break;
      case GK_ATAN2: y = atan2f(v, w); break;
      case GK_HYPOT: y = hypotf(v, w); break;
      default: y = fmodf(v, w); break;
      }
      r.f = y;
    } else {
      double v = a.d, w = b.d, y;
      switch (x->aux) {
      case GK_EXP: y = exp(v); break;
      case GK_LOG: y = log(v); break;
      case GK_LOG1P: y = log1p(v); break;
      case GK_EXPM1: y = expm1(v); break;
      case GK_SIN: y = sin(v); break;
      case GK_COS: y = cos(v); break;
      case GK_TAN: y = tan(v); break;
      case GK_TANH: y = tanh(v); break;
      case GK_ERF: y = erf(v); break;
      case GK_ERFC: y = erfc(v); break;
      case GK_POW: y = pow(v, w); break;
      case GK_ASIN: y = asin(v); break;
      case GK_ACOS: y = acos(v); break;
      case GK_ATAN: y = atan(v); break;
      case GK_SINH: y = sinh(v); break;
      case GK_COSH: y = cosh(v); break;
      case GK_ASINH: y = asinh(v); break;
      case GK_ACOSH: y = acosh(v); break;
      case GK_ATANH: y = atanh(v); break;
      case GK_CBRT: y = cbrt(v); break;
      case GK_ATAN2: y = atan2(v, w); break;
      case GK_HYPOT: y = hypot(v, w); break;
      default: y = fmod(v, w); break;
      }
      r.d = y;
    }
    V(pc, t) = r;
  }
}

/* ---- memory ------------------------------------------------------------------- */

static int check_mem(sim *s, int32_t pc, int t, int32_t buf, int64_t e, int64_t limit, int align, int es,
                     const char *what) {
  if (!s->a->bufs[buf]) return fail(s, pc, t, "%s buffer %d, which the kernel was not given", what, buf);
  if (e < 0 || e >= limit)
    return fail(s, pc, t, "%s buffer %d at element %lld, outside [0, %lld)", what, buf, (long long)e, (long long)limit);
  if (align > es && ((uint64_t)e * (uint64_t)es) % (uint64_t)align)
    return fail(s, pc, t, "%s buffer %d at element %lld claims %d-byte alignment", what, buf, (long long)e, align);
  return 0;
}

static int ev_load(sim *s, int32_t pc, const gk_ins *x, const uint8_t *m) {
  int es = (int)tl_dtype_size((tl_dtype)x->aux);
  int64_t n = s->a->numel[x->a];
  /* an empty buffer has one element of padding: take's clamped index reads it */
  int64_t limit = n > 0 ? n : 1;
  FOR_ACTIVE(t) {
    int64_t e = V(x->b, t).i;
    if (check_mem(s, pc, t, x->a, e, limit, x->c, es, "reads")) return -1;
    if (s->gsh[x->a] && e < n) {
      char what[32];
      snprintf(what, sizeof what, "buffer %d", x->a);
      if (shadow_read(s, &s->gsh[x->a][e], pc, t, what, e)) return -1;
    }
    const char *p = (const char *)s->a->bufs[x->a] + e * es;
    sv r;
    switch (x->aux) {
    case TL_BOOL: r.i = *(const uint8_t *)p != 0; break;
    case TL_I32: { int32_t v; memcpy(&v, p, 4); r.i = v; break; }
    case TL_I64: memcpy(&r.i, p, 8); break;
    case TL_F32: memcpy(&r.f, p, 4); break;
    default: memcpy(&r.d, p, 8); break;
    }
    V(pc, t) = r;
  }
  return 0;
}

static int ev_store(sim *s, int32_t pc, const gk_ins *x, const uint8_t *m) {
  int es = (int)tl_dtype_size((tl_dtype)x->aux);
  int64_t n = s->a->numel[x->a];
  FOR_ACTIVE(t) {
    int64_t e = V(x->b, t).i;
    if (check_mem(s, pc, t, x->a, e, n, x->d, es, "writes")) return -1;
    char what[32];
    snprintf(what, sizeof what, "buffer %d", x->a);
    if (shadow_write(s, &s->gsh[x->a][e], pc, t, what, e)) return -1;
    char *p = (char *)s->a->bufs[x->a] + e * es;
    sv v = V(x->c, t);
    switch (x->aux) {
    case TL_BOOL: *(uint8_t *)p = (uint8_t)(v.i & 1); break;
    case TL_I32: { int32_t w = (int32_t)v.i; memcpy(p, &w, 4); break; }
    case TL_I64: memcpy(p, &v.i, 8); break;
    case TL_F32: memcpy(p, &v.f, 4); break;
    default: memcpy(p, &v.d, 8); break;
    }
  }
  return 0;
}

static int ev_shared(sim *s, int32_t pc, const gk_ins *x, const uint8_t *m, bool store) {
  int32_t arr = x->a, n = s->k->shm_n[arr];
  FOR_ACTIVE(t) {
    int64_t e = V(x->b, t).i;
    if (e < 0 || e >= n)
      return fail(s, pc, t, "%s shared array %d at %lld, outside [0, %d)", store ? "writes" : "reads", arr,
                  (long long)e, n);
    shadow *sh = &s->shsh[arr][e];
    char what[32];
    snprintf(what, sizeof what, "shared array %d", arr);
    if (store) {
      if (shadow_write(s, sh, pc, t, what, e)) return -1;
      s->shm[arr][e] = V(x->c, t);
    } else {
      if (sh->wt < 0) return fail(s, pc, t, "reads shared array %d at %lld, never written in this block", arr, (long long)e);
      if (shadow_read(s, sh, pc, t, what, e)) return -1;
      V(pc, t) = s->shm[arr][e];
    }
  }
  return 0;
}

static int ev_shfl(sim *s, int32_t pc, const gk_ins *x, const uint8_t *m) {
  for (int w = 0; w < s->nt; w += 32) {
    int on = 0;
    for (int l = 0; l < 32 && w + l < s->nt; l++) on += m[w + l] != 0;
    if (on && on != 32) return fail(s, pc, w, "shuffle in warp %d with %d of 32 lanes active", w / 32, on);
  }
  FOR_ACTIVE(t) V(pc, t) = V(x->a, (t & ~31) | ((t & 31) ^ (int)x->k.i));
  return 0;
}

/* ---- control --------------------------------------------------------------------- */

static int run_range(sim *s, int32_t pc, int32_t end, const uint8_t *m, int depth);

static int ev_loop(sim *s, int32_t pc, const gk_ins *x, const uint8_t *m, int depth) {
  uint8_t *m2 = s->masks + (size_t)(depth + 1) * (size_t)s->nt;
  FOR_ACTIVE(t) {
    if (V(x->d, t).i <= 0) return fail(s, pc, t, "loop step %lld is not positive", (long long)V(x->d, t).i);
    s->var[(size_t)x->a * (size_t)s->nt + (size_t)t].i = V(x->b, t).i;
  }
  for (;;) {
    bool any = false;
    for (int t = 0; t < s->nt; t++) {
      m2[t] = m[t] && s->var[(size_t)x->a * (size_t)s->nt + (size_t)t].i < V(x->c, t).i;
      any |= m2[t];
    }
    if (!any) return 0;
    if (run_range(s, pc + 1, s->endof[pc], m2, depth + 1)) return -1;
    for (int t = 0; t < s->nt; t++)
      if (m2[t]) s->var[(size_t)x->a * (size_t)s->nt + (size_t)t].i += V(x->d, t).i;
  }
}

static int run_range(sim *s, int32_t pc, int32_t end, const uint8_t *m, int depth) {
  const gk_kernel *k = s->k;
  while (pc < end) {
    const gk_ins *x = &k->ins[pc];
    int rc = 0;
    switch (x->op) {
    case GK_CONST: FOR_ACTIVE(t) { V(pc, t).i = 0; if (x->ty == GK_F32) V(pc, t).f = (float)x->k.f; else if (x->ty == GK_F64) V(pc, t).d = x->k.f; else V(pc, t).i = x->k.i; } break;
    case GK_SREG:
      FOR_ACTIVE(t) V(pc, t).i = x->aux == GK_TID ? t : x->aux == GK_NTID ? s->nt : x->aux == GK_CTAID ? s->blk : (int64_t)s->a->grid;
      break;
    case GK_SYM: FOR_ACTIVE(t) V(pc, t).i = s->a->syms[x->a]; break;
    case GK_BIN: rc = ev_bin(s, pc, x, m); break;
    case GK_FNEG: FOR_ACTIVE(t) { if (x->ty == GK_F32) V(pc, t).f = -V(x->a, t).f; else V(pc, t).d = -V(x->a, t).d; } break;
    case GK_ICMP:
      FOR_ACTIVE(t) {
        int64_t a = V(x->a, t).i, b = V(x->b, t).i;
        bool r = x->aux == GK_IEQ ? a == b : x->aux == GK_INE ? a != b : x->aux == GK_ISLT ? a < b
               : x->aux == GK_ISLE ? a <= b : x->aux == GK_ISGT ? a > b : a >= b;
        V(pc, t).i = r;
      }
      break;
    case GK_FCMP: {
      bool f32 = k->ins[x->a].ty == GK_F32;
      FOR_ACTIVE(t) V(pc, t).i = fcmp_of(x->aux, f32 ? V(x->a, t).f : V(x->a, t).d, f32 ? V(x->b, t).f : V(x->b, t).d);
      break;
    }
    case GK_SELECT: FOR_ACTIVE(t) V(pc, t) = V(x->a, t).i ? V(x->b, t) : V(x->c, t); break;
    case GK_CONV: rc = ev_conv(s, pc, x, m); break;
    case GK_INTR: ev_intr(s, pc, x, m); break;
    case GK_MATH: ev_math(s, pc, x, m); break;
    case GK_LOAD: rc = ev_load(s, pc, x, m); break;
    case GK_SHLOAD: rc = ev_shared(s, pc, x, m, false); break;
    case GK_SHFL: rc = ev_shfl(s, pc, x, m); break;
    case GK_GET: FOR_ACTIVE(t) V(pc, t) = s->var[(size_t)x->a * (size_t)s->nt + (size_t)t]; break;
    case GK_STORE: rc = ev_store(s, pc, x, m); break;
    case GK_SHSTORE: rc = ev_shared(s, pc, x, m, true); break;
    case GK_SET: FOR_ACTIVE(t) s->var[(size_t)x->a * (size_t)s->nt + (size_t)t] = V(x->b, t); break;
    case GK_LOOP:
      rc = ev_loop(s, pc, x, m, depth);
      pc = s->endof[pc];
      break;
    case GK_IF: {
      uint8_t *m2 = s->masks + (size_t)(depth + 1) * (size_t)s->nt;
      bool any = false;
      for (int t = 0; t < s->nt; t++) any |= (m2[t] = m[t] && V(x->a, t).i);
      if (any) rc = run_range(s, pc + 1, s->endof[pc], m2, depth + 1);
      pc = s->endof[pc];
      break;
    }
    case GK_END: break;
    case GK_BARRIER:
      for (int t = 0; t < s->nt; t++)
        if (!m[t]) return fail(s, pc, t, "barrier not reached by every thread of the block (divergent control flow)");
      s->phase++;
      break;
    case GK_ERR:
      FOR_ACTIVE(t) {
        if (*s->a->err == 0) *s->a->err = (int32_t)x->k.i;
        (void)t;
      }
      break;
    default: rc = fail(s, pc, 0, "unknown instruction %d", x->op); break;
    }
    if (rc || s->failed) return -1;
    pc++;
  }
  return 0;
}

int gk_sim_launch(const gk_kernel *k, const gk_sim_args *a, char *err, size_t n) {
  if (a->block % 32 || a->block == 0 || a->grid == 0) {
    snprintf(err, n, "gpu-sim: kernel %s: launch of %u blocks of %u threads", k->name, a->grid, a->block);
    return -1;
  }
  sim S, *s = &S;
  memset(s, 0, sizeof S);
  s->k = k;
  s->a = a;
  s->nt = (int)a->block;
  s->err = err;
  s->errn = n;
  s->val = tl_xcalloc((size_t)k->nins * (size_t)s->nt + 1, sizeof *s->val);
  s->var = tl_xcalloc((size_t)k->nvars * (size_t)s->nt + 1, sizeof *s->var);
  s->endof = tl_xcalloc((size_t)k->nins + 1, sizeof *s->endof);
  int depth = 0, maxd = 0;
  for (int32_t i = 0; i < k->nins; i++) {
    if (k->ins[i].op == GK_LOOP || k->ins[i].op == GK_IF) maxd = ++depth > maxd ? depth : maxd;
    if (k->ins[i].op == GK_END) {
      s->endof[k->ins[i].a] = i;
      depth--;
    }
  }
  s->masks = tl_xmalloc((size_t)(maxd + 2) * (size_t)s->nt);
  for (int i = 0; i < k->nshm; i++) {
    s->shm[i] = tl_xcalloc((size_t)k->shm_n[i], sizeof **s->shm);
    s->shsh[i] = tl_xmalloc((size_t)k->shm_n[i] * sizeof **s->shsh);
  }
  /* shadows of the buffers the kernel writes */
  int32_t maxbuf = 0;
  for (int i = 0; i < k->nbufs; i++) maxbuf = k->bufs[i] + 1 > maxbuf ? k->bufs[i] + 1 : maxbuf;
  for (int32_t i = 0; i < k->nins; i++)
    if (k->ins[i].op == GK_LOAD && k->ins[i].a + 1 > maxbuf) maxbuf = k->ins[i].a + 1;
  s->gsh = tl_xcalloc((size_t)maxbuf + 1, sizeof *s->gsh);
  for (int i = 0; i < k->nbufs; i++) {
    if (!k->buf_written[i]) continue;
    int64_t ne = a->numel[k->bufs[i]];
    s->gsh[k->bufs[i]] = tl_xmalloc((size_t)(ne > 0 ? ne : 1) * sizeof **s->gsh);
    for (int64_t e = 0; e < ne; e++) s->gsh[k->bufs[i]][e] = (shadow){-1, 0, 0, -1, 0, 0};
  }
  memset(s->masks, 1, (size_t)s->nt);
  int rc = 0;
  for (unsigned blk = 0; blk < a->grid && !rc; blk++) {
    s->blk = (int32_t)blk;
    s->phase = 0;
    for (int i = 0; i < k->nshm; i++)
      for (int32_t e = 0; e < k->shm_n[i]; e++) s->shsh[i][e] = (shadow){-1, 0, 0, -1, 0, 0};
    rc = run_range(s, 0, k->nins, s->masks, 0);
  }
  for (int i = 0; i < k->nshm; i++) {
    tl_free(s->shm[i]);
    tl_free(s->shsh[i]);
  }
  for (int32_t i = 0; i < maxbuf; i++) tl_free(s->gsh[i]);
  tl_free(s->gsh);
  tl_free(s->val);
  tl_free(s->var);
  tl_free(s->endof);
  tl_free(s->masks);
  return rc;
}
