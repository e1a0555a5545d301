//! pvdispl-harness: boots real Xen + dom0 in QEMU and runs scenarios.
fn main() {
    eprintln!("pvdispl-harness: not implemented yet");
    std::process::exit(2);
}
