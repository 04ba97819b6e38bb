//! Given code shared by the programs in `src/bin/`. You do not need to edit it.

// What the programs of every lab share is written once, in the course's
// crate `lab-program` (crates/lab-program); this file keeps what is
// specific to this lab.
pub use lab_program::{hold, main_with, me, numbers, parent};

use anyhow::{Context, Result};

/// Makes every fork this process attempts from now on fail with EAGAIN,
/// the error fork gives when the process limit is reached (RLIMIT_NPROC,
/// or a pids cgroup). Children already started are not affected.
///
/// Root is exempt from RLIMIT_NPROC, so the limit cannot be lowered for
/// everybody; a seccomp filter can, for root and ordinary users alike: it
/// answers `clone`, `clone3`, `fork` and `vfork` with EAGAIN, and lets
/// every other system call through.
pub fn refuse_forks() -> Result<()> {
    // Classic BPF, as seccomp runs it: load the system call number, compare
    // it with each of ours, answer EAGAIN on a match, allow otherwise.
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    let insn = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let mut calls: Vec<u32> = vec![libc::SYS_clone as u32, libc::SYS_clone3 as u32];
    #[cfg(target_arch = "x86_64")]
    calls.extend([libc::SYS_fork as u32, libc::SYS_vfork as u32]);
    // seccomp_data.nr is the first field, at offset 0.
    let mut filter = vec![insn(LD_W_ABS, 0, 0, 0)];
    let n = calls.len();
    for (i, nr) in calls.iter().enumerate() {
        // On a match jump to the EAGAIN answer, past the other compares
        // and the "allow".
        filter.push(insn(JEQ_K, (n - i) as u8, 0, *nr));
    }
    filter.push(insn(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW));
    filter.push(insn(
        RET_K,
        0,
        0,
        libc::SECCOMP_RET_ERRNO | libc::EAGAIN as u32,
    ));
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: prctl with documented arguments; `program` and `filter` live
    // until the call returns (the kernel copies the filter).
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error()).context("prctl(PR_SET_NO_NEW_PRIVS)");
        }
        if libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &program as *const libc::sock_fprog,
        ) != 0
        {
            return Err(std::io::Error::last_os_error()).context("prctl(PR_SET_SECCOMP)");
        }
    }
    Ok(())
}
