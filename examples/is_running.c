/* is_running.c - "is web running?" by the zero-copy section API; exit 0 if so (C99 and C++17). */
#include <procbus.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "web";
    struct procbus_reader r;
    struct procbus_section s;
    unsigned state = 0;
    int rc = procbus_open(&r, argc > 2 ? argv[2] : NULL);

    if (rc < 0)
        return fprintf(stderr, "procbus_open: %s\n", procbus_strerror(rc)), 2;
    procbus_section_begin(&r, &s); /* no copy: read one field by pointer, then validate */
    do {
        const struct procbus_proc *p = procbus_section_name(&s, name);
        state = p != NULL ? PROCBUS_FIELD(p, state) : 0u;
    } while ((rc = procbus_section_retry(&s)) > 0); /* the publisher moved: read again */
    procbus_close(&r);
    if (rc < 0)
        return fprintf(stderr, "read: %s\n", procbus_strerror(rc)), 2;
    printf("%s: %s\n", name, procbus_state_name(state));
    return state == PROCBUS_STATE_RUNNING || state == PROCBUS_STATE_READY ? 0 : 1;
}
