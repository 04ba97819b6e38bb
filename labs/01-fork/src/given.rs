//! Given code shared by the programs in `src/bin/`. You do not need to edit it.

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

/// Blocks until standard input reaches end of file.
///
/// The checker uses this as a gate: the programs call `hold()` where it wants
/// to look at the processes in `/proc` while they are still alive, and it
/// closes their standard input when it has seen enough. Run by hand, a program
/// waits here until you press Ctrl-D.
pub fn hold() {
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin().lock();
    loop {
        match stdin.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

/// The command-line arguments after the program name, parsed as numbers.
pub fn numbers<T: std::str::FromStr>(usage: &str) -> Result<Vec<T>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        bail!("usage: {usage}");
    }
    args.iter()
        .map(|a| {
            a.parse::<T>()
                .ok()
                .with_context(|| format!("not a number: {a:?}\nusage: {usage}"))
        })
        .collect()
}

/// Runs a program's body, printing its error (with context) on failure.
pub fn main_with(body: impl FnOnce() -> Result<()>) -> ExitCode {
    let result = body();
    let _ = std::io::stdout().flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// This process's id.
pub fn me() -> i32 {
    nix::unistd::getpid().as_raw()
}

/// This process's parent's id.
pub fn parent() -> i32 {
    nix::unistd::getppid().as_raw()
}

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
