/* control.h - procbusd's control socket: a unix stream socket, one request line per connection. */
#ifndef PROCBUSD_CONTROL_H
#define PROCBUSD_CONTROL_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Protocol (text, one request per connection):
 *   client -> "COMMAND ARG...\n"   (words separated by spaces, at most 4096 bytes)
 *   daemon -> zero or more detail lines, then one final line "OK" or "ERR <reason>"
 *   and closes the connection.
 * Only peers whose SO_PEERCRED uid is the daemon's euid or 0 are served; others
 * get "ERR permission denied". State is never read through the socket: the
 * segment is the read side.
 */

#define PBD_CTL_MAX_CONN 16
#define PBD_CTL_LINE_MAX 4096

struct pbd_ctl_conn {
    int fd;
    size_t len;
    char buf[PBD_CTL_LINE_MAX];
};

struct pbd_ctl {
    int listen_fd;
    char path[108];
    struct pbd_ctl_conn conns[PBD_CTL_MAX_CONN];
};

/* The default socket path: $XDG_RUNTIME_DIR/procbus.sock, else /run/procbus/procbus.sock. */
void pbd_ctl_default_path(char *buf, size_t len);

/*
 * Listen on `path` (NULL: the default), mode 0600, creating its folder (0700)
 * when missing. A stale socket file (nobody accepting) is replaced; a live
 * one gives -EADDRINUSE. Returns 0 or a negative errno.
 */
int pbd_ctl_listen(struct pbd_ctl *c, const char *path);

/* Close the listener and every connection; unlink the socket file. */
void pbd_ctl_close(struct pbd_ctl *c);

/*
 * Accept one pending connection (non-blocking). Returns the connection slot
 * (>= 0) whose fd the caller adds to its poll set, -EAGAIN when none is
 * pending, or another negative errno. A refused peer is answered and closed
 * here (returns -EPERM). When all slots are busy the newcomer gets
 * "ERR busy" (-EBUSY).
 */
int pbd_ctl_accept(struct pbd_ctl *c);

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

/*
 * Client side: connect to `path` (NULL: default), send the words of argv as
 * one line, and copy the reply lines to `out` (FILE*), except the final
 * status line. Returns 0 for OK, 1 for ERR (the reason is printed to `err`),
 * or a negative errno when the daemon cannot be reached.
 */
int pbd_ctl_request(const char *path, int argc, char **argv, void *out, void *err);

#endif /* PROCBUSD_CONTROL_H */
