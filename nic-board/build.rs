//! Links each bare-metal image with its memory map: `board` with memory-board.x,
//! `qemu-selftest` with memory-qemu.x, both through riscv-rt's link.x. Host builds (the
//! stub binaries) get nothing.
fn main() {
    println!("cargo:rerun-if-changed=memory-board.x");
    println!("cargo:rerun-if-changed=memory-qemu.x");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    for (bin, map) in [
        ("board", "memory-board.x"),
        ("qemu-selftest", "memory-qemu.x"),
    ] {
        println!("cargo:rustc-link-arg-bin={bin}=-T{dir}/{map}");
        println!("cargo:rustc-link-arg-bin={bin}=-Tlink.x");
    }
    // defmt's section layout, when the board logs through defmt.
    if std::env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        println!("cargo:rustc-link-arg-bin=board=-Tdefmt.x");
    }
}
