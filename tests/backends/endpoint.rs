//! Server URLs from the environment, parsed by hand and held to loopback.
//!
//! The suites accept `scheme://[user[:password]@]host[:port][/path][?query]`
//! where `host` is `localhost`, an address in `127.0.0.0/8`, or `[::1]`:
//! test traffic never leaves the machine. User, password and path are
//! percent-decoded; the query is ignored.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, SocketAddr},
};

/// A loopback server address taken from a test URL.
pub(crate) struct Endpoint {
    /// The user from the URL, if any.
    pub(crate) user: Option<String>,
    /// The password from the URL, if any; never printed.
    pub(crate) password: Option<String>,
    /// Where the server listens.
    pub(crate) addr: SocketAddr,
    /// The path without its leading `/` (the database in `postgres://…/test`).
    pub(crate) path: String,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("addr", &self.addr)
            .field("path", &self.path)
            .finish()
    }
}

impl Endpoint {
    /// Parses `url`, whose scheme must be one of `schemes`; `default_port`
    /// applies when the URL names none.
    ///
    /// # Errors
    ///
    /// A message naming what is wrong: another scheme, a malformed
    /// authority or port, or a host that is not loopback.
    pub(crate) fn parse(url: &str, schemes: &[&str], default_port: u16) -> Result<Self, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("`{}` is not a URL (no `://`)", redact(url)))?;
        if !schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
            return Err(format!(
                "scheme `{scheme}` is not one of {schemes:?} in `{}`",
                redact(url)
            ));
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let path = tail
            .strip_prefix('/')
            .map_or("", |path| path.split(['?', '#']).next().unwrap_or(""));

        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => match info.split_once(':') {
                Some((user, password)) => (non_empty(decode(user)?), Some(decode(password)?)),
                None => (non_empty(decode(info)?), None),
            },
        };

        let (host, port) = split_host_port(host_port)?;
        let ip = match host {
            h if h.eq_ignore_ascii_case("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
            h => h
                .parse::<IpAddr>()
                .map_err(|_| format!("host `{h}` is not an IP address or `localhost`"))?,
        };
        if !ip.is_loopback() {
            return Err(format!(
                "host `{host}` is not loopback: test servers must listen on 127.0.0.0/8 or ::1"
            ));
        }
        let port = match port {
            None => default_port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("port `{p}` is not a port number"))?,
        };
        Ok(Self {
            user,
            password,
            addr: SocketAddr::new(ip, port),
            path: decode(path)?,
        })
    }
}

/// `host:port`, `host`, `[v6]:port` or `[v6]`.
fn split_host_port(host_port: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("unclosed `[` in `{host_port}`"))?;
        return match after {
            "" => Ok((host, None)),
            _ => after
                .strip_prefix(':')
                .map(|port| (host, Some(port)))
                .ok_or_else(|| format!("unexpected `{after}` after `]`")),
        };
    }
    Ok(match host_port.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (host_port, None),
    })
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

/// Percent-decoding of one URL component.
fn decode(component: &str) -> Result<String, String> {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("malformed percent-escape in URL")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "URL component is not UTF-8 once decoded".to_owned())
}

/// The URL with any password replaced, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start => match url[start + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:[REDACTED]{}", &url[..start + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::Endpoint;

    #[test]
    fn parses_user_database_and_default_port() {
        let e = Endpoint::parse(
            "postgres://postgres@127.0.0.1/test?sslmode=disable",
            &["postgres"],
            5432,
        )
        .expect("a loopback postgres URL parses");
        assert_eq!(e.user.as_deref(), Some("postgres"));
        assert_eq!(e.password, None);
        assert_eq!(e.addr.to_string(), "127.0.0.1:5432");
        assert_eq!(e.path, "test");
    }

    #[test]
    fn parses_bracketed_ipv6_and_encoded_password() {
        let e = Endpoint::parse("redis://:p%40ss@[::1]:6380/2", &["redis"], 6379)
            .expect("a loopback redis URL parses");
        assert_eq!(e.user, None);
        assert_eq!(e.password.as_deref(), Some("p@ss"));
        assert_eq!(e.addr.to_string(), "[::1]:6380");
        assert_eq!(e.path, "2");
        assert!(
            !format!("{e:?}").contains("p@ss"),
            "Debug must not show the password"
        );
    }

    #[test]
    fn rejects_hosts_off_loopback() {
        for url in [
            "redis://10.0.0.5:6379",
            "redis://db.example.com:6379",
            "redis://0.0.0.0:6379",
            "redis://[2001:db8::1]:6379",
        ] {
            let err = Endpoint::parse(url, &["redis"], 6379).expect_err(url);
            assert!(err.contains("not"), "{url}: {err}");
        }
    }

    #[test]
    fn rejects_other_schemes_and_bad_ports_without_echoing_passwords() {
        let err = Endpoint::parse("mysql://u:hunter2@127.0.0.1/x", &["postgres"], 5432)
            .expect_err("wrong scheme");
        assert!(!err.contains("hunter2"), "{err}");
        for url in [
            "redis://127.0.0.1:0",
            "redis://127.0.0.1:99999",
            "redis://127.0.0.1:x",
        ] {
            Endpoint::parse(url, &["redis"], 6379).expect_err(url);
        }
    }
}
