/* sexp.h - private tokenizer for terms (.tg-like s-expressions) and .rw
 * rule files: parens, brackets, atoms, `;` comments, with line:col. */
#ifndef TL_EGRAPH_SEXP_H
#define TL_EGRAPH_SEXP_H

#include <stddef.h>

typedef enum { SX_LP, SX_RP, SX_LB, SX_RB, SX_ATOM, SX_EOF } sx_kind;

typedef struct sx_tok {
  sx_kind k;
  const char *s;
  size_t n;
  int line, col;
} sx_tok;

typedef struct sx_lexer {
  const char *src, *p, *end;
  int line, col;
  sx_tok peeked;
  int has_peek;
} sx_lexer;

void sx_init(sx_lexer *lx, const char *src, size_t n);
sx_tok sx_next(sx_lexer *lx);
sx_tok sx_peek(sx_lexer *lx);
/* Consumes tokens up to and including the ) closing an open ( (error
 * recovery: the reader goes on after a malformed form). */
void sx_skip_close(sx_lexer *lx);
/* The text of source line `line` (no newline) and its length. */
const char *sx_line(const sx_lexer *lx, int line, size_t *n);
int sx_is(sx_tok t, const char *s); /* atom equal to s */

#endif
