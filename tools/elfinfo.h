/*
 * elfinfo.h - what `secshim run` needs to know about a program before it
 * trusts LD_PRELOAD to protect it (docs/design.md, "Process life").
 */
#ifndef SECSHIM_ELFINFO_H
#define SECSHIM_ELFINFO_H

#include <stdbool.h>
#include <stddef.h>

struct elf_info {
    bool dynamic; /* has a PT_INTERP: the dynamic linker loads it, and with
                     it LD_PRELOAD libraries */
    bool go;      /* built by the Go toolchain: its network I/O makes raw
                     system calls that no preloaded library sees */
};

/*
 * Inspects the ELF64 file at path. Returns 0 with *info filled, or -1 with
 * a sentence in why (not an ELF file, unreadable, truncated).
 */
int elf_inspect(const char *path, struct elf_info *info, char *why,
                size_t why_len);

#endif
