/* logfile.c - procbusd output capture: size-rotated log files, a line splitter, a tail reader. */
#define _GNU_SOURCE
#include "logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_MODE   0640
#define LOG_FLAGS  (O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
#define SUFFIX_MAX 16 /* ".%d" of a positive int and the NUL */
#define TAIL_BLOCK 16384

struct pbd_log {
    int fd;      /* -1: discarding, or lost after a failed reopen */
    int regular; /* fd is a regular file (rotation applies) */
    int backups;
    int deferred;      /* negative errno for pbd_log_take_error, 0 if none */
    uint64_t maxbytes; /* 0: never rotate */
    uint64_t size;     /* bytes in the current file, as far as we know */
    uint64_t hold;     /* after a failed rotation: no retry while size < hold */
    char *path;        /* NULL: discarding */
    size_t path_len;
    char *from, *to; /* rename buffers: path + SUFFIX_MAX */
};

/* ---- rotated log files ---- */

static int open_path(const char *path, int extra_flags, int *regular, uint64_t *size)
{
    struct stat st;
    int fd = open(path, LOG_FLAGS | extra_flags, LOG_MODE);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    *regular = S_ISREG(st.st_mode);
    *size = *regular ? (uint64_t)st.st_size : 0;
    if (*regular) {
        /* Regular files never block; clear O_NONBLOCK anyway so write(2) has
         * its ordinary semantics. */
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    }
    return fd;
}

int pbd_log_open(struct pbd_log **out, const char *path, uint64_t maxbytes, int backups)
{
    struct pbd_log *l;
    int fd;

    if (out == NULL || backups < 0 || (path != NULL && path[0] == '\0'))
        return -EINVAL;
    *out = NULL;
    l = calloc(1, sizeof(*l));
    if (l == NULL)
        return -ENOMEM;
    l->fd = -1;
    l->maxbytes = maxbytes;
    l->backups = backups;
    if (path != NULL) {
        l->path_len = strlen(path);
        l->path = strdup(path);
        l->from = malloc(l->path_len + SUFFIX_MAX);
        l->to = malloc(l->path_len + SUFFIX_MAX);
        if (l->path == NULL || l->from == NULL || l->to == NULL) {
            pbd_log_close(l);
            return -ENOMEM;
        }
        fd = open_path(path, 0, &l->regular, &l->size);
        if (fd < 0) {
            pbd_log_close(l);
            return fd;
        }
        l->fd = fd;
    }
    *out = l;
    return 0;
}

static void backup_name(const struct pbd_log *l, char *buf, int n)
{
    memcpy(buf, l->path, l->path_len);
    snprintf(buf + l->path_len, SUFFIX_MAX, ".%d", n);
}

/* Replace the current descriptor by a fresh open of path (O_TRUNC if truncate). */
static int swap_fd(struct pbd_log *l, int truncate)
{
    int regular;
    uint64_t size;
    int fd = open_path(l->path, truncate ? O_TRUNC : 0, &regular, &size);
    if (fd < 0)
        return fd;
    if (l->fd >= 0)
        close(l->fd);
    l->fd = fd;
    l->regular = regular;
    l->size = size;
    return 0;
}

/* Rotate (or truncate when backups == 0). On failure the old descriptor stays. */
static int rotate(struct pbd_log *l)
{
    int i, rc;

    if (l->backups == 0)
        return swap_fd(l, 1);
    for (i = l->backups - 1; i >= 1; i--) {
        backup_name(l, l->from, i);
        backup_name(l, l->to, i + 1);
        if (rename(l->from, l->to) < 0 && errno != ENOENT)
            return -errno;
    }
    backup_name(l, l->to, 1);
    /* ENOENT: the file was moved away behind our back; start a new one anyway. */
    if (rename(l->path, l->to) < 0 && errno != ENOENT)
        return -errno;
    rc = swap_fd(l, 0);
    return rc;
}

static void maybe_rotate(struct pbd_log *l, size_t n)
{
    struct stat st;
    int rc;

    if (l->maxbytes == 0 || !l->regular || l->fd < 0)
        return;
    if (l->size == 0 || l->size + n <= l->maxbytes || l->size < l->hold)
        return;
    /* Confirm with the real size (an external truncation, another writer). */
    if (fstat(l->fd, &st) == 0) {
        l->size = (uint64_t)st.st_size;
        if (l->size == 0 || l->size + n <= l->maxbytes)
            return;
    }
    rc = rotate(l);
    if (rc < 0) {
        l->deferred = rc;
        l->hold = l->size + l->maxbytes;
    } else {
        l->hold = 0;
    }
}

int pbd_log_write(struct pbd_log *l, const void *buf, size_t n)
{
    const char *p = buf;

    if (l == NULL)
        return -EINVAL;
    if (l->path == NULL || n == 0)
        return 0;
    maybe_rotate(l, n);
    if (l->fd < 0)
        return -EBADF;
    while (n > 0) {
        ssize_t w = write(l->fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
        l->size += (uint64_t)w;
    }
    return 0;
}

int pbd_log_reopen(struct pbd_log *l)
{
    int rc;

    if (l == NULL)
        return -EINVAL;
    if (l->path == NULL)
        return 0;
    rc = swap_fd(l, 0);
    if (rc == 0)
        l->hold = 0;
    return rc;
}

int pbd_log_take_error(struct pbd_log *l)
{
    int e;

    if (l == NULL)
        return 0;
    e = l->deferred;
    l->deferred = 0;
    return e;
}

const char *pbd_log_path(const struct pbd_log *l)
{
    return l != NULL ? l->path : NULL;
}

void pbd_log_close(struct pbd_log *l)
{
    if (l == NULL)
        return;
    if (l->fd >= 0)
        close(l->fd);
    free(l->path);
    free(l->from);
    free(l->to);
    free(l);
}

/* ---- line splitter ---- */

void pbd_lines_init(struct pbd_lines *lb)
{
    lb->len = 0;
    lb->buf[0] = '\0';
}

static void deliver(struct pbd_lines *lb, int strip_cr,
                    void (*on_line)(void *arg, const char *line, size_t len), void *arg)
{
    size_t len = lb->len;

    if (strip_cr && len > 0 && lb->buf[len - 1] == '\r')
        len--;
    lb->buf[len] = '\0';
    lb->len = 0;
    on_line(arg, lb->buf, len);
}

void pbd_lines_feed(struct pbd_lines *lb, const char *buf, size_t n,
                    void (*on_line)(void *arg, const char *line, size_t len), void *arg)
{
    while (n > 0) {
        const char *nl;
        size_t take, room;

        if (lb->len >= PBD_LINE_MAX) {
            /* Full: the line ends here, or a '\r' waits to see whether a '\n'
             * follows, or the line goes on and the buffer is delivered as a chunk. */
            if (buf[0] == '\n') {
                buf++;
                n--;
                deliver(lb, 1, on_line, arg);
                continue;
            }
            if (lb->len == PBD_LINE_MAX && buf[0] == '\r') {
                lb->buf[lb->len++] = '\r';
                buf++;
                n--;
                continue;
            }
            if (lb->len > PBD_LINE_MAX) {
                lb->len = PBD_LINE_MAX;
                deliver(lb, 0, on_line, arg);
                lb->buf[0] = '\r'; /* the held '\r' starts the next chunk */
                lb->len = 1;
            } else {
                deliver(lb, 0, on_line, arg);
            }
        }
        room = PBD_LINE_MAX - lb->len;
        nl = memchr(buf, '\n', n < room + 1 ? n : room + 1);
        take = nl != NULL ? (size_t)(nl - buf) : (n < room ? n : room);
        memcpy(lb->buf + lb->len, buf, take);
        lb->len += take;
        buf += take;
        n -= take;
        if (nl != NULL) {
            buf++; /* the '\n' */
            n--;
            deliver(lb, 1, on_line, arg);
        }
    }
}

void pbd_lines_flush(struct pbd_lines *lb, void (*on_line)(void *arg, const char *line, size_t len),
                     void *arg)
{
    if (lb->len > 0)
        deliver(lb, 1, on_line, arg);
}

/* ---- tail ---- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                    return -errno;
                continue;
            }
            return -errno;
        }
        if (w == 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_at(int fd, char *buf, size_t n, off_t off)
{
    while (n > 0) {
        ssize_t r = pread(fd, buf, n, off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EIO; /* truncated while we read it */
        buf += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

/* Open a regular file for reading without blocking on a FIFO; -ENOENT if absent. */
static int open_read(const char *path, off_t *size)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    *size = st.st_size;
    return fd;
}

/*
 * Find where the last `want` lines of fd[0, size) start. Sets *start and
 * returns how many lines were found (< want only when the whole file holds
 * fewer), or a negative errno.
 */
static long long find_tail(int fd, off_t size, long long want, off_t *start, char *buf)
{
    long long found = 0;
    off_t end;

    *start = 0;
    if (size == 0 || want == 0) {
        *start = size;
        return 0;
    }
    /* The last line ends at size (with or without its '\n'); a '\n' at
     * size - 1 terminates it and is not a separator. Every other '\n' found
     * scanning backwards ends one more line. */
    end = size - 1;
    found = 1;
    while (end > 0) {
        size_t blk = end > TAIL_BLOCK ? TAIL_BLOCK : (size_t)end;
        off_t off = end - (off_t)blk;
        int rc = read_at(fd, buf, blk, off);
        if (rc < 0)
            return rc;
        for (size_t i = blk; i-- > 0;) {
            if (buf[i] == '\n') {
                if (found == want) {
                    *start = off + (off_t)i + 1;
                    return found;
                }
                found++;
            }
        }
        end = off;
    }
    return found;
}

static int copy_out(int fd, off_t from, off_t to, int fd_out, char *buf)
{
    while (from < to) {
        size_t blk = to - from > TAIL_BLOCK ? TAIL_BLOCK : (size_t)(to - from);
        int rc = read_at(fd, buf, blk, from);
        if (rc < 0)
            return rc;
        rc = write_all(fd_out, buf, blk);
        if (rc < 0)
            return rc;
        from += (off_t)blk;
    }
    return 0;
}

int pbd_log_tail(const char *path, int nlines, int fd_out)
{
    char buf[TAIL_BLOCK];
    char old[PATH_MAX];
    off_t size = 0, start = 0, osize = 0, ostart = 0;
    long long found;
    int fd, ofd = -1, rc = 0;

    if (path == NULL || nlines < 0 || fd_out < 0)
        return -EINVAL;
    if ((size_t)snprintf(old, sizeof(old), "%s.1", path) >= sizeof(old))
        return -ENAMETOOLONG;
    if (nlines == 0)
        return 0;
    fd = open_read(path, &size);
    if (fd == -ENOENT) {
        /* Between a rotation's rename and the reopen: tail path.1 alone. */
        size = 0;
    } else if (fd < 0) {
        return fd;
    }
    if (fd >= 0) {
        found = find_tail(fd, size, nlines, &start, buf);
        if (found < 0) {
            rc = (int)found;
            goto out;
        }
    } else {
        found = 0;
    }
    if (found < nlines) {
        ofd = open_read(old, &osize);
        if (ofd == -ENOENT && fd >= 0) {
            ofd = -1; /* no rotated copy: just the current file */
        } else if (ofd < 0) {
            rc = ofd;
            ofd = -1;
            goto out;
        } else {
            long long want = nlines - found;
            long long got;
            /* path.1 ending mid-line: path's first line is its continuation,
             * already counted once, so take one more line from path.1. */
            if (size > 0 && osize > 0) {
                rc = read_at(ofd, buf, 1, osize - 1);
                if (rc < 0)
                    goto out;
                if (buf[0] != '\n')
                    want++;
            }
            got = find_tail(ofd, osize, want, &ostart, buf);
            if (got < 0) {
                rc = (int)got;
                goto out;
            }
            rc = copy_out(ofd, ostart, osize, fd_out, buf);
            if (rc < 0)
                goto out;
        }
    }
    if (fd >= 0)
        rc = copy_out(fd, start, size, fd_out, buf);
out:
    if (ofd >= 0)
        close(ofd);
    if (fd >= 0)
        close(fd);
    return rc;
}
