/* lex.c - see lex.h. */
#include "ir/lex.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void tl_lex_init(tl_lexer *lx, const char *src, size_t len) {
  lx->p = src;
  lx->end = src + len;
  lx->line = 1;
  lx->col = 1;
  lx->has_peek = false;
}

static void adv(tl_lexer *lx) {
  if (*lx->p == '\n') {
    lx->line++;
    lx->col = 1;
  } else {
    lx->col++;
  }
  lx->p++;
}

static bool name_char(int c) {
  return isalnum(c) || c == '_' || c == '.' || c == '-' || c == '\'' || c == '+' ||
         c == '*' || c == '/' || c == '<' || c == '>' || c == '=' || c == '!' || c == '^';
}

static bool is_number_text(const char *s, size_t n) {
  size_t i = 0;
  if (i < n && (s[i] == '-' || s[i] == '+')) i++;
  if (n - i == 3 && (memcmp(s + i, "inf", 3) == 0 || memcmp(s + i, "nan", 3) == 0)) return true;
  bool digits = false;
  while (i < n && isdigit((unsigned char)s[i])) i++, digits = true;
  if (i < n && s[i] == '.') {
    i++;
    while (i < n && isdigit((unsigned char)s[i])) i++, digits = true;
  }
  if (!digits) return false;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '-' || s[i] == '+')) i++;
    bool ed = false;
    while (i < n && isdigit((unsigned char)s[i])) i++, ed = true;
    if (!ed) return false;
  }
  return i == n;
}

static tl_tok lex(tl_lexer *lx) {
  for (;;) {
    while (lx->p < lx->end && isspace((unsigned char)*lx->p)) adv(lx);
    if (lx->p < lx->end && *lx->p == ';') {
      while (lx->p < lx->end && *lx->p != '\n') adv(lx);
      continue;
    }
    break;
  }
  tl_tok t = {TK_EOF, lx->p, 0, {lx->line, lx->col}};
  if (lx->p >= lx->end) return t;
  char c = *lx->p;
  if (c == '(' || c == ')' || c == '[' || c == ']') {
    t.kind = c == '(' ? TK_LPAREN : c == ')' ? TK_RPAREN : c == '[' ? TK_LBRACK : TK_RBRACK;
    t.len = 1;
    adv(lx);
    return t;
  }
  if (c == ':' || c == '?') {
    adv(lx);
    const char *s = lx->p;
    while (lx->p < lx->end && name_char((unsigned char)*lx->p)) adv(lx);
    t.kind = c == ':' ? TK_KEYWORD : TK_VAR;
    t.text = s;
    t.len = (size_t)(lx->p - s);
    return t;
  }
  if (!name_char((unsigned char)c)) {
    t.kind = TK_BAD;
    t.len = 1;
    adv(lx);
    return t;
  }
  while (lx->p < lx->end && name_char((unsigned char)*lx->p)) adv(lx);
  t.len = (size_t)(lx->p - t.text);
  if (t.len == 2 && memcmp(t.text, "=>", 2) == 0) t.kind = TK_ARROW;
  else if (t.len == 3 && memcmp(t.text, "<=>", 3) == 0) t.kind = TK_BIARROW;
  else t.kind = is_number_text(t.text, t.len) ? TK_NUMBER : TK_NAME;
  return t;
}

tl_tok tl_lex_next(tl_lexer *lx) {
  if (lx->has_peek) {
    lx->has_peek = false;
    return lx->peeked;
  }
  return lex(lx);
}

tl_tok tl_lex_peek(tl_lexer *lx) {
  if (!lx->has_peek) {
    lx->peeked = lex(lx);
    lx->has_peek = true;
  }
  return lx->peeked;
}

bool tl_tok_is(const tl_tok *t, const char *s) {
  return strlen(s) == t->len && memcmp(t->text, s, t->len) == 0;
}

bool tl_tok_number(const tl_tok *t, double *f, int64_t *i, bool *is_int) {
  char buf[128];
  size_t n = t->len < sizeof buf - 1 ? t->len : sizeof buf - 1;
  memcpy(buf, t->text, n);
  buf[n] = 0;
  *is_int = strpbrk(buf, ".eEin") == NULL; /* "inf"/"nan" have i or n */
  if (*is_int) {
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE) return false;
    *i = v;
    *f = (double)v;
    return true;
  }
  const char *s = buf;
  bool neg = false;
  if (*s == '-' || *s == '+') neg = *s++ == '-';
  if (strcmp(s, "inf") == 0) *f = neg ? -INFINITY : INFINITY;
  else if (strcmp(s, "nan") == 0) *f = NAN;
  else *f = strtod(buf, NULL);
  *i = 0;
  return true;
}
