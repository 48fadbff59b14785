/* cmd_grad.c - `tlaloc grad`: the derivative graph of a graph, as .tg.
 *
 *   tlaloc grad G.tg [--wrt x,w]... [--of loss]... [--vjp | --jvp] [--with-outputs]
 *                    [--rules PATH]... [-o OUT.tg]
 *
 * Outputs are named d<output>_d<input> (grad), vjp_<input> (--vjp, with
 * inputs ct_<output>) and jvp_<output> (--jvp, with inputs t_<input>);
 * docs/grad.md. */
#include "cli/cli.h"
#include "util/alloc.h"

#include "grad/grad.h"
#include "ir/tg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
  fprintf(stderr, "usage: tlaloc grad G.tg [--wrt IN[,IN...]]... [--of OUT[,OUT...]]... [--vjp | --jvp]\n"
                  "                  [--with-outputs] [--rules PATH]... [-o OUT.tg]\n");
}

/* Splits a comma-separated list into names (appended). */
static void split(char *s, const char ***v, int *n) {
  for (char *t = strtok(s, ","); t; t = strtok(NULL, ",")) {
    *v = tl_xrealloc((void *)*v, (size_t)(*n + 1) * sizeof **v);
    if (!*v) abort();
    (*v)[(*n)++] = t;
  }
}

int cli_cmd_grad(int argc, char **argv) {
  const char *in = NULL, *out = NULL;
  const char **rules = NULL, **wrt = NULL, **of = NULL;
  int nrules = 0, nwrt = 0, nof = 0, rc = CLI_EXIT_BAD;
  gr_params p = {.mode = GR_GRAD};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool more = i + 1 < argc;
    if (!strcmp(a, "--wrt") && more) split(argv[++i], &wrt, &nwrt);
    else if (!strcmp(a, "--of") && more) split(argv[++i], &of, &nof);
    else if (!strcmp(a, "--vjp")) p.mode = GR_VJP;
    else if (!strcmp(a, "--jvp")) p.mode = GR_JVP;
    else if (!strcmp(a, "--with-outputs")) p.with_outputs = true;
    else if (!strcmp(a, "--rules") && more) {
      rules = tl_xrealloc((void *)rules, (size_t)(nrules + 1) * sizeof *rules);
      if (!rules) abort();
      rules[nrules++] = argv[++i];
    } else if (!strcmp(a, "-o") && more) out = argv[++i];
    else if (a[0] != '-' && !in) in = a;
    else {
      usage();
      goto done;
    }
  }
  if (!in) {
    usage();
    goto done;
  }
  tl_graph *g = tl_tg_load(in, stderr);
  if (!g) goto done;
  gr_rules *r = gr_rules_new();
  tl_buf diag = {0};
  int errs = 0;
  if (nrules == 0) errs = gr_rules_load_path(r, tl_rules_dir(), &diag);
  for (int i = 0; i < nrules; i++) errs += gr_rules_load_path(r, rules[i], &diag);
  if (errs) {
    fputs(diag.s ? diag.s : "", stderr);
  } else {
    p.wrt = wrt;
    p.nwrt = nwrt;
    p.of = of;
    p.nof = nof;
    char err[2048];
    tl_graph *dg = gr_transform(g, r, &p, err, sizeof err);
    if (!dg) {
      fprintf(stderr, "tlaloc: %s\n", err);
    } else {
      char *text = tl_tg_print(dg);
      FILE *f = out ? fopen(out, "w") : stdout;
      if (!f) {
        fprintf(stderr, "tlaloc: cannot write %s\n", out);
      } else {
        fputs(text, f);
        rc = 0;
        if (out && fclose(f)) {
          fprintf(stderr, "tlaloc: cannot write %s\n", out);
          rc = CLI_EXIT_BAD;
        }
      }
      tl_free(text);
      tl_graph_free(dg);
    }
  }
  tl_free(diag.s);
  gr_rules_free(r);
  tl_graph_free(g);
done:
  tl_free((void *)rules);
  tl_free((void *)wrt);
  tl_free((void *)of);
  return rc;
}
