/* gen.h - private to check/: the random values check-rules draws, shared
 * by the rewrite-rule trials (check.c) and the derivative-rule trials
 * (check_grad.c): splitmix64, and floats that are zeros (both signs), small
 * integers (ties, exact values), normals, and in "wide" trials magnitudes
 * from tiny to huge. */
#ifndef TL_CHECK_GEN_H
#define TL_CHECK_GEN_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "tensor/tensor.h"

typedef struct rng { uint64_t s; } rng;
static inline uint64_t rnext(rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static inline int rint_(rng *r, int n) { return (int)(rnext(r) % (uint64_t)n); }
static inline double runi(rng *r) { return (double)(rnext(r) >> 11) * 0x1.0p-53; }
static inline double rnorm(rng *r) {
  double u = runi(r) + 1e-300, v = runi(r);
  return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}


/* A float: 0 (6%), -0 (3%), a small integer (21%), else a normal times 2,
 * or in a wide trial often a magnitude 10^-e .. 10^e (e 20 for f32, 30). */
static inline double gen_float(rng *r, bool f32, bool wide) {
  int k = rint_(r, 100);
  if (k < 6) return 0.0;
  if (k < 9) return -0.0;
  if (k < 30) return (double)(rint_(r, 9) - 4);
  if (!wide || k < 55) return rnorm(r) * 2;
  double e = f32 ? 20 : 30;
  double m = pow(10.0, (runi(r) * 2 - 1) * e);
  return rint_(r, 2) ? m : -m;
}
static inline int64_t gen_int(rng *r, tl_dtype dt, bool wide) {
  int k = rint_(r, 100);
  if (k < 60 || !wide) return rint_(r, 11) - 5;
  if (k < 85) return rint_(r, 2001) - 1000;
  int64_t big = dt == TL_I32 ? INT32_MAX : INT64_MAX;
  int64_t v = big / (1 + rint_(r, 3)) - rint_(r, 4);
  return rint_(r, 2) ? v : -v;
}

#endif
