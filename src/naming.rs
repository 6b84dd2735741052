//! Naming rules from Kubernetes and S3, as pure predicates returning the broken rule.
//!
//! Each check returns `Err(rule)` with a short, value-free description of the rule,
//! so callers can prefix it with the field path.

/// Longest DNS-1123 subdomain (Secret names, annotation prefixes, host names).
const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// Longest DNS-1123 label (container names, region names, each host label).
const DNS1123_LABEL_MAX: usize = 63;
/// Longest Secret data key.
const SECRET_KEY_MAX: usize = 253;

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Lowercase alphanumerics and '-', starting and ending alphanumeric, of any length.
fn is_dns1123_part(part: &str) -> bool {
    let (Some(first), Some(last)) = (part.chars().next(), part.chars().last()) else {
        return false;
    };
    is_lower_alnum(first)
        && is_lower_alnum(last)
        && part.chars().all(|c| is_lower_alnum(c) || c == '-')
}

/// One DNS-1123 label: a part of at most 63 characters.
fn is_dns1123_label(label: &str) -> bool {
    label.len() <= DNS1123_LABEL_MAX && is_dns1123_part(label)
}

/// Kubernetes object names such as Secrets: dot-separated parts, at most 253 characters in all.
/// Kubernetes limits only the total here (unlike host names, a part may exceed 63 characters).
pub fn dns1123_subdomain(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > DNS1123_SUBDOMAIN_MAX {
        return Err("must be 1-253 characters long (DNS-1123 subdomain)");
    }
    if !name.split('.').all(is_dns1123_part) {
        return Err(
            "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', \
             each dot-separated part starting and ending with a letter or digit",
        );
    }
    Ok(())
}

/// Container names: a single DNS-1123 label.
pub fn dns1123_label(name: &str) -> Result<(), &'static str> {
    if is_dns1123_label(name) {
        Ok(())
    } else {
        Err(
            "must be a DNS-1123 label: 1-63 lowercase letters, digits and '-', \
             starting and ending with a letter or digit",
        )
    }
}

/// Secret data keys: `[-._a-zA-Z0-9]+`, at most 253 characters, not `.`/`..` nor starting with `..`.
pub fn secret_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() || key.len() > SECRET_KEY_MAX {
        return Err("must be a Secret key of 1-253 characters");
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err("must be a valid Secret key: letters, digits, '-', '_' and '.' only");
    }
    if key == "." || key.starts_with("..") {
        return Err("must be a valid Secret key: not '.' and not starting with '..'");
    }
    Ok(())
}

/// S3-compatible region names (`eu-west-1`, `us-gov-west-1`, `auto`, `fr-par`, `nyc3`).
pub fn region(region: &str) -> Result<(), &'static str> {
    if is_dns1123_label(region) {
        Ok(())
    } else {
        Err("must be 1-63 lowercase letters, digits and hyphens, \
             starting and ending with a letter or digit")
    }
}

/// S3 bucket naming rules (general purpose buckets).
pub fn bucket(name: &str) -> Result<(), &'static str> {
    const RESERVED_PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];
    const RESERVED_SUFFIXES: [&str; 5] = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];

    if !(3..=63).contains(&name.len()) {
        return Err("must be 3-63 characters long");
    }
    if !name
        .chars()
        .all(|c| is_lower_alnum(c) || c == '.' || c == '-')
    {
        return Err("must contain only lowercase letters, digits, '.' and '-'");
    }
    let starts_and_ends_alnum = name.chars().next().is_some_and(is_lower_alnum)
        && name.chars().last().is_some_and(is_lower_alnum);
    if !starts_and_ends_alnum {
        return Err("must begin and end with a letter or digit");
    }
    if name.contains("..") {
        return Err("must not contain two adjacent periods");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("must not be formatted as an IP address");
    }
    if RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Err("must not start with a reserved prefix (xn--, sthree-, amzn-s3-demo-)");
    }
    if RESERVED_SUFFIXES.iter().any(|s| name.ends_with(s)) {
        return Err(
            "must not end with a reserved suffix (-s3alias, --ol-s3, .mrap, --x-s3, --table-s3)",
        );
    }
    Ok(())
}

/// Annotation keys: an optional DNS-1123 subdomain prefix and `/`, then a name of at most
/// 63 characters of alphanumerics, `-`, `_` and `.`, starting and ending alphanumeric.
pub fn annotation_key(key: &str) -> Result<(), &'static str> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && dns1123_subdomain(prefix).is_err()
    {
        return Err("must have a DNS-1123 subdomain as prefix before '/'");
    }
    let (Some(first), Some(last)) = (name.chars().next(), name.chars().last()) else {
        return Err("must have a non-empty name part");
    };
    let name_ok = name.len() <= DNS1123_LABEL_MAX
        && first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !name_ok {
        return Err(
            "must have a name part of 1-63 letters, digits, '-', '_' and '.', \
                    starting and ending with a letter or digit",
        );
    }
    Ok(())
}

/// Entries of `allowedEndpointHosts`: a lowercase DNS name, optionally `*.` + DNS name to allow
/// any subdomain, or an IP address.
pub fn endpoint_host_pattern(pattern: &str) -> Result<(), &'static str> {
    let domain = pattern.strip_prefix("*.").unwrap_or(pattern);
    let is_host_name = dns1123_subdomain(domain).is_ok() && domain.split('.').all(is_dns1123_label);
    if pattern.parse::<std::net::IpAddr>().is_ok() || is_host_name {
        Ok(())
    } else {
        Err(
            "must be a lowercase host name, '*.' followed by one, or an IP address \
             (no scheme, port or path)",
        )
    }
}

/// Whether `host` matches an `allowedEndpointHosts` entry; `*.example.com` matches any
/// subdomain of example.com but not example.com itself.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(domain) => host
            .strip_suffix(domain)
            .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        None => pattern == host,
    }
}

/// How messages name an object: `Kind "name"`, its generateName while the API server has not
/// named it yet, or `unnamed Kind`.
pub fn describe(kind: &str, object: &serde_json::Value) -> String {
    let metadata = object.get("metadata");
    let field = |key: &str| {
        metadata
            .and_then(|m| m.get(key))
            .and_then(serde_json::Value::as_str)
            .filter(|text| !text.is_empty())
    };
    match (field("name"), field("generateName")) {
        (Some(name), _) => format!("{kind} \"{name}\""),
        (None, Some(prefix)) => format!("{kind} \"{prefix}…\""),
        (None, None) => format!("unnamed {kind}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns1123_subdomain_cases() {
        let long_ok = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61)
        );
        assert_eq!(long_ok.len(), 253);
        // Kubernetes limits only the total length of an object name, not each part.
        let long_part = "a".repeat(64);
        for ok in [
            long_part.as_str(),
            "a",
            "dittofs-s3-credentials",
            "a.b-c.d",
            "0abc",
            long_ok.as_str(),
        ] {
            assert_eq!(dns1123_subdomain(ok), Ok(()), "{ok}");
        }
        let too_long = format!("{long_ok}e");
        for bad in [
            "",
            "Upper",
            "-a",
            "a-",
            "a..b",
            ".a",
            "a.",
            "a_b",
            "a b",
            too_long.as_str(),
        ] {
            assert!(dns1123_subdomain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dns1123_label_cases() {
        assert!(dns1123_label("dittofs").is_ok());
        assert!(dns1123_label(&"a".repeat(63)).is_ok());
        for bad in ["", "a.b", "A", "-a", &"a".repeat(64)] {
            assert!(dns1123_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_key_cases() {
        for ok in ["accessKeyId", "AWS_SECRET", "a.b-c_d", ".x", "x.."] {
            assert!(secret_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "..x", "a/b", "a b", "é", &"k".repeat(254)] {
            assert!(secret_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn region_cases() {
        for ok in ["eu-west-1", "us-gov-west-1", "auto", "fr-par", "nyc3", "a"] {
            assert!(region(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "EU-WEST-1",
            "-eu",
            "eu-",
            "eu_west",
            "eu.west",
            &"r".repeat(64),
        ] {
            assert!(region(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bucket_cases() {
        for ok in [
            "abc",
            "my-bucket",
            "my.bucket.1",
            "1bucket",
            &"b".repeat(63),
        ] {
            assert_eq!(bucket(ok), Ok(()), "{ok}");
        }
        let cases: [(&str, &str); 14] = [
            ("ab", "3-63"),
            (&"b".repeat(64), "3-63"),
            ("My-Bucket", "lowercase"),
            ("my_bucket", "lowercase"),
            ("-bucket", "begin and end"),
            ("bucket.", "begin and end"),
            ("my..bucket", "adjacent periods"),
            ("192.168.5.4", "IP address"),
            ("xn--bucket", "prefix"),
            ("sthree-bucket", "prefix"),
            ("amzn-s3-demo-bucket", "prefix"),
            ("bucket-s3alias", "suffix"),
            ("bucket--ol-s3", "suffix"),
            ("bucket.mrap", "suffix"),
        ];
        for (name, rule) in cases {
            let err = bucket(name).expect_err(name);
            assert!(err.contains(rule), "{name}: {err}");
        }
        for suffix_case in ["bucket--x-s3", "bucket--table-s3"] {
            assert!(
                bucket(suffix_case)
                    .expect_err(suffix_case)
                    .contains("suffix")
            );
        }
    }

    #[test]
    fn annotation_key_cases() {
        for ok in [
            "dittofs.io/s3-credentials-hash",
            "hash",
            "example.com/a.b_c-d",
            "A1",
        ] {
            assert!(annotation_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/x",
            "dittofs.io/",
            "Bad_Prefix/x",
            "a/b/c",
            "x/-a",
            &format!("p/{}", "n".repeat(64)),
        ] {
            assert!(annotation_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoint_host_patterns() {
        for ok in ["s3.cubbit.eu", "*.cubbit.eu", "10.0.0.1", "::1"] {
            assert!(endpoint_host_pattern(ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://s3.cubbit.eu",
            "s3.cubbit.eu:443",
            "*",
            "*.",
            "S3.Cubbit.EU",
            "a/b",
            &format!("{}.eu", "h".repeat(64)),
        ] {
            assert!(endpoint_host_pattern(bad).is_err(), "{bad}");
        }
        assert!(host_matches("s3.cubbit.eu", "s3.cubbit.eu"));
        assert!(!host_matches("s3.cubbit.eu", "s3.cubbit.eu.evil.com"));
        assert!(host_matches("*.cubbit.eu", "s3.acme.cubbit.eu"));
        assert!(!host_matches("*.cubbit.eu", "cubbit.eu"));
        assert!(!host_matches("*.cubbit.eu", "evilcubbit.eu"));
    }

    #[test]
    fn objects_are_described_by_name_generate_name_or_as_unnamed() {
        use serde_json::json;
        let named = json!({"metadata": {"name": "d", "generateName": "x-"}});
        assert_eq!(describe("DittoServer", &named), "DittoServer \"d\"");
        let generated = json!({"metadata": {"name": "", "generateName": "dittofs-"}});
        assert_eq!(describe("Pod", &generated), "Pod \"dittofs-…\"");
        for nameless in [json!({}), json!({"metadata": {"name": 5}}), json!(null)] {
            assert_eq!(describe("DittoServer", &nameless), "unnamed DittoServer");
        }
    }
}
