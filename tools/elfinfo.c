/* elfinfo.c - see elfinfo.h. Reads only the headers, with pread. */
#include "elfinfo.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Sections the Go linker always writes (the build ID note, and the build
 * information that `go version -m` reads). */
static const char *const go_sections[] = {".note.go.buildid",
                                          ".go.buildinfo"};

static bool read_at(int fd, void *buf, size_t len, off_t off)
{
    return pread(fd, buf, len, off) == (ssize_t)len;
}

static bool has_interpreter(int fd, const Elf64_Ehdr *eh)
{
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        Elf64_Phdr ph;
        if (!read_at(fd, &ph, sizeof(ph),
                     (off_t)(eh->e_phoff + (Elf64_Off)i * eh->e_phentsize)))
            return false;
        if (ph.p_type == PT_INTERP)
            return true;
    }
    return false;
}

static bool is_go_section(const char *name)
{
    for (size_t i = 0; i < sizeof(go_sections) / sizeof(go_sections[0]); i++)
        if (strcmp(name, go_sections[i]) == 0)
            return true;
    return false;
}

static bool has_go_section(int fd, const Elf64_Ehdr *eh)
{
    Elf64_Shdr names;
    if (eh->e_shnum == 0 || eh->e_shstrndx >= eh->e_shnum ||
        !read_at(fd, &names, sizeof(names),
                 (off_t)(eh->e_shoff +
                         (Elf64_Off)eh->e_shstrndx * eh->e_shentsize)))
        return false;
    char *strtab = malloc(names.sh_size + 1);
    if (strtab == NULL ||
        !read_at(fd, strtab, names.sh_size, (off_t)names.sh_offset)) {
        free(strtab);
        return false;
    }
    strtab[names.sh_size] = '\0';
    bool found = false;
    for (unsigned i = 0; i < eh->e_shnum && !found; i++) {
        Elf64_Shdr sh;
        if (!read_at(fd, &sh, sizeof(sh),
                     (off_t)(eh->e_shoff + (Elf64_Off)i * eh->e_shentsize)))
            break;
        found = sh.sh_name < names.sh_size && is_go_section(strtab + sh.sh_name);
    }
    free(strtab);
    return found;
}

int elf_inspect(const char *path, struct elf_info *info, char *why,
                size_t why_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, why_len, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    Elf64_Ehdr eh;
    int rc = -1;
    if (!read_at(fd, &eh, sizeof(eh), 0) ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
        snprintf(why, why_len, "%s is not an ELF program", path);
    else if (eh.e_ident[EI_CLASS] != ELFCLASS64)
        snprintf(why, why_len, "%s is not a 64-bit ELF program", path);
    else {
        info->dynamic = has_interpreter(fd, &eh);
        info->go = has_go_section(fd, &eh);
        rc = 0;
    }
    close(fd);
    return rc;
}
