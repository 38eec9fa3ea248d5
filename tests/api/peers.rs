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

/// tests/support/smtp_tls_peer.py with a fresh certificate.
pub struct TlsPeer {
    child: Child,
    pub port: u16,
    dir: std::path::PathBuf,
    /// The test CA that issued the peer's certificate, if one did.
    pub ca_file: Option<PathBuf>,
}

/// Whose certificate the peer presents.
pub enum Certificate {
    /// Self-signed, for mx.tls.test.
    SelfSigned,
    /// Issued by a fresh test CA, with this subjectAltName (`IP:127.0.0.1`).
    Issued(&'static str),
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let done = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(done.success(), "openssl {args:?}");
}

/// Writes cert.pem and key.pem into `dir`; returns the CA file, if any.
fn make_certificate(dir: &std::path::Path, certificate: &Certificate) -> Option<PathBuf> {
    const EC: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    match certificate {
        Certificate::SelfSigned => {
            openssl(
                dir,
                &[
                    &["req", "-x509", "-nodes", "-days", "1"],
                    &EC[..],
                    &[
                        "-subj",
                        "/CN=mx.tls.test",
                        "-keyout",
                        "key.pem",
                        "-out",
                        "cert.pem",
                    ],
                ]
                .concat(),
            );
            None
        }
        Certificate::Issued(san) => {
            openssl(
                dir,
                &[
                    &["req", "-x509", "-nodes", "-days", "1"],
                    &EC[..],
                    &["-subj", "/CN=Tern test CA", "-keyout", "ca.key", "-out", "ca.pem"],
                ]
                .concat(),
            );
            openssl(
                dir,
                &[
                    &["req", "-new", "-nodes"],
                    &EC[..],
                    &["-subj", "/CN=tern-peer", "-keyout", "key.pem", "-out", "peer.csr"],
                ]
                .concat(),
            );
            let extensions = format!(
                "subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
            );
            std::fs::write(dir.join("peer.ext"), extensions).unwrap();
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    "peer.csr",
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "1",
                    "-extfile",
                    "peer.ext",
                    "-out",
                    "cert.pem",
                ],
            );
            Some(dir.join("ca.pem"))
        }
    }
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
        TlsPeer::start_with(port, mode, Certificate::SelfSigned)
    }

    /// `mode` as in the script: "", "broken", "small", "refuse" (454 to
    /// STARTTLS) or "stall" (220 to STARTTLS, then silence).
    pub fn start_with(port: u16, mode: &str, certificate: Certificate) -> TlsPeer {
        let dir = std::env::temp_dir().join(format!("tern-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_file = make_certificate(&dir, &certificate);
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
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
        TlsPeer {
            child,
            port,
            dir,
            ca_file,
        }
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
