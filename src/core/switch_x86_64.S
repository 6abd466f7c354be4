/*
 * Task context switch for x86_64 (System V ABI).
 *
 * Only what the ABI says a callee must preserve is saved: rbx, rbp and
 * r12-r15, plus the stack pointer. No signal mask (that is what makes
 * ucontext a syscall per switch) and no FPU control words: weft tasks
 * share one rounding mode per thread.
 *
 *   void weft__ctx_switch(void **save_sp, void *load_sp);
 *   void *weft__ctx_init(char *stack_top, void *task);
 */
    .text

    .globl weft__ctx_switch
    .type weft__ctx_switch, @function
    .p2align 4
weft__ctx_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size weft__ctx_switch, .-weft__ctx_switch

/* Builds the frame the first switch pops: rbx = task, return address =
 * weft__ctx_start. sp is 8 mod 16 so that the call below sees the ABI's
 * alignment. */
    .globl weft__ctx_init
    .type weft__ctx_init, @function
    .p2align 4
weft__ctx_init:
    .cfi_startproc
    movq %rdi, %rax
    andq $-16, %rax
    subq $72, %rax
    movq $0, 0(%rax)            /* r15 */
    movq $0, 8(%rax)            /* r14 */
    movq $0, 16(%rax)           /* r13 */
    movq $0, 24(%rax)           /* r12 */
    movq %rsi, 32(%rax)         /* rbx = task */
    movq $0, 40(%rax)           /* rbp */
    leaq weft__ctx_start(%rip), %rdx
    movq %rdx, 48(%rax)         /* return address */
    movq $0, 56(%rax)
    movq $0, 64(%rax)
    ret
    .cfi_endproc
    .size weft__ctx_init, .-weft__ctx_init

    .type weft__ctx_start, @function
    .p2align 4
weft__ctx_start:
    .cfi_startproc
    .cfi_undefined rip          /* outermost frame: unwinders stop here */
    movq %rbx, %rdi
    xorl %ebp, %ebp
    call weft__task_entry@PLT
    ud2                         /* weft__task_entry never returns */
    .cfi_endproc
    .size weft__ctx_start, .-weft__ctx_start

    .section .note.GNU-stack, "", @progbits
