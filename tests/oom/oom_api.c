/* oom_api.c - the out-of-memory loop through the public C API: for
 * k = 1, 1+s, 1+2s, ... fail the k-th allocation of parse -> optimize ->
 * compile -> run on an example (and, separately, of a warm run of a
 * compiled program) until a pass allocates fewer than k blocks. Every
 * failing call must return TLALOC_OUT_OF_MEMORY with an "out of memory"
 * message, and everything else must behave as if nothing had failed: the
 * final pass's outputs equal a clean run's, bit for bit. Leaks are
 * LeakSanitizer's to find (the sanitizer build runs this too).
 *
 * usage: oom_api STRIDE EXAMPLE.tg RULES_DIR... */
#include "tlaloc.h"
#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(c, ...)                                             \
  do {                                                            \
    if (!(c)) {                                                   \
      fprintf(stderr, "oom_api: " __VA_ARGS__);                   \
      fputc('\n', stderr);                                        \
      failures++;                                                 \
    }                                                             \
  } while (0)

/* "f32[n 10]" -> a tensor of that type, symbols bound to 3, values from a
 * fixed generator (labels of xent-like graphs stay in range). */
static int make_input(const char *type, tlaloc_tensor *t, unsigned seed) {
  memset(t, 0, sizeof *t);
  const char *dt[] = {"bool", "i32", "i64", "f32", "f64"};
  int d = -1;
  for (int i = 0; i < 5; i++)
    if (!strncmp(type, dt[i], strlen(dt[i])) && type[strlen(dt[i])] == '[') d = i;
  if (d < 0) return -1;
  t->dtype = d;
  const char *p = strchr(type, '[') + 1;
  int64_t n = 1;
  while (*p && *p != ']') {
    while (*p == ' ') p++;
    if (*p == ']') break;
    char *end;
    long long v = strtoll(p, &end, 10);
    if (end == p) { /* a symbol */
      v = 3;
      while (*end && *end != ' ' && *end != ']') end++;
    }
    t->dims[t->rank++] = v;
    n *= v;
    p = end;
  }
  size_t es = d == 0 ? 1 : d == 1 || d == 3 ? 4 : 8;
  t->data = calloc((size_t)(n ? n : 1), es);
  unsigned s = seed * 2654435761u + 1;
  for (int64_t i = 0; i < n; i++) {
    s = s * 1103515245u + 12345u;
    double x = ((s >> 8) & 0xffff) / 65536.0; /* [0, 1) */
    switch (d) {
    case 0: ((unsigned char *)t->data)[i] = x < 0.5; break;
    case 1: ((int32_t *)t->data)[i] = (int32_t)(x * 3); break;
    case 2: ((int64_t *)t->data)[i] = (int64_t)(x * 3); break;
    case 3: ((float *)t->data)[i] = (float)(4 * x - 2); break;
    case 4: ((double *)t->data)[i] = 4 * x - 2; break;
    }
  }
  return 0;
}

static size_t tensor_bytes(const tlaloc_tensor *t) {
  size_t es = t->dtype == 0 ? 1 : t->dtype == 1 || t->dtype == 3 ? 4 : 8;
  size_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= (size_t)t->dims[i];
  return n * es;
}

static int is_oom(tlaloc_status st, char *err) {
  int ok = st == TLALOC_OUT_OF_MEMORY && (!err || strstr(err, "out of memory"));
  tlaloc_free(err);
  return ok;
}

/* One pass of the pipeline; 1: it ran through (outputs in out), 0: an
 * allocation failed cleanly, -1: something else went wrong. */
static int pipeline(const char *src, const char *file, const char *const *rules, int nrules,
                    tlaloc_tensor *in, int nin, tlaloc_tensor *out, int nout, const char *where) {
  tlaloc_graph *g = NULL, *o = NULL;
  tlaloc_program *p = NULL;
  char *err = NULL, *stats = NULL;
  int r = -1;
  tlaloc_status st = tlaloc_parse(src, strlen(src), file, &g, &err);
  if (st != TLALOC_OK) {
    if (is_oom(st, err)) return 0;
    CHECK(0, "%s: parse: status %d", where, st);
    return -1;
  }
  tlaloc_free(err);
  err = NULL;
  st = tlaloc_optimize(g, rules, nrules, "iters=6", &o, &stats, &err);
  tlaloc_free(stats);
  if (st != TLALOC_OK) {
    r = is_oom(st, err) ? 0 : -1;
    CHECK(r == 0, "%s: optimize: status %d", where, st);
    goto done;
  }
  tlaloc_free(err);
  err = NULL;
  tlaloc_compile_options co;
  memset(&co, 0, sizeof co);
  co.use_cache = -1;
  st = tlaloc_compile(o, &co, &p, &err);
  if (st != TLALOC_OK) {
    r = is_oom(st, err) ? 0 : -1;
    CHECK(r == 0, "%s: compile: status %d", where, st);
    goto done;
  }
  tlaloc_free(err);
  err = NULL;
  for (int i = 0; i < nout; i++) out[i].data = NULL;
  st = tlaloc_program_run(p, in, nin, out, nout, &err);
  if (st != TLALOC_OK) {
    for (int i = 0; i < nout; i++) CHECK(!out[i].data, "%s: run: output %d left set after a failure", where, i);
    r = is_oom(st, err) ? 0 : -1;
    CHECK(r == 0, "%s: run: status %d", where, st);
    goto done;
  }
  tlaloc_free(err);
  r = 1;
done:
  tlaloc_program_free(p);
  tlaloc_graph_free(o);
  tlaloc_graph_free(g);
  return r;
}

static int same(const tlaloc_tensor *a, const tlaloc_tensor *b, int n) {
  for (int i = 0; i < n; i++)
    if (a[i].rank != b[i].rank || memcmp(a[i].dims, b[i].dims, sizeof a[i].dims) ||
        memcmp(a[i].data, b[i].data, tensor_bytes(&a[i])))
      return 0;
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: oom_api STRIDE EXAMPLE.tg RULES_DIR...\n");
    return 2;
  }
  long stride = atol(argv[1]);
  const char *file = argv[2];
  const char *const *rules = (const char *const *)argv + 3;
  int nrules = argc - 3;
  FILE *f = fopen(file, "rb");
  if (!f) {
    perror(file);
    return 2;
  }
  static char src[1 << 16];
  size_t len = fread(src, 1, sizeof src - 1, f);
  fclose(f);
  src[len] = 0;

  tlaloc_graph *g = NULL;
  char *err = NULL;
  if (tlaloc_parse(src, len, file, &g, &err) != TLALOC_OK) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  int nin = tlaloc_num_inputs(g), nout = tlaloc_num_outputs(g);
  tlaloc_tensor in[16], ref[16], out[16];
  if (nin > 16 || nout > 16) return 2;
  for (int i = 0; i < nin; i++) {
    char *ty = tlaloc_input_type(g, i);
    if (make_input(ty, &in[i], (unsigned)i + 1)) {
      fprintf(stderr, "oom_api: cannot make input of type %s\n", ty);
      return 2;
    }
    tlaloc_free(ty);
  }
  tlaloc_graph_free(g);

  /* the clean pass: the reference outputs and the allocation count */
  uint64_t c0 = tl_alloc_count();
  if (pipeline(src, file, rules, nrules, in, nin, ref, nout, "clean pass") != 1) return 1;
  uint64_t total = tl_alloc_count() - c0;

  long passes = 0, clean = 0;
  for (uint64_t k = 1;; k += (uint64_t)stride) {
    char where[64];
    snprintf(where, sizeof where, "k=%llu", (unsigned long long)k);
    c0 = tl_alloc_count();
    tl_alloc_fail_at(k);
    int r = pipeline(src, file, rules, nrules, in, nin, out, nout, where);
    uint64_t used = tl_alloc_count() - c0;
    tl_alloc_fail_at(0);
    passes++;
    if (r < 0) break;
    if (r == 1) {
      CHECK(same(out, ref, nout), "%s: outputs differ from the clean pass after a failure", where);
      for (int i = 0; i < nout; i++) tlaloc_free(out[i].data);
      if (used < k) break; /* nothing failed: past the last allocation */
      CHECK(0, "%s: allocation %llu failed but the pipeline reported success", where, (unsigned long long)k);
    } else {
      clean++;
    }
  }

  /* a warm program: fail the k-th allocation of a run with fresh outputs */
  tlaloc_graph *wg = NULL;
  tlaloc_program *wp = NULL;
  tlaloc_parse(src, len, file, &wg, NULL);
  tlaloc_compile_options co;
  memset(&co, 0, sizeof co);
  co.use_cache = -1;
  long wpasses = 0, wclean = 0;
  if (tlaloc_compile(wg, &co, &wp, NULL) == TLALOC_OK) {
    for (uint64_t k = 1;; k++) {
      for (int i = 0; i < nout; i++) out[i].data = NULL;
      c0 = tl_alloc_count();
      tl_alloc_fail_at(k);
      char *e = NULL;
      tlaloc_status st = tlaloc_program_run(wp, in, nin, out, nout, &e);
      uint64_t used = tl_alloc_count() - c0;
      tl_alloc_fail_at(0);
      wpasses++;
      if (st == TLALOC_OK) {
        tlaloc_free(e);
        for (int i = 0; i < nout; i++) tlaloc_free(out[i].data);
        if (used < k) break;
        CHECK(0, "warm k=%llu: allocation failed but the run reported success", (unsigned long long)k);
      } else if (is_oom(st, e)) {
        wclean++;
      } else {
        CHECK(0, "warm k=%llu: status %d", (unsigned long long)k, st);
        break;
      }
      if (k > 100000) break;
    }
  } else {
    CHECK(0, "warm: compile failed");
  }
  tlaloc_program_free(wp);
  tlaloc_graph_free(wg);
  for (int i = 0; i < nout; i++) tlaloc_free(ref[i].data);
  for (int i = 0; i < nin; i++) free(in[i].data);
  printf("%s: pipeline: %llu allocations, %ld passes (stride %ld), %ld failed cleanly; "
         "warm run: %ld passes, %ld failed cleanly; %d problems\n",
         file, (unsigned long long)total, passes, stride, clean, wpasses, wclean, failures);
  return failures ? 1 : 0;
}
