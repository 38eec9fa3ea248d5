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

/// A whole Postfix (config and queue in a temporary directory) as a
/// receiving MTA: `smtpd` on 127.0.0.1 accepts any recipient at `domain`,
/// `virtual(8)` delivers only `kept@domain` and bounces the rest (5.1.1,
/// "User unknown in virtual mailbox table"), and its DSNs go to the
/// envelope sender through `relayhost` (Tern's SMTP server). Stopped on drop.
pub struct Postfix {
    dir: PathBuf,
    master: Child,
}

impl Postfix {
    pub fn start_on(domain: &str, relay: std::net::SocketAddr, port: u16) -> Postfix {
        let dir = std::env::temp_dir().join(format!("tern-postfix-{}", uuid::Uuid::new_v4().simple()));
        let (conf, queue, mail) = (dir.join("conf"), dir.join("queue"), dir.join("mail"));
        for sub in [&conf, &queue, &mail] {
            std::fs::create_dir_all(sub).unwrap();
        }
        let id = |flag: &str| {
            let out = Command::new("id").args([flag, "nobody"]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        let _ = Command::new("chown").arg(&uid).arg(&mail).status();
        let master: String = std::fs::read_to_string("/etc/postfix/master.cf")
            .expect("/etc/postfix/master.cf (scripts/test installs postfix)")
            .lines()
            .map(|line| {
                if line.starts_with("smtp ") && line.contains("inet") {
                    format!("127.0.0.1:{port} inet n - n - - smtpd\n")
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        std::fs::write(conf.join("master.cf"), master).unwrap();
        std::fs::write(
            conf.join("main.cf"),
            format!(
                "compatibility_level = 3.6\nqueue_directory = {queue}\ndata_directory = {queue}/data\n\
                 myhostname = mx.{domain}\nmydestination =\ninet_interfaces = 127.0.0.1\n\
                 inet_protocols = ipv4\nmynetworks = 127.0.0.0/8\nalias_maps =\nalias_database =\n\
                 smtpd_relay_restrictions = permit_mynetworks reject\n\
                 smtpd_reject_unlisted_recipient = no\n\
                 virtual_mailbox_domains = {domain}\nvirtual_mailbox_base = {mail}\n\
                 virtual_mailbox_maps = inline:{{ kept@{domain}=inbox/ }}\n\
                 virtual_uid_maps = static:{uid}\nvirtual_gid_maps = static:{gid}\n\
                 relayhost = [{ip}]:{relay_port}\nsmtp_tls_security_level = none\n",
                queue = queue.display(),
                mail = mail.display(),
                ip = relay.ip(),
                relay_port = relay.port(),
            ),
        )
        .unwrap();
        let master = Command::new("postfix")
            .arg("-c")
            .arg(&conf)
            .arg("start-fg")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postfix (scripts/test installs it)");
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "Postfix did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Postfix { dir, master }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(self.dir.join("conf"))
            .arg("stop")
            .status();
        let _ = self.master.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
