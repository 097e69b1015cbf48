//! Which IP addresses are not on the public internet: loopback, link-local, private, shared,
//! reserved and the like, including IPv6 forms that carry such an IPv4 address inside
//! (`::ffff:127.0.0.1`, NAT64, 6to4). Downloads refuse them unless the operator allows private
//! networks, so a component URL cannot reach the node itself or its neighbours.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The range `address` belongs to when it is not a public unicast address, named for messages.
pub fn non_public_range(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => v6_range(v6),
    }
}

fn v4_range(address: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = address.octets();
    let range = match (a, b, c) {
        (0, _, _) => "'this network' (0.0.0.0/8)",
        (127, _, _) => "loopback (127.0.0.0/8)",
        (10, _, _) => "private (10.0.0.0/8)",
        (172, 16..=31, _) => "private (172.16.0.0/12)",
        (192, 168, _) => "private (192.168.0.0/16)",
        (169, 254, _) => "link-local (169.254.0.0/16)",
        (100, 64..=127, _) => "shared address space (100.64.0.0/10)",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, _, _) => "multicast (224.0.0.0/4)",
        (240..=255, _, _) => "reserved (240.0.0.0/4)",
        _ => return None,
    };
    Some(range)
}

fn v6_range(address: Ipv6Addr) -> Option<&'static str> {
    // Forms that embed an IPv4 address are as public as the address they embed.
    if let Some(v4) = address.to_ipv4_mapped() {
        return v4_range(v4);
    }
    let segments = address.segments();
    if address.is_unspecified() {
        return Some("unspecified (::)");
    }
    if address.is_loopback() {
        return Some("loopback (::1)");
    }
    // IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::/96) carry the IPv4 address
    // in their last 32 bits; 6to4 (2002::/16) in bits 16 to 48.
    let octets = address.octets();
    let last_32 = Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    if segments[..6] == [0; 6] {
        return v4_range(last_32).or(Some("IPv4-compatible (::/96)"));
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_range(last_32);
    }
    if segments[0] == 0x2002 {
        let [hi, lo] = [segments[1].to_be_bytes(), segments[2].to_be_bytes()];
        return v4_range(Ipv4Addr::new(hi[0], hi[1], lo[0], lo[1]));
    }
    let range = match segments[0] {
        0xfc00..=0xfdff => "unique local (fc00::/7)",
        0xfe80..=0xfebf => "link-local (fe80::/10)",
        0xfec0..=0xfeff => "site-local (fec0::/10)",
        0xff00..=0xffff => "multicast (ff00::/8)",
        0x2001 if segments[1] == 0x0db8 => "documentation (2001:db8::/32)",
        // Teredo hides an obfuscated IPv4 address; nothing legitimate serves components there.
        0x2001 if segments[1] == 0 => "Teredo (2001::/32)",
        0x0100 if segments[1..4] == [0, 0, 0] => "discard-only (100::/64)",
        _ => return None,
    };
    Some(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> Option<&'static str> {
        non_public_range(text.parse().unwrap())
    }

    #[test]
    fn every_non_public_ipv4_class_is_named() {
        for (address, class) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("0.0.0.0", "this network"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "shared"),
            ("192.0.0.8", "IETF"),
            ("198.18.0.1", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("203.0.113.5", "documentation"),
        ] {
            let found = range(address);
            assert!(
                found.is_some_and(|name| name.contains(class)),
                "{address}: {found:?}"
            );
        }
    }

    #[test]
    fn public_addresses_pass() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
        ] {
            assert_eq!(range(address), None, "{address}");
        }
    }

    #[test]
    fn ipv6_classes_and_embedded_ipv4_are_caught() {
        for (address, class) in [
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::127.0.0.1", "loopback"),
            ("64:ff9b::7f00:1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2002:7f00:1::", "loopback"),
            ("2002:c0a8:0101::1", "private"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("2001:0:4136:e378::1", "Teredo"),
        ] {
            let found = range(address);
            assert!(
                found.is_some_and(|name| name.contains(class)),
                "{address}: {found:?}"
            );
        }
        // A mapped public address is public.
        assert_eq!(range("::ffff:8.8.8.8"), None);
        assert_eq!(range("64:ff9b::808:808"), None);
    }
}
