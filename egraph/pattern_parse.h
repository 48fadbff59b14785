/* pattern_parse.h - private: the pattern reader shared by eg_pat_parse,
 * eg_add_term and the .rw parser. */
#ifndef TL_EGRAPH_PATTERN_PARSE_H
#define TL_EGRAPH_PATTERN_PARSE_H

#include "egraph/pattern.h"
#include "egraph/sexp.h"

/* An error at line:col. */
typedef struct eg_perr {
  int line, col;
  char msg[256];
} eg_perr;

enum {
  EG_VARS_NEW = 1,   /* unseen ?vars are declared (a left side) */
  EG_VARS_NONE = 2,  /* ?vars are an error (a ground term) */
};

/* Patterns nested deeper than this are refused: the reader, the matcher's
 * compiler and check-rules recurse once per level (the .tg parser has the
 * same limit). Ground terms (EG_VARS_NONE: eg_add_term) are data, not
 * rules, and are not limited. */
#define EG_PAT_MAX_DEPTH 1000

/* Reads one pattern from lx into out (appending). Returns 0, or -1 with err
 * set; on error the lexer is left after the offending expression when it
 * can be (so a caller may go on and report more). */
int eg_pattern_read(sx_lexer *lx, const eg_lang *l, eg_vartab *vt, int flags,
                    eg_pattern *out, eg_perr *err);

int eg_lang_op(const eg_lang *l, const char *s, size_t n); /* -1: unknown */

#endif
