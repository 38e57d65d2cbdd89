/*
 * /init of the end-to-end test's initramfs: reports what the booted kernel says about
 * itself, then measures wake-up latency the way cyclictest does (a SCHED_FIFO 99 thread
 * pinned to one CPU, absolute clock_nanosleep on CLOCK_MONOTONIC, latency = wake-up time
 * minus the programmed time), prints cyclictest's summary line and powers the VM off.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define NSEC 1000000000L

static void show(const char *label, const char *path)
{
    char buf[1024] = "";
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = 0;
    buf[strcspn(buf, "\n")] = 0;
    printf("JRT %s=%s\n", label, n >= 0 ? buf : "(missing)");
}

struct args { int cpu; long interval_us; long loops; long min, max, sum, count; };

static void *measure(void *p)
{
    struct args *a = p;
    struct timespec next, now;
    cpu_set_t set;
    struct sched_param sp = { .sched_priority = 99 };
    CPU_ZERO(&set);
    CPU_SET(a->cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) || sched_setscheduler(0, SCHED_FIFO, &sp))
        perror("JRT sched");
    a->min = 1L << 40;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (long i = 0; i < a->loops; i++) {
        next.tv_nsec += a->interval_us * 1000;
        while (next.tv_nsec >= NSEC) {
            next.tv_nsec -= NSEC;
            next.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
        long lat = ((now.tv_sec - next.tv_sec) * NSEC + now.tv_nsec - next.tv_nsec) / 1000;
        if (lat < a->min)
            a->min = lat;
        if (lat > a->max)
            a->max = lat;
        a->sum += lat;
        a->count++;
    }
    return NULL;
}

int main(void)
{
    struct utsname u;
    mount("proc", "/proc", "proc", 0, NULL);
    mount("sysfs", "/sys", "sysfs", 0, NULL);
    uname(&u);
    printf("JRT release=%s\nJRT version=%s\n", u.release, u.version);
    show("realtime", "/sys/kernel/realtime");
    show("isolated", "/sys/devices/system/cpu/isolated");
    show("nohz_full", "/sys/devices/system/cpu/nohz_full");
    show("online", "/sys/devices/system/cpu/online");
    show("cmdline", "/proc/cmdline");

    struct args a = { .cpu = 4, .interval_us = 1000, .loops = 3000 };
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (pthread_create(&t, &attr, measure, &a) == 0)
        pthread_join(t, NULL);
    printf("JRT cyclictest T: 0 P:99 I:%ld C:%7ld Min:%7ld Avg:%7ld Max:%7ld (CPU %d)\n",
           a.interval_us, a.count, a.min, a.count ? a.sum / a.count : 0, a.max, a.cpu);
    printf("JRT done\n");
    fflush(stdout);
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
