/* cli/cmd_extract.c - `tlaloc extract E.json [--extract tree|dag|exact]
 * [--time-limit S] [--json]`: read a serialized e-graph, extract, print
 * costs, time and the choice (extract/extract.h does the work). Exit 0 on
 * success, 2 on bad input or usage. */
#include "cli/cli.h"

#include "extract/extract.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(const char *msg) {
  if (msg) fprintf(stderr, "tlaloc extract: error: %s\n", msg);
  fputs("usage: tlaloc extract E.json [--extract tree|dag|exact] [--time-limit S] [--json]\n", stderr);
  return 2;
}

static void print_text(const ex_graph *g, const char *path, ex_kind kind, const ex_result *r) {
  char b1[32], b2[32];
  printf("file: %s\nextractor: %s\nclasses: %u\nnodes: %u\n", path, ex_kind_name(kind), g->n_classes, g->n_nodes);
  printf("dag_cost: %.17g\ntree_cost: %.17g\ntime_ms: %.3f\n", r->dag_cost, r->tree_cost, r->seconds * 1e3);
  if (kind == EX_EXACT) printf("optimal: %s\nlower_bound: %.17g\n", r->optimal ? "yes" : "no", r->lower_bound);
  puts("choice:");
  for (uint32_t c = 0; c < g->n_classes; c++)
    if (r->choice[c] != EX_NONE)
      printf("  %s -> %s\n", ex_graph_class_name(g, c, b1, sizeof b1),
             ex_graph_node_name(g, r->choice[c], b2, sizeof b2));
}

static int print_json(const ex_graph *g, const char *path, ex_kind kind, const ex_result *r) {
  char b1[32], b2[32];
  cJSON *o = cJSON_CreateObject(), *ch = cJSON_CreateObject();
  if (!o || !ch) {
    cJSON_Delete(o), cJSON_Delete(ch);
    return 2;
  }
  cJSON_AddStringToObject(o, "file", path);
  cJSON_AddStringToObject(o, "extractor", ex_kind_name(kind));
  cJSON_AddNumberToObject(o, "dag_cost", r->dag_cost);
  cJSON_AddNumberToObject(o, "tree_cost", r->tree_cost);
  cJSON_AddNumberToObject(o, "time_ms", r->seconds * 1e3);
  if (kind == EX_EXACT) {
    cJSON_AddBoolToObject(o, "optimal", r->optimal);
    if (isfinite(r->lower_bound)) cJSON_AddNumberToObject(o, "lower_bound", r->lower_bound);
  }
  for (uint32_t c = 0; c < g->n_classes; c++)
    if (r->choice[c] != EX_NONE)
      cJSON_AddStringToObject(ch, ex_graph_class_name(g, c, b1, sizeof b1),
                              ex_graph_node_name(g, r->choice[c], b2, sizeof b2));
  cJSON_AddItemToObject(o, "choice", ch);
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!s) return 2;
  puts(s);
  cJSON_free(s);
  return 0;
}

int cli_cmd_extract(int argc, char **argv) {
  const char *path = NULL;
  ex_kind kind = EX_DAG;
  ex_params p = ex_params_default();
  bool json = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--extract") == 0 || strncmp(a, "--extract=", 10) == 0) {
      const char *v = a[9] == '=' ? a + 10 : (i + 1 < argc ? argv[++i] : NULL);
      if (!v || (kind = ex_kind_parse(v)) == EX_KIND_COUNT) return usage("--extract takes tree, dag or exact");
    } else if (strcmp(a, "--time-limit") == 0 || strncmp(a, "--time-limit=", 13) == 0) {
      const char *v = a[12] == '=' ? a + 13 : (i + 1 < argc ? argv[++i] : NULL);
      char *end = NULL;
      p.time_limit_s = v ? strtod(v, &end) : NAN;
      if (!v || end == v || *end || !(p.time_limit_s >= 0)) return usage("--time-limit takes a number of seconds >= 0");
    } else if (strcmp(a, "--json") == 0) {
      json = true;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(NULL);
      return 0;
    } else if (a[0] == '-' && a[1]) {
      char m[128];
      snprintf(m, sizeof m, "unknown option '%.80s'", a);
      return usage(m);
    } else if (path) {
      return usage("more than one input file");
    } else {
      path = a;
    }
  }
  if (!path) return usage("no input file");

  ex_graph *g;
  tl_error d;
  if (ex_read_json(path, &g, &d) != EX_OK) {
    fprintf(stderr, "%s\n", d.msg);
    return 2;
  }
  ex_result r;
  if (ex_extract(g, kind, p, &r, &d) != EX_OK) {
    fprintf(stderr, "%s: error: %s\n", path, d.msg);
    ex_graph_free(g);
    return 2;
  }
  int rc = 0;
  if (json)
    rc = print_json(g, path, kind, &r);
  else
    print_text(g, path, kind, &r);
  ex_result_free(&r);
  ex_graph_free(g);
  return rc;
}
