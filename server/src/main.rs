//! `iphoto-server`: parses configuration and hands over to the library.

fn main() {
    eprintln!("iphoto-server: the HTTP server is being built; see README.md");
    std::process::exit(2);
}
