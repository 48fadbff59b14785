/* driver.c - scripts/gpu-check.sh's differential check of one program on a
 * GPU: runs the AOT launcher `model` (model.h, model_launch.c, written by
 * `tlaloc compile --target ptx --name model`) on the inputs DIR/in/NAME.npy
 * and compares each output with DIR/expected/NAME.npy, which the reference
 * interpreter computed where the program was prepared (scripts/gpu-prepare.sh).
 * Plain C11 and libc: no tlaloc, no LLVM, no numpy.
 *
 *   cc -O2 -I DIR driver.c DIR/model_launch.c -ldl -lpthread -lm -o run && ./run DIR
 *
 * A program whose run the interpreter refused (DIR/expect_error holds its
 * message) must fail with a run-time error (a return code > 0).
 *
 * Prints one line: "ok DIR: ...", "FAIL DIR: ..." or "nogpu DIR: <why>";
 * exit 0, 1, or 3 (no driver or no GPU). Tolerance: |a - b| <= rtol
 * (|a| + |b|) + rtol * scale, rtol 1e-4 for f32 (1e-10 for f64, unless the
 * program computes in f32 somewhere), scale the largest finite |expected|
 * of the output; NaN only against NaN, inf only against the same inf;
 * integers and bools exactly. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int esize[5] = {1, 4, 8, 4, 8};
static const char *const descr[5] = {"|b1", "<i4", "<i8", "<f4", "<f8"};

/* Reads a C-order little-endian .npy of one of the five dtypes. */
static int npy_read(const char *path, tlaloc_tensor *t) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  unsigned char pre[10];
  if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6)) {
    fclose(f);
    return -1;
  }
  size_t hl = pre[8] | (size_t)pre[9] << 8;
  if (pre[6] >= 2) { /* version 2: a 4-byte header length */
    unsigned char more[2];
    if (fread(more, 1, 2, f) != 2) { fclose(f); return -1; }
    hl |= (size_t)more[0] << 16 | (size_t)more[1] << 24;
  }
  char *h = calloc(hl + 1, 1);
  if (!h || fread(h, 1, hl, f) != hl) { free(h); fclose(f); return -1; }
  int dt = -1;
  for (int i = 0; i < 5; i++)
    if (strstr(h, descr[i])) dt = i;
  if (dt < 0 && strstr(h, "'|u1'")) dt = 0;
  char *shape = strstr(h, "'shape': (");
  if (dt < 0 || !shape || strstr(h, "'fortran_order': True")) { free(h); fclose(f); return -1; }
  t->dtype = dt;
  t->rank = 0;
  int64_t n = 1;
  for (char *s = shape + 10; *s && *s != ')';) {
    while (*s == ' ' || *s == ',') s++;
    if (*s == ')') break;
    t->dims[t->rank] = strtoll(s, &s, 10);
    n *= t->dims[t->rank++];
  }
  free(h);
  t->data = malloc((size_t)(n ? n : 1) * (size_t)esize[dt]);
  size_t got = fread(t->data, (size_t)esize[dt], (size_t)n, f);
  fclose(f);
  return got == (size_t)n ? 0 : -1;
}

static double get(const tlaloc_tensor *t, int64_t i) {
  switch (t->dtype) {
  case 0: return ((const unsigned char *)t->data)[i];
  case 1: return ((const int32_t *)t->data)[i];
  case 2: return (double)((const int64_t *)t->data)[i];
  case 3: return ((const float *)t->data)[i];
  default: return ((const double *)t->data)[i];
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: run DIR\n");
    return 2;
  }
  const char *dir = argv[1];
  char path[4096];
  tlaloc_tensor in[model_NUM_INPUTS + 1], out[model_NUM_OUTPUTS + 1], want[model_NUM_OUTPUTS + 1];
  int f32 = 0, expect_error = 0;
  snprintf(path, sizeof path, "%s/expect_error", dir);
  FILE *ef = fopen(path, "r");
  if (ef) {
    expect_error = 1;
    fclose(ef);
  }
  for (int i = 0; i < model_NUM_INPUTS; i++) {
    snprintf(path, sizeof path, "%s/in/%s.npy", dir, model_input_names_[i]);
    if (npy_read(path, &in[i])) {
      printf("FAIL %s: cannot read %s\n", dir, path);
      return 1;
    }
    f32 |= in[i].dtype == 3;
  }
  for (int i = 0; i < model_NUM_OUTPUTS && !expect_error; i++) {
    snprintf(path, sizeof path, "%s/expected/%s.npy", dir, model_output_names_[i]);
    if (npy_read(path, &want[i])) {
      printf("FAIL %s: cannot read %s\n", dir, path);
      return 1;
    }
    f32 |= want[i].dtype == 3;
  }
  if (model_init()) {
    printf("nogpu %s: %s\n", dir, model_error());
    return 3;
  }
  int rc = model(in, out);
  if (expect_error) {
    if (rc > 0) {
      printf("ok %s: fails as the interpreter does (code %d: node %d, kind %d) on %s\n", dir, rc, rc >> 4, rc & 15,
             model_device_name());
      return 0;
    }
    printf("FAIL %s: the interpreter refused this run, the GPU returned %d\n", dir, rc);
    return 1;
  }
  if (rc) {
    printf("FAIL %s: the program returned %d: %s\n", dir, rc, model_error());
    return 1;
  }
  double worst = 0;
  int64_t total = 0;
  for (int o = 0; o < model_NUM_OUTPUTS; o++) {
    const tlaloc_tensor *a = &want[o], *b = &out[o];
    int64_t n = 1;
    for (int d = 0; d < a->rank; d++) n *= a->dims[d];
    if (a->dtype != b->dtype || a->rank != b->rank || memcmp(a->dims, b->dims, (size_t)a->rank * sizeof *a->dims)) {
      printf("FAIL %s: output %s: dtype or shape differs\n", dir, model_output_names_[o]);
      return 1;
    }
    double rtol = a->dtype == 3 || (a->dtype == 4 && f32) ? 1e-4 : 1e-10, scale = 0;
    for (int64_t i = 0; i < n; i++)
      if (isfinite(get(a, i)) && fabs(get(a, i)) > scale) scale = fabs(get(a, i));
    for (int64_t i = 0; i < n; i++) {
      double x = get(a, i), y = get(b, i);
      int ok;
      if (a->dtype <= 2) ok = x == y;
      else if (isnan(x) || isnan(y)) ok = isnan(x) && isnan(y);
      else if (isinf(x) || isinf(y)) ok = x == y;
      else {
        double e = fabs(x - y) / (fabs(x) + fabs(y) + scale + 1e-300);
        if (e > worst) worst = e;
        ok = fabs(x - y) <= rtol * (fabs(x) + fabs(y)) + rtol * scale;
      }
      if (!ok) {
        printf("FAIL %s: output %s element %lld: expected %.9g, the GPU gave %.9g\n", dir, model_output_names_[o],
               (long long)i, x, y);
        return 1;
      }
    }
    total += n;
  }
  printf("ok %s: %d outputs, %lld values match the interpreter (worst relative error %.2g) on %s\n", dir,
         model_NUM_OUTPUTS, (long long)total, worst, model_device_name());
  return 0;
}
