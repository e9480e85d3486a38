/* embed_min.c - minimal C99 program embedding the procbus reader: list, look up, watch. */
#include <procbus.h>

#include <stdio.h>

int main(int argc, char **argv)
{
    struct procbus_reader r;
    struct procbus_proc procs[256], one;
    struct procbus_event ev;
    uint64_t missed;
    size_t n = 0, i;
    int rc = procbus_open(&r, argc > 1 ? argv[1] : NULL);

    if (rc < 0) {
        fprintf(stderr, "procbus_open: %s\n", strerror(-rc));
        return 1;
    }
    if (procbus_list(&r, procs, 256, &n) == 0) /* one consistent snapshot */
        for (i = 0; i < n; i++)
            printf("%-20s pid %-7d state %u\n", procs[i].name, (int)procs[i].pid, procs[i].state);
    if (n > 0 && procbus_get_name(&r, procs[0].name, &one) == 0) /* O(1) lookup */
        printf("looked up %s: restarts %u\n", one.name, one.restarts);
    if (procbus_wait(&r, procbus_generation(&r), 100) == 0) /* block until a commit */
        while (procbus_next_event(&r, &ev, &missed) == 0)
            printf("event %llu: %s %u -> %u\n", (unsigned long long)ev.seq, ev.name, ev.old_state,
                   ev.new_state);
    procbus_close(&r);
    return 0;
}
