/* tg.h - the .tg graph text format (grammar in docs/design.md): parser and
 * canonical printer. parse(print(g)) is structurally equal to g, and
 * print(parse(print(g))) == print(g). */
#ifndef TL_TG_H
#define TL_TG_H

#include "util/error.h"
#include "util/alloc.h"
#include "ir/ir.h"

#include <stdio.h>

/* Parses one graph. On any error returns NULL, with every error that could
 * be found (file:line:col, source line, caret) in d. */
tl_graph *tl_tg_parse(const char *src, size_t len, tl_diag *d);

/* Reads and parses the .tg file at path; every diagnostic (or the read
 * error) is written to diag_out. NULL on failure. */
tl_graph *tl_tg_load(const char *path, FILE *diag_out);

/* Canonical text of g: inputs in declaration order, then a `let` for every
 * named or shared node in topological order, then the outputs. Returned
 * string is heap-allocated (tl_free()). */
char *tl_tg_print(const tl_graph *g);

/* One node as an expression (operands by name where they are named); for
 * messages and explanations. Heap-allocated. */
char *tl_tg_print_node(const tl_graph *g, int32_t node);

/* Shortest text that reads back as exactly v; always marks a float as one
 * ("2.0", "1e+30", "inf", "nan"). Writes into buf (>= 32 bytes). */
void tl_fmt_double(char *buf, size_t size, double v, bool as_f32);

/* Parses one ":key value" attribute of op (text holds just that) into a;
 * symbols are interned in g. -1 with a one-line message on error. */
int tl_tg_parse_attr(tl_graph *g, int op, const char *text, size_t len, tl_attrs *a,
                     char *err, size_t err_size);
/* Appends " :key value" for every attribute of a, and "[d ...]" for dims. */
void tl_tg_print_attrs(const tl_graph *g, const tl_attrs *a, tl_buf *out);
void tl_tg_print_dims(const tl_graph *g, const int64_t *dims, int n, tl_buf *out);

#endif
