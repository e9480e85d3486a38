/* cmd_top.c - procbus top: a live full-screen (ncurses) view of the process table. */
#define _GNU_SOURCE
#include <curses.h>
#include <errno.h>
#include <stddef.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_cmds.h"
#include "cli_fmt.h"
#include "cli_proc.h"
#include "cli_segment.h"
#include "util.h"

#define TOP_TICK_MS 1000
#define FILTER_MAX  64

static void top_usage(FILE *f)
{
    fprintf(f, "usage: procbus top\n"
               "Live full-screen view of the supervised programs, redrawn when the table\n"
               "changes and at least once a second (one consistent snapshot per redraw).\n"
               "Keys:\n"
               "  c  sort by cpu (%% over the last interval)   m  sort by memory (rss)\n"
               "  r  sort by restarts                          a  sort by age (oldest first)\n"
               "  n  sort by name                              t  toggle the process tree\n"
               "  /  filter by name (type a substring, Enter; Esc clears)\n"
               "  q  quit\n"
               "Colours only on a terminal that has them and without NO_COLOR.\n");
}

enum top_sort {
    T_NAME = CLI_SORT_NAME,
    T_CPU = CLI_SORT_CPU,
    T_MEM = CLI_SORT_RSS,
    T_RESTARTS = CLI_SORT_RESTARTS,
    T_AGE = CLI_SORT_AGE
};
static const char *const sort_names[] = {[T_NAME] = "name",
                                         [T_CPU] = "cpu",
                                         [T_MEM] = "memory",
                                         [T_RESTARTS] = "restarts",
                                         [T_AGE] = "age"};

/* CPU usage per record id, computed when the baseline rolls (at most once a second). */
struct cpu_sample {
    uint64_t id, cpu_ns;
    double pct; /* < 0: not known yet */
};

struct top_row {
    const struct procbus_proc *p;
    double pct;
    int depth;
};

struct top {
    struct procbus_reader r;
    struct procbus_proc *list;
    size_t n, cap;
    struct cpu_sample *samples;
    size_t nsamples;
    uint64_t base_mono_ns;
    struct top_row *rows;
    size_t nrows;
    enum top_sort sort;
    int tree, colour, editing;
    char filter[FILTER_MAX], edit[FILTER_MAX];
    const char *segment;     /* -s, for reopening */
    const char *title;       /* the segment's name, for the header */
    struct procbus_info inf; /* header facts read with the last snapshot */
    int live;                /* procbus_liveness then */
    uint64_t stale_ns;       /* procbus_stale_after_ns then */
    int broken;              /* the segment shrank under top (SIGBUS): reopening */
};

/* ---- the waiter thread: turns procbus_wait into a readable pipe ---- */

struct waiter {
    struct procbus_reader r; /* attached to the same mapping: a reader per thread */
    int fd;                  /* write end of the pipe */
    volatile sig_atomic_t stop;
    int running;
    pthread_t tid;
};

#define WAKE_COMMIT    1 /* a byte on the pipe: the table moved (or a tick passed) */
#define WAKE_TRUNCATED 2 /* the segment shrank under the waiter: it has stopped */

static void on_wake(int sig)
{
    (void)sig;
}

static int waiter_loop(struct procbus_reader *r, void *arg)
{
    struct waiter *w = arg;
    uint64_t gen = procbus_generation(r);

    while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
        int rc = procbus_wait(r, gen, TOP_TICK_MS);
        char c = WAKE_COMMIT;

        if (rc == -EINTR)
            continue;
        if (rc == -EPIPE || (rc < 0 && rc != -ETIMEDOUT)) {
            /* it will not move any more: keep ticking so the header stays current */
            struct timespec ts = {TOP_TICK_MS / 1000, (TOP_TICK_MS % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            if (__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE))
                break;
        }
        gen = procbus_generation(r);
        if (write(w->fd, &c, 1) < 0 && errno != EAGAIN && errno != EINTR)
            break;
    }
    return 0;
}

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    char c = WAKE_TRUNCATED;

    /* the segment shrank under the wait: tell the main thread, which reopens and restarts us */
    if (cli_guarded(&w->r, waiter_loop, w) == -EFAULT && write(w->fd, &c, 1) < 0) {
        /* the main thread is gone or its pipe is full of wake-ups: it reads the segment next */
    }
    return NULL;
}

/* Start the waiter on t's current mapping. 0, or -1 (nothing started). */
static int waiter_start(struct top *t, struct waiter *w)
{
    sigset_t all, old;
    int rc;

    /* the waiter's own view of the mapping t->r validated (attach checks it again) */
    if (procbus_attach(&w->r, t->r.base, t->r.len) < 0)
        return -1;
    __atomic_store_n(&w->stop, 0, __ATOMIC_RELEASE);
    sigfillset(&all);
    sigdelset(&all, SIGUSR1);
    sigdelset(&all, SIGBUS);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread inherits: SIGWINCH etc. stay here */
    rc = pthread_create(&w->tid, NULL, waiter_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    w->running = rc == 0;
    return rc == 0 ? 0 : -1;
}

/* Stop the waiter (SIGUSR1, no SA_RESTART, interrupts its futex wait) and wait for it. */
static void waiter_stop(struct waiter *w)
{
    if (!w->running)
        return;
    __atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
    pthread_kill(w->tid, SIGUSR1);
    pthread_join(w->tid, NULL);
    w->running = 0;
}

/* ---- the rows ---- */

static int sample_cmp(const void *a, const void *b)
{
    const struct cpu_sample *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static const struct cpu_sample *sample_find(const struct top *t, uint64_t id)
{
    struct cpu_sample key = {.id = id};
    if (t->samples == NULL || t->nsamples == 0)
        return NULL;
    return bsearch(&key, t->samples, t->nsamples, sizeof(key), sample_cmp);
}

/* Roll the CPU baseline when it is at least a second old: % = cpu_ns delta / wall delta. */
static void update_cpu(struct top *t)
{
    uint64_t now = pb_now_ns(CLOCK_MONOTONIC), dt = now - t->base_mono_ns;
    struct cpu_sample *s;

    if (t->samples != NULL && dt < PB_NS_PER_SEC)
        return;
    s = calloc(t->n ? t->n : 1, sizeof(*s));
    if (s == NULL)
        return;
    for (size_t i = 0; i < t->n; i++) {
        const struct cpu_sample *old = sample_find(t, t->list[i].id);
        s[i].id = t->list[i].id;
        s[i].cpu_ns = t->list[i].cpu_ns;
        s[i].pct = old != NULL && t->list[i].cpu_ns >= old->cpu_ns && dt > 0
                       ? (double)(t->list[i].cpu_ns - old->cpu_ns) * 100.0 / (double)dt
                       : -1.0;
    }
    qsort(s, t->n, sizeof(*s), sample_cmp);
    free(t->samples);
    t->samples = s;
    t->nsamples = t->n;
    t->base_mono_ns = now;
}

/* Record p (from a section) into *out, but its command line, which top never shows: the 176
 * bytes up to `cmdline`, strings terminated. Untrusted until the section validates. */
static void copy_head(const struct procbus_proc *p, struct procbus_proc *out)
{
    memcpy(out, p, offsetof(struct procbus_proc, cmdline));
    out->name[PROCBUS_NAME_LEN - 1] = '\0';
    out->comm[PROCBUS_COMM_LEN - 1] = '\0';
    out->cmdline_len = 0;
    out->cmdline[0] = '\0';
}

/*
 * One consistent snapshot into t->list: a zero-copy walk (procbus_section.h) that copies each
 * record but its command line. Read on every refresh, ticks too, even when the generation has not
 * moved: the walk is also what finds a segment truncated under top (SIGBUS on its lost pages;
 * the header page alone may still be there). Keeps the previous one when it cannot be read.
 */
static int snapshot(struct top *t)
{
    for (;;) {
        struct procbus_section s;
        const struct procbus_proc *p;
        uint32_t n, i;
        int rc;

        procbus_section_begin(&t->r, &s);
        do {
            n = procbus_section_count(&s);
            for (i = 0; n <= t->cap && i < n && (p = procbus_section_at(&s, i)) != NULL; i++)
                copy_head(p, &t->list[i]);
        } while ((rc = procbus_section_retry(&s)) > 0);
        if (rc < 0)
            return rc;
        if (n <= t->cap) {
            t->n = n;
            return 0;
        }
        struct procbus_proc *grown = realloc(t->list, (n + 64) * sizeof(*grown));
        if (grown == NULL)
            return -ENOMEM;
        t->list = grown;
        t->cap = n + 64;
    }
}

static int row_cmp(const void *a, const void *b, void *sort)
{
    const struct top_row *rx = a, *ry = b;
    enum top_sort key = *(const enum top_sort *)sort;

    /* by CPU, top ranks the recent rate first, then the total */
    if (key == T_CPU && rx->pct != ry->pct)
        return rx->pct > ry->pct ? -1 : 1;
    return cli_proc_cmp(rx->p, ry->p, (enum cli_sort)key);
}

static int name_matches(const struct procbus_proc *p, const void *ctx)
{
    const struct top *t = ctx;
    char lab[CLI_LABEL_MAX];

    return t->filter[0] == '\0' || strstr(cli_label(lab, sizeof(lab), p), t->filter) != NULL;
}

/* Build t->rows: programs (filtered, sorted) and, in tree mode, their descendants under them. */
static void build_rows(struct top *t)
{
    size_t n = t->n ? t->n : 1, nc = 0;
    struct top_row *cand = calloc(n, sizeof(*cand)); /* what may show, sorted */
    const struct procbus_proc **recs = calloc(n, sizeof(*recs));
    struct cli_tree_row *tree = calloc(n, sizeof(*tree));

    free(t->rows);
    t->rows = calloc(n, sizeof(*t->rows));
    t->nrows = 0;
    if (t->rows != NULL && cand != NULL && recs != NULL && tree != NULL) {
        for (size_t i = 0; i < t->n; i++) {
            const struct cpu_sample *s = sample_find(t, t->list[i].id);
            if (t->tree || !(t->list[i].flags & PROCBUS_F_DESCENDANT))
                cand[nc++] = (struct top_row){&t->list[i], s != NULL ? s->pct : -1.0, 0};
        }
        qsort_r(cand, nc, sizeof(*cand), row_cmp, &t->sort);
        for (size_t i = 0; i < nc; i++)
            recs[i] = cand[i].p;
        t->nrows = cli_tree_build(recs, nc, t->tree, name_matches, t, tree);
        for (size_t i = 0; i < t->nrows; i++) {
            t->rows[i] = cand[tree[i].idx];
            t->rows[i].depth = tree[i].depth;
        }
    }
    free(cand);
    free(recs);
    free(tree);
}

/* ---- drawing ---- */

enum { PAIR_GREEN = 1, PAIR_RED, PAIR_YELLOW, PAIR_TITLE };

static int state_pair(uint16_t s)
{
    switch (s) {
    case PROCBUS_STATE_RUNNING:
    case PROCBUS_STATE_READY:
        return PAIR_GREEN;
    case PROCBUS_STATE_FATAL:
    case PROCBUS_STATE_BACKOFF:
        return PAIR_RED;
    case PROCBUS_STATE_STARTING:
    case PROCBUS_STATE_STOPPING:
        return PAIR_YELLOW;
    default:
        return 0;
    }
}

static void put_line(int y, const char *s)
{
    move(y, 0);
    clrtoeol();
    mvaddnstr(y, 0, s, COLS > 0 ? COLS : 0);
}

static void draw(struct top *t)
{
    const struct procbus_info inf = t->inf;
    char line[1024], liv[96], up[32], cpu[32], pct[16], rss[16], pid[16];
    int l = t->live, namew = 12, y;
    size_t running = 0;
    uint64_t now = pb_now_ns(CLOCK_REALTIME);

    if (t->broken)
        snprintf(liv, sizeof(liv), "segment truncated: reopening (last state)");
    else if (l == PROCBUS_ALIVE)
        snprintf(liv, sizeof(liv), "alive");
    else if (l == PROCBUS_STALE)
        snprintf(liv, sizeof(liv), "STALE (no heartbeat for over %.1f s)",
                 (double)t->stale_ns / (double)PB_NS_PER_SEC);
    else if (l == PROCBUS_SHUTDOWN)
        snprintf(liv, sizeof(liv), "procbusd has shut down (last state)");
    else
        snprintf(liv, sizeof(liv), "gone (segment replaced: restart top)");
    for (size_t i = 0; i < t->n; i++)
        if (!(t->list[i].flags & PROCBUS_F_DESCENDANT) && cli_live(&t->list[i]))
            running++;
    for (size_t i = 0; i < t->nrows; i++) {
        char lab[CLI_LABEL_MAX];
        int w = (int)strlen(cli_label(lab, sizeof(lab), t->rows[i].p)) + 2 * t->rows[i].depth;
        if (w > namew)
            namew = w;
    }
    if (namew > 32)
        namew = 32;

    erase();
    snprintf(line, sizeof(line), "procbus top - %s  procbusd: %s  pid %d  epoch %llu  gen %llu",
             t->title, liv, inf.publisher_pid, (unsigned long long)inf.epoch,
             (unsigned long long)inf.generation);
    if (t->colour && l != PROCBUS_ALIVE)
        attron(COLOR_PAIR(l == PROCBUS_STALE ? PAIR_YELLOW : PAIR_RED) | A_BOLD);
    put_line(0, line);
    if (t->colour && l != PROCBUS_ALIVE)
        attroff(COLOR_PAIR(l == PROCBUS_STALE ? PAIR_YELLOW : PAIR_RED) | A_BOLD);
    snprintf(line, sizeof(line),
             "%zu programs, %zu running  lost: records %llu  events %llu  tracer %llu  "
             "log bytes %llu  sort: %s%s%s%s",
             t->nrows, running, (unsigned long long)inf.records_dropped,
             (unsigned long long)inf.events_dropped, (unsigned long long)inf.tracer_drops,
             (unsigned long long)inf.log_bytes_lost, sort_names[t->sort], t->tree ? "  tree" : "",
             t->filter[0] ? "  filter: " : "", t->filter);
    put_line(1, line);
    if (t->editing)
        snprintf(line, sizeof(line), "filter: /%s_", t->edit);
    else
        snprintf(line, sizeof(line),
                 "keys: c cpu  m mem  r restarts  a age  n name  t tree  "
                 "/ filter  q quit");
    put_line(2, line);

    snprintf(line, sizeof(line), "%-*s %7s %-9s %9s %8s %6s %10s %7s", namew, "NAME", "PID",
             "STATE", "UPTIME", "RESTARTS", "CPU%", "CPU", "RSS");
    if (t->colour)
        attron(COLOR_PAIR(PAIR_TITLE));
    attron(A_REVERSE);
    put_line(3, line);
    for (int x = (int)strlen(line); x < COLS; x++)
        mvaddch(3, x, ' ');
    attroff(A_REVERSE);
    if (t->colour)
        attroff(COLOR_PAIR(PAIR_TITLE));

    y = 4;
    for (size_t i = 0; i < t->nrows && y < LINES; i++, y++) {
        const struct procbus_proc *p = t->rows[i].p;
        char name[80], lab[PROCBUS_NAME_LEN + 1];
        int stx, pair;

        snprintf(name, sizeof(name), "%*s%s", 2 * t->rows[i].depth, "",
                 cli_label(lab, sizeof(lab), p));
        cli_fmt_pid(pid, sizeof(pid), p);
        cli_fmt_uptime(up, sizeof(up), p, now);
        cli_fmt_cpu(cpu, sizeof(cpu), p->cpu_ns);
        if (t->rows[i].pct >= 0)
            snprintf(pct, sizeof(pct), "%.1f", t->rows[i].pct);
        else
            snprintf(pct, sizeof(pct), "-");
        cli_fmt_bytes(rss, sizeof(rss), p->rss_bytes);
        snprintf(line, sizeof(line), "%-*.*s %7s ", namew, namew, name, pid);
        stx = (int)strlen(line);
        snprintf(line + stx, sizeof(line) - (size_t)stx, "%-9s %9s %8u %6s %10s %7s",
                 procbus_state_name(p->state), up, p->restarts, pct, cpu, rss);
        put_line(y, line);
        pair = t->colour ? state_pair(p->state) : 0;
        if (pair != 0 && stx < COLS)
            mvchgat(y, stx, 9, A_NORMAL, (short)pair, NULL);
    }
    if (t->nrows == 0 && y < LINES)
        put_line(y, t->filter[0] ? "(no program matches the filter)" : "(no programs)");
    refresh();
}

/* ---- keys ---- */

/* Handle one key; returns 1 to quit. */
static int on_key(struct top *t, int ch)
{
    if (t->editing) {
        size_t n = strlen(t->edit);
        if (ch == 27) { /* Esc: clear the filter */
            t->editing = 0;
            t->edit[0] = t->filter[0] = '\0';
        } else if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
            t->editing = 0;
            memcpy(t->filter, t->edit, sizeof(t->filter));
        } else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
            if (n > 0)
                t->edit[n - 1] = '\0';
        } else if (ch >= 0x20 && ch < 0x7f && n + 1 < sizeof(t->edit)) {
            t->edit[n] = (char)ch;
            t->edit[n + 1] = '\0';
        }
        return 0;
    }
    switch (ch) {
    case 'q':
    case 'Q':
        return 1;
    case 'c':
        t->sort = T_CPU;
        break;
    case 'm':
        t->sort = T_MEM;
        break;
    case 'r':
        t->sort = T_RESTARTS;
        break;
    case 'a':
        t->sort = T_AGE;
        break;
    case 'n':
        t->sort = T_NAME;
        break;
    case 't':
        t->tree = !t->tree;
        break;
    case '/':
        t->editing = 1;
        memcpy(t->edit, t->filter, sizeof(t->edit));
        break;
    case 27:
        t->filter[0] = '\0';
        break;
    default:
        break;
    }
    return 0;
}

/* One snapshot (kept when it cannot be read) and the header facts; guarded by the caller. */
static int reread(struct procbus_reader *r, void *arg)
{
    struct top *t = arg;

    snapshot(t); /* on failure the last good snapshot stays on screen */
    t->stale_ns = procbus_stale_after_ns(r);
    t->live = procbus_liveness(r, t->stale_ns);
    memset(&t->inf, 0, sizeof(t->inf));
    procbus_info(r, &t->inf);
    return 0;
}

/*
 * Re-read the table (guarded: a segment that shrank under top is dropped and reopened on the
 * next calls, the last snapshot staying on screen meanwhile) and redraw.
 */
static void refresh_view(struct top *t, struct waiter *w)
{
    if (t->broken && procbus_open(&t->r, t->segment) == 0) {
        t->broken = 0;
        if (waiter_start(t, w) < 0)
            t->broken = 1; /* retried on the next tick */
    }
    if (!t->broken && cli_guarded(&t->r, reread, t) == -EFAULT) {
        t->broken = 1;
        waiter_stop(w);
        procbus_close(&t->r);
    }
    update_cpu(t);
    build_rows(t);
    draw(t);
}

int cli_cmd_top(const struct cli_opts *o, int argc, char **argv)
{
    static const struct option lo[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    struct top t;
    struct waiter w;
    struct sigaction sa;
    int opt, pfd[2], quit = 0;
    SCREEN *scr;

    optind = 0;
    while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (opt == 'h') {
            top_usage(stdout);
            return CLI_EX_OK;
        }
        top_usage(stderr);
        return CLI_EX_USAGE;
    }
    if (optind < argc) {
        top_usage(stderr);
        return CLI_EX_USAGE;
    }
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "procbus: top needs a terminal (use ps or watch otherwise)\n");
        return CLI_EX_USAGE;
    }
    memset(&t, 0, sizeof(t));
    memset(&w, 0, sizeof(w));
    t.sort = T_NAME;
    t.segment = o->segment;
    t.title = cli_segment_name(o->segment);
    if (cli_open_segment(o->segment, &t.r) < 0)
        return CLI_EX_NOSEG;
    if (snapshot(&t) < 0) {
        fprintf(stderr, "procbus: cannot read the process table\n");
        procbus_close(&t.r);
        return CLI_EX_FAIL;
    }
    if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0) {
        perror("procbus: pipe");
        procbus_close(&t.r);
        return CLI_EX_FAIL;
    }

    scr = newterm(NULL, stdout, stdin);
    if (scr == NULL) {
        fprintf(stderr, "procbus: cannot set up the terminal (TERM=%s)\n",
                getenv("TERM") ? getenv("TERM") : "");
        close(pfd[0]);
        close(pfd[1]);
        procbus_close(&t.r);
        return CLI_EX_FAIL;
    }
    set_escdelay(25);
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    curs_set(0);
    t.colour = has_colors() && getenv("NO_COLOR") == NULL;
    if (t.colour) {
        start_color();
        use_default_colors();
        init_pair(PAIR_GREEN, COLOR_GREEN, -1);
        init_pair(PAIR_RED, COLOR_RED, -1);
        init_pair(PAIR_YELLOW, COLOR_YELLOW, -1);
        init_pair(PAIR_TITLE, COLOR_BLACK, COLOR_CYAN);
    }

    /* The waiter thread: SIGUSR1 (no SA_RESTART) interrupts its futex wait when it must stop. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_wake;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    w.fd = pfd[1];
    if (waiter_start(&t, &w) < 0) {
        endwin();
        delscreen(scr);
        fprintf(stderr, "procbus: cannot start the waiter thread\n");
        close(pfd[0]);
        close(pfd[1]);
        procbus_close(&t.r);
        return CLI_EX_FAIL;
    }

    refresh_view(&t, &w);
    while (!quit) {
        struct pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {pfd[0], POLLIN, 0}};
        int redraw = 0, ch, n;

        /* while the segment is being reopened, a tick retries it */
        n = poll(fds, 2, t.broken ? TOP_TICK_MS / 2 : -1);
        if (n < 0 && errno != EINTR)
            break;
        if (fds[1].revents & POLLIN) {
            char buf[64];
            ssize_t got;
            while ((got = read(pfd[0], buf, sizeof(buf))) > 0)
                if (memchr(buf, WAKE_TRUNCATED, (size_t)got) != NULL && !t.broken) {
                    waiter_stop(&w); /* it has ended: joined here */
                    procbus_close(&t.r);
                    t.broken = 1;
                }
            refresh_view(&t, &w);
        } else if (n == 0 && t.broken) {
            refresh_view(&t, &w);
        }
        /* keys, and KEY_RESIZE after SIGWINCH interrupted the poll */
        while (!quit && (ch = getch()) != ERR) {
            if (ch == KEY_RESIZE)
                redraw = 1;
            else {
                quit = on_key(&t, ch);
                redraw = 1;
            }
        }
        if (fds[0].revents & (POLLHUP | POLLERR))
            quit = 1;
        if (redraw && !quit) {
            build_rows(&t);
            draw(&t);
        }
    }

    waiter_stop(&w);
    endwin();
    delscreen(scr);
    close(pfd[0]);
    close(pfd[1]);
    procbus_close(&t.r);
    free(t.list);
    free(t.samples);
    free(t.rows);
    return CLI_EX_OK;
}
