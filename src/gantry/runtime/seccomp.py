"""The default seccomp filter: Docker's policy, rendered for the capabilities a process has.

Like Docker's default profile it is an allowlist: anything not named fails with ``EPERM``.
Syscalls that manage the kernel itself (modules, clocks, reboot, accounting, namespaces
and mounts) are allowed only when the matching capability is granted, because a container
that was given ``CAP_SYS_ADMIN`` is expected to use it. ``clone`` may not create
namespaces without ``CAP_SYS_ADMIN``, and ``clone3`` (whose flags a filter cannot inspect)
answers ``ENOSYS`` so that libc falls back to ``clone``. ``socket(AF_VSOCK)`` is refused.

:func:`default_profile` returns the ``linux.seccomp`` object of an OCI runtime spec.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

ENOSYS = 38
EPERM = 1
AF_VSOCK = 40
#: CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET: clone may set none of these.
CLONE_NAMESPACE_FLAGS = 0x7E020000
#: personality() values a container may ask for: PER_LINUX, PER_LINUX32, UNAME26 (+32), query.
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

# Grouped by what they are for; names unknown to the host's libseccomp are ignored by runc.
_FILES = """
access faccessat faccessat2 open openat openat2 creat close close_range read readv pread64
preadv preadv2 write writev pwrite64 pwritev pwritev2 lseek _llseek dup dup2 dup3 fcntl
fcntl64 flock fsync fdatasync sync syncfs sync_file_range fallocate ftruncate ftruncate64
truncate truncate64 fadvise64 fadvise64_64 readahead copy_file_range sendfile sendfile64
splice tee vmsplice stat stat64 lstat lstat64 fstat fstat64 fstatat64 newfstatat statx
statfs statfs64 fstatfs fstatfs64 getdents getdents64 getcwd chdir fchdir mkdir mkdirat
mknod mknodat rmdir rename renameat renameat2 link linkat symlink symlinkat unlink unlinkat
readlink readlinkat chmod fchmod fchmodat fchmodat2 chown chown32 fchown fchown32 fchownat
lchown lchown32 umask utime utimes utimensat utimensat_time64 futimesat getxattr lgetxattr
fgetxattr setxattr lsetxattr fsetxattr listxattr llistxattr flistxattr removexattr
lremovexattr fremovexattr name_to_handle_at inotify_init inotify_init1 inotify_add_watch
inotify_rm_watch fanotify_mark memfd_create memfd_secret
"""
_MEMORY = """
brk mmap mmap2 munmap mremap mprotect madvise mincore msync mlock mlock2 mlockall munlock
munlockall remap_file_pages membarrier pkey_alloc pkey_free pkey_mprotect process_mrelease
"""
_PROCESSES = """
execve execveat exit exit_group fork vfork wait4 waitid waitpid kill tkill tgkill
pidfd_open pidfd_send_signal getpid getppid gettid getpgid getpgrp setpgid getsid setsid
getuid getuid32 geteuid geteuid32 getgid getgid32 getegid getegid32 getresuid getresuid32
getresgid getresgid32 getgroups getgroups32 setuid setuid32 setgid setgid32 setreuid
setreuid32 setregid setregid32 setresuid setresuid32 setresgid setresgid32 setfsuid
setfsuid32 setfsgid setfsgid32 setgroups setgroups32 capget capset prctl getrlimit
ugetrlimit setrlimit prlimit64 getrusage getpriority setpriority ioprio_get ioprio_set
sched_yield sched_getaffinity sched_setaffinity sched_getattr sched_setattr sched_getparam
sched_setparam sched_getscheduler sched_setscheduler sched_get_priority_max
sched_get_priority_min sched_rr_get_interval sched_rr_get_interval_time64 set_tid_address
set_robust_list get_robust_list get_thread_area set_thread_area rseq futex futex_time64
futex_waitv futex_wait futex_wake futex_requeue restart_syscall seccomp getcpu uname sysinfo
times landlock_add_rule landlock_create_ruleset landlock_restrict_self
"""
_SIGNALS_TIME = """
rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sigaltstack sigprocmask sigreturn
signalfd signalfd4 pause alarm nanosleep clock_nanosleep clock_nanosleep_time64
clock_gettime clock_gettime64 clock_getres clock_getres_time64 gettimeofday time
getitimer setitimer timer_create timer_delete timer_getoverrun timer_gettime
timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
timerfd_gettime64 timerfd_settime timerfd_settime64 adjtimex clock_adjtime clock_adjtime64
"""
_IO_EVENTS = """
ioctl poll ppoll ppoll_time64 select _newselect pselect6 pselect6_time64 epoll_create
epoll_create1 epoll_ctl epoll_ctl_old epoll_wait epoll_wait_old epoll_pwait epoll_pwait2
eventfd eventfd2 pipe pipe2 io_setup io_destroy io_submit io_cancel io_getevents
io_pgetevents io_pgetevents_time64 io_uring_setup io_uring_enter io_uring_register
"""
_NETWORK_IPC = """
accept accept4 bind connect listen shutdown getsockname getpeername getsockopt setsockopt
socketpair socketcall send sendto sendmsg sendmmsg recv recvfrom recvmsg recvmmsg
recvmmsg_time64 ipc msgget msgctl msgsnd msgrcv semget semctl semop semtimedop
semtimedop_time64 shmget shmctl shmat shmdt mq_open mq_unlink mq_getsetattr mq_notify
mq_timedsend mq_timedsend_time64 mq_timedreceive mq_timedreceive_time64
"""

ALWAYS_ALLOWED: tuple[str, ...] = tuple(
    sorted(
        set(
            " ".join((_FILES, _MEMORY, _PROCESSES, _SIGNALS_TIME, _IO_EVENTS, _NETWORK_IPC)).split()
        )
    )
)

#: Syscalls a capability unlocks (the capability's purpose, in syscall form).
BY_CAPABILITY: dict[str, tuple[str, ...]] = {
    "CAP_SYS_ADMIN": tuple(
        [
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ]
    ),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_CHROOT": ("chroot",),
    "CAP_SYS_MODULE": ("init_module", "finit_module", "delete_module"),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_PTRACE": (
        "kcmp",
        "pidfd_getfd",
        "process_madvise",
        "process_vm_readv",
        "process_vm_writev",
        "ptrace",
    ),
    "CAP_SYS_RAWIO": ("iopl", "ioperm"),
    "CAP_SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_settime64"),
    "CAP_SYS_TTY_CONFIG": ("vhangup",),
    "CAP_SYS_NICE": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
    "CAP_SYSLOG": ("syslog",),
    "CAP_BPF": ("bpf",),
    "CAP_PERFMON": ("perf_event_open",),
    "CAP_DAC_READ_SEARCH": ("open_by_handle_at",),
}

#: Reading another process's memory is harmless since kernel 4.8 (ptrace checks seccomp).
PTRACE_SAFE = ("ptrace", "process_vm_readv", "process_vm_writev")

_ARCHES: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "x86_64": (
        ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        ("arch_prctl", "modify_ldt"),
    ),
    "aarch64": (
        ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        (
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ),
    ),
    "ppc64le": (["SCMP_ARCH_PPC64LE"], ("sync_file_range2", "swapcontext")),
    "s390x": (
        ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
        ("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"),
    ),
    "riscv64": (["SCMP_ARCH_RISCV64"], ("riscv_flush_icache",)),
}


def _kernel_at_least(major: int, minor: int) -> bool:
    try:
        parts = os.uname().release.split(".")
        return (int(parts[0]), int(parts[1].split("-")[0])) >= (major, minor)
    except (ValueError, IndexError):
        return False


def default_profile(capabilities: Iterable[str], *, machine: str | None = None) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` section for a process with these bounding capabilities."""
    caps = set(capabilities)
    machine = machine or os.uname().machine  # platform's, without importing it
    arches, arch_calls = _ARCHES.get(machine, ([], ()))
    allowed = set(ALWAYS_ALLOWED) | set(arch_calls)
    if _kernel_at_least(4, 8):
        allowed |= set(PTRACE_SAFE)
    for cap, calls in BY_CAPABILITY.items():
        if cap in caps:
            allowed |= set(calls)
    syscalls: list[dict[str, Any]] = [{"names": sorted(allowed), "action": "SCMP_ACT_ALLOW"}]
    syscalls.append(
        {
            "names": ["socket"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}],
        }
    )
    for value in PERSONALITIES:
        syscalls.append(
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": value, "op": "SCMP_CMP_EQ"}],
            }
        )
    if "CAP_SYS_ADMIN" not in caps:
        # s390 swaps clone's first two arguments.
        flags_arg = 1 if machine == "s390x" else 0
        syscalls.append(
            {
                "names": ["clone"],
                "action": "SCMP_ACT_ALLOW",
                "args": [
                    {
                        "index": flags_arg,
                        "value": CLONE_NAMESPACE_FLAGS,
                        "valueTwo": 0,
                        "op": "SCMP_CMP_MASKED_EQ",
                    }
                ],
            }
        )
        syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS})
    profile: dict[str, Any] = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "syscalls": syscalls,
    }
    if arches:
        profile["architectures"] = arches
    return profile
