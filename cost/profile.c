/* cost/profile.c - the machine profile of the time model: defaults, file
 * format, and the per-kernel roofline. See profile.h. */
#include "cost/profile.h"

#include <errno.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* f32 exp and tanh without a profile (or a profile without the vmath
 * keys): tlaloc's own kernels on the CPU kind where `tlaloc calibrate` has
 * chosen them in every run so far, AMD family 26 (Zen 5: exp 0.27 ns an
 * element against libmvec's 0.40, tanh 0.29 against 0.37; docs/calibrate.md),
 * libmvec on every other CPU: faster in the exp/tanh chain on Sapphire
 * Rapids, and the sound choice where nothing was measured. */
static unsigned default_own_math(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  unsigned a, b, c, d;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
  bool amd = b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u; /* "AuthenticAMD" */
  if (!amd || !__get_cpuid(1, &a, &b, &c, &d)) return 0;
  unsigned family = (a >> 8) & 0xfu;
  if (family == 0xfu) family += (a >> 20) & 0xffu;
  return family == 26 ? TL_OWN_EXP32 | TL_OWN_TANH32 : 0;
#else
  return 0;
#endif
}

void tl_profile_default(tl_profile *p) {
  memset(p, 0, sizeof *p);
  p->own_math = default_own_math();
  p->measured = false;
  snprintf(p->cpu, sizeof p->cpu, "%s", "defaults (reference 2-vCPU AVX-512 VM)");
  /* ../shared/bench/machine-baselines.md: triad 15-16 GB/s on one thread,
   * 25-32 on two; sgemm 74-76 GFLOP/s, dgemm 37 (OpenBLAS as Debian ships it). */
  p->threads = 2;
  p->bw_1 = 15.5e9;
  p->bw_all = 28e9;
  p->flops_1 = 32e9;  /* 16-wide f32 FMA at ~2 GHz, one port, half-used */
  p->flops_all = 64e9;
  p->gemm_f32 = 75e9;
  /* OpenBLAS on the reference VM: 100 products of [64 256] x [256 256]
   * ran at 0.74 of one [6400 256] x [256 256] product's rate on 2 threads
   * (22); `tlaloc calibrate --quick` measures 11 on one thread (32 rows) */
  p->gemm_half = 16;
  p->gemm_f64 = 37e9;
  p->kernel_overhead = 1e-6;
  p->par_overhead = 3e-6;
  p->run_overhead = 1e-6;
  p->parallel_min_elems = 1 << 16;
  p->f64_factor = 2.0;
  p->row_ns = 0;
  p->fault_bw = 5e9;
  p->nlevels = 0;
  /* Vectorised libmvec throughput on one thread, ns per f32 element (the
   * op table's NS column; the fused exp+tanh chain measured ~1.2 ns per
   * element in bench-backend). */
  for (int op = 0; op < TL_OP_COUNT; op++) p->elem_ns[op] = tl_ops[op].elem_ns;
  /* An H100/H200-class GPU: a device-to-device copy moves ~3.0 TB/s on an
   * H100 SXM and ~4.3 TB/s on an H200 (read plus written; the datasheets
   * say 3.35 and 4.8 peak), 3.5e12 is between; f32 FMA 67 TFLOP/s peak and
   * f64 34 (half of each, sustained); cuBLAS SGEMM without TF32 ~50
   * TFLOP/s, DGEMM ~50 on the tensor cores; a math function's element some
   * 1500 times faster than one CPU thread's (4e12 exp/s against 0.5 ns);
   * ~4 us per launch and ~15 us per call for the stream synchronisation;
   * PCIe 5 x16 from pageable memory ~25 GB/s, 10 us per copy. */
  p->gpu_bw = 3.5e12;
  p->gpu_flops = 33e12;
  p->gpu_flops_f64 = 17e12;
  p->gpu_gemm_f32 = 50e12;
  p->gpu_gemm_f64 = 50e12;
  p->gpu_math_factor = 1500;
  p->gpu_launch = 4e-6;
  p->gpu_sync = 15e-6;
  p->link_bw = 25e9;
  p->link_latency = 10e-6;
}

const char *tl_profile_path(char *buf, size_t n) {
  const char *e = getenv("TLALOC_PROFILE");
  if (e && *e) { snprintf(buf, n, "%s", e); return buf; }
  const char *x = getenv("XDG_CACHE_HOME");
  if (x && *x) { snprintf(buf, n, "%s/tlaloc/profile.txt", x); return buf; }
  const char *h = getenv("HOME");
  if (h && *h) { snprintf(buf, n, "%s/.cache/tlaloc/profile.txt", h); return buf; }
  return NULL;
}

/* The scalar keys of the file, in the order save writes them. */
#define PROFILE_KEYS(X) \
  X(bw_1) X(bw_all) X(flops_1) X(flops_all) X(gemm_f32) X(gemm_f64) X(gemm_half) \
  X(kernel_overhead) X(par_overhead) X(run_overhead) X(parallel_min_elems) X(f64_factor) \
  X(row_ns) X(fault_bw) \
  X(gpu_bw) X(gpu_flops) X(gpu_flops_f64) X(gpu_gemm_f32) X(gpu_gemm_f64) X(gpu_math_factor) \
  X(gpu_launch) X(gpu_sync) X(link_bw) X(link_latency)

/* A finite number > 0 (>= 0 when zero_ok) at *s; advances s. */
static bool read_number(char **s, double *v, bool zero_ok) {
  char *end;
  errno = 0;
  *v = strtod(*s, &end);
  bool ok = end != *s && !errno && isfinite(*v) && (zero_ok ? *v >= 0 : *v > 0);
  *s = end;
  return ok;
}

/* "mem.BYTES BW_1 BW_ALL": one cache level, kept sorted by size. */
static int load_level(tl_profile *p, const char *key, char *rest, const char *path, int lineno, char *err,
                      size_t n) {
  char *s = (char *)key + 4, *r = rest;
  double bytes, b1 = 0, ball = 0; /* read_number sets both when ok (gcc -O3 cannot see it) */
  if (!read_number(&s, &bytes, false) || *s || bytes != floor(bytes)) {
    snprintf(err, n, "%s:%d: '%s': '%s' is not a size in bytes", path, lineno, key, key + 4);
    return -1;
  }
  bool ok = read_number(&r, &b1, false) && read_number(&r, &ball, false);
  while (*r == ' ' || *r == '\t') r++;
  if (!ok || *r) {
    snprintf(err, n, "%s:%d: '%s' needs two positive numbers (bandwidth on one thread and on all threads)",
             path, lineno, key);
    return -1;
  }
  int i = 0;
  while (i < p->nlevels && p->level_bytes[i] < bytes) i++;
  if (i < p->nlevels && p->level_bytes[i] == bytes) {
    snprintf(err, n, "%s:%d: '%s' is given twice", path, lineno, key);
    return -1;
  }
  if (p->nlevels == TL_PROFILE_MAX_LEVELS) {
    snprintf(err, n, "%s:%d: more than %d mem. levels", path, lineno, TL_PROFILE_MAX_LEVELS);
    return -1;
  }
  for (int j = p->nlevels; j > i; j--) {
    p->level_bytes[j] = p->level_bytes[j - 1];
    p->level_bw_1[j] = p->level_bw_1[j - 1];
    p->level_bw_all[j] = p->level_bw_all[j - 1];
  }
  p->level_bytes[i] = bytes;
  p->level_bw_1[i] = b1;
  p->level_bw_all[i] = ball;
  p->nlevels++;
  return 0;
}

int tl_profile_load(const char *path, tl_profile *p, char *err, size_t n) {
  tl_profile_default(p);
  FILE *f = fopen(path, "r");
  if (!f) {
    if (errno == ENOENT) return 1;
    snprintf(err, n, "%s: %s", path, strerror(errno));
    return 2;
  }
  char line[512];
  int lineno = 0, rc = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    char key[128], rest[400];
    int got = sscanf(line, " %127s %399[^\n]", key, rest);
    if (got <= 0) continue;
    if (got == 1) { snprintf(err, n, "%s:%d: '%s' has no value", path, lineno, key); rc = 2; break; }
    if (!strcmp(key, "cpu") || !strcmp(key, "gpu")) {
      size_t len = strlen(rest);
      while (len && (rest[len - 1] == ' ' || rest[len - 1] == '\t')) rest[--len] = 0;
      snprintf(key[0] == 'c' ? p->cpu : p->gpu, sizeof p->cpu, "%.127s", rest); /* a longer name is cut */
      continue;
    }
    if (!strcmp(key, "blas.core")) {
      char name[sizeof p->blas_core + 1];
      if (sscanf(rest, " %32s", name) != 1 || strlen(name) >= sizeof p->blas_core) {
        snprintf(err, n, "%s:%d: 'blas.core %s': expected an OpenBLAS kernel set's name", path, lineno, rest);
        rc = 2;
        break;
      }
      snprintf(p->blas_core, sizeof p->blas_core, "%.31s", name);
      continue;
    }
    if (!strncmp(key, "vmath.", 6)) {
      unsigned bit = !strcmp(key + 6, "exp") ? TL_OWN_EXP32 : !strcmp(key + 6, "tanh") ? TL_OWN_TANH32 : 0;
      size_t len = strlen(rest);
      while (len && (rest[len - 1] == ' ' || rest[len - 1] == '\t')) rest[--len] = 0;
      bool own = !strcmp(rest, "own");
      if (!bit || (!own && strcmp(rest, "libmvec"))) {
        snprintf(err, n, "%s:%d: '%s %s': expected vmath.exp or vmath.tanh, then own or libmvec", path, lineno,
                 key, rest);
        rc = 2;
        break;
      }
      p->own_math = own ? p->own_math | bit : p->own_math & ~bit;
      continue;
    }
    if (!strncmp(key, "mem.", 4)) {
      if (load_level(p, key, rest, path, lineno, err, n)) {
        rc = 2;
        break;
      }
      continue;
    }
    char *end;
    errno = 0;
    double v = strtod(rest, &end);
    while (*end == ' ' || *end == '\t') end++;
    if (end == rest || *end || errno || !isfinite(v) || v < 0) {
      snprintf(err, n, "%s:%d: '%s' needs a finite non-negative number", path, lineno, key);
      rc = 2;
      break;
    }
    if (!strcmp(key, "threads")) {
      if (v < 1 || v > 4096 || v != floor(v)) {
        snprintf(err, n, "%s:%d: threads must be an integer in 1..4096", path, lineno);
        rc = 2;
        break;
      }
      p->threads = (int)v;
      continue;
    }
#define LOAD_KEY(k) if (!strcmp(key, #k)) { p->k = v; continue; }
    PROFILE_KEYS(LOAD_KEY)
#undef LOAD_KEY
    if (!strncmp(key, "elem.", 5) || !strncmp(key, "elem64.", 7)) {
      const char *name = key + (key[4] == '.' ? 5 : 7);
      int op = tl_op_lookup(name, strlen(name));
      if (op < 0) {
        snprintf(err, n, "%s:%d: unknown op '%s'", path, lineno, name);
        rc = 2;
        break;
      }
      (key[4] == '.' ? p->elem_ns : p->elem_ns_f64)[op] = v;
      continue;
    }
    snprintf(err, n, "%s:%d: unknown key '%s'", path, lineno, key);
    rc = 2;
    break;
  }
  fclose(f);
  if (rc == 0 && (p->bw_1 <= 0 || p->bw_all <= 0 || p->flops_1 <= 0 || p->flops_all <= 0 ||
                  p->gemm_f32 <= 0 || p->gemm_f64 <= 0 || p->fault_bw <= 0 || p->gpu_bw <= 0 || p->gpu_flops <= 0 ||
                  p->gpu_flops_f64 <= 0 || p->gpu_gemm_f32 <= 0 || p->gpu_gemm_f64 <= 0 || p->gpu_math_factor <= 0 ||
                  p->link_bw <= 0)) {
    snprintf(err, n, "%s: bandwidths and rates must be positive", path);
    rc = 2;
  }
  if (rc) tl_profile_default(p);
  else p->measured = true;
  return rc;
}

int tl_profile_get(tl_profile *p, char *err, size_t n) {
  char path[1024];
  if (!tl_profile_path(path, sizeof path)) { tl_profile_default(p); return 0; }
  int rc = tl_profile_load(path, p, err, n);
  return rc == 1 ? 0 : rc;
}

static int mkdirs(char *dir) {
  for (char *s = dir + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    int r = mkdir(dir, 0755);
    *s = '/';
    if (r && errno != EEXIST) return -1;
  }
  return mkdir(dir, 0755) && errno != EEXIST ? -1 : 0;
}

int tl_profile_save(const char *path, const tl_profile *p, char *err, size_t n) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = 0;
    if (mkdirs(dir)) { snprintf(err, n, "%s: %s", dir, strerror(errno)); return 2; }
  }
  char tmp[1100];
  snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
  FILE *f = fopen(tmp, "w");
  if (!f) { snprintf(err, n, "%s: %s", tmp, strerror(errno)); return 2; }
  fprintf(f, "# tlaloc profile 1 (written by tlaloc calibrate)\n");
  fprintf(f, "cpu %s\nthreads %d\n", p->cpu, p->threads);
  if (p->gpu[0]) fprintf(f, "gpu %s\n", p->gpu);
  if (p->blas_core[0]) fprintf(f, "blas.core %s\n", p->blas_core);
#define SAVE_KEY(k) fprintf(f, "%s %.6g\n", #k, p->k);
  PROFILE_KEYS(SAVE_KEY)
#undef SAVE_KEY
  /* a zero where the defaults have a cost is written too, or loading the
   * file over the defaults would bring the default back */
  tl_profile def;
  tl_profile_default(&def);
  for (int op = 0; op < TL_OP_COUNT; op++)
    if (p->elem_ns[op] > 0 || def.elem_ns[op] > 0) fprintf(f, "elem.%s %.6g\n", tl_ops[op].name, p->elem_ns[op]);
  for (int op = 0; op < TL_OP_COUNT; op++)
    if (p->elem_ns_f64[op] > 0) fprintf(f, "elem64.%s %.6g\n", tl_ops[op].name, p->elem_ns_f64[op]);
  for (int i = 0; i < p->nlevels; i++)
    fprintf(f, "mem.%.0f %.6g %.6g\n", p->level_bytes[i], p->level_bw_1[i], p->level_bw_all[i]);
  fprintf(f, "vmath.exp %s\nvmath.tanh %s\n", (p->own_math & TL_OWN_EXP32) ? "own" : "libmvec",
          (p->own_math & TL_OWN_TANH32) ? "own" : "libmvec");
  int bad = ferror(f);
  if (fclose(f) || bad || rename(tmp, path)) {
    snprintf(err, n, "%s: %s", path, strerror(errno));
    remove(tmp);
    return 2;
  }
  return 0;
}

/* Bandwidth for a kernel moving `bytes`: the smallest level that holds
 * them. A level is never slower than a larger one or than memory (noise in
 * the measurement must not make more bytes take less time). */
static double stream_bw(const tl_profile *p, double bytes, bool par) {
  double bw = par ? p->bw_all : p->bw_1;
  for (int i = p->nlevels - 1; i >= 0 && bytes <= p->level_bytes[i]; i--) {
    double l = par ? p->level_bw_all[i] : p->level_bw_1[i];
    if (l > bw) bw = l;
  }
  return bw;
}

double tl_profile_kernel_time(const tl_profile *p, const tl_kernel_work *w) {
  bool par = w->elems >= p->parallel_min_elems && p->threads > 1;
  double bw = stream_bw(p, w->bytes, par);
  double fl = par ? p->flops_all : p->flops_1;
  double split = par ? p->threads : 1;
  double compute = w->flops / fl + w->math_ns * 1e-9 / split;
  double mem = w->bytes / bw;
  double gemm = (w->gemm_flops_f32 + w->gemm_extra_f32) / p->gemm_f32 +
                (w->gemm_flops_f64 + w->gemm_extra_f64) / p->gemm_f64;
  /* BLAS overlaps its memory traffic with its arithmetic like any kernel */
  compute += gemm;
  return p->kernel_overhead + (par ? p->par_overhead : 0) + (compute > mem ? compute : mem);
}

double tl_profile_gpu_kernel_time(const tl_profile *p, const tl_kernel_work *w, bool f64) {
  double compute = w->flops / (f64 ? p->gpu_flops_f64 : p->gpu_flops) + w->math_ns * 1e-9 / p->gpu_math_factor +
                   w->gemm_flops_f32 / p->gpu_gemm_f32 + w->gemm_flops_f64 / p->gpu_gemm_f64;
  double mem = w->bytes / p->gpu_bw;
  return p->gpu_launch + (compute > mem ? compute : mem);
}

double tl_profile_transfer_time(const tl_profile *p, double bytes) {
  return bytes > 0 ? p->link_latency + bytes / p->link_bw : 0;
}

int tl_row_passes(tl_op op) {
  return op == TL_OP_SOFTMAX || op == TL_OP_LOG_SOFTMAX ? 3 : op == TL_OP_LOGSUMEXP ? 2 : 1;
}

double tl_type_elems(const tl_type *t, double sym_size) {
  double e = 1;
  for (int i = 0; i < t->rank; i++) e *= tl_dim_is_sym(t->dims[i]) ? sym_size : (double)t->dims[i];
  return e;
}

void tl_node_work(const tl_profile *p, tl_op op, const tl_attrs *attrs, const tl_type *out,
                  const tl_type *const *in, int nin, double sym_size, tl_kernel_work *w) {
  memset(w, 0, sizeof *w);
  tl_kind kind = tl_ops[op].kind;
  if (kind == TL_KIND_SOURCE || kind == TL_KIND_CONSTANT) return;
  double out_elems = tl_type_elems(out, sym_size);
  w->bytes = out_elems * (double)tl_dtype_size(out->dtype);
  for (int i = 0; i < nin; i++)
    w->bytes += tl_type_elems(in[i], sym_size) * (double)tl_dtype_size(in[i]->dtype);
  bool f64 = out->dtype == TL_F64 || (nin > 0 && in[0]->dtype == TL_F64);
  /* per-element math: measured on f64 when the profile has it */
  double ens = f64 && p->elem_ns_f64[op] > 0 ? p->elem_ns_f64[op] : p->elem_ns[op] * (f64 ? p->f64_factor : 1);
  switch (kind) {
  case TL_KIND_ELEMWISE:
    w->elems = out_elems;
    if (ens > 0) w->math_ns = ens * out_elems;
    else w->flops = out_elems;
    break;
  case TL_KIND_REDUCTION: {
    double in_elems = nin > 0 ? tl_type_elems(in[0], sym_size) : 0;
    w->elems = in_elems;
    if (ens > 0) w->math_ns = ens * in_elems;
    else w->flops = in_elems;
    /* per row: a reduction has a row per result element; a normalisation
     * keeps the shape, its rows run along the axis */
    double rows = out_elems, passes = tl_row_passes(op);
    if (op == TL_OP_SOFTMAX || op == TL_OP_LOG_SOFTMAX) {
      if (nin > 0 && in[0]->rank > 0) {
        int ax = attrs && (attrs->present & TL_A_AXIS) ? attrs->axes[0] : -1;
        if (ax < 0) ax += in[0]->rank;
        int64_t d = ax >= 0 && ax < in[0]->rank ? in[0]->dims[ax] : 1;
        double len = tl_dim_is_sym(d) ? sym_size : (double)d;
        rows = len > 0 ? in_elems / len : 0;
      }
    }
    w->math_ns += p->row_ns * rows * passes;
    break;
  }
  case TL_KIND_SHAPE:
    /* concat copies; the index maps are free inside a consumer's loop, but
     * on their own they still move their result through memory */
    w->elems = out_elems;
    break;
  case TL_KIND_LINALG: {
    /* matmul: out [..., m, n], operand 0 [..., m, k]; 2*m*n*k flops per batch */
    double k = 1;
    if (nin > 0 && in[0]->rank >= 1) {
      int64_t d = in[0]->dims[in[0]->rank - 1];
      k = tl_dim_is_sym(d) ? sym_size : (double)d;
    }
    double f = 2.0 * out_elems * k;
    w->elems = out_elems;
    /* the product's smallest dim: m (the rows of one product: a batch
     * over one shared matrix is folded into one), n, k; a product with
     * one row or column is a matrix-vector product, priced by its bytes */
    double nn = out->rank >= 1 ? (tl_dim_is_sym(out->dims[out->rank - 1]) ? sym_size : (double)out->dims[out->rank - 1]) : 1;
    double m = 1;
    if (out->rank >= 2) {
      bool folded = nin > 1 && in[1]->rank == 2;
      int64_t d = out->dims[out->rank - 2];
      m = folded ? (nn > 0 ? out_elems / nn : 0) : tl_dim_is_sym(d) ? sym_size : (double)d;
    }
    double s = m < nn ? m : nn;
    s = s < k ? s : k;
    double extra = s >= 2 ? f * p->gemm_half / s : 0;
    if (out->dtype == TL_F32) w->gemm_flops_f32 = f, w->gemm_extra_f32 = extra;
    else if (out->dtype == TL_F64) w->gemm_flops_f64 = f, w->gemm_extra_f64 = extra;
    else w->flops = f; /* integer matmul: generated loops */
    break;
  }
  default: break;
  }
}
