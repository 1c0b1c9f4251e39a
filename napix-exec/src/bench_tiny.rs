//! The tiny program: a static x86-64 ELF of 185 bytes whose only instructions are
//! `mov eax, 60; xor edi, edi; syscall` (exit(0)).
//!
//! Spawning `/bin/true` costs about 800 us whatever the spawn method, because the dynamic loader
//! dominates; this program has no loader, no libc and one page, so what is left is the spawn
//! machinery itself. It is written to a temporary file and deleted when dropped.
//!
//! This file is shared with `benches/` (through `#[path]`), so it depends on std only.
//!
//! ETXTBSY: execve fails with "text file busy" while any process holds the file open for writing,
//! and a fork taken while our write fd is open would inherit it. The file is therefore written and
//! closed before the caller starts any thread that spawns.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// Load address of the single PT_LOAD segment (above the usual mmap_min_addr of 64 KiB).
const BASE: u64 = 0x40_0000;
/// Size of the ELF64 file header.
const EHDR: usize = 64;
/// Size of one ELF64 program header.
const PHDR: usize = 56;
/// Program headers: PT_LOAD (the code) and PT_GNU_STACK (so that the stack is not executable).
const PHNUM: usize = 2;
/// `mov eax, 60` (SYS_exit); `xor edi, edi` (status 0); `syscall`.
const CODE: [u8; 9] = [0xb8, 0x3c, 0x00, 0x00, 0x00, 0x31, 0xff, 0x0f, 0x05];

/// The program's size in bytes.
pub const TINY_SIZE: usize = EHDR + PHNUM * PHDR + CODE.len();

/// The bytes of the tiny static ELF.
pub fn tiny_elf() -> Vec<u8> {
    let mut v = Vec::with_capacity(TINY_SIZE);
    // e_ident: magic, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_NONE, padding.
    v.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    v.extend_from_slice(&0x3eu16.to_le_bytes()); // e_machine: EM_X86_64
    v.extend_from_slice(&1u32.to_le_bytes()); // e_version
    v.extend_from_slice(&(BASE + (EHDR + PHNUM * PHDR) as u64).to_le_bytes()); // e_entry
    v.extend_from_slice(&(EHDR as u64).to_le_bytes()); // e_phoff
    v.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
    v.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    v.extend_from_slice(&(EHDR as u16).to_le_bytes()); // e_ehsize
    v.extend_from_slice(&(PHDR as u16).to_le_bytes()); // e_phentsize
    v.extend_from_slice(&(PHNUM as u16).to_le_bytes()); // e_phnum
    v.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    debug_assert_eq!(v.len(), EHDR);
    // PT_LOAD, R+X: the whole file (headers and code) mapped at BASE.
    v.extend_from_slice(&1u32.to_le_bytes()); // p_type
    v.extend_from_slice(&5u32.to_le_bytes()); // p_flags: PF_R | PF_X
    v.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    v.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    v.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    v.extend_from_slice(&(TINY_SIZE as u64).to_le_bytes()); // p_filesz
    v.extend_from_slice(&(TINY_SIZE as u64).to_le_bytes()); // p_memsz
    v.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    // PT_GNU_STACK, R+W.
    v.extend_from_slice(&0x6474_e551u32.to_le_bytes()); // p_type
    v.extend_from_slice(&6u32.to_le_bytes()); // p_flags: PF_R | PF_W
    v.extend_from_slice(&[0; 40]); // offset, vaddr, paddr, filesz, memsz
    v.extend_from_slice(&16u64.to_le_bytes()); // p_align
    v.extend_from_slice(&CODE);
    debug_assert_eq!(v.len(), TINY_SIZE);
    v
}

/// The tiny program if it can be written and run here, else `/bin/true` (with a note on stderr).
/// Keep the returned `TinyProgram` alive while the path is used: it deletes the file on drop.
#[allow(dead_code)] // used by benches/ (which include this file), not by the command line
pub fn tiny_or_bin_true() -> (Option<TinyProgram>, PathBuf) {
    match TinyProgram::create() {
        Ok(t) => {
            let path = t.path().to_path_buf();
            (Some(t), path)
        }
        Err(e) => {
            eprintln!("tiny program unavailable ({e}); measuring /bin/true");
            (None, PathBuf::from("/bin/true"))
        }
    }
}

/// The tiny program on disk; deleted on drop.
pub struct TinyProgram {
    path: PathBuf,
}

impl TinyProgram {
    /// Writes the program, makes it executable, closes it and checks with `std::process::Command`
    /// that it exits 0. Tries the temporary directory first, then the directory of the running
    /// executable (in case the temporary directory is mounted `noexec`).
    ///
    /// Call it before starting any thread that spawns (see ETXTBSY in the module docs).
    pub fn create() -> io::Result<TinyProgram> {
        if !cfg!(all(target_arch = "x86_64", target_os = "linux")) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the tiny program is an x86-64 Linux ELF",
            ));
        }
        let mut dirs = vec![std::env::temp_dir()];
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
        {
            dirs.push(dir);
        }
        let mut last = io::Error::other("no directory to write the tiny program in");
        for dir in dirs {
            match Self::create_in(&dir) {
                Ok(tiny) => return Ok(tiny),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn create_in(dir: &Path) -> io::Result<TinyProgram> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = dir.join(format!("napix-tiny-{}-{nanos}", std::process::id()));
        {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o755)
                .open(&path)?;
            // From here on the file exists: dropping `tiny` removes it on every error path.
            let tiny = TinyProgram { path };
            file.write_all(&tiny_elf())?;
            drop(file); // closed before anything execs it (ETXTBSY)
            // The umask may have cleared execute bits from the mode given to open.
            fs::set_permissions(&tiny.path, Permissions::from_mode(0o755))?;
            let status = Command::new(&tiny.path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            if !status.success() {
                return Err(io::Error::other(format!(
                    "{} exited with {status}, not 0",
                    tiny.path.display()
                )));
            }
            Ok(tiny)
        }
    }

    /// Where the program lives.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TinyProgram {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
