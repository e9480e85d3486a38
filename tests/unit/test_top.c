/* test_top.c - procbus top in a real terminal (a detached tmux session) against a live procbusd. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "procbus.h"
#include "daemon_harness.h"
#include "support.h"

/* Generous: nothing here asserts on timing, only on what eventually shows up. */
#define SCREEN_TIMEOUT_MS 30000

static char tmux_socket[64]; /* tmux -L NAME: a private server per test */

static int tmux_installed(void)
{
    return system("command -v tmux >/dev/null 2>&1") == 0;
}

/* Run `tmux -L SOCK ARGS` (quiet); its exit status, -1 if it did not exit. */
static int tmux(const char *args)
{
    char cmd[1200];
    int st;

    snprintf(cmd, sizeof(cmd), "tmux -L %s %s >/dev/null 2>&1", tmux_socket, args);
    st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The visible screen of the session (caller frees); NULL if capture failed. */
static char *capture(void)
{
    char cmd[256], *buf = NULL;
    size_t len = 0, n;
    char chunk[4096];
    FILE *f;

    snprintf(cmd, sizeof(cmd), "tmux -L %s capture-pane -p -t top 2>/dev/null", tmux_socket);
    f = popen(cmd, "r");
    if (f == NULL)
        return NULL;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        char *grown = realloc(buf, len + n + 1);
        if (grown == NULL)
            break;
        buf = grown;
        memcpy(buf + len, chunk, n);
        len += n;
    }
    if (pclose(f) != 0) {
        free(buf);
        return NULL;
    }
    if (buf == NULL)
        buf = calloc(1, 1);
    else
        buf[len] = '\0';
    return buf;
}

/* Offset of `s` on the screen, or -1. */
static long pos_of(const char *screen, const char *s)
{
    const char *at = strstr(screen, s);
    return at ? at - screen : -1;
}

/*
 * Poll the screen until every string of `want` is there, every one of `absent` is not, and
 * the strings of `order` (if any) appear top to bottom in that order. 0, or -1 after the
 * timeout (the last screen is printed).
 */
static int wait_screen(const char *const *want, const char *const *absent, const char *const *order)
{
    char *scr = NULL;

    for (int waited = 0; waited < SCREEN_TIMEOUT_MS; waited += 100) {
        int ok = 1;

        free(scr);
        scr = capture();
        if (scr == NULL) {
            sleep_ms(100);
            continue;
        }
        for (int i = 0; ok && want && want[i]; i++)
            ok = strstr(scr, want[i]) != NULL;
        for (int i = 0; ok && absent && absent[i]; i++)
            ok = strstr(scr, absent[i]) == NULL;
        for (int i = 0; ok && order && order[i] && order[i + 1]; i++) {
            long a = pos_of(scr, order[i]), b = pos_of(scr, order[i + 1]);
            ok = a >= 0 && b >= 0 && a < b;
        }
        if (ok) {
            free(scr);
            return 0;
        }
        sleep_ms(100);
    }
    fprintf(stderr, "screen did not match; last capture:\n%s\n", scr ? scr : "(none)");
    free(scr);
    return -1;
}

/* Wait until the session has ended (top quit); 0 or -1. */
static int wait_session_gone(void)
{
    for (int waited = 0; waited < SCREEN_TIMEOUT_MS; waited += 100) {
        if (tmux("has-session -t top") != 0)
            return 0;
        sleep_ms(100);
    }
    return -1;
}

/* Poll the reader until `pred` holds for the record `name`; asserts on timeout. */
static void wait_record(struct daemon_h *h, const char *name,
                        int (*pred)(const struct procbus_proc *p))
{
    struct procbus_proc p;

    for (int waited = 0; waited < SCREEN_TIMEOUT_MS; waited += 50) {
        if (procbus_get_name(&h->r, name, &p) == 0 && pred(&p))
            return;
        sleep_ms(50);
    }
    fail_msg("record %s never reached the expected condition", name);
}

static int big_rss(const struct procbus_proc *p)
{
    return p->state == PROCBUS_STATE_RUNNING && p->rss_bytes >= (16ull << 20);
}

static int restarted(const struct procbus_proc *p)
{
    return p->restarts >= 2;
}

static int running(const struct procbus_proc *p)
{
    return p->state == PROCBUS_STATE_RUNNING;
}

static int tmux_teardown(void **state)
{
    if (tmux_socket[0] != '\0')
        tmux("kill-server");
    tmux_socket[0] = '\0';
    return pbt_teardown(state);
}

static void test_top_help(void **state)
{
    char exe[256], cmd[512];
    int st;

    (void)state;
    snprintf(cmd, sizeof(cmd), "%s top --help 2>&1 | grep -q 'usage: procbus top'",
             pbt_bin("procbus", exe, sizeof(exe)));
    st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    snprintf(cmd, sizeof(cmd), "%s --help | grep -q '^  top '",
             pbt_bin("procbus", exe, sizeof(exe)));
    st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* not a terminal: a usage error rather than a garbled screen */
    snprintf(cmd, sizeof(cmd), "%s -s no-such-segment-top top </dev/null >/dev/null 2>&1",
             pbt_bin("procbus", exe, sizeof(exe)));
    st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
}

static void test_top_live(void **state)
{
    struct daemon_h h;
    char exe[256], cmd[1024];

    (void)state;
    if (!tmux_installed()) {
        fprintf(stderr, "tmux is not installed (apt-get install tmux): skipping procbus top\n");
        skip();
    }
    snprintf(tmux_socket, sizeof(tmux_socket), "pbtop-%d", (int)getpid());
    /* aaa_idle: tiny; mmm_big: holds ~32 MB; zzz_flap: exits and is restarted over and over */
    pbt_start_daemon(&h, "/tmp/pbtop-test",
                     "[program:aaa_idle]\ncommand = sleep 1000\nstartsecs = 0\n"
                     "[program:mmm_big]\ncommand = sh -c 'x=$(head -c 33554432 /dev/zero | "
                     "tr -c a a); sleep 1000'\nstartsecs = 0\n"
                     "[program:zzz_flap]\ncommand = sh -c 'sleep 0.2; exit 0'\nstartsecs = 0\n"
                     "autorestart = true\n");
    wait_record(&h, "aaa_idle", running);
    wait_record(&h, "mmm_big", big_rss);
    wait_record(&h, "zzz_flap", restarted);

    snprintf(cmd, sizeof(cmd),
             "-f /dev/null new-session -d -s top -x 120 -y 30 "
             "'TERM=xterm-256color %s -s %s top 2>%s/top.err'",
             pbt_bin("procbus", exe, sizeof(exe)), h.seg, h.dir);
    assert_int_equal(tmux(cmd), 0);

    /* first screen: names, states, header; sorted by name */
    {
        const char *want[] = {"procbusd: alive", "RUNNING", "NAME", "RESTARTS", "CPU%", NULL};
        const char *order[] = {"aaa_idle", "mmm_big", "zzz_flap", NULL};
        assert_int_equal(wait_screen(want, NULL, order), 0);
    }
    /* m: by memory, the 32 MB one first */
    assert_int_equal(tmux("send-keys -t top m"), 0);
    {
        const char *want[] = {"sort: memory", NULL};
        const char *order[] = {"mmm_big", "aaa_idle", NULL};
        assert_int_equal(wait_screen(want, NULL, order), 0);
    }
    /* r: by restarts, the flapping one first */
    assert_int_equal(tmux("send-keys -t top r"), 0);
    {
        const char *want[] = {"sort: restarts", NULL};
        const char *order1[] = {"zzz_flap", "aaa_idle", NULL};
        const char *order2[] = {"zzz_flap", "mmm_big", NULL};
        assert_int_equal(wait_screen(want, NULL, order1), 0);
        assert_int_equal(wait_screen(want, NULL, order2), 0);
    }
    /* n: back to names */
    assert_int_equal(tmux("send-keys -t top n"), 0);
    {
        const char *want[] = {"sort: name", NULL};
        const char *order[] = {"aaa_idle", "mmm_big", "zzz_flap", NULL};
        assert_int_equal(wait_screen(want, NULL, order), 0);
    }
    /* / mmm Enter: only that program */
    assert_int_equal(tmux("send-keys -t top / m m m Enter"), 0);
    {
        const char *want[] = {"mmm_big", "filter: mmm", NULL};
        const char *absent[] = {"aaa_idle", "zzz_flap", NULL};
        assert_int_equal(wait_screen(want, absent, NULL), 0);
    }
    /* / Esc clears the filter */
    assert_int_equal(tmux("send-keys -t top / Escape"), 0);
    {
        const char *want[] = {"aaa_idle", "mmm_big", "zzz_flap", NULL};
        const char *absent[] = {"filter:", NULL};
        assert_int_equal(wait_screen(want, absent, NULL), 0);
    }
    /* t: tree mode (no descendants today: the same programs) */
    assert_int_equal(tmux("send-keys -t top t"), 0);
    {
        const char *want[] = {"tree", "aaa_idle", "mmm_big", "zzz_flap", NULL};
        assert_int_equal(wait_screen(want, NULL, NULL), 0);
    }
    /* a resize redraws at the new size */
    assert_int_equal(tmux("resize-window -t top -x 100 -y 20"), 0);
    {
        const char *want[] = {"aaa_idle", "procbusd: alive", NULL};
        assert_int_equal(wait_screen(want, NULL, NULL), 0);
    }
    /* the publisher shuts down: the last state stays, the header says so */
    assert_int_equal(pbt_term_daemon(&h), 0);
    {
        const char *want[] = {"procbusd has shut down", "aaa_idle", "mmm_big", NULL};
        assert_int_equal(wait_screen(want, NULL, NULL), 0);
    }
    /* q quits: the session ends with it */
    assert_int_equal(tmux("send-keys -t top q"), 0);
    assert_int_equal(wait_session_gone(), 0);
    {
        char path[160];
        FILE *f;
        snprintf(path, sizeof(path), "%s/top.err", h.dir);
        f = fopen(path, "r");
        assert_non_null(f);
        if (fgetc(f) != EOF) { /* nothing on stderr */
            char line[256];
            rewind(f);
            while (fgets(line, sizeof(line), f) != NULL)
                fputs(line, stderr);
            fclose(f);
            fail_msg("procbus top wrote to stderr");
        }
        fclose(f);
    }
    tmux("kill-server");
    tmux_socket[0] = '\0';
    pbt_remove_daemon(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_top_help, tmux_teardown),
        cmocka_unit_test_teardown(test_top_live, tmux_teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
