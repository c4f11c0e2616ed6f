//! The image that holds an awsvpc task's network namespace (ECS's "pause"
//! container). Nothing can be pulled, so berth makes it: one tiny static
//! program that sleeps forever, imported into Docker as `berth/pause`.
//! The program is a few bytes of machine code in a minimal ELF file.

/// The pause image's reference.
pub const IMAGE: &str = "berth/pause:1";

/// A minimal ELF64 executable: header, one loadable segment, then `code`
/// at virtual address 0x400078.
fn elf(machine: u16, code: &[u8]) -> Vec<u8> {
    const BASE: u64 = 0x400000;
    const HEADERS: u64 = 64 + 56;
    let total = HEADERS + code.len() as u64;
    let mut f = Vec::with_capacity(total as usize);
    // e_ident: magic, 64-bit, little-endian, version 1, System V ABI.
    f.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&2u16.to_le_bytes()); // e_type: EXEC
    f.extend_from_slice(&machine.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes()); // e_version
    f.extend_from_slice(&(BASE + HEADERS).to_le_bytes()); // e_entry
    f.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    f.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    f.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    f.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    f.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    f.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    f.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
                                  // The program header: PT_LOAD of the whole file, read + execute.
    f.extend_from_slice(&1u32.to_le_bytes()); // p_type
    f.extend_from_slice(&5u32.to_le_bytes()); // p_flags: R+X
    f.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    f.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    f.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    f.extend_from_slice(&total.to_le_bytes()); // p_filesz
    f.extend_from_slice(&total.to_le_bytes()); // p_memsz
    f.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    f.extend_from_slice(code);
    f
}

/// The pause program for this machine's architecture.
pub fn program() -> Option<Vec<u8>> {
    if cfg!(target_arch = "x86_64") {
        // loop: mov eax, 34 (pause); syscall; jmp loop
        Some(elf(62, &[0xb8, 34, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7]))
    } else if cfg!(target_arch = "aarch64") {
        // loop: x0..x3 = 0; x8 = 73 (ppoll); svc 0; b loop
        let words: [u32; 7] = [
            0xd2800000, 0xd2800001, 0xd2800002, 0xd2800003, 0xd2800928, 0xd4000001, 0x17fffffa,
        ];
        Some(elf(
            183,
            &words
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect::<Vec<_>>(),
        ))
    } else {
        None
    }
}

/// The image's root filesystem as a tar archive: just `/pause`.
pub fn rootfs_tar() -> std::io::Result<Vec<u8>> {
    let program = program()
        .ok_or_else(|| std::io::Error::other("awsvpc is not supported on this CPU architecture"))?;
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(program.len() as u64);
    h.set_mode(0o755);
    h.set_mtime(0);
    h.set_cksum();
    b.append_data(&mut h, "pause", program.as_slice())?;
    b.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    fn the_program_runs_and_sleeps_until_killed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pause");
        std::fs::write(&path, program().unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut child = std::process::Command::new(&path).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(
            child.try_wait().unwrap().is_none(),
            "pause exited by itself"
        );
        child.kill().unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
    }

    #[test]
    fn the_rootfs_holds_one_executable() {
        let tar = rootfs_tar().unwrap();
        let mut a = tar::Archive::new(tar.as_slice());
        let names: Vec<_> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["pause"]);
    }
}
