/* cmdline.c - split a command line into argv like a POSIX shell without expansions. */
#define _GNU_SOURCE
#include "cmdline.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void pbd_free_argv(char **argv)
{
    if (!argv)
        return;
    for (char **a = argv; *a; a++)
        free(*a);
    free(argv);
}

/* Append word (a copy of w[0..n)) to the vector *v of *n entries. 0 or -1 (out of memory). */
static int push_word(char ***v, size_t *n, size_t *cap, const char *w, size_t len)
{
    char *copy = strndup(w, len);
    if (!copy)
        return -1;
    if (*n + 2 > *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        char **nv = reallocarray(*v, nc, sizeof(**v));
        if (!nv) {
            free(copy);
            return -1;
        }
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = copy;
    (*v)[*n] = NULL;
    return 0;
}

char **pbd_split_command(const char *cmd, const char **why)
{
    const char *p = cmd ? cmd : "";
    const char *reason = NULL;
    char **v = NULL;
    size_t n = 0, cap = 0, len = 0;
    int have = 0;
    /* a word is never longer than the command: build each one here */
    char *word = malloc(strlen(p) + 1);

    if (!word) {
        reason = "out of memory";
        goto fail;
    }
    for (;;) {
        char c = *p;
        if (c == '\0' || isspace((unsigned char)c)) {
            if (have) {
                if (push_word(&v, &n, &cap, word, len) < 0) {
                    reason = "out of memory";
                    goto fail;
                }
                have = 0;
                len = 0;
            }
            if (!c)
                break;
            p++;
            continue;
        }
        if (c == '\\' && p[1] == '\n') { /* line continuation: not part of a word */
            p += 2;
            continue;
        }
        have = 1;
        if (c == '\\') {
            if (!p[1]) {
                reason = "trailing backslash";
                goto fail;
            }
            word[len++] = p[1];
            p += 2;
        } else if (c == '\'') {
            const char *q = strchr(p + 1, '\'');
            if (!q) {
                reason = "unterminated single quote";
                goto fail;
            }
            memcpy(word + len, p + 1, (size_t)(q - p - 1));
            len += (size_t)(q - p - 1);
            p = q + 1;
        } else if (c == '"') {
            p++;
            for (;;) {
                if (!*p) {
                    reason = "unterminated double quote";
                    goto fail;
                }
                if (*p == '"') {
                    p++;
                    break;
                }
                if (*p == '\\' && p[1] && strchr("$`\"\\\n", p[1])) {
                    if (p[1] != '\n')
                        word[len++] = p[1];
                    p += 2;
                    continue;
                }
                word[len++] = *p++;
            }
        } else {
            word[len++] = c;
            p++;
        }
    }
    if (n == 0) {
        reason = "empty command";
        goto fail;
    }
    free(word);
    return v;
fail:
    free(word);
    pbd_free_argv(v);
    if (why)
        *why = reason;
    return NULL;
}
