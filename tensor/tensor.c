/* tensor/tensor.c - dtype facts and tensor allocation; see tensor.h. */
#include "tensor/tensor.h"
#include "util/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const dtype_names[TL_DTYPE_COUNT] = {"bool", "i32", "i64", "f32", "f64"};
static const size_t dtype_sizes[TL_DTYPE_COUNT] = {1, 4, 8, 4, 8};

const char *tl_dtype_name(tl_dtype dt) {
  return dt < TL_DTYPE_COUNT ? dtype_names[dt] : "<error>";
}

int tl_dtype_lookup(const char *name, size_t n) {
  for (int i = 0; i < TL_DTYPE_COUNT; i++)
    if (strlen(dtype_names[i]) == n && memcmp(dtype_names[i], name, n) == 0)
      return i;
  return -1;
}

size_t tl_dtype_size(tl_dtype dt) { return dt < TL_DTYPE_COUNT ? dtype_sizes[dt] : 0; }

int64_t tl_f64_to_i64(double x) {
  /* [-2^63, 2^63) converts; everything else is x86's "integer indefinite" */
  if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0)) return INT64_MIN;
  return (int64_t)x;
}

int32_t tl_f64_to_i32(double x) {
  if (!(x > -2147483649.0 && x < 2147483648.0)) return INT32_MIN;
  return (int32_t)x;
}

static tl_tensor *header(tl_dtype dt, int rank, const int64_t *dims, char *err, size_t err_size,
                         size_t *bytes) {
  if (rank < 0 || rank > TL_MAX_RANK) {
    snprintf(err, err_size, "rank %d is not supported (at most %d)", rank, TL_MAX_RANK);
    return NULL;
  }
  int64_t n = 1;
  bool overflow = false;
  for (int i = 0; i < rank; i++) {
    if (dims[i] < 0) {
      snprintf(err, err_size, "negative dim %lld", (long long)dims[i]);
      return NULL;
    }
    if (dims[i] && n > INT64_MAX / dims[i]) overflow = true;
    else n *= dims[i];
  }
  int64_t size = (int64_t)tl_dtype_size(dt);
  if (overflow || n > TL_TENSOR_MAX_BYTES / size) {
    snprintf(err, err_size, "tensor too large (more than %lld bytes)", (long long)TL_TENSOR_MAX_BYTES);
    return NULL;
  }
  tl_tensor *t = tl_xcalloc(1, sizeof *t);
  t->dtype = (uint8_t)dt;
  t->rank = (uint8_t)rank;
  if (rank) memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
  t->numel = n;
  *bytes = (size_t)(n * size);
  return t;
}

tl_tensor *tl_tensor_new(tl_dtype dt, int rank, const int64_t *dims, char *err, size_t err_size) {
  size_t bytes;
  tl_tensor *t = header(dt, rank, dims, err, err_size, &bytes);
  if (!t) return NULL;
  /* out of memory unwinds (util/alloc.h): the public call says so */
  t->data = tl_xcalloc(bytes ? bytes : 1, 1);
  t->owns = true;
  return t;
}

tl_tensor *tl_tensor_wrap(tl_dtype dt, int rank, const int64_t *dims, void *data) {
  char err[128];
  size_t bytes;
  tl_tensor *t = header(dt, rank, dims, err, sizeof err, &bytes);
  if (!t) return NULL;
  t->data = data;
  t->owns = false;
  return t;
}

tl_tensor *tl_tensor_copy(const tl_tensor *t) {
  char err[128];
  tl_tensor *c = tl_tensor_new((tl_dtype)t->dtype, t->rank, t->dims, err, sizeof err);
  if (c) memcpy(c->data, t->data, (size_t)t->numel * tl_dtype_size((tl_dtype)t->dtype));
  return c;
}

void tl_tensor_free(tl_tensor *t) {
  if (!t) return;
  if (t->owns) tl_free(t->data);
  tl_free(t);
}
