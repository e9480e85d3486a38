/* main.c - procbus-exporter: serves a procbus segment as Prometheus metrics over HTTP. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "exporter.h"
#include "segguard.h"

#define CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"

static const char landing[] =
    "<html><head><title>procbus exporter</title></head><body>\n"
    "<h1>procbus exporter</h1>\n<p><a href=\"/metrics\">Metrics</a></p>\n</body></html>\n";

static void usage(FILE *f)
{
    fprintf(f, "usage: procbus-exporter [--listen ADDR:PORT] [-s SEGMENT]\n"
               "       procbus-exporter --list-metrics\n"
               "  --listen ADDR:PORT  IPv4 address and port to serve on (default 127.0.0.1:9464;\n"
               "                      port 0 picks a free one); prints 'listening on ADDR:PORT'\n"
               "  -s SEGMENT          segment name or path (default $PROCBUS_SEGMENT or procbus)\n"
               "  --list-metrics      print the metric families (name, type, labels, help; tab-\n"
               "                      separated, one a line) and exit\n"
               "  -h, --help          this text\n"
               "Serves /metrics (Prometheus text format 0.0.4) and a landing page at /.\n");
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned code, const char *type,
                                 const char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, mode);
    enum MHD_Result ret;

    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    ret = MHD_queue_response(c, code, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    struct exp_state *s = cls;
    static const char not_found[] = "404 not found: try /metrics\n";
    static const char bad_method[] = "405 method not allowed\n";
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;

    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return send_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", bad_method,
                         sizeof(bad_method) - 1, MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/metrics") == 0) {
        if (exp_render(s) < 0) {
            static const char oom[] = "out of memory\n";
            return send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8", oom,
                             sizeof(oom) - 1, MHD_RESPMEM_PERSISTENT);
        }
        /* copied: the next scrape reuses s->out while this response may still be sending */
        return send_text(c, MHD_HTTP_OK, CONTENT_TYPE_METRICS, s->out, s->out_len,
                         MHD_RESPMEM_MUST_COPY);
    }
    if (strcmp(url, "/") == 0)
        return send_text(c, MHD_HTTP_OK, "text/html; charset=utf-8", landing, sizeof(landing) - 1,
                         MHD_RESPMEM_PERSISTENT);
    return send_text(c, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", not_found,
                     sizeof(not_found) - 1, MHD_RESPMEM_PERSISTENT);
}

/* Parse "A.B.C.D:PORT" into sa. 0 or -1. */
static int parse_listen(const char *arg, struct sockaddr_in *sa)
{
    char host[64], *end;
    const char *colon = strrchr(arg, ':');
    unsigned long port;

    if (colon == NULL || (size_t)(colon - arg) >= sizeof(host))
        return -1;
    memcpy(host, arg, (size_t)(colon - arg));
    host[colon - arg] = '\0';
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || port > 65535)
        return -1;
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (host[0] == '\0')
        sa->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *listen_arg = "127.0.0.1:9464", *segment = NULL;
    struct sockaddr_in sa;
    socklen_t salen = sizeof(sa);
    struct exp_state s;
    struct MHD_Daemon *d;
    char addr[INET_ADDRSTRLEN];
    sigset_t set;
    int i, fd, one = 1, sig;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--list-metrics") == 0) {
            exp_list_metrics(stdout);
            return fflush(stdout) == 0 ? 0 : 1;
        } else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen_arg = argv[++i];
        } else if (strncmp(argv[i], "--listen=", 9) == 0) {
            listen_arg = argv[i] + 9;
        } else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
            segment = argv[++i];
        } else {
            fprintf(stderr, "procbus-exporter: bad argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (parse_listen(listen_arg, &sa) < 0) {
        fprintf(stderr, "procbus-exporter: --listen wants IPV4:PORT, got '%s'\n", listen_arg);
        return 2;
    }
    /* SIGINT/SIGTERM are taken by sigwait below; block them before any thread exists */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &salen) < 0) {
        fprintf(stderr, "procbus-exporter: cannot listen on %s: %s\n", listen_arg, strerror(errno));
        return 1;
    }
    pb_guard_install(); /* a segment truncated under a scrape: publisher_up 0, not a crash */
    if (exp_init(&s, segment, 256) < 0) {
        fprintf(stderr, "procbus-exporter: out of memory\n");
        return 1;
    }
    if (!s.open)
        fprintf(stderr,
                "procbus-exporter: segment %s not readable yet: %s (publisher_up 0; retrying on "
                "each scrape)\n",
                segment ? segment : "(default)", procbus_strerror(s.last_err));
    /* one internal polling thread: scrapes are serialised, so s needs no lock */
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, handler,
                         &s, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned)30, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "procbus-exporter: cannot start the HTTP server on %s\n", listen_arg);
        close(fd);
        exp_fini(&s);
        return 1;
    }
    inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof(addr));
    printf("listening on %s:%u\n", addr, (unsigned)ntohs(sa.sin_port));
    fflush(stdout);
    while (sigwait(&set, &sig) != 0)
        ;
    MHD_stop_daemon(d);
    close(fd);
    exp_fini(&s);
    return 0;
}
