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
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_MODE 0640
/* Not O_APPEND: splice(2) refuses such a file (pbd_log_splice). Every write goes to the end all
 * the same: the offset is moved there first (an external truncation, another writer). */
#define LOG_FLAGS  (O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
#define SUFFIX_MAX 16 /* ".%d" of a positive int and the NUL */
#define TAIL_BLOCK 16384

struct pbd_log {
    int fd;      /* -1: discarding, or lost after a failed reopen */
    int regular; /* fd is a regular file (rotation applies) */
    int device;  /* a device path (pbd_log_open): opened as given, links followed */
    int as_set;  /* open and rotate with the filesystem ids as_uid/as_gid */
    uid_t as_uid;
    gid_t as_gid;
    int backups;
    int deferred;      /* negative errno for pbd_log_take_error, 0 if none */
    uint64_t maxbytes; /* 0: never rotate */
    uint64_t size;     /* bytes in the current file, as far as we know */
    uint64_t hold;     /* after a failed rotation: no retry while size < hold */
    char *path;        /* NULL: discarding */
    size_t path_len;
    char *from, *to; /* rename buffers: path + SUFFIX_MAX */
    /* lost output (pbd_log_news) */
    uint64_t lost_total;  /* bytes pbd_log_write could not write, ever */
    uint64_t lost_run;    /* of them, since writing last went well */
    uint64_t last_news;   /* when pbd_log_news last had something to say (ns) */
    int losing, last_err; /* in a run of losses; its latest errno (positive) */
};

/* ---- rotated log files ---- */

/* /dev/NAME, /dev/fd/N, /proc/self/fd/N: procbusd's own descriptors and devices, in folders
 * only root can change. */
static int device_path(const char *p)
{
    return (strncmp(p, "/dev/", 5) == 0 && strchr(p + 5, '/') == NULL) ||
           strncmp(p, "/dev/fd/", 8) == 0 || strncmp(p, "/proc/self/fd/", 14) == 0;
}

/* A user whose files and folders procbusd may write to for this log: root, procbusd's own
 * user, and the program's user (as). */
static int trusted_uid(const struct pbd_log *l, uid_t uid)
{
    return uid == 0 || uid == geteuid() || (l->as_set && uid == l->as_uid);
}

/* Filesystem ids of the program's user while touching its log in a folder that user can
 * change (setfsuid is per thread and keeps procbusd's other ids: only the permission checks
 * of open/rename change). `as_user`: check_folder's verdict. */
static void fsid_enter(const struct pbd_log *l, int as_user)
{
    if (as_user && l->as_set) {
        setfsgid(l->as_gid);
        setfsuid(l->as_uid);
    }
}

static void fsid_leave(const struct pbd_log *l, int as_user)
{
    if (as_user && l->as_set) {
        setfsuid(geteuid());
        setfsgid(getegid());
    }
}

/* One folder on the way to a log (lstat'ed): a trusted user's, and not writable by others
 * unless sticky (others then cannot replace what is in it). Symbolic links: a trusted user's
 * (their target is checked through the resolved path). 0: only root or procbusd's user can
 * change it; 1: the program's user can; -EPERM: someone else can (or lstat's error). */
static int safe_entry(const struct pbd_log *l, const char *path)
{
    struct stat st;

    if (lstat(path, &st) < 0)
        return -errno;
    if (!trusted_uid(l, st.st_uid))
        return -EPERM;
    if (!S_ISLNK(st.st_mode) && !S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (S_ISDIR(st.st_mode) && (st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))
        return -EPERM;
    return st.st_uid != 0 && st.st_uid != geteuid();
}

/* Every folder from / down to `folder` (absolute) passes safe_entry; the worst verdict. */
static int safe_folders(const struct pbd_log *l, char *folder)
{
    size_t n = strlen(folder);
    int rc = safe_entry(l, "/"), as_user = 0;

    for (size_t i = 1; i <= n && rc >= 0; i++) {
        as_user |= rc;
        if (i > 1 && (folder[i] == '/' || folder[i] == '\0')) { /* "/" was checked */
            char c = folder[i];
            folder[i] = '\0';
            rc = safe_entry(l, folder);
            folder[i] = c;
        }
    }
    return rc < 0 ? rc : (as_user | rc);
}

/*
 * The folder of `path`, as written and resolved, is one nobody but a trusted user can change:
 * a file procbusd then opens there without following a link cannot be swapped for a link to
 * somewhere else, nor can a folder on the way. 0 (root's or procbusd's user's folders), 1 (the
 * program's user can change one of them: open and rename as that user), -EPERM (another user
 * can), or lstat/realpath's error.
 */
static int check_folder(const struct pbd_log *l, const char *path)
{
    char abs[PATH_MAX], real[PATH_MAX], *slash;
    int rc;

    if (path[0] == '/') {
        if ((size_t)snprintf(abs, sizeof(abs), "%s", path) >= sizeof(abs))
            return -ENAMETOOLONG;
    } else {
        size_t n;
        if (getcwd(abs, sizeof(abs)) == NULL)
            return -errno;
        n = strlen(abs);
        if ((size_t)snprintf(abs + n, sizeof(abs) - n, "/%s", path) >= sizeof(abs) - n)
            return -ENAMETOOLONG;
    }
    slash = strrchr(abs, '/');
    if (slash == abs)
        slash[1] = '\0'; /* a file in / */
    else
        *slash = '\0';
    rc = safe_folders(l, abs);
    if (rc >= 0 && realpath(abs, real) == NULL)
        rc = -errno;
    if (rc >= 0) {
        int rc2 = safe_folders(l, real);
        rc = rc2 < 0 ? rc2 : (rc | rc2);
    }
    return rc;
}

/* An opened log a trusted user owns; a regular file with no other name (no hard link to a
 * file elsewhere). 0 or -EPERM. */
static int check_opened(const struct pbd_log *l, const struct stat *st)
{
    if (!trusted_uid(l, st->st_uid))
        return -EPERM;
    if (S_ISREG(st->st_mode) && st->st_nlink > 1)
        return -EPERM;
    return 0;
}

/* Open l->path; truncate: empty it, once it is known to be the log's own file. */
static int open_path(const struct pbd_log *l, int truncate, int *regular, uint64_t *size)
{
    struct stat st;
    int fd, rc;

    if (l->device) {
        fd = open(l->path, LOG_FLAGS, LOG_MODE);
        if (fd < 0)
            return -errno;
    } else {
        int as_user = check_folder(l, l->path);
        if (as_user < 0)
            return as_user;
        fsid_enter(l, as_user);
        fd = open(l->path, LOG_FLAGS | O_NOFOLLOW, LOG_MODE);
        rc = fd < 0 ? -errno : 0;
        fsid_leave(l, as_user);
        if (fd < 0)
            return rc;
    }
    rc = fstat(fd, &st) < 0 ? -errno : l->device ? 0 : check_opened(l, &st);
    if (rc == 0 && truncate && S_ISREG(st.st_mode) && ftruncate(fd, 0) < 0)
        rc = -errno;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    if (truncate)
        st.st_size = 0;
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
    return pbd_log_open_as(out, path, maxbytes, backups, NULL);
}

int pbd_log_open_as(struct pbd_log **out, const char *path, uint64_t maxbytes, int backups,
                    const struct pbd_log_as *as)
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
    if (as != NULL && geteuid() == 0 && as->uid != 0) {
        l->as_set = 1;
        l->as_uid = as->uid;
        l->as_gid = as->gid;
    }
    if (path != NULL) {
        l->device = device_path(path);
        l->path_len = strlen(path);
        l->path = strdup(path);
        l->from = malloc(l->path_len + SUFFIX_MAX);
        l->to = malloc(l->path_len + SUFFIX_MAX);
        if (l->path == NULL || l->from == NULL || l->to == NULL) {
            pbd_log_close(l);
            return -ENOMEM;
        }
        fd = open_path(l, 0, &l->regular, &l->size);
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
    int fd = open_path(l, truncate, &regular, &size);
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
    int i, rc, as_user;

    if (l->backups == 0)
        return swap_fd(l, 1);
    as_user = l->device ? 0 : check_folder(l, l->path);
    if (as_user < 0)
        return as_user;
    rc = 0;
    fsid_enter(l, as_user); /* rename(2) follows no link in the last component */
    for (i = l->backups - 1; i >= 1 && rc == 0; i--) {
        backup_name(l, l->from, i);
        backup_name(l, l->to, i + 1);
        if (rename(l->from, l->to) < 0 && errno != ENOENT)
            rc = -errno;
    }
    backup_name(l, l->to, 1);
    /* ENOENT: the file was moved away behind our back; start a new one anyway. */
    if (rc == 0 && rename(l->path, l->to) < 0 && errno != ENOENT)
        rc = -errno;
    fsid_leave(l, as_user);
    if (rc < 0)
        return rc;
    rc = swap_fd(l, 0);
    return rc;
}

/* supervisord's doRollover, after each write: rotate once the file has reached maxbytes. */
static void maybe_rotate(struct pbd_log *l)
{
    struct stat st;
    int rc;

    if (l->maxbytes == 0 || !l->regular || l->fd < 0)
        return;
    if (l->size < l->maxbytes || l->size < l->hold)
        return;
    /* Confirm with the real size (an external truncation, another writer). */
    if (fstat(l->fd, &st) == 0) {
        l->size = (uint64_t)st.st_size;
        if (l->size < l->maxbytes)
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

/* n bytes could not be written (errno err): count them; -err. */
static int lost(struct pbd_log *l, size_t n, int err)
{
    l->lost_total += n;
    l->lost_run += n;
    l->last_err = err;
    return -err;
}

int pbd_log_write(struct pbd_log *l, const void *buf, size_t n)
{
    const char *p = buf;

    if (l == NULL)
        return -EINVAL;
    if (l->path == NULL || n == 0)
        return 0;
    if (l->fd < 0)
        return lost(l, n, EBADF);
    if (l->regular) { /* append: at the end as it is now (another writer, a truncation) */
        off_t end = lseek(l->fd, 0, SEEK_END);
        if (end >= 0)
            l->size = (uint64_t)end;
    }
    while (n > 0) {
        ssize_t w = write(l->fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            maybe_rotate(l);
            return lost(l, n, errno);
        }
        if (w == 0) {
            maybe_rotate(l);
            return lost(l, n, EIO);
        }
        p += w;
        n -= (size_t)w;
        l->size += (uint64_t)w;
    }
    maybe_rotate(l);
    return 0;
}

int pbd_log_clear(struct pbd_log *l)
{
    if (l == NULL)
        return -EINVAL;
    if (l->path == NULL || l->fd < 0 || !l->regular)
        return 0;
    if (ftruncate(l->fd, 0) < 0)
        return -errno;
    l->size = 0;
    l->hold = 0;
    return 0;
}

ssize_t pbd_log_splice(struct pbd_log *l, int in, size_t max, int tee_fd)
{
    size_t n = max;
    int avail = 0;
    off_t end;
    ssize_t moved;

    if (l == NULL || l->path == NULL || l->fd < 0 || !l->regular || max == 0)
        return -ENOTSUP;
    if (ioctl(in, FIONREAD, &avail) == 0 && avail > 0 && (size_t)avail < n)
        n = (size_t)avail;
    else if (avail == 0)
        n = 1; /* empty, or at its end: the splice below says which */
    if (tee_fd >= 0) {
        ssize_t t = tee(in, tee_fd, n, SPLICE_F_NONBLOCK);
        if (t < 0)
            return errno == EAGAIN ? -EAGAIN : errno == EINVAL ? -ENOTSUP : -errno;
        if (t == 0)
            return 0; /* no writer left and nothing in it */
        n = (size_t)t;
    }
    end = lseek(l->fd, 0, SEEK_END);
    if (end < 0)
        return -ENOTSUP;
    l->size = (uint64_t)end;
    do
        moved = splice(in, NULL, l->fd, NULL, n, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
    while (moved < 0 && errno == EINTR);
    if (moved < 0)
        return errno == EAGAIN ? -EAGAIN : errno == EINVAL ? -ENOTSUP : -errno;
    l->size += (uint64_t)moved;
    maybe_rotate(l); /* as pbd_log_write: after the write that reached maxbytes */
    return moved;
}

enum pbd_log_news pbd_log_news(struct pbd_log *l, int rc, uint64_t now_ns, uint64_t every_ns,
                               uint64_t *lost_run, int *err)
{
    if (l == NULL)
        return PBD_LOG_NEWS_NONE;
    *lost_run = l->lost_run;
    *err = l->last_err;
    if (rc == 0) {
        if (!l->losing)
            return PBD_LOG_NEWS_NONE;
        l->losing = 0;
        l->lost_run = 0;
        l->last_news = now_ns;
        return PBD_LOG_NEWS_RECOVERED;
    }
    if (!l->losing) {
        l->losing = 1;
        l->last_news = now_ns;
        return PBD_LOG_NEWS_LOSING;
    }
    if (now_ns - l->last_news < every_ns)
        return PBD_LOG_NEWS_NONE;
    l->last_news = now_ns;
    return PBD_LOG_NEWS_STILL;
}

uint64_t pbd_log_lost(const struct pbd_log *l)
{
    return l != NULL ? l->lost_total : 0;
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
