/*
 * A glibc 2.28-like <unistd.h> for `make check-old-headers`
 * (docs/testing.md): the system header, with what glibc 2.34 added for
 * the shim's purposes taken out again: close_range and closefrom are not
 * declared (their declarations get other names) and CLOSE_RANGE_* are not
 * defined. Found first on the include path, so every <unistd.h>,
 * including those inside other system headers, comes through here.
 */
/* Once only, like the real header: a second pass would take away what
 * the shim's compat_libc.h defined after the first. */
#ifndef SECSHIM_OLDLIBC_UNISTD_H
#define SECSHIM_OLDLIBC_UNISTD_H
#define close_range secshim_oldlibc_hidden_close_range
#define closefrom secshim_oldlibc_hidden_closefrom
#include_next <unistd.h>
#undef close_range
#undef closefrom
#undef CLOSE_RANGE_UNSHARE
#undef CLOSE_RANGE_CLOEXEC
#endif
