/* ctl.h - the control socket's protocol, default path and client (procbus CLI, tests). */
#ifndef PROCBUS_CTL_H
#define PROCBUS_CTL_H

#include <stddef.h>
#include <sys/types.h>

struct sockaddr_un;

/*
 * Protocol (text, one request per connection):
 *   client -> "COMMAND ARG...\n"   (words separated by spaces, at most 4096 bytes)
 *   daemon -> zero or more detail lines, then one final line "OK" or "ERR <reason>" (a
 *             detail line never is "OK" or starts with "ERR ": "ERROR: ..." is a detail)
 *   and closes the connection.
 * Only peers whose SO_PEERCRED uid is the daemon's euid or 0 are served; others
 * get "ERR permission denied". State is never read through the socket: the
 * segment is the read side. The server side is publisher/procbusd/ctl_server.h.
 */

#define PBD_CTL_LINE_MAX 4096

/* The default socket path: $XDG_RUNTIME_DIR/procbus.sock, else /run/procbus/procbus.sock. */
void pbd_ctl_default_path(char *buf, size_t len);

/* Fill a unix socket address for `path`. 0 or -ENAMETOOLONG. */
int pbd_ctl_fill_addr(struct sockaddr_un *sa, const char *path);

/*
 * Client side: connect to `path` (NULL: default), send the words of argv as
 * one line, and copy the reply lines to `out` (FILE*), except the final
 * status line. Returns 0 for OK, 1 for ERR (the reason is printed to `err`),
 * or a negative errno when the daemon cannot be reached.
 */
int pbd_ctl_request(const char *path, int argc, char **argv, void *out, void *err);

/*
 * pbd_ctl_request, bounded: at most timeout_ms (< 0: no bound) for connecting
 * (a full listen backlog is retried), sending and the whole reply, after which
 * it returns -ETIMEDOUT (a stopped or hung daemon). Never raises SIGPIPE: when
 * the daemon refuses a connection and closes it before reading the request
 * ("ERR busy", "ERR permission denied"), its reason is still read, printed to
 * `err` and 1 returned; without any reply, the send error (-EPIPE,
 * -ECONNRESET) is returned.
 */
int pbd_ctl_request_timeout(const char *path, int argc, char **argv, void *out, void *err,
                            int timeout_ms);

#endif /* PROCBUS_CTL_H */
