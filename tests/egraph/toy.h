/* toy.h - a tiny language for the e-graph tests: leaves `a`..`z` and
 * integers (payload = the token), unary f, binary g, and `sum` with an
 * `:axis N` attribute (payload = the axis byte), to exercise attributes. */
#ifndef TL_TESTS_EGRAPH_TOY_H
#define TL_TESTS_EGRAPH_TOY_H

#include <stdio.h>
#include <string.h>

#include "egraph/egraph.h"

enum { TOY_LEAF, TOY_F, TOY_G, TOY_SUM, TOY_NOPS };
static const char *const toy_names[TOY_NOPS] = {"leaf", "f", "g", "sum"};
static const int toy_arity[TOY_NOPS] = {0, 1, 2, 1};

static int toy_leaf(const eg_lang *l, const char *tok, size_t n, int *op, uint8_t *attr) {
  (void)l;
  if (n == 0 || n > 16) return -1;
  *op = TOY_LEAF;
  memcpy(attr, tok, n);
  return (int)n;
}

static int toy_attrs(const eg_lang *l, int op, const eg_kv *kv, int nkv, uint8_t *attr,
                     char *err, size_t errsz) {
  (void)l;
  if (op != TOY_SUM) {
    if (nkv) {
      snprintf(err, errsz, "op '%s' takes no attributes", toy_names[op]);
      return -1;
    }
    return 0;
  }
  attr[0] = 0;
  for (int i = 0; i < nkv; i++) {
    if (kv[i].keylen != 4 || memcmp(kv[i].key, "axis", 4)) {
      snprintf(err, errsz, "unknown attribute ':%.*s'", (int)kv[i].keylen, kv[i].key);
      return -1;
    }
    attr[0] = (uint8_t)(kv[i].val[0] - '0');
  }
  return 1;
}

static int toy_print(const eg_lang *l, int op, const uint8_t *attr, size_t n, char *buf,
                     size_t size) {
  (void)l;
  if (op == TOY_LEAF) return snprintf(buf, size, "%.*s", (int)n, (const char *)attr);
  if (op == TOY_SUM) return snprintf(buf, size, "sum :axis %d", n ? attr[0] : 0);
  return snprintf(buf, size, "%s", toy_names[op]);
}

static const eg_lang toy_lang = {.name = "toy", .nops = TOY_NOPS, .op_names = toy_names,
                                 .arity = toy_arity, .parse_leaf = toy_leaf, .parse_attrs = toy_attrs,
                                 .print_head = toy_print};

#endif
