/* tensor/tensor.h - dtypes and dense C-order tensors: the values the
 * interpreter computes, graph constants hold and .npy files carry
 * (tensor.c, npy.c). Below the IR: a tensor knows its dtype and concrete
 * dims, nothing about graphs or ops. Dims are concrete here (symbols are
 * bound before a graph runs). Data is owned by the tensor unless it was
 * wrapped.
 *
 * Element access is by dtype through tl_tensor_get_f64/get_i64/set_*, so
 * code that is not performance-critical (the interpreter, tests) can be
 * written once for every dtype without losing i64 precision. */
#ifndef TL_TENSOR_H
#define TL_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TL_MAX_RANK 8

typedef enum tl_dtype {
  TL_BOOL, TL_I32, TL_I64, TL_F32, TL_F64,
  TL_DTYPE_COUNT,
  TL_DTYPE_ERROR = 255 /* poisoned: an earlier error, do not report again */
} tl_dtype;

const char *tl_dtype_name(tl_dtype dt);
int tl_dtype_lookup(const char *name, size_t n); /* -1 when unknown */
size_t tl_dtype_size(tl_dtype dt);
static inline bool tl_dtype_is_float(tl_dtype dt) { return dt == TL_F32 || dt == TL_F64; }
static inline bool tl_dtype_is_int(tl_dtype dt) { return dt == TL_I32 || dt == TL_I64; }

typedef struct tl_tensor {
  uint8_t dtype;
  uint8_t rank;
  bool owns;
  int64_t dims[TL_MAX_RANK];
  int64_t numel;
  void *data;
} tl_tensor;

/* Largest tensor the interpreter will allocate (bytes); bigger requests are
 * refused with a message instead of exhausting memory. */
#define TL_TENSOR_MAX_BYTES ((int64_t)1 << 33)

/* New zero-filled tensor. NULL (with a message in err) when the size
 * overflows or exceeds TL_TENSOR_MAX_BYTES or memory is exhausted. */
tl_tensor *tl_tensor_new(tl_dtype dt, int rank, const int64_t *dims,
                         char *err, size_t err_size);
/* Wraps caller-owned memory; tl_tensor_free does not free data. */
tl_tensor *tl_tensor_wrap(tl_dtype dt, int rank, const int64_t *dims, void *data);
tl_tensor *tl_tensor_copy(const tl_tensor *t);
void tl_tensor_free(tl_tensor *t);

static inline double tl_tensor_get_f64(const tl_tensor *t, int64_t i) {
  switch (t->dtype) {
  case TL_BOOL: return ((const uint8_t *)t->data)[i] != 0;
  case TL_I32: return ((const int32_t *)t->data)[i];
  case TL_I64: return (double)((const int64_t *)t->data)[i];
  case TL_F32: return ((const float *)t->data)[i];
  default: return ((const double *)t->data)[i];
  }
}

/* Float to integer follows x86 (what numpy does there): NaN and values out
 * of range become the most negative integer. */
int64_t tl_f64_to_i64(double x);
int32_t tl_f64_to_i32(double x);

static inline int64_t tl_tensor_get_i64(const tl_tensor *t, int64_t i) {
  switch (t->dtype) {
  case TL_BOOL: return ((const uint8_t *)t->data)[i] != 0;
  case TL_I32: return ((const int32_t *)t->data)[i];
  case TL_I64: return ((const int64_t *)t->data)[i];
  case TL_F32: return tl_f64_to_i64(((const float *)t->data)[i]);
  default: return tl_f64_to_i64(((const double *)t->data)[i]);
  }
}

static inline void tl_tensor_set_f64(tl_tensor *t, int64_t i, double v) {
  switch (t->dtype) {
  case TL_BOOL: ((uint8_t *)t->data)[i] = v != 0; break;
  case TL_I32: ((int32_t *)t->data)[i] = tl_f64_to_i32(v); break;
  case TL_I64: ((int64_t *)t->data)[i] = tl_f64_to_i64(v); break;
  case TL_F32: ((float *)t->data)[i] = (float)v; break;
  default: ((double *)t->data)[i] = v; break;
  }
}

/* Integers wrap modulo 2^bits, as numpy's do. */
static inline void tl_tensor_set_i64(tl_tensor *t, int64_t i, int64_t v) {
  switch (t->dtype) {
  case TL_BOOL: ((uint8_t *)t->data)[i] = v != 0; break;
  case TL_I32: ((int32_t *)t->data)[i] = (int32_t)(uint32_t)(uint64_t)v; break;
  case TL_I64: ((int64_t *)t->data)[i] = v; break;
  case TL_F32: ((float *)t->data)[i] = (float)v; break;
  default: ((double *)t->data)[i] = (double)v; break;
  }
}

/* .npy files (format versions 1.0, 2.0 and 3.0 read; 1.0 written: tlaloc's
 * headers are always short). Little-endian, C order, dtypes b1 i4 i8 f4 f8.
 * On error returns NULL / -1 and writes "path: message" to err. */
tl_tensor *tl_npy_read(const char *path, char *err, size_t err_size);
tl_tensor *tl_npy_read_mem(const void *buf, size_t len, const char *what,
                           char *err, size_t err_size);
int tl_npy_write(const char *path, const tl_tensor *t, char *err, size_t err_size);

#endif
