//! The SMTP peers tests deliver to: Postfix's smtp-sink, and an aiosmtpd
//! server (tests/support/smtp_tls_peer.py) for STARTTLS and per-recipient
//! replies.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::python;

/// smtp-sink with extra flags; dumps each transaction into `dir`.
pub struct Sink {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl Sink {
    pub fn start(flags: &[&str]) -> Sink {
        Sink::start_at("127.0.0.1", crate::helpers::free_port(), flags)
    }

    /// On another loopback address, so that sinks can share a port (MX
    /// hosts differ by address, the SMTP port is one setting).
    pub fn start_at(ip: &str, port: u16, flags: &[&str]) -> Sink {
        let dir = std::env::temp_dir().join(format!("tern-sink-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chmod").arg("777").arg(&dir).status();
        let child = Command::new("smtp-sink")
            .args(["-u", "nobody", "-d"])
            .arg(format!("{}/%M.", dir.display()))
            .args(flags)
            .arg(format!("{ip}:{port}"))
            .arg("10")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("smtp-sink (scripts/test installs postfix)");
        std::thread::sleep(Duration::from_millis(300));
        Sink { child, port, dir }
    }

    pub fn dumps(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        out.sort();
        out
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// tests/support/smtp_tls_peer.py with a fresh self-signed certificate.
pub struct TlsPeer {
    child: Child,
    pub port: u16,
    dir: std::path::PathBuf,
}

impl TlsPeer {
    pub fn start() -> TlsPeer {
        TlsPeer::start_on(crate::helpers::free_port(), "")
    }

    /// Offers STARTTLS, but no handshake with it succeeds.
    pub fn start_broken() -> TlsPeer {
        TlsPeer::start_on(crate::helpers::free_port(), "broken")
    }

    /// Announces `SIZE 2000`.
    pub fn start_small() -> TlsPeer {
        TlsPeer::start_on(crate::helpers::free_port(), "small")
    }

    /// `mode`: "" (plain), "broken" or "small" (see the script).
    pub fn start_on(port: u16, mode: &str) -> TlsPeer {
        let dir = std::env::temp_dir().join(format!("tern-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let made = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=mx.tls.test",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl");
        assert!(made.success());
        let mut child = Command::new(python())
            .arg("tests/support/smtp_tls_peer.py")
            .arg(port.to_string())
            .arg(&cert)
            .arg(&key)
            .arg(&dir)
            .args((!mode.is_empty()).then_some(mode))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python with aiosmtpd (scripts/test installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        TlsPeer { child, port, dir }
    }

    pub fn messages(&self) -> Vec<serde_json::Value> {
        std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| {
                let path = e.unwrap().path();
                (path.extension().is_some_and(|x| x == "json"))
                    .then(|| serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap())
            })
            .collect()
    }
}

impl Drop for TlsPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
