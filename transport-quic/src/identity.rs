//! Network identities (DESIGN §6.2): the ed25519 key a validator's QUIC server proves it holds
//! in every TLS 1.3 handshake, apart from the key that signs its votes, and the client's check
//! that the server holds exactly the key its committee entry lists.
//!
//! The server presents its key as an RFC 7250 raw public key (an ed25519
//! `SubjectPublicKeyInfo`, RFC 8410), so there is no certificate, no authority and nothing to
//! expire: a client that expects key K accepts a handshake signed by K and nothing else.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use ed25519_dalek::SigningKey;
use quorum_core::NetworkPublicKey;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature_with_raw_key, CryptoProvider};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, SubjectPublicKeyInfoDer,
    UnixTime,
};
use rustls::server::AlwaysResolvesServerRawPublicKeys;
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use crate::error::{Presented, QuicError};

/// The application protocol a connection speaks, as its ALPN names it: the validator protocol,
/// version 1. A peer that offers no other is refused in the handshake.
pub(crate) const ALPN: &[u8] = b"quorum/1";

/// DER of an ed25519 `SubjectPublicKeyInfo` (RFC 8410) before its 32 key bytes: a sequence of
/// the algorithm (OID 1.3.101.112) and a bit string with no unused bits.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// DER of an ed25519 PKCS #8 (version 1) private key (RFC 8410) before its 32 seed bytes.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A validator's network key: the secret its QUIC server signs handshakes with. It is not the
/// key that signs votes; losing it lets someone answer in the validator's place, not vote.
#[derive(Clone)]
pub struct NetworkKey(SigningKey);

impl NetworkKey {
    /// The key of this 32-byte ed25519 seed (as `quorum keygen` writes it).
    pub fn from_bytes(seed: [u8; 32]) -> Self {
        NetworkKey(SigningKey::from_bytes(&seed))
    }

    /// The 32-byte seed, to be stored (mode 0600).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public half, which the validator's committee entry lists as `network_key`.
    pub fn public(&self) -> NetworkPublicKey {
        NetworkPublicKey(self.0.verifying_key().to_bytes())
    }

    /// The key as rustls signs with it.
    fn pkcs8(&self) -> PrivateKeyDer<'static> {
        let mut der = Vec::with_capacity(PKCS8_PREFIX.len() + 32);
        der.extend_from_slice(&PKCS8_PREFIX);
        der.extend_from_slice(&self.0.to_bytes());
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))
    }
}

impl fmt::Debug for NetworkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        f.debug_tuple("NetworkKey").field(&self.public()).finish()
    }
}

/// The key as a TLS raw public key presents it (an ed25519 `SubjectPublicKeyInfo`).
fn spki(key: &NetworkPublicKey) -> Vec<u8> {
    let mut der = Vec::with_capacity(SPKI_PREFIX.len() + 32);
    der.extend_from_slice(&SPKI_PREFIX);
    der.extend_from_slice(&key.0);
    der
}

/// The key a `SubjectPublicKeyInfo` holds, if it is an ed25519 one.
fn from_spki(der: &[u8]) -> Option<NetworkPublicKey> {
    let key = der.strip_prefix(&SPKI_PREFIX[..])?;
    Some(NetworkPublicKey(key.try_into().ok()?))
}

/// The cryptography every configuration here uses: rustls's ring provider. rustls marks it
/// deprecated for want of post-quantum key exchange; its other provider, aws-lc-rs, builds a
/// large C library with CMake, which a fresh machine of ours does not have. X25519 key
/// exchange, AES-GCM / ChaCha20-Poly1305 and ed25519 are what this transport needs.
#[allow(deprecated)]
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server's TLS configuration: TLS 1.3 only, the network key as a raw public key, no client
/// certificates (clients stay anonymous), no early data (0-RTT is off), the protocol's ALPN.
/// [`serve_validator`](crate::serve_validator) uses it; it is public for QUIC endpoints of
/// one's own with the same identity (e.g. a bench's bare echo).
pub fn tls_server_config(key: &NetworkKey) -> Result<rustls::ServerConfig, QuicError> {
    let provider = provider();
    let signer = provider
        .key_provider
        .load_private_key(key.pkcs8())
        .map_err(QuicError::Tls)?;
    let certified = CertifiedKey::new(vec![CertificateDer::from(spki(&key.public()))], signer);
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(QuicError::Tls)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(AlwaysResolvesServerRawPublicKeys::new(Arc::new(
            certified,
        ))));
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.max_early_data_size = 0;
    Ok(config)
}

/// The client's TLS configuration for one validator: TLS 1.3 only, and the server accepted
/// only if it proves it holds `expected` (no authority, no trust on first use). Public for QUIC
/// endpoints of one's own, like [`tls_server_config`].
pub fn tls_client_config(expected: NetworkPublicKey) -> Result<rustls::ClientConfig, QuicError> {
    client_tls(expected, Arc::new(Mutex::new(None)))
}

/// [`tls_client_config`], leaving what a refused server presented in `seen` for the error.
pub(crate) fn client_tls(
    expected: NetworkPublicKey,
    seen: Arc<Mutex<Option<Presented>>>,
) -> Result<rustls::ClientConfig, QuicError> {
    let provider = provider();
    let verifier = PeerKeyVerifier {
        expected,
        seen,
        provider: provider.clone(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(QuicError::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.enable_early_data = false;
    Ok(config)
}

/// Accepts exactly one server key: no authority, no trust on first use.
#[derive(Debug)]
struct PeerKeyVerifier {
    expected: NetworkPublicKey,
    seen: Arc<Mutex<Option<Presented>>>,
    provider: Arc<CryptoProvider>,
}

impl PeerKeyVerifier {
    fn refuse(&self, presented: Presented) -> rustls::Error {
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(presented);
        rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
    }
}

impl ServerCertVerifier for PeerKeyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !intermediates.is_empty() {
            return Err(self.refuse(Presented::NotAKey));
        }
        match from_spki(end_entity.as_ref()) {
            Some(key) if key == self.expected => Ok(ServerCertVerified::assertion()),
            Some(other) => Err(self.refuse(Presented::Key(other))),
            None => Err(self.refuse(Presented::NotAKey)),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Only TLS 1.3 is offered; a TLS 1.2 signature is never accepted.
        Err(rustls::Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // `cert` is the key verify_server_cert accepted: the signature must be that key's.
        verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(cert.as_ref()),
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_spki() {
        let key = NetworkKey::from_bytes([7; 32]);
        let public = key.public();
        assert_eq!(from_spki(&spki(&public)), Some(public));
        assert_eq!(NetworkKey::from_bytes(key.to_bytes()).public(), public);
        assert!(!format!("{key:?}").contains(&hex::encode(key.to_bytes())));
    }

    #[test]
    fn other_spkis_are_not_keys() {
        let mut der = spki(&NetworkKey::from_bytes([1; 32]).public());
        assert_eq!(from_spki(&der[..40]), None);
        der[4] ^= 1;
        assert_eq!(from_spki(&der), None);
    }
}
