//! TLS to PostgreSQL, configured from the database URL as libpq reads it.
//!
//! `sslmode` is one of `disable`, `prefer` (the default), `require`, `verify-ca` and
//! `verify-full`; `sslrootcert` names a PEM file of CA certificates trusted besides the
//! platform's roots; `sslcert` and `sslkey` name a client certificate and its key. As in libpq
//! (<https://www.postgresql.org/docs/current/libpq-ssl.html>):
//! - `prefer` tries TLS and falls back to plain text when the server has none; `require`
//!   insists on TLS. Neither checks the server's certificate, unless `require` is given an
//!   `sslrootcert`, when it checks it as `verify-ca` does.
//! - `verify-ca` checks that the certificate chains to a trusted CA; `verify-full` also checks
//!   that it names the host connected to.
//!
//! tokio-postgres knows only `disable`, `prefer` and `require`, so these parameters are taken
//! out of the URL here and the rest handed to it.

use crate::storage::{StoreError, StoreResult};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use std::sync::Arc;
use tokio_postgres::config::SslMode as WireMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How much of TLS a connection insists on, from libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The TLS parameters of a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TlsSettings {
    pub mode: SslMode,
    pub root_cert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

/// Splits a `postgres://` URL into the URL tokio-postgres is given (without the TLS parameters)
/// and the TLS settings. An unknown `sslmode` is refused, naming the ones known.
pub(super) fn split_url(url: &str) -> StoreResult<(String, TlsSettings)> {
    let mut settings = TlsSettings {
        mode: SslMode::Prefer,
        root_cert: None,
        cert: None,
        key: None,
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), settings));
    };
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "sslmode" => {
                settings.mode = match value.as_ref() {
                    "disable" => SslMode::Disable,
                    // libpq's `allow` tries plain text first; TLS when plain text is refused is
                    // the same outcome as `prefer` against any server that takes TLS.
                    "allow" | "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => {
                        return Err(StoreError::Internal(format!(
                            "the database URL's sslmode {other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                        )))
                    }
                }
            }
            "sslrootcert" => settings.root_cert = Some(value.into_owned()),
            "sslcert" => settings.cert = Some(value.into_owned()),
            "sslkey" => settings.key = Some(value.into_owned()),
            _ => {
                rest.append_pair(&name, &value);
            }
        }
    }
    let rest = rest.finish();
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{rest}")
    };
    Ok((url, settings))
}

impl TlsSettings {
    /// The `sslmode` tokio-postgres is told: whether it asks the server for TLS at all.
    pub(super) fn wire_mode(&self) -> WireMode {
        match self.mode {
            SslMode::Disable => WireMode::Disable,
            SslMode::Prefer => WireMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => WireMode::Require,
        }
    }

    /// The TLS connector these settings describe. Fails, naming the file, when a certificate or
    /// key cannot be read or parsed.
    pub(super) fn connector(&self) -> StoreResult<MakeRustlsConnect> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Internal(format!("cannot set up TLS: {e}")))?;
        let check = match (self.mode, &self.root_cert) {
            (SslMode::VerifyFull, _) => Check::Full,
            (SslMode::VerifyCa, _) | (SslMode::Require, Some(_)) => Check::Chain,
            _ => Check::Nothing,
        };
        let builder = match check {
            Check::Nothing => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny(provider))),
            Check::Full | Check::Chain => {
                let roots = self.roots()?;
                let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| StoreError::Internal(format!("cannot set up TLS: {e}")))?;
                let verifier: Arc<dyn ServerCertVerifier> = if check == Check::Full {
                    webpki
                } else {
                    Arc::new(ChainOnly(webpki))
                };
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(verifier)
            }
        };
        let config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let certs = read_certs("sslcert", cert)?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    StoreError::Internal(format!("cannot read the sslkey file {key:?}: {e}"))
                })?;
                builder.with_client_auth_cert(certs, key).map_err(|e| {
                    StoreError::Internal(format!(
                        "the sslcert and sslkey files do not make a client certificate: {e}"
                    ))
                })?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(StoreError::Internal(
                    "the database URL gives one of sslcert and sslkey without the other".into(),
                ))
            }
        };
        Ok(MakeRustlsConnect::new(config))
    }

    /// The platform's roots and the `sslrootcert` file's.
    fn roots(&self) -> StoreResult<RootCertStore> {
        let mut roots = RootCertStore::empty();
        // Unreadable platform certificates are skipped: the given CA may be all that is needed.
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if let Some(path) = &self.root_cert {
            for cert in read_certs("sslrootcert", path)? {
                roots.add(cert).map_err(|e| {
                    StoreError::Internal(format!(
                        "the sslrootcert file {path:?} holds a certificate that cannot be a CA: {e}"
                    ))
                })?;
            }
        }
        if roots.is_empty() {
            return Err(StoreError::Internal(
                "sslmode asks to verify the server's certificate, but there is no sslrootcert and the platform has no CA certificates".into(),
            ));
        }
        Ok(roots)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Nothing,
    Chain,
    Full,
}

fn read_certs(param: &str, path: &str) -> StoreResult<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| StoreError::Internal(format!("cannot read the {param} file {path:?}: {e}")))?;
    if certs.is_empty() {
        return Err(StoreError::Internal(format!(
            "the {param} file {path:?} holds no PEM certificate"
        )));
    }
    Ok(certs)
}

/// `verify-ca`: the chain must lead to a trusted CA, whatever host the certificate names.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The name is checked only after the chain, so a name error means the chain is good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require`: encrypted, but any certificate is taken, as libpq does. The
/// handshake's signatures are still checked, so the server must hold the certificate's key.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A sentence naming why a TLS handshake failed, when `error` is one; for the log and the
/// command line.
pub(super) fn explain(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source = Some(error);
    while let Some(cause) = source {
        let tls = cause.downcast_ref::<rustls::Error>().or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = tls {
            return Some(match tls {
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) =>
                    "the server's certificate is not signed by a trusted CA (unknown CA: check sslrootcert)".to_owned(),
                rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
                ) => format!(
                    "the server's certificate does not name the host connected to (host name mismatch: {tls}); connect by a name it lists, or use sslmode=verify-ca"
                ),
                other => format!("the TLS handshake failed: {other}"),
            });
        }
        source = cause.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_parameters_are_taken_out_of_the_url_and_the_rest_kept() {
        let (url, settings) = split_url(
            "postgres://u@db:5432/leads?sslmode=verify-full&application_name=x&sslrootcert=/ca.pem",
        )
        .unwrap();
        assert_eq!(url, "postgres://u@db:5432/leads?application_name=x");
        assert_eq!(settings.mode, SslMode::VerifyFull);
        assert_eq!(settings.root_cert.as_deref(), Some("/ca.pem"));
    }

    #[test]
    fn a_url_without_sslmode_prefers_tls_as_libpq_does() {
        let (url, settings) = split_url("postgres://u@db/leads").unwrap();
        assert_eq!(url, "postgres://u@db/leads");
        assert_eq!(settings.mode, SslMode::Prefer);
    }

    #[test]
    fn an_unknown_sslmode_is_refused_naming_the_known_ones() {
        let error = split_url("postgres://u@db/leads?sslmode=always").unwrap_err();
        assert!(error.to_string().contains("verify-full"), "{error}");
    }
}
