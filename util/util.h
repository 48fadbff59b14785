/* util.h - allocation that never returns NULL (out of memory is not a user
 * error tlaloc can recover from: it prints and aborts), growable arrays,
 * string helpers and a monotonic clock. Large, user-sized allocations
 * (tensors) do not use these: they check sizes and report errors. */
#ifndef TL_UTIL_H
#define TL_UTIL_H

#include <stddef.h>
#include <stdint.h>

void *tl_xmalloc(size_t n);
void *tl_xcalloc(size_t n, size_t size);
void *tl_xrealloc(void *p, size_t n);
char *tl_xstrdup(const char *s);
char *tl_xstrndup(const char *s, size_t n);

/* Grows array `a` (with count n and capacity cap) to hold one more element. */
#define TL_GROW(a, n, cap)                                            \
  do {                                                                \
    if ((n) >= (cap)) {                                               \
      (cap) = (cap) ? (cap) * 2 : 8;                                  \
      (a) = tl_xrealloc((a), (size_t)(cap) * sizeof *(a));            \
    }                                                                 \
  } while (0)

/* Most operands any node may have (concat's variadic list included). */
#define TL_GRAPH_MAX_ARGS 1024

double tl_now_ms(void);

/* Reads a whole file (NUL-terminated); NULL with a message on failure. */
char *tl_read_file(const char *path, size_t *len, char *err, size_t err_size);

/* A growing string buffer. */
typedef struct tl_buf { char *s; size_t len, cap; } tl_buf;
void tl_buf_printf(tl_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void tl_buf_putn(tl_buf *b, const char *s, size_t n);

/* Quotes a source line under a diagnostic: "indent" + the line, then
 * "indent" + a caret under column col (1-based, in bytes). A line longer
 * than TL_QUOTE_WIDTH shows only a window of that many columns around col,
 * its cut ends marked "...", as clang does. */
#define TL_QUOTE_WIDTH 100
void tl_quote_line(tl_buf *b, const char *indent, const char *line, size_t n, int col);

#endif
