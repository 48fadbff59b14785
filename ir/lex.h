/* lex.h - the tokenizer shared by the s-expression formats (.tg graphs,
 * .rw rules): parentheses, brackets, `:keyword`, `?var`, numbers, names,
 * and `;` comments to the end of the line. Positions are 1-based line and
 * byte column. */
#ifndef TL_LEX_H
#define TL_LEX_H

#include "ir/ir.h"

typedef enum tl_tok_kind {
  TK_EOF, TK_LPAREN, TK_RPAREN, TK_LBRACK, TK_RBRACK,
  TK_KEYWORD, /* :axis  (text excludes the colon) */
  TK_VAR,     /* ?x     (text excludes the question mark) */
  TK_NUMBER,  /* 1 -2 0.5 1e-3 inf -inf nan */
  TK_NAME,
  TK_ARROW,   /* => */
  TK_BIARROW, /* <=> */
  TK_BAD      /* a character no token starts with */
} tl_tok_kind;

typedef struct tl_tok {
  tl_tok_kind kind;
  const char *text;
  size_t len;
  tl_loc loc;
} tl_tok;

typedef struct tl_lexer {
  const char *p, *end;
  int line, col;
  tl_tok peeked;
  bool has_peek;
} tl_lexer;

void tl_lex_init(tl_lexer *lx, const char *src, size_t len);
tl_tok tl_lex_next(tl_lexer *lx);
tl_tok tl_lex_peek(tl_lexer *lx);

/* Number token value; *is_int tells whether it was written as an integer.
 * Returns false (integer out of int64 range) on overflow. */
bool tl_tok_number(const tl_tok *t, double *f, int64_t *i, bool *is_int);
bool tl_tok_is(const tl_tok *t, const char *s);

#endif
