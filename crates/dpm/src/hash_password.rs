//! `dpm hash-password [--plugin P]`: reads a password from standard input and prints the
//! `password_hash` a proxy-held user needs (the `authentication_string` MySQL or MariaDB
//! would store for it), so startup files never hold plain passwords.
//!
//! The password is one line of standard input (its line ending removed), never an
//! argument, which other users could see in the process list. On a terminal it is
//! prompted for on standard error without echo.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use dpm_auth::Plugin;

/// Options of `dpm hash-password`.
#[derive(clap::Args, Debug)]
pub struct HashPasswordArgs {
    /// Authentication plugin: mysql_native_password, caching_sha2_password or
    /// client_ed25519.
    #[arg(
        long = "plugin",
        value_name = "PLUGIN",
        default_value = "mysql_native_password"
    )]
    plugin: String,
}

/// Exit code of a usage error (unknown plugin, empty or unusable password), as clap's.
const USAGE: u8 = 2;

/// Runs the command: the hash on standard output, one line, exit 0; a one-line error on
/// standard error otherwise (exit 2 for bad input, 1 if standard input cannot be read).
pub fn run(args: &HashPasswordArgs) -> ExitCode {
    let plugin = match Plugin::from_name(&args.plugin) {
        Ok(plugin) => plugin,
        Err(e) => {
            eprintln!("dpm hash-password: {e}");
            return ExitCode::from(USAGE);
        }
    };
    let mut password = match read_password() {
        Ok(password) => password,
        Err(e) => {
            eprintln!("dpm hash-password: cannot read the password from standard input: {e}");
            return ExitCode::from(1);
        }
    };
    let hashed = dpm_auth::hash_password(plugin, &password);
    password.fill(0);
    match hashed {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dpm hash-password: {e}");
            ExitCode::from(USAGE)
        }
    }
}

/// One line of standard input without its `\n` or `\r\n`; prompted for without echo when
/// standard input is a terminal.
fn read_password() -> std::io::Result<Vec<u8>> {
    let stdin = std::io::stdin();
    let _echo_off = if stdin.is_terminal() {
        eprint!("Password: ");
        std::io::stderr().flush()?;
        EchoOff::new()
    } else {
        None
    };
    let mut line = Vec::new();
    stdin.lock().read_until(b'\n', &mut line)?;
    if _echo_off.is_some() {
        eprintln!();
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    Ok(line)
}

/// Terminal echo switched off on standard input until dropped.
struct EchoOff(libc::termios);

impl EchoOff {
    fn new() -> Option<EchoOff> {
        // SAFETY: tcgetattr/tcsetattr only read and write the struct we pass, for fd 0.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut saved) != 0 {
                return None;
            }
            let mut quiet = saved;
            quiet.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet) != 0 {
                return None;
            }
            Some(EchoOff(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `new`.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.0);
        }
    }
}
