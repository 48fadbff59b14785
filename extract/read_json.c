/* read_json.c - egraph-serialize JSON (the format of extraction-gym) into an
 * ex_graph.
 *
 * Library: cJSON. Measured with bench/extract/json-speed.c (parse + walk of
 * every node, min of 7 runs, -O2, this 2-core Debian 12 box):
 *
 *   file                 bytes   cJSON   jansson  json-c   (ms)
 *   tensat/bert.json     3.9 MB  16.4    76.0     44.7
 *   egg/lambda_fib.json  2.3 MB   9.0    44.3     26.3
 *   rover/mcm_3_7_21     1.9 MB  17.1    68.5     41.5
 *   herbie/6439.json     1.5 MB   9.9    46.2     29.9
 *
 * cJSON is 2.5-5x faster because it builds plain linked lists instead of
 * hash tables; its object lookup is linear, which is fine for the five-field
 * node objects, and we index the big "nodes" object ourselves (node name ->
 * class) with an XXH3 open-addressing table. yyjson and simdjson are not in
 * Debian 12.
 *
 * Format: {"nodes": {NODE: {"op", "children": [NODE...], "eclass": CLASS,
 * "cost" (default 1), "subsumed" (optional)}}, "root_eclasses": [CLASS...]}.
 * Children name nodes; only the child's class matters to extraction. Ids may
 * be strings or integers. Subsumed nodes (egglog) stay resolvable as children
 * but are not candidates. */
#include "extract/ex_internal.h"
#include "util/util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

/* String -> uint32 map, keys borrowed (they live in the cJSON tree). */
typedef struct strmap {
  const char **key;
  uint32_t *val;
  size_t mask;
} strmap;

static bool strmap_init(strmap *m, size_t n) {
  size_t cap = 16;
  while (cap < 2 * n + 2) cap *= 2;
  m->key = tl_xcalloc(cap, sizeof *m->key);
  m->val = tl_xmalloc(cap * sizeof *m->val);
  m->mask = cap - 1;
  return m->key && m->val;
}

static void strmap_free(strmap *m) {
  tl_free(m->key);
  tl_free(m->val);
}

/* Returns the slot of k: either holding k or empty. Capacity is fixed at
 * twice the maximum key count, so a free slot always exists. */
static size_t strmap_slot(const strmap *m, const char *k) {
  size_t i = (size_t)XXH3_64bits(k, strlen(k)) & m->mask;
  while (m->key[i] && strcmp(m->key[i], k) != 0) i = (i + 1) & m->mask;
  return i;
}

/* Ids in the wild are strings, but integers are accepted: they are printed
 * into buf and interned as text. */
static const char *id_text(const cJSON *v, char *buf, size_t len) {
  if (cJSON_IsString(v)) return v->valuestring;
  if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 1e15) {
    snprintf(buf, len, "%.0f", v->valuedouble);
    return buf;
  }
  return NULL;
}

typedef struct reader {
  const char *name;
  tl_error *d;
  ex_graph *g;
  strmap nodes;   /* node name -> index in the nodes object (input order) */
  strmap classes; /* class name -> class id */
  uint32_t *node_cls;
  char **owned; /* integer ids printed to text; freed at the end */
  size_t n_owned;
} reader;

static ex_status schema(reader *r, const char *fmt, const char *a, const char *b) {
  char what[400];
  snprintf(what, sizeof what, fmt, a, b);
  return ex_fail(r->d, EX_ERR_SCHEMA, "%s: error: %s", r->name, what);
}

/* Interned copy of an integer id (cJSON's string for strings). */
static const char *keep_id(reader *r, const cJSON *v) {
  char buf[40];
  const char *t = id_text(v, buf, sizeof buf);
  if (!t || t != buf) return t;
  char *c = tl_xstrdup(buf);
  if (!c) return NULL;
  r->owned[r->n_owned++] = c;
  return c;
}

static uint32_t class_of(reader *r, const char *name) {
  size_t s = strmap_slot(&r->classes, name);
  if (r->classes.key[s]) return r->classes.val[s];
  uint32_t id = ex_graph_add_class(r->g, name);
  if (id == EX_NONE) return EX_NONE;
  r->classes.key[s] = name;
  r->classes.val[s] = id;
  return id;
}

static ex_status read_tree(reader *r, const cJSON *root) {
  if (!cJSON_IsObject(root)) return schema(r, "the top level is not a JSON object%s%s", "", "");
  const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(root, "nodes");
  const cJSON *roots = cJSON_GetObjectItemCaseSensitive(root, "root_eclasses");
  if (!cJSON_IsObject(nodes)) return schema(r, "missing or non-object \"nodes\"%s%s", "", "");
  if (!cJSON_IsArray(roots)) return schema(r, "missing or non-array \"root_eclasses\"%s%s", "", "");
  size_t nn = (size_t)cJSON_GetArraySize(nodes), nr = (size_t)cJSON_GetArraySize(roots);
  if (!strmap_init(&r->nodes, nn) || !strmap_init(&r->classes, nn + nr) ||
      !(r->node_cls = tl_xmalloc((nn + 1) * sizeof(uint32_t))) ||
      !(r->owned = tl_xcalloc(2 * nn + nr + 1, sizeof(char *))))
    return ex_fail(r->d, EX_ERR_NOMEM, "%s: error: out of memory", r->name);

  /* Pass 1: every node's name and class, so children can be resolved in
   * pass 2 regardless of the order nodes appear in. */
  uint32_t i = 0;
  for (const cJSON *n = nodes->child; n; n = n->next, i++) {
    if (!cJSON_IsObject(n)) return schema(r, "node '%s' is not an object%s", n->string, "");
    size_t s = strmap_slot(&r->nodes, n->string);
    if (r->nodes.key[s]) return schema(r, "node '%s' is defined twice%s", n->string, "");
    r->nodes.key[s] = n->string;
    r->nodes.val[s] = i;
    const cJSON *ec = cJSON_GetObjectItemCaseSensitive(n, "eclass");
    const char *cn = ec ? keep_id(r, ec) : NULL;
    if (!cn) return schema(r, "node '%s' has no string \"eclass\"%s", n->string, "");
    if ((r->node_cls[i] = class_of(r, cn)) == EX_NONE)
      return ex_fail(r->d, EX_ERR_NOMEM, "%s: error: out of memory", r->name);
  }

  /* Pass 2: the nodes themselves, children mapped to their classes. */
  uint32_t *kids = NULL, cap = 0;
  ex_status st = EX_OK;
  for (const cJSON *n = nodes->child; n && st == EX_OK; n = n->next) {
    uint32_t idx = r->nodes.val[strmap_slot(&r->nodes, n->string)];
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(n, "children");
    const cJSON *co = cJSON_GetObjectItemCaseSensitive(n, "cost");
    const cJSON *su = cJSON_GetObjectItemCaseSensitive(n, "subsumed");
    if (ch && !cJSON_IsArray(ch)) {
      st = schema(r, "node '%s': \"children\" is not an array%s", n->string, "");
      break;
    }
    if (co && !(cJSON_IsNumber(co) && isfinite(co->valuedouble))) {
      st = schema(r, "node '%s': \"cost\" is not a finite number%s", n->string, "");
      break;
    }
    uint32_t k = 0, nk = ch ? (uint32_t)cJSON_GetArraySize(ch) : 0;
    if (nk > cap) {
      uint32_t *q = tl_xrealloc(kids, (size_t)nk * sizeof *q);
      if (!q) {
        st = ex_fail(r->d, EX_ERR_NOMEM, "%s: error: out of memory", r->name);
        break;
      }
      kids = q, cap = nk;
    }
    for (const cJSON *c = ch ? ch->child : NULL; c; c = c->next, k++) {
      char buf[40];
      const char *cn = id_text(c, buf, sizeof buf);
      size_t s = cn ? strmap_slot(&r->nodes, cn) : 0;
      if (!cn || !r->nodes.key[s]) {
        st = schema(r, "node '%s' has child '%s', which is not a node", n->string, cn ? cn : "(not a string)");
        break;
      }
      kids[k] = r->node_cls[r->nodes.val[s]];
    }
    if (st != EX_OK || cJSON_IsTrue(su)) continue;
    if (ex_graph_add_node(r->g, r->node_cls[idx], co ? co->valuedouble : 1.0, kids, nk, n->string) == EX_NONE)
      st = ex_fail(r->d, EX_ERR_NOMEM, "%s: error: out of memory", r->name);
  }
  tl_free(kids);
  if (st != EX_OK) return st;

  for (const cJSON *c = roots->child; c; c = c->next) {
    char buf[40];
    const char *cn = id_text(c, buf, sizeof buf);
    if (!cn) return schema(r, "a root e-class id is not a string%s%s", "", "");
    size_t s = strmap_slot(&r->classes, cn);
    if (!r->classes.key[s])
      return schema(r,
                    "root e-class '%s' has no e-node (not the e-class of any node; "
                    "root ids must be canonical)%s",
                    cn, "");
    if ((st = ex_graph_add_root(r->g, r->classes.val[s])) != EX_OK)
      return ex_fail(r->d, st, "%s: error: out of memory", r->name);
  }
  tl_error fd;
  if ((st = ex_graph_finish(r->g, &fd)) != EX_OK) return ex_fail(r->d, st, "%s: error: %s", r->name, fd.msg);
  return EX_OK;
}

/* Line and column (1-based) of byte offset off, for syntax errors. */
static void line_col(const char *buf, size_t off, unsigned *line, unsigned *col) {
  *line = 1, *col = 1;
  for (size_t i = 0; i < off; i++) {
    if (buf[i] == '\n')
      (*line)++, *col = 1;
    else
      (*col)++;
  }
}

ex_status ex_read_json_buf(const char *buf, size_t len, const char *name, ex_graph **out, tl_error *d) {
  *out = NULL;
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, false);
  if (!root) {
    size_t off = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : 0;
    unsigned line, col;
    line_col(buf, off, &line, &col);
    size_t rest = off;
    while (rest < len && (buf[rest] == ' ' || buf[rest] == '\n' || buf[rest] == '\r' || buf[rest] == '\t')) rest++;
    if (rest >= len)
      return ex_fail(d, EX_ERR_SYNTAX, "%s:%u:%u: error: JSON syntax error: unexpected end of input", name, line, col);
    /* the buffer need not be NUL-terminated: quote at most what is left */
    size_t near = len - off < 20 ? len - off : 20;
    return ex_fail(d, EX_ERR_SYNTAX, "%s:%u:%u: error: JSON syntax error near '%.*s'", name, line, col, (int)near,
                   buf + off);
  }
  reader r = {.name = name, .d = d, .g = ex_graph_new()};
  ex_status st = r.g ? read_tree(&r, root) : ex_fail(d, EX_ERR_NOMEM, "%s: error: out of memory", name);
  strmap_free(&r.nodes);
  strmap_free(&r.classes);
  tl_free(r.node_cls);
  for (size_t i = 0; i < r.n_owned; i++) tl_free(r.owned[i]);
  tl_free(r.owned);
  cJSON_Delete(root);
  if (st != EX_OK) {
    ex_graph_free(r.g);
    return st;
  }
  *out = r.g;
  return EX_OK;
}

ex_status ex_read_json(const char *path, ex_graph **out, tl_error *d) {
  *out = NULL;
  char why[256];
  size_t len;
  char *buf = tl_read_input(path, TL_READ_MAX_TEXT, &len, why, sizeof why);
  if (!buf)
    return ex_fail(d, strncmp(why, "out of memory", 13) == 0 ? EX_ERR_NOMEM : EX_ERR_IO, "%s: error: %s", path, why);
  ex_status st = ex_read_json_buf(buf, len, path, out, d);
  tl_free(buf);
  return st;
}
