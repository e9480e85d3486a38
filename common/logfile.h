/* logfile.h - procbusd output capture: size-rotated log files, a line splitter, a tail reader. */
#ifndef PROCBUSD_LOGFILE_H
#define PROCBUSD_LOGFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * ---- Rotated log files (supervisord's RotatingFileHandler rule) ----
 *
 * A struct pbd_log appends a program's output to `path`. After a write that
 * makes the file reach `maxbytes` (size >= maxbytes), the file is rotated:
 *     path.(backups-1) -> path.backups, ..., path.1 -> path.2, path -> path.1
 * (rename(2), so the previous path.backups, the oldest copy, is dropped) and a
 * fresh, empty `path` is opened. With backups == 0 the file is truncated instead
 * (supervisord reopens it with mode 'w'). maxbytes == 0 never rotates.
 *
 * This is supervisord 4.2.5's doRollover, checked after each write: a rotated
 * file holds maxbytes or more (the write that reached the limit goes whole into
 * it, never split across files), and the current file is empty right after a
 * rotation. What each file holds therefore depends on how output was read: one
 * read of the program's pipe is one write (as in supervisord, whose reads are
 * chunked the same way by the kernel's pipe).
 * Files above path.backups (left over from a larger `backups` setting) are not
 * touched.
 *
 * All functions are meant for a single-threaded event loop: they do only
 * syscalls on regular files (no waiting), and pbd_log_write and pbd_log_reopen
 * do not allocate (rotation uses buffers sized by pbd_log_open).
 * One struct pbd_log per file: the size is tracked in memory and re-checked with
 * fstat(2) before rotating, so an external truncation (logrotate copytruncate)
 * or another writer cannot cause a premature rotation.
 */
struct pbd_log;

/*
 * Open (O_WRONLY|O_CREAT|O_CLOEXEC, mode 0640 before umask) `path`; every write goes to the
 * file's end as it is at that moment (as with O_APPEND, which splice(2) refuses).
 * path NULL: a discarding log (writes succeed and go nowhere).
 * Returns 0 and sets *out (malloc'd; release with pbd_log_close), or a negative
 * errno: -EINVAL (out NULL, backups < 0, empty path), -ENOMEM, open(2)'s error,
 * or one of the refusals below.
 * An existing file is appended to; its current size counts toward maxbytes.
 * The open never blocks (O_NONBLOCK; a FIFO without a reader fails -ENXIO).
 * A path that is not a regular file (/dev/stdout, a tty, a pipe) is written
 * without rotation and stays non-blocking: a write that would block fails
 * with -EAGAIN and those bytes are dropped.
 *
 * Safe for a root daemon (every open, also on rotation and reopen): procbusd's
 * own devices and descriptors (/dev/NAME, /dev/fd/N, /proc/self/fd/N) are opened
 * as given. Any other path:
 *   - every folder from / to the file's, as written and as resolved, belongs to
 *     root or procbusd's user (or the program's user, see pbd_log_open_as) and is
 *     not writable by others unless sticky (/tmp); else -EPERM;
 *   - the file itself is opened without following a symbolic link (-ELOOP);
 *   - what was opened belongs to one of those users (-EPERM), and a regular file
 *     has no second name, i.e. is no hard link to a file elsewhere (-EPERM).
 * Truncation (backups == 0) happens after these checks, with ftruncate.
 */
int pbd_log_open(struct pbd_log **out, const char *path, uint64_t maxbytes, int backups);

/* The account a program runs as (its `user =`), for pbd_log_open_as. */
struct pbd_log_as {
    uid_t uid;
    gid_t gid;
};

/*
 * pbd_log_open for a program that runs as `as` (NULL: as procbusd; ignored
 * unless procbusd runs as root and as->uid is not 0). Folders and files of that
 * user are trusted too, and where that user can change a folder on the way, the
 * file is opened (created, so owned by that user) and rotated with that user's
 * filesystem ids (setfsuid/setfsgid, this thread only): root then writes nothing
 * there that the program's user could not.
 */
int pbd_log_open_as(struct pbd_log **out, const char *path, uint64_t maxbytes, int backups,
                    const struct pbd_log_as *as);

/*
 * Append buf[n], rotating first if needed (see above). Retries EINTR and
 * partial writes until all n bytes are written.
 * Returns 0 when all n bytes were written (or discarded), or a negative errno
 * when some were lost: -EINVAL (l NULL), write(2)'s error (-ENOSPC, -EIO,
 * -EFBIG, -EAGAIN for a full non-regular target ...), -EIO for a write that made
 * no progress; on an error part of buf may have been written.
 * A failed rotation does not lose data: the bytes go to the file still open
 * (path itself if a rename failed, or the just-renamed path.1 if reopening path
 * failed), the error is kept for pbd_log_take_error, and rotation is not
 * retried until that file grows by another maxbytes (or pbd_log_reopen), so a
 * persistent failure does not shift the backups on every write.
 * Does not allocate.
 */
int pbd_log_write(struct pbd_log *l, const void *buf, size_t n);

/*
 * Move up to `max` bytes from the pipe `in` to the end of the log with splice(2), so they never
 * pass through this process: each byte is in the file or still in the pipe, whenever this
 * process dies (a successor reading the same pipe, kept open by procbusd's fd holder, logs each
 * byte exactly once). With tee_fd >= 0 (a pipe), the same bytes are first copied there (tee(2))
 * for the caller to read (ready_log matching; a copy never consumes the pipe). Rotation as
 * pbd_log_write: after the move that made the file reach maxbytes (one splice is one write; it
 * moves at most what FIONREAD said the pipe held).
 * Returns the bytes moved (> 0), 0 at the pipe's end (no writer, nothing left), -EAGAIN (empty
 * for now), -ENOTSUP (this log cannot take a splice: a discarding log, not a regular file, a
 * file system without splice), or another negative errno of splice (-ENOSPC,
 * -EIO: nothing was consumed). On any error the bytes are still in the pipe: read them and
 * pbd_log_write them instead, which counts what it loses. Never blocks (SPLICE_F_NONBLOCK; the
 * pipe's own O_NONBLOCK is not needed). No allocation.
 */
ssize_t pbd_log_splice(struct pbd_log *l, int in, size_t max, int tee_fd);

/* What pbd_log_news has to say about lost output. */
enum pbd_log_news {
    PBD_LOG_NEWS_NONE = 0,  /* nothing (all is well, or said recently) */
    PBD_LOG_NEWS_LOSING,    /* output is lost, after writes went well: say so, with the error */
    PBD_LOG_NEWS_STILL,     /* still losing, every_ns after the last news: say how much */
    PBD_LOG_NEWS_RECOVERED, /* a write went well after losses: say how much was lost */
};

/*
 * Rate-limited news about lost output (a full disk, a FIFO nobody reads), for
 * the caller to log after each pbd_log_write that returned rc: one line when
 * losses start, then at most one every every_ns while they go on, and one when
 * writing works again. *lost_run: the bytes lost since writing last went well
 * (for RECOVERED: in the run just ended); *err: the latest write error
 * (positive errno). Bytes are counted by pbd_log_write (those it could not
 * write of each call). No allocation, no syscall.
 */
enum pbd_log_news pbd_log_news(struct pbd_log *l, int rc, uint64_t now_ns, uint64_t every_ns,
                               uint64_t *lost_run, int *err);

/* Bytes pbd_log_write could not write since the log was opened (0 for NULL). */
uint64_t pbd_log_lost(const struct pbd_log *l);

/* Empty the current file (supervisorctl clear): truncated to 0, rotated copies kept. 0, or a
 * negative errno from ftruncate (-EINVAL for NULL). Nothing for a discarding log or a device. */
int pbd_log_clear(struct pbd_log *l);

/*
 * Close and reopen path (SIGHUP after logrotate moved the file away): the new
 * file is opened before the old descriptor is closed, so on failure writing
 * continues to the old file. Returns 0 (also for a discarding log) or a negative
 * errno from open(2)/fstat(2). Re-enables rotation after a failure. No allocation.
 */
int pbd_log_reopen(struct pbd_log *l);

/*
 * The last deferred error (a failed rotation rename or reopen during
 * pbd_log_write) as a negative errno, and clear it; 0 if none. Lets the loop
 * log the problem once without pbd_log_write reporting data loss.
 */
int pbd_log_take_error(struct pbd_log *l);

/* The path given to pbd_log_open (owned by l), or NULL for a discarding log. */
const char *pbd_log_path(const struct pbd_log *l);

/* Close the file and free l. NULL is accepted. */
void pbd_log_close(struct pbd_log *l);

/*
 * ---- Line splitter (readiness matching on output) ----
 *
 * Feed arbitrary chunks; on_line(arg, line, len) is called for every complete
 * line, without its '\n', as a NUL-terminated copy (line[len] == '\0') valid
 * only during the call. Line endings: one '\r' immediately before the '\n' is
 * stripped (CRLF output matches like LF output); other '\r' bytes are kept.
 * NUL bytes inside a line are passed through (len counts them).
 * An overlong line (more than PBD_LINE_MAX bytes before its '\n', not counting
 * a '\r' right before it) is delivered in chunks of exactly PBD_LINE_MAX bytes
 * followed by the remainder (1 to PBD_LINE_MAX bytes, delivered at its '\n');
 * a chunk keeps any '\r' it ends with (it is not a line end). A line of exactly
 * PBD_LINE_MAX bytes, LF- or CRLF-terminated, is one call.
 * No allocation; on_line must not feed the same struct pbd_lines.
 */
#define PBD_LINE_MAX 4096

struct pbd_lines {
    size_t len;                 /* bytes of the pending partial line in buf */
    char buf[PBD_LINE_MAX + 2]; /* + a held '\r' + the NUL terminator */
};

/* Empty the splitter (a zeroed struct is also a valid empty splitter). */
void pbd_lines_init(struct pbd_lines *lb);

void pbd_lines_feed(struct pbd_lines *lb, const char *buf, size_t n,
                    void (*on_line)(void *arg, const char *line, size_t len), void *arg);

/* Deliver the pending partial line, if any (a trailing '\r' is stripped), and empty lb. */
void pbd_lines_flush(struct pbd_lines *lb, void (*on_line)(void *arg, const char *line, size_t len),
                     void *arg);

/*
 * ---- Tail (procbus logs NAME -n N) ----
 *
 * Write the last nlines lines of `path` to fd_out. If path holds fewer lines,
 * the missing ones come from the end of path.1 first (only path.1 is
 * consulted). A final line without '\n' counts as a line and is written as is
 * (no newline added). The files are read backwards from their end in fixed
 * blocks, so the cost is proportional to the output, not to the file size;
 * bytes appended while tailing are not included (the size is taken at start).
 * A line split between path.1 and path by a rotation (path.1 not ending in
 * '\n') counts as one line, and its two parts are written contiguously.
 * Returns 0, or a negative errno: -EINVAL (nlines < 0, fd_out < 0, path NULL or
 * not a regular file), -ENOENT (neither path nor path.1 exists; a missing path
 * with an existing path.1 is tailed as an empty file), read(2)/write(2) errors
 * (-EPIPE when the reader went away). nlines == 0 writes nothing.
 * Writes to fd_out retry EINTR and partial writes; on a non-blocking fd_out it
 * waits for POLLOUT, so it may block while the reader does not read: call it
 * from the CLI or a helper, not from the daemon's event loop with a socket.
 * Uses a 16 KiB stack buffer, no heap.
 */
int pbd_log_tail(const char *path, int nlines, int fd_out);

#endif /* PROCBUSD_LOGFILE_H */
