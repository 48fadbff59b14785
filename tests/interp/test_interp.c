/* test_interp.c - .npy reading and writing, hand-checked interpreter
 * results, and two graphs run on two threads at once. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "interp/interp.h"
#include "ir/tg.h"
#include "util/util.h"
#include "tests/common/tltest.h"

static tl_graph *parse(const char *src) { return tlt_parse(src, NULL); }

/* ---- .npy -------------------------------------------------------------- */

static char *tmp_path(const char *name) {
  static char buf[256];
  snprintf(buf, sizeof buf, "/tmp/tl-npy-%d-%s", (int)getpid(), name);
  return buf;
}

Test(npy, round_trip_every_dtype) {
  for (int dt = 0; dt < TL_DTYPE_COUNT; dt++) {
    int64_t dims[3] = {2, 0 + 3, 4};
    char err[256];
    tl_tensor *t = tl_tensor_new((tl_dtype)dt, 3, dims, err, sizeof err);
    cr_assert(t, "%s", err);
    for (int64_t i = 0; i < t->numel; i++) tl_tensor_set_i64(t, i, (i * 7) % 5 - (dt == TL_BOOL ? 0 : 2));
    const char *p = tmp_path("rt.npy");
    cr_assert_eq(tl_npy_write(p, t, err, sizeof err), 0, "%s", err);
    tl_tensor *u = tl_npy_read(p, err, sizeof err);
    cr_assert(u, "%s", err);
    cr_expect_eq(u->dtype, t->dtype);
    cr_expect_eq(u->rank, 3);
    cr_expect_eq(u->numel, t->numel);
    cr_expect_eq(memcmp(u->data, t->data, (size_t)t->numel * tl_dtype_size((tl_dtype)dt)), 0);
    tl_tensor_free(t);
    tl_tensor_free(u);
    unlink(p);
  }
}

Test(npy, scalar_and_empty_shapes) {
  char err[256];
  tl_tensor *s = tl_tensor_new(TL_F64, 0, NULL, err, sizeof err);
  ((double *)s->data)[0] = -0.0;
  const char *p = tmp_path("s.npy");
  cr_assert_eq(tl_npy_write(p, s, err, sizeof err), 0);
  tl_tensor *u = tl_npy_read(p, err, sizeof err);
  cr_assert(u, "%s", err);
  cr_expect_eq(u->rank, 0);
  cr_expect(signbit(((double *)u->data)[0]));
  tl_tensor_free(s);
  tl_tensor_free(u);
  int64_t d0[2] = {0, 5};
  tl_tensor *e = tl_tensor_new(TL_I32, 2, d0, err, sizeof err);
  cr_assert_eq(tl_npy_write(p, e, err, sizeof err), 0);
  u = tl_npy_read(p, err, sizeof err);
  cr_assert(u, "%s", err);
  cr_expect_eq(u->numel, 0);
  cr_expect_eq(u->dims[1], 5);
  tl_tensor_free(e);
  tl_tensor_free(u);
  unlink(p);
}

/* A .npy file image with the given format version and header dict. */
static size_t make_npy(unsigned char *buf, int major, const char *dict, const void *data, size_t n) {
  size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
  size_t total = pre + dl + 1, pad = (64 - total % 64) % 64, hlen = dl + pad + 1;
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = (unsigned char)major;
  buf[7] = 0;
  if (major == 1) {
    buf[8] = (unsigned char)(hlen & 0xff);
    buf[9] = (unsigned char)(hlen >> 8);
  } else {
    buf[8] = (unsigned char)(hlen & 0xff);
    buf[9] = (unsigned char)(hlen >> 8);
    buf[10] = buf[11] = 0;
  }
  memcpy(buf + pre, dict, dl);
  memset(buf + pre + dl, ' ', pad);
  buf[pre + dl + pad] = '\n';
  memcpy(buf + pre + hlen, data, n);
  return pre + hlen + n;
}

Test(npy, version_2_is_read) {
  unsigned char buf[512];
  float v[3] = {1.5f, -2.0f, 3.25f};
  size_t n = make_npy(buf, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", v, sizeof v);
  char err[256];
  tl_tensor *t = tl_npy_read_mem(buf, n, "v2.npy", err, sizeof err);
  cr_assert(t, "%s", err);
  cr_expect_eq(t->dtype, TL_F32);
  cr_expect_eq(((float *)t->data)[2], 3.25f);
  tl_tensor_free(t);
}

Test(npy, unsupported_layouts_are_refused_with_reasons) {
  struct { const char *dict, *msg; } bad[] = {
    {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", "Fortran-order arrays are not supported"},
    {"{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", "big-endian data ('>f4') is not supported"},
    {"{'descr': '|O', 'fortran_order': False, 'shape': (4,), }", "object arrays are not supported"},
    {"{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", "dtype '<c8' is not supported"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }", "data is truncated"},
    {"{'fortran_order': False, 'shape': (4,), }", "header has no 'descr' string"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (a,), }", "malformed 'shape'"},
  };
  float data[4] = {0};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    unsigned char buf[512];
    size_t n = make_npy(buf, 1, bad[i].dict, data, sizeof data);
    char err[256] = "";
    tl_tensor *t = tl_npy_read_mem(buf, n, "bad.npy", err, sizeof err);
    cr_expect_null(t, "case %zu accepted", i);
    cr_expect(strstr(err, bad[i].msg) != NULL, "case %zu: '%s' lacks '%s'", i, err, bad[i].msg);
    cr_expect(strncmp(err, "bad.npy: ", 9) == 0, "case %zu: message does not name the file: %s", i, err);
    tl_tensor_free(t);
  }
  char err[256];
  cr_expect_null(tl_npy_read_mem("hello", 5, "x.npy", err, sizeof err));
  cr_expect(strstr(err, "not a .npy file") != NULL);
}

/* A v1.0 image of exactly prefix + header + data bytes, in a buffer of its
 * own size (so the sanitizer build sees any read past it). */
static unsigned char *npy_exact(const char *header, size_t hlen, const void *data, size_t n,
                                size_t *len) {
  *len = 10 + hlen + n;
  unsigned char *b = tl_xmalloc(*len);
  memcpy(b, "\x93NUMPY\x01\x00", 8);
  b[8] = (unsigned char)(hlen & 0xff);
  b[9] = (unsigned char)(hlen >> 8);
  memcpy(b + 10, header, hlen);
  if (n) memcpy(b + 10 + hlen, data, n);
  return b;
}

static void expect_refused(const unsigned char *b, size_t len, const char *msg) {
  char err[256] = "";
  tl_tensor *t = tl_npy_read_mem(b, len, "h.npy", err, sizeof err);
  cr_expect_null(t, "accepted a header that should say '%s'", msg);
  cr_expect(strstr(err, msg) != NULL, "'%s' lacks '%s'", err, msg);
  tl_tensor_free(t);
}

Test(npy, header_scans_stay_inside_the_header) {
  size_t len;
  /* the dict ends right after "'descr':": no value to read */
  unsigned char *b = npy_exact("{'descr':", 9, NULL, 0, &len);
  expect_refused(b, len, "header has no 'descr' string");
  tl_free(b);
  /* a quote right after the header must not be taken for the value, nor
   * the data searched for its closing quote */
  size_t big = 1 << 20;
  char *data = tl_xmalloc(big);
  memset(data, 'A', big);
  data[0] = '\'';
  b = npy_exact("{'descr':   ", 12, data, big, &len);
  expect_refused(b, len, "header has no 'descr' string");
  tl_free(b);
  tl_free(data);
  /* a shape cut short: its digits end at the header's end, not in the data */
  const char *h = "{'descr': '<f8', 'fortran_order': False, 'shape': (1";
  b = npy_exact(h, strlen(h), "2345678", 7, &len);
  expect_refused(b, len, "malformed 'shape'");
  tl_free(b);
  h = "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }";
  b = npy_exact(h, strlen(h), NULL, 0, &len);
  expect_refused(b, len, "dim out of range");
  tl_free(b);
  h = "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }";
  b = npy_exact(h, strlen(h), NULL, 0, &len);
  expect_refused(b, len, "shape too large");
  tl_free(b);
  /* the descr string never closes inside the header */
  h = "{'descr': '<f8";
  b = npy_exact(h, strlen(h), "'", 1, &len);
  expect_refused(b, len, "malformed 'descr'");
  tl_free(b);
}

/* 136 bytes declaring a billion f8: refused as truncated before the 8 GB
 * the shape asks for are allocated (tests/e2e/cli.sh runs this under a
 * memory limit). */
Test(npy, size_is_checked_before_allocating) {
  unsigned char buf[512];
  size_t n = make_npy(buf, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000,), }",
                      "\0\0\0\0\0\0\0\0", 8);
  char err[256];
  cr_expect_null(tl_npy_read_mem(buf, n, "big.npy", err, sizeof err));
  cr_expect(strstr(err, "data is truncated (8 bytes, shape needs 8000000000)") != NULL, "%s", err);
  const char *p = tmp_path("big.npy");
  FILE *f = fopen(p, "wb");
  cr_assert(f);
  fwrite(buf, 1, n, f);
  fclose(f);
  cr_expect_null(tl_npy_read(p, err, sizeof err));
  cr_expect(strstr(err, "data is truncated (8 bytes, shape needs 8000000000)") != NULL, "%s", err);
  unlink(p);
}

Test(npy, endless_and_odd_files_are_refused) {
  char err[256];
  cr_expect_null(tl_npy_read("/dev/zero", err, sizeof err));
  cr_expect(strstr(err, "/dev/zero: not a .npy file") != NULL, "%s", err);
  cr_expect_null(tl_npy_read("/tmp", err, sizeof err));
  cr_expect(strstr(err, "/tmp: is a folder") != NULL, "%s", err);
  /* a header longer than any numpy writes */
  unsigned char pre[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0, 0, 0, 0x40};
  cr_expect_null(tl_npy_read_mem(pre, sizeof pre, "h.npy", err, sizeof err));
  cr_expect(strstr(err, "header of 1073741824 bytes is too long") != NULL, "%s", err);
}

/* ---- interpreter, hand-checked ---------------------------------------- */

static tl_tensor *run1(const char *src, tl_tensor *in0, char *err, size_t n) {
  tl_graph *g = parse(src);
  cr_assert(g);
  tl_tensor *ins[1] = {in0}, *outs[1] = {NULL};
  int64_t syms[8];
  for (int i = 0; i < 8; i++) syms[i] = -1;
  tl_tensor *res = NULL;
  if (tl_bind_inputs(g, ins, syms, err, n) == 0 && tl_interp_run(g, ins, syms, outs, err, n) == 0)
    res = outs[0];
  tl_graph_free(g);
  return res;
}

Test(interp, integer_wrapping_and_division_by_zero) {
  int32_t v[4] = {INT32_MIN, 7, -7, INT32_MAX};
  int64_t d = 4;
  tl_tensor *x = tl_tensor_wrap(TL_I32, 1, &d, v);
  char err[256];
  tl_tensor *y = run1("(graph g (in x i32 [4]) (out y (floor_divide x -1)))", x, err, sizeof err);
  cr_assert(y, "%s", err);
  cr_expect_eq(((int32_t *)y->data)[0], INT32_MIN);
  cr_expect_eq(((int32_t *)y->data)[1], -7);
  tl_tensor_free(y);
  y = run1("(graph g (in x i32 [4]) (out y (remainder x 0)))", x, err, sizeof err);
  cr_assert(y, "%s", err);
  for (int i = 0; i < 4; i++) cr_expect_eq(((int32_t *)y->data)[i], 0);
  tl_tensor_free(y);
  y = run1("(graph g (in x i32 [4]) (out y (add x 1)))", x, err, sizeof err);
  cr_assert(y);
  cr_expect_eq(((int32_t *)y->data)[3], INT32_MIN);
  cr_expect_eq(y->dtype, TL_I32);
  tl_tensor_free(y);
  y = run1("(graph g (in x i32 [4]) (out y (floor_divide x 2)))", x, err, sizeof err);
  cr_assert(y);
  cr_expect_eq(((int32_t *)y->data)[2], -4); /* floor, not truncation */
  tl_tensor_free(y);
  y = run1("(graph g (in x i32 [4]) (out y (pow x -1)))", x, err, sizeof err);
  cr_expect_null(y);
  cr_expect(strstr(err, "integers to negative integer powers are not allowed") != NULL, "%s", err);
  tl_tensor_free(x);
}

Test(interp, softmax_rows_and_nonfinite) {
  float v[6] = {1, 2, 3, -INFINITY, -INFINITY, 0};
  int64_t d[2] = {2, 3};
  tl_tensor *x = tl_tensor_wrap(TL_F32, 2, d, v);
  char err[256];
  tl_tensor *y = run1("(graph g (in x f32 [2 3]) (out y (log_softmax x :axis 1)))", x, err, sizeof err);
  cr_assert(y, "%s", err);
  float *o = y->data;
  double s = exp(1) + exp(2) + exp(3);
  cr_expect_float_eq(o[0], (float)(1 - log(s)), 1e-6);
  cr_expect(isinf(o[3]) && o[3] < 0);
  cr_expect_float_eq(o[5], 0.0f, 1e-7);
  tl_tensor_free(y);
  y = run1("(graph g (in x f32 [2 3]) (out y (logsumexp x :axis 1)))", x, err, sizeof err);
  cr_assert(y, "%s", err);
  cr_expect_float_eq(((float *)y->data)[0], (float)log(s), 1e-6);
  cr_expect_float_eq(((float *)y->data)[1], 0.0f, 1e-7);
  tl_tensor_free(y);
  tl_tensor_free(x);
}

Test(interp, max_propagates_nan_and_empty_sum_is_zero) {
  double v[3] = {1, NAN, 3};
  int64_t d = 3;
  tl_tensor *x = tl_tensor_wrap(TL_F64, 1, &d, v);
  char err[256];
  tl_tensor *y = run1("(graph g (in x f64 [3]) (out y (max x)))", x, err, sizeof err);
  cr_assert(y);
  cr_expect(isnan(((double *)y->data)[0]));
  tl_tensor_free(y);
  y = run1("(graph g (in x f64 [3]) (out y (sum (slice x :start 3))))", x, err, sizeof err);
  cr_assert(y, "%s", err);
  cr_expect_eq(((double *)y->data)[0], 0.0);
  tl_tensor_free(y);
  tl_tensor_free(x);
}

Test(interp, matmul_batch_broadcast) {
  float a[2 * 2 * 3];
  for (int i = 0; i < 12; i++) a[i] = (float)i;
  int64_t da[3] = {2, 2, 3};
  tl_tensor *x = tl_tensor_wrap(TL_F32, 3, da, a);
  char err[256];
  tl_tensor *y = run1("(graph g (in a f32 [2 2 3]) (out y (matmul a (const f32 [3 2] -1 0 1 -1 0 1))))", x,
                      err, sizeof err);
  cr_assert(y, "%s", err);
  cr_expect_eq(y->rank, 3);
  /* row [6 7 8] @ [[-1 0] [1 -1] [0 1]] = [1 1] */
  cr_expect_float_eq(((float *)y->data)[4], 1.0f, 1e-6);
  cr_expect_float_eq(((float *)y->data)[5], 1.0f, 1e-6);
  tl_tensor_free(y);
  tl_tensor_free(x);
}

/* ---- no global state: two graphs on two threads ----------------------- */

static void *worker(void *arg) {
  int k = (int)(intptr_t)arg;
  char src[256];
  snprintf(src, sizeof src, "(graph g%d (in x f64 [n]) (out y (sum (mul x %d.0))))", k, k + 2);
  long ok = 1;
  for (int rep = 0; rep < 200 && ok; rep++) {
    tl_graph *g = parse(src);
    double v[5] = {1, 2, 3, 4, 5};
    int64_t d = 5;
    tl_tensor *x = tl_tensor_wrap(TL_F64, 1, &d, v), *ins[1] = {x}, *outs[1];
    int64_t syms[1] = {-1};
    char err[128];
    ok = g && tl_bind_inputs(g, ins, syms, err, sizeof err) == 0 &&
         tl_interp_run(g, ins, syms, outs, err, sizeof err) == 0 &&
         ((double *)outs[0]->data)[0] == 15.0 * (k + 2);
    if (ok) tl_tensor_free(outs[0]);
    tl_tensor_free(x);
    tl_graph_free(g);
  }
  return (void *)ok;
}

Test(threads, two_graphs_on_two_threads) {
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
  for (int i = 0; i < 2; i++) {
    void *r;
    pthread_join(t[i], &r);
    cr_expect(r == (void *)1, "thread %d computed a wrong result", i);
  }
}
