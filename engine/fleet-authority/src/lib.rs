//! The reference fleet's certificate authority and command signer.
//!
//! Cordon's device-action plugins drive this service over HTTP: they revoke
//! a compromised device's certificate and have commands signed for devices.
//! The authority owns everything that must stay consistent with the broker:
//! the CA key, the registry of issued certificates, the CRL file Mosquitto
//! reads, and the proof (a probe with sentinel certificates) that the broker
//! really enforces a newly published CRL. Mosquitto 2.0 fails *open* on a
//! broken CRL and *closed* on an expired one, so a CRL is validated before
//! it replaces the old one, and enforcement is checked after every reload.
//!
//! - [`names`]: which common names the CA may issue.
//! - [`files`]: atomic, fsynced writes with private permissions.
//! - [`registry`]: `authority.json`, every certificate ever issued.
//! - [`issue`]: the CA key and certificate issuance (rcgen).
//! - [`crl`]: building and validating CRLs, replacing `crl.pem`.
//! - [`broker`]: asking Mosquitto to reload (SIGHUP).
//! - [`probe`]: mutual-TLS MQTT connections that prove enforcement.
//! - [`authority`]: the state and the publish workflow the API drives.
//! - [`init`]: `cordon-fleet-authority init`.
//! - [`api`]: the HTTP routes and their error codes.

pub mod api;
pub mod authority;
pub mod broker;
pub mod crl;
pub mod files;
pub mod init;
pub mod issue;
pub mod names;
pub mod probe;
pub mod registry;
