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

/* Finds the value that follows 'key': in the header dict h..e. Never
 * returns e itself: a non-NULL result can be read. */
static const char *dict_value(const char *h, const char *e, const char *key) {
  char pat[32];
  snprintf(pat, sizeof pat, "'%s'", key);
  size_t n = strlen(pat);
  for (const char *p = h; p + n <= e; p++) {
    if (memcmp(p, pat, n) == 0) {
      p = skip_ws(p + n, e);
      if (p < e && *p == ':') p = skip_ws(p + 1, e);
      else return NULL;
      return p < e ? p : NULL;
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

/* What a header says: the dtype, the shape and the data's size. */
typedef struct npy_head {
  int dtype, rank;
  int64_t dims[TL_MAX_RANK];
  size_t bytes;
} npy_head;

/* Headers longer than this are refused (numpy writes under 200 bytes and
 * itself refuses over 10000 by default). */
#define NPY_MAX_HEADER ((size_t)1 << 20)

/* The fixed part: magic, version, header length. b holds at least 12 bytes
 * or all of a shorter file (len). *off: where the header dict starts. */
static int npy_prefix(const unsigned char *b, size_t len, const char *what, size_t *off,
                      size_t *hlen, char *err, size_t err_size) {
  if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0) {
    snprintf(err, err_size, "%s: not a .npy file (bad magic)", what);
    return -1;
  }
  unsigned major = b[6];
  if (major == 1) {
    *hlen = (size_t)b[8] | (size_t)b[9] << 8;
    *off = 10;
  } else if (major == 2 || major == 3) {
    if (len < 12) {
      snprintf(err, err_size, "%s: truncated header", what);
      return -1;
    }
    *hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    *off = 12;
  } else {
    snprintf(err, err_size, "%s: unsupported .npy version %u.%u", what, major, b[7]);
    return -1;
  }
  if (*hlen > NPY_MAX_HEADER) {
    snprintf(err, err_size, "%s: header of %zu bytes is too long (at most %zu)", what, *hlen,
             NPY_MAX_HEADER);
    return -1;
  }
  return 0;
}

/* Parses the header dict h[0..hlen). Every scan stops at its end. */
static int npy_dict(const char *h, size_t hlen, const char *what, npy_head *hd, char *err,
                    size_t err_size) {
  const char *he = h + hlen;
  const char *v = dict_value(h, he, "descr");
  if (!v || *v != '\'') {
    snprintf(err, err_size, "%s: header has no 'descr' string", what);
    return -1;
  }
  const char *ve = memchr(v + 1, '\'', (size_t)(he - (v + 1)));
  if (!ve) {
    snprintf(err, err_size, "%s: malformed 'descr'", what);
    return -1;
  }
  char why[160];
  hd->dtype = descr_dtype(v + 1, (size_t)(ve - v - 1), why, sizeof why);
  if (hd->dtype < 0) {
    snprintf(err, err_size, "%s: %s", what, why);
    return -1;
  }
  v = dict_value(h, he, "fortran_order");
  if (!v) {
    snprintf(err, err_size, "%s: header has no 'fortran_order'", what);
    return -1;
  }
  if ((size_t)(he - v) >= 4 && memcmp(v, "True", 4) == 0) {
    snprintf(err, err_size, "%s: Fortran-order arrays are not supported (save with np.ascontiguousarray)", what);
    return -1;
  }
  v = dict_value(h, he, "shape");
  if (!v || *v != '(') {
    snprintf(err, err_size, "%s: header has no 'shape' tuple", what);
    return -1;
  }
  hd->rank = 0;
  const char *p = v + 1;
  for (;;) {
    p = skip_ws(p, he);
    if (p >= he || (*p != ')' && !isdigit((unsigned char)*p))) {
      snprintf(err, err_size, "%s: malformed 'shape'", what);
      return -1;
    }
    if (*p == ')') break;
    if (hd->rank >= TL_MAX_RANK) {
      snprintf(err, err_size, "%s: rank above %d is not supported", what, TL_MAX_RANK);
      return -1;
    }
    int64_t d = 0;
    for (; p < he && isdigit((unsigned char)*p); p++) {
      int digit = *p - '0';
      if (d > (INT64_MAX - digit) / 10) {
        snprintf(err, err_size, "%s: dim out of range", what);
        return -1;
      }
      d = d * 10 + digit;
    }
    hd->dims[hd->rank++] = d;
    p = skip_ws(p, he);
    if (p < he && *p == ',') p++;
  }
  /* the data's size, overflow-checked before anything is allocated */
  uint64_t numel = 1, esize = tl_dtype_size((tl_dtype)hd->dtype);
  bool zero = false;
  for (int i = 0; i < hd->rank; i++) {
    if (hd->dims[i] == 0) zero = true;
    else if (numel > UINT64_MAX / esize / (uint64_t)hd->dims[i]) {
      snprintf(err, err_size, "%s: shape too large", what);
      return -1;
    } else
      numel *= (uint64_t)hd->dims[i];
  }
  uint64_t bytes = zero ? 0 : numel * esize;
  if (bytes > SIZE_MAX) {
    snprintf(err, err_size, "%s: shape too large", what);
    return -1;
  }
  hd->bytes = (size_t)bytes;
  return 0;
}

/* A tensor of the header's dtype and shape, its data not yet written. */
static tl_tensor *npy_tensor(const npy_head *hd, const char *what, char *err, size_t err_size) {
  char terr[160];
  tl_tensor *t = tl_tensor_new((tl_dtype)hd->dtype, hd->rank, hd->dims, terr, sizeof terr);
  if (!t) snprintf(err, err_size, "%s: %s", what, terr);
  return t;
}

static void npy_fix_bools(tl_tensor *t) {
  if (t->dtype == TL_BOOL)
    for (int64_t i = 0; i < t->numel; i++) ((uint8_t *)t->data)[i] = ((uint8_t *)t->data)[i] != 0;
}

tl_tensor *tl_npy_read_mem(const void *buf, size_t len, const char *what, char *err, size_t err_size) {
  const unsigned char *b = buf;
  size_t off, hlen;
  if (npy_prefix(b, len, what, &off, &hlen, err, err_size)) return NULL;
  if (hlen > len - off) {
    snprintf(err, err_size, "%s: truncated header", what);
    return NULL;
  }
  npy_head hd;
  if (npy_dict((const char *)b + off, hlen, what, &hd, err, err_size)) return NULL;
  size_t data_off = off + hlen;
  if (len - data_off < hd.bytes) {
    snprintf(err, err_size, "%s: data is truncated (%zu bytes, shape needs %zu)", what,
             len - data_off, hd.bytes);
    return NULL;
  }
  tl_tensor *t = npy_tensor(&hd, what, err, err_size);
  if (!t) return NULL;
  if (hd.bytes) memcpy(t->data, b + data_off, hd.bytes);
  npy_fix_bools(t);
  return t;
}

/* The file is read in place: the prefix and header first, then, once the
 * shape is known to fit the file and the limit, the data straight into the
 * tensor. A pipe or device (size unknown) is read up to the shape's size. */
tl_tensor *tl_npy_read(const char *path, char *err, size_t err_size) {
  char why[256];
  int64_t size;
  FILE *f = tl_open_input(path, &size, why, sizeof why);
  if (!f) {
    snprintf(err, err_size, "%s: %s", path, why);
    return NULL;
  }
  tl_tensor *t = NULL;
  char *h = NULL;
  unsigned char pre[12];
  size_t got = fread(pre, 1, sizeof pre, f), off, hlen;
  if (npy_prefix(pre, got, path, &off, &hlen, err, err_size)) goto out;
  size_t have = got - off; /* header bytes already in pre */
  h = tl_xmalloc(hlen + 1);
  if (have > hlen) have = hlen;
  memcpy(h, pre + off, have);
  if (fread(h + have, 1, hlen - have, f) != hlen - have) {
    snprintf(err, err_size, "%s: truncated header", path);
    goto out;
  }
  npy_head hd;
  if (npy_dict(h, hlen, path, &hd, err, err_size)) goto out;
  uint64_t data_off = (uint64_t)off + hlen;
  if (size >= 0 && (uint64_t)size - data_off < hd.bytes) {
    snprintf(err, err_size, "%s: data is truncated (%llu bytes, shape needs %zu)", path,
             (unsigned long long)((uint64_t)size - data_off), hd.bytes);
    goto out;
  }
  if (hd.bytes > TL_READ_MAX_DATA) {
    snprintf(err, err_size, "%s: the data has %zu bytes, more than the input limit of %zu MiB",
             path, hd.bytes, TL_READ_MAX_DATA >> 20);
    goto out;
  }
  if (!(t = npy_tensor(&hd, path, err, err_size))) goto out;
  size_t r = hd.bytes ? fread(t->data, 1, hd.bytes, f) : 0;
  if (ferror(f)) {
    snprintf(err, err_size, "%s: read error: %s", path, strerror(errno));
    tl_tensor_free(t);
    t = NULL;
  } else if (r < hd.bytes) {
    snprintf(err, err_size, "%s: data is truncated (%zu bytes, shape needs %zu)", path, r, hd.bytes);
    tl_tensor_free(t);
    t = NULL;
  } else {
    npy_fix_bools(t);
  }
out:
  tl_free(h);
  fclose(f);
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
