//! Where webhooks may go: server-side request forgery rules.
//!
//! An endpoint's host is resolved, every address is checked, and the connection goes only to
//! an address that passed: the resolver handed to the HTTP client ([`CheckedResolver`]) answers
//! the checked addresses and nothing else, so a name that resolves elsewhere a moment later
//! (DNS rebinding) cannot slip past. Loopback, private, link-local, multicast, unique-local,
//! unspecified, broadcast and shared (carrier-grade NAT) addresses are refused unless private
//! targets are allowed.

use crate::domain::webhooks::WebhookUrl;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether `ip` is a public address a webhook may be sent to.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space, RFC 6598
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unspecified()
        || (first & 0xfe00) == 0xfc00 // unique local, RFC 4193
        || (first & 0xffc0) == 0xfe80) // link-local
}

fn refused(ip: IpAddr) -> String {
    format!(
        "resolves to {ip}, a loopback, private, link-local, multicast or unique-local address; \
         webhooks go only to public addresses unless the server allows private targets"
    )
}

/// Checks an address written in the URL itself (the HTTP client does not resolve those).
pub fn check_literal(url: &WebhookUrl, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let parsed = reqwest::Url::parse(url.as_str()).map_err(|e| e.to_string())?;
    let ip = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    if is_public(ip) {
        Ok(())
    } else {
        Err(refused(ip))
    }
}

/// Resolves the URL's host and checks every address it has (any refused one refuses the URL).
pub async fn check(url: &WebhookUrl, allow_private: bool) -> Result<(), String> {
    check_literal(url, allow_private)?;
    let parsed = reqwest::Url::parse(url.as_str()).map_err(|e| e.to_string())?;
    let Some(url::Host::Domain(host)) = parsed.host() else {
        return Ok(());
    };
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("its host {host} cannot be resolved: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("its host {host} has no address"));
    }
    if allow_private {
        return Ok(());
    }
    match addrs.iter().find(|a| !is_public(a.ip())) {
        Some(bad) => Err(refused(bad.ip())),
        None => Ok(()),
    }
}

/// The HTTP client's resolver: answers only the addresses that pass the rules, so the client
/// connects to exactly what was checked.
#[derive(Debug, Clone, Copy)]
pub struct CheckedResolver {
    pub allow_private: bool,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no address webhooks may go to").into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for text in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "224.0.0.1",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(text.parse().unwrap()), "{text}");
        }
        for text in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(is_public(text.parse().unwrap()), "{text}");
        }
    }
}
