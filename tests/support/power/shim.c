/* Power-loss shim: LD_PRELOAD'ed into a process whose data directory is
 * RUMOR_POWER_ROOT. It records, under RUMOR_POWER_STATE, what a power cut
 * would keep; tests.support.power_loss applies the cut offline.
 *
 * The live directory is the volatile state: nothing in it is durable unless a
 * sync made it so. The shim only interposes the calls that make things
 * durable, fsync and fdatasync:
 *   - on a regular file: its current contents become durable (copied to
 *     state/content/<inode>);
 *   - on a directory: its current entries (creates, renames, links, unlinks)
 *     become durable (listing written to state/dirs/L<hex of relative path>).
 * Every inode named by the durable state is hard-linked into state/links, so
 * its number is never reused during the run. sync_file_range, O_SYNC writes,
 * msync, sync and syncfs are not interposed: they count as not durable, so a
 * missed sync path drops data (fails the test) instead of keeping it.
 * Each capture appends one byte to state/captures (tests check it grows).
 * With RUMOR_POWER_KILL_AT=N the process SIGKILLs itself right after its Nth
 * capture: a cut between two syncs, e.g. after a new file's fsync and before
 * its directory's, wherever that falls (in recovery, in a flush, in a write).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static char root[4096];
static char state[4096];
static int active;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long counter;
static long kill_at;
static long captured;

__attribute__((constructor)) static void init(void) {
    real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    const char *r = getenv("RUMOR_POWER_ROOT");
    const char *s = getenv("RUMOR_POWER_STATE");
    const char *k = getenv("RUMOR_POWER_KILL_AT");
    if (r && s && realpath(r, root) && realpath(s, state)) active = 1;
    if (k) kill_at = atol(k);
}

static void tmp_path(char *out, size_t size) {
    snprintf(out, size, "%s/tmp/%d.%ld.%lu", state, getpid(), (long)syscall(SYS_gettid),
             ++counter);
}

static int copy_file(const char *from, const char *to) {
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) { close(in); return -1; }
    char buf[65536];
    ssize_t n;
    int status = 0;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        char *p = buf;
        while (n > 0) {
            ssize_t w = write(out, p, (size_t)n);
            if (w < 0) { status = -1; break; }
            p += w; n -= w;
        }
        if (status) break;
    }
    if (n < 0) status = -1;
    close(in);
    close(out);
    return status;
}

/* Hard-link inode `ino` (reachable as dirfd/name) into state/links/<ino>. */
static int pin(int dirfd, const char *name, int flags, ino_t ino) {
    char link_path[4200];
    struct stat st;
    snprintf(link_path, sizeof link_path, "%s/links/%lu", state, (unsigned long)ino);
    if (stat(link_path, &st) == 0 && st.st_ino == ino) return 0;
    if (linkat(dirfd, name, AT_FDCWD, link_path, flags) != 0 && errno != EEXIST) return -1;
    if (stat(link_path, &st) == 0 && st.st_ino == ino) return 0;
    unlink(link_path); /* the name moved to another inode meanwhile */
    return -1;
}

static void append_listing(FILE *out, int dirfd, const char *name) {
    struct stat st;
    for (int attempt = 0; attempt < 3; attempt++) {
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return; /* gone */
        if (S_ISDIR(st.st_mode)) { fprintf(out, "d 0 %s\n", name); return; }
        if (!S_ISREG(st.st_mode)) return;
        if (pin(dirfd, name, 0, st.st_ino) == 0) {
            fprintf(out, "f %lu %s\n", (unsigned long)st.st_ino, name);
            return;
        }
    }
}

static void capture_dir(const char *path, const char *rel) {
    char tmp[4200], final[4200 + 8192];
    int dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) return;
    DIR *dir = fdopendir(dup(dirfd));
    tmp_path(tmp, sizeof tmp);
    FILE *out = dir ? fopen(tmp, "we") : NULL;
    if (out) {
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, "..")) continue;
            append_listing(out, dirfd, entry->d_name);
        }
        fclose(out);
        int n = snprintf(final, sizeof final, "%s/dirs/L", state);
        for (const unsigned char *c = (const unsigned char *)rel; *c; c++)
            n += snprintf(final + n, sizeof final - (size_t)n, "%02x", *c);
        rename(tmp, final);
    }
    if (dir) closedir(dir);
    close(dirfd);
}

static void capture_file(int fd, const struct stat *st) {
    char proc[64], link_path[4200], tmp[4200], final[4200];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (pin(AT_FDCWD, proc, AT_SYMLINK_FOLLOW, st->st_ino) != 0) return; /* unlinked */
    snprintf(link_path, sizeof link_path, "%s/links/%lu", state, (unsigned long)st->st_ino);
    snprintf(final, sizeof final, "%s/content/%lu", state, (unsigned long)st->st_ino);
    tmp_path(tmp, sizeof tmp);
    if (copy_file(link_path, tmp) == 0) rename(tmp, final);
    else unlink(tmp);
}

static void capture(int fd) {
    if (!active) return;
    char proc[64], path[4096];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(proc, path, sizeof path - 1);
    if (len <= 0) return;
    path[len] = '\0';
    size_t root_len = strlen(root);
    if (strncmp(path, root, root_len) != 0 || (path[root_len] != '\0' && path[root_len] != '/'))
        return;
    const char *rel = path + root_len + (path[root_len] == '/');
    struct stat st;
    if (fstat(fd, &st) != 0) return;
    int saved = errno;
    pthread_mutex_lock(&lock);
    if (S_ISDIR(st.st_mode)) capture_dir(path, rel);
    else if (S_ISREG(st.st_mode)) capture_file(fd, &st);
    char mark[4200];
    snprintf(mark, sizeof mark, "%s/captures", state);
    int m = open(mark, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (m >= 0) { (void)!write(m, S_ISDIR(st.st_mode) ? "d" : "f", 1); close(m); }
    if (++captured == kill_at) kill(getpid(), SIGKILL);
    pthread_mutex_unlock(&lock);
    errno = saved;
}

int fsync(int fd) {
    capture(fd);
    return real_fsync(fd);
}

int fdatasync(int fd) {
    capture(fd);
    return real_fdatasync(fd);
}
