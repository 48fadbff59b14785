/* util.h - growable arrays, string helpers, bounded file input and a
 * monotonic clock; allocation itself is util/alloc.h (included here). */
#ifndef TL_UTIL_H
#define TL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/alloc.h"

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

/* The folder of the shipped .rw rules, which the optimizer, the backend's
 * planner and grad load when given none: $TLALOC_RULES_DIR when set, else
 * the source tree's rules/ when it exists (a build used in place), else the
 * installed copy (meson install: PREFIX/share/tlaloc/rules). */
const char *tl_rules_dir(void);

/* Input size limits. Every file tlaloc reads goes through tl_open_input,
 * and all but .npy data through tl_read_input, so that no input (a huge or
 * endless file, /dev/zero, a pipe) makes it read or allocate without bound.
 * Text (.tg programs, .rw rules, JSON e-graphs) is written by people or
 * frontends: 64 MiB is far beyond any of it (the largest extraction-gym
 * e-graph is 4 MB). Array data (.npy) may be large: 1 GiB. */
#define TL_READ_MAX_TEXT ((size_t)64 << 20)
#define TL_READ_MAX_DATA ((size_t)1 << 30)

/* Opens path for binary reading. *size gets a regular file's size, or -1
 * for a file of unknown size (a pipe, a device), which the caller must
 * read with a bound of its own. A folder is refused. NULL on failure with
 * the reason (without the path) in why. */
FILE *tl_open_input(const char *path, int64_t *size, char *why, size_t why_size);
/* Reads a whole file of at most max bytes into a NUL-terminated heap
 * string (*len: its length without the NUL). A larger file, or one of
 * unknown size that gives more than max bytes, is refused. NULL on failure
 * with the reason (without the path) in why. */
char *tl_read_input(const char *path, size_t max, size_t *len, char *why, size_t why_size);
/* tl_read_input for text (TL_READ_MAX_TEXT) with "path: reason" in err. */
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

/* The entries of folder `path` whose names end in `suffix` (NULL: every
 * entry but those starting with '.'), sorted by name, *n of them; NULL when
 * the folder cannot be opened. Rule folders and benchmark folders are read
 * in this order, so that results do not depend on the file system's.
 * Freed with tl_dir_list_free. */
char **tl_dir_list(const char *path, const char *suffix, int *n);
void tl_dir_list_free(char **names, int n);

#endif
