/* embed.c - the README's example: embed the reader, look one program up, wait for a change. */
#include "procbus.h"
#include <stdio.h>

int main(void)
{
    struct procbus_reader r;
    struct procbus_proc p;
    if (procbus_open(&r, NULL) < 0) /* $PROCBUS_SEGMENT, else "procbus" */
        return 1;
    if (procbus_get_name(&r, "web", &p) == 0) /* loads only, no syscalls */
        printf("web: pid %d state %u restarts %u\n", p.pid, p.state, p.restarts);
    uint64_t gen = procbus_generation(&r);
    procbus_wait(&r, gen, 5000); /* FUTEX_WAIT until the next commit */
    procbus_close(&r);
    return 0;
}
