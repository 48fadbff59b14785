/* api.c - the public C API (include/tlaloc.h) over the internal modules. */
#include "tlaloc.h"

#include "interp/interp.h"
#include "ir/tg.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(TLALOC_MAX_RANK == TL_MAX_RANK, "public and internal max rank agree");
_Static_assert((int)TLALOC_F64 == (int)TL_F64 && (int)TLALOC_BOOL == (int)TL_BOOL,
               "public and internal dtype codes agree");

tlaloc_status tlaloc_parse(const char *src, size_t len, const char *file, tlaloc_graph **out,
                           char **errors) {
  tl_diag d;
  tl_diag_init(&d, file, src, len);
  *out = tl_tg_parse(src, len, &d);
  if (errors) *errors = *out ? NULL : tl_xstrdup(tl_diag_text(&d));
  tl_diag_free(&d);
  return *out ? TLALOC_OK : TLALOC_BAD_INPUT;
}

void tlaloc_graph_free(tlaloc_graph *g) { tl_graph_free(g); }
char *tlaloc_print(const tlaloc_graph *g) { return tl_tg_print(g); }
int tlaloc_num_inputs(const tlaloc_graph *g) { return g->ninputs; }
int tlaloc_num_outputs(const tlaloc_graph *g) { return g->noutputs; }

const char *tlaloc_input_name(const tlaloc_graph *g, int i) {
  return i >= 0 && i < g->ninputs ? g->names[g->nodes[g->inputs[i]].name] : NULL;
}

const char *tlaloc_output_name(const tlaloc_graph *g, int i) {
  return i >= 0 && i < g->noutputs ? g->names[g->outputs[i].name] : NULL;
}

static char *type_string(const tlaloc_graph *g, const tl_type *t) {
  char buf[256];
  return tl_xstrdup(tl_type_str(g, t, buf, sizeof buf));
}

char *tlaloc_input_type(const tlaloc_graph *g, int i) {
  return i >= 0 && i < g->ninputs ? type_string(g, &g->nodes[g->inputs[i]].type) : NULL;
}

char *tlaloc_output_type(const tlaloc_graph *g, int i) {
  return i >= 0 && i < g->noutputs ? type_string(g, &g->nodes[g->outputs[i].node].type) : NULL;
}

tlaloc_status tlaloc_run(const tlaloc_graph *g, const tlaloc_tensor *inputs, int nin,
                         tlaloc_tensor *outputs, int nout, char **errors) {
  char err[1024];
  if (errors) *errors = NULL;
  if (nin != g->ninputs || nout != g->noutputs) {
    if (errors) {
      tl_buf b = {0};
      tl_buf_printf(&b, "graph '%s' takes %d inputs and gives %d outputs (called with %d and %d)",
                    g->name, g->ninputs, g->noutputs, nin, nout);
      *errors = b.s;
    }
    return TLALOC_BAD_INPUT;
  }
  tl_tensor **in = tl_xcalloc((size_t)nin + 1, sizeof *in);
  tl_tensor **out = tl_xcalloc((size_t)nout + 1, sizeof *out);
  int64_t *syms = tl_xmalloc(((size_t)g->nsyms + 1) * sizeof *syms);
  for (int i = 0; i < g->nsyms; i++) syms[i] = -1;
  tlaloc_status st = TLALOC_OK;
  for (int i = 0; i < nin; i++) {
    const tlaloc_tensor *x = &inputs[i];
    if (x->dtype < 0 || x->dtype >= TL_DTYPE_COUNT || x->rank < 0 || x->rank > TL_MAX_RANK ||
        !(in[i] = tl_tensor_wrap((tl_dtype)x->dtype, x->rank, x->dims, x->data))) {
      snprintf(err, sizeof err, "input %d has a bad descriptor (dtype %d, rank %d)", i, x->dtype, x->rank);
      st = TLALOC_BAD_INPUT;
      break;
    }
  }
  if (st == TLALOC_OK && (tl_bind_inputs(g, in, syms, err, sizeof err) ||
                          tl_interp_run(g, in, syms, out, err, sizeof err)))
    st = TLALOC_BAD_INPUT;
  if (st == TLALOC_OK) {
    for (int i = 0; i < nout; i++) {
      tl_tensor *t = out[i];
      memset(&outputs[i], 0, sizeof outputs[i]);
      outputs[i].dtype = t->dtype;
      outputs[i].rank = t->rank;
      memcpy(outputs[i].dims, t->dims, sizeof t->dims);
      outputs[i].data = t->data; /* ownership passes to the caller */
      t->owns = false;
      tl_tensor_free(t);
    }
  } else if (errors) {
    *errors = tl_xstrdup(err);
  }
  for (int i = 0; i < nin; i++) tl_tensor_free(in[i]);
  free(in);
  free(out);
  free(syms);
  return st;
}

void tlaloc_free(void *p) { free(p); }
