//! Names the CA refuses, and CRLs that must never replace `crl.pem`: each
//! rejected CRL leaves the old file byte for byte as it was.

use std::path::Path;

use chrono::{Duration, Utc};
use cordon_fleet_authority::crl::{self, CrlError, Expect};
use cordon_fleet_authority::issue::Ca;
use cordon_fleet_authority::names::{NameError, check_device_name};
use cordon_fleet_authority::registry::{Reason, Registry, Status};
use cordon_fleet_authority::{init, registry};

fn fresh(devices: &[&str]) -> (tempfile::TempDir, Ca, Registry) {
    let dir = tempfile::tempdir().expect("tempdir");
    let devices: Vec<String> = devices.iter().map(|d| d.to_string()).collect();
    init::run(dir.path(), &devices, &[]).expect("init");
    let ca = Ca::load(dir.path()).expect("ca");
    let registry = Registry::load(dir.path()).expect("load").expect("registry");
    (dir, ca, registry)
}

fn crl_bytes(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join(crl::FILE)).expect("crl.pem")
}

#[test]
fn reserved_and_invalid_names_are_refused() {
    let extra = vec!["plc-legacy".to_string()];
    for reserved in [
        "admin",
        "server",
        "localhost",
        "cordon",
        "cordon-ops",
        "sentinel-7",
        "probe-authority",
        "plc-legacy",
    ] {
        assert_eq!(
            check_device_name(reserved, &extra),
            Err(NameError::Reserved(reserved.into())),
            "{reserved}"
        );
    }
    for invalid in ["", "Admin", "-x", "a/b", "a+b", "dev#1", &"x".repeat(64)] {
        assert!(
            matches!(
                check_device_name(invalid, &extra),
                Err(NameError::Invalid(_))
            ),
            "{invalid}"
        );
    }
    assert_eq!(check_device_name("dev-1", &extra), Ok(()));

    // `init` refuses before writing anything, and `--reserve` is kept.
    let dir = tempfile::tempdir().expect("tempdir");
    let err = init::run(dir.path(), &["admin".into()], &[]).expect_err("admin refused");
    assert!(err.to_string().contains("reserved"), "{err}");
    assert!(!dir.path().join("ca.key").exists());
    let err = init::run(dir.path(), &["plc-9".into()], &["plc-9".into()]).expect_err("reserved");
    assert!(err.to_string().contains("plc-9"), "{err}");
    init::run(dir.path(), &["dev-1".into()], &["plc-9".into()]).expect("init");
    let registry = Registry::load(dir.path()).expect("load").expect("registry");
    assert_eq!(registry.reserved, vec!["plc-9".to_string()]);
}

#[test]
fn init_is_idempotent_and_makes_a_valid_empty_crl() {
    let (dir, ca, registry) = fresh(&["dev-1", "dev-2"]);
    let before = crl_bytes(dir.path());
    let key_before = std::fs::read(dir.path().join("ca.key")).expect("key");
    init::run(dir.path(), &["dev-1".into(), "dev-3".into()], &[]).expect("again");
    assert_eq!(crl_bytes(dir.path()), before);
    assert_eq!(
        std::fs::read(dir.path().join("ca.key")).expect("key"),
        key_before
    );
    assert!(dir.path().join("devices/dev-3.key").exists());
    let info = crl::inspect(&before).expect("parses");
    assert_eq!((info.number, info.revoked_count), (1, 0));
    assert_eq!(registry.crl_number, 1);
    // What init wrote passes the validation a publication must pass.
    let expect = Expect {
        revoked: &[],
        previous_number: 0,
    };
    crl::validate(&before, ca.cert_der(), expect, Utc::now()).expect("valid");
    let mode = |f: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(dir.path().join(f))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777
    };
    for private in [
        "ca.key",
        "server.key",
        "command.key",
        "release.key",
        "devices/dev-1.key",
        "authority.json",
    ] {
        assert_eq!(mode(private), 0o600, "{private}");
    }
}

#[test]
fn bad_crls_are_rejected_and_the_old_file_stays() {
    let (dir, ca, mut registry) = fresh(&["dev-1", "dev-2"]);
    let old = crl_bytes(dir.path());
    let now = Utc::now();
    let dev2 = registry
        .device("dev-2")
        .expect("dev-2")
        .serial_number()
        .expect("serial");
    {
        let record = registry.by_serial_mut(dev2).expect("record");
        record.status = Status::Revoked;
        record.revoked_at = Some(now);
        record.reason = Some(Reason::KeyCompromise);
    }
    let revoked = registry.revoked_serials();
    assert_eq!(revoked, vec![dev2]);
    let expect = Expect {
        revoked: &revoked,
        previous_number: 1,
    };
    let replace = |pem: &[u8]| crl::replace(dir.path(), pem, ca.cert_der(), expect, Utc::now());

    // Signed by another CA (same name, other key).
    let (rogue, _) = Ca::create(0x1000, now).expect("rogue CA");
    let forged = crl::build(&rogue, &registry, 2, now).expect("build");
    assert!(matches!(
        replace(forged.as_bytes()),
        Err(CrlError::Signature(_))
    ));
    assert_eq!(crl_bytes(dir.path()), old);

    // nextUpdate already past (built 31 days ago, valid for 30).
    let stale = crl::build(&ca, &registry, 2, now - Duration::days(31)).expect("build");
    assert!(matches!(
        replace(stale.as_bytes()),
        Err(CrlError::NextUpdate(_))
    ));
    assert_eq!(crl_bytes(dir.path()), old);

    // Missing the revoked serial: built from the registry before the revoke.
    let before = Registry::load(dir.path()).expect("load").expect("registry");
    let missing = crl::build(&ca, &before, 2, now).expect("build");
    assert_eq!(
        replace(missing.as_bytes()),
        Err(CrlError::MissingSerial(registry::serial_text(dev2)))
    );
    assert_eq!(crl_bytes(dir.path()), old);

    // Garbage, an empty file, a certificate instead of a CRL.
    for garbage in [
        &b"\x00\x01garbage\xff"[..],
        b"",
        b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
        ca.cert_pem().as_bytes(),
    ] {
        assert!(
            matches!(replace(garbage), Err(CrlError::Parse(_))),
            "{garbage:?}"
        );
        assert_eq!(crl_bytes(dir.path()), old);
    }

    // A number not above the previous one.
    let same = crl::build(&ca, &registry, 1, now).expect("build");
    assert!(matches!(
        replace(same.as_bytes()),
        Err(CrlError::Number {
            got: Some(1),
            previous: 1
        })
    ));
    assert_eq!(crl_bytes(dir.path()), old);

    // thisUpdate in the future.
    let future = crl::build(&ca, &registry, 2, now + Duration::hours(2)).expect("build");
    assert!(matches!(
        replace(future.as_bytes()),
        Err(CrlError::ThisUpdate(_))
    ));
    assert_eq!(crl_bytes(dir.path()), old);

    // The good one replaces the file and lists dev-2.
    let good = crl::build(&ca, &registry, 2, now).expect("build");
    let info = replace(good.as_bytes()).expect("valid");
    assert_eq!((info.number, info.revoked_count), (2, 1));
    assert!(info.lists(&registry::serial_text(dev2)));
    assert_eq!(crl_bytes(dir.path()), good.as_bytes());
}
