/* api_grad.c - tlaloc_grad (include/tlaloc.h) over grad/: the default
 * derivative rules are read once per process (they are immutable once
 * loaded), other rule paths at each call. */
#include "tlaloc.h"

#include "grad/grad.h"
#include "util/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static gr_rules *default_rules;
static char *default_err;

static void load_default(void) {
  gr_rules *r = gr_rules_new();
  tl_buf d = {0};
  if (gr_rules_load_path(r, tl_rules_dir(), &d)) {
    default_err = d.s ? d.s : tl_xstrdup("derivative rules: cannot be read");
    gr_rules_free(r);
    return;
  }
  tl_free(d.s);
  default_rules = r;
}

static tlaloc_status tlaloc_grad_unguarded(const tlaloc_graph *g, const tlaloc_grad_options *opts, tlaloc_graph **out,
                          char **errors) {
  if (errors) *errors = NULL;
  *out = NULL;
  tlaloc_grad_options none;
  memset(&none, 0, sizeof none);
  if (!opts) opts = &none;
  gr_params p = {.mode = GR_GRAD, .of = opts->of, .nof = opts->nof, .wrt = opts->wrt, .nwrt = opts->nwrt,
                 .with_outputs = opts->with_outputs != 0};
  if (opts->mode && !strcmp(opts->mode, "vjp")) p.mode = GR_VJP;
  else if (opts->mode && !strcmp(opts->mode, "jvp")) p.mode = GR_JVP;
  else if (opts->mode && strcmp(opts->mode, "grad")) {
    if (errors) {
      tl_buf b = {0};
      tl_buf_printf(&b, "grad: mode '%s': expected grad, vjp or jvp", opts->mode);
      *errors = b.s;
    }
    return TLALOC_BAD_INPUT;
  }
  const gr_rules *r;
  gr_rules *own = NULL;
  if (opts->nrules > 0) {
    own = gr_rules_new();
    tl_buf d = {0};
    int e = 0;
    for (int i = 0; i < opts->nrules; i++) e += gr_rules_load_path(own, opts->rule_paths[i], &d);
    if (e) {
      if (errors) *errors = d.s;
      else tl_free(d.s);
      gr_rules_free(own);
      return TLALOC_BAD_INPUT;
    }
    tl_free(d.s);
    r = own;
  } else {
    pthread_once(&default_once, load_default);
    if (!default_rules) {
      if (errors) *errors = tl_xstrdup(default_err);
      return TLALOC_BAD_INPUT;
    }
    r = default_rules;
  }
  char err[2048];
  *out = gr_transform(g, r, &p, err, sizeof err);
  gr_rules_free(own);
  if (!*out) {
    if (errors) *errors = tl_xstrdup(err);
    return TLALOC_BAD_INPUT;
  }
  return TLALOC_OK;
}

/* After an unwind: "out of memory" in *errors when that small string can
 * still be had (the failed allocation was undone). */
static tlaloc_status api_out_of_memory(char **errors, size_t failed) {
  char msg[64];
  snprintf(msg, sizeof msg, "out of memory (allocating %zu bytes)", failed);
  if (errors) *errors = tl_try_strdup(msg);
  return TLALOC_OUT_OF_MEMORY;
}

/* The public entry points: each runs in a region (util/alloc.h), so that
 * running out of memory anywhere below frees what the call allocated and
 * returns TLALOC_OUT_OF_MEMORY (NULL for the text functions). */
tlaloc_status tlaloc_grad(const tlaloc_graph *g, const tlaloc_grad_options *opts, tlaloc_graph **out,
                          char **errors) {
  tl_region r;
  if (!TL_REGION_TRY(&r)) {
    if (out) *out = NULL;
    return api_out_of_memory(errors, r.failed);
  }
  tlaloc_status st = tlaloc_grad_unguarded(g, opts, out, errors);
  tl_region_end(&r);
  return st;
}
