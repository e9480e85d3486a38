/* test_names.c - the segment-name rule: one definition, and the reader and the publisher agree. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include "procbus.h"
#include "procbus_pub.h"

/*
 * procbus_segment_path (procbus.h) is the rule; procbus_open and
 * procbus_pub_open both call it. Each row gives a spec and $PROCBUS_SEGMENT,
 * what the rule answers, and what opening gives on both sides. Strings are
 * expanded before use: a leading "T/" is the test's temporary folder, and a
 * non-zero length pads the string with 'a' up to that many bytes.
 */
enum want {
    W_NONE,      /* an error: no path */
    W_DEFAULT,   /* /run/procbus/procbus (root) or /dev/shm/procbus */
    W_SHM_SPEC,  /* /run/procbus/<spec> (root) or /dev/shm/<spec> */
    W_PATH_SPEC, /* <spec> as it is */
    W_SHM_ENV,   /* the same for <$PROCBUS_SEGMENT> */
    W_PATH_ENV,  /* <$PROCBUS_SEGMENT> as it is */
};

struct name_case {
    const char *what;
    const char *spec; /* NULL: no spec */
    size_t spec_len;  /* 0, or pad spec with 'a' to this length */
    const char *env;  /* NULL: unset */
    size_t env_len;
    int rc;         /* procbus_segment_path */
    enum want want; /* its path */
    int open_rc;    /* procbus_pub_open and procbus_open, both */
};

static const struct name_case cases[] = {
    {"no spec, no variable", NULL, 0, NULL, 0, 0, W_DEFAULT, 0},
    {"empty spec, no variable", "", 0, NULL, 0, 0, W_DEFAULT, 0},
    {"an empty variable counts as unset", NULL, 0, "", 0, 0, W_DEFAULT, 0},
    {"empty spec, empty variable", "", 0, "", 0, 0, W_DEFAULT, 0},
    {"no spec: the variable", NULL, 0, "alpha", 0, 0, W_SHM_ENV, 0},
    {"empty spec: the variable (the reader used to say procbus)", "", 0, "alpha", 0, 0, W_SHM_ENV,
     0},
    {"a name wins over the variable", "beta", 0, "alpha", 0, 0, W_SHM_SPEC, 0},
    {"a name", "beta", 0, NULL, 0, 0, W_SHM_SPEC, 0},
    {"a path wins over the variable", "T/seg", 0, "alpha", 0, 0, W_PATH_SPEC, 0},
    {"a path in the variable", NULL, 0, "T/envseg", 0, 0, W_PATH_ENV, 0},
    {"a relative path", "./rel-seg", 0, NULL, 0, 0, W_PATH_SPEC, 0},
    {"a path with a dot folder", "T/./dotted", 0, NULL, 0, 0, W_PATH_SPEC, 0},
    {"three dots are a name", "...", 0, NULL, 0, 0, W_SHM_SPEC, 0},
    {"a hidden name", ".hidden", 0, NULL, 0, 0, W_SHM_SPEC, 0},
    {"the name .", ".", 0, NULL, 0, -EINVAL, W_NONE, -EINVAL},
    {"the name ..", "..", 0, NULL, 0, -EINVAL, W_NONE, -EINVAL},
    {"an explicit bad name is not replaced by the variable", "..", 0, "alpha", 0, -EINVAL, W_NONE,
     -EINVAL},
    {"the variable says .", NULL, 0, ".", 0, -EINVAL, W_NONE, -EINVAL},
    {"the variable says ..", "", 0, "..", 0, -EINVAL, W_NONE, -EINVAL},
    {"a NAME_MAX name", "", NAME_MAX, NULL, 0, 0, W_SHM_SPEC, 0},
    {"a name longer than NAME_MAX", "", NAME_MAX + 1, NULL, 0, -ENAMETOOLONG, W_NONE,
     -ENAMETOOLONG},
    {"a variable longer than NAME_MAX", NULL, 0, "", NAME_MAX + 1, -ENAMETOOLONG, W_NONE,
     -ENAMETOOLONG},
    /* the rule takes it; the kernel refuses the 4000-byte component, on both sides alike */
    {"a path of PROCBUS_PATH_MAX - 1 bytes", "/", PROCBUS_PATH_MAX - 1, NULL, 0, 0, W_PATH_SPEC,
     -ENAMETOOLONG},
    {"a path of PROCBUS_PATH_MAX bytes", "/", PROCBUS_PATH_MAX, NULL, 0, -ENAMETOOLONG, W_NONE,
     -ENAMETOOLONG},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static char g_tmp[64]; /* the temporary folder "T/" stands for */

/* Expand a table string (see above) into out[PROCBUS_PATH_MAX + 16]; NULL stays NULL. */
static const char *expand(const char *s, size_t len, char *out)
{
    size_t n;

    if (s == NULL)
        return NULL;
    if (strncmp(s, "T/", 2) == 0)
        snprintf(out, PROCBUS_PATH_MAX + 16, "%s/%s", g_tmp, s + 2);
    else
        snprintf(out, PROCBUS_PATH_MAX + 16, "%s", s);
    n = strlen(out);
    if (len > n) {
        memset(out + n, 'a', len - n);
        out[len] = '\0';
    }
    return out;
}

/* Where a name lives for this process: root's names in /run/procbus, anyone else's (when root
 * has no segment of that name: the table's names are fresh) in /dev/shm. */
static const char *names_dir(void)
{
    return geteuid() == 0 ? PROCBUS_RUN_DIR : PROCBUS_SHM_DIR;
}

/* The path a row's rule must give, into out. */
static void expected_path(enum want w, const char *spec, const char *env, char *out, size_t cap)
{
    switch (w) {
    case W_DEFAULT:
        snprintf(out, cap, "%s/%s", names_dir(), PROCBUS_DEFAULT_SEGMENT);
        break;
    case W_SHM_SPEC:
        snprintf(out, cap, "%s/%s", names_dir(), spec);
        break;
    case W_PATH_SPEC:
        snprintf(out, cap, "%s", spec);
        break;
    case W_SHM_ENV:
        snprintf(out, cap, "%s/%s", names_dir(), env);
        break;
    case W_PATH_ENV:
        snprintf(out, cap, "%s", env);
        break;
    default:
        snprintf(out, cap, "%s", "");
        break;
    }
}

static void set_env(const char *env)
{
    if (env == NULL)
        unsetenv(PROCBUS_SEGMENT_ENV);
    else
        setenv(PROCBUS_SEGMENT_ENV, env, 1);
}

/*
 * Run row `c` on the rule, then through procbus_pub_open and procbus_open
 * (files = 1: the rows that create a file too, else only the error rows).
 * Returns 0, or 1 with a message in msg[cap].
 */
static int run_case(const struct name_case *c, int files, char *msg, size_t cap)
{
    static char spec_buf[PROCBUS_PATH_MAX + 16], env_buf[PROCBUS_PATH_MAX + 16];
    static char want[PROCBUS_PATH_MAX + 16], got[PROCBUS_PATH_MAX];
    const char *spec = expand(c->spec, c->spec_len, spec_buf);
    const char *env = expand(c->env, c->env_len, env_buf);
    struct procbus_pub_opts o = {0};
    struct procbus_pub *p = NULL;
    struct procbus_reader r;
    int rc, rc_pub, rc_rd, bad = 0;
    struct stat st;

    set_env(env);
    expected_path(c->want, spec, env, want, sizeof(want));
    rc = procbus_segment_path(spec, got, sizeof(got));
    if (rc != c->rc || strcmp(got, want) != 0) {
        snprintf(msg, cap, "%s: procbus_segment_path gave %d \"%.60s\", expected %d \"%.60s\"",
                 c->what, rc, got, c->rc, want);
        return 1;
    }
    if (!files && c->open_rc == 0)
        return 0;
    o.segment = spec;
    o.capacity = 4;
    rc_pub = procbus_pub_open(&p, &o);
    rc_rd = procbus_open(&r, spec);
    if (rc_pub != c->open_rc || rc_rd != c->open_rc) {
        snprintf(msg, cap, "%s: procbus_pub_open gave %d, procbus_open %d, expected %d both",
                 c->what, rc_pub, rc_rd, c->open_rc);
        bad = 1;
    } else if (rc_pub == 0) {
        /* the same file: the path both report, and the inode the reader mapped */
        if (strcmp(procbus_pub_path(p), want) != 0 || strcmp(r.spec, want) != 0 ||
            stat(want, &st) != 0 || (uint64_t)st.st_ino != r.ino || (uint64_t)st.st_dev != r.dev) {
            snprintf(msg, cap,
                     "%s: publisher on \"%.60s\", reader on \"%.60s\", expected \"%.60s\"", c->what,
                     procbus_pub_path(p), r.spec, want);
            bad = 1;
        }
    }
    if (rc_rd == 0)
        procbus_close(&r);
    if (rc_pub == 0)
        procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    unsetenv(PROCBUS_SEGMENT_ENV);
    return bad;
}

/* The rule alone, every row, plus its buffer contract. */
static void test_rule_table(void **state)
{
    char msg[512], buf[PROCBUS_PATH_MAX];
    size_t i;
    (void)state;

    snprintf(g_tmp, sizeof(g_tmp), "/tmp/pbt-names-none");
    for (i = 0; i < NCASES; i++)
        if (run_case(&cases[i], 0, msg, sizeof(msg)) != 0)
            fail_msg("%s", msg);

    unsetenv(PROCBUS_SEGMENT_ENV);
    assert_int_equal(procbus_segment_path("x", NULL, 10), -EINVAL);
    assert_int_equal(procbus_segment_path("x", buf, 0), -EINVAL);
    snprintf(msg, sizeof(msg), "%s/abc", names_dir());
    assert_int_equal(procbus_segment_path("abc", buf, strlen(msg) + 1), 0);
    assert_string_equal(buf, msg);
    assert_int_equal(procbus_segment_path("abc", buf, strlen(msg)), -ENAMETOOLONG);
    assert_string_equal(buf, "");
    assert_int_equal(procbus_segment_path("/a/b", buf, 5), 0);
    assert_int_equal(procbus_segment_path("/a/b", buf, 4), -ENAMETOOLONG);
}

/* In a child: a private mount namespace with fresh tmpfs folders on /dev/shm (1777) and
 * /run/procbus (0755), so the default name "procbus" and the short names cannot meet a real
 * procbusd or another test. 0, or -1 (not root: no CAP_SYS_ADMIN). */
static int private_name_folders(void)
{
    if (mkdir(PROCBUS_RUN_DIR, 0755) < 0 && errno != EEXIST)
        return -1;
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=64m,mode=1777") < 0 ||
        mount("tmpfs", PROCBUS_RUN_DIR, "tmpfs", 0, "size=64m,mode=0755") < 0)
        return -1;
    return 0;
}

/*
 * Every row through both sides, with files: in a child with private name
 * folders (private_name_folders). Needs root (CAP_SYS_ADMIN); skipped
 * otherwise.
 */
static void test_both_sides_agree(void **state)
{
    char msg[512] = "", dir[] = "/tmp/pbt-names-XXXXXX";
    int pfd[2], status = 0;
    ssize_t n;
    pid_t pid;
    (void)state;

    assert_non_null(mkdtemp(dir));
    assert_int_equal(pipe(pfd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        size_t i;

        close(pfd[0]);
        if (private_name_folders() < 0)
            _exit(77);
        snprintf(g_tmp, sizeof(g_tmp), "%s", dir);
        if (chdir(dir) < 0)
            _exit(2);
        for (i = 0; i < NCASES; i++)
            if (run_case(&cases[i], 1, msg, sizeof(msg)) != 0) {
                if (write(pfd[1], msg, strlen(msg)) < 0)
                    _exit(3);
                _exit(1);
            }
        _exit(0);
    }
    close(pfd[1]);
    n = read(pfd[0], msg, sizeof(msg) - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(pfd[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    rmdir(dir);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        skip(); /* no private mount namespace: not root */
    if (WEXITSTATUS(status) != 0)
        fail_msg("%s (child status %d)", msg[0] ? msg : "no message", WEXITSTATUS(status));
}

/* The check of one child step: on failure, write `what` to fd and exit 1. */
#define CHILD_CHECK(fd, cond, what)                    \
    do {                                               \
        if (!(cond)) {                                 \
            if (write((fd), (what), strlen(what)) < 0) \
                _exit(3);                              \
            _exit(1);                                  \
        }                                              \
    } while (0)

/*
 * Where a name lives depends on who asks (issue 10 item 3): root's names are
 * in /run/procbus, where nobody else creates names; another user's name is
 * /run/procbus/NAME when root has that segment (so a monitoring user reads
 * root's), else /dev/shm/NAME. Such a user cannot take a name root has, and
 * a file of another user at a path is neither replaced nor read by root.
 * In a child with private name folders, as root then as nobody (65534).
 */
static void test_names_by_user(void **state)
{
    char msg[512] = "", buf[PROCBUS_PATH_MAX];
    int pfd[2], status = 0;
    ssize_t n;
    pid_t pid;
    (void)state;

    assert_int_equal(pipe(pfd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct procbus_pub_opts o = {0};
        struct procbus_pub *p = NULL, *q = NULL;
        struct procbus_reader r;
        struct stat st;
        int fd = pfd[1];

        close(pfd[0]);
        if (private_name_folders() < 0)
            _exit(77);
        unsetenv(PROCBUS_SEGMENT_ENV);
        unsetenv(PROCBUS_OWNER_ENV);
        CHILD_CHECK(fd,
                    procbus_segment_path("rootseg", buf, sizeof(buf)) == 0 &&
                        strcmp(buf, PROCBUS_RUN_DIR "/rootseg") == 0,
                    "root: a name is in /run/procbus");
        o.segment = "rootseg";
        o.capacity = 4;
        CHILD_CHECK(fd, procbus_pub_open(&p, &o) == 0, "root: publisher on rootseg");
        CHILD_CHECK(
            fd, stat(PROCBUS_RUN_DIR, &st) == 0 && st.st_uid == 0 && (st.st_mode & 07777) == 0755,
            "root: /run/procbus is root's, 0755");
        procbus_pub_close(p, 0); /* stays at the name, SHUTDOWN */
        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
            setresuid(65534, 65534, 65534) < 0)
            _exit(78);
        CHILD_CHECK(fd,
                    procbus_segment_path("rootseg", buf, sizeof(buf)) == 0 &&
                        strcmp(buf, PROCBUS_RUN_DIR "/rootseg") == 0,
                    "nobody: root's name resolves to /run/procbus");
        CHILD_CHECK(fd,
                    procbus_segment_path("mine", buf, sizeof(buf)) == 0 &&
                        strcmp(buf, PROCBUS_SHM_DIR "/mine") == 0,
                    "nobody: a fresh name resolves to /dev/shm");
        CHILD_CHECK(fd, procbus_open(&r, "rootseg") == -EACCES,
                    "nobody: root's 0640 segment is not readable");
        o.segment = "rootseg";
        CHILD_CHECK(fd, procbus_pub_open(&q, &o) == -EPERM,
                    "nobody: cannot take over root's name (-EPERM)");
        o.segment = "mine";
        CHILD_CHECK(fd, procbus_pub_open(&q, &o) == 0, "nobody: publisher on its own name");
        CHILD_CHECK(fd, procbus_open(&r, "mine") == 0, "nobody: reads its own segment");
        procbus_close(&r);
        procbus_pub_close(q, PROCBUS_PUB_UNLINK);
        _exit(0);
    }
    close(pfd[1]);
    n = read(pfd[0], msg, sizeof(msg) - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(pfd[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77 || WEXITSTATUS(status) == 78)
        skip(); /* not root: no private mount namespace, or cannot become nobody */
    if (WEXITSTATUS(status) != 0)
        fail_msg("%s (child status %d)", msg[0] ? msg : "no message", WEXITSTATUS(status));
}

/* The error rows need no file: both sides refuse them, on any machine. */
static void test_both_sides_refuse(void **state)
{
    char msg[512];
    size_t i;
    (void)state;

    snprintf(g_tmp, sizeof(g_tmp), "/tmp/pbt-names-none");
    for (i = 0; i < NCASES; i++)
        if (cases[i].rc != 0 && run_case(&cases[i], 0, msg, sizeof(msg)) != 0)
            fail_msg("%s", msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* first: the child must be forked before any publisher started liburcu threads */
        cmocka_unit_test(test_both_sides_agree),
        cmocka_unit_test(test_names_by_user),
        cmocka_unit_test(test_rule_table),
        cmocka_unit_test(test_both_sides_refuse),
    };
    return cmocka_run_group_tests_name("names", tests, NULL, NULL);
}
