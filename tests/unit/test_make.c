/* test_make.c - `make help` lists every target a user runs; the docs' `make X` lines name them. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

#define MAX_NAMES 256
#define NAME_LEN  64

/* A set of target names (small: linear search is fine). */
struct names {
    int n;
    char v[MAX_NAMES][NAME_LEN];
};

static char g_root[PATH_MAX]; /* the repository: the folder with the Makefile */

static int has(const struct names *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->v[i], name) == 0)
            return 1;
    return 0;
}

static void add(struct names *s, const char *name, size_t len)
{
    char buf[NAME_LEN];

    assert_true(len > 0 && len < NAME_LEN);
    snprintf(buf, sizeof(buf), "%.*s", (int)len, name);
    if (!has(s, buf)) {
        assert_true(s->n < MAX_NAMES);
        snprintf(s->v[s->n++], NAME_LEN, "%s", buf);
    }
}

static int exists(const char *dir, const char *name)
{
    char path[PATH_MAX + 64];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

/* From the working directory up, the first folder holding the Makefile and tests/run.sh. */
static int find_root(void **state)
{
    char dir[PATH_MAX];
    (void)state;

    if (getcwd(dir, sizeof(dir)) == NULL)
        return -1;
    for (;;) {
        if (exists(dir, "Makefile") && exists(dir, "tests/run.sh")) {
            snprintf(g_root, sizeof(g_root), "%s", dir);
            return 0;
        }
        char *slash = strrchr(dir, '/');
        if (slash == NULL || slash == dir) {
            fprintf(stderr, "test_make: no Makefile with tests/run.sh above the working "
                            "directory\n");
            return -1;
        }
        *slash = '\0';
    }
}

/* A file of the repository, whole (NULL if it does not exist). */
static char *repo_file(const char *rel)
{
    char path[PATH_MAX + 64];

    snprintf(path, sizeof(path), "%s/%s", g_root, rel);
    return pbt_slurp(path, NULL);
}

/* Run `sh -c cmd` in the repository with make's own variables cleared (a sub-make must not
 * inherit the jobserver of a `make test` above it); its stdout and stderr, and *status its exit
 * status. */
static char *run(const char *cmd, int *status)
{
    char full[PATH_MAX + 4096], chunk[4096], *out = NULL;
    size_t len = 0, n;
    FILE *p;
    int st;

    snprintf(full, sizeof(full),
             "cd '%s' && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEFILES %s 2>&1", g_root,
             cmd);
    p = popen(full, "r");
    assert_non_null(p);
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0) {
        out = realloc(out, len + n + 1);
        assert_non_null(out);
        memcpy(out + len, chunk, n);
        len += n;
    }
    st = pclose(p);
    if (out == NULL)
        out = calloc(1, 1);
    assert_non_null(out);
    out[len] = '\0';
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    return out;
}

/* The targets `make help` prints ("make NAME  note" lines); each must have a note. */
static void help_targets(const char *help, struct names *out)
{
    out->n = 0;
    for (const char *line = help; *line;) {
        size_t len = strcspn(line, "\n");

        if (strncmp(line, "make ", 5) == 0) { /* other lines: e.g. the Makefile's $(info) */
            size_t name = strcspn(line + 5, " \n");
            const char *note = line + 5 + name;
            add(out, line + 5, name);
            while (note < line + len && *note == ' ')
                note++;
            if (note >= line + len)
                fail_msg("make help: '%.*s' has no description", (int)len, line);
        }
        line += len + (line[len] != '\0');
    }
}

/* Makefile text with backslash-newline continuations joined (caller frees). */
static char *join_lines(const char *text)
{
    char *out = malloc(strlen(text) + 1), *o = out;

    assert_non_null(out);
    for (const char *s = text; *s; s++) {
        if (s[0] == '\\' && s[1] == '\n') {
            *o++ = ' ';
            s++;
            continue;
        }
        *o++ = *s;
    }
    *o = '\0';
    return out;
}

/*
 * From Makefile text: the names on .PHONY lines into phony, and every target whose rule line
 * carries a `## ` note into noted (any name a rule may have, not only the ones help's awk
 * pattern knows).
 */
static void makefile_targets(const char *text, struct names *phony, struct names *noted)
{
    char *joined = join_lines(text);

    for (char *line = strtok(joined, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strncmp(line, ".PHONY:", 7) == 0) {
            for (char *w = line + 7; *w;) {
                size_t n;
                w += strspn(w, " \t");
                n = strcspn(w, " \t");
                if (n > 0)
                    add(phony, w, n);
                w += n;
            }
            continue;
        }
        if (line[0] == '\t' || line[0] == '#' || line[0] == '.' || isspace((unsigned char)line[0]))
            continue;
        size_t name = strcspn(line, " \t:=#");
        const char *after = line + name + strspn(line + name, " \t");
        if (name > 0 && after[0] == ':' && after[1] != '=' && strstr(after, "## ") != NULL)
            add(noted, line, name);
    }
    free(joined);
}

/* Names of `want` missing from `have`, as "a b c" into buf; how many. */
static int missing(const struct names *want, const struct names *have, char *buf, size_t len)
{
    int n = 0;

    buf[0] = '\0';
    for (int i = 0; i < want->n; i++)
        if (!has(have, want->v[i])) {
            n++;
            snprintf(buf + strlen(buf), len - strlen(buf), " %s", want->v[i]);
        }
    return n;
}

/* `make -s help` of the repository's Makefile (plus `extra`, a makefile included after it). */
static void help_of(const char *extra, struct names *help)
{
    char cmd[PATH_MAX + 128], *out;
    int st;

    if (extra != NULL)
        snprintf(cmd, sizeof(cmd), "make -s -f Makefile -f '%s' help", extra);
    else
        snprintf(cmd, sizeof(cmd), "make -s help");
    out = run(cmd, &st);
    if (st != 0)
        fail_msg("`%s` exited %d:\n%s", cmd, st, out);
    help_targets(out, help);
    free(out);
    assert_true(help->n > 0);
}

/* Every .PHONY target, and every target with a `## ` note, is in `make help`. */
static void test_help_lists_every_target(void **state)
{
    static struct names help, phony, noted;
    char *mk = repo_file("Makefile"), buf[2048];
    (void)state;

    assert_non_null(mk);
    phony.n = noted.n = 0;
    makefile_targets(mk, &phony, &noted);
    free(mk);
    help_of(NULL, &help);
    print_message("make help: %d targets; .PHONY: %d; with a ## note: %d\n", help.n, phony.n,
                  noted.n);
    assert_true(phony.n > 0 && noted.n > 0);
    if (missing(&phony, &help, buf, sizeof(buf)) != 0)
        fail_msg(".PHONY targets without a `## ` note (so not in `make help`):%s", buf);
    if (missing(&noted, &help, buf, sizeof(buf)) != 0)
        fail_msg("targets with a `## ` note that `make help` does not list:%s", buf);
    /* and what help lists is a command, not a file make could find up to date */
    if (missing(&help, &phony, buf, sizeof(buf)) != 0)
        fail_msg("`make help` lists targets that are not .PHONY:%s", buf);
}

/* The check above fails for a .PHONY target added without a note (help really omits it). */
static void test_undocumented_phony_target_is_caught(void **state)
{
    static struct names help, phony, noted;
    char extra[] = "/tmp/pbt-make-XXXXXX", *text, *mk, buf[2048];
    const char *rule = ".PHONY: zz-undocumented\nzz-undocumented:\n\t@true\n";
    int fd;
    (void)state;

    fd = mkstemp(extra);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, rule, strlen(rule)), (ssize_t)strlen(rule));
    close(fd);
    help_of(extra, &help);
    unlink(extra);

    mk = repo_file("Makefile");
    assert_non_null(mk);
    text = malloc(strlen(mk) + strlen(rule) + 2);
    assert_non_null(text);
    sprintf(text, "%s\n%s", mk, rule);
    phony.n = noted.n = 0;
    makefile_targets(text, &phony, &noted);
    free(text);
    free(mk);
    assert_true(has(&phony, "zz-undocumented"));
    assert_false(has(&help, "zz-undocumented"));
    assert_true(missing(&phony, &help, buf, sizeof(buf)) >= 1);
    assert_non_null(strstr(buf, " zz-undocumented"));
}

/* One `make ARGS` command: each target word (not an option, not VAR=value) must be real. */
static int check_make_args(const char *doc, int lineno, const char *args, size_t len,
                           const struct names *help)
{
    char word[NAME_LEN * 2];
    int bad = 0;

    for (size_t i = 0; i < len;) {
        size_t n;
        i += strspn(args + i, " \t");
        n = strcspn(args + i, " \t");
        if (n > len - i)
            n = len - i;
        if (n == 0)
            break;
        snprintf(word, sizeof(word), "%.*s", (int)n, args + i);
        i += n;
        if (word[0] == '#')
            break; /* a comment: the rest of the line */
        if (word[0] == '-' || strchr(word, '=') != NULL)
            continue;
        if (strchr(word, '/') != NULL) { /* a file target (build/...): make must know a rule */
            char cmd[256];
            int st;
            snprintf(cmd, sizeof(cmd), "make -n -s '%s' >/dev/null", word);
            free(run(cmd, &st));
            if (st == 0)
                continue;
        } else if (has(help, word)) {
            continue;
        }
        print_message("%s:%d: `make %.*s`: '%s' is not a target `make help` lists\n", doc, lineno,
                      (int)len, args, word);
        bad++;
    }
    return bad;
}

/*
 * The `make X` commands of one document: on the lines of its fenced code blocks (a command
 * may follow `$ `, `sudo `, `&&` or `;`) and in its inline code spans. How many are wrong.
 */
static int check_doc(const char *doc, const struct names *help, int *found)
{
    char *text = repo_file(doc);
    int bad = 0, fenced = 0, lineno = 0;

    if (text == NULL)
        return 0;
    for (char *line = text; *line;) {
        size_t len = strcspn(line, "\n");
        char save = line[len];

        lineno++;
        line[len] = '\0';
        if (strncmp(line + strspn(line, " "), "```", 3) == 0) {
            fenced = !fenced;
        } else if (fenced) {
            for (char *m = line; (m = strstr(m, "make ")) != NULL; m += 5) {
                const char *before = m;
                while (before > line && (before[-1] == ' ' || before[-1] == '\t'))
                    before--;
                if (before == line || before[-1] == '$' || before[-1] == '&' || before[-1] == ';' ||
                    (before - line >= 4 && strncmp(before - 4, "sudo", 4) == 0)) {
                    size_t cmd = strcspn(m + 5, ";&|");
                    (*found)++;
                    bad += check_make_args(doc, lineno, m + 5, cmd, help);
                }
            }
        } else {
            for (char *m = line; (m = strstr(m, "`make ")) != NULL; m += 6) {
                size_t cmd = strcspn(m + 6, "`");
                if (m[6 + cmd] != '`')
                    break;
                (*found)++;
                bad += check_make_args(doc, lineno, m + 6, cmd, help);
            }
        }
        line[len] = save;
        line += len + (save != '\0');
    }
    free(text);
    return bad;
}

/* README.md, and every other document (top-level and docs/ Markdown), names only real targets. */
static void test_docs_name_real_targets(void **state)
{
    static struct names help;
    const char *patterns[] = {"*.md", "docs/*.md"};
    int bad = 0, found = 0, readme = 0, ndocs = 0;
    char pat[PATH_MAX + 16];
    (void)state;

    help_of(NULL, &help);
    bad += check_doc("README.md", &help, &readme);
    for (size_t k = 0; k < sizeof(patterns) / sizeof(patterns[0]); k++) {
        glob_t g;
        snprintf(pat, sizeof(pat), "%s/%s", g_root, patterns[k]);
        if (glob(pat, 0, NULL, &g) != 0)
            continue;
        for (size_t i = 0; i < g.gl_pathc; i++) {
            const char *rel = g.gl_pathv[i] + strlen(g_root) + 1;
            if (strcmp(rel, "README.md") != 0) {
                bad += check_doc(rel, &help, &found);
                ndocs++;
            }
        }
        globfree(&g);
    }
    print_message("`make` commands: %d in README.md, %d in %d other documents\n", readme, found,
                  ndocs);
    assert_true(readme > 0); /* the parser still finds README's commands */
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_lists_every_target),
        cmocka_unit_test(test_undocumented_phony_target_is_caught),
        cmocka_unit_test(test_docs_name_real_targets),
    };
    return cmocka_run_group_tests_name("make", tests, find_root, NULL);
}
