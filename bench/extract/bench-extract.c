/* bench-extract - every extractor on every extraction-gym sample; prints a
 * markdown table per data set: total DAG cost, total time, the gap of the
 * DAG-aware heuristic to the exact extractor, and how many files exact
 * proved optimal within its time limit.
 *
 *   bench-extract [--data DIR] [--time-limit S] [--runs N] [--kinds K,K] [--files] [--smoke]
 *
 * DIR defaults to $TL_EXTRACTION_GYM, else ../shared/data/extraction-gym.
 * Times of tree and dag are the minimum of N runs (default 5); exact runs
 * once. --kinds runs only the listed extractors (e.g. tree,dag to time the
 * fast ones without the exact solver); the others print as "-". --files
 * adds a per-file table. Files that fail to load are counted as malformed,
 * with their message.
 *
 * --smoke, for the test suite, runs the repository's sample
 * ($TL_EXTRACTION_SAMPLE, else tests/data/extraction-gym) with a 1 s limit
 * and checks each file against its row of the sample's expected.tsv
 * (computed from the definitions by expected.py): exact finds and proves
 * the optimal DAG cost, tree and dag are no better than it, dag <= tree,
 * and the malformed file (and only it) is refused. Any difference exits 1. */
#include "extract/extract.h"
#include "util/alloc.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct file_res {
  char *path, *set;
  double cost[EX_KIND_COUNT], secs[EX_KIND_COUNT], lb;
  bool optimal, ok;
} file_res;

typedef struct files {
  char **v;
  size_t n, cap;
} files;

static void collect(const char *dir, files *f) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    size_t len = strlen(dir) + strlen(e->d_name) + 2;
    char *p = tl_xmalloc(len);
    if (!p) break;
    snprintf(p, len, "%s/%s", dir, e->d_name);
    struct stat st;
    if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
      collect(p, f);
      tl_free(p);
    } else if (len > 6 && strcmp(p + strlen(p) - 5, ".json") == 0) {
      if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 64;
        char **q = tl_xrealloc(f->v, nc * sizeof *q);
        if (!q) {
          tl_free(p);
          break;
        }
        f->v = q, f->cap = nc;
      }
      f->v[f->n++] = p;
    } else {
      tl_free(p);
    }
  }
  closedir(d);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The data set of a file is the name of its parent folder. */
static char *set_of(const char *path) {
  const char *e = strrchr(path, '/');
  if (!e) return tl_xstrdup(".");
  const char *b = e;
  while (b > path && b[-1] != '/') b--;
  return tl_xstrndup(b, (size_t)(e - b));
}

/* expected.tsv of the repository's sample: per file, malformed or the
 * optimal DAG cost. */
typedef struct expect {
  char **path;
  bool *malformed;
  double *dag_opt;
  size_t n;
} expect;

static bool read_expected(const char *dir, expect *x) {
  char path[4096], line[4096];
  snprintf(path, sizeof path, "%s/expected.tsv", dir);
  FILE *f = fopen(path, "r");
  if (!f) return false;
  size_t cap = 0;
  while (fgets(line, sizeof line, f)) {
    char rel[1024], status[32], tree[64], dag[64];
    if (line[0] == '#' || sscanf(line, "%1023s %31s %63s %63s", rel, status, tree, dag) != 4) continue;
    if (x->n == cap) {
      cap = cap ? 2 * cap : 16;
      x->path = tl_xrealloc(x->path, cap * sizeof *x->path);
      x->malformed = tl_xrealloc(x->malformed, cap * sizeof *x->malformed);
      x->dag_opt = tl_xrealloc(x->dag_opt, cap * sizeof *x->dag_opt);
      if (!x->path || !x->malformed || !x->dag_opt) exit(1);
    }
    x->path[x->n] = tl_xmalloc(strlen(dir) + strlen(rel) + 2);
    if (!x->path[x->n]) exit(1);
    sprintf(x->path[x->n], "%s/%s", dir, rel);
    x->malformed[x->n] = strcmp(status, "malformed") == 0;
    x->dag_opt[x->n] = strtod(dag, NULL);
    x->n++;
  }
  fclose(f);
  return x->n > 0;
}

/* "tree,dag" -> want[]; false on an unknown name or an empty list. */
static bool parse_kinds(const char *list, bool *want) {
  for (int k = 0; k < EX_KIND_COUNT; k++) want[k] = false;
  bool any = false;
  while (*list) {
    size_t len = strcspn(list, ",");
    char name[16];
    if (len == 0 || len >= sizeof name) return false;
    memcpy(name, list, len);
    name[len] = 0;
    ex_kind k = ex_kind_parse(name);
    if (k == EX_KIND_COUNT) return false;
    want[k] = any = true;
    list += len + (list[len] == ',');
  }
  return any;
}

/* A number, or "-" for an extractor that was not run. */
static const char *num(char *buf, size_t len, const char *fmt, double v, bool ran) {
  if (!ran) return "-";
  snprintf(buf, len, fmt, v);
  return buf;
}

/* Totals over the files of one data set (or all of them). */
typedef struct total {
  const char *name;
  int files, proved;
  double cost[EX_KIND_COUNT], secs[EX_KIND_COUNT], lb;
} total;

static void print_total(const total *t, const bool *want) {
  const double *c = t->cost, *s = t->secs;
  bool ex = want[EX_EXACT], both = want[EX_TREE] && want[EX_DAG];
  char b[9][32];
  printf("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | ", t->name, t->files,
         num(b[0], 32, "%.6g", c[0], want[0]), num(b[1], 32, "%.6g", c[1], want[1]), num(b[2], 32, "%.6g", c[2], ex),
         num(b[3], 32, "%.6g", t->lb, ex),
         num(b[4], 32, "%.3f%%", 100.0 * (c[1] - c[2]) / (fabs(c[2]) > 0 ? fabs(c[2]) : 1), ex && want[EX_DAG]),
         num(b[5], 32, "%.2f", s[0] * 1e3, want[0]), num(b[6], 32, "%.2f", s[1] * 1e3, want[1]),
         num(b[7], 32, "%.1fx", s[0] > 0 ? s[1] / s[0] : 0, both), num(b[8], 32, "%.2f", s[2], ex));
  if (ex)
    printf("%d/%d |\n", t->proved, t->files);
  else
    printf("- |\n");
}

int main(int argc, char **argv) {
  const char *data = getenv("TL_EXTRACTION_GYM");
  if (!data) data = "../shared/data/extraction-gym";
  double limit = 10.0;
  int runs = 5;
  bool smoke = false, per_file = false;
  bool want[EX_KIND_COUNT];
  for (int k = 0; k < EX_KIND_COUNT; k++) want[k] = true;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
      data = argv[++i];
    else if (strcmp(argv[i], "--time-limit") == 0 && i + 1 < argc)
      limit = atof(argv[++i]);
    else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
      runs = atoi(argv[++i]);
    else if (strcmp(argv[i], "--smoke") == 0)
      smoke = true;
    else if (strcmp(argv[i], "--files") == 0)
      per_file = true;
    else if (strcmp(argv[i], "--kinds") == 0 && i + 1 < argc) {
      if (!parse_kinds(argv[++i], want)) {
        fprintf(stderr, "bench-extract: --kinds wants a list of tree, dag, exact, got '%s'\n", argv[i]);
        return 2;
      }
    } else {
      fprintf(stderr, "usage: bench-extract [--data DIR] [--time-limit S] [--runs N] "
                      "[--kinds tree,dag,exact] [--files] [--smoke]\n");
      return 2;
    }
  }
  if (runs < 1) runs = 1;
  files fl = {0};
  expect ex = {0};
  if (smoke) {
    limit = 1.0, runs = 1;
    const char *sample = getenv("TL_EXTRACTION_SAMPLE");
    data = sample ? sample : "tests/data/extraction-gym";
    if (!read_expected(data, &ex)) {
      fprintf(stderr, "bench-extract: no expected.tsv under %s (set TL_EXTRACTION_SAMPLE)\n", data);
      return 1;
    }
    fl.v = tl_xmalloc(ex.n * sizeof *fl.v);
    if (!fl.v) return 1;
    for (size_t i = 0; i < ex.n; i++) fl.v[fl.n++] = tl_xstrdup(ex.path[i]);
  } else {
    collect(data, &fl);
    qsort(fl.v, fl.n, sizeof *fl.v, cmp_str);
  }
  if (fl.n == 0) {
    fprintf(stderr, "bench-extract: no .json files under %s (set TL_EXTRACTION_GYM)\n", data);
    tl_free(fl.v);
    return 77;
  }

  file_res *res = tl_xcalloc(fl.n, sizeof *res);
  if (!res) return 1;
  int failures = 0, malformed = 0;
  ex_params p = ex_params_default();
  p.time_limit_s = limit;
  for (size_t i = 0; i < fl.n; i++) {
    file_res *r = &res[i];
    r->path = fl.v[i];
    r->set = set_of(fl.v[i]);
    ex_graph *g;
    tl_error d;
    bool want_bad = smoke && ex.malformed[i];
    if (ex_read_json(r->path, &g, &d) != EX_OK) {
      printf("malformed: %s\n", d.msg);
      malformed++;
      if (smoke && !want_bad) printf("FAIL %s: refused, expected.tsv has it as a valid e-graph\n", r->path), failures++;
      continue;
    }
    if (want_bad) {
      printf("FAIL %s: read, expected.tsv has it as malformed\n", r->path);
      failures++;
    }
    r->ok = true;
    for (int k = 0; k < EX_KIND_COUNT; k++) {
      if (!want[k]) continue;
      int n = k == EX_EXACT ? 1 : runs;
      r->secs[k] = INFINITY;
      for (int j = 0; j < n; j++) {
        ex_result x;
        if (ex_extract(g, (ex_kind)k, p, &x, &d) != EX_OK) {
          printf("FAIL %s %s: %s\n", ex_kind_name((ex_kind)k), r->path, d.msg);
          failures++, r->ok = false;
          break;
        }
        r->cost[k] = x.dag_cost;
        if (x.seconds < r->secs[k]) r->secs[k] = x.seconds;
        if (k == EX_EXACT) r->lb = x.lower_bound, r->optimal = x.optimal;
        ex_result_free(&x);
      }
    }
    if (r->ok && want[EX_TREE] && want[EX_DAG] && r->cost[EX_DAG] > r->cost[EX_TREE] + 1e-9 * fabs(r->cost[EX_TREE])) {
      printf("FAIL dag worse than tree on %s: %.17g > %.17g\n", r->path, r->cost[EX_DAG], r->cost[EX_TREE]);
      failures++;
    }
    if (r->ok && want[EX_DAG] && want[EX_EXACT] && r->cost[EX_EXACT] > r->cost[EX_DAG] + 1e-9 * fabs(r->cost[EX_DAG])) {
      printf("FAIL exact worse than dag on %s\n", r->path);
      failures++;
    }
    if (r->ok && smoke && !want_bad) {
      double opt = ex.dag_opt[i], tol = 1e-9 * (1 + fabs(opt));
      for (int k = 0; k < EX_KIND_COUNT; k++)
        if (want[k] && r->cost[k] < opt - tol) {
          printf("FAIL %s %s: DAG cost %.17g beats the optimum %.17g\n", ex_kind_name((ex_kind)k), r->path, r->cost[k],
                 opt);
          failures++;
        }
      if (want[EX_EXACT] && (fabs(r->cost[EX_EXACT] - opt) > tol || !r->optimal)) {
        printf("FAIL exact %s: %.17g%s, expected the optimum %.17g\n", r->path, r->cost[EX_EXACT],
               r->optimal ? "" : " (not proved)", opt);
        failures++;
      }
    }
    ex_graph_free(g);
    fflush(stdout);
  }

  if (per_file) {
    printf("\n| file | tree | dag | exact | lower bound | proved | tree ms | dag ms | exact ms |\n"
           "|---|---:|---:|---:|---:|:-:|---:|---:|---:|\n");
    for (size_t i = 0; i < fl.n; i++) {
      file_res *r = &res[i];
      if (!r->ok) continue;
      char b[7][32];
      bool ex = want[EX_EXACT];
      printf("| %s/%s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r->set, strrchr(r->path, '/') + 1,
             num(b[0], 32, "%.6g", r->cost[0], want[0]), num(b[1], 32, "%.6g", r->cost[1], want[1]),
             num(b[2], 32, "%.6g", r->cost[2], ex), num(b[3], 32, "%.6g", r->lb, ex),
             ex ? (r->optimal ? "yes" : "no") : "-", num(b[4], 32, "%.3f", r->secs[0] * 1e3, want[0]),
             num(b[5], 32, "%.3f", r->secs[1] * 1e3, want[1]), num(b[6], 32, "%.1f", r->secs[2] * 1e3, ex));
    }
  }

  printf("\n| data set | files | tree DAG cost | dag DAG cost | exact DAG cost | exact lower bound "
         "| dag gap to exact | tree ms | dag ms | dag/tree time | exact s | exact proved |\n"
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  /* Sets in order of first appearance (files are sorted, so sets are contiguous). */
  total all = {.name = "**all**"};
  for (size_t i = 0; i < fl.n;) {
    size_t j = i;
    total t = {.name = res[i].set};
    for (; j < fl.n && strcmp(res[j].set, res[i].set) == 0; j++) {
      if (!res[j].ok) continue;
      t.files++, t.proved += res[j].optimal, t.lb += res[j].lb;
      all.files++, all.proved += res[j].optimal, all.lb += res[j].lb;
      for (int k = 0; k < EX_KIND_COUNT; k++) {
        t.cost[k] += res[j].cost[k], t.secs[k] += res[j].secs[k];
        all.cost[k] += res[j].cost[k], all.secs[k] += res[j].secs[k];
      }
    }
    if (t.files) print_total(&t, want);
    i = j;
  }
  print_total(&all, want);
  printf("\nmalformed files: %d; failures: %d; exact time limit %.0f s; tree/dag time = min of %d runs\n", malformed,
         failures, limit, runs);
  for (size_t i = 0; i < fl.n; i++) tl_free(res[i].path), tl_free(res[i].set);
  for (size_t i = 0; i < ex.n; i++) tl_free(ex.path[i]);
  tl_free(ex.path), tl_free(ex.malformed), tl_free(ex.dag_opt);
  tl_free(res);
  tl_free(fl.v);
  return failures ? 1 : 0;
}
