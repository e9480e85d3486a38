/* test_parity.c - the parity suite: each scenario of tests/parity/parity.py runs under real
 * supervisord 4.2.5 (Debian's supervisor package) and under procbusd, which must do the same
 * (transitions, files, outputs, exit codes), except the deliberate differences it lists. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_harness.h"

static char g_src[PATH_MAX], g_python[PATH_MAX], g_build[PATH_MAX];
static int g_ready; /* 1: supervisord, its Python and the source tree are here */

/* The interpreter supervisord runs with (its script's #! line): it has the supervisor module. */
static int sv_python(char *buf, size_t len)
{
    FILE *f = popen("command -v supervisord", "r");
    char path[PATH_MAX] = "", line[PATH_MAX];
    if (f == NULL)
        return 0;
    if (fgets(path, sizeof(path), f) == NULL)
        path[0] = '\0';
    pclose(f);
    path[strcspn(path, "\n")] = '\0';
    if (path[0] == '\0' || (f = fopen(path, "r")) == NULL)
        return 0;
    if (fgets(line, sizeof(line), f) == NULL || strncmp(line, "#!", 2) != 0) {
        fclose(f);
        return 0;
    }
    fclose(f);
    line[strcspn(line, "\n")] = '\0';
    snprintf(buf, len, "%s", line + 2);
    return 1;
}

/* The source tree (tests/parity/parity.py), from here or up. */
static int find_src(void)
{
    char dir[PATH_MAX], probe[PATH_MAX + 64];
    if (!getcwd(dir, sizeof(dir)))
        return 0;
    for (int depth = 0; depth < 8; depth++) {
        char *slash;
        snprintf(probe, sizeof(probe), "%s/tests/parity/parity.py", dir);
        if (access(probe, R_OK) == 0) {
            snprintf(g_src, sizeof(g_src), "%s", dir);
            return 1;
        }
        slash = strrchr(dir, '/');
        if (slash == NULL || slash == dir)
            return 0;
        *slash = '\0';
    }
    return 0;
}

static int setup(void **state)
{
    char bin[PATH_MAX], real[PATH_MAX];
    (void)state;
    pbt_bin("procbusd", bin, sizeof(bin));
    if (realpath(bin, real) == NULL)
        snprintf(real, sizeof(real), "%s", bin);
    snprintf(g_build, sizeof(g_build), "%s", dirname(real)); /* the binaries' folder */
    g_ready = find_src() && sv_python(g_python, sizeof(g_python)) && access(g_python, X_OK) == 0;
    return 0;
}

/* Run one scenario; its report is printed. */
static void scenario(const char *name)
{
    char cmd[PATH_MAX * 4];
    int st;

    if (!g_ready) {
        print_message("  skipped: no supervisord (Debian's supervisor package: scripts/deps.sh "
                      "peer) or no source tree\n");
        skip();
    }
    snprintf(cmd, sizeof(cmd), "%s %s/tests/parity/parity.py --build %s %s 2>&1", g_python, g_src,
             g_build, name);
    fflush(stdout);
    st = system(cmd);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77)
        skip();
    assert_int_equal(WEXITSTATUS(st), 0);
}

#define SCENARIO(n)                    \
    static void test_##n(void **state) \
    {                                  \
        (void)state;                   \
        scenario(#n);                  \
    }
SCENARIO(auto_logs)
SCENARIO(supervisord_section)
SCENARIO(group)
SCENARIO(numprocs_names)
SCENARIO(environment)
SCENARIO(rotation_paced)
SCENARIO(rotation_burst)
SCENARIO(exit_codes)
SCENARIO(clear)
SCENARIO(maintail)
SCENARIO(reread_add_remove)
SCENARIO(update)
SCENARIO(eventlistener_fatal)
SCENARIO(events_log_tick)
SCENARIO(capture_mode)
SCENARIO(fcgi)
SCENARIO(shell_quoting)
SCENARIO(transitions)
SCENARIO(stopasgroup_default)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_logs),
        cmocka_unit_test(test_supervisord_section),
        cmocka_unit_test(test_group),
        cmocka_unit_test(test_numprocs_names),
        cmocka_unit_test(test_environment),
        cmocka_unit_test(test_rotation_paced),
        cmocka_unit_test(test_rotation_burst),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_clear),
        cmocka_unit_test(test_maintail),
        cmocka_unit_test(test_reread_add_remove),
        cmocka_unit_test(test_update),
        cmocka_unit_test(test_eventlistener_fatal),
        cmocka_unit_test(test_events_log_tick),
        cmocka_unit_test(test_capture_mode),
        cmocka_unit_test(test_fcgi),
        cmocka_unit_test(test_shell_quoting),
        cmocka_unit_test(test_transitions),
        cmocka_unit_test(test_stopasgroup_default),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
