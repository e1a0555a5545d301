//! pvdispl-backend: headless dom0 displif backend.
fn main() {
    eprintln!("pvdispl-backend: not implemented yet");
    std::process::exit(2);
}
