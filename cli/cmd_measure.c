/* cli/cmd_measure.c - `tlaloc calibrate [--quick] [-o PATH]` and `tlaloc
 * cost-report G.tg [--dim SYM=SIZE]... [--runs N] [--time-limit S] [-O0..-O3]`: the arguments and the
 * printed report; measure/calibrate.h does the measuring. */
#include "cli/cli.h"

#include "backend/blas.h"
#include "ir/tg.h"
#include "measure/calibrate.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- tlaloc calibrate --------------------------------------------------- */

/* Whether the profile can be written at path: its nearest existing folder
 * is writable (tl_profile_save creates the rest). Checked before a minute
 * of measuring rather than after. */
static bool writable(const char *path) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s", path);
  for (;;) {
    char *slash = strrchr(dir, '/');
    if (!slash) return access(".", W_OK) == 0;
    if (slash == dir) return access("/", W_OK) == 0;
    *slash = 0;
    if (access(dir, F_OK) == 0) return access(dir, W_OK) == 0;
  }
}

int cli_cmd_calibrate(int argc, char **argv) {
  bool quick = false;
  const char *out = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) quick = true;
    else if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
    else {
      fprintf(stderr, "tlaloc calibrate: unknown or incomplete option '%s'\n"
                      "usage: tlaloc calibrate [--quick] [-o PATH]\n", argv[i]);
      return CLI_EXIT_BAD;
    }
  }
  char path[1024], err[1024];
  if (!out && !(out = tl_profile_path(path, sizeof path))) {
    fprintf(stderr, "tlaloc calibrate: no place for the profile (neither TLALOC_PROFILE, "
                    "XDG_CACHE_HOME nor HOME is set); give -o PATH\n");
    return CLI_EXIT_BAD;
  }
  if (!writable(out)) {
    fprintf(stderr, "tlaloc calibrate: cannot write the profile at %s (no writable folder)\n", out);
    return CLI_EXIT_BAD;
  }
  tl_profile p;
  double t0 = tl_now_ms();
  if (tl_calibrate(&p, quick, stdout, err, sizeof err)) {
    fprintf(stderr, "tlaloc calibrate: %s\n", err);
    return CLI_EXIT_BAD;
  }
  if (tl_profile_save(out, &p, err, sizeof err)) {
    fprintf(stderr, "tlaloc calibrate: %s\n", err);
    return CLI_EXIT_BAD;
  }
  printf("measured in %.1f s; profile written to %s\n", (tl_now_ms() - t0) * 1e-3, out);
  return 0;
}

/* ---- tlaloc cost-report ------------------------------------------------- */

static void fmt_time(char *b, size_t n, double s) {
  if (s < 0) snprintf(b, n, "-");
  else if (s < 1e-3) snprintf(b, n, "%.2f us", s * 1e6);
  else snprintf(b, n, "%.3f ms", s * 1e3);
}

static int parse_count(const char *s, int64_t *v) {
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (errno || *end || end == s || x < 0) return -1;
  *v = x;
  return 0;
}

int cli_cmd_cost_report(int argc, char **argv) {
  const char *path = NULL;
  int64_t runs = 10;
  double time_limit = 0; /* seconds of kernel measurements; 0: no limit */
  int opt_level = -1;    /* the backend's default */
  const char **dn = tl_xcalloc((size_t)argc + 1, sizeof *dn);
  int64_t *dv = tl_xcalloc((size_t)argc + 1, sizeof *dv);
  int nd = 0, rc = CLI_EXIT_BAD;
  tl_graph *g = NULL;
  int64_t *syms = NULL;
  tl_cost_report r = {0};
  char err[1024], ppath[1024];
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--dim") && i + 1 < argc) {
      const char *v = argv[++i], *eq = strchr(v, '=');
      if (!eq || eq == v || parse_count(eq + 1, &dv[nd])) {
        fprintf(stderr, "tlaloc cost-report: --dim expects SYM=SIZE (SIZE >= 0), got '%s'\n", v);
        goto done;
      }
      dn[nd++] = v;
    } else if (!strcmp(a, "--runs") && i + 1 < argc) {
      if (parse_count(argv[++i], &runs) || runs < 1 || runs > 100000) {
        fprintf(stderr, "tlaloc cost-report: --runs expects a count in 1..100000, got '%s'\n", argv[i]);
        goto done;
      }
    } else if (!strcmp(a, "--time-limit") && i + 1 < argc) {
      char *end;
      time_limit = strtod(argv[++i], &end);
      if (*end || end == argv[i] || !(time_limit > 0)) {
        fprintf(stderr, "tlaloc cost-report: --time-limit expects seconds > 0, got '%s'\n", argv[i]);
        goto done;
      }
    } else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) {
      opt_level = a[2] - '0';
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "tlaloc cost-report: unknown or incomplete option '%s'\n", a);
      goto done;
    } else if (!path) {
      path = a;
    } else {
      fprintf(stderr, "tlaloc cost-report: more than one graph given ('%s', '%s')\n", path, a);
      goto done;
    }
  }
  if (!path) {
    fprintf(stderr, "usage: tlaloc cost-report G.tg [--dim SYM=SIZE]... [--runs N] [--time-limit S] "
                    "[-O0|-O1|-O2|-O3]\n");
    goto done;
  }
  tl_profile p;
  if (tl_profile_get(&p, err, sizeof err)) {
    fprintf(stderr, "tlaloc cost-report: %s\n", err);
    goto done;
  }
  if (!(g = tl_tg_load(path, stderr))) goto done;
  syms = tl_xmalloc(((size_t)g->nsyms + 1) * sizeof *syms);
  for (int s = 0; s < g->nsyms; s++) syms[s] = -1;
  for (int k = 0; k < nd; k++) {
    size_t len = (size_t)(strchr(dn[k], '=') - dn[k]);
    int s = -1;
    for (int j = 0; j < g->nsyms; j++)
      if (strlen(g->syms[j]) == len && !strncmp(g->syms[j], dn[k], len)) s = j;
    if (s < 0) {
      fprintf(stderr, "tlaloc cost-report: --dim %s: the graph has no symbolic dim '%.*s'\n", dn[k], (int)len, dn[k]);
      goto done;
    }
    syms[s] = dv[k];
  }
  /* and at least 20 ms per figure, for the minimum */
  tl_cost_report_opts ro = {.runs = (int)runs, .budget_s = 0.02, .opt_level = opt_level, .time_limit_s = time_limit};
  if (tl_cost_report_measure(&p, g, syms, ro, &r, err, sizeof err)) {
    fprintf(stderr, "tlaloc cost-report: %s: %s\n", path, err);
    goto done;
  }

  printf("cost-report %s", path);
  for (int s = 0; s < g->nsyms; s++) printf("%s%s=%lld", s ? " " : "  (", g->syms[s], (long long)syms[s]);
  printf("%s\n", g->nsyms ? ")" : "");
  const char *pp = tl_profile_path(ppath, sizeof ppath);
  if (p.measured) printf("profile: measured, %s (%s)\n", pp, p.cpu);
  else printf("profile: defaults, %s (no profile at %s; run tlaloc calibrate)\n", p.cpu, pp ? pp : "?");
  const char *core = be_blas_core();
  printf("BLAS: %s%s\n", core ? "OpenBLAS kernel set " : "", core ? core : "no kernel-set choice");
  printf("threads %d; each kernel row runs the kernel as a program of its own, so both its columns include "
         "one call's fixed cost (%.2f us predicted)\n", p.threads, p.run_overhead * 1e6);
  printf("\n%3s  %-8s  %-26s  %10s  %9s  %3s  %-7s  %11s  %11s  %9s\n", "#", "kind", "computes", "elements",
         "MB moved", "par", "bound", "predicted", "measured", "meas/pred");
  int not_one = 0;
  for (int i = 0; i < r.nks; i++) {
    const tl_kernel_cost *kc = &r.pc.ks[i];
    const tl_report_kernel *rk = &r.ks[i];
    const tl_node *x = &g->nodes[kc->node];
    char what[64], pb[32], mb[32];
    snprintf(what, sizeof what, "%s%s%s", x->name >= 0 ? g->names[x->name] : "", x->name >= 0 ? " = " : "",
             tl_ops[x->op].name);
    if (x->loc.line > 0) snprintf(what + strlen(what), sizeof what - strlen(what), " @%d:%d", x->loc.line, x->loc.col);
    if (rk->note[0]) fprintf(stderr, "tlaloc cost-report: kernel %d not measured: %s\n", i, rk->note);
    if (rk->not_one) not_one++;
    fmt_time(pb, sizeof pb, rk->predicted);
    fmt_time(mb, sizeof mb, rk->measured);
    char ratio[32] = "-";
    if (rk->measured > 0) snprintf(ratio, sizeof ratio, "%.2f", rk->measured / rk->predicted);
    printf("%3d  %-8s  %-26.26s  %10.4g  %9.3f  %3s  %-7s  %11s  %11s  %9s%s\n", i, rk->kind, what, kc->elems,
           kc->w.bytes / 1e6, kc->parallel ? "yes" : "no", rk->bound, pb, mb, ratio, rk->not_one ? " *" : "");
  }
  char pb[32], mb[32];
  fmt_time(pb, sizeof pb, r.pc.total);
  fmt_time(mb, sizeof mb, r.measured);
  char tw[96];
  snprintf(tw, sizeof tw, "total: %d kernel%s, be_run end to end", r.nks, r.nks == 1 ? "" : "s");
  printf("\n%-80s  %11s  %11s  %9.2f\n", tw, pb, mb, r.measured / r.pc.total);
  printf("(measured: minimum of at least %lld runs and 20 ms; inputs uniform in [0.5, 1.5))\n", (long long)runs);
  if (not_one) printf("* compiled alone, this kernel became more than one kernel\n");
  if (r.nunmeasured)
    printf("%d kernel%s not measured: the time limit (%g s) was reached\n", r.nunmeasured,
           r.nunmeasured == 1 ? "" : "s", time_limit);
  /* the same kernels on the GPU: predicted, and measured where there is one */
  tl_gpu_report gr;
  if (tl_gpu_report_measure(&p, g, syms, (int)runs, &gr, err, sizeof err)) {
    fprintf(stderr, "tlaloc cost-report: on the GPU: %s\n", err);
    tl_gpu_report_free(&gr);
    goto done;
  }
  bool gm = gr.meas_total >= 0;
  printf("\nGPU: %s (profile: %s)\n", gm ? gr.why : "not measured", p.gpu[0] ? p.gpu : "defaults, an H100/H200-class GPU");
  if (!gm) printf("  (%s: the predictions alone)\n", gr.why);
  printf("gpu %3s  %-8s  %-26s  %11s  %11s  %9s\n", "#", "kind", "computes", "predicted", "measured", "meas/pred");
  for (int i = 0; i < gr.nks; i++) {
    const tl_node *x = &g->nodes[r.pc.ks[i].node];
    char pb[32], mb[32], ratio[32] = "-";
    fmt_time(pb, sizeof pb, gr.predicted[i]);
    fmt_time(mb, sizeof mb, gr.measured[i]);
    if (gr.measured[i] > 0) snprintf(ratio, sizeof ratio, "%.2f", gr.measured[i] / gr.predicted[i]);
    printf("gpu %3d  %-8s  %-26.26s  %11s  %11s  %9s\n", i, r.ks[i].kind, tl_ops[x->op].name, pb, mb, ratio);
  }
  fmt_time(pb, sizeof pb, gr.pred_total);
  fmt_time(mb, sizeof mb, gr.meas_total);
  printf("total on the GPU (copies in %.2f us and out %.2f us predicted, sync): %s predicted, %s measured%s\n",
         gr.pred_h2d * 1e6, gr.pred_d2h * 1e6, pb, mb, gm && !gr.same_kernels ? " (the GPU's plan differs: totals only)" : "");
  tl_gpu_report_free(&gr);
  rc = 0;
done:
  tl_cost_report_free(&r);
  tl_free(syms);
  tl_graph_free(g);
  tl_free(dn);
  tl_free(dv);
  return rc;
}
