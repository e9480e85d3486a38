// embed_min.cc - minimal C++17 program embedding the procbus reader: list, look up, watch.
#include <procbus.h>

#include <cstdio>
#include <vector>

int main(int argc, char **argv)
{
    procbus_reader r;
    if (int rc = procbus_open(&r, argc > 1 ? argv[1] : nullptr); rc < 0) {
        std::fprintf(stderr, "procbus_open: %s\n", strerror(-rc));
        return 1;
    }
    std::vector<procbus_proc> procs(16);
    size_t n = 0;
    int rc;
    while ((rc = procbus_list(&r, procs.data(), procs.size(), &n)) == -ENOSPC)
        procs.resize(n + 16); // the table grew: ask again with room
    if (rc == 0)
        for (size_t i = 0; i < n; i++)
            std::printf("%-20s pid %-7d state %u\n", procs[i].name, int(procs[i].pid),
                        unsigned(procs[i].state));
    procbus_proc one;
    if (n > 0 && procbus_get_pid(&r, procs[0].pid, &one) == 0)
        std::printf("pid %d is %s\n", int(one.pid), one.name);
    procbus_event ev;
    uint64_t missed;
    if (procbus_wait(&r, procbus_generation(&r), 100) == 0)
        while (procbus_next_event(&r, &ev, &missed) == 0)
            std::printf("event %llu: %s\n", static_cast<unsigned long long>(ev.seq), ev.name);
    procbus_close(&r);
    return 0;
}
