//! A private Mosquitto per test, for what the shared one on 1883 cannot do
//! (passwords, TLS, client certificates): its own free port, its config,
//! password file and log in a temp dir, killed by its own PID when dropped.
//! Also a throw-away CA (rcgen) that signs the broker's and clients' certificates.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Installed by the `mosquitto` package (scripts/test.sh makes sure of it).
pub const MOSQUITTO_BIN: &str = "/usr/sbin/mosquitto";

/// What the private broker asks of its clients.
#[derive(Default)]
pub struct BrokerConfig {
    /// `allow_anonymous false` and a password file holding this user.
    pub user: Option<(String, String)>,
    /// A TLS listener instead of plain TCP.
    pub tls: Option<ServerTls>,
    /// Clients must present a certificate signed by the CA; its CN is the
    /// username (`use_identity_as_username`), anonymous clients are refused.
    pub require_certificate: bool,
}

pub struct ServerTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct Mosquitto {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

/// A port nobody listens on right now: bind port 0, keep the number, let go.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

impl Mosquitto {
    /// Starts the broker and returns once its port accepts connections.
    pub async fn start(cfg: &BrokerConfig) -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = dir.path().join("mosquitto.log");
        let mut conf = String::new();
        // Run as root (a root test run), Mosquitto would switch to the
        // `mosquitto` user, which cannot read the temp dir; ignored otherwise.
        conf.push_str("user root\npersistence false\n");
        writeln!(conf, "log_dest file {}", log.display()).unwrap();
        conf.push_str("log_type error\nlog_type warning\nlog_type notice\nlog_type information\n");
        writeln!(conf, "listener {port} 127.0.0.1").unwrap();
        let anonymous = cfg.user.is_none() && !cfg.require_certificate;
        writeln!(conf, "allow_anonymous {anonymous}").unwrap();
        if let Some((user, pass)) = &cfg.user {
            let file = dir.path().join("passwd");
            let out = Command::new("mosquitto_passwd")
                .args(["-b", "-c"])
                .arg(&file)
                .args([user, pass])
                .output()
                .expect("mosquitto_passwd (mosquitto package) is installed");
            assert!(out.status.success(), "mosquitto_passwd: {out:?}");
            writeln!(conf, "password_file {}", file.display()).unwrap();
        }
        if let Some(tls) = &cfg.tls {
            writeln!(conf, "cafile {}", tls.ca.display()).unwrap();
            writeln!(conf, "certfile {}", tls.cert.display()).unwrap();
            writeln!(conf, "keyfile {}", tls.key.display()).unwrap();
        }
        if cfg.require_certificate {
            assert!(cfg.tls.is_some(), "client certificates need TLS");
            conf.push_str("require_certificate true\nuse_identity_as_username true\n");
        }
        let conf_file = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_file, conf).unwrap();
        let child = Command::new(MOSQUITTO_BIN)
            .arg("-c")
            .arg(&conf_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{MOSQUITTO_BIN} starts: {e}"));
        let mut broker = Mosquitto { child, port, dir };
        broker.wait_ready().await;
        broker
    }

    async fn wait_ready(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("mosquitto exited ({status}): {}", self.log());
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "mosquitto not listening on {} after 10 s: {}",
                self.port,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The broker's log so far (connections, refusals, TLS errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA made for one test, writing its PEM files into `dir`.
pub struct TestCa {
    dir: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub ca_file: PathBuf,
}

/// A certificate and its key, as PEM files.
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn new(dir: &Path, name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let ca_file = dir.join(format!("{name}.pem"));
        std::fs::write(&ca_file, issuer.pem()).unwrap();
        TestCa {
            dir: dir.to_path_buf(),
            issuer,
            ca_file,
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn server(&self, file: &str, names: &[&str]) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, file);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(file, params)
    }

    /// A client certificate whose common name Mosquitto takes as username.
    pub fn client(&self, file: &str, common_name: &str) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(file, params)
    }

    fn sign(&self, file: &str, mut params: CertificateParams) -> Leaf {
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &*self.issuer).unwrap();
        let leaf = Leaf {
            cert: self.dir.join(format!("{file}.crt")),
            key: self.dir.join(format!("{file}.key")),
        };
        std::fs::write(&leaf.cert, cert.pem()).unwrap();
        std::fs::write(&leaf.key, key.serialize_pem()).unwrap();
        leaf
    }
}
