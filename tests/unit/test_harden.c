/* test_harden.c - what a program's user can make root do (issue 10, 1 2 5 6): log files, inherited
 * descriptors, users, environment; the unprivileged side acts as "nobody". */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "logfile.h"
#include "procbus.h"
#include "support.h"
#include "unpriv.h"

/* A folder for one test that nobody may enter (0755, root's); removed by rm_dir. */
static void make_dir(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/pbd-harden-XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chmod(dir, 0755), 0);
}

static void rm_dir(const char *dir)
{
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* dir/name, made as a folder of `pw` (0755). */
static void user_dir(const char *dir, const char *name, const struct passwd *pw, char *out,
                     size_t len)
{
    snprintf(out, len, "%s/%s", dir, name);
    assert_int_equal(mkdir(out, 0755), 0);
    assert_int_equal(chown(out, pw->pw_uid, pw->pw_gid), 0);
}

struct link_req {
    const char *target, *path;
};

/* (as the unprivileged user) make the symbolic link; 0 if done. */
static int make_link(void *arg)
{
    const struct link_req *r = arg;
    return symlink(r->target, r->path) == 0 ? 0 : 1;
}

static uid_t owner_of(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return st.st_uid;
}

/* Item 1, the library: what pbd_log_open refuses, and what it opens as the program's user. */
static void test_log_open_refusals(void **state)
{
    const struct passwd *nb = pbt_nobody();
    char dir[64], p[256], q[256], nbdir[160];
    struct pbd_log_as as;
    struct pbd_log *l = NULL;
    (void)state;

    if (nb == NULL)
        skip(); /* needs root (chown) and a "nobody" user */
    as = (struct pbd_log_as){nb->pw_uid, nb->pw_gid};
    make_dir(dir, sizeof(dir));
    /* the last component a symbolic link: not followed */
    snprintf(p, sizeof(p), "%s/link.log", dir);
    snprintf(q, sizeof(q), "%s/target", dir);
    assert_int_equal(symlink(q, p), 0);
    assert_int_equal(pbd_log_open(&l, p, 0, 0), -ELOOP);
    assert_int_equal(access(q, F_OK), -1);
    /* a hard link to a file elsewhere */
    snprintf(p, sizeof(p), "%s/hard.log", dir);
    assert_int_equal(close(open(q, O_CREAT | O_WRONLY, 0600)), 0);
    assert_int_equal(link(q, p), 0);
    assert_int_equal(pbd_log_open(&l, p, 0, 0), -EPERM);
    /* a folder anybody may write to (not sticky) */
    snprintf(p, sizeof(p), "%s/open", dir);
    assert_int_equal(mkdir(p, 0777), 0);
    assert_int_equal(chmod(p, 0777), 0);
    snprintf(p, sizeof(p), "%s/open/x.log", dir);
    assert_int_equal(pbd_log_open(&l, p, 0, 0), -EPERM);
    /* the folder of another user: refused for root's programs, that user's own for its programs */
    user_dir(dir, "nb", nb, nbdir, sizeof(nbdir));
    snprintf(p, sizeof(p), "%s/x.log", nbdir);
    assert_int_equal(pbd_log_open(&l, p, 0, 0), -EPERM);
    assert_int_equal(pbd_log_open_as(&l, p, 0, 0, &as), 0);
    assert_int_equal(pbd_log_write(l, "hi\n", 3), 0);
    pbd_log_close(l);
    assert_int_equal(owner_of(p), nb->pw_uid); /* created as that user */
    /* a folder reached through another user's symbolic link */
    snprintf(p, sizeof(p), "%s/via", nbdir);
    {
        struct link_req r = {dir, p};
        assert_int_equal(pbt_as_user(nb, make_link, &r), 0);
    }
    snprintf(p, sizeof(p), "%s/via/y.log", nbdir);
    assert_int_equal(pbd_log_open(&l, p, 0, 0), -EPERM);
    /* another user's file in a sticky folder (/tmp): refused; root's own there is fine */
    snprintf(p, sizeof(p), "/tmp/pbd-harden-%d.log", (int)getpid());
    assert_int_equal(close(open(p, O_CREAT | O_WRONLY | O_EXCL, 0644)), 0);
    assert_int_equal(chown(p, nb->pw_uid, nb->pw_gid), 0);
    assert_int_equal(pbd_log_open(&l, p, 0, 0), -EPERM);
    assert_int_equal(chown(p, 0, 0), 0);
    assert_int_equal(pbd_log_open(&l, p, 0, 0), 0);
    pbd_log_close(l);
    unlink(p);
    /* procbusd's own descriptors and devices are opened as given (/dev/stdout is a link) */
    assert_int_equal(pbd_log_open(&l, "/dev/null", 0, 0), 0);
    pbd_log_close(l);
    assert_int_equal(pbd_log_open(&l, "/dev/stderr", 0, 0), 0);
    pbd_log_close(l);
    rm_dir(dir);
}

/* Item 1, the daemon: a user=nobody program whose log folder nobody owns swaps its log for a
 * link; a root program logs into nobody's folder; neither makes root write elsewhere. */
static void test_log_symlink_swap_as_nobody(void **state)
{
    const struct passwd *nb = pbt_nobody();
    char dir[64], nbdir[160], body[2048], p[200], q[200], log[200];
    struct daemon_h h;
    (void)state;

    if (nb == NULL)
        skip(); /* needs root (user=, chown) and a "nobody" user */
    make_dir(dir, sizeof(dir));
    user_dir(dir, "nb", nb, nbdir, sizeof(nbdir));
    /* nobody points the logs at files in a folder only root may write */
    snprintf(p, sizeof(p), "%s/link.log", nbdir);
    snprintf(q, sizeof(q), "%s/victim1", dir);
    {
        struct link_req r = {q, p};
        assert_int_equal(pbt_as_user(nb, make_link, &r), 0);
    }
    snprintf(p, sizeof(p), "%s/rootprog.log", nbdir);
    snprintf(q, sizeof(q), "%s/victim2", dir);
    {
        struct link_req r = {q, p};
        assert_int_equal(pbt_as_user(nb, make_link, &r), 0);
    }
    snprintf(body, sizeof(body),
             "[program:asnobody]\ncommand = sh -c 'echo SECRET-OUTPUT; exec sleep 1000'\n"
             "user = nobody\nstartsecs = 0\nstdout_logfile = %s/link.log\n"
             "[program:asroot]\ncommand = sh -c 'echo ROOT-OUTPUT; exec sleep 1000'\n"
             "startsecs = 0\nstdout_logfile = %s/rootprog.log\n"
             "[program:own]\ncommand = sh -c 'echo OWN-OUTPUT; exec sleep 1000'\n"
             "user = nobody\nstartsecs = 0\nstdout_logfile = %s/own.log\n"
             "[program:plain]\ncommand = sh -c 'echo PLAIN-OUTPUT; exec sleep 1000'\n"
             "user = nobody\nstartsecs = 0\nstdout_logfile = %s/plain.log\n",
             nbdir, nbdir, nbdir, dir);
    pbt_start_daemon(&h, "/tmp/pbd-test", body);
    assert_int_equal(pbt_wait_state(&h, "asnobody", PROCBUS_STATE_RUNNING, 20000, NULL), 0);
    assert_int_equal(pbt_wait_state(&h, "asroot", PROCBUS_STATE_RUNNING, 20000, NULL), 0);
    snprintf(p, sizeof(p), "%s/own.log", nbdir);
    assert_true(pbt_file_has(p, "OWN-OUTPUT", 20000));
    snprintf(q, sizeof(q), "%s/plain.log", dir);
    assert_true(pbt_file_has(q, "PLAIN-OUTPUT", 20000));
    /* the links were not followed: nothing was created where only root may write */
    snprintf(q, sizeof(q), "%s/victim1", dir);
    assert_int_equal(access(q, F_OK), -1);
    snprintf(q, sizeof(q), "%s/victim2", dir);
    assert_int_equal(access(q, F_OK), -1);
    /* in nobody's folder the log is nobody's (created as nobody); in root's, root's */
    assert_int_equal(owner_of(p), nb->pw_uid);
    snprintf(q, sizeof(q), "%s/plain.log", dir);
    assert_int_equal(owner_of(q), 0);
    snprintf(log, sizeof(log), "%s/procbusd.log", h.dir);
    assert_true(pbt_file_has(log, "symbolic link", 5000));
    assert_true(pbt_file_has(log, "rootprog.log", 5000));
    pbt_stop_daemon(&h);
    rm_dir(dir);
}

/* The open descriptors of process pid as a sorted list "0 1 2 ..." in buf. */
static const char *fd_list(pid_t pid, char *buf, size_t len)
{
    char path[64];
    int fds[64], n = 0;
    struct dirent *e;
    DIR *dir;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    dir = opendir(path);
    assert_non_null(dir);
    while ((e = readdir(dir)) != NULL && n < 64)
        if (e->d_name[0] != '.')
            fds[n++] = atoi(e->d_name);
    closedir(dir);
    for (int i = 1; i < n; i++) /* insertion sort */
        for (int j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
            int t = fds[j];
            fds[j] = fds[j - 1];
            fds[j - 1] = t;
        }
    buf[0] = '\0';
    for (int i = 0; i < n; i++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%d", i ? " " : "", fds[i]);
    return buf;
}

/* Item 2: procbusd started with a secret on fd 7 (and a pipe on 9): its programs, a user=nobody
 * one included, get 0-2 and their ready_fd only. */
static void test_stray_fds_not_inherited(void **state)
{
    const struct passwd *nb = pbt_nobody();
    char dir[64], body[1024], secret[160], leak[160], fds[256];
    struct procbus_proc p;
    struct daemon_h h;
    int fd, pipefd[2];
    (void)state;

    if (nb == NULL)
        skip(); /* needs root (user=) and a "nobody" user */
    make_dir(dir, sizeof(dir));
    snprintf(secret, sizeof(secret), "%s/secret", dir);
    fd = open(secret, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "TOPSECRET\n", 10), 10);
    close(fd);
    fd = open(secret, O_RDONLY); /* not close-on-exec: procbusd inherits it as fd 7 */
    assert_int_equal(dup2(fd, 7), 7);
    close(fd);
    assert_int_equal(pipe(pipefd), 0);
    assert_int_equal(dup2(pipefd[0], 9), 9);
    snprintf(leak, sizeof(leak), "%s/leak.log", dir);
    snprintf(body, sizeof(body),
             "[program:reader]\ncommand = sh -c 'cat <&7; echo done; exec sleep 1000'\n"
             "user = nobody\nstartsecs = 0\nstdout_logfile = %s\nredirect_stderr = true\n"
             "[program:sleeper]\ncommand = sleep 1000\nuser = nobody\nstartsecs = 0\n"
             "[program:ready]\ncommand = sleep 1000\nready_fd = 5\nstartsecs = 0\n",
             leak);
    pbt_start_daemon(&h, "/tmp/pbd-test", body);
    close(7);
    close(9);
    close(pipefd[0]);
    close(pipefd[1]);
    assert_true(pbt_file_has(leak, "done", 20000));
    assert_false(pbt_file_has(leak, "TOPSECRET", 0));
    assert_int_equal(pbt_wait_state(&h, "sleeper", PROCBUS_STATE_RUNNING, 20000, &p), 0);
    assert_string_equal(fd_list(p.pid, fds, sizeof(fds)), "0 1 2");
    assert_int_equal(pbt_wait_state(&h, "ready", PROCBUS_STATE_RUNNING, 20000, &p), 0);
    assert_string_equal(fd_list(p.pid, fds, sizeof(fds)), "0 1 2 5");
    pbt_stop_daemon(&h);
    rm_dir(dir);
}

/* `procbusd --check -c conf` as the unprivileged user (arg: "exe\0conf\0err"). */
static int check_as_user(void *arg)
{
    const char *exe = arg, *conf = exe + strlen(exe) + 1, *err = conf + strlen(conf) + 1;
    int fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    execl(exe, exe, "--check", "-c", conf, (char *)NULL);
    return 127;
}

/* Item 5: user = 65534 (a uid) runs; a non-root procbusd refuses user= of another account when
 * loading, and accepts its own. */
static void test_user_by_uid_and_non_root_refusal(void **state)
{
    const struct passwd *nb = pbt_nobody();
    char dir[64], body[256], arg[600], exe[256], conf[160], err[160], line[256];
    struct procbus_proc p;
    struct daemon_h h;
    unsigned uid = 1;
    size_t off;
    FILE *f;
    int st;
    (void)state;

    if (nb == NULL)
        skip(); /* needs root and a "nobody" user */
    snprintf(body, sizeof(body),
             "[program:byuid]\ncommand = sleep 1000\nuser = %u\nstartsecs = 0\n",
             (unsigned)nb->pw_uid);
    pbt_start_daemon(&h, "/tmp/pbd-test", body);
    assert_int_equal(pbt_wait_state(&h, "byuid", PROCBUS_STATE_RUNNING, 20000, &p), 0);
    snprintf(line, sizeof(line), "/proc/%d/status", (int)p.pid);
    f = fopen(line, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL && sscanf(line, "Uid: %u", &uid) != 1)
        ;
    fclose(f);
    assert_int_equal(uid, nb->pw_uid);
    pbt_stop_daemon(&h);

    make_dir(dir, sizeof(dir));
    pbt_bin("procbusd", exe, sizeof(exe));
    snprintf(conf, sizeof(conf), "%s/root.conf", dir);
    snprintf(err, sizeof(err), "%s/err", dir);
    assert_int_equal(chown(dir, nb->pw_uid, nb->pw_gid), 0); /* err is written as nobody */
    f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "[program:x]\ncommand = sleep 1\nuser = root\n");
    fclose(f);
    off = (size_t)snprintf(arg, sizeof(arg), "%s", exe) + 1;
    off += (size_t)snprintf(arg + off, sizeof(arg) - off, "%s", conf) + 1;
    snprintf(arg + off, sizeof(arg) - off, "%s", err);
    st = pbt_as_user(nb, check_as_user, arg);
    if (st == 127) {
        rm_dir(dir);
        print_message("nobody cannot run %s: skipped\n", exe);
        skip();
    }
    assert_int_equal(st, 1);
    assert_true(pbt_file_has(err, "not root", 0));
    assert_true(pbt_file_has(err, "[program:x] user", 0));
    f = fopen(conf, "w"); /* its own user is fine */
    assert_non_null(f);
    fprintf(f, "[program:x]\ncommand = sleep 1\nuser = %s\n", nb->pw_name);
    fclose(f);
    assert_int_equal(pbt_as_user(nb, check_as_user, arg), 0);
    rm_dir(dir);
}

/* "KEY=VALUE\n" in the file (a whole line). */
static int has_line(const char *path, const char *kv)
{
    char want[512], *s = pbt_slurp(path, NULL);
    int found;

    snprintf(want, sizeof(want), "\n%s\n", kv);
    found = s != NULL && (strstr(s, want) != NULL || strncmp(s, want + 1, strlen(want + 1)) == 0);
    free(s);
    return found;
}

/* Item 6: a user=nobody program gets nobody's HOME/USER/LOGNAME/SHELL; procbusd's environment
 * is passed on by default (documented) and not with clean_environment. */
static void test_user_environment(void **state)
{
    const struct passwd *nb = pbt_nobody();
    char dir[64], body[1024], e1[160], e2[160], kv[512];
    const char *home = getenv("HOME");
    char *saved_home = home ? strdup(home) : NULL;
    struct daemon_h h;
    (void)state;

    if (nb == NULL)
        skip(); /* needs root (user=) and a "nobody" user */
    make_dir(dir, sizeof(dir));
    snprintf(e1, sizeof(e1), "%s/env1.log", dir);
    snprintf(e2, sizeof(e2), "%s/env2.log", dir);
    snprintf(body, sizeof(body),
             "[program:inherit]\ncommand = sh -c 'env; echo END; exec sleep 1000'\n"
             "user = nobody\nstartsecs = 0\nstdout_logfile = %s\n"
             "[program:clean]\ncommand = sh -c 'env; echo END; exec sleep 1000'\n"
             "user = nobody\nstartsecs = 0\nstdout_logfile = %s\nclean_environment = true\n"
             "environment = FOO=\"bar baz\"\n",
             e1, e2);
    setenv("PBT_SECRET_TOKEN", "s3cret", 1);
    setenv("HOME", "/root", 1);
    pbt_start_daemon(&h, "/tmp/pbd-test", body);
    unsetenv("PBT_SECRET_TOKEN");
    if (saved_home != NULL)
        setenv("HOME", saved_home, 1);
    free(saved_home);
    assert_true(pbt_file_has(e1, "END", 20000));
    assert_true(pbt_file_has(e2, "END", 20000));
    snprintf(kv, sizeof(kv), "HOME=%s", nb->pw_dir);
    assert_true(has_line(e1, kv));
    assert_true(has_line(e2, kv));
    assert_true(has_line(e1, "USER=nobody"));
    assert_true(has_line(e1, "LOGNAME=nobody"));
    snprintf(kv, sizeof(kv), "SHELL=%s", nb->pw_shell);
    assert_true(has_line(e1, kv));
    assert_true(has_line(e1, "PBT_SECRET_TOKEN=s3cret")); /* the default: inherited */
    assert_false(has_line(e2, "PBT_SECRET_TOKEN=s3cret"));
    assert_true(has_line(e2, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
    assert_true(has_line(e2, "FOO=bar baz"));
    assert_true(has_line(e2, "USER=nobody"));
    assert_true(has_line(e2, "PROCBUS_PROCESS_NAME=clean"));
    pbt_stop_daemon(&h);
    rm_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_open_refusals),
        cmocka_unit_test_teardown(test_log_symlink_swap_as_nobody, pbt_teardown),
        cmocka_unit_test_teardown(test_stray_fds_not_inherited, pbt_teardown),
        cmocka_unit_test_teardown(test_user_by_uid_and_non_root_refusal, pbt_teardown),
        cmocka_unit_test_teardown(test_user_environment, pbt_teardown),
    };
    return cmocka_run_group_tests_name("harden", tests, NULL, NULL);
}
