/* tensor/npy.c - numpy's .npy format: a magic string, a version, a header
 * length (2 bytes in 1.0, 4 in 2.0 and 3.0), a Python dict literal with
 * 'descr', 'fortran_order' and 'shape', then the raw C-order data. Only what
 * tlaloc can hold is accepted; anything else is refused with the reason. */
#include "tensor/tensor.h"
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *skip_ws(const char *p, const char *e) {
  while (p < e && isspace((unsigned char)*p)) p++;
  return p;
}

/* Finds the value that follows 'key': in the header dict. */
static const char *dict_value(const char *h, const char *e, const char *key) {
  char pat[32];
  snprintf(pat, sizeof pat, "'%s'", key);
  size_t n = strlen(pat);
  for (const char *p = h; p + n <= e; p++) {
    if (memcmp(p, pat, n) == 0) {
      p = skip_ws(p + n, e);
      if (p < e && *p == ':') return skip_ws(p + 1, e);
      return NULL;
    }
  }
  return NULL;
}

static int descr_dtype(const char *d, size_t n, char *why, size_t wn) {
  struct { const char *s; int dt; } known[] = {
    {"|b1", TL_BOOL}, {"<i4", TL_I32}, {"<i8", TL_I64}, {"<f4", TL_F32}, {"<f8", TL_F64},
  };
  for (size_t i = 0; i < sizeof known / sizeof *known; i++)
    if (n == 3 && memcmp(d, known[i].s, 3) == 0) return known[i].dt;
  if (n >= 1 && d[0] == '>') snprintf(why, wn, "big-endian data ('%.*s') is not supported", (int)n, d);
  else if (n >= 2 && d[1] == 'O') snprintf(why, wn, "object arrays are not supported");
  else snprintf(why, wn, "dtype '%.*s' is not supported (bool, i4, i8, f4, f8 are)", (int)n, d);
  return -1;
}

tl_tensor *tl_npy_read_mem(const void *buf, size_t len, const char *what, char *err, size_t err_size) {
  const unsigned char *b = buf;
  if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0) {
    snprintf(err, err_size, "%s: not a .npy file (bad magic)", what);
    return NULL;
  }
  unsigned major = b[6];
  size_t hlen, off;
  if (major == 1) {
    hlen = (size_t)b[8] | (size_t)b[9] << 8;
    off = 10;
  } else if (major == 2 || major == 3) {
    if (len < 12) {
      snprintf(err, err_size, "%s: truncated header", what);
      return NULL;
    }
    hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    off = 12;
  } else {
    snprintf(err, err_size, "%s: unsupported .npy version %u.%u", what, major, b[7]);
    return NULL;
  }
  if (off + hlen > len) {
    snprintf(err, err_size, "%s: truncated header", what);
    return NULL;
  }
  const char *h = (const char *)b + off, *he = h + hlen;
  const char *v = dict_value(h, he, "descr");
  if (!v || *v != '\'') {
    snprintf(err, err_size, "%s: header has no 'descr' string", what);
    return NULL;
  }
  const char *ve = memchr(v + 1, '\'', (size_t)(he - v - 1));
  if (!ve) {
    snprintf(err, err_size, "%s: malformed 'descr'", what);
    return NULL;
  }
  char why[160];
  int dt = descr_dtype(v + 1, (size_t)(ve - v - 1), why, sizeof why);
  if (dt < 0) {
    snprintf(err, err_size, "%s: %s", what, why);
    return NULL;
  }
  v = dict_value(h, he, "fortran_order");
  if (!v) {
    snprintf(err, err_size, "%s: header has no 'fortran_order'", what);
    return NULL;
  }
  if ((size_t)(he - v) >= 4 && memcmp(v, "True", 4) == 0) {
    snprintf(err, err_size, "%s: Fortran-order arrays are not supported (save with np.ascontiguousarray)", what);
    return NULL;
  }
  v = dict_value(h, he, "shape");
  if (!v || *v != '(') {
    snprintf(err, err_size, "%s: header has no 'shape' tuple", what);
    return NULL;
  }
  int64_t dims[TL_MAX_RANK];
  int rank = 0;
  const char *p = v + 1;
  for (;;) {
    p = skip_ws(p, he);
    if (p >= he) {
      snprintf(err, err_size, "%s: malformed 'shape'", what);
      return NULL;
    }
    if (*p == ')') break;
    if (!isdigit((unsigned char)*p)) {
      snprintf(err, err_size, "%s: malformed 'shape'", what);
      return NULL;
    }
    if (rank >= TL_MAX_RANK) {
      snprintf(err, err_size, "%s: rank above %d is not supported", what, TL_MAX_RANK);
      return NULL;
    }
    errno = 0;
    char *end;
    long long d = strtoll(p, &end, 10);
    if (errno == ERANGE) {
      snprintf(err, err_size, "%s: dim out of range", what);
      return NULL;
    }
    dims[rank++] = d;
    p = skip_ws(end, he);
    if (p < he && *p == ',') p++;
  }
  char terr[160];
  tl_tensor *t = tl_tensor_new((tl_dtype)dt, rank, dims, terr, sizeof terr);
  if (!t) {
    snprintf(err, err_size, "%s: %s", what, terr);
    return NULL;
  }
  size_t bytes = (size_t)t->numel * tl_dtype_size((tl_dtype)dt);
  size_t data_off = off + hlen;
  if (len - data_off < bytes) {
    snprintf(err, err_size, "%s: data is truncated (%zu bytes, shape needs %zu)", what,
             len - data_off, bytes);
    tl_tensor_free(t);
    return NULL;
  }
  memcpy(t->data, b + data_off, bytes);
  if (dt == TL_BOOL)
    for (int64_t i = 0; i < t->numel; i++) ((uint8_t *)t->data)[i] = ((uint8_t *)t->data)[i] != 0;
  return t;
}

tl_tensor *tl_npy_read(const char *path, char *err, size_t err_size) {
  size_t len;
  char *buf = tl_read_file(path, &len, err, err_size);
  if (!buf) return NULL;
  tl_tensor *t = tl_npy_read_mem(buf, len, path, err, err_size);
  free(buf);
  return t;
}

int tl_npy_write(const char *path, const tl_tensor *t, char *err, size_t err_size) {
  static const char *const descr[] = {"|b1", "<i4", "<i8", "<f4", "<f8"};
  char dict[512];
  int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                   descr[t->dtype]);
  for (int i = 0; i < t->rank; i++)
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld,%s", (long long)t->dims[i],
                  i + 1 < t->rank ? " " : "");
  n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
  /* pad with spaces so the data starts on a 64-byte boundary; '\n' ends it */
  size_t pre = 10, total = pre + (size_t)n + 1;
  size_t pad = (64 - total % 64) % 64;
  size_t hlen = (size_t)n + pad + 1;
  FILE *f = fopen(path, "wb");
  if (!f) {
    snprintf(err, err_size, "%s: cannot write: %s", path, strerror(errno));
    return -1;
  }
  unsigned char head[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                            (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
  fwrite(head, 1, sizeof head, f);
  fwrite(dict, 1, (size_t)n, f);
  for (size_t i = 0; i < pad; i++) fputc(' ', f);
  fputc('\n', f);
  fwrite(t->data, tl_dtype_size((tl_dtype)t->dtype), (size_t)t->numel, f);
  if (fclose(f) != 0) {
    snprintf(err, err_size, "%s: write failed", path);
    return -1;
  }
  return 0;
}
