/*
 * Task context switch for aarch64 (AAPCS64).
 *
 * Saves what a callee must preserve: x19-x28, the frame pointer x29, the
 * link register x30 and the low halves of v8-v15 (d8-d15), plus sp. No
 * signal mask, no syscall.
 *
 *   void weft__ctx_switch(void **save_sp, void *load_sp);
 *   void *weft__ctx_init(char *stack_top, void *task);
 */
    .text

    .globl weft__ctx_switch
    .type weft__ctx_switch, %function
    .p2align 4
weft__ctx_switch:
    .cfi_startproc
    sub sp, sp, #160
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mov x9, sp
    str x9, [x0]
    mov sp, x1
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #160
    ret
    .cfi_endproc
    .size weft__ctx_switch, .-weft__ctx_switch

/* Builds the frame the first switch pops: x19 = task, x30 = weft__ctx_start,
 * everything else zero. */
    .globl weft__ctx_init
    .type weft__ctx_init, %function
    .p2align 4
weft__ctx_init:
    .cfi_startproc
    and x0, x0, #~15
    sub x0, x0, #160
    mov x2, x0
    mov x3, #160
1:  stp xzr, xzr, [x2], #16
    subs x3, x3, #16
    b.ne 1b
    str x1, [x0, #0]            /* x19 = task */
    adr x2, weft__ctx_start
    str x2, [x0, #88]           /* x30 */
    ret
    .cfi_endproc
    .size weft__ctx_init, .-weft__ctx_init

    .type weft__ctx_start, %function
    .p2align 4
weft__ctx_start:
    .cfi_startproc
    .cfi_undefined x30          /* outermost frame: unwinders stop here */
    mov x0, x19
    mov x29, #0
    bl weft__task_entry
    brk #0                      /* weft__task_entry never returns */
    .cfi_endproc
    .size weft__ctx_start, .-weft__ctx_start

    .section .note.GNU-stack, "", %progbits
