/* test_logfile.c - procbusd log capture: rotation, reopen, line splitter, tail reader. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "logfile.h"
#include "support.h"

/* ---- a scratch folder per test ---- */

struct fx {
    char dir[64];
    char path[128]; /* dir/out.log */
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/pbt-logfile-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/out.log", f->dir);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

/* path.N (N == 0: path itself) into buf[160]. */
static const char *nth(const struct fx *f, int n, char *buf)
{
    if (n == 0)
        snprintf(buf, 160, "%s", f->path);
    else
        snprintf(buf, 160, "%s.%d", f->path, n);
    return buf;
}

/* Size of path.N, or -1 if it does not exist. */
static long long fsize(const struct fx *f, int n)
{
    char p[160];
    struct stat st;
    if (stat(nth(f, n, p), &st) < 0)
        return -1;
    return (long long)st.st_size;
}

static char *slurp_nth(const struct fx *f, int n)
{
    char p[160];
    return pbt_slurp(nth(f, n, p), NULL);
}

static void put_file(const char *path, const char *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
}

/* Record i as exactly 10 bytes: "%09d\n". */
static void write_rec(struct pbd_log *l, int i)
{
    char r[16];
    snprintf(r, sizeof(r), "%09d\n", i);
    assert_int_equal(pbd_log_write(l, r, 10), 0);
}

static int first_rec(const struct fx *f, int n)
{
    char *s = slurp_nth(f, n);
    int v;
    assert_non_null(s);
    v = atoi(s);
    free(s);
    return v;
}

/* ---- rotation ---- */

static void test_rotation_boundaries(void **state)
{
    struct fx *f = *state;
    struct pbd_log *l = NULL;
    int i;

    assert_int_equal(pbd_log_open(&l, f->path, 100, 3), 0);
    assert_string_equal(pbd_log_path(l), f->path);
    assert_int_equal(fsize(f, 0), 0); /* created at open */
    for (i = 1; i <= 9; i++)
        write_rec(l, i);
    assert_int_equal(fsize(f, 0), 90);
    assert_int_equal(fsize(f, 1), -1);
    /* The write that reaches maxbytes rotates right after it (supervisord's doRollover). */
    write_rec(l, 10);
    assert_int_equal(fsize(f, 0), 0);
    assert_int_equal(fsize(f, 1), 100);
    write_rec(l, 11);
    assert_int_equal(fsize(f, 0), 10);
    assert_int_equal(fsize(f, 1), 100);
    assert_int_equal(first_rec(f, 1), 1);
    assert_int_equal(first_rec(f, 0), 11);
    for (i = 12; i <= 31; i++)
        write_rec(l, i);
    assert_int_equal(fsize(f, 0), 10);
    assert_int_equal(fsize(f, 1), 100);
    assert_int_equal(fsize(f, 2), 100);
    assert_int_equal(fsize(f, 3), 100);
    assert_int_equal(first_rec(f, 3), 1);
    assert_int_equal(first_rec(f, 2), 11);
    assert_int_equal(first_rec(f, 1), 21);
    assert_int_equal(first_rec(f, 0), 31);
    /* Past `backups`: the oldest copy is dropped, nothing beyond path.3. */
    for (i = 32; i <= 41; i++)
        write_rec(l, i);
    assert_int_equal(first_rec(f, 3), 11);
    assert_int_equal(first_rec(f, 2), 21);
    assert_int_equal(first_rec(f, 1), 31);
    assert_int_equal(first_rec(f, 0), 41);
    assert_int_equal(fsize(f, 4), -1);
    assert_int_equal(pbd_log_take_error(l), 0);
    pbd_log_close(l);
}

static void test_rotation_uneven(void **state)
{
    struct fx *f = *state;
    struct pbd_log *l = NULL;

    /* 25-byte limit, 10-byte writes: the write that passes 25 goes whole into the file, which
     * rotates after it (30 bytes in path.1). */
    assert_int_equal(pbd_log_open(&l, f->path, 25, 2), 0);
    write_rec(l, 1);
    write_rec(l, 2);
    assert_int_equal(fsize(f, 0), 20);
    write_rec(l, 3);
    assert_int_equal(fsize(f, 1), 30);
    assert_int_equal(fsize(f, 0), 0);
    /* Below the limit: no rotation; landing exactly on it rotates. */
    assert_int_equal(pbd_log_write(l, "123456789012345", 15), 0);
    assert_int_equal(fsize(f, 0), 15);
    assert_int_equal(fsize(f, 2), -1);
    assert_int_equal(pbd_log_write(l, "0123456789", 10), 0);
    assert_int_equal(fsize(f, 0), 0);
    assert_int_equal(fsize(f, 1), 25);
    assert_int_equal(fsize(f, 2), 30);
    /* Zero-length writes do nothing. */
    assert_int_equal(pbd_log_write(l, "x", 1), 0);
    assert_int_equal(pbd_log_write(l, "", 0), 0);
    assert_int_equal(fsize(f, 0), 1);
    pbd_log_close(l);
}

static void test_backups_limit(void **state)
{
    struct fx *f = *state;
    struct pbd_log *l = NULL;
    int i;

    assert_int_equal(pbd_log_open(&l, f->path, 10, 2), 0);
    for (i = 1; i <= 20; i++)
        write_rec(l, i);
    assert_int_equal(fsize(f, 0), 0); /* each record reaches the limit: rotated after it */
    assert_int_equal(first_rec(f, 1), 20);
    assert_int_equal(first_rec(f, 2), 19);
    assert_int_equal(fsize(f, 3), -1);
    pbd_log_close(l);

    /* backups = 1: only path.1. */
    assert_int_equal(pbd_log_open(&l, f->path, 10, 1), 0);
    write_rec(l, 21);
    write_rec(l, 22);
    assert_int_equal(fsize(f, 0), 0);
    assert_int_equal(first_rec(f, 1), 22);
    assert_int_equal(first_rec(f, 2), 19); /* left from before, untouched */
    pbd_log_close(l);
}

static void test_backups_zero_truncates(void **state)
{
    struct fx *f = *state;
    struct pbd_log *l = NULL;
    int i;

    assert_int_equal(pbd_log_open(&l, f->path, 100, 0), 0);
    for (i = 1; i <= 9; i++)
        write_rec(l, i);
    assert_int_equal(fsize(f, 0), 90);
    write_rec(l, 10); /* reaches 100: truncated */
    assert_int_equal(fsize(f, 0), 0);
    write_rec(l, 11);
    assert_int_equal(fsize(f, 0), 10);
    assert_int_equal(first_rec(f, 0), 11);
    assert_int_equal(fsize(f, 1), -1);
    for (i = 12; i <= 25; i++)
        write_rec(l, i);
    assert_int_equal(fsize(f, 0), 50);
    assert_int_equal(first_rec(f, 0), 21);
    assert_int_equal(fsize(f, 1), -1);
    pbd_log_close(l);
}

static void test_maxbytes_zero_never_rotates(void **state)
{
    struct fx *f = *state;
    struct pbd_log *l = NULL;
    static char chunk[65536];
    int i;

    memset(chunk, 'z', sizeof(chunk));
    assert_int_equal(pbd_log_open(&l, f->path, 0, 3), 0);
    for (i = 0; i < 32; i++)
        assert_int_equal(pbd_log_write(l, chunk, sizeof(chunk)), 0);
    assert_int_equal(fsize(f, 0), 32 * 65536);
    assert_int_equal(fsize(f, 1), -1);
    pbd_log_close(l);
}

static void test_discard(void **state)
{
    struct fx *f = *state;
    struct pbd_log *l = NULL;

    assert_int_equal(pbd_log_open(&l, NULL, 10, 3), 0);
    assert_non_null(l);
    assert_null(pbd_log_path(l));
    for (int i = 0; i < 100; i++)
        assert_int_equal(pbd_log_write(l, "discarded\n", 10), 0);
    assert_int_equal(pbd_log_reopen(l), 0);
    assert_int_equal(pbd_log_take_error(l), 0);
    pbd_log_close(l);
    pbd_log_close(NULL);
    assert_int_equal(fsize(f, 0), -1);
}

static void test_write_bigger_than_maxbytes(void **state)
{
    struct fx *f = *state;
    struct pbd_log *l = NULL;
    char big[250];

    memset(big, 'B', sizeof(big));
    assert_int_equal(pbd_log_open(&l, f->path, 100, 3), 0);
    /* Into an empty file: written whole, then rotated. */
    assert_int_equal(pbd_log_write(l, big, sizeof(big)), 0);
    assert_int_equal(fsize(f, 0), 0);
    assert_int_equal(fsize(f, 1), 250);
    assert_int_equal(pbd_log_write(l, "0123456789", 10), 0);
    assert_int_equal(fsize(f, 0), 10);
    assert_int_equal(fsize(f, 1), 250);
    /* Into a non-empty file: written whole after what is there, then rotated. */
    assert_int_equal(pbd_log_write(l, big, sizeof(big)), 0);
    assert_int_equal(fsize(f, 0), 0);
    assert_int_equal(fsize(f, 1), 260);
    assert_int_equal(fsize(f, 2), 250);
    pbd_log_close(l);
}

static void test_existing_file_counts(void **state)
{
    struct fx *f = *state;
    struct pbd_log *l = NULL;
    char ninety[90];

    memset(ninety, 'o', sizeof(ninety));
    put_file(f->path, ninety, sizeof(ninety));
    assert_int_equal(pbd_log_open(&l, f->path, 100, 3), 0);
    write_rec(l, 1); /* 90 + 10 = 100: reaches the limit, rotated */
    assert_int_equal(fsize(f, 0), 0);
    assert_int_equal(fsize(f, 1), 100);
    write_rec(l, 2);
    assert_int_equal(fsize(f, 1), 100);
    assert_int_equal(fsize(f, 0), 10);
    pbd_log_close(l);
}

static void test_external_truncation(void **state)
{
    struct fx *f = *state;
    struct pbd_log *l = NULL;
    int i;

    assert_int_equal(pbd_log_open(&l, f->path, 100, 3), 0);
    for (i = 1; i <= 9; i++)
        write_rec(l, i);
    /* logrotate copytruncate: the size we tracked is stale. */
    assert_int_equal(truncate(f->path, 0), 0);
    write_rec(l, 10);
    write_rec(l, 11);
    assert_int_equal(fsize(f, 1), -1);
    assert_int_equal(fsize(f, 0), 20);
    assert_int_equal(first_rec(f, 0), 10);
    pbd_log_close(l);
}

static void test_reopen_after_move(void **state)
{
    struct fx *f = *state;
    struct pbd_log *l = NULL;
    char moved[160];
    char *s;

    snprintf(moved, sizeof(moved), "%s/moved.log", f->dir);
    assert_int_equal(pbd_log_open(&l, f->path, 0, 3), 0);
    assert_int_equal(pbd_log_write(l, "a\n", 2), 0);
    assert_int_equal(rename(f->path, moved), 0);
    assert_int_equal(pbd_log_write(l, "b\n", 2), 0); /* still the moved file */
    assert_int_equal(fsize(f, 0), -1);
    assert_int_equal(pbd_log_reopen(l), 0);
    assert_int_equal(fsize(f, 0), 0);
    assert_int_equal(pbd_log_write(l, "c\n", 2), 0);
    s = pbt_slurp(moved, NULL);
    assert_string_equal(s, "a\nb\n");
    free(s);
    s = slurp_nth(f, 0);
    assert_string_equal(s, "c\n");
    free(s);
    pbd_log_close(l);
}

static void test_rotation_after_move(void **state)
{
    struct fx *f = *state;
    struct pbd_log *l = NULL;
    char moved[160];
    int i;

    /* The file vanished behind our back and no reopen came: rotation starts a new file. */
    snprintf(moved, sizeof(moved), "%s/moved.log", f->dir);
    assert_int_equal(pbd_log_open(&l, f->path, 50, 3), 0);
    for (i = 1; i <= 4; i++)
        write_rec(l, i);
    assert_int_equal(rename(f->path, moved), 0);
    write_rec(l, 5); /* into the moved file, which reaches 50: a new path, no path.1 */
    assert_int_equal(fsize(f, 0), 0);
    assert_int_equal(fsize(f, 1), -1);
    write_rec(l, 6);
    assert_int_equal(fsize(f, 0), 10);
    assert_int_equal(first_rec(f, 0), 6);
    assert_int_equal(fsize(f, 1), -1);
    assert_int_equal(pbd_log_take_error(l), 0);
    pbd_log_close(l);
}

static void test_rotation_failure_keeps_data(void **state)
{
    struct fx *f = *state;
    struct pbd_log *l = NULL;
    char p1[160], inner[200];
    int i;

    /* A directory where path.1 should go: rename(path, path.1) fails with EISDIR. */
    assert_int_equal(mkdir(nth(f, 1, p1), 0755), 0);
    snprintf(inner, sizeof(inner), "%s/keep", p1);
    put_file(inner, "x", 1);
    assert_int_equal(pbd_log_open(&l, f->path, 50, 1), 0);
    for (i = 1; i <= 4; i++)
        write_rec(l, i);
    write_rec(l, 5); /* reaches 50: rotation fails; the data is there */
    assert_int_equal(fsize(f, 0), 50);
    assert_int_equal(pbd_log_take_error(l), -EISDIR);
    assert_int_equal(pbd_log_take_error(l), 0);
    /* No retry on every write: the next attempt comes after another maxbytes. */
    for (i = 6; i <= 9; i++)
        write_rec(l, i);
    assert_int_equal(pbd_log_take_error(l), 0);
    assert_int_equal(fsize(f, 0), 90);
    write_rec(l, 10); /* at 100 = 50 + maxbytes: retried, fails again */
    assert_int_equal(pbd_log_take_error(l), -EISDIR);
    assert_int_equal(fsize(f, 0), 100);
    /* Once the obstacle is gone, a reopen re-enables rotation. */
    assert_int_equal(unlink(inner), 0);
    assert_int_equal(rmdir(p1), 0);
    assert_int_equal(pbd_log_reopen(l), 0);
    write_rec(l, 11);
    assert_int_equal(fsize(f, 1), 110);
    assert_int_equal(fsize(f, 0), 0);
    write_rec(l, 12);
    assert_int_equal(fsize(f, 0), 10);
    assert_int_equal(first_rec(f, 0), 12);
    pbd_log_close(l);
}

/* supervisorctl clear: the current file emptied, the rotated copies kept, writing goes on. */
static void test_clear(void **state)
{
    struct fx *f = *state;
    struct pbd_log *l = NULL;
    int i;

    assert_int_equal(pbd_log_open(&l, f->path, 50, 2), 0);
    for (i = 1; i <= 7; i++)
        write_rec(l, i);
    assert_int_equal(fsize(f, 0), 20);
    assert_int_equal(fsize(f, 1), 50);
    assert_int_equal(pbd_log_clear(l), 0);
    assert_int_equal(fsize(f, 0), 0);
    assert_int_equal(fsize(f, 1), 50);
    for (i = 8; i <= 12; i++) /* the size starts again from 0: 50 bytes before a rotation */
        write_rec(l, i);
    assert_int_equal(fsize(f, 0), 0);
    assert_int_equal(first_rec(f, 1), 8);
    assert_int_equal(first_rec(f, 2), 1);
    pbd_log_close(l);
    assert_int_equal(pbd_log_open(&l, NULL, 50, 2), 0);
    assert_int_equal(pbd_log_clear(l), 0); /* a discarding log: nothing to do */
    pbd_log_close(l);
    assert_int_equal(pbd_log_clear(NULL), -EINVAL);
}

static void test_open_errors(void **state)
{
    struct fx *f = *state;
    struct pbd_log *l = NULL;
    char p[200];

    snprintf(p, sizeof(p), "%s/no/such/dir/x.log", f->dir);
    assert_int_equal(pbd_log_open(&l, p, 100, 3), -ENOENT);
    assert_null(l);
    assert_int_equal(pbd_log_open(&l, f->path, 100, -1), -EINVAL);
    assert_int_equal(pbd_log_open(&l, "", 100, 1), -EINVAL);
    assert_int_equal(pbd_log_open(NULL, f->path, 100, 1), -EINVAL);
    assert_int_equal(pbd_log_write(NULL, "x", 1), -EINVAL);
    assert_int_equal(pbd_log_reopen(NULL), -EINVAL);
    /* A FIFO without a reader: the open must not block. */
    snprintf(p, sizeof(p), "%s/fifo", f->dir);
    assert_int_equal(mkfifo(p, 0600), 0);
    assert_int_equal(pbd_log_open(&l, p, 100, 3), -ENXIO);
}

static void test_mode_and_chardev(void **state)
{
    struct fx *f = *state;
    struct pbd_log *l = NULL;
    struct stat st;
    mode_t old = umask(022);

    assert_int_equal(pbd_log_open(&l, f->path, 0, 0), 0);
    umask(old);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    pbd_log_close(l);
    /* A character device (not rotated). */
    assert_int_equal(pbd_log_open(&l, "/dev/null", 1, 3), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(pbd_log_write(l, "0123456789", 10), 0);
    pbd_log_close(l);
}

/* ---- line splitter ---- */

#define MAXL 2048

struct lines {
    int n;
    size_t len[MAXL];
    char *line[MAXL];
};

static void on_line(void *arg, const char *line, size_t len)
{
    struct lines *c = arg;
    assert_true(c->n < MAXL);
    assert_int_equal(line[len], '\0');
    c->len[c->n] = len;
    c->line[c->n] = malloc(len + 1);
    assert_non_null(c->line[c->n]);
    memcpy(c->line[c->n], line, len + 1);
    c->n++;
}

static void lines_free(struct lines *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->line[i]);
    memset(c, 0, sizeof(*c));
}

static void feed_str(struct pbd_lines *lb, const char *s, struct lines *c)
{
    pbd_lines_feed(lb, s, strlen(s), on_line, c);
}

static void test_lines_basic(void **state)
{
    struct pbd_lines lb;
    struct lines c = {0};
    (void)state;

    pbd_lines_init(&lb);
    feed_str(&lb, "one\ntwo\n\nthree", &c);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.line[0], "one");
    assert_string_equal(c.line[1], "two");
    assert_string_equal(c.line[2], "");
    assert_int_equal(c.len[2], 0);
    pbd_lines_flush(&lb, on_line, &c);
    assert_int_equal(c.n, 4);
    assert_string_equal(c.line[3], "three");
    /* Flushing an empty splitter delivers nothing. */
    pbd_lines_flush(&lb, on_line, &c);
    assert_int_equal(c.n, 4);
    lines_free(&c);

    /* Split across feeds, byte by byte too. */
    feed_str(&lb, "he", &c);
    feed_str(&lb, "llo\nwor", &c);
    assert_int_equal(c.n, 1);
    feed_str(&lb, "ld\n", &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.line[0], "hello");
    assert_string_equal(c.line[1], "world");
    lines_free(&c);
    const char *s = "ready to serve\nx\n";
    for (size_t i = 0; s[i]; i++)
        pbd_lines_feed(&lb, s + i, 1, on_line, &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.line[0], "ready to serve");
    assert_string_equal(c.line[1], "x");
    lines_free(&c);

    /* NUL bytes inside a line pass through. */
    pbd_lines_feed(&lb, "a\0b\n", 4, on_line, &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.len[0], 3);
    assert_memory_equal(c.line[0], "a\0b", 3);
    lines_free(&c);
}

static void test_lines_crlf(void **state)
{
    struct pbd_lines lb = {0}; /* zeroed is valid too */
    struct lines c = {0};
    (void)state;

    feed_str(&lb, "dos\r\nmid\rdle\n\r\n\r\r\n", &c);
    assert_int_equal(c.n, 4);
    assert_string_equal(c.line[0], "dos");
    assert_string_equal(c.line[1], "mid\rdle");
    assert_string_equal(c.line[2], "");
    assert_string_equal(c.line[3], "\r");
    lines_free(&c);
    /* The '\r' and '\n' in different feeds. */
    feed_str(&lb, "split\r", &c);
    assert_int_equal(c.n, 0);
    feed_str(&lb, "\n", &c);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.line[0], "split");
    /* A final partial line with '\r' at flush. */
    feed_str(&lb, "last\r", &c);
    pbd_lines_flush(&lb, on_line, &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.line[1], "last");
    lines_free(&c);
}

static void check_all(const struct lines *c, int idx, size_t len, char ch)
{
    assert_int_equal(c->len[idx], len);
    for (size_t i = 0; i < len; i++)
        if (c->line[idx][i] != ch)
            fail_msg("line %d byte %zu: %d, want %d", idx, i, c->line[idx][i], ch);
}

static void test_lines_overlong(void **state)
{
    static char big[3 * PBD_LINE_MAX + 16];
    struct pbd_lines lb;
    struct lines c = {0};
    (void)state;

    pbd_lines_init(&lb);
    /* 2 * MAX + 10 bytes then '\n': chunks MAX, MAX, 10. */
    memset(big, 'a', 2 * PBD_LINE_MAX + 10);
    big[2 * PBD_LINE_MAX + 10] = '\n';
    pbd_lines_feed(&lb, big, 2 * PBD_LINE_MAX + 11, on_line, &c);
    assert_int_equal(c.n, 3);
    check_all(&c, 0, PBD_LINE_MAX, 'a');
    check_all(&c, 1, PBD_LINE_MAX, 'a');
    check_all(&c, 2, 10, 'a');
    lines_free(&c);

    /* Exactly MAX bytes, LF: one line, no spurious empty line. */
    memset(big, 'b', PBD_LINE_MAX);
    big[PBD_LINE_MAX] = '\n';
    pbd_lines_feed(&lb, big, PBD_LINE_MAX + 1, on_line, &c);
    assert_int_equal(c.n, 1);
    check_all(&c, 0, PBD_LINE_MAX, 'b');
    lines_free(&c);

    /* Exactly MAX bytes, CRLF, fed byte by byte: one line. */
    memset(big, 'c', PBD_LINE_MAX);
    big[PBD_LINE_MAX] = '\r';
    big[PBD_LINE_MAX + 1] = '\n';
    for (size_t i = 0; i < PBD_LINE_MAX + 2; i++)
        pbd_lines_feed(&lb, big + i, 1, on_line, &c);
    assert_int_equal(c.n, 1);
    check_all(&c, 0, PBD_LINE_MAX, 'c');
    lines_free(&c);

    /* MAX bytes then a '\r' that is not a line end: it starts the next chunk. */
    memset(big, 'd', PBD_LINE_MAX);
    memcpy(big + PBD_LINE_MAX, "\rxy\n", 4);
    pbd_lines_feed(&lb, big, PBD_LINE_MAX + 4, on_line, &c);
    assert_int_equal(c.n, 2);
    check_all(&c, 0, PBD_LINE_MAX, 'd');
    assert_string_equal(c.line[1], "\rxy");
    lines_free(&c);

    /* MAX + 1 bytes and EOF: chunk, then the flushed remainder. */
    memset(big, 'e', PBD_LINE_MAX + 1);
    pbd_lines_feed(&lb, big, PBD_LINE_MAX + 1, on_line, &c);
    assert_int_equal(c.n, 1);
    pbd_lines_flush(&lb, on_line, &c);
    assert_int_equal(c.n, 2);
    check_all(&c, 0, PBD_LINE_MAX, 'e');
    check_all(&c, 1, 1, 'e');
    lines_free(&c);
}

/* Any chunking of the same stream gives the same lines. */
static void test_lines_chunking_invariant(void **state)
{
    static char stream[20000];
    struct pbd_lines lb;
    struct lines ref = {0}, got = {0};
    unsigned seed = 12345;
    size_t n = 0;
    (void)state;

    while (n < sizeof(stream) - 1) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = (seed >> 16) % 100;
        stream[n++] = r < 5 ? '\n' : r < 7 ? '\r' : (char)('a' + r % 26);
        if (n > 6000 && n < 11000)
            stream[n - 1] = 'L'; /* one overlong line in the middle */
    }
    pbd_lines_init(&lb);
    pbd_lines_feed(&lb, stream, n, on_line, &ref);
    pbd_lines_flush(&lb, on_line, &ref);
    assert_true(ref.n > 10 && ref.n < MAXL);
    for (int trial = 0; trial < 20; trial++) {
        size_t off = 0;
        while (off < n) {
            seed = seed * 1103515245u + 12345u;
            size_t k = 1 + (seed >> 16) % (trial < 10 ? 7 : 6000);
            if (k > n - off)
                k = n - off;
            pbd_lines_feed(&lb, stream + off, k, on_line, &got);
            off += k;
        }
        pbd_lines_flush(&lb, on_line, &got);
        assert_int_equal(got.n, ref.n);
        for (int i = 0; i < ref.n; i++) {
            assert_int_equal(got.len[i], ref.len[i]);
            assert_memory_equal(got.line[i], ref.line[i], ref.len[i]);
        }
        lines_free(&got);
    }
    lines_free(&ref);
}

/* ---- tail ---- */

/* Run pbd_log_tail into a memfd; return the output (malloc'd) and rc through *rc. */
static char *tail_of(const char *path, int n, int *rc)
{
    int fd = memfd_create("tail", MFD_CLOEXEC);
    struct stat st;
    char *out;

    assert_true(fd >= 0);
    *rc = pbd_log_tail(path, n, fd);
    assert_int_equal(fstat(fd, &st), 0);
    out = malloc((size_t)st.st_size + 1);
    assert_non_null(out);
    assert_int_equal(pread(fd, out, (size_t)st.st_size, 0), st.st_size);
    out[st.st_size] = '\0';
    close(fd);
    return out;
}

static void expect_tail(const char *path, int n, const char *want)
{
    int rc;
    char *got = tail_of(path, n, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(got, want);
    free(got);
}

static void test_tail_basic(void **state)
{
    struct fx *f = *state;
    char p1[160];

    put_file(f->path, "l1\nl2\nl3\nl4\nl5\n", 15);
    expect_tail(f->path, 1, "l5\n");
    expect_tail(f->path, 3, "l3\nl4\nl5\n");
    expect_tail(f->path, 5, "l1\nl2\nl3\nl4\nl5\n");
    expect_tail(f->path, 0, "");
    /* More than the file holds and no path.1: the whole file. */
    expect_tail(f->path, 100, "l1\nl2\nl3\nl4\nl5\n");
    /* No trailing newline: the partial last line counts and is written as is. */
    put_file(f->path, "a\nb\nc", 5);
    expect_tail(f->path, 1, "c");
    expect_tail(f->path, 2, "b\nc");
    expect_tail(f->path, 9, "a\nb\nc");
    /* Empty lines count. */
    put_file(f->path, "a\n\n", 3);
    expect_tail(f->path, 1, "\n");
    expect_tail(f->path, 2, "a\n\n");
    put_file(f->path, "\n", 1);
    expect_tail(f->path, 1, "\n");
    put_file(f->path, "", 0);
    expect_tail(f->path, 3, "");
    /* path.1 only (between a rotation and the reopen). */
    assert_int_equal(unlink(f->path), 0);
    put_file(nth(f, 1, p1), "old1\nold2\n", 10);
    expect_tail(f->path, 1, "old2\n");
}

static void test_tail_spans_into_path1(void **state)
{
    struct fx *f = *state;
    char p1[160], p2[160];

    put_file(nth(f, 1, p1), "o1\no2\no3\no4\no5\n", 15);
    put_file(nth(f, 2, p2), "never\n", 6);
    put_file(f->path, "n1\nn2\n", 6);
    expect_tail(f->path, 2, "n1\nn2\n");
    expect_tail(f->path, 4, "o4\no5\nn1\nn2\n");
    expect_tail(f->path, 7, "o1\no2\no3\no4\no5\nn1\nn2\n");
    expect_tail(f->path, 50, "o1\no2\no3\no4\no5\nn1\nn2\n"); /* path.2 not read */
    /* Empty current file right after a rotation. */
    put_file(f->path, "", 0);
    expect_tail(f->path, 2, "o4\no5\n");
    /* A line split by a rotation reads as one. */
    put_file(nth(f, 1, p1), "x1\nx2\nhal", 9);
    put_file(f->path, "f\ny1\n", 5);
    expect_tail(f->path, 3, "x2\nhalf\ny1\n");
    expect_tail(f->path, 4, "x1\nx2\nhalf\ny1\n");
    expect_tail(f->path, 9, "x1\nx2\nhalf\ny1\n");
}

static void test_tail_large_file(void **state)
{
    struct fx *f = *state;
    const int nlines = 200000;
    char *data, *want;
    size_t len = 0, cap = (size_t)nlines * 16;
    int rc, i;

    /* ~2.5 MB of numbered lines of varying length, so blocks split lines anywhere. */
    data = malloc(cap);
    assert_non_null(data);
    for (i = 1; i <= nlines; i++)
        len += (size_t)snprintf(data + len, cap - len, "%d%.*s\n", i, i % 5, "-----");
    put_file(f->path, data, len);
    int counts[] = {1, 7, 1000, 3000, nlines - 1, nlines, nlines + 5};
    for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
        int n = counts[k];
        /* Reference: the suffix after the (nlines - n)th newline. */
        size_t off = 0;
        for (int seen = 0; n < nlines && seen < nlines - n; off++)
            if (data[off] == '\n')
                seen++;
        want = tail_of(f->path, n, &rc);
        assert_int_equal(rc, 0);
        assert_int_equal(strlen(want), len - off);
        assert_memory_equal(want, data + off, len - off);
        free(want);
    }
    free(data);
}

static void test_tail_errors(void **state)
{
    struct fx *f = *state;
    char p[160];

    assert_int_equal(pbd_log_tail(f->path, 5, 1), -ENOENT);
    assert_int_equal(pbd_log_tail(NULL, 5, 1), -EINVAL);
    put_file(f->path, "x\n", 2);
    assert_int_equal(pbd_log_tail(f->path, -1, 1), -EINVAL);
    assert_int_equal(pbd_log_tail(f->path, 1, -1), -EINVAL);
    assert_int_equal(pbd_log_tail(f->dir, 1, 1), -EINVAL); /* a directory */
    snprintf(p, sizeof(p), "%s/fifo", f->dir);
    assert_int_equal(mkfifo(p, 0600), 0);
    assert_int_equal(pbd_log_tail(p, 1, 1), -EINVAL); /* does not block */
    /* A closed reader. */
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    close(pfd[0]);
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    assert_int_equal(pbd_log_tail(f->path, 1, pfd[1]), -EPIPE);
    signal(SIGPIPE, old);
    close(pfd[1]);
}

/* Written logs read back through the tail: the two halves of the module agree. */
static void test_tail_of_rotated_log(void **state)
{
    struct fx *f = *state;
    struct pbd_log *l = NULL;
    int i, rc;
    char *got;

    assert_int_equal(pbd_log_open(&l, f->path, 100, 2), 0);
    for (i = 1; i <= 15; i++)
        write_rec(l, i);
    pbd_log_close(l);
    got = tail_of(f->path, 8, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(got, "000000008\n000000009\n000000010\n000000011\n000000012\n"
                             "000000013\n000000014\n000000015\n");
    free(got);
}

#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX(test_rotation_boundaries),
        FX(test_rotation_uneven),
        FX(test_backups_limit),
        FX(test_backups_zero_truncates),
        FX(test_maxbytes_zero_never_rotates),
        FX(test_discard),
        FX(test_write_bigger_than_maxbytes),
        FX(test_existing_file_counts),
        FX(test_external_truncation),
        FX(test_reopen_after_move),
        FX(test_rotation_after_move),
        FX(test_rotation_failure_keeps_data),
        FX(test_clear),
        FX(test_open_errors),
        FX(test_mode_and_chardev),
        cmocka_unit_test(test_lines_basic),
        cmocka_unit_test(test_lines_crlf),
        cmocka_unit_test(test_lines_overlong),
        cmocka_unit_test(test_lines_chunking_invariant),
        FX(test_tail_basic),
        FX(test_tail_spans_into_path1),
        FX(test_tail_large_file),
        FX(test_tail_errors),
        FX(test_tail_of_rotated_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
