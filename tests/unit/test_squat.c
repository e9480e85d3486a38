/* test_squat.c - another local user (nobody, through setpriv) against root's segment: squatting
 * the name, impersonating the publisher, crafting a predecessor; and who may read (issue 10
 * items 3 and 4). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "procbus.h"
#include "procbus_pub.h"
#include "support.h"

static uid_t g_uid = 65534; /* nobody */
static gid_t g_gid = 65534;
static char g_dir[64]; /* a folder nobody may write (0777): configs, logs, sources */

/* Run `sh -c CMD` as nobody (setpriv); its exit status (126/127: cannot run it). */
static int as_nobody(const char *cmd)
{
    char full[2048];
    int st;

    snprintf(full, sizeof(full),
             "setpriv --reuid=%u --regid=%u --clear-groups sh -c '%s' </dev/null >>%s/nobody.out "
             "2>&1",
             (unsigned)g_uid, (unsigned)g_gid, cmd, g_dir);
    st = system(full);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* nobody's output so far (malloc'd), then forgotten. */
static char *nobody_output(void)
{
    char path[128], *text;

    snprintf(path, sizeof(path), "%s/nobody.out", g_dir);
    text = pbt_slurp(path, NULL);
    unlink(path);
    return text != NULL ? text : strdup("");
}

/* Set up, or skip with the reason: root, setpriv, a user nobody that can run this build. */
static int squat_setup(void **state)
{
    const struct passwd *pw;
    char exe[256], cmd[512];
    (void)state;

    if (geteuid() != 0) {
        print_message("test_squat: skipped: needs root (to act as a second user with setpriv)\n");
        return 0;
    }
    pw = getpwnam("nobody");
    if (pw == NULL || system("command -v setpriv >/dev/null 2>&1") != 0) {
        print_message("test_squat: skipped: no user nobody or no setpriv\n");
        return 0;
    }
    g_uid = pw->pw_uid;
    g_gid = pw->pw_gid;
    snprintf(g_dir, sizeof(g_dir), "/tmp/pbt-squat-XXXXXX");
    if (mkdtemp(g_dir) == NULL || chmod(g_dir, 0777) < 0)
        return -1;
    snprintf(cmd, sizeof(cmd), "%s --help >/dev/null", pbt_bin("procbus", exe, sizeof(exe)));
    if (as_nobody(cmd) != 0) {
        print_message("test_squat: skipped: user nobody cannot run %s\n", exe);
        g_dir[0] = '\0';
    }
    free(nobody_output());
    return 0;
}

static int squat_teardown(void **state)
{
    char cmd[128];
    (void)state;
    if (g_dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

#define NEED_NOBODY()                                               \
    do {                                                            \
        if (geteuid() != 0 || g_dir[0] == '\0')                     \
            skip(); /* the reason was printed by the group setup */ \
    } while (0)

static int cli_as_root(const char *seg, const char *args, char **out)
{
    char exe[256], cmd[1024], path[128];
    int st;

    snprintf(path, sizeof(path), "%s/root.out", g_dir);
    snprintf(cmd, sizeof(cmd), "timeout -s KILL 30 %s -s '%s' %s >%s 2>&1 </dev/null",
             pbt_bin("procbus", exe, sizeof(exe)), seg, args, path);
    st = system(cmd);
    *out = pbt_slurp(path, NULL);
    if (*out == NULL)
        *out = strdup("");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * nobody puts a FIFO, a plain file and its own publisher at the names root's procbusd and
 * publishers will use, in /dev/shm (any local user can). Root is not stopped ("File exists",
 * "busy": it used to be) and never shows nobody's states: root's names live in /run/procbus,
 * where nobody cannot create one; by path, nobody's segment is refused as untrusted, unless
 * root names nobody's uid in $PROCBUS_SEGMENT_OWNER.
 */
static void test_squatted_names_do_not_reach_root(void **state)
{
    char exe[256], cmd[1024], seg_b[80], seg_c[80], shm_c[128], conf[160], *out;
    struct procbus_pub *pb = NULL, *pc = NULL;
    struct procbus_pub_opts o = {0};
    struct procbus_reader r;
    struct daemon_h h;
    struct stat st;
    (void)state;
    NEED_NOBODY();

    /* nobody's squats, made before root starts anything: a FIFO at the name the harness gives
     * root's procbusd next (pbt_name counts up), a plain file at another */
    {
        char probe[64];
        unsigned n = 0;
        memset(&h, 0, sizeof(h));
        pbt_name(seg_b);
        pbt_name(seg_c);
        pbt_name(probe);
        assert_int_equal(sscanf(probe, "pbt-%*d-%u", &n), 1);
        snprintf(h.seg, sizeof(h.seg), "pbt-%d-%u", (int)getpid(), n + 1);
    }
    snprintf(cmd, sizeof(cmd), "mkfifo /dev/shm/%s && echo fake > /dev/shm/%s", h.seg, seg_b);
    assert_int_equal(as_nobody(cmd), 0);
    /* and the claim root's procbusd makes of that name (claim.h: an abstract socket, which has
     * no permissions), bound and listening: a squatter, not a procbusd of root's */
    {
        char py[160];
        FILE *f;
        snprintf(py, sizeof(py), "%s/squat_claim.py", g_dir);
        f = fopen(py, "w");
        assert_non_null(f);
        fprintf(f, "import socket, sys, time\n"
                   "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
                   "s.bind('\\0procbusd:' + sys.argv[1])\n"
                   "s.listen(1)\n"
                   "print('claim squatted', flush=True)\n"
                   "time.sleep(120)\n");
        fclose(f);
        chmod(py, 0644);
        snprintf(cmd, sizeof(cmd), "python3 %s %s/%s & sleep 0.5", py, PROCBUS_RUN_DIR, h.seg);
        assert_int_equal(as_nobody(cmd), 0);
        for (long t0 = pbt_now_ms();; usleep(20000)) {
            char *o2 = nobody_output();
            int ok = o2 != NULL && strstr(o2, "claim squatted") != NULL;
            free(o2);
            if (ok)
                break;
            assert_true(pbt_now_ms() - t0 < 30000);
        }
    }
    snprintf(conf, sizeof(conf), "%s/nobody.conf", g_dir);
    {
        FILE *f = fopen(conf, "w");
        assert_non_null(f);
        fprintf(f,
                "[procbusd]\nsegment = %s\nsocket = %s/nobody.sock\ntrace = off\n"
                "[program:web]\ncommand = sleep 1000\nstartsecs = 0\n",
                seg_c, g_dir);
        fclose(f);
        chmod(conf, 0644);
    }
    /* nobody's own procbusd, publishing a fake "web" under root's future name */
    snprintf(cmd, sizeof(cmd), "%s -c %s & sleep 0.1", pbt_bin("procbusd", exe, sizeof(exe)), conf);
    assert_int_equal(as_nobody(cmd), 0);
    snprintf(shm_c, sizeof(shm_c), "%s/%s", PROCBUS_SHM_DIR, seg_c);
    for (long t0 = pbt_now_ms(); stat(shm_c, &st) != 0; usleep(20000))
        assert_true(pbt_now_ms() - t0 < 30000);
    assert_int_equal(st.st_uid, g_uid);

    /* root: procbusd and two library publishers on names nobody squatted in /dev/shm */
    {
        char squatted[64];
        snprintf(squatted, sizeof(squatted), "%s", h.seg);
        pbt_start_daemon(&h, "/tmp/pbt-squat-d", "[program:web]\ncommand = sleep 1000\n");
        assert_string_equal(h.seg, squatted); /* root's procbusd started on the squatted name */
        snprintf(cmd, sizeof(cmd), "%s/procbusd.log", h.dir);
        for (long t0 = pbt_now_ms();; usleep(20000)) {
            char *text = pbt_slurp(cmd, NULL);
            int found = text != NULL && strstr(text, "is held by another user") != NULL;
            free(text);
            if (found)
                break;
            assert_true(pbt_now_ms() - t0 < 20000);
        }
        assert_int_equal(system("pkill -u nobody -f squat_claim.py"), 0);
    }
    o.capacity = 8;
    o.segment = seg_b;
    assert_int_equal(procbus_pub_open(&pb, &o), 0);
    assert_int_equal(
        strncmp(procbus_pub_path(pb), PROCBUS_RUN_DIR "/", strlen(PROCBUS_RUN_DIR) + 1), 0);
    o.segment = seg_c;
    assert_int_equal(procbus_pub_open(&pc, &o), 0); /* not "busy": nobody's is elsewhere */
    procbus_pub_close(pb, PROCBUS_PUB_UNLINK);
    procbus_pub_close(pc, PROCBUS_PUB_UNLINK);

    /* root's readers: root's procbusd; never nobody's fake states (status exits 0 once web
     * runs: supervisorctl's 3 while a program shown is STOPPED) */
    assert_int_equal(pbt_wait_state(&h, "web", PROCBUS_STATE_RUNNING, 20000, NULL), 0);
    assert_int_equal(cli_as_root(h.seg, "status", &out), 0);
    assert_non_null(strstr(out, "web"));
    free(out);
    assert_int_equal(cli_as_root(seg_c, "status", &out), 4); /* root has no segment there */
    assert_null(strstr(out, "RUNNING"));
    free(out);
    assert_int_equal(cli_as_root(shm_c, "status", &out), 4); /* by path: not trusted */
    print_message("  root reading nobody's segment by path: %s", out);
    assert_non_null(strstr(out, "not trusted"));
    assert_non_null(strstr(out, "owned by uid 65534"));
    free(out);
    assert_int_equal(procbus_open(&r, shm_c), -EPERM);
    snprintf(cmd, sizeof(cmd), "%u", (unsigned)g_uid);
    setenv(PROCBUS_OWNER_ENV, cmd, 1); /* root chooses to trust nobody's publisher */
    for (long t0 = pbt_now_ms(); procbus_open(&r, shm_c) != 0; usleep(20000))
        assert_true(pbt_now_ms() - t0 < 30000);
    unsetenv(PROCBUS_OWNER_ENV);
    procbus_close(&r);

    /* nobody cannot take root's names over, nor create names where root's live */
    snprintf(cmd, sizeof(cmd), "touch %s/%s-x", PROCBUS_RUN_DIR, h.seg);
    assert_true(as_nobody(cmd) != 0);
    assert_true(stat(PROCBUS_RUN_DIR, &st) == 0 && st.st_uid == 0 && (st.st_mode & 0777) == 0755);

    snprintf(cmd, sizeof(cmd), "%s -S %s/nobody.sock shutdown",
             pbt_bin("procbus", exe, sizeof(exe)), g_dir);
    as_nobody(cmd);
    pbt_stop_daemon(&h);
    snprintf(cmd, sizeof(cmd), "rm -f /dev/shm/%s /dev/shm/%s %s", h.seg, seg_b, shm_c);
    assert_int_equal(system(cmd), 0);
    free(nobody_output());
}

/*
 * The temporary file a publisher creates beside the name had a predictable name
 * (.procbus-tmp.PID.N): nobody could make root's publisher fail ("File exists") by creating
 * them first. Now the names are random and a taken one is skipped.
 */
static void test_tmp_names_cannot_be_squatted(void **state)
{
    char cmd[512], name[64], path[128];
    struct procbus_pub_opts o = {0};
    struct procbus_pub *p = NULL;
    (void)state;
    NEED_NOBODY();

    snprintf(path, sizeof(path), "%s/%s", PROCBUS_SHM_DIR, pbt_name(name));
    /* the old names: .procbus-tmp.PID.0, .1, ... (a counter) */
    snprintf(cmd, sizeof(cmd),
             "cd %s && i=0 && while [ $i -lt 64 ]; do touch .procbus-tmp.%d.$i; i=$((i + 1)); "
             "done",
             PROCBUS_SHM_DIR, (int)getpid());
    assert_int_equal(as_nobody(cmd), 0);
    o.segment = path; /* root, by path, into the world-writable /dev/shm */
    o.capacity = 4;
    assert_int_equal(procbus_pub_open(&p, &o), 0);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    snprintf(cmd, sizeof(cmd), "rm -f %s/.procbus-tmp.%d.*", PROCBUS_SHM_DIR, (int)getpid());
    assert_int_equal(system(cmd), 0);
    free(nobody_output());
}

/* A real segment's bytes (a closed publisher's), with `edit` applied, at `path`. */
static void write_crafted(const char *path, void (*edit)(struct procbus_header *h))
{
    char name[64], src[128];
    struct procbus_pub *p = pbt_pub(pbt_name(name), 4, 0);
    unsigned char *img;
    size_t len;
    int fd;

    procbus_pub_close(p, 0);
    img = (unsigned char *)pbt_slurp(pbt_path(name, src), &len);
    assert_non_null(img);
    unlink(src);
    edit((struct procbus_header *)(void *)img);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, img, len), (ssize_t)len);
    close(fd);
    free(img);
}

static void epoch_max(struct procbus_header *h)
{
    h->epoch = UINT64_MAX; /* +1 would wrap to 0 */
}

static void seq_near_busy(struct procbus_header *h)
{
    h->ring_head = UINT64_MAX - 1; /* continuing would run into PROCBUS_SEQ_BUSY */
}

static void gen_max(struct procbus_header *h)
{
    h->generation = UINT64_MAX;
    h->current = PROCBUS_CUR_PACK(UINT64_MAX, h->snap_off);
}

static void corrupt_geometry(struct procbus_header *h)
{
    h->epoch = 40;
    h->hash_buckets = 3; /* not a power of two: fails the reader's validation */
}

static void epoch_five(struct procbus_header *h)
{
    h->epoch = 5;
}

/*
 * A crafted predecessor: nobody's file at the path (by path, in /dev/shm) is neither opened
 * for writing nor continued by root's publisher (-EPERM; it used to be, with its epoch of
 * 2^64 - 1 wrapping to 0). One of root's own that fails validation or leaves no room is
 * replaced as if the name were fresh (epoch 1, sequence 0); a sound one is continued.
 */
static void test_crafted_predecessor(void **state)
{
    static const struct {
        void (*edit)(struct procbus_header *h);
        uint64_t epoch; /* of the successor */
        int fresh;      /* its sequence starts at 0 */
    } cases[] = {
        {epoch_max, 1, 1},        {seq_near_busy, 1, 1}, {gen_max, 1, 1},
        {corrupt_geometry, 1, 1}, {epoch_five, 6, 0},
    };
    char name[64], path[128], src[160], cmd[512];
    struct procbus_pub_opts o = {0};
    struct procbus_pub *p = NULL;
    struct procbus_reader r;
    struct stat st;
    (void)state;
    NEED_NOBODY();

    snprintf(path, sizeof(path), "%s/%s", PROCBUS_SHM_DIR, pbt_name(name));
    o.segment = path;
    o.capacity = 4;

    /* nobody's crafted file at the path */
    snprintf(src, sizeof(src), "%s/crafted", g_dir);
    write_crafted(src, epoch_max);
    snprintf(cmd, sizeof(cmd), "cp %s %s", src, path);
    assert_int_equal(as_nobody(cmd), 0);
    assert_int_equal(procbus_pub_open(&p, &o), -EPERM);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, g_uid); /* left alone */
    assert_int_equal(procbus_open(&r, path), -EPERM);
    unlink(path);

    /* root's own crafted predecessors */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct procbus_event ev;
        uint64_t missed;

        write_crafted(path, cases[i].edit);
        assert_int_equal(procbus_pub_open(&p, &o), 0);
        assert_int_equal(procbus_pub_epoch(p), cases[i].epoch);
        assert_int_equal(procbus_open(&r, path), 0);
        assert_int_equal(r.epoch, cases[i].epoch);
        assert_true(procbus_generation(&r) >= 1 && procbus_generation(&r) < (1ull << 62));
        assert_int_equal(procbus_seek_events(&r, PROCBUS_SEEK_OLDEST), 0);
        assert_int_equal(procbus_next_event(&r, &ev, &missed), 0);
        assert_int_equal(ev.kind, PROCBUS_EV_EPOCH);
        assert_int_equal(ev.record_id, cases[i].epoch);
        if (cases[i].fresh)
            assert_int_equal(ev.seq, 0);
        else
            assert_true(ev.seq > 0);
        procbus_close(&r);
        procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    }
    free(nobody_output());
}

/*
 * Who may read root's segment: by default (0640 root:root) not nobody, and the message says
 * which keys decide it; with segment_group = nogroup (nobody's group), nobody's `procbus
 * status` reads it (there was no key for it: a non-root user could not run status at all).
 */
static void test_segment_group_lets_a_monitoring_user_read(void **state)
{
    char exe[256], cmd[512], path[128], *out;
    struct daemon_h h;
    struct stat st;
    struct group *gr = getgrgid(g_gid);
    (void)state;
    NEED_NOBODY();

    assert_non_null(gr);
    pbt_start_daemon(&h, "/tmp/pbt-squat-g", "[program:web]\ncommand = sleep 1000\n");
    assert_int_equal(stat(pbt_path(h.seg, path), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    snprintf(cmd, sizeof(cmd), "%s -s %s status", pbt_bin("procbus", exe, sizeof(exe)), h.seg);
    assert_int_equal(as_nobody(cmd), 4);
    out = nobody_output();
    print_message("  nobody, default mode: %s", out);
    assert_non_null(strstr(out, "Permission denied (segment_mode and segment_group"));
    free(out);
    pbt_stop_daemon(&h);

    snprintf(cmd, sizeof(cmd),
             "[procbusd]\nsegment_group = %s\n[program:web]\ncommand = sleep 1000\n", gr->gr_name);
    pbt_start_daemon(&h, "/tmp/pbt-squat-g", cmd);
    assert_int_equal(stat(pbt_path(h.seg, path), &st), 0);
    assert_int_equal(st.st_gid, g_gid);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(pbt_wait_state(&h, "web", PROCBUS_STATE_RUNNING, 20000, NULL), 0);
    snprintf(cmd, sizeof(cmd), "%s -s %s status", pbt_bin("procbus", exe, sizeof(exe)), h.seg);
    assert_int_equal(as_nobody(cmd), 0);
    out = nobody_output();
    print_message("  nobody, segment_group = %s: %s", gr->gr_name, out);
    assert_non_null(strstr(out, "web"));
    free(out);
    pbt_stop_daemon(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_squatted_names_do_not_reach_root, pbt_teardown),
        cmocka_unit_test(test_tmp_names_cannot_be_squatted),
        cmocka_unit_test(test_crafted_predecessor),
        cmocka_unit_test_teardown(test_segment_group_lets_a_monitoring_user_read, pbt_teardown),
    };
    return cmocka_run_group_tests_name("squat", tests, squat_setup, squat_teardown);
}
