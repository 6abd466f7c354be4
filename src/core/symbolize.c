/*
 * Code addresses into names for the stall report: "function (file:line)"
 * through elfutils' libdw where it was built in and the binary has debug
 * information (static functions included), else the dynamic symbol table
 * (dladdr: exported functions only, "module+0xoffset" for the rest). Never
 * in a signal handler; on the watchdog thread, once per stall.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#if WEFT_HAVE_LIBDW
#include <elfutils/libdwfl.h>

/* The DWARF in the binaries themselves only: dwfl_standard_find_debuginfo
 * may load libdebuginfod (and through it libcurl) into the process, and ask
 * a network server, from a stall report. */
static int own_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                         const char *file_name, const char *debuglink_file,
                         GElf_Word debuglink_crc, char **debuginfo_file_name)
{
    (void)mod, (void)userdata, (void)modname, (void)base, (void)file_name;
    (void)debuglink_file, (void)debuglink_crc;
    *debuginfo_file_name = NULL;
    return -1;
}

static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = own_debuginfo,
};

static void *dwfl_open(void)
{
    Dwfl *d = dwfl_begin(&callbacks);
    if (d && (dwfl_linux_proc_report(d, getpid()) != 0 || dwfl_report_end(d, NULL, NULL) != 0)) {
        dwfl_end(d);
        d = NULL;
    }
    return d;
}

/* false when libdw does not know addr */
static bool dw_name(void *dw, uintptr_t addr, char *buf, size_t size)
{
    Dwfl_Module *m = dw ? dwfl_addrmodule(dw, addr) : NULL;
    const char *fn = m ? dwfl_module_addrname(m, addr) : NULL;
    if (!fn)
        return false;
    Dwfl_Line *line = dwfl_module_getsrc(m, addr);
    int lineno = 0;
    const char *file = line ? dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL) : NULL;
    if (file)
        snprintf(buf, size, "%s (%s:%d)", fn, file, lineno);
    else
        snprintf(buf, size, "%s", fn);
    return true;
}
#else
static void *dwfl_open(void) { return NULL; }
static bool dw_name(void *dw, uintptr_t addr, char *buf, size_t size)
{
    (void)dw, (void)addr, (void)buf, (void)size;
    return false;
}
#endif

void weft__symbolize(void *const *frames, int n, void (*line)(void *ctx, int i, const char *s),
                     void *ctx)
{
    void *dw = dwfl_open();
    char buf[512];
    for (int i = 0; i < n; i++) {
        /* a return address: the call is the instruction before it */
        uintptr_t a = (uintptr_t)frames[i] - (i > 0);
        if (!dw_name(dw, a, buf, sizeof buf))
            weft__site_name((void *)a, buf, sizeof buf);
        line(ctx, i, buf);
    }
#if WEFT_HAVE_LIBDW
    if (dw)
        dwfl_end(dw);
#endif
}
