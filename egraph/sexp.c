/* sexp.c - the tokenizer shared by eg_add_term and the .rw parser. */
#include "egraph/sexp.h"

#include <string.h>

void sx_init(sx_lexer *lx, const char *src, size_t n) {
  lx->src = lx->p = src;
  lx->end = src + n;
  lx->line = lx->col = 1;
  lx->has_peek = 0;
}

static int is_delim(char c) {
  return c == '(' || c == ')' || c == '[' || c == ']' || c == ';' || c == ' ' ||
         c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

sx_tok sx_next(sx_lexer *lx) {
  if (lx->has_peek) {
    lx->has_peek = 0;
    return lx->peeked;
  }
  for (;;) {
    if (lx->p >= lx->end) return (sx_tok){SX_EOF, lx->p, 0, lx->line, lx->col};
    char c = *lx->p;
    if (c == '\n') {
      lx->p++;
      lx->line++;
      lx->col = 1;
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      lx->p++;
      lx->col++;
    } else if (c == ';') {
      while (lx->p < lx->end && *lx->p != '\n') lx->p++;
    } else {
      break;
    }
  }
  sx_tok t = {SX_ATOM, lx->p, 1, lx->line, lx->col};
  switch (*lx->p) {
  case '(': t.k = SX_LP; break;
  case ')': t.k = SX_RP; break;
  case '[': t.k = SX_LB; break;
  case ']': t.k = SX_RB; break;
  default:
    t.n = 0;
    while (lx->p + t.n < lx->end && !is_delim(lx->p[t.n])) t.n++;
  }
  lx->p += t.n;
  lx->col += (int)t.n;
  return t;
}

sx_tok sx_peek(sx_lexer *lx) {
  if (!lx->has_peek) {
    lx->peeked = sx_next(lx);
    lx->has_peek = 1;
  }
  return lx->peeked;
}

const char *sx_line(const sx_lexer *lx, int line, size_t *n) {
  const char *p = lx->src;
  for (int l = 1; l < line && p < lx->end; p++)
    if (*p == '\n') l++;
  const char *e = p;
  while (e < lx->end && *e != '\n') e++;
  *n = (size_t)(e - p);
  return p;
}

int sx_is(sx_tok t, const char *s) {
  return t.k == SX_ATOM && strlen(s) == t.n && memcmp(t.s, s, t.n) == 0;
}

void sx_skip_close(sx_lexer *lx) {
  for (int depth = 1; depth > 0;) {
    sx_tok t = sx_next(lx);
    if (t.k == SX_EOF) return;
    if (t.k == SX_LP) depth++;
    if (t.k == SX_RP) depth--;
  }
}
