/* fcgi.c - [fcgi-program:x] sockets: made by procbusd when the first instance starts, given to
 * every instance as fd 0, closed once none of them runs (supervisord's socket manager). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "parity.h"
#include "rxbuf.h"
#include "userdb.h"

/* One socket, shared by the instances of one [fcgi-program:x] (named by its program). */
struct pbd_fcgi_sock {
    char program[64];
    char *url;
    int fd; /* -1: closed */
};

/* owner = "user[:group]": uid and gid (the group: the user's, unless given). 0 or -errno. */
static int owner_ids(const char *owner, uid_t *uid, gid_t *gid)
{
    char user[256];
    const char *colon = strchr(owner, ':');
    struct pbd_user u;
    int rc;

    snprintf(user, sizeof(user), "%.*s", colon ? (int)(colon - owner) : (int)strlen(owner), owner);
    rc = pbd_user_lookup(user, &u);
    if (rc < 0)
        return rc;
    *uid = u.uid;
    *gid = u.gid;
    if (colon != NULL) {
        const char *g = colon + 1;
        if (*g >= '0' && *g <= '9') {
            *gid = (gid_t)strtoul(g, NULL, 10);
        } else {
            struct group *gr = getgrnam(g);
            if (gr == NULL)
                return -ENOENT;
            *gid = gr->gr_gid;
        }
    }
    return 0;
}

/* Make the listening socket of p. fd or -errno (why filled). */
static int make_socket(const struct pbd_program *p, char *why, size_t whylen)
{
    int fd, rc, one = 1;

    if (!strncmp(p->fcgi_socket, "unix://", 7)) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        const char *path = p->fcgi_socket + 7;
        const char *owner = p->fcgi_socket_owner ? p->fcgi_socket_owner : p->user;
        if (strlen(path) >= sizeof(sa.sun_path)) {
            snprintf(why, whylen, "socket path too long: %s", path);
            return -ENAMETOOLONG;
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            goto fail;
        unlink(path); /* supervisord removes a stale socket file too */
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
            goto fail_fd;
        if (chmod(path, p->fcgi_socket_mode) < 0)
            goto fail_fd;
        if (owner != NULL && geteuid() == 0) {
            uid_t uid;
            gid_t gid;
            rc = owner_ids(owner, &uid, &gid);
            if (rc < 0 || chown(path, uid, gid) < 0) {
                int e = rc < 0 ? -rc : errno;
                close(fd);
                snprintf(why, whylen, "socket %s: owner %s: %s", p->fcgi_socket, owner,
                         strerror(e));
                return -e;
            }
        }
    } else {
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE},
                        *res = NULL;
        char host[256];
        const char *hp = p->fcgi_socket + 6, *colon = strrchr(hp, ':');
        snprintf(host, sizeof(host), "%.*s", (int)(colon - hp), hp);
        rc = getaddrinfo(host, colon + 1, &hints, &res);
        if (rc != 0) {
            snprintf(why, whylen, "socket %s: %s", p->fcgi_socket, gai_strerror(rc));
            return -EINVAL;
        }
        fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            freeaddrinfo(res);
            goto fail;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
            freeaddrinfo(res);
            goto fail_fd;
        }
        freeaddrinfo(res);
    }
    if (listen(fd, p->fcgi_socket_backlog > 0 ? p->fcgi_socket_backlog : SOMAXCONN) < 0)
        goto fail_fd;
    return fd;
fail_fd:
    rc = -errno;
    close(fd);
    snprintf(why, whylen, "socket %s: %s", p->fcgi_socket, strerror(-rc));
    return rc;
fail:
    rc = -errno;
    snprintf(why, whylen, "socket %s: %s", p->fcgi_socket, strerror(-rc));
    return rc;
}

/* The socket entry of [fcgi-program:`program`], made (closed) if there is none yet; NULL when
 * out of memory. */
static struct pbd_fcgi_sock *sock_of(struct pbd_par *p, const char *program)
{
    struct pbd_fcgi_sock *s, *grown;

    for (size_t i = 0; i < p->n_socks; i++)
        if (!strcmp(p->socks[i].program, program))
            return &p->socks[i];
    grown = realloc(p->socks, (p->n_socks + 1) * sizeof(*p->socks));
    if (grown == NULL)
        return NULL;
    p->socks = grown;
    s = &p->socks[p->n_socks++];
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    snprintf(s->program, sizeof(s->program), "%s", program);
    return s;
}

int pbd_fcgi_socket(struct pbd_daemon *d, struct pbd_inst *in, char *why, size_t whylen)
{
    struct pbd_par *p = pbd_par_of(d);
    struct pbd_par_inst *x = pbd_par_inst_of(in);
    struct pbd_fcgi_sock *s = NULL;

    if (p == NULL || x == NULL) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    s = sock_of(p, in->prog->program);
    if (s == NULL) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    if (s->fd >= 0 && strcmp(s->url, in->prog->fcgi_socket) != 0) {
        close(s->fd); /* a reload changed the socket: a new one */
        s->fd = -1;
    }
    if (s->fd < 0) {
        free(s->url);
        s->url = strdup(in->prog->fcgi_socket);
        if (s->url == NULL) {
            snprintf(why, whylen, "out of memory");
            return -ENOMEM;
        }
        s->fd = make_socket(in->prog, why, whylen);
        if (s->fd < 0)
            return s->fd;
        pbd_say(d, PBD_L_INFO, "%s: listening on %s", in->prog->program, s->url);
    }
    x->fcgi = (int)(s - p->socks) + 1;
    return s->fd;
}

void pbd_fcgi_gc(struct pbd_daemon *d)
{
    struct pbd_par *p = d->par;

    for (size_t i = 0; p != NULL && i < p->n_socks; i++) {
        struct pbd_fcgi_sock *s = &p->socks[i];
        int used = 0;
        if (s->fd < 0)
            continue;
        for (size_t k = 0; k < d->n_inst && !used; k++) {
            const struct pbd_inst *in = d->inst[k];
            used = in->prog->kind == PBD_KIND_FCGI && !strcmp(in->prog->program, s->program) &&
                   pbd_inst_alive(in);
        }
        if (!used) {
            close(s->fd);
            s->fd = -1;
            if (!strncmp(s->url, "unix://", 7))
                unlink(s->url + 7);
            pbd_say(d, PBD_L_INFO, "%s: closed %s (no instance runs)", s->program, s->url);
        }
    }
}

void pbd_fcgi_free(struct pbd_daemon *d)
{
    struct pbd_par *p = d->par;

    for (size_t i = 0; p != NULL && i < p->n_socks; i++) {
        if (p->socks[i].fd >= 0) {
            close(p->socks[i].fd);
            if (!strncmp(p->socks[i].url, "unix://", 7))
                unlink(p->socks[i].url + 7);
        }
        free(p->socks[i].url);
    }
    if (p != NULL) {
        free(p->socks);
        p->socks = NULL;
        p->n_socks = 0;
    }
}

/* ---- crash-only: a procbusd taking over, an upgrade in place ---- */

void pbd_fcgi_adopt(struct pbd_daemon *d, struct pbd_inst *in, int pidfd)
{
    struct pbd_par *p = pbd_par_of(d);
    struct pbd_fcgi_sock *s = p != NULL ? sock_of(p, in->prog->program) : NULL;
    int fd, on = 0;
    socklen_t len = sizeof(on);
    char *url;

    if (s == NULL || s->fd >= 0)
        return; /* (another instance gave it back already) */
    /* the instance's fd 0 is the socket the dead procbusd made (pidfd_getfd: root, or the
     * same user with ptrace rights; close-on-exec set) */
    fd = (int)syscall(SYS_pidfd_getfd, pidfd, 0, 0);
    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0 || !on ||
        (url = strdup(in->prog->fcgi_socket)) == NULL) {
        pbd_say(d, PBD_L_WARN,
                "%s: cannot take %s back from pid %d (%s): an instance started next gets a new "
                "socket",
                in->prog->program, in->prog->fcgi_socket, (int)in->sp.pid,
                fd < 0 ? strerror(errno) : "its fd 0 is not a listening socket");
        if (fd >= 0)
            close(fd);
        return;
    }
    free(s->url);
    s->url = url;
    s->fd = fd;
    pbd_say(d, PBD_L_INFO, "%s: took %s back from pid %d", in->prog->program, s->url,
            (int)in->sp.pid);
}

void pbd_fcgi_keep(const struct pbd_daemon *d, int keep)
{
    const struct pbd_par *p = d->par;

    for (size_t i = 0; p != NULL && i < p->n_socks; i++)
        if (p->socks[i].fd >= 0)
            fcntl(p->socks[i].fd, F_SETFD, keep ? 0 : FD_CLOEXEC);
}

void pbd_fcgi_save(const struct pbd_daemon *d, struct pbd_rxbuf *b)
{
    const struct pbd_par *p = d->par;
    size_t n = 0;

    for (size_t i = 0; p != NULL && i < p->n_socks; i++)
        n += p->socks[i].fd >= 0;
    pbd_rx_u64(b, n);
    for (size_t i = 0; p != NULL && i < p->n_socks; i++) {
        if (p->socks[i].fd < 0)
            continue;
        pbd_rx_str(b, p->socks[i].program);
        pbd_rx_str(b, p->socks[i].url);
        pbd_rx_u64(b, (uint64_t)p->socks[i].fd);
    }
}

int pbd_fcgi_restore(struct pbd_daemon *d, struct pbd_rxrd *r)
{
    struct pbd_par *p = pbd_par_of(d);
    uint64_t n = pbd_rx_get_u64(r);

    for (uint64_t i = 0; i < n && r->err == 0; i++) {
        char *program = pbd_rx_get_str(r), *url = pbd_rx_get_str(r);
        int fd = (int)pbd_rx_get_u64(r);
        struct pbd_fcgi_sock *s =
            p != NULL && program != NULL && url != NULL ? sock_of(p, program) : NULL;
        if (r->err == 0 && fd >= 0)
            fcntl(fd, F_SETFD, FD_CLOEXEC);
        if (s == NULL || s->fd >= 0 || r->err != 0) {
            if (r->err == 0 && fd >= 0)
                close(fd);
            free(url);
        } else {
            free(s->url);
            s->url = url;
            s->fd = fd; /* (no instance of it runs any more: pbd_fcgi_gc closes it) */
        }
        free(program);
    }
    return p == NULL ? -ENOMEM : r->err;
}
