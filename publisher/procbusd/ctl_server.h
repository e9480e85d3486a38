/* ctl_server.h - procbusd's end of the control socket (protocol and client: common/ctl.h). */
#ifndef PROCBUSD_CTL_SERVER_H
#define PROCBUSD_CTL_SERVER_H

#include <stddef.h>
#include <sys/types.h>

#include "ctl.h"

#include <stdint.h>

#define PBD_CTL_MAX_CONN 16
/* A connection that has not sent a whole request line this long after it was accepted is
 * closed ("ERR timeout"): idle or half-sent requests cannot hold the slots. */
#define PBD_CTL_REQUEST_MS 5000

struct pbd_ctl_conn {
    int fd;
    uint64_t deadline; /* CLOCK_MONOTONIC ns: accepted + PBD_CTL_REQUEST_MS */
    size_t len;
    char buf[PBD_CTL_LINE_MAX];
};

struct pbd_ctl {
    int listen_fd;
    char path[108];
    struct pbd_ctl_conn conns[PBD_CTL_MAX_CONN];
};

/*
 * Listen on `path` (NULL: the default), mode 0600, creating its folder (0700)
 * when missing. A stale socket file (nobody accepting) is replaced; a live
 * one gives -EADDRINUSE. Returns 0 or a negative errno.
 */
int pbd_ctl_listen(struct pbd_ctl *c, const char *path);

/* Take over a listening socket an earlier image of this process bound at `path` (a re-exec):
 * made non-blocking and close-on-exec again. 0 or -ENAMETOOLONG. */
int pbd_ctl_adopt(struct pbd_ctl *c, int listen_fd, const char *path);

/* Close the listener and every connection; unlink the socket file. */
void pbd_ctl_close(struct pbd_ctl *c);

/*
 * pbd_ctl_keep_path - is the listening socket still at its path? When the
 * path is gone (a tmp cleaner, rm), bind and listen on a new socket there.
 * Context: the loop, after pbd_ctl_listen succeeded. A path that exists
 * (whatever is there) is left alone.
 * Returns: the new listening socket (the caller replaces c->listen_fd and its
 * watch with it), 0 (nothing to do), or a negative errno (the path could not
 * be listened on again; the old socket stays, reachable by nobody).
 */
int pbd_ctl_keep_path(struct pbd_ctl *c);

/*
 * Accept one pending connection (non-blocking). Returns the connection slot
 * (>= 0) whose fd the caller adds to its poll set, -EAGAIN when none is
 * pending, or another negative errno. A refused peer is answered and closed
 * here (returns -EPERM). When all slots are busy the newcomer gets
 * "ERR busy" (-EBUSY); the last slot is kept for root (uid 0), so that the
 * daemon's own non-root user cannot lock root out. The slot must receive its
 * whole request line within PBD_CTL_REQUEST_MS (pbd_ctl_expired).
 */
int pbd_ctl_accept(struct pbd_ctl *c);

/* The earliest request deadline of an open connection (CLOCK_MONOTONIC ns), or UINT64_MAX. */
uint64_t pbd_ctl_next_deadline(const struct pbd_ctl *c);

/* The first open connection from `slot` on whose deadline is at or before `now`; -1 if none.
 * The caller answers and closes it (pbd_ctl_finish), then asks again from slot + 1. */
int pbd_ctl_expired(const struct pbd_ctl *c, int slot, uint64_t now);

/*
 * Read what connection `slot` sent. Returns 1 when a whole request line is in
 * argv (split on whitespace, at most `maxargs` - 1 words, NULL-terminated;
 * pointers into the connection buffer), 0 when more input is needed, or a
 * negative errno when the peer is gone or the line is too long (the caller
 * then calls pbd_ctl_finish).
 */
int pbd_ctl_read(struct pbd_ctl *c, int slot, char **argv, int maxargs, int *argc);

/* Send text to connection `slot` (best effort, the socket is non-blocking with a small
 * timeout). */
void pbd_ctl_reply(struct pbd_ctl *c, int slot, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Close connection `slot`. */
void pbd_ctl_finish(struct pbd_ctl *c, int slot);

#endif /* PROCBUSD_CTL_SERVER_H */
