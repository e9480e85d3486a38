/* bench_common.h - small helpers every benchmark program uses (machine load, JSON strings). */
#ifndef PROCBUS_BENCH_COMMON_H
#define PROCBUS_BENCH_COMMON_H

#include <stdio.h>

/* Total and steal jiffies of all CPUs from /proc/stat; 1 on success, 0 if unreadable. */
static inline int bench_cpu_jiffies(unsigned long long *total, unsigned long long *steal)
{
    unsigned long long v[8] = {0};
    FILE *fp = fopen("/proc/stat", "r");
    int n, i;

    if (fp == NULL)
        return 0;
    n = fscanf(fp, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]);
    fclose(fp);
    if (n < 8)
        return 0;
    *total = 0;
    for (i = 0; i < 8; i++)
        *total += v[i];
    *steal = v[7];
    return 1;
}

/* s as a JSON string literal. */
static inline void json_str(FILE *fp, const char *s)
{
    fputc('"', fp);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(fp, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(fp, "\\u%04x", ch);
        else
            fputc(ch, fp);
    }
    fputc('"', fp);
}

#endif
